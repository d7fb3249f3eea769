/* common.h - small shared utilities: byte buffers with a cap, CRC32C, UUIDs,
 * the TSC clock and little-endian helpers. Internal to tracelake. */
#ifndef TL_COMMON_H
#define TL_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "tracelake/tracelake.h"

/* A borrowed byte range. */
typedef struct tl_slice {
  const uint8_t *p;
  size_t n;
} tl_slice;

static inline tl_slice tl_slice_str(const char *s) {
  tl_slice r = {(const uint8_t *)s, s ? strlen(s) : 0};
  return r;
}

/* A growable byte buffer that refuses to grow past `max`. */
typedef struct tl_bytes {
  uint8_t *p;
  size_t len;
  size_t cap;
  size_t max;
} tl_bytes;

void tl_bytes_init(tl_bytes *b, size_t max);
void tl_bytes_free(tl_bytes *b);
/* Ensures room for `extra` more bytes. Returns 0, TL_ETOOBIG or TL_ENOMEM. */
int tl_bytes_reserve(tl_bytes *b, size_t extra);
int tl_bytes_append(tl_bytes *b, const void *p, size_t n);
/* Makes room for `need` elements of `size` bytes in the array whose address
 * is `pp` (a T **, passed as void *) and whose capacity is *cap, doubling
 * from `first` (> 0) until it fits. Returns 0, or TL_ENOMEM with the array
 * and *cap unchanged. */
int tl_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first);

/* A growable array of owned C strings (an entry may be NULL).
 * Zero-initialize before use. */
typedef struct tl_strs {
  char **v;
  size_t n, cap;
} tl_strs;
/* Appends a copy of `s` (NULL: a NULL entry). Returns 0 or TL_ENOMEM. */
int tl_strs_add(tl_strs *l, const char *s);
/* Frees every entry and the array; the list is empty again. */
void tl_strs_free(tl_strs *l);

/* Writes v as a JSON string (quoted, escaped) / as a CSV field (RFC 4180:
 * quoted when it holds a comma, quote or line break). For the table, CSV
 * and JSON outputs of `tracelake sql` and `tracelake query`. */
void tl_fput_json_str(FILE *o, const char *v);
void tl_fput_csv_field(FILE *o, const char *v);

/* Little-endian stores and loads (unaligned-safe). */
static inline void tl_put_u16(uint8_t *p, uint16_t v) {
  memcpy(p, &v, 2);
}
static inline void tl_put_u32(uint8_t *p, uint32_t v) {
  memcpy(p, &v, 4);
}
static inline void tl_put_u64(uint8_t *p, uint64_t v) {
  memcpy(p, &v, 8);
}
static inline uint16_t tl_get_u16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static inline uint32_t tl_get_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static inline uint64_t tl_get_u64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Writes all n bytes (retrying short writes and EINTR). Returns 0, TL_EIO,
 * or TL_EUNAVAILABLE when the disk is full. */
int tl_write_all(int fd, const uint8_t *p, size_t n);
/* Reads a whole regular file of at most `max` bytes into a malloc'd buffer.
 * Returns 0, TL_ENOTFOUND, TL_ETOOBIG, TL_ENOMEM or TL_EIO. */
int tl_read_file(const char *path, size_t max, uint8_t **p, size_t *n);

/* Creates a directory and its missing parents (mode 0755). Returns 0,
 * TL_EINVAL (path too long) or TL_EIO. */
int tl_mkdirs(const char *path);
/* Makes a written file durable under its final name: fsync of `tmp`, rename
 * to `path`, fsync of the directory. Returns 0 or TL_EIO. */
int tl_publish_file(const char *tmp, const char *path);

/* RFC 3339 timestamps ("2026-11-26T12:00:00.5Z", "...+02:00") to UTC ns.
 * Returns 0 or TL_EINVAL. Format writes "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ". */
int tl_rfc3339_parse(const char *s, int64_t *ns);
void tl_rfc3339_format(int64_t ns, char out[40]);

/* True when p[0..n) is valid UTF-8 without NUL bytes (text a database can
 * store as is). */
bool tl_utf8_valid(const uint8_t *p, size_t n);

/* CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2. */
uint32_t tl_crc32c(uint32_t crc, const void *p, size_t n);

/* UUIDs: 16 raw bytes; text form is the canonical 36-character one. */
void tl_uuid_v4(uint8_t out[16]);
void tl_uuid_format(const uint8_t id[16], char out[37]);
int tl_uuid_parse(const char *s, uint8_t out[16]);

uint64_t tl_mono_ns(void);
int64_t tl_wall_ns(void);
/* The tick clock: TSC on x86-64, CLOCK_MONOTONIC nanoseconds elsewhere. */
static inline uint64_t tl_ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_ia32_rdtsc();
#else
  return tl_mono_ns();
#endif
}
/* Condition variables whose timed waits run on CLOCK_MONOTONIC, so that a
 * step of the wall clock (NTP, an operator) neither stretches nor cuts a
 * wait: every condition variable given a deadline is made with this.
 * Returns pthread_cond_init's result. */
int tl_cond_init(pthread_cond_t *cv);
/* The CLOCK_MONOTONIC instant `ns` nanoseconds from now: the deadline of
 * pthread_cond_timedwait on a condition variable of tl_cond_init. */
struct timespec tl_deadline_in(uint64_t ns);
/* Measures ticks per second against CLOCK_MONOTONIC over about `ms`
 * milliseconds. Never returns 0. */
uint64_t tl_ticks_calibrate(unsigned ms);

/* Converts ticks to wall-clock UTC nanoseconds, given a reference point. */
static inline int64_t tl_ticks_to_wall(uint64_t ticks, uint64_t ref_ticks,
                                       int64_t ref_wall, uint64_t freq) {
  int64_t d = (int64_t)(ticks - ref_ticks);
  return ref_wall + (int64_t)((__int128)d * 1000000000 / (__int128)freq);
}

#endif

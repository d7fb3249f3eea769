/* grpc_util.h - small helpers over the gRPC core C API shared by the Flight
 * SQL server and client: a received byte buffer as contiguous bytes (no
 * copy when it is one slice) or as the pieces gRPC holds (no copy at all),
 * byte buffers built from slices without copying large bodies, and gRPC
 * status names. */
#ifndef TL_GRPC_UTIL_H
#define TL_GRPC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/status.h>

#include "common/common.h" /* tl_slice */

/* Contiguous bytes of a received message. `p`/`n` stay valid until
 * tl_grpc_bytes_free; the bytes live in `slice` (a reference taken from
 * the byte buffer, or a merged copy when it had several slices). */
typedef struct tl_grpc_bytes {
  const uint8_t *p;
  size_t n;
  grpc_slice slice;
} tl_grpc_bytes;

/* Reads `bb` (borrowed; still destroyed by the caller) into contiguous
 * memory, decompressing if needed. Messages larger than `max` bytes are
 * refused. Returns 0, TL_ETOOBIG, TL_ENOMEM or TL_EMALFORMED (a buffer
 * gRPC cannot read, e.g. a bad compressed payload). */
int tl_grpc_bytes_read(grpc_byte_buffer *bb, size_t max, tl_grpc_bytes *out);
/* Releases the bytes; accepts a zeroed struct. */
void tl_grpc_bytes_free(tl_grpc_bytes *b);

/* A received message as the pieces gRPC holds it, for readers that can
 * work on scattered bytes (a large FlightData is tens of slices; merging
 * them would copy every byte once more). `part[i]` points into the
 * message, which the struct owns until tl_grpc_parts_clear. The `part`
 * array is kept across messages, so that a stream of messages allocates
 * nothing per message. Zero-initialize before first use. */
typedef struct tl_grpc_parts {
  tl_slice *part;
  size_t n, cap;
  size_t len; /* total bytes */
  grpc_byte_buffer *bb;
  grpc_byte_buffer_reader r;
  bool reading; /* `r` is initialized */
} tl_grpc_parts;

/* Takes `bb` (owned after the call, also on failure; may be NULL: an
 * empty message) and lists its pieces, decompressing if needed. Messages
 * larger than `max` bytes are refused. Returns 0, TL_ETOOBIG, TL_ENOMEM or
 * TL_EMALFORMED (a buffer gRPC cannot read). A message still held by `m`
 * is dropped first. */
int tl_grpc_parts_read(grpc_byte_buffer *bb, size_t max, tl_grpc_parts *m);
/* Drops the message; keeps the `part` array for the next one. */
void tl_grpc_parts_clear(tl_grpc_parts *m);
/* Drops the message and the array; accepts a zeroed struct. */
void tl_grpc_parts_free(tl_grpc_parts *m);

/* A byte buffer holding a copy of (p, n). NULL only if gRPC aborts. */
grpc_byte_buffer *tl_grpc_bb_copy(const void *p, size_t n);

/* A byte buffer for one FlightData message: `prefix` (small, copied) then
 * `body` (not copied when `release` is set: gRPC calls release(user) once
 * it no longer needs the body, possibly from another thread and after the
 * send op completed; with `release` NULL the body is copied). */
grpc_byte_buffer *tl_grpc_bb_prefix_body(const uint8_t *prefix, size_t prefix_n,
                                         const uint8_t *body, size_t body_n,
                                         void (*release)(void *), void *user);

/* The status code's name as the gRPC docs spell it ("INVALID_ARGUMENT");
 * "UNKNOWN" for codes outside the table. */
const char *tl_grpc_status_name(grpc_status_code code);

/* Compares a grpc_slice with a C string. */
int tl_grpc_slice_eq(grpc_slice s, const char *str);

#endif

/* grpc_util.h - small helpers over the gRPC core C API shared by the Flight
 * SQL server and client: a received byte buffer as contiguous bytes (no
 * copy when it is one slice), byte buffers built from slices without
 * copying large bodies, and gRPC status names. */
#ifndef TL_GRPC_UTIL_H
#define TL_GRPC_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <grpc/status.h>

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

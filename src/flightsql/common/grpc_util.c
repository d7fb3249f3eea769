/* grpc_util.c - byte buffer and status helpers over the gRPC core C API. */
#include "flightsql/common/grpc_util.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"

/* Appends slice `s` to the growing buffer and drops the reference. */
static int merge_slice(uint8_t **buf, size_t *len, size_t *cap, size_t max,
                       grpc_slice s) {
  size_t n = GRPC_SLICE_LENGTH(s);
  int rc = 0;
  if (n > max - *len) {
    rc = TL_ETOOBIG;
  } else if (*len + n > *cap) {
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < *len + n)
      ncap *= 2;
    if (ncap > max)
      ncap = max;
    uint8_t *nb = realloc(*buf, ncap);
    if (!nb)
      rc = TL_ENOMEM;
    else {
      *buf = nb;
      *cap = ncap;
    }
  }
  if (!rc && n) {
    memcpy(*buf + *len, GRPC_SLICE_START_PTR(s), n);
    *len += n;
  }
  grpc_slice_unref(s);
  return rc;
}

int tl_grpc_bytes_read(grpc_byte_buffer *bb, size_t max, tl_grpc_bytes *out) {
  grpc_byte_buffer_reader r;
  grpc_slice s, t;
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;

  memset(out, 0, sizeof *out);
  out->slice = grpc_empty_slice();
  if (!bb)
    return 0;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return TL_EMALFORMED;
  if (!grpc_byte_buffer_reader_next(&r, &s))
    goto done; /* empty message */
  if (!grpc_byte_buffer_reader_next(&r, &t)) {
    /* One slice: keep the reference, no copy. A small slice may be inlined
     * in the struct itself: copy that one out so `p` survives a move. */
    if (GRPC_SLICE_LENGTH(s) > max) {
      grpc_slice_unref(s);
      rc = TL_ETOOBIG;
      goto done;
    }
    if (!s.refcount) {
      rc = merge_slice(&buf, &len, &cap, max, s);
      if (rc)
        goto done;
      s = grpc_slice_new(buf, len, free);
    }
    out->slice = s;
    out->p = GRPC_SLICE_START_PTR(out->slice);
    out->n = GRPC_SLICE_LENGTH(out->slice);
    goto done;
  }
  /* Several slices: merge them into one malloc'd buffer. */
  rc = merge_slice(&buf, &len, &cap, max, s);
  int more = 1;
  while (more) {
    int rc2 = merge_slice(&buf, &len, &cap, max, t);
    if (!rc)
      rc = rc2;
    more = grpc_byte_buffer_reader_next(&r, &t);
  }
  if (rc) {
    free(buf);
    goto done;
  }
  out->slice = grpc_slice_new(buf, len, free);
  out->p = GRPC_SLICE_START_PTR(out->slice);
  out->n = len;
done:
  grpc_byte_buffer_reader_destroy(&r);
  return rc;
}

void tl_grpc_bytes_free(tl_grpc_bytes *b) {
  if (!b)
    return;
  if (b->slice.refcount)
    grpc_slice_unref(b->slice);
  memset(b, 0, sizeof *b);
}

void tl_grpc_parts_clear(tl_grpc_parts *m) {
  if (m->reading)
    grpc_byte_buffer_reader_destroy(&m->r);
  if (m->bb)
    grpc_byte_buffer_destroy(m->bb);
  m->reading = false;
  m->bb = NULL;
  m->n = 0;
  m->len = 0;
}

void tl_grpc_parts_free(tl_grpc_parts *m) {
  if (!m)
    return;
  tl_grpc_parts_clear(m);
  free(m->part);
  memset(m, 0, sizeof *m);
}

int tl_grpc_parts_read(grpc_byte_buffer *bb, size_t max, tl_grpc_parts *m) {
  tl_grpc_parts_clear(m);
  if (!bb)
    return 0;
  m->bb = bb;
  if (!grpc_byte_buffer_reader_init(&m->r, bb))
    return TL_EMALFORMED;
  m->reading = true;
  /* The reader keeps what it points into alive: the buffer itself, or
   * the decompressed copy it made. */
  grpc_slice *s;
  while (grpc_byte_buffer_reader_peek(&m->r, &s)) {
    size_t n = GRPC_SLICE_LENGTH(*s);
    if (n > max - m->len) {
      tl_grpc_parts_clear(m);
      return TL_ETOOBIG;
    }
    if (!n)
      continue;
    if (tl_grow(&m->part, &m->cap, m->n + 1, sizeof *m->part, 64)) {
      tl_grpc_parts_clear(m);
      return TL_ENOMEM;
    }
    m->part[m->n].p = GRPC_SLICE_START_PTR(*s);
    m->part[m->n].n = n;
    m->n++;
    m->len += n;
  }
  return 0;
}

grpc_byte_buffer *tl_grpc_bb_copy(const void *p, size_t n) {
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)p, n);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

grpc_byte_buffer *tl_grpc_bb_prefix_body(const uint8_t *prefix, size_t prefix_n,
                                         const uint8_t *body, size_t body_n,
                                         void (*release)(void *), void *user) {
  grpc_slice s[2];
  size_t ns = 0;
  s[ns++] = grpc_slice_from_copied_buffer((const char *)prefix, prefix_n);
  if (body_n) {
    if (release)
      s[ns++] =
          grpc_slice_new_with_user_data((void *)body, body_n, release, user);
    else
      s[ns++] = grpc_slice_from_copied_buffer((const char *)body, body_n);
  } else if (release) {
    release(user);
  }
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(s, ns);
  for (size_t i = 0; i < ns; i++)
    grpc_slice_unref(s[i]);
  return bb;
}

const char *tl_grpc_status_name(grpc_status_code code) {
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  if ((int)code < 0 || (size_t)code >= sizeof names / sizeof names[0])
    return "UNKNOWN";
  return names[code];
}

int tl_grpc_slice_eq(grpc_slice s, const char *str) {
  size_t n = strlen(str);
  return GRPC_SLICE_LENGTH(s) == n &&
         memcmp(GRPC_SLICE_START_PTR(s), str, n) == 0;
}

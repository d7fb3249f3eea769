/* fuzz_ipc.c - libFuzzer target for the Arrow IPC decoder: the input is
 * read as an encapsulated IPC stream. Every batch decoded is rendered as
 * text (so sanitizers see any out-of-bounds buffer the validation let
 * through), encoded again, and the re-encoded stream must decode to the
 * same values. The stream is read once more with each body in pieces
 * (tl_ipc_reader_feed_parts), which must accept, refuse and decode
 * exactly what the whole bodies give. Malformed input must be rejected
 * with a reason, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"

#define MAX_CELLS 2048 /* values compared per batch */

typedef struct ctx {
  const tl_ipc_reader *reader; /* the first decoding */
  const struct ArrowSchema *schema;
  const struct ArrowArray *first; /* the batch being re-decoded against */
} ctx;

static int render(const struct ArrowSchema *s, const struct ArrowArray *a,
                  int64_t col, int64_t row, tl_bytes *b, bool *is_null) {
  b->len = 0;
  *is_null = false;
  return tl_arrow_value_text(s, a, col, row, b, is_null);
}

/* Both batches hold the same values (as far as MAX_CELLS). */
static void same_batch(const struct ArrowSchema *s, const struct ArrowArray *x,
                       const struct ArrowArray *y) {
  if (x->length != y->length || x->n_children != y->n_children)
    __builtin_trap();
  tl_bytes b1, b2;
  tl_bytes_init(&b1, 1 << 16);
  tl_bytes_init(&b2, 1 << 16);
  int64_t cells = 0;
  for (int64_t col = 0; col < x->n_children; col++)
    for (int64_t row = 0; row < x->length && cells < MAX_CELLS; row++) {
      bool n1, n2;
      int r1 = render(s, x, col, row, &b1, &n1);
      int r2 = render(s, y, col, row, &b2, &n2);
      if (r1 != r2 || n1 != n2 || b1.len != b2.len ||
          (b1.len && memcmp(b1.p, b2.p, b1.len)))
        __builtin_trap();
      cells++;
    }
  tl_bytes_free(&b1);
  tl_bytes_free(&b2);
}

/* The re-decoded batch must hold the same values as the first one. */
static int compare(void *c, const struct ArrowArray *a) {
  ctx *x = c;
  same_batch(x->schema, x->first, a);
  return 0;
}

static int on_batch(void *c, const struct ArrowArray *a) {
  ctx *x = c;
  x->schema = tl_ipc_reader_schema(x->reader);
  tl_bytes out;
  char err[256];
  tl_bytes_init(&out, 1 << 26);
  int rc = tl_ipc_stream_bytes(x->schema, a, &out, err, sizeof err);
  if (rc == TL_ETOOBIG || rc == TL_ENOMEM) {
    tl_bytes_free(&out);
    return 0;
  }
  if (rc) /* what the decoder accepted, the encoder must take */
    __builtin_trap();
  tl_ipc_reader *r;
  if (tl_ipc_reader_new(&r) == 0) {
    ctx again = {NULL, x->schema, a};
    rc = tl_ipc_reader_feed_stream(r, out.p, out.len, compare, &again, err,
                                   sizeof err);
    if (rc && rc != TL_ENOMEM)
      __builtin_trap();
    tl_ipc_reader_free(r);
  }
  tl_bytes_free(&out);
  return 0;
}

/* ---- Bodies in pieces ---------------------------------------------------- */

#define MAX_PIECES 4096 /* per body; the rest is one last piece */
#define MAX_KEPT 8      /* batches kept across later messages */

/* xorshift64*, seeded from the input: the same cuts for the same input. */
static uint32_t rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return (uint32_t)((*s * 0x2545F4914F6CDD1DULL) >> 32);
}

/* A body cut into pieces, each in its own allocation so that the
 * sanitizer sees a read past a piece's end. `max` bounds a piece's size
 * (1 + rnd % max); about one piece in five is empty. */
static size_t cut(const uint8_t *p, size_t n, size_t max, uint64_t *seed,
                  tl_slice *part) {
  size_t np = 0, at = 0;
  while (at < n && np < MAX_PIECES - 2) {
    size_t len = rnd(seed) % 5 ? 1 + rnd(seed) % max : 0;
    if (len > n - at)
      len = n - at;
    uint8_t *q = malloc(len ? len : 1);
    if (!q)
      break;
    memcpy(q, p + at, len);
    part[np++] = (tl_slice){q, len};
    at += len;
  }
  if (at < n) {
    uint8_t *q = malloc(n - at);
    if (q) {
      memcpy(q, p + at, n - at);
      part[np++] = (tl_slice){q, n - at};
    }
  }
  return np;
}

/* Reads the stream as tl_ipc_reader_feed_stream does, feeding each
 * message whole to one reader and in pieces to another (a body cut short
 * by the end of the input too: both must refuse it). Same codes, kinds and
 * values; batches kept from the second reader must keep their values while
 * it decodes the next ones. */
static void feed_in_pieces(const uint8_t *data, size_t size) {
  static tl_slice part[MAX_PIECES];
  tl_ipc_reader *r1 = NULL, *r2 = NULL;
  struct ArrowArray want[MAX_KEPT], held[MAX_KEPT];
  int nkept = 0;
  char err1[256], err2[256];
  /* FNV-1a of the input. */
  uint64_t seed = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < size; i++)
    seed = (seed ^ data[i]) * 0x100000001b3ULL;
  seed |= 1;
  if (tl_ipc_reader_new(&r1) || tl_ipc_reader_new(&r2))
    goto done;
  size_t at = 0;
  while (at < size) {
    size_t pre = 4;
    if (size - at < 4)
      break;
    uint32_t v = tl_get_u32(data + at);
    if (v == 0xFFFFFFFFu) {
      if (size - at < 8)
        break;
      v = tl_get_u32(data + at + 4);
      pre = 8;
    }
    int32_t len = (int32_t)v;
    if (len <= 0 || (size_t)len > size - at - pre)
      break;
    const uint8_t *hdr = data + at + pre;
    size_t left = size - at - pre - (size_t)len;
    /* The body as the header says, or what is left of the input. */
    tl__fbt msg;
    int64_t blen = 0;
    size_t n = left;
    if (!tl__fbr_root(hdr, (size_t)len, &msg) &&
        !tl__fbr_scalar(&msg, 3, 8, &blen) && blen >= 0 &&
        (uint64_t)blen < left)
      n = (size_t)blen;
    static const size_t maxes[] = {1, 7, 8, 64, 4096, SIZE_MAX - 1};
    size_t np = cut(hdr + len, n, maxes[rnd(&seed) % 6], &seed, part);
    int k1 = -1, k2 = -1;
    err1[0] = err2[0] = 0;
    int rc1 = tl_ipc_reader_feed(r1, hdr, (size_t)len, hdr + len, n, &k1, err1,
                                 sizeof err1);
    int rc2 = tl_ipc_reader_feed_parts(r2, hdr, (size_t)len, part, np, &k2,
                                       err2, sizeof err2);
    for (size_t i = 0; i < np; i++)
      free((void *)part[i].p);
    if (rc1 == TL_ENOMEM || rc2 == TL_ENOMEM)
      break;
    if (rc1 != rc2 || k1 != k2 || (rc2 && !err2[0]))
      __builtin_trap();
    if (rc1)
      break;
    if (k1 == TL_IPC_BATCH) {
      struct ArrowArray a1, a2;
      if (tl_ipc_reader_take(r1, &a1) || tl_ipc_reader_take(r2, &a2))
        __builtin_trap();
      const struct ArrowSchema *s = tl_ipc_reader_schema(r1);
      same_batch(s, &a1, &a2);
      if (nkept < MAX_KEPT && rnd(&seed) % 2) {
        want[nkept] = a1;
        held[nkept++] = a2;
      } else {
        tl_arrow_array_release(&a1);
        tl_arrow_array_release(&a2);
      }
      for (int i = 0; i < nkept; i++)
        same_batch(s, &want[i], &held[i]);
    }
    at += pre + (size_t)len + n;
  }
done:
  for (int i = 0; i < nkept; i++) {
    tl_arrow_array_release(&want[i]);
    tl_arrow_array_release(&held[i]);
  }
  tl_ipc_reader_free(r1);
  tl_ipc_reader_free(r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tl_ipc_reader *r;
  char err[256];
  if (tl_ipc_reader_new(&r))
    return 0;
  err[0] = 0;
  ctx x = {r, NULL, NULL};
  int rc =
      tl_ipc_reader_feed_stream(r, data, size, on_batch, &x, err, sizeof err);
  if (rc && rc != TL_ENOMEM && !err[0])
    __builtin_trap(); /* every rejection must say why */
  tl_ipc_reader_free(r);
  feed_in_pieces(data, size);
  return 0;
}

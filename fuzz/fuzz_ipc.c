/* fuzz_ipc.c - libFuzzer target for the Arrow IPC decoder: the input is
 * read as an encapsulated IPC stream. Every batch decoded is rendered as
 * text (so sanitizers see any out-of-bounds buffer the validation let
 * through), encoded again, and the re-encoded stream must decode to the
 * same values. Malformed input must be rejected with a reason, never
 * crash. */
#include <stdint.h>
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

/* The re-decoded batch must hold the same values as the first one. */
static int compare(void *c, const struct ArrowArray *a) {
  ctx *x = c;
  const struct ArrowArray *f = x->first;
  if (a->length != f->length || a->n_children != f->n_children)
    __builtin_trap();
  tl_bytes b1, b2;
  tl_bytes_init(&b1, 1 << 16);
  tl_bytes_init(&b2, 1 << 16);
  int64_t cells = 0;
  for (int64_t col = 0; col < a->n_children; col++)
    for (int64_t row = 0; row < a->length && cells < MAX_CELLS; row++) {
      bool n1, n2;
      int r1 = render(x->schema, f, col, row, &b1, &n1);
      int r2 = render(x->schema, a, col, row, &b2, &n2);
      if (r1 != r2 || n1 != n2 || b1.len != b2.len ||
          (b1.len && memcmp(b1.p, b2.p, b1.len)))
        __builtin_trap();
      cells++;
    }
  tl_bytes_free(&b1);
  tl_bytes_free(&b2);
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
  return 0;
}

/* ipc_seeds.c - writes the seed corpus of fuzz/fuzz_ipc.c: encapsulated
 * IPC streams made by the encoder from the sample tables, one file each.
 *   arrow_ipc_seeds fuzz/corpus-ipc */
#include <stdio.h>
#include <stdlib.h>

#include "sample.h"

static int put(const char *dir, const char *name, const tl_bytes *b) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f)) {
    perror(path);
    return 1;
  }
  return 0;
}

/* Appends one message of a writer to the stream bytes. */
static int emit(void *ctx, const uint8_t *hdr, size_t hlen, uint8_t *body,
                size_t blen, bool *take) {
  tl_bytes *b = ctx;
  uint32_t pre[2] = {0xFFFFFFFFu, (uint32_t)((hlen + 7) & ~(size_t)7)};
  static const uint8_t zeros[8];
  (void)take;
  tl_bytes_append(b, pre, 8);
  tl_bytes_append(b, hdr, hlen);
  tl_bytes_append(b, zeros, pre[1] - hlen);
  return tl_bytes_append(b, body, blen);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  char err[256];
  int bad = 0;
  struct ArrowSchema s;
  struct ArrowArray a;
  tl_bytes b;
  static const int rows[] = {0, 1, 3, 9};
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    char name[64];
    if (sample_all_types(&s, &a, rows[i], (int)i))
      return 1;
    tl_bytes_init(&b, 1 << 24);
    bad |= tl_ipc_stream_bytes(&s, &a, &b, err, sizeof err) != 0;
    snprintf(name, sizeof name, "all-types-%d.arrows", rows[i]);
    bad |= put(dir, name, &b);
    tl_bytes_free(&b);
    tl_arrow_array_release(&a);
    tl_arrow_schema_release(&s);
  }
  if (sample_sql_info(&s, &a))
    return 1;
  tl_bytes_init(&b, 1 << 24);
  bad |= tl_ipc_stream_bytes(&s, &a, &b, err, sizeof err) != 0;
  bad |= put(dir, "sql-info.arrows", &b);
  tl_bytes_free(&b);
  tl_bytes_init(&b, 1 << 24);
  bad |= tl_ipc_schema_bytes(&s, &b, err, sizeof err) != 0;
  bad |= put(dir, "schema-only.arrows", &b);
  tl_bytes_free(&b);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);

  /* Dictionaries: an int16-indexed column, replaced between batches. */
  static const int32_t offs1[] = {0, 1, 3}, offs2[] = {0, 3, 3, 4};
  static const int16_t idx[] = {0, 1, 1, 0, 1};
  static const uint8_t valid[] = {0x1B};
  struct ArrowSchema sv = {"u", NULL, NULL, 2, 0, NULL, NULL, NULL, NULL};
  struct ArrowSchema sc = {"s", "d", NULL, 2, 0, NULL, &sv, NULL, NULL};
  struct ArrowSchema *rk[] = {&sc};
  struct ArrowSchema root = {"+s", "", NULL, 0, 1, rk, NULL, NULL, NULL};
  sv.release = sc.release = root.release = tl_arrow_schema_release;
  const void *bv1[] = {NULL, offs1, "abb"}, *bv2[] = {NULL, offs2, "xyzw"};
  const void *bc[] = {valid, idx}, *br[] = {NULL};
  struct ArrowArray v1 = {2, 0, 0, 3, 0, bv1, NULL, NULL, NULL, NULL};
  struct ArrowArray v2 = {3, 0, 0, 3, 0, bv2, NULL, NULL, NULL, NULL};
  struct ArrowArray c1 = {5, 1, 0, 2, 0, bc, NULL, &v1, NULL, NULL};
  struct ArrowArray c2 = {5, 1, 0, 2, 0, bc, NULL, &v2, NULL, NULL};
  struct ArrowArray *k1[] = {&c1}, *k2[] = {&c2};
  struct ArrowArray r1 = {5, 0, 0, 1, 1, br, k1, NULL, NULL, NULL};
  struct ArrowArray r2 = {5, 0, 0, 1, 1, br, k2, NULL, NULL, NULL};
  v1.release = v2.release = c1.release = c2.release = r1.release = r2.release =
      tl_arrow_array_release; /* never called */
  tl_ipc_writer *w;
  if (tl_ipc_writer_new(&w, &root, err, sizeof err))
    return 1;
  tl_bytes_init(&b, 1 << 24);
  tl_ipc_slice sl[] = {{&r1, 0, 3}, {&r2, 1, 4}, {&r1, 2, 3}};
  bad |= tl_ipc_writer_schema(w, emit, &b) != 0;
  bad |= tl_ipc_writer_batch(w, sl, 3, emit, &b, err, sizeof err) != 0;
  bad |= tl_ipc_writer_batch(w, sl + 1, 1, emit, &b, err, sizeof err) != 0;
  tl_ipc_writer_free(w);
  bad |= put(dir, "dictionary.arrows", &b);
  tl_bytes_free(&b);
  if (bad)
    fprintf(stderr, "failed: %s\n", err);
  return bad;
}

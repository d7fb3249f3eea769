/* test_ipc.c - the Arrow IPC encoder and decoder: round trips of every
 * type, slices with offsets at every level, batches concatenated from
 * several arrays, dictionaries, known bytes of a Schema message,
 * malformed input rejected with a reason, and bodies fed in pieces. */
#include "helpers.h"
#include "sample.h"

TL_TEST_MAIN()

/* ---- Messages collected from a writer -------------------------------------
 */

typedef struct msgs {
  int n;
  uint8_t *hdr[32], *body[32];
  size_t hlen[32], blen[32];
} msgs;

static int collect(void *ctx, const uint8_t *header, size_t header_len,
                   uint8_t *body, size_t body_len, bool *take_body) {
  msgs *m = ctx;
  if (m->n == 32)
    return TL_ETOOBIG;
  m->hdr[m->n] = malloc(header_len);
  memcpy(m->hdr[m->n], header, header_len);
  m->hlen[m->n] = header_len;
  m->body[m->n] = body; /* taken */
  m->blen[m->n] = body_len;
  *take_body = true;
  m->n++;
  return 0;
}

static void msgs_free(msgs *m) {
  for (int i = 0; i < m->n; i++) {
    free(m->hdr[i]);
    free(m->body[i]);
  }
  m->n = 0;
}

/* Feeds every message to `r`; returns the kinds as a string ("SDBB"). */
static const char *feed_all(tl_ipc_reader *r, const msgs *m,
                            struct ArrowArray *batches) {
  static char kinds[40];
  char err[256];
  int nb = 0;
  for (int i = 0; i < m->n; i++) {
    int kind = 0;
    int rc = tl_ipc_reader_feed(r, m->hdr[i], m->hlen[i], m->body[i],
                                m->blen[i], &kind, err, sizeof err);
    if (rc)
      FAILF("message %d: %s (%s)", i, tl_errname(rc), err);
    kinds[i] = kind == TL_IPC_SCHEMA       ? 'S'
               : kind == TL_IPC_DICTIONARY ? 'D'
                                           : 'B';
    if (kind == TL_IPC_BATCH)
      CHECK_EQ(tl_ipc_reader_take(r, &batches[nb++]), 0);
  }
  kinds[m->n] = 0;
  return kinds;
}

/* ---- Round trips -----------------------------------------------------------
 */

TEST(every_type_round_trips_with_nulls) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(sample_all_types(&s, &a, 11, 0), 0);
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  const struct ArrowSchema *ds = tl_ipc_reader_schema(rt.r);
  same_schema(&s, ds);
  CHECK_EQ(rt.batch.length, 11);
  same_values(&s, &a, 0, ds, &rt.batch, 0, 11);
  /* A few values by hand: the declared unit and zone are kept. */
  int64_t c = -1;
  for (int64_t i = 0; i < ds->n_children; i++)
    if (!strcmp(ds->children[i]->name, "t_7"))
      c = i;
  CHECK_STR(ds->children[c]->format, "tsm:Europe/Paris");
  CHECK_STR(cell(ds, &rt.batch, c, 1), "NULL");
  CHECK_STR(cell(ds, &rt.batch, 0, 0), "NULL"); /* the null type */
  CHECK_STR(cell(ds, &rt.batch, 1, 0), "true");
  roundtrip_done(&rt);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(batch_of_only_nulls_round_trips) {
  struct ArrowSchema s;
  struct ArrowArray a, b;
  CHECK_EQ(sample_all_types(&s, &a, 1, 1), 0); /* row 0 is all nulls */
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  const struct ArrowSchema *ds = tl_ipc_reader_schema(rt.r);
  for (int64_t c = 0; c < ds->n_children; c++)
    CHECK_STR(cell(ds, &rt.batch, c, 0), "NULL");
  /* Top-level columns with nulls carry a validity bitmap; unions none. */
  for (int64_t c = 0; c < ds->n_children; c++) {
    const struct ArrowArray *col = rt.batch.children[c];
    CHECK_EQ(col->length, 1);
    if (ds->children[c]->format[0] == '+' && ds->children[c]->format[1] == 'u')
      CHECK_EQ(col->null_count, 0);
    else
      CHECK_EQ(col->null_count, 1);
  }
  roundtrip_done(&rt);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
  (void)b;
}

TEST(empty_batch_round_trips) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(sample_all_types(&s, &a, 0, 0), 0);
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  CHECK_EQ(rt.batch.length, 0);
  CHECK_EQ(rt.batch.n_children, s.n_children);
  for (int64_t c = 0; c < rt.batch.n_children; c++)
    CHECK_EQ(rt.batch.children[c]->length, 0);
  same_schema(&s, tl_ipc_reader_schema(rt.r));
  roundtrip_done(&rt);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(schema_only_stream_has_no_batch) {
  struct ArrowSchema s;
  struct ArrowArray a, none;
  CHECK_EQ(sample_sql_info(&s, &a), 0);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  char err[256];
  CHECK_EQ(tl_ipc_schema_bytes(&s, &b, err, sizeof err), 0);
  /* Ends with the end-of-stream marker. */
  CHECK(b.len > 16 && b.len % 8 == 0);
  CHECK(!memcmp(b.p + b.len - 8, "\xff\xff\xff\xff\0\0\0\0", 8));
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  CHECK(tl_ipc_reader_schema(r) == NULL);
  CHECK_EQ(
      tl_ipc_reader_feed_stream(r, b.p, b.len, NULL, NULL, err, sizeof err), 0);
  same_schema(&s, tl_ipc_reader_schema(r));
  CHECK_EQ(tl_ipc_reader_take(r, &none), TL_ENOTFOUND);
  tl_ipc_reader_free(r);
  tl_bytes_free(&b);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(metadata_and_flags_round_trip) {
  /* {"k": "v", "key2": ""} in the C Data Interface encoding. */
  static const char meta[] = "\x02\0\0\0"
                             "\x01\0\0\0k\x01\0\0\0v"
                             "\x04\0\0\0key2\0\0\0\0";
  struct ArrowSchema key = mk_schema("u", "key", 0, 0, NULL);
  struct ArrowSchema val =
      mk_schema("i", "value", ARROW_FLAG_NULLABLE, 0, NULL);
  struct ArrowSchema *ekids[] = {&key, &val};
  struct ArrowSchema entries = mk_schema("+s", "entries", 0, 2, ekids);
  struct ArrowSchema *mkids[] = {&entries};
  struct ArrowSchema map = mk_schema(
      "+m", "m", ARROW_FLAG_MAP_KEYS_SORTED | ARROW_FLAG_NULLABLE, 1, mkids);
  struct ArrowSchema dval = mk_schema("u", NULL, ARROW_FLAG_NULLABLE, 0, NULL);
  struct ArrowSchema dict =
      mk_schema("c", "d", ARROW_FLAG_DICTIONARY_ORDERED, 0, NULL);
  dict.dictionary = &dval;
  dict.metadata = meta;
  struct ArrowSchema *kids[] = {&map, &dict};
  struct ArrowSchema root = mk_schema("+s", "", 0, 2, kids);
  root.metadata = meta;
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  char err[256];
  CHECK_EQ(tl_ipc_schema_bytes(&root, &b, err, sizeof err), 0);
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  CHECK_EQ(
      tl_ipc_reader_feed_stream(r, b.p, b.len, NULL, NULL, err, sizeof err), 0);
  const struct ArrowSchema *d = tl_ipc_reader_schema(r);
  CHECK(d->metadata && !memcmp(d->metadata, meta, sizeof meta - 1));
  CHECK_EQ(d->children[0]->flags,
           ARROW_FLAG_MAP_KEYS_SORTED | ARROW_FLAG_NULLABLE);
  CHECK_STR(d->children[0]->children[0]->children[0]->name, "key");
  CHECK_EQ(d->children[1]->flags, ARROW_FLAG_DICTIONARY_ORDERED);
  CHECK_STR(d->children[1]->format, "c");
  CHECK_STR(d->children[1]->dictionary->format, "u");
  CHECK(d->children[1]->metadata &&
        !memcmp(d->children[1]->metadata, meta, sizeof meta - 1));
  CHECK_EQ(tl__metadata_len(d->metadata), sizeof meta - 1);
  /* A copy is deep and independent. */
  struct ArrowSchema copy;
  CHECK_EQ(tl_arrow_schema_copy(d, &copy), 0);
  tl_ipc_reader_free(r);
  CHECK_STR(copy.children[1]->dictionary->format, "u");
  CHECK_STR(copy.children[0]->children[0]->children[1]->name, "value");
  tl_arrow_schema_release(&copy);
  CHECK(copy.release == NULL);
  tl_bytes_free(&b);
}

/* ---- Offsets ---------------------------------------------------------------
 */

/* A hand-made batch whose arrays all have their own offsets: the root
 * starts at row 1, every child at its own row. */
static const int32_t a_vals[] = {10, 11, 12, 13, 14, 15};
static const uint8_t a_valid[] = {0xF7}; /* physical row 3 null */
static const int32_t s_offs[] = {0, 1, 3, 6, 10, 15, 21};
static const char s_data[] = "abbcccddddeeeeeffffff";
static const int32_t l_offs[] = {0, 2, 3, 3, 6, 8};
static const int32_t l_vals[] = {100, 101, 102, 103, 104, 105, 106, 107, 108};
static const int64_t x_vals[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t st_valid[] = {0xF7};
static const uint8_t b_bits[] = {0x50}; /* bits 4 and 6 */

typedef struct offsets_batch {
  struct ArrowSchema sa, ss, sl, sli, sst, sx, sy, sb, root;
  struct ArrowSchema *lk[1], *stk[2], *rk[5];
  struct ArrowArray a, s, l, li, st, x, y, b, rootarr;
  struct ArrowArray *alk[1], *astk[2], *ark[5];
  const void *ba[2], *bs[3], *bl[2], *bli[2], *bst[1], *bx[2], *by[3], *bb[2],
      *br[1];
} offsets_batch;

static void offsets_batch_init(offsets_batch *o) {
  o->sa = mk_schema("i", "a", ARROW_FLAG_NULLABLE, 0, NULL);
  o->ss = mk_schema("u", "s", ARROW_FLAG_NULLABLE, 0, NULL);
  o->sli = mk_schema("i", "item", ARROW_FLAG_NULLABLE, 0, NULL);
  o->lk[0] = &o->sli;
  o->sl = mk_schema("+l", "l", ARROW_FLAG_NULLABLE, 1, o->lk);
  o->sx = mk_schema("l", "x", ARROW_FLAG_NULLABLE, 0, NULL);
  o->sy = mk_schema("u", "y", ARROW_FLAG_NULLABLE, 0, NULL);
  o->stk[0] = &o->sx;
  o->stk[1] = &o->sy;
  o->sst = mk_schema("+s", "st", ARROW_FLAG_NULLABLE, 2, o->stk);
  o->sb = mk_schema("b", "b", ARROW_FLAG_NULLABLE, 0, NULL);
  o->rk[0] = &o->sa;
  o->rk[1] = &o->ss;
  o->rk[2] = &o->sl;
  o->rk[3] = &o->sst;
  o->rk[4] = &o->sb;
  o->root = mk_schema("+s", "", 0, 5, o->rk);

  o->ba[0] = a_valid;
  o->ba[1] = a_vals;
  o->a = mk_array(5, 1, 1, 2, o->ba, 0, NULL);
  o->bs[0] = NULL;
  o->bs[1] = s_offs;
  o->bs[2] = s_data;
  o->s = mk_array(4, 0, 2, 3, o->bs, 0, NULL);
  o->bli[0] = NULL;
  o->bli[1] = l_vals;
  o->li = mk_array(8, 0, 1, 2, o->bli, 0, NULL);
  o->alk[0] = &o->li;
  o->bl[0] = NULL;
  o->bl[1] = l_offs;
  o->l = mk_array(4, 0, 1, 2, o->bl, 1, o->alk);
  o->bx[0] = NULL;
  o->bx[1] = x_vals;
  o->x = mk_array(8, 0, 2, 2, o->bx, 0, NULL);
  o->by[0] = NULL;
  o->by[1] = s_offs;
  o->by[2] = s_data;
  o->y = mk_array(6, 0, 0, 3, o->by, 0, NULL);
  o->astk[0] = &o->x;
  o->astk[1] = &o->y;
  o->bst[0] = st_valid;
  o->st = mk_array(4, 1, 1, 1, o->bst, 2, o->astk);
  o->bb[0] = NULL;
  o->bb[1] = b_bits;
  o->b = mk_array(4, 0, 3, 2, o->bb, 0, NULL);
  o->ark[0] = &o->a;
  o->ark[1] = &o->s;
  o->ark[2] = &o->l;
  o->ark[3] = &o->st;
  o->ark[4] = &o->b;
  o->br[0] = NULL;
  o->rootarr = mk_array(3, 0, 1, 1, o->br, 5, o->ark);
}

static const char *const offsets_expected[3][5] = {
    {"12", "dddd", "[]", "{\"x\": 4, \"y\": \"ccc\"}", "true"},
    {"NULL", "eeeee", "[104, 105, 106]", "NULL", "false"},
    {"14", "ffffff", "[107, 108]", "{\"x\": 6, \"y\": \"eeeee\"}", "true"},
};

static void check_offsets_batch(const struct ArrowSchema *s,
                                const struct ArrowArray *a, int64_t at) {
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 5; c++)
      CHECK_STR(cell(s, a, c, at + r), offsets_expected[r][c]);
}

TEST(offsets_honoured_at_root_and_child_levels) {
  offsets_batch o;
  offsets_batch_init(&o);
  check_offsets_batch(&o.root, &o.rootarr, 0); /* what the input says */
  roundtrip rt;
  roundtrip_run(&o.root, &o.rootarr, &rt);
  CHECK_EQ(rt.batch.length, 3);
  check_offsets_batch(tl_ipc_reader_schema(rt.r), &rt.batch, 0);
  /* Rebased: the decoded offsets start at 0 and hold only these rows. */
  const struct ArrowArray *s = rt.batch.children[1];
  CHECK_EQ(s->offset, 0);
  CHECK_EQ(((const int32_t *)s->buffers[1])[0], 0);
  CHECK_EQ(((const int32_t *)s->buffers[1])[3], 4 + 5 + 6);
  CHECK_EQ(rt.batch.children[2]->children[0]->length, 5);
  /* No nulls in the slice of s: no validity buffer. */
  CHECK(s->buffers[0] == NULL);
  CHECK_EQ(rt.batch.children[0]->null_count, 1);
  roundtrip_done(&rt);
}

TEST(batch_concatenates_slices_of_several_arrays) {
  struct ArrowSchema s1, s2;
  struct ArrowArray a1, a2;
  CHECK_EQ(sample_all_types(&s1, &a1, 13, 0), 0);
  CHECK_EQ(sample_all_types(&s2, &a2, 9, 5), 0);
  tl_ipc_writer *w;
  char err[256];
  CHECK_EQ(tl_ipc_writer_new(&w, &s1, err, sizeof err), 0);
  msgs m = {0};
  CHECK_EQ(tl_ipc_writer_schema(w, collect, &m), 0);
  tl_ipc_slice sl[] = {
      {&a1, 3, 5}, {&a2, 0, 3}, {&a1, 11, 2}, {&a2, 4, 0}, {&a2, 5, 4}};
  CHECK_EQ(tl_ipc_writer_batch(w, sl, 5, collect, &m, err, sizeof err), 0);
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  struct ArrowArray got[4];
  CHECK_STR(feed_all(r, &m, got), "SB");
  const struct ArrowSchema *ds = tl_ipc_reader_schema(r);
  CHECK_EQ(got[0].length, 14);
  same_values(&s1, &a1, 3, ds, &got[0], 0, 5);
  same_values(&s2, &a2, 0, ds, &got[0], 5, 3);
  same_values(&s1, &a1, 11, ds, &got[0], 8, 2);
  same_values(&s2, &a2, 5, ds, &got[0], 10, 4);
  /* The body size estimate is the body of one slice exactly. */
  msgs one = {0};
  CHECK_EQ(tl_ipc_writer_batch(w, sl, 1, collect, &one, err, sizeof err), 0);
  CHECK_U64(tl_ipc_body_size(&s1, &a1, 3, 5), one.blen[0]);
  msgs_free(&one);
  /* A slice beyond its array is refused. */
  tl_ipc_slice bad = {&a1, 10, 4};
  CHECK_EQ(tl_ipc_writer_batch(w, &bad, 1, collect, &m, err, sizeof err),
           TL_EINVAL);
  CHECK(err[0]);
  tl_arrow_array_release(&got[0]);
  tl_ipc_reader_free(r);
  msgs_free(&m);
  tl_ipc_writer_free(w);
  tl_arrow_array_release(&a1);
  tl_arrow_array_release(&a2);
  tl_arrow_schema_release(&s1);
  tl_arrow_schema_release(&s2);
}

TEST(slices_of_hand_made_offsets_concatenate) {
  offsets_batch o;
  offsets_batch_init(&o);
  tl_ipc_writer *w;
  char err[256];
  CHECK_EQ(tl_ipc_writer_new(&w, &o.root, err, sizeof err), 0);
  msgs m = {0};
  CHECK_EQ(tl_ipc_writer_schema(w, collect, &m), 0);
  tl_ipc_slice sl[] = {
      {&o.rootarr, 1, 2}, {&o.rootarr, 0, 3}, {&o.rootarr, 2, 1}};
  CHECK_EQ(tl_ipc_writer_batch(w, sl, 3, collect, &m, err, sizeof err), 0);
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  struct ArrowArray got[2];
  CHECK_STR(feed_all(r, &m, got), "SB");
  const struct ArrowSchema *ds = tl_ipc_reader_schema(r);
  CHECK_EQ(got[0].length, 6);
  for (int c = 0; c < 5; c++) {
    CHECK_STR(cell(ds, &got[0], c, 0), offsets_expected[1][c]);
    CHECK_STR(cell(ds, &got[0], c, 1), offsets_expected[2][c]);
    CHECK_STR(cell(ds, &got[0], c, 5), offsets_expected[2][c]);
  }
  check_offsets_batch(ds, &got[0], 2);
  /* Bitmaps re-packed from odd bit offsets. */
  CHECK_EQ(got[0].children[0]->null_count, 2);
  CHECK_EQ(got[0].children[3]->null_count, 2);
  tl_arrow_array_release(&got[0]);
  tl_ipc_reader_free(r);
  msgs_free(&m);
  tl_ipc_writer_free(w);
}

/* ---- Dictionaries ----------------------------------------------------------
 */

typedef struct dict_batch {
  struct ArrowSchema sval, scol, sk, root;
  struct ArrowSchema *rk[2];
  struct ArrowArray val, col, k, rootarr;
  struct ArrowArray *ark[2];
  const void *bv[3], *bc[2], *bk[2], *br[1];
} dict_batch;

/* A batch of an int8-indexed dictionary of strings and an int32 column. */
static void dict_batch_init(dict_batch *d, const int32_t *offs,
                            const char *data, int64_t nvals, const int8_t *idx,
                            const uint8_t *valid, const int32_t *ks,
                            int64_t rows) {
  d->sval = mk_schema("u", NULL, ARROW_FLAG_NULLABLE, 0, NULL);
  d->scol = mk_schema("c", "d", ARROW_FLAG_NULLABLE, 0, NULL);
  d->scol.dictionary = &d->sval;
  d->sk = mk_schema("i", "k", 0, 0, NULL);
  d->rk[0] = &d->scol;
  d->rk[1] = &d->sk;
  d->root = mk_schema("+s", "", 0, 2, d->rk);
  d->bv[0] = NULL;
  d->bv[1] = offs;
  d->bv[2] = data;
  d->val = mk_array(nvals, 0, 0, 3, d->bv, 0, NULL);
  d->bc[0] = valid;
  d->bc[1] = idx;
  d->col = mk_array(rows, valid ? -1 : 0, 0, 2, d->bc, 0, NULL);
  d->col.dictionary = &d->val;
  d->bk[0] = NULL;
  d->bk[1] = ks;
  d->k = mk_array(rows, 0, 0, 2, d->bk, 0, NULL);
  d->ark[0] = &d->col;
  d->ark[1] = &d->k;
  d->br[0] = NULL;
  d->rootarr = mk_array(rows, 0, 0, 1, d->br, 2, d->ark);
}

static const int32_t d1_offs[] = {0, 1, 2};
static const int32_t d3_offs[] = {0, 1, 3, 6};
static const int8_t idx1[] = {0, 1, 1, 0};
static const int8_t idx2[] = {1, 0, 1, 1};
static const int8_t idx3[] = {2, 0, 1, 2};
static const uint8_t valid1[] = {0x0B}; /* row 2 null */
static const int32_t ks[] = {1, 2, 3, 4};

TEST(dictionary_sent_once_then_replaced) {
  dict_batch b1, b2, b3;
  char s1[] = "ab", s2[] = "ab"; /* same values, different memory */
  dict_batch_init(&b1, d1_offs, s1, 2, idx1, valid1, ks, 4);
  dict_batch_init(&b2, d1_offs, s2, 2, idx2, NULL, ks, 4);
  dict_batch_init(&b3, d3_offs, "xyyzzz", 3, idx3, NULL, ks, 4);
  tl_ipc_writer *w;
  char err[256];
  CHECK_EQ(tl_ipc_writer_new(&w, &b1.root, err, sizeof err), 0);
  msgs m = {0};
  CHECK_EQ(tl_ipc_writer_schema(w, collect, &m), 0);
  tl_ipc_slice sl1 = {&b1.rootarr, 0, 4}, sl2 = {&b2.rootarr, 1, 3},
               sl3 = {&b3.rootarr, 0, 4};
  CHECK_EQ(tl_ipc_writer_batch(w, &sl1, 1, collect, &m, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_batch(w, &sl2, 1, collect, &m, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_batch(w, &sl3, 1, collect, &m, err, sizeof err), 0);
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  struct ArrowArray got[3];
  CHECK_STR(feed_all(r, &m, got), "SDBBDB");
  const struct ArrowSchema *ds = tl_ipc_reader_schema(r);
  CHECK_STR(ds->children[0]->format, "c");
  CHECK_STR(ds->children[0]->dictionary->format, "u");
  CHECK_STR(cell(ds, &got[0], 0, 0), "a");
  CHECK_STR(cell(ds, &got[0], 0, 1), "b");
  CHECK_STR(cell(ds, &got[0], 0, 2), "NULL");
  CHECK_STR(cell(ds, &got[0], 0, 3), "a");
  CHECK_STR(cell(ds, &got[1], 0, 0), "a");
  CHECK_STR(cell(ds, &got[1], 1, 2), "4");
  CHECK_STR(cell(ds, &got[2], 0, 0), "zzz");
  CHECK_STR(cell(ds, &got[2], 0, 2), "yy");
  /* Batches decoded before the replacement keep their dictionary. */
  CHECK_STR(cell(ds, &got[0], 0, 1), "b");
  tl_ipc_reader_free(r); /* batches outlive the reader */
  CHECK_STR(cell(&b1.root, &got[0], 0, 1), "b");
  for (int i = 0; i < 3; i++)
    tl_arrow_array_release(&got[i]);
  msgs_free(&m);
  tl_ipc_writer_free(w);
}

TEST(dictionary_change_within_one_call_splits_the_batch) {
  dict_batch b1, b3;
  dict_batch_init(&b1, d1_offs, "ab", 2, idx1, valid1, ks, 4);
  dict_batch_init(&b3, d3_offs, "xyyzzz", 3, idx3, NULL, ks, 4);
  tl_ipc_writer *w;
  char err[256];
  CHECK_EQ(tl_ipc_writer_new(&w, &b1.root, err, sizeof err), 0);
  msgs m = {0};
  CHECK_EQ(tl_ipc_writer_schema(w, collect, &m), 0);
  tl_ipc_slice sl[] = {{&b1.rootarr, 0, 2},
                       {&b1.rootarr, 3, 1},
                       {&b3.rootarr, 0, 2},
                       {&b1.rootarr, 1, 1}};
  CHECK_EQ(tl_ipc_writer_batch(w, sl, 4, collect, &m, err, sizeof err), 0);
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  struct ArrowArray got[3];
  CHECK_STR(feed_all(r, &m, got), "SDBDBDB");
  const struct ArrowSchema *ds = tl_ipc_reader_schema(r);
  CHECK_EQ(got[0].length, 3);
  CHECK_STR(cell(ds, &got[0], 0, 2), "a");
  CHECK_STR(cell(ds, &got[1], 0, 0), "zzz");
  CHECK_STR(cell(ds, &got[1], 0, 1), "x");
  CHECK_STR(cell(ds, &got[2], 0, 0), "b");
  /* An empty first batch still sends the dictionary. */
  tl_ipc_writer *w2;
  msgs m2 = {0};
  CHECK_EQ(tl_ipc_writer_new(&w2, &b1.root, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_schema(w2, collect, &m2), 0);
  CHECK_EQ(tl_ipc_writer_batch(w2, NULL, 0, collect, &m2, err, sizeof err), 0);
  tl_ipc_reader *r2;
  CHECK_EQ(tl_ipc_reader_new(&r2), 0);
  struct ArrowArray e[1];
  CHECK_STR(feed_all(r2, &m2, e), "SDB");
  CHECK_EQ(e[0].length, 0);
  tl_arrow_array_release(&e[0]);
  tl_ipc_reader_free(r2);
  msgs_free(&m2);
  tl_ipc_writer_free(w2);
  for (int i = 0; i < 3; i++)
    tl_arrow_array_release(&got[i]);
  tl_ipc_reader_free(r);
  msgs_free(&m);
  tl_ipc_writer_free(w);
}

/* ---- Known bytes -----------------------------------------------------------
 */

/* The Schema message of struct<a: int32 nullable>, decoded by hand against
 * Message.fbs and Schema.fbs (and read by apache-arrow 21 for JS). Offsets
 * are from the start of the flatbuffer, after the 8-byte prefix. */
static const uint8_t known_schema[] = {
    0xff, 0xff, 0xff, 0xff, 0x88, 0x00, 0x00, 0x00, /* continuation, 136 */
    /* 0: root offset 20 (the Message table); 4: padding */
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 8: Message vtable: 12 bytes, table of 20; version at 18,
     * header_type at 17, header at 12, bodyLength at 4 */
    0x0c, 0x00, 0x14, 0x00, 0x12, 0x00, 0x11, 0x00, 0x0c, 0x00, 0x04, 0x00,
    /* 20: Message: vtable 12 back; 24: bodyLength 0; 32: header -> 48;
     * 37: header_type 1 (Schema); 38: version 4 (V5) */
    0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00,
    /* 40: Schema vtable: 8 bytes, table of 12; endianness at 10, fields
     * at 4 */
    0x08, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x04, 0x00,
    /* 48: Schema: vtable 8 back; 52: fields -> 60; 58: endianness 0 */
    0x08, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 60: [Field] of 1; 64: -> 84 */
    0x01, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
    /* 68: Field vtable: 16 bytes, table of 20; name at 16, nullable at 15,
     * type_type at 14, type at 8, no dictionary, children at 4 */
    0x10, 0x00, 0x14, 0x00, 0x10, 0x00, 0x0f, 0x00, 0x0e, 0x00, 0x08, 0x00,
    0x00, 0x00, 0x04, 0x00,
    /* 84: Field: vtable 16 back; 88: children -> 132; 92: type -> 112;
     * 98: type_type 2 (Int); 99: nullable; 100: name -> 124 */
    0x10, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x02, 0x01, 0x18, 0x00, 0x00, 0x00,
    /* 104: Int vtable: 8 bytes, table of 12; bitWidth at 8, is_signed at 7 */
    0x08, 0x00, 0x0c, 0x00, 0x08, 0x00, 0x07, 0x00,
    /* 112: Int: vtable 8 back; 119: is_signed; 120: bitWidth 32 */
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x00, 0x00, 0x00,
    /* 124: "a"; 132: [Field] of 0 */
    0x01, 0x00, 0x00, 0x00, 0x61, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* end of stream */
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};

TEST(schema_message_known_bytes) {
  struct ArrowSchema a = mk_schema("i", "a", ARROW_FLAG_NULLABLE, 0, NULL);
  struct ArrowSchema *kids[] = {&a};
  struct ArrowSchema root = mk_schema("+s", "", 0, 1, kids);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  char err[256];
  CHECK_EQ(tl_ipc_schema_bytes(&root, &b, err, sizeof err), 0);
  CHECK_EQ(b.len, sizeof known_schema);
  for (size_t i = 0; i < b.len; i++)
    if (b.p[i] != known_schema[i])
      FAILF("byte %zu: %02x, expected %02x", i, b.p[i], known_schema[i]);
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  CHECK_EQ(tl_ipc_reader_feed_stream(r, known_schema, sizeof known_schema, NULL,
                                     NULL, err, sizeof err),
           0);
  same_schema(&root, tl_ipc_reader_schema(r));
  tl_ipc_reader_free(r);
  tl_bytes_free(&b);
}

/* ---- Malformed input -------------------------------------------------------
 */

static void stream_of(const struct ArrowSchema *s, const struct ArrowArray *a,
                      tl_bytes *b) {
  char err[256];
  tl_bytes_init(b, 1 << 24);
  CHECK_EQ(tl_ipc_stream_bytes(s, a, b, err, sizeof err), 0);
}

static int decode_stream(const uint8_t *p, size_t n, char *err, size_t cap) {
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  err[0] = 0;
  int rc = tl_ipc_reader_feed_stream(r, p, n, NULL, NULL, err, cap);
  tl_ipc_reader_free(r);
  if (rc)
    CHECK(err[0]); /* always a reason */
  return rc;
}

TEST(truncated_streams_rejected) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(sample_all_types(&s, &a, 6, 0), 0);
  tl_bytes b;
  stream_of(&s, &a, &b);
  char err[256];
  CHECK_EQ(decode_stream(b.p, b.len, err, sizeof err), 0);
  /* The message boundaries: a stream may end there without the marker. */
  size_t bounds[8], nb = 0, at = 0;
  while (at + 8 <= b.len && nb < 8) {
    bounds[nb++] = at;
    int32_t len;
    memcpy(&len, b.p + at + 4, 4);
    if (!len)
      break;
    tl__fbt msg;
    int64_t body = 0;
    CHECK(tl__fbr_root(b.p + at + 8, (size_t)len, &msg) == NULL);
    CHECK(tl__fbr_scalar(&msg, 3, 8, &body) == NULL);
    at += 8 + (size_t)len + (size_t)body;
  }
  CHECK_EQ(nb, 3); /* schema, batch, end of stream */
  int rejected = 0;
  for (size_t cut = 0; cut < b.len - 8; cut++) {
    int rc = decode_stream(b.p, cut, err, sizeof err);
    bool boundary = false;
    for (size_t i = 0; i < nb; i++)
      boundary |= cut == bounds[i];
    if (boundary) {
      CHECK_EQ(rc, 0);
    } else {
      if (rc != TL_EMALFORMED)
        FAILF("cut at %zu: %d", cut, rc);
      rejected++;
    }
  }
  CHECK(rejected > 100);
  tl_bytes_free(&b);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

/* Finds the 16-byte (a, b) int64 pair in `p`; its position or -1. */
static long find_pair(const uint8_t *p, size_t n, int64_t a, int64_t b) {
  uint8_t pat[16];
  memcpy(pat, &a, 8);
  memcpy(pat + 8, &b, 8);
  for (size_t i = 0; i + 16 <= n; i++)
    if (!memcmp(p + i, pat, 16))
      return (long)i;
  return -1;
}

/* A batch of one int32 column of 5 rows, one null, and its messages. */
static void int_batch(msgs *m) {
  static const int32_t v[] = {1, 2, 3, 4, 5};
  static const uint8_t valid[] = {0x1D}; /* row 1 null */
  struct ArrowSchema c = mk_schema("i", "c", ARROW_FLAG_NULLABLE, 0, NULL);
  struct ArrowSchema *kids[] = {&c};
  struct ArrowSchema root = mk_schema("+s", "", 0, 1, kids);
  const void *bc[] = {valid, v}, *br[] = {NULL};
  struct ArrowArray col = mk_array(5, 1, 0, 2, bc, 0, NULL);
  struct ArrowArray *ak[] = {&col};
  struct ArrowArray arr = mk_array(5, 0, 0, 1, br, 1, ak);
  tl_ipc_writer *w;
  char err[256];
  CHECK_EQ(tl_ipc_writer_new(&w, &root, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_schema(w, collect, m), 0);
  tl_ipc_slice s = {&arr, 0, 5};
  CHECK_EQ(tl_ipc_writer_batch(w, &s, 1, collect, m, err, sizeof err), 0);
  tl_ipc_writer_free(w);
}

static int feed_pair(const msgs *m, const uint8_t *hdr, size_t hlen,
                     const uint8_t *body, size_t blen, char *err) {
  tl_ipc_reader *r;
  int kind;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  CHECK_EQ(
      tl_ipc_reader_feed(r, m->hdr[0], m->hlen[0], NULL, 0, &kind, err, 256),
      0);
  err[0] = 0;
  int rc = tl_ipc_reader_feed(r, hdr, hlen, body, blen, &kind, err, 256);
  tl_ipc_reader_free(r);
  if (rc)
    CHECK(err[0]);
  return rc;
}

TEST(bad_batches_rejected) {
  msgs m = {0};
  int_batch(&m);
  char err[256];
  uint8_t hdr[1024], body[256];
  size_t hlen = m.hlen[1], blen = m.blen[1];
  CHECK(hlen <= sizeof hdr && blen <= sizeof body);
  CHECK_EQ(feed_pair(&m, m.hdr[1], hlen, m.body[1], blen, err), 0);

  /* The body shorter than bodyLength. */
  CHECK_EQ(feed_pair(&m, m.hdr[1], hlen, m.body[1], blen - 8, err),
           TL_EMALFORMED);
  CHECK(strstr(err, "body"));

  /* A buffer beyond the body: the values buffer is (8, 20). */
  memcpy(hdr, m.hdr[1], hlen);
  long at = find_pair(hdr, hlen, 8, 20);
  CHECK(at >= 0);
  int64_t far = (int64_t)1 << 40;
  memcpy(hdr + at, &far, 8);
  CHECK_EQ(feed_pair(&m, hdr, hlen, m.body[1], blen, err), TL_EMALFORMED);
  CHECK(strstr(err, "out of the body"));

  /* A values buffer too short for the rows. */
  memcpy(hdr, m.hdr[1], hlen);
  int64_t shorter = 12;
  memcpy(hdr + at + 8, &shorter, 8);
  CHECK_EQ(feed_pair(&m, hdr, hlen, m.body[1], blen, err), TL_EMALFORMED);
  CHECK(strstr(err, "too short"));

  /* Huge lengths: the field node (5, 1) and the batch length. */
  memcpy(hdr, m.hdr[1], hlen);
  at = find_pair(hdr, hlen, 5, 1);
  CHECK(at >= 0);
  memcpy(hdr + at, &far, 8);
  CHECK_EQ(feed_pair(&m, hdr, hlen, m.body[1], blen, err), TL_EMALFORMED);
  int64_t neg = -1;
  memcpy(hdr, m.hdr[1], hlen);
  memcpy(hdr + at + 8, &neg, 8);
  CHECK_EQ(feed_pair(&m, hdr, hlen, m.body[1], blen, err), TL_EMALFORMED);

  /* A null count that the bitmap does not have. */
  memcpy(hdr, m.hdr[1], hlen);
  int64_t two = 2;
  memcpy(hdr + at + 8, &two, 8);
  CHECK_EQ(feed_pair(&m, hdr, hlen, m.body[1], blen, err), TL_EMALFORMED);
  CHECK(strstr(err, "null count"));

  /* Garbage and truncated flatbuffers. */
  memset(hdr, 0xAB, sizeof hdr);
  CHECK_EQ(feed_pair(&m, hdr, hlen, m.body[1], blen, err), TL_EMALFORMED);
  for (size_t cut = 0; cut < hlen; cut += 3)
    CHECK_EQ(feed_pair(&m, m.hdr[1], cut, m.body[1], blen, err), TL_EMALFORMED);

  /* A batch before the schema. */
  tl_ipc_reader *r;
  int kind;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  CHECK_EQ(tl_ipc_reader_feed(r, m.hdr[1], hlen, m.body[1], blen, &kind, err,
                              sizeof err),
           TL_EMALFORMED);
  CHECK(strstr(err, "Schema"));
  tl_ipc_reader_free(r);
  (void)body;
  msgs_free(&m);
}

TEST(bad_offsets_and_union_ids_rejected) {
  /* struct<s: utf8, u: dense_union<i: int32, t: utf8>> */
  tl_ab *root = tl_ab_new();
  tl_ab *s = tl_ab_child(root, "u", "s", true);
  tl_ab *u = tl_ab_child(root, "+ud:0,1", "u", true);
  tl_ab *ui = tl_ab_child(u, "i", "i", true);
  tl_ab *ut = tl_ab_child(u, "u", "t", true);
  for (int i = 0; i < 4; i++) {
    tl_ab_str(s, i % 2 ? "xyz" : "pq");
    if (i % 2) {
      tl_ab_int(ui, i);
      tl_ab_union_row(u, 0);
    } else {
      tl_ab_str(ut, "t");
      tl_ab_union_row(u, 1);
    }
    tl_ab_row(root);
  }
  struct ArrowSchema sch;
  struct ArrowArray arr;
  CHECK_EQ(tl_ab_finish(root, &sch, &arr), 0);
  tl_ipc_writer *w;
  char err[256];
  msgs m = {0};
  CHECK_EQ(tl_ipc_writer_new(&w, &sch, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_schema(w, collect, &m), 0);
  tl_ipc_slice sl = {&arr, 0, 4};
  CHECK_EQ(tl_ipc_writer_batch(w, &sl, 1, collect, &m, err, sizeof err), 0);
  tl_ipc_writer_free(w);
  /* Body: s offsets at 0 (20 bytes), s data at 24, u type ids at 40, u
   * offsets at 48; the buffers say so. */
  CHECK(find_pair(m.hdr[1], m.hlen[1], 0, 0) >= 0);  /* s validity */
  CHECK(find_pair(m.hdr[1], m.hlen[1], 0, 20) >= 0); /* s offsets */
  CHECK(find_pair(m.hdr[1], m.hlen[1], 24, 10) >= 0);
  CHECK(find_pair(m.hdr[1], m.hlen[1], 40, 4) >= 0);
  CHECK(find_pair(m.hdr[1], m.hlen[1], 48, 16) >= 0);
  uint8_t body[256];
  size_t blen = m.blen[1];
  CHECK(blen <= sizeof body);
  CHECK_EQ(feed_pair(&m, m.hdr[1], m.hlen[1], m.body[1], blen, err), 0);

  memcpy(body, m.body[1], blen);
  int32_t down = 1; /* offsets 0, 2, 1: decreasing */
  memcpy(body + 8, &down, 4);
  CHECK_EQ(feed_pair(&m, m.hdr[1], m.hlen[1], body, blen, err), TL_EMALFORMED);
  CHECK(strstr(err, "offsets"));

  memcpy(body, m.body[1], blen);
  int32_t beyond = 11; /* the last offset past the 10 bytes of data */
  memcpy(body + 16, &beyond, 4);
  CHECK_EQ(feed_pair(&m, m.hdr[1], m.hlen[1], body, blen, err), TL_EMALFORMED);

  memcpy(body, m.body[1], blen);
  body[40] = 9; /* undeclared type id */
  CHECK_EQ(feed_pair(&m, m.hdr[1], m.hlen[1], body, blen, err), TL_EMALFORMED);
  CHECK(strstr(err, "type id"));

  memcpy(body, m.body[1], blen);
  int32_t off = 5; /* past the child */
  memcpy(body + 48, &off, 4);
  CHECK_EQ(feed_pair(&m, m.hdr[1], m.hlen[1], body, blen, err), TL_EMALFORMED);
  CHECK(strstr(err, "union offset"));

  msgs_free(&m);
  tl_arrow_array_release(&arr);
  tl_arrow_schema_release(&sch);
}

TEST(writer_rejects_what_it_cannot_encode) {
  char err[256];
  tl_ipc_writer *w = NULL;
  struct ArrowSchema v = mk_schema("vu", "view", 0, 0, NULL);
  struct ArrowSchema *kids[] = {&v};
  struct ArrowSchema root = mk_schema("+s", "", 0, 1, kids);
  CHECK_EQ(tl_ipc_writer_new(&w, &root, err, sizeof err), TL_EINVAL);
  CHECK(strstr(err, "view"));
  struct ArrowSchema notroot = mk_schema("i", "x", 0, 0, NULL);
  CHECK_EQ(tl_ipc_writer_new(&w, &notroot, err, sizeof err), TL_EINVAL);
  struct ArrowSchema l = mk_schema("+l", "l", 0, 0, NULL); /* no child */
  kids[0] = &l;
  CHECK_EQ(tl_ipc_writer_new(&w, &root, err, sizeof err), TL_EINVAL);
  CHECK(w == NULL);
  CHECK_U64(tl_ipc_body_size(&root, NULL, 0, 0), UINT64_MAX);
}

TEST(shared_flatbuffer_tables_bounded) {
  /* A Schema whose 1000 fields are one Field table with a 64 KiB name: a
   * small message that would decode to 64 MiB of names. */
  tl__fbb b;
  tl__fbb_init(&b);
  char *name = malloc(65536);
  memset(name, 'x', 65536);
  uint32_t nm = tl__fbb_string(&b, name, 65536);
  free(name);
  int32_t bits = 32;
  uint8_t yes = 1, int_type = 2, schema_type = 1;
  int16_t v5 = 4;
  tl__fbb_start(&b);
  tl__fbb_scalar(&b, 0, &bits, 4);
  tl__fbb_scalar(&b, 1, &yes, 1);
  uint32_t it = tl__fbb_end(&b);
  tl__fbb_start(&b);
  tl__fbb_ref(&b, 0, nm);
  tl__fbb_scalar(&b, 2, &int_type, 1);
  tl__fbb_ref(&b, 3, it);
  uint32_t leaf = tl__fbb_end(&b);
  uint32_t refs[1000];
  for (int i = 0; i < 1000; i++)
    refs[i] = leaf;
  uint32_t fields = tl__fbb_vec_refs(&b, refs, 1000);
  tl__fbb_start(&b);
  tl__fbb_ref(&b, 1, fields);
  uint32_t schema = tl__fbb_end(&b);
  tl__fbb_start(&b);
  tl__fbb_scalar(&b, 0, &v5, 2);
  tl__fbb_scalar(&b, 1, &schema_type, 1);
  tl__fbb_ref(&b, 2, schema);
  uint32_t msg = tl__fbb_end(&b);
  const uint8_t *p;
  size_t n;
  CHECK_EQ(tl__fbb_finish(&b, msg, &p, &n), 0);
  CHECK(n < 80000);
  tl_ipc_reader *r;
  char err[256];
  int kind;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  CHECK_EQ(tl_ipc_reader_feed(r, p, n, NULL, 0, &kind, err, sizeof err),
           TL_EMALFORMED);
  CHECK(strstr(err, "too large"));
  CHECK(tl_ipc_reader_schema(r) == NULL);
  tl_ipc_reader_free(r);
  tl__fbb_free(&b);
}

/* ---- A body in pieces ------------------------------------------------------
 * tl_ipc_reader_feed_parts gets a body as the slices a transport received
 * it in. Whatever the cuts (empty pieces, pieces of a few bytes, cuts
 * inside buffers and inside their padding), it must decode what
 * tl_ipc_reader_feed decodes from the same bytes in one piece. */

/* xorshift64*: the same cuts on every run. */
static uint32_t rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return (uint32_t)((*s * 0x2545F4914F6CDD1DULL) >> 32);
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* Cut points at the edges of each buffer of a message's body (read from
 * its header): the first and last bytes of the buffer, its middle, and
 * the bytes of the padding after it. Returns how many, sorted. */
static size_t buffer_edges(const uint8_t *hdr, size_t hlen, size_t *cut,
                           size_t cap) {
  tl__fbt msg, h, rb;
  tl__fbv bufs;
  uint8_t type = 0;
  CHECK(tl__fbr_root(hdr, hlen, &msg) == NULL);
  CHECK(tl__fbr_scalar(&msg, 1, 1, &type) == NULL);
  CHECK(tl__fbr_table(&msg, 2, &h) == NULL);
  rb = h;
  if (type == TL_IPC_DICTIONARY)
    CHECK(tl__fbr_table(&h, 1, &rb) == NULL);
  else if (type != TL_IPC_BATCH)
    return 0;
  CHECK(tl__fbr_vec(&rb, 2, 16, &bufs) == NULL);
  size_t n = 0;
  for (uint32_t i = 0; i < bufs.len; i++) {
    int64_t off, len;
    memcpy(&off, bufs.p + bufs.pos + 16 * (size_t)i, 8);
    memcpy(&len, bufs.p + bufs.pos + 16 * (size_t)i + 8, 8);
    size_t o = (size_t)off, l = (size_t)len;
    size_t e[] = {o,     o + 1,     o + l / 2, o + l - (l > 0),
                  o + l, o + l + 1, o + l + 3};
    for (size_t k = 0; k < sizeof e / sizeof e[0] && n < cap; k++)
      cut[n++] = e[k];
  }
  qsort(cut, n, sizeof *cut, cmp_size);
  return n;
}

/* How a body is cut. */
enum {
  CUT_TINY,  /* pieces of 0 to 7 bytes */
  CUT_MIXED, /* pieces of any size, some of 0 to 7 bytes */
  CUT_EDGES, /* at the edges of every buffer and in its padding */
  CUT_WHOLE, /* one piece between empty ones */
  CUT_MODES
};

/* A body in pieces. Each piece has its own place in `mem`, at an odd
 * address, between poison bytes: a read past a piece's end gives a wrong
 * value rather than the next piece's bytes. */
typedef struct pieces {
  tl_slice *part;
  size_t n, cap;
  uint8_t *mem;
} pieces;

static void pieces_add(pieces *pc, size_t from, size_t len) {
  if (pc->n == pc->cap) {
    pc->cap = pc->cap ? pc->cap * 2 : 64;
    pc->part = realloc(pc->part, pc->cap * sizeof *pc->part);
    CHECK(pc->part);
  }
  /* The body offset for now; pieces_cut turns it into an address. */
  pc->part[pc->n++] = (tl_slice){(const uint8_t *)(uintptr_t)from, len};
}

/* Cuts the first `keep` bytes of body `i` of `m` into pieces. */
static void pieces_cut(pieces *pc, const msgs *m, int i, size_t keep, int mode,
                       uint64_t *seed) {
  size_t edges[4096], nedges = 0, e = 0, pos = 0;
  memset(pc, 0, sizeof *pc);
  if (mode == CUT_EDGES)
    nedges = buffer_edges(m->hdr[i], m->hlen[i], edges, 4096);
  if (mode == CUT_WHOLE)
    pieces_add(pc, 0, 0);
  while (pos < keep) {
    size_t len;
    if (rnd(seed) % 5 == 0)
      pieces_add(pc, pos, 0);
    if (mode == CUT_TINY) {
      len = rnd(seed) % 8;
    } else if (mode == CUT_MIXED) {
      len = rnd(seed) % 3 ? rnd(seed) % (keep / 4 + 1) : rnd(seed) % 8;
    } else if (mode == CUT_EDGES) {
      while (e < nedges && edges[e] <= pos)
        e++;
      len = e < nedges ? edges[e] - pos : keep - pos;
    } else {
      len = keep;
    }
    if (len > keep - pos)
      len = keep - pos;
    pieces_add(pc, pos, len);
    pos += len;
  }
  if (mode == CUT_WHOLE || rnd(seed) % 2)
    pieces_add(pc, pos, 0);
  size_t total = 16;
  for (size_t k = 0; k < pc->n; k++)
    total += pc->part[k].n + 16;
  pc->mem = malloc(total);
  CHECK(pc->mem);
  memset(pc->mem, 0xA5, total);
  uint8_t *at = pc->mem + 7;
  for (size_t k = 0; k < pc->n; k++) {
    size_t from = (size_t)(uintptr_t)pc->part[k].p, len = pc->part[k].n;
    if (len)
      memcpy(at, m->body[i] + from, len);
    pc->part[k].p = at;
    at += len + 16;
  }
}

static void pieces_free(pieces *pc) {
  free(pc->part);
  free(pc->mem);
  memset(pc, 0, sizeof *pc);
}

/* Both batches hold the same values. */
static void same_batch(const struct ArrowSchema *s,
                       const struct ArrowArray *want,
                       const struct ArrowArray *got, const char *what, int mode,
                       int i) {
  if (got->length != want->length || got->n_children != want->n_children)
    FAILF("%s, cut %d, message %d: %" PRId64 " rows, want %" PRId64, what, mode,
          i, got->length, want->length);
  for (int64_t c = 0; c < s->n_children; c++)
    for (int64_t row = 0; row < want->length; row++) {
      const char *x = cell(s, want, c, row), *y = cell(s, got, c, row);
      if (strcmp(x, y))
        FAILF("%s, cut %d, message %d: column %" PRId64 " row %" PRId64
              ": \"%s\" != \"%s\"",
              what, mode, i, c, row, y, x);
    }
}

/* Messages of a few batches of every type with nulls at every level
 * (strings, lists, structs, maps, unions), one of them empty. */
static void parts_all_types(msgs *m) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(sample_all_types(&s, &a, 300, 3), 0);
  tl_ipc_writer *w;
  char err[256];
  CHECK_EQ(tl_ipc_writer_new(&w, &s, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_schema(w, collect, m), 0);
  tl_ipc_slice sl[] = {{&a, 0, 1}, {&a, 1, 200}, {&a, 201, 99}};
  for (int k = 0; k < 3; k++)
    CHECK_EQ(tl_ipc_writer_batch(w, &sl[k], 1, collect, m, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_batch(w, NULL, 0, collect, m, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_batch(w, &sl[1], 1, collect, m, err, sizeof err), 0);
  tl_ipc_writer_free(w);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

/* Messages of a dictionary-encoded column whose dictionary is replaced
 * midway ("SDBBDBB"). */
static void parts_dictionary(msgs *m) {
  dict_batch b1, b3;
  dict_batch_init(&b1, d1_offs, "ab", 2, idx1, valid1, ks, 4);
  dict_batch_init(&b3, d3_offs, "xyyzzz", 3, idx3, NULL, ks, 4);
  tl_ipc_writer *w;
  char err[256];
  CHECK_EQ(tl_ipc_writer_new(&w, &b1.root, err, sizeof err), 0);
  CHECK_EQ(tl_ipc_writer_schema(w, collect, m), 0);
  tl_ipc_slice sl[] = {{&b1.rootarr, 0, 4},
                       {&b1.rootarr, 1, 3},
                       {&b3.rootarr, 0, 4},
                       {&b3.rootarr, 1, 2}};
  for (int k = 0; k < 4; k++)
    CHECK_EQ(tl_ipc_writer_batch(w, &sl[k], 1, collect, m, err, sizeof err), 0);
  tl_ipc_writer_free(w);
}

/* Feeds `m` whole to one reader and in pieces cut by `mode` to another;
 * the batches must hold the same values. Some batches of the second
 * reader are kept (so that the reader cannot reuse their body) and checked
 * again after each later message and after the reader is gone; the others
 * are released at once, or left in the reader, so that it can. */
static void feed_both(const msgs *m, int mode, uint64_t *seed) {
  tl_ipc_reader *r1, *r2;
  CHECK_EQ(tl_ipc_reader_new(&r1), 0);
  CHECK_EQ(tl_ipc_reader_new(&r2), 0);
  struct ArrowArray want[32], held[32];
  bool kept[32] = {false};
  int nb = 0;
  char err[256];
  for (int i = 0; i < m->n; i++) {
    int k1 = 0, k2 = 0;
    int rc = tl_ipc_reader_feed(r1, m->hdr[i], m->hlen[i], m->body[i],
                                m->blen[i], &k1, err, sizeof err);
    if (rc)
      FAILF("message %d: %s (%s)", i, tl_errname(rc), err);
    pieces pc;
    pieces_cut(&pc, m, i, m->blen[i], mode, seed);
    rc = tl_ipc_reader_feed_parts(r2, m->hdr[i], m->hlen[i], pc.part, pc.n, &k2,
                                  err, sizeof err);
    if (rc)
      FAILF("cut %d, message %d in %zu pieces: %s (%s)", mode, i, pc.n,
            tl_errname(rc), err);
    pieces_free(&pc); /* the batch must not point into the pieces */
    CHECK_EQ(k2, k1);
    if (k1 != TL_IPC_BATCH)
      continue;
    const struct ArrowSchema *s = tl_ipc_reader_schema(r1);
    CHECK_EQ(tl_ipc_reader_take(r1, &want[nb]), 0);
    uint32_t keep = rnd(seed) % 4;
    if (keep < 3) {
      struct ArrowArray got;
      CHECK_EQ(tl_ipc_reader_take(r2, &got), 0);
      same_batch(s, &want[nb], &got, "fed in pieces", mode, i);
      if (keep == 0) {
        held[nb] = got;
        kept[nb] = true;
      } else {
        tl_arrow_array_release(&got);
      }
    }
    nb++;
    for (int j = 0; j < nb; j++)
      if (kept[j])
        same_batch(s, &want[j], &held[j], "kept", mode, i);
  }
  tl_ipc_reader_free(r2);
  const struct ArrowSchema *s = tl_ipc_reader_schema(r1);
  for (int j = 0; j < nb; j++) {
    if (kept[j]) {
      same_batch(s, &want[j], &held[j], "after the reader", mode, j);
      tl_arrow_array_release(&held[j]);
    }
    tl_arrow_array_release(&want[j]);
  }
  tl_ipc_reader_free(r1);
}

TEST(feed_parts_matches_feed_for_any_split) {
  msgs all = {0}, dict = {0};
  parts_all_types(&all);
  parts_dictionary(&dict);
  CHECK_EQ(all.n, 6);
  CHECK_EQ(dict.n, 7);
  CHECK(all.blen[2] > 4096); /* many pieces when cut small */
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  for (int trial = 0; trial < 24; trial++)
    for (int mode = 0; mode < CUT_MODES; mode++) {
      feed_both(&all, mode, &seed);
      feed_both(&dict, mode, &seed);
    }
  msgs_free(&all);
  msgs_free(&dict);
}

/* Message `i` of `m` with its body's buffers laid out in reverse order
 * (the header's offsets rewritten to match): nothing requires a writer to
 * put them in order. `out` gets the message in place of `m`'s. */
static void reverse_buffers(const msgs *m, int i, msgs *out) {
  uint8_t *hdr = malloc(m->hlen[i]), *body = malloc(m->blen[i]);
  CHECK(hdr && body);
  memcpy(hdr, m->hdr[i], m->hlen[i]);
  tl__fbt msg, rb;
  tl__fbv bufs;
  CHECK(tl__fbr_root(hdr, m->hlen[i], &msg) == NULL);
  CHECK(tl__fbr_table(&msg, 2, &rb) == NULL);
  CHECK(tl__fbr_vec(&rb, 2, 16, &bufs) == NULL);
  CHECK(bufs.len > 8);
  size_t at = 0;
  for (uint32_t k = bufs.len; k-- > 0;) {
    uint8_t *e = hdr + bufs.pos + 16 * (size_t)k;
    int64_t off, len, noff = (int64_t)at;
    memcpy(&off, e, 8);
    memcpy(&len, e + 8, 8);
    size_t padded = ((size_t)len + 7) & ~(size_t)7;
    CHECK(at + padded <= m->blen[i]);
    memcpy(body + at, m->body[i] + off, padded);
    memcpy(e, &noff, 8);
    at += padded;
  }
  CHECK_EQ(at, m->blen[i]);
  out->hdr[out->n] = hdr;
  out->hlen[out->n] = m->hlen[i];
  out->body[out->n] = body;
  out->blen[out->n] = m->blen[i];
  out->n++;
}

TEST(feed_parts_reads_buffers_in_any_order) {
  msgs all = {0}, rev = {0};
  parts_all_types(&all);
  /* The Schema, then each batch with its buffers reversed. */
  rev.hdr[0] = malloc(all.hlen[0]);
  memcpy(rev.hdr[0], all.hdr[0], all.hlen[0]);
  rev.hlen[0] = all.hlen[0];
  rev.n = 1;
  for (int i = 1; i < all.n; i++)
    reverse_buffers(&all, i, &rev);
  uint64_t seed = 7;
  for (int mode = 0; mode < CUT_MODES; mode++)
    feed_both(&rev, mode, &seed);
  /* And the values are those of the batches as written. */
  tl_ipc_reader *r1, *r2;
  CHECK_EQ(tl_ipc_reader_new(&r1), 0);
  CHECK_EQ(tl_ipc_reader_new(&r2), 0);
  struct ArrowArray x, y;
  char err[256];
  for (int i = 0; i < all.n; i++) {
    int k1, k2;
    CHECK_EQ(tl_ipc_reader_feed(r1, all.hdr[i], all.hlen[i], all.body[i],
                                all.blen[i], &k1, err, sizeof err),
             0);
    pieces pc;
    pieces_cut(&pc, &rev, i, rev.blen[i], CUT_TINY, &seed);
    CHECK_EQ(tl_ipc_reader_feed_parts(r2, rev.hdr[i], rev.hlen[i], pc.part,
                                      pc.n, &k2, err, sizeof err),
             0);
    pieces_free(&pc);
    if (k1 != TL_IPC_BATCH)
      continue;
    CHECK_EQ(tl_ipc_reader_take(r1, &x), 0);
    CHECK_EQ(tl_ipc_reader_take(r2, &y), 0);
    same_batch(tl_ipc_reader_schema(r1), &x, &y, "reversed", CUT_TINY, i);
    tl_arrow_array_release(&x);
    tl_arrow_array_release(&y);
  }
  tl_ipc_reader_free(r1);
  tl_ipc_reader_free(r2);
  msgs_free(&all);
  msgs_free(&rev);
}

/* Feeds `m` to two readers, the second in pieces: before each message
 * with a body, pieces short of the body by a few bytes to all of it, which
 * must be refused with a reason and change nothing; then the whole body
 * and bytes past it, which must decode as the first reader does. */
static void short_bodies(const msgs *m, uint64_t *seed) {
  char err[256];
  tl_ipc_reader *r1, *r2;
  CHECK_EQ(tl_ipc_reader_new(&r1), 0);
  CHECK_EQ(tl_ipc_reader_new(&r2), 0);
  int kind, checked = 0;
  for (int i = 0; i < m->n; i++) {
    size_t blen = m->blen[i];
    size_t short_by[] = {1, 7, 8, 9, blen / 2, blen};
    for (size_t k = 0; blen >= 16 && k < sizeof short_by / sizeof *short_by;
         k++) {
      pieces pc;
      pieces_cut(&pc, m, i, blen - short_by[k], (int)(k % CUT_MODES), seed);
      err[0] = 0;
      kind = -1;
      int rc = tl_ipc_reader_feed_parts(r2, m->hdr[i], m->hlen[i], pc.part,
                                        pc.n, &kind, err, sizeof err);
      if (rc != TL_EMALFORMED || !strstr(err, "body"))
        FAILF("message %d short by %zu: %s (%s)", i, short_by[k],
              tl_errname(rc), err);
      CHECK_EQ(kind, -1);
      pieces_free(&pc);
      checked++;
    }
    int k1 = 0, k2 = 0;
    CHECK_EQ(tl_ipc_reader_feed(r1, m->hdr[i], m->hlen[i], m->body[i], blen,
                                &k1, err, sizeof err),
             0);
    pieces pc;
    pieces_cut(&pc, m, i, blen, CUT_MIXED, seed);
    tl_slice *part = realloc(pc.part, (pc.n + 1) * sizeof *part);
    CHECK(part);
    pc.part = part;
    pc.part[pc.n++] = (tl_slice){(const uint8_t *)"junk", 4};
    CHECK_EQ(tl_ipc_reader_feed_parts(r2, m->hdr[i], m->hlen[i], pc.part, pc.n,
                                      &k2, err, sizeof err),
             0);
    pieces_free(&pc);
    CHECK_EQ(k2, k1);
    if (k1 == TL_IPC_BATCH) {
      struct ArrowArray want, got;
      CHECK_EQ(tl_ipc_reader_take(r1, &want), 0);
      CHECK_EQ(tl_ipc_reader_take(r2, &got), 0);
      same_batch(tl_ipc_reader_schema(r1), &want, &got, "past the body",
                 CUT_MIXED, i);
      tl_arrow_array_release(&want);
      tl_arrow_array_release(&got);
    }
  }
  CHECK(checked >= 12);
  tl_ipc_reader_free(r1);
  tl_ipc_reader_free(r2);
}

TEST(feed_parts_rejects_a_short_body) {
  msgs all = {0}, dict = {0};
  parts_all_types(&all);
  parts_dictionary(&dict);
  uint64_t seed = 42;
  short_bodies(&all, &seed);
  short_bodies(&dict, &seed);
  /* No piece at all: only a message without a body is taken. */
  tl_ipc_reader *r;
  char err[256];
  int kind = -1;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  CHECK_EQ(tl_ipc_reader_feed_parts(r, all.hdr[0], all.hlen[0], NULL, 0, &kind,
                                    err, sizeof err),
           0);
  CHECK_EQ(kind, TL_IPC_SCHEMA);
  kind = -1;
  CHECK_EQ(tl_ipc_reader_feed_parts(r, all.hdr[2], all.hlen[2], NULL, 0, &kind,
                                    err, sizeof err),
           TL_EMALFORMED);
  CHECK_EQ(kind, -1);
  tl_ipc_reader_free(r);
  msgs_free(&all);
  msgs_free(&dict);
}

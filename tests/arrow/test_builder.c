/* test_builder.c - the tl_ab builder on the shapes of the Flight SQL
 * metadata replies (GetSqlInfo's dense union, GetTables' table_schema
 * bytes, GetXdbcTypeInfo's list<utf8> columns), built, encoded, decoded
 * and compared as text; and the builder's refusals. */
#include "helpers.h"
#include "sample.h"

TL_TEST_MAIN()

TEST(sql_info_dense_union_round_trips) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(sample_sql_info(&s, &a), 0);
  static const char *const want[][2] = {
      {"0", "tracelake"},
      {"1", "0.1.0"},
      {"3", "true"},
      {"507", "4096"},
      {"504", "5"},
      {"508", "[\"SELECT\", \"FROM\"]"},
      {"517", "{1: [2, 3], 4: [], 5: null}"},
      {"509", "[]"},
  };
  CHECK_EQ(a.length, 8);
  for (int r = 0; r < 8; r++) {
    CHECK_STR(cell(&s, &a, 0, r), want[r][0]);
    CHECK_STR(cell(&s, &a, 1, r), want[r][1]);
  }
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  const struct ArrowSchema *d = tl_ipc_reader_schema(rt.r);
  same_schema(&s, d);
  CHECK_STR(d->children[0]->format, "I");
  CHECK_EQ(d->children[0]->flags, 0); /* not null */
  CHECK_STR(d->children[1]->format, "+ud:0,1,2,3,4,5");
  CHECK_STR(d->children[1]->children[5]->name, "int32_to_int32_list_map");
  const struct ArrowSchema *entries = d->children[1]->children[5]->children[0];
  CHECK_STR(entries->name, "entries");
  CHECK_EQ(entries->flags, 0);
  CHECK_STR(entries->children[0]->name, "key");
  CHECK_EQ(entries->children[0]->flags, 0);
  CHECK_STR(entries->children[1]->format, "+l");
  for (int r = 0; r < 8; r++) {
    CHECK_STR(cell(d, &rt.batch, 0, r), want[r][0]);
    CHECK_STR(cell(d, &rt.batch, 1, r), want[r][1]);
  }
  /* Dense union: type ids and offsets, no validity (V5). */
  const struct ArrowArray *u = rt.batch.children[1];
  CHECK_EQ(u->n_buffers, 2);
  CHECK_EQ(u->null_count, 0);
  CHECK_EQ(((const int8_t *)u->buffers[0])[6], 5);
  CHECK_EQ(((const int32_t *)u->buffers[1])[7], 1); /* second string list */
  roundtrip_done(&rt);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(tables_with_table_schema_bytes) {
  /* The schema of one table, as IPC bytes. */
  tl_ab *t = tl_ab_new();
  tl_ab_child(t, "tsn:+00:00", "ts", false);
  tl_ab_child(t, "u", "message", true);
  tl_ab *tags = tl_ab_child(t, "+m", "tags", true);
  tl_ab_child(tags, "u", "key", false);
  tl_ab_child(tags, "u", "value", true);
  struct ArrowSchema ts;
  struct ArrowArray ta;
  CHECK_EQ(tl_ab_finish(t, &ts, &ta), 0);
  tl_bytes sb;
  tl_bytes_init(&sb, 1 << 20);
  char err[256];
  CHECK_EQ(tl_ipc_schema_bytes(&ts, &sb, err, sizeof err), 0);

  tl_ab *r = tl_ab_new();
  tl_ab *cat = tl_ab_child(r, "u", "catalog_name", true);
  tl_ab *sch = tl_ab_child(r, "u", "db_schema_name", true);
  tl_ab *name = tl_ab_child(r, "u", "table_name", false);
  tl_ab *type = tl_ab_child(r, "u", "table_type", false);
  tl_ab *tsc = tl_ab_child(r, "z", "table_schema", false);
  for (int i = 0; i < 2; i++) {
    tl_ab_str(cat, "tracelake");
    tl_ab_str(sch, i ? NULL : "main");
    tl_ab_str(name, i ? "spans" : "logs");
    tl_ab_str(type, "VIEW");
    tl_ab_bin(tsc, sb.p, sb.len);
    tl_ab_row(r);
  }
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  const struct ArrowSchema *d = tl_ipc_reader_schema(rt.r);
  same_values(&s, &a, 0, d, &rt.batch, 0, 2);
  CHECK_STR(cell(d, &rt.batch, 1, 1), "NULL");
  CHECK_STR(cell(d, &rt.batch, 2, 1), "spans");
  /* table_schema decodes to the table's schema. */
  const struct ArrowArray *bin = rt.batch.children[4];
  const int32_t *o = bin->buffers[1];
  const uint8_t *data = bin->buffers[2];
  CHECK_EQ(o[2] - o[1], (int64_t)sb.len);
  tl_ipc_reader *tr;
  CHECK_EQ(tl_ipc_reader_new(&tr), 0);
  CHECK_EQ(tl_ipc_reader_feed_stream(tr, data + o[1], (size_t)(o[2] - o[1]),
                                     NULL, NULL, err, sizeof err),
           0);
  same_schema(&ts, tl_ipc_reader_schema(tr));
  CHECK_STR(tl_ipc_reader_schema(tr)->children[0]->format, "tsn:+00:00");
  tl_ipc_reader_free(tr);
  roundtrip_done(&rt);
  tl_bytes_free(&sb);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
  tl_arrow_array_release(&ta);
  tl_arrow_schema_release(&ts);
}

TEST(xdbc_type_info_list_columns) {
  tl_ab *r = tl_ab_new();
  tl_ab *name = tl_ab_child(r, "u", "type_name", false);
  tl_ab *type = tl_ab_child(r, "i", "data_type", false);
  tl_ab *size = tl_ab_child(r, "i", "column_size", true);
  tl_ab *params = tl_ab_child(r, "+l", "create_params", true);
  tl_ab *item = tl_ab_child(params, "u", "item", false);
  tl_ab *nullable = tl_ab_child(r, "i", "nullable", false);
  tl_ab *unsig = tl_ab_child(r, "b", "unsigned_attribute", true);
  tl_ab_str(name, "DECIMAL");
  tl_ab_int(type, 3);
  tl_ab_int(size, 38);
  tl_ab_str(item, "precision");
  tl_ab_str(item, "scale");
  tl_ab_list_end(params);
  tl_ab_int(nullable, 1);
  tl_ab_bool(unsig, false);
  tl_ab_row(r);
  tl_ab_str(name, "VARCHAR");
  tl_ab_int(type, 12);
  tl_ab_null(size);
  tl_ab_null(params);
  tl_ab_int(nullable, 1);
  tl_ab_null(unsig);
  tl_ab_row(r);
  tl_ab_str(name, "BOOLEAN");
  tl_ab_int(type, 16);
  tl_ab_int(size, 1);
  tl_ab_list_end(params);
  tl_ab_int(nullable, 1);
  tl_ab_null(unsig);
  tl_ab_row(r);
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  const struct ArrowSchema *d = tl_ipc_reader_schema(rt.r);
  CHECK_STR(cell(d, &rt.batch, 3, 0), "[\"precision\", \"scale\"]");
  CHECK_STR(cell(d, &rt.batch, 3, 1), "NULL");
  CHECK_STR(cell(d, &rt.batch, 3, 2), "[]");
  CHECK_STR(cell(d, &rt.batch, 2, 1), "NULL");
  CHECK_STR(cell(d, &rt.batch, 0, 2), "BOOLEAN");
  CHECK_EQ(d->children[3]->children[0]->flags, 0);
  same_values(&s, &a, 0, d, &rt.batch, 0, 3);
  roundtrip_done(&rt);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(explicit_map_entries_and_sparse_union) {
  tl_ab *r = tl_ab_new();
  tl_ab *m = tl_ab_child(r, "+m", "m", true);
  tl_ab *e = tl_ab_child(m, "+s", "entries", false);
  tl_ab *k = tl_ab_child(e, "i", "key", false);
  tl_ab *v = tl_ab_child(e, "u", "value", true);
  tl_ab *u = tl_ab_child(r, "+us:5,9", "u", true);
  tl_ab *ua = tl_ab_child(u, "i", "a", true);
  tl_ab *ub = tl_ab_child(u, "u", "b", true);
  tl_ab_int(k, 1);
  tl_ab_str(v, "one");
  tl_ab_struct_row(e);
  tl_ab_list_end(m);
  tl_ab_str(ub, "bee");
  tl_ab_union_row(u, 9);
  tl_ab_row(r);
  tl_ab_null(m);
  tl_ab_int(ua, 4);
  tl_ab_union_row(u, 5);
  tl_ab_row(r);
  tl_ab_list_end(m);
  tl_ab_null(u);
  tl_ab_row(r);
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  CHECK_EQ(a.children[1]->children[0]->length, 3); /* sparse: every row */
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  const struct ArrowSchema *d = tl_ipc_reader_schema(rt.r);
  CHECK_STR(cell(d, &rt.batch, 0, 0), "{1: \"one\"}");
  CHECK_STR(cell(d, &rt.batch, 0, 1), "NULL");
  CHECK_STR(cell(d, &rt.batch, 0, 2), "{}");
  CHECK_STR(cell(d, &rt.batch, 1, 0), "bee");
  CHECK_STR(cell(d, &rt.batch, 1, 1), "4");
  CHECK_STR(cell(d, &rt.batch, 1, 2), "NULL");
  CHECK_EQ(rt.batch.children[1]->n_buffers, 1);
  roundtrip_done(&rt);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(builder_refuses_misuse) {
  struct ArrowSchema s;
  struct ArrowArray a;
  /* Columns of different lengths. */
  tl_ab *r = tl_ab_new();
  tl_ab *x = tl_ab_child(r, "i", "x", true);
  tl_ab_child(r, "i", "y", true);
  tl_ab_int(x, 1);
  tl_ab_row(r);
  CHECK_EQ(tl_ab_finish(r, &s, &a), TL_EINVAL);
  /* A value of the wrong kind. */
  r = tl_ab_new();
  x = tl_ab_child(r, "u", "x", true);
  tl_ab_int(x, 1);
  tl_ab_row(r);
  CHECK_EQ(tl_ab_finish(r, &s, &a), TL_EINVAL);
  /* An unknown format, and an undeclared union type id. */
  r = tl_ab_new();
  CHECK(tl_ab_child(r, "vu", "x", true) == NULL);
  CHECK_EQ(tl_ab_finish(r, &s, &a), TL_EINVAL);
  r = tl_ab_new();
  tl_ab *u = tl_ab_child(r, "+ud:1", "u", true);
  tl_ab_int(tl_ab_child(u, "i", "i", true), 1);
  tl_ab_union_row(u, 2);
  tl_ab_row(r);
  CHECK_EQ(tl_ab_finish(r, &s, &a), TL_EINVAL);
  /* Values appended after the last list row. */
  r = tl_ab_new();
  tl_ab *l = tl_ab_child(r, "+l", "l", true);
  tl_ab *li = tl_ab_child(l, "i", "item", true);
  tl_ab_int(li, 1);
  tl_ab_list_end(l);
  tl_ab_int(li, 2);
  tl_ab_row(r);
  CHECK_EQ(tl_ab_finish(r, &s, &a), TL_EINVAL);
  /* A fixed-size binary of the wrong size; freeing without finishing. */
  r = tl_ab_new();
  tl_ab_bin(tl_ab_child(r, "w:4", "w", true), "abc", 3);
  tl_ab_free(r);
  tl_ab_free(NULL);
  /* Nothing at all is a valid empty batch. */
  r = tl_ab_new();
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  CHECK_EQ(a.length, 0);
  CHECK_EQ(s.n_children, 0);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(moved_child_outlives_its_parent) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(sample_sql_info(&s, &a), 0);
  roundtrip rt;
  roundtrip_run(&s, &a, &rt);
  /* Move column 1 out of the decoded batch, then release the batch. */
  struct ArrowArray col = *rt.batch.children[1];
  rt.batch.children[1]->release = NULL;
  roundtrip_done(&rt);
  struct ArrowArray *kids[] = {a.children[0], &col};
  const void *bufs[] = {NULL};
  struct ArrowArray view = mk_array(8, 0, 0, 1, bufs, 2, kids);
  CHECK_STR(cell(&s, &view, 1, 6), "{1: [2, 3], 4: [], 5: null}");
  col.release(&col);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

/* test_meta.c - the Flight SQL metadata replies (src/flightsql/meta.c): each
 * reply goes through the IPC encoder and decoder, as over the wire, and its
 * schema is compared with a table written from FlightSql.proto; rows and
 * filters are checked on a real (empty) lake, whose session has the views. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "flightsql/meta.h"
#include "query/lake.h"
#include "query/stream.h"
#include "test.h"

/* ---- Decoding replies ------------------------------------------------- */

typedef struct reply {
  struct ArrowSchema schema;
  struct ArrowArray batch;
} reply;

static int count_batch(void *ctx, const struct ArrowArray *a) {
  (void)a;
  ++*(int *)ctx;
  return 0;
}

/* Encodes a reply as an IPC stream, decodes it back into `out` and
 * releases the originals. */
static void roundtrip(struct ArrowSchema *s, struct ArrowArray *a, reply *out) {
  char err[256] = "";
  tl_bytes b;
  tl_bytes_init(&b, (size_t)64 << 20);
  if (tl_ipc_stream_bytes(s, a, &b, err, sizeof err))
    FAILF("encode: %s", err);
  /* One pass counts the batches (the reader lends each to the callback),
   * a second keeps the last one. */
  tl_ipc_reader *r;
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  int batches = 0;
  if (tl_ipc_reader_feed_stream(r, b.p, b.len, count_batch, &batches, err,
                                sizeof err))
    FAILF("decode: %s", err);
  CHECK_EQ(batches, 1);
  tl_ipc_reader_free(r);
  CHECK_EQ(tl_ipc_reader_new(&r), 0);
  if (tl_ipc_reader_feed_stream(r, b.p, b.len, NULL, NULL, err, sizeof err))
    FAILF("decode: %s", err);
  CHECK(tl_ipc_reader_schema(r) != NULL);
  CHECK_EQ(tl_arrow_schema_copy(tl_ipc_reader_schema(r), &out->schema), 0);
  CHECK_EQ(tl_ipc_reader_take(r, &out->batch), 0);
  tl_ipc_reader_free(r);
  tl_bytes_free(&b);
  tl_arrow_schema_release(s);
  tl_arrow_array_release(a);
}

static void reply_free(reply *r) {
  tl_arrow_schema_release(&r->schema);
  tl_arrow_array_release(&r->batch);
}

/* The fields of a schema, depth first, one line each:
 * "path format null|notnull". */
static void flatten(const struct ArrowSchema *s, const char *prefix,
                    tl_bytes *out) {
  for (int64_t i = 0; i < s->n_children; i++) {
    const struct ArrowSchema *c = s->children[i];
    char path[256], line[512];
    snprintf(path, sizeof path, "%s%s", prefix, c->name ? c->name : "");
    int n = snprintf(line, sizeof line, "%s %s %s\n", path, c->format,
                     (c->flags & ARROW_FLAG_NULLABLE) ? "null" : "notnull");
    CHECK_EQ(tl_bytes_append(out, line, (size_t)n), 0);
    char sub[260];
    snprintf(sub, sizeof sub, "%s.", path);
    flatten(c, sub, out);
  }
}

/* Checks a schema against the expected lines. */
static void check_schema(const struct ArrowSchema *s, const char *const *want,
                         size_t n) {
  tl_bytes got, exp;
  tl_bytes_init(&got, 1 << 20);
  tl_bytes_init(&exp, 1 << 20);
  flatten(s, "", &got);
  for (size_t i = 0; i < n; i++) {
    CHECK_EQ(tl_bytes_append(&exp, want[i], strlen(want[i])), 0);
    CHECK_EQ(tl_bytes_append(&exp, "\n", 1), 0);
  }
  CHECK_EQ(tl_bytes_append(&got, "", 1), 0);
  CHECK_EQ(tl_bytes_append(&exp, "", 1), 0);
  if (strcmp((char *)got.p, (char *)exp.p))
    FAILF("schema differs\n--- got\n%s--- want\n%s", (char *)got.p,
          (char *)exp.p);
  CHECK_STR(s->format, "+s");
  tl_bytes_free(&got);
  tl_bytes_free(&exp);
}

#define CHECK_SCHEMA(s, want)                                                  \
  check_schema(s, want, sizeof(want) / sizeof(*want))

static bool is_null(const struct ArrowArray *a, int64_t i) {
  const uint8_t *v = a->n_buffers > 0 ? a->buffers[0] : NULL;
  if (!v || a->null_count == 0)
    return false;
  i += a->offset;
  return !((v[i >> 3] >> (i & 7)) & 1);
}

/* A utf8 or binary value as a NUL-terminated copy in `buf`. */
static const char *str_at(const struct ArrowArray *a, int64_t i, char *buf,
                          size_t cap) {
  if (is_null(a, i))
    return NULL;
  const int32_t *off = a->buffers[1];
  const char *data = a->buffers[2];
  i += a->offset;
  size_t n = (size_t)(off[i + 1] - off[i]);
  CHECK(n < cap);
  memcpy(buf, data + off[i], n);
  buf[n] = 0;
  return buf;
}

static int64_t int_at(const struct ArrowArray *a, const char *format,
                      int64_t i) {
  i += a->offset;
  switch (format[0]) {
  case 'i':
    return ((const int32_t *)a->buffers[1])[i];
  case 'I':
    return ((const uint32_t *)a->buffers[1])[i];
  case 'l':
    return ((const int64_t *)a->buffers[1])[i];
  case 'C':
    return ((const uint8_t *)a->buffers[1])[i];
  }
  FAILF("not an integer format: %s", format);
}

static bool bool_at(const struct ArrowArray *a, int64_t i) {
  const uint8_t *v = a->buffers[1];
  i += a->offset;
  return (v[i >> 3] >> (i & 7)) & 1;
}

/* The index of the top-level column named `name`. */
static int col_index(const reply *r, const char *name) {
  for (int64_t i = 0; i < r->schema.n_children; i++)
    if (!strcmp(r->schema.children[i]->name, name))
      return (int)i;
  FAILF("no column %s", name);
}

static const char *row_str(const reply *r, const char *col, int64_t row,
                           char *buf, size_t cap) {
  return str_at(r->batch.children[col_index(r, col)], row, buf, cap);
}

static int64_t row_int(const reply *r, const char *col, int64_t row) {
  int i = col_index(r, col);
  CHECK(!is_null(r->batch.children[i], row));
  return int_at(r->batch.children[i], r->schema.children[i]->format, row);
}

static bool row_is_null(const reply *r, const char *col, int64_t row) {
  return is_null(r->batch.children[col_index(r, col)], row);
}

/* ---- A lake with a session ---------------------------------------------- */

static char data[64];
static tl_catalog *cat;
static tl_store *store;
static tl_lake *lake;
static tl_session *session;

static void open_lake(void) {
  snprintf(data, sizeof data, "/tmp/tl-meta-XXXXXX");
  CHECK(mkdtemp(data) != NULL);
  char spec[128], err[512];
  snprintf(spec, sizeof spec, "%s/catalog.db", data);
  if (tl_catalog_open(&cat, spec, err, sizeof err))
    FAILF("catalog: %s", err);
  CHECK_EQ(tl_store_open(&store, data), 0);
  if (tl_lake_open(&lake, cat, store, err, sizeof err))
    FAILF("lake: %s", err);
  if (tl_session_open(&session, lake, INT64_MIN, INT64_MAX, err, sizeof err))
    FAILF("session: %s", err);
}

static void close_lake(void) {
  tl_session_close(session);
  tl_lake_close(lake);
  tl_store_close(store);
  tl_catalog_close(cat);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", data);
  CHECK_EQ(system(cmd), 0);
}

/* ---- Schemas from FlightSql.proto -----------------------------------------
 */

static const char *const catalogs_spec[] = {"catalog_name u notnull"};

static const char *const db_schemas_spec[] = {"catalog_name u null",
                                              "db_schema_name u notnull"};

static const char *const tables_spec[] = {
    "catalog_name u null", "db_schema_name u null", "table_name u notnull",
    "table_type u notnull"};

static const char *const tables_with_schema_spec[] = {
    "catalog_name u null", "db_schema_name u null", "table_name u notnull",
    "table_type u notnull", "table_schema z notnull"};

static const char *const table_types_spec[] = {"table_type u notnull"};

/* key_sequence before key_name: the order of the reference
 * implementations (the .proto comment lists key_name first). */
static const char *const primary_keys_spec[] = {
    "catalog_name u null",   "db_schema_name u null",  "table_name u notnull",
    "column_name u notnull", "key_sequence i notnull", "key_name u null"};

static const char *const foreign_keys_spec[] = {
    "pk_catalog_name u null",  "pk_db_schema_name u null",
    "pk_table_name u notnull", "pk_column_name u notnull",
    "fk_catalog_name u null",  "fk_db_schema_name u null",
    "fk_table_name u notnull", "fk_column_name u notnull",
    "key_sequence i notnull",  "fk_key_name u null",
    "pk_key_name u null",      "update_rule C notnull",
    "delete_rule C notnull"};

static const char *const sql_info_spec[] = {
    "info_name I notnull",
    "value +ud:0,1,2,3,4,5 notnull",
    "value.string_value u notnull",
    "value.bool_value b notnull",
    "value.bigint_value l notnull",
    "value.int32_bitmask i notnull",
    "value.string_list +l notnull",
    "value.string_list.item u null",
    "value.int32_to_int32_list_map +m notnull",
    "value.int32_to_int32_list_map.entries +s notnull",
    "value.int32_to_int32_list_map.entries.key i notnull",
    "value.int32_to_int32_list_map.entries.value +l null",
    "value.int32_to_int32_list_map.entries.value.item i null"};

static const char *const xdbc_spec[] = {
    "type_name u notnull",          "data_type i notnull",
    "column_size i null",           "literal_prefix u null",
    "literal_suffix u null",        "create_params +l null",
    "create_params.item u notnull", "nullable i notnull",
    "case_sensitive b notnull",     "searchable i notnull",
    "unsigned_attribute b null",    "fixed_prec_scale b notnull",
    "auto_increment b null",        "local_type_name u null",
    "minimum_scale i null",         "maximum_scale i null",
    "sql_data_type i notnull",      "datetime_subcode i null",
    "num_prec_radix i null",        "interval_precision i null"};

/* ---- LIKE ------------------------------------------------------------------
 */

TEST(like_patterns) {
  CHECK(tl_meta_like("log_entries", "log%"));
  CHECK(!tl_meta_like("measures", "log%"));
  CHECK(tl_meta_like("measures", "_easures"));
  CHECK(!tl_meta_like("easures", "_easures"));
  CHECK(tl_meta_like("anything", NULL));
  CHECK(tl_meta_like("", "%"));
  CHECK(tl_meta_like("", "%%"));
  CHECK(tl_meta_like("", ""));
  CHECK(!tl_meta_like("a", ""));
  CHECK(!tl_meta_like("", "_"));
  CHECK(tl_meta_like("abc", "a_c"));
  CHECK(!tl_meta_like("ac", "a_c"));
  CHECK(!tl_meta_like("abcd", "a_c"));
  CHECK(tl_meta_like("abc", "%b%"));
  CHECK(tl_meta_like("abc", "%%%c"));
  CHECK(tl_meta_like("abcabd", "%abd")); /* needs backtracking */
  CHECK(tl_meta_like("mississippi", "m%iss%pi"));
  CHECK(tl_meta_like("aXbXc", "a%b%c"));
  CHECK(!tl_meta_like("aXbXd", "a%b%c"));
  CHECK(tl_meta_like("abc", "abc%"));
  CHECK(!tl_meta_like("ab", "abc%"));
  /* Case matters, as in SQL's LIKE. */
  CHECK(!tl_meta_like("LOG", "log"));
  /* Escapes: a backslash makes '_', '%' and itself literal. */
  CHECK(tl_meta_like("log_entries", "log\\_entries"));
  CHECK(!tl_meta_like("logXentries", "log\\_entries"));
  CHECK(tl_meta_like("log_entries", "log\\_%"));
  CHECK(tl_meta_like("50%", "50\\%"));
  CHECK(!tl_meta_like("500", "50\\%"));
  CHECK(tl_meta_like("a\\b", "a\\\\b"));
  CHECK(!tl_meta_like("ab", "a\\\\b"));
  CHECK(tl_meta_like("a\\", "a\\"));   /* a final backslash is itself */
  CHECK(tl_meta_like("xax", "x\\ax")); /* an escaped plain character */
  CHECK(tl_meta_like("a%b_c", "%\\%%\\_%"));
  CHECK(!tl_meta_like("abc", "%\\%%"));
  /* '_' is one character, not one byte. */
  CHECK(tl_meta_like("\xc3\xa9", "_"));            /* é */
  CHECK(tl_meta_like("\xc3\xa9t\xc3\xa9", "_t_")); /* été */
  CHECK(tl_meta_like("\xe6\x97\xa5\xe6\x9c\xac", "__"));
  CHECK(!tl_meta_like("\xe6\x97\xa5\xe6\x9c\xac", "_"));
  CHECK(tl_meta_like("\xe6\x97\xa5\xe6\x9c\xac", "%\xe6\x9c\xac"));
}

/* ---- Catalogs, schemas, table types -----------------------------------------
 */

TEST(catalogs_reply) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_meta_catalogs(&s, &a), 0);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, catalogs_spec);
  CHECK_EQ(r.batch.length, 1);
  char buf[64];
  CHECK_STR(row_str(&r, "catalog_name", 0, buf, sizeof buf), "tracelake");
  reply_free(&r);
  /* The schema alone (GetFlightInfo, GetSchema). */
  CHECK_EQ(tl_meta_catalogs(&s, NULL), 0);
  CHECK_SCHEMA(&s, catalogs_spec);
  tl_arrow_schema_release(&s);
}

static int64_t db_schema_rows(const char *catalog, const char *pattern) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_meta_db_schemas(catalog, pattern, &s, &a), 0);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, db_schemas_spec);
  int64_t n = r.batch.length;
  char buf[64];
  for (int64_t i = 0; i < n; i++) {
    CHECK_STR(row_str(&r, "catalog_name", i, buf, sizeof buf), "tracelake");
    CHECK_STR(row_str(&r, "db_schema_name", i, buf, sizeof buf), "main");
  }
  reply_free(&r);
  return n;
}

TEST(db_schemas_filter_by_catalog_and_pattern) {
  CHECK_EQ(db_schema_rows(NULL, NULL), 1);
  CHECK_EQ(db_schema_rows("tracelake", NULL), 1);
  CHECK_EQ(db_schema_rows("tracelake", "%"), 1);
  CHECK_EQ(db_schema_rows("tracelake", "ma_n"), 1);
  CHECK_EQ(db_schema_rows(NULL, "m%"), 1);
  CHECK_EQ(db_schema_rows("other", NULL), 0);
  CHECK_EQ(db_schema_rows("", NULL), 0); /* "without a catalog": none */
  CHECK_EQ(db_schema_rows("TRACELAKE", NULL), 0);
  CHECK_EQ(db_schema_rows(NULL, "x%"), 0);
  CHECK_EQ(db_schema_rows(NULL, "mai"), 0);
  struct ArrowSchema s;
  CHECK_EQ(tl_meta_db_schemas(NULL, NULL, &s, NULL), 0);
  CHECK_SCHEMA(&s, db_schemas_spec);
  tl_arrow_schema_release(&s);
}

TEST(table_types_sorted) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_meta_table_types(&s, &a), 0);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, table_types_spec);
  CHECK_EQ(r.batch.length, 2);
  char buf[64];
  CHECK_STR(row_str(&r, "table_type", 0, buf, sizeof buf), "TABLE");
  CHECK_STR(row_str(&r, "table_type", 1, buf, sizeof buf), "VIEW");
  reply_free(&r);
}

/* ---- Tables ---------------------------------------------------------------
 */

/* The table names of a GetTables reply, comma-separated, checking the
 * schema, the catalog and schema columns and the order on the way. */
static void table_names(const char *catalog, const char *schema_pattern,
                        const char *pattern, const char *const *types,
                        size_t ntypes, char *out, size_t cap) {
  struct ArrowSchema s;
  struct ArrowArray a;
  char err[512] = "";
  if (tl_meta_tables(session, catalog, schema_pattern, pattern, types, ntypes,
                     false, &s, &a, err, sizeof err))
    FAILF("tables: %s", err);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, tables_spec);
  CHECK_EQ(r.schema.n_children, 4);
  out[0] = 0;
  char prev[256] = "", name[256], buf[256];
  for (int64_t i = 0; i < r.batch.length; i++) {
    CHECK_STR(row_str(&r, "catalog_name", i, buf, sizeof buf), "tracelake");
    CHECK_STR(row_str(&r, "db_schema_name", i, buf, sizeof buf), "main");
    const char *type = row_str(&r, "table_type", i, buf, sizeof buf);
    CHECK(type && (!strcmp(type, "VIEW") || !strcmp(type, "TABLE")));
    CHECK(row_str(&r, "table_name", i, name, sizeof name) != NULL);
    CHECK(strcmp(prev, name) < 0); /* sorted by name */
    snprintf(prev, sizeof prev, "%s", name);
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s%s", len ? "," : "", name);
  }
  reply_free(&r);
}

TEST(tables_without_schema_have_four_columns) {
  open_lake();
  struct ArrowSchema s;
  char err[256];
  /* The schema alone needs no session. */
  CHECK_EQ(tl_meta_tables(NULL, NULL, NULL, NULL, NULL, 0, false, &s, NULL, err,
                          sizeof err),
           0);
  CHECK_SCHEMA(&s, tables_spec);
  tl_arrow_schema_release(&s);
  CHECK_EQ(tl_meta_tables(NULL, NULL, NULL, NULL, NULL, 0, true, &s, NULL, err,
                          sizeof err),
           0);
  CHECK_SCHEMA(&s, tables_with_schema_spec);
  tl_arrow_schema_release(&s);
  /* Every view of the session is listed. */
  char names[4096];
  table_names(NULL, NULL, NULL, NULL, 0, names, sizeof names);
  fprintf(stderr, "tables: %s\n", names);
  static const char *const views[] = {"blocks", "log_entries", "measures",
                                      "processes", "streams"};
  for (size_t i = 0; i < sizeof views / sizeof *views; i++) {
    char want[64];
    snprintf(want, sizeof want, ",%s,", views[i]);
    char padded[4200];
    snprintf(padded, sizeof padded, ",%s,", names);
    if (!strstr(padded, want))
      FAILF("%s missing from %s", views[i], names);
  }
  close_lake();
}

TEST(tables_filters) {
  open_lake();
  char all[4096], got[4096];
  table_names(NULL, NULL, NULL, NULL, 0, all, sizeof all);
  table_names(NULL, NULL, "%", NULL, 0, got, sizeof got);
  CHECK_STR(got, all);
  table_names("tracelake", "main", "%", NULL, 0, got, sizeof got);
  CHECK_STR(got, all);
  table_names(NULL, "m%", NULL, NULL, 0, got, sizeof got);
  CHECK_STR(got, all);
  table_names(NULL, NULL, "log%", NULL, 0, got, sizeof got);
  CHECK_STR(got, "log_entries");
  table_names(NULL, NULL, "_easures", NULL, 0, got, sizeof got);
  CHECK_STR(got, "measures");
  table_names(NULL, NULL, "log\\_entries", NULL, 0, got, sizeof got);
  CHECK_STR(got, "log_entries");
  table_names(NULL, NULL, "log\\_%", NULL, 0, got, sizeof got);
  CHECK_STR(got, "log_entries");
  table_names(NULL, NULL, "log\\%", NULL, 0, got, sizeof got);
  CHECK_STR(got, "");
  table_names(NULL, NULL, "%s", NULL, 0, got, sizeof got);
  CHECK(strstr(got, "measures") && strstr(got, "log_entries") &&
        strstr(got, "processes"));
  /* Catalog and schema filters. */
  table_names("other", NULL, NULL, NULL, 0, got, sizeof got);
  CHECK_STR(got, "");
  table_names("", NULL, NULL, NULL, 0, got, sizeof got);
  CHECK_STR(got, "");
  table_names(NULL, "public", NULL, NULL, 0, got, sizeof got);
  CHECK_STR(got, "");
  /* Table types. */
  static const char *const view[] = {"VIEW"};
  static const char *const view_lower[] = {"view"};
  static const char *const table[] = {"TABLE"};
  static const char *const both[] = {"SYSTEM TABLE", "TABLE", "VIEW"};
  static const char *const system[] = {"SYSTEM TABLE"};
  char views[4096], tables[4096];
  table_names(NULL, NULL, NULL, view, 1, views, sizeof views);
  table_names(NULL, NULL, NULL, table, 1, tables, sizeof tables);
  CHECK(strstr(views, "log_entries") != NULL);
  CHECK(strstr(tables, "log_entries") == NULL);
  table_names(NULL, NULL, NULL, view_lower, 1, got, sizeof got);
  CHECK_STR(got, views);
  table_names(NULL, NULL, NULL, both, 3, got, sizeof got);
  CHECK_STR(got, all);
  table_names(NULL, NULL, NULL, system, 1, got, sizeof got);
  CHECK_STR(got, "");
  table_names(NULL, NULL, "log%", table, 1, got, sizeof got);
  CHECK_STR(got, "");
  close_lake();
}

/* The column names of `SELECT * FROM name`, comma-separated. */
static void query_columns(const char *name, char *out, size_t cap) {
  char sql[300], err[512];
  snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", name);
  tl_query *q;
  if (tl_query_prepare(&q, session, sql, err, sizeof err))
    FAILF("prepare %s: %s", sql, err);
  struct ArrowSchema s;
  if (tl_query_schema(q, &s, err, sizeof err))
    FAILF("schema %s: %s", sql, err);
  out[0] = 0;
  for (int64_t i = 0; i < s.n_children; i++) {
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s%s", i ? "," : "", s.children[i]->name);
  }
  tl_arrow_schema_release(&s);
  tl_query_close(q);
}

TEST(tables_with_schema_decode_to_the_views_columns) {
  open_lake();
  struct ArrowSchema s;
  struct ArrowArray a;
  char err[512] = "";
  if (tl_meta_tables(session, "tracelake", NULL, NULL, NULL, 0, true, &s, &a,
                     err, sizeof err))
    FAILF("tables: %s", err);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, tables_with_schema_spec);
  CHECK_EQ(r.schema.n_children, 5);
  CHECK(r.batch.length >= 5);
  const struct ArrowArray *bin = r.batch.children[4];
  bool saw_log = false;
  for (int64_t i = 0; i < r.batch.length; i++) {
    char name[256];
    CHECK(row_str(&r, "table_name", i, name, sizeof name) != NULL);
    CHECK(!is_null(bin, i));
    const int32_t *off = bin->buffers[1];
    const uint8_t *p = (const uint8_t *)bin->buffers[2] + off[bin->offset + i];
    size_t n = (size_t)(off[bin->offset + i + 1] - off[bin->offset + i]);
    CHECK(n > 0);
    tl_ipc_reader *rd;
    CHECK_EQ(tl_ipc_reader_new(&rd), 0);
    int batches = 0;
    if (tl_ipc_reader_feed_stream(rd, p, n, count_batch, &batches, err,
                                  sizeof err))
      FAILF("table_schema of %s: %s", name, err);
    CHECK_EQ(batches, 0);
    const struct ArrowSchema *ts = tl_ipc_reader_schema(rd);
    CHECK(ts != NULL);
    char got[4096] = "", want[4096];
    for (int64_t j = 0; j < ts->n_children; j++) {
      size_t len = strlen(got);
      snprintf(got + len, sizeof got - len, "%s%s", j ? "," : "",
               ts->children[j]->name);
    }
    query_columns(name, want, sizeof want);
    if (strcmp(got, want))
      FAILF("%s: table_schema has %s, the view %s", name, got, want);
    if (!strcmp(name, "log_entries")) {
      saw_log = true;
      CHECK(strstr(got, "msg") && strstr(got, "time") && strstr(got, "level"));
    }
    tl_ipc_reader_free(rd);
  }
  CHECK(saw_log);
  reply_free(&r);
  close_lake();
}

/* ---- Keys -------------------------------------------------------------------
 */

TEST(keys_replies_are_empty_with_the_spec_schema) {
  struct ArrowSchema s;
  struct ArrowArray a;
  reply r;
  CHECK_EQ(tl_meta_keys(TL_META_PRIMARY_KEYS, &s, &a), 0);
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, primary_keys_spec);
  CHECK_EQ(r.batch.length, 0);
  reply_free(&r);
  CHECK_EQ(tl_meta_keys(TL_META_FOREIGN_KEYS, &s, &a), 0);
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, foreign_keys_spec);
  CHECK_EQ(r.batch.length, 0);
  reply_free(&r);
  CHECK_EQ(tl_meta_keys(TL_META_FOREIGN_KEYS, &s, NULL), 0);
  CHECK_SCHEMA(&s, foreign_keys_spec);
  tl_arrow_schema_release(&s);
  CHECK_EQ(tl_meta_keys(7, &s, &a), TL_EINVAL);
}

/* ---- SqlInfo ----------------------------------------------------------------
 */

/* Union members, from the schema in FlightSql.proto. */
enum { M_STRING, M_BOOL, M_BIGINT, M_INT32, M_LIST, M_MAP };

/* Every id of the SqlInfo enum with the member its comment gives ("a
 * UTF-8 string", "a boolean", "an int64", "an int32 ..."/"bitmask", "a
 * UTF-8 string list", "a map"). */
static int expected_member(uint32_t id) {
  if (id <= 2 || id == 6 || id == 7 || id == 504 || id == 513 || id == 514 ||
      (id >= 529 && id <= 531))
    return M_STRING;
  if (id == 8 || id == 100 || id == 101 || id == 503 || id == 505 ||
      id == 507 || id == 522 || id == 525 || id == 526 || id == 528 ||
      (id >= 533 && id <= 535) || id == 538 || id == 540 || id == 562 ||
      id == 564 || (id >= 567 && id <= 571))
    return M_INT32;
  if ((id >= 541 && id <= 555) || (id >= 557 && id <= 561))
    return M_BIGINT;
  if (id >= 508 && id <= 512)
    return M_LIST;
  if (id == 517)
    return M_MAP;
  return M_BOOL;
}

/* The ids of the specification, ascending. */
static size_t spec_ids(uint32_t *out) {
  size_t n = 0;
  for (uint32_t id = 0; id <= 11; id++)
    out[n++] = id;
  out[n++] = 100;
  out[n++] = 101;
  for (uint32_t id = 500; id <= 576; id++)
    out[n++] = id;
  return n;
}

typedef struct union_view {
  const struct ArrowArray *u;
  const int8_t *types;
  const int32_t *offsets;
} union_view;

static union_view value_column(const reply *r) {
  union_view v;
  v.u = r->batch.children[col_index(r, "value")];
  v.types = v.u->buffers[0];
  v.offsets = v.u->buffers[1];
  return v;
}

/* The string list of a row (comma-separated in `out`). */
static void list_at(const union_view *v, int64_t row, char *out, size_t cap) {
  const struct ArrowArray *list = v->u->children[M_LIST];
  int64_t i = v->offsets[v->u->offset + row] + list->offset;
  const int32_t *off = list->buffers[1];
  const struct ArrowArray *items = list->children[0];
  out[0] = 0;
  for (int32_t k = off[i]; k < off[i + 1]; k++) {
    char buf[256];
    const char *s = str_at(items, k, buf, sizeof buf);
    CHECK(s != NULL);
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s%s", len ? "," : "", s);
  }
}

static const tl_meta_server server = {"tracelake", "0.9.1-test", "18.0.0"};

TEST(sql_info_without_ids_lists_every_spec_id) {
  open_lake();
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_meta_sql_info(lake, &server, NULL, 0, &s, &a), 0);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, sql_info_spec);
  uint32_t ids[128];
  size_t n = spec_ids(ids);
  CHECK_EQ(r.batch.length, (int64_t)n);
  union_view v = value_column(&r);
  for (size_t i = 0; i < n; i++) {
    uint32_t id = (uint32_t)row_int(&r, "info_name", (int64_t)i);
    CHECK_EQ(id, ids[i]);
    int m = v.types[v.u->offset + (int64_t)i];
    if (m != expected_member(id))
      FAILF("id %u: member %d, want %d", id, m, expected_member(id));
    /* Values are present except the Substrait versions ("null if
     * Substrait is not supported"). */
    const struct ArrowArray *child = v.u->children[m];
    int64_t at = v.offsets[v.u->offset + (int64_t)i];
    CHECK_EQ(is_null(child, at), id == 6 || id == 7);
  }
  /* A few values. */
  char buf[256];
  CHECK_STR(str_at(v.u->children[M_STRING], v.offsets[0], buf, sizeof buf),
            "tracelake");
  CHECK_STR(str_at(v.u->children[M_STRING], v.offsets[1], buf, sizeof buf),
            "0.9.1-test");
  CHECK_STR(str_at(v.u->children[M_STRING], v.offsets[2], buf, sizeof buf),
            "18.0.0");
  reply_free(&r);
  /* The schema alone needs neither the lake nor the server. */
  CHECK_EQ(tl_meta_sql_info(NULL, NULL, NULL, 0, &s, NULL), 0);
  CHECK_SCHEMA(&s, sql_info_spec);
  tl_arrow_schema_release(&s);
  close_lake();
}

/* SqlSupportsConvert values. */
enum { CONVERT_INTEGER = 7, CONVERT_TIMESTAMP = 16, CONVERT_VARCHAR = 19 };

TEST(sql_info_with_ids_in_order_asked) {
  open_lake();
  static const uint32_t ask[] = {508, 0,   3,   99999, 517, 504, 507,
                                 509, 503, 541, 8,     6,   10};
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(
      tl_meta_sql_info(lake, &server, ask, sizeof ask / sizeof *ask, &s, &a),
      0);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, sql_info_spec);
  static const uint32_t want[] = {508, 0,   3, 517, 504, 507, 509,
                                  503, 541, 8, 6,   10}; /* 99999 left out */
  CHECK_EQ(r.batch.length, (int64_t)(sizeof want / sizeof *want));
  union_view v = value_column(&r);
  for (int64_t i = 0; i < r.batch.length; i++) {
    CHECK_EQ(row_int(&r, "info_name", i), want[i]);
    CHECK_EQ(v.types[v.u->offset + i], expected_member(want[i]));
  }
  const struct ArrowArray *str = v.u->children[M_STRING];
  const struct ArrowArray *bools = v.u->children[M_BOOL];
  const struct ArrowArray *i32 = v.u->children[M_INT32];
  const struct ArrowArray *i64 = v.u->children[M_BIGINT];
  char buf[256];
  /* 508 SQL_KEYWORDS: DuckDB's keywords, in upper case. */
  static char list[1 << 16], padded[(1 << 16) + 2];
  list_at(&v, 0, list, sizeof list);
  snprintf(padded, sizeof padded, ",%s,", list);
  CHECK(strstr(padded, ",SELECT,") && strstr(padded, ",FROM,"));
  CHECK(!strstr(padded, ",select,"));
  /* 0 FLIGHT_SQL_SERVER_NAME */
  CHECK_STR(str_at(str, v.offsets[1], buf, sizeof buf), "tracelake");
  /* 3 FLIGHT_SQL_SERVER_READ_ONLY */
  CHECK(bool_at(bools, v.offsets[2]));
  /* 517 SQL_SUPPORTS_CONVERT: VARCHAR casts to INTEGER and TIMESTAMP,
   * INTEGER to VARCHAR but not to TIMESTAMP. */
  const struct ArrowArray *map = v.u->children[M_MAP];
  int64_t mi = v.offsets[v.u->offset + 3] + map->offset;
  const int32_t *moff = map->buffers[1];
  const struct ArrowArray *entries = map->children[0];
  const struct ArrowArray *keys = entries->children[0];
  const struct ArrowArray *lists = entries->children[1];
  const int32_t *loff = lists->buffers[1];
  const struct ArrowArray *to = lists->children[0];
  bool varchar_to_int = false, varchar_to_ts = false, int_to_varchar = false,
       int_to_ts = false;
  int64_t prev_key = -1;
  CHECK(moff[mi + 1] > moff[mi]);
  for (int32_t e = moff[mi]; e < moff[mi + 1]; e++) {
    int64_t key = int_at(keys, "i", e);
    CHECK(key > prev_key); /* one entry per source type */
    prev_key = key;
    int64_t li = e + lists->offset;
    for (int32_t k = loff[li]; k < loff[li + 1]; k++) {
      int64_t t = int_at(to, "i", k);
      varchar_to_int |= key == CONVERT_VARCHAR && t == CONVERT_INTEGER;
      varchar_to_ts |= key == CONVERT_VARCHAR && t == CONVERT_TIMESTAMP;
      int_to_varchar |= key == CONVERT_INTEGER && t == CONVERT_VARCHAR;
      int_to_ts |= key == CONVERT_INTEGER && t == CONVERT_TIMESTAMP;
    }
  }
  CHECK(varchar_to_int && varchar_to_ts && int_to_varchar && !int_to_ts);
  /* 504 SQL_IDENTIFIER_QUOTE_CHAR */
  CHECK_STR(str_at(str, v.offsets[4], buf, sizeof buf), "\"");
  /* 507 SQL_NULL_ORDERING: SQL_NULLS_SORTED_AT_END */
  CHECK_EQ(int_at(i32, "i", v.offsets[5]), 3);
  /* 509 SQL_NUMERIC_FUNCTIONS */
  list_at(&v, 6, list, sizeof list);
  snprintf(padded, sizeof padded, ",%s,", list);
  CHECK(strstr(padded, ",abs,") && strstr(padded, ",sqrt,"));
  /* 503 SQL_IDENTIFIER_CASE: SQL_CASE_SENSITIVITY_CASE_INSENSITIVE */
  CHECK_EQ(int_at(i32, "i", v.offsets[7]), 1);
  /* 541 SQL_MAX_BINARY_LITERAL_LENGTH: no limit */
  CHECK_EQ(int_at(i64, "l", v.offsets[8]), 0);
  /* 8 FLIGHT_SQL_SERVER_TRANSACTION: SQL_SUPPORTED_TRANSACTION_NONE */
  CHECK_EQ(int_at(i32, "i", v.offsets[9]), 0);
  /* 6 FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION: null */
  CHECK(is_null(str, v.offsets[10]));
  /* 10 FLIGHT_SQL_SERVER_BULK_INGESTION */
  CHECK(!bool_at(bools, v.offsets[11]));
  reply_free(&r);
  /* Only unknown ids: an empty reply. */
  static const uint32_t unknown[] = {12, 499, 577, 10000};
  CHECK_EQ(tl_meta_sql_info(lake, &server, unknown, 4, &s, &a), 0);
  roundtrip(&s, &a, &r);
  CHECK_EQ(r.batch.length, 0);
  reply_free(&r);
  close_lake();
}

/* ---- XdbcTypeInfo
 * ------------------------------------------------------------ */

/* XdbcDataType values. */
enum {
  XDBC_DECIMAL = 3,
  XDBC_INTEGER = 4,
  XDBC_SMALLINT = 5,
  XDBC_REAL = 7,
  XDBC_DOUBLE = 8,
  XDBC_DATETIME = 9,
  XDBC_INTERVAL = 10,
  XDBC_VARCHAR = 12,
  XDBC_DATE = 91,
  XDBC_TIME = 92,
  XDBC_TIMESTAMP = 93,
  XDBC_VARBINARY = -3,
  XDBC_BIGINT = -5,
  XDBC_TINYINT = -6,
  XDBC_BIT = -7,
};

static reply xdbc(bool has_type, int32_t type) {
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_meta_xdbc_type_info(has_type, type, &s, &a), 0);
  reply r;
  roundtrip(&s, &a, &r);
  CHECK_SCHEMA(&r.schema, xdbc_spec);
  return r;
}

static int64_t find_type(const reply *r, const char *name) {
  char buf[64];
  for (int64_t i = 0; i < r->batch.length; i++)
    if (!strcmp(row_str(r, "type_name", i, buf, sizeof buf), name))
      return i;
  FAILF("no type %s", name);
}

TEST(xdbc_type_info_rows_and_filter) {
  reply r = xdbc(false, 0);
  static const struct {
    const char *name;
    int32_t type, sql_type;
  } want[] = {{"BOOLEAN", XDBC_BIT, XDBC_BIT},
              {"TINYINT", XDBC_TINYINT, XDBC_TINYINT},
              {"SMALLINT", XDBC_SMALLINT, XDBC_SMALLINT},
              {"INTEGER", XDBC_INTEGER, XDBC_INTEGER},
              {"BIGINT", XDBC_BIGINT, XDBC_BIGINT},
              {"FLOAT", XDBC_REAL, XDBC_REAL},
              {"DOUBLE", XDBC_DOUBLE, XDBC_DOUBLE},
              {"DECIMAL", XDBC_DECIMAL, XDBC_DECIMAL},
              {"VARCHAR", XDBC_VARCHAR, XDBC_VARCHAR},
              {"BLOB", XDBC_VARBINARY, XDBC_VARBINARY},
              {"DATE", XDBC_DATE, XDBC_DATETIME},
              {"TIME", XDBC_TIME, XDBC_DATETIME},
              {"TIMESTAMP", XDBC_TIMESTAMP, XDBC_DATETIME},
              {"INTERVAL", XDBC_INTERVAL, XDBC_INTERVAL}};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    int64_t row = find_type(&r, want[i].name);
    CHECK_EQ(row_int(&r, "data_type", row), want[i].type);
    CHECK_EQ(row_int(&r, "sql_data_type", row), want[i].sql_type);
    CHECK_EQ(row_int(&r, "nullable", row), 1); /* NULLABILITY_NULLABLE */
  }
  /* Ordered by data_type, then type_name. */
  char prev[64] = "", name[64];
  int64_t prev_type = INT64_MIN;
  for (int64_t i = 0; i < r.batch.length; i++) {
    int64_t t = row_int(&r, "data_type", i);
    CHECK(row_str(&r, "type_name", i, name, sizeof name) != NULL);
    CHECK(t > prev_type || (t == prev_type && strcmp(prev, name) < 0));
    prev_type = t;
    snprintf(prev, sizeof prev, "%s", name);
  }
  char buf[64];
  /* Dates and times: generic DATETIME with a subcode. */
  int64_t date = find_type(&r, "DATE");
  CHECK_EQ(row_int(&r, "datetime_subcode", date), 1); /* XDBC_SUBCODE_DATE */
  CHECK_EQ(row_int(&r, "column_size", date), 10);
  CHECK_EQ(row_int(&r, "datetime_subcode", find_type(&r, "TIMESTAMP")), 3);
  /* Numbers: radix, no subcode. */
  int64_t integer = find_type(&r, "INTEGER");
  CHECK_EQ(row_int(&r, "num_prec_radix", integer), 10);
  CHECK(row_is_null(&r, "datetime_subcode", integer));
  CHECK(row_is_null(&r, "create_params", integer));
  CHECK_EQ(row_int(&r, "num_prec_radix", find_type(&r, "DOUBLE")), 2);
  /* DECIMAL takes a precision and a scale. */
  int64_t dec = find_type(&r, "DECIMAL");
  const struct ArrowArray *params =
      r.batch.children[col_index(&r, "create_params")];
  const int32_t *off = params->buffers[1];
  int64_t pi = dec + params->offset;
  CHECK_EQ(off[pi + 1] - off[pi], 2);
  CHECK_STR(str_at(params->children[0], off[pi], buf, sizeof buf), "precision");
  CHECK_STR(str_at(params->children[0], off[pi] + 1, buf, sizeof buf), "scale");
  CHECK_EQ(row_int(&r, "maximum_scale", dec), 38);
  /* Text is case sensitive and searchable with LIKE. */
  int64_t varchar = find_type(&r, "VARCHAR");
  CHECK_STR(row_str(&r, "literal_prefix", varchar, buf, sizeof buf), "'");
  CHECK_EQ(row_int(&r, "searchable", varchar), 3); /* SEARCHABLE_FULL */
  CHECK(bool_at(r.batch.children[col_index(&r, "case_sensitive")], varchar));
  reply_free(&r);

  /* Filtering by data_type. */
  r = xdbc(true, XDBC_INTEGER);
  CHECK(r.batch.length >= 1);
  for (int64_t i = 0; i < r.batch.length; i++)
    CHECK_EQ(row_int(&r, "data_type", i), XDBC_INTEGER);
  find_type(&r, "INTEGER");
  reply_free(&r);
  r = xdbc(true, XDBC_VARCHAR);
  CHECK_EQ(r.batch.length, 1);
  CHECK_STR(row_str(&r, "type_name", 0, buf, sizeof buf), "VARCHAR");
  reply_free(&r);
  r = xdbc(true, XDBC_TIMESTAMP);
  CHECK(r.batch.length >= 1);
  find_type(&r, "TIMESTAMP");
  reply_free(&r);
  r = xdbc(true, -999);
  CHECK_EQ(r.batch.length, 0);
  reply_free(&r);
  struct ArrowSchema s;
  CHECK_EQ(tl_meta_xdbc_type_info(false, 0, &s, NULL), 0);
  CHECK_SCHEMA(&s, xdbc_spec);
  tl_arrow_schema_release(&s);
}

TL_TEST_MAIN()

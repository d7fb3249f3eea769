/* test_stream.c - statements of a query session as streams of Arrow record
 * batches (src/query/stream.c) over a real lake: events recorded with
 * libtracelake, ingested, materialized, then read back as Arrow arrays with
 * exact schemas, counts and values; parameters bound from hand-made Arrow
 * batches; errors, limits and cancellation. TL_TEST_CATALOG=pg runs the
 * same tests on PostgreSQL. */
#define TL_TARGET "tests::stream"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "query/stream.h"
#include "test.h"
#include "tracelake/tracelake.h"

/* ---- A lake in a temp dir (as in test_query.c) -------------------------- */

static char data[128];
static tl_catalog *cat;
static tl_store *store;
static tl_ingest *ig;
static tl_lake *lake;

static char pg_admin_uri[512], pg_db[64]; /* to drop the database after */

static void catalog_spec(char *out, size_t cap) {
  const char *which = getenv("TL_TEST_CATALOG");
  if (which && !strcmp(which, "pg")) {
    char path[512], uri[512] = "";
    snprintf(path, sizeof path, "%s/uri", getenv("TL_TEST_PG_DIR"));
    FILE *f = fopen(path, "r");
    CHECK(f && fgets(uri, sizeof uri, f));
    fclose(f);
    uri[strcspn(uri, "\n")] = 0;
    char db[64], cmd[1024];
    snprintf(db, sizeof db, "tl_stream_%d_%u", (int)getpid(),
             (unsigned)tl_ticks() & 0xffffff);
    snprintf(cmd, sizeof cmd, "psql -q '%s' -c 'CREATE DATABASE %s' >/dev/null",
             uri, db);
    CHECK_EQ(system(cmd), 0);
    snprintf(pg_admin_uri, sizeof pg_admin_uri, "%s", uri);
    snprintf(pg_db, sizeof pg_db, "%s", db);
    char *slash = strrchr(uri, '/');
    CHECK(slash != NULL);
    snprintf(slash + 1, sizeof uri - (size_t)(slash + 1 - uri), "%s", db);
    snprintf(out, cap, "%s", uri);
  } else {
    snprintf(out, cap, "%s/catalog.db", data);
  }
}

static void setup(void) {
  snprintf(data, sizeof data, "/tmp/tl-stream-XXXXXX");
  CHECK(mkdtemp(data) != NULL);
  char spec[600], err[512];
  catalog_spec(spec, sizeof spec);
  CHECK_EQ(tl_catalog_open(&cat, spec, err, sizeof err), 0);
  CHECK_EQ(tl_store_open(&store, data), 0);
  CHECK_EQ(tl_ingest_open(&ig, cat, store), 0);
  if (tl_lake_open(&lake, cat, store, err, sizeof err))
    FAILF("lake: %s", err);
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.level = TL_LEVEL_TRACE;
  cfg.sink = tl_ingest_sink;
  cfg.sink_ctx = ig;
  cfg.properties = "service=stream-test";
  CHECK_EQ(tl_init(&cfg), 0);
}

static void teardown(void) {
  tl_shutdown();
  tl_lake_close(lake);
  tl_ingest_close(ig);
  tl_store_close(store);
  tl_catalog_close(cat);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf %s", data);
  CHECK_EQ(system(cmd), 0);
  if (pg_db[0]) {
    snprintf(cmd, sizeof cmd,
             "psql -q '%s' -c 'DROP DATABASE IF EXISTS %s' >/dev/null",
             pg_admin_uri, pg_db);
    CHECK_EQ(system(cmd), 0);
  }
}

static tl_session *open_session(void) {
  tl_session *s;
  char err[1024];
  if (tl_session_open(&s, lake, INT64_MIN, INT64_MAX, err, sizeof err))
    FAILF("session: %s", err);
  return s;
}

/* The CSV output of tl_session_print (malloc'd). */
static char *print_csv(tl_session *s, const char *sql) {
  char *buf = NULL, err[1024];
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (tl_session_print(s, sql, TL_FORMAT_CSV, f, err, sizeof err))
    FAILF("%s: %s", sql, err);
  fclose(f);
  return buf;
}

/* N rows of log entries at levels WARN (every 7th) and INFO. */
#define NROWS 5000
static void log_rows(void) {
  for (int i = 0; i < NROWS; i++) {
    if (i % 7 == 0)
      TL_WARN("row %d", i);
    else
      TL_INFO("row %d", i);
  }
  tl_flush();
}
#define NWARN ((NROWS + 6) / 7)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- Reading Arrow arrays ------------------------------------------------ */

static bool valid(const struct ArrowArray *a, int64_t j) {
  const uint8_t *v = a->buffers[0];
  return !v || (v[j >> 3] >> (j & 7) & 1);
}

/* Index of row `row` of column `col` in the child's buffers, or -1 if null. */
static int64_t at(const struct ArrowArray *root, int col, int64_t row) {
  CHECK(col < root->n_children && row < root->length);
  const struct ArrowArray *c = root->children[col];
  int64_t j = c->offset + root->offset + row;
  CHECK(j < c->offset + c->length);
  return valid(c, j) ? j : -1;
}

static int64_t int_at(const struct ArrowArray *root, int col, int64_t row,
                      char fmt) {
  int64_t j = at(root, col, row);
  CHECK(j >= 0);
  const void *p = root->children[col]->buffers[1];
  switch (fmt) {
  case 'i':
    return ((const int32_t *)p)[j];
  case 'l':
    return ((const int64_t *)p)[j];
  default:
    FAILF("format %c", fmt);
  }
}

/* A utf8 value copied into out (NULL for a null). */
static const char *str_at(const struct ArrowArray *root, int col, int64_t row,
                          char *out, size_t cap) {
  int64_t j = at(root, col, row);
  if (j < 0)
    return NULL;
  const struct ArrowArray *c = root->children[col];
  const int32_t *o = c->buffers[1];
  int32_t n = o[j + 1] - o[j];
  CHECK(n >= 0 && (size_t)n < cap);
  memcpy(out, (const char *)c->buffers[2] + o[j], (size_t)n);
  out[n] = 0;
  return out;
}

static tl_query *prepare(tl_session *s, const char *sql) {
  tl_query *q;
  char err[1024];
  if (tl_query_prepare(&q, s, sql, err, sizeof err))
    FAILF("prepare %s: %s", sql, err);
  return q;
}

static void execute(tl_query *q, int64_t limit) {
  char err[1024];
  int rc = tl_query_execute(q, limit, NULL, NULL, err, sizeof err);
  if (rc)
    FAILF("execute: %s (%d)", err, rc);
}

/* The single int64 value of a one-row result. */
static int64_t single_int(tl_query *q) {
  char err[1024];
  struct ArrowArray a;
  execute(q, -1);
  int rc = tl_query_next(q, &a, err, sizeof err);
  if (rc != 1)
    FAILF("next: %d %s", rc, err);
  CHECK_EQ(a.length, 1);
  int64_t v = int_at(&a, 0, 0, 'l');
  a.release(&a);
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), 0);
  return v;
}

/* ---- Hand-made parameter batches ----------------------------------------
 * The C Data Interface structs over static buffers (the Arrow builder is
 * another module's): a root struct of up to 4 columns. */

typedef struct batch {
  struct ArrowSchema schema, cols[4], *col_ptrs[4];
  struct ArrowArray array, arrays[4], *array_ptrs[4];
  const void *root_buffers[1];
  const void *buffers[4][3];
} batch;

static void no_release_schema(struct ArrowSchema *s) {
  s->release = NULL;
}

static void no_release_array(struct ArrowArray *a) {
  a->release = NULL;
}

static void batch_init(batch *b, int64_t length) {
  memset(b, 0, sizeof *b);
  b->schema = (struct ArrowSchema){.format = "+s",
                                   .name = "",
                                   .children = b->col_ptrs,
                                   .release = no_release_schema};
  b->array = (struct ArrowArray){.length = length,
                                 .n_buffers = 1,
                                 .buffers = b->root_buffers,
                                 .children = b->array_ptrs,
                                 .release = no_release_array};
}

/* Adds a column of `length` values from `offset` in its buffers. */
static void batch_col(batch *b, const char *format, int64_t length,
                      int64_t offset, const void *validity, const void *b1,
                      const void *b2) {
  int i = (int)b->schema.n_children++;
  b->array.n_children++;
  b->cols[i] = (struct ArrowSchema){.format = format,
                                    .name = "p",
                                    .flags = ARROW_FLAG_NULLABLE,
                                    .release = no_release_schema};
  b->col_ptrs[i] = &b->cols[i];
  b->buffers[i][0] = validity;
  b->buffers[i][1] = b1;
  b->buffers[i][2] = b2;
  bool var = !strcmp(format, "u") || !strcmp(format, "z");
  b->arrays[i] = (struct ArrowArray){.length = length,
                                     .null_count = -1,
                                     .offset = offset,
                                     .n_buffers = !strcmp(format, "n") ? 0
                                                  : var                ? 3
                                                                       : 2,
                                     .buffers = b->buffers[i],
                                     .release = no_release_array};
  b->array_ptrs[i] = &b->arrays[i];
}

/* count(*) of `sql` with one parameter bound from row `row` of a one-column
 * batch. */
static int64_t count_with(tl_session *s, const char *sql, const char *format,
                          int64_t length, int64_t offset, const void *validity,
                          const void *b1, const void *b2, int64_t row) {
  tl_query *q = prepare(s, sql);
  batch b;
  batch_init(&b, length);
  batch_col(&b, format, length, offset, validity, b1, b2);
  char err[1024];
  if (tl_query_bind(q, &b.schema, &b.array, row, err, sizeof err))
    FAILF("bind %s: %s", format, err);
  int64_t n = single_int(q);
  tl_query_close(q);
  return n;
}

/* ---- Tests -----------------------------------------------------------------
 */

static void check_field(const struct ArrowSchema *s, int i, const char *name,
                        const char *format) {
  CHECK(i < s->n_children);
  CHECK_STR(s->children[i]->name, name);
  CHECK_STR(s->children[i]->format, format);
}

/* A list of STRUCT(key VARCHAR, value VARCHAR), as the properties columns. */
static void check_properties(const struct ArrowSchema *s, int i,
                             const char *name) {
  check_field(s, i, name, "+l");
  const struct ArrowSchema *l = s->children[i];
  CHECK_EQ(l->n_children, 1);
  CHECK_STR(l->children[0]->format, "+s");
  CHECK_EQ(l->children[0]->n_children, 2);
  CHECK_STR(l->children[0]->children[0]->name, "key");
  CHECK_STR(l->children[0]->children[0]->format, "u");
  CHECK_STR(l->children[0]->children[1]->name, "value");
  CHECK_STR(l->children[0]->children[1]->format, "u");
}

static void check_log_entries_schema(const struct ArrowSchema *s) {
  CHECK_STR(s->format, "+s");
  CHECK_EQ(s->n_children, 13);
  check_field(s, 0, "process_id", "u");
  check_field(s, 1, "stream_id", "u");
  check_field(s, 2, "block_id", "u");
  check_field(s, 3, "insert_time", "tsn:+00:00");
  check_field(s, 4, "exe", "u");
  check_field(s, 5, "username", "u");
  check_field(s, 6, "computer", "u");
  check_field(s, 7, "time", "tsn:+00:00");
  check_field(s, 8, "target", "u");
  check_field(s, 9, "level", "i");
  check_field(s, 10, "msg", "u");
  check_properties(s, 11, "properties");
  check_properties(s, 12, "process_properties");
}

TEST(log_entries_schema_is_utc_timestamps_and_utf8) {
  setup();
  log_rows();
  tl_session *s = open_session();
  tl_query *q = prepare(s, "SELECT * FROM log_entries");
  char err[1024];
  struct ArrowSchema sc;
  CHECK_EQ(tl_query_schema(q, &sc, err, sizeof err), 0);
  check_log_entries_schema(&sc);
  sc.release(&sc);
  CHECK(sc.release == NULL);
  /* After execution, the schema of the arrays themselves: the same. */
  execute(q, -1);
  CHECK_EQ(tl_query_schema(q, &sc, err, sizeof err), 0);
  check_log_entries_schema(&sc);
  struct ArrowArray a;
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), 1);
  CHECK_EQ(a.n_children, 13);
  for (int i = 0; i < 13; i++) {
    const char *f = sc.children[i]->format;
    int64_t want = !strcmp(f, "u") ? 3 : 2; /* "+l": validity, offsets */
    CHECK_EQ(a.children[i]->n_buffers, want);
    CHECK(a.children[i]->length >= a.length);
  }
  /* Times are UTC nanoseconds of this run. */
  int64_t t = int_at(&a, 7, 0, 'l');
  CHECK(t > tl_wall_ns() - 3600 * 1000000000ll && t <= tl_wall_ns());
  a.release(&a);
  sc.release(&sc);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

TEST(streams_every_row_of_a_multi_chunk_result) {
  setup();
  log_rows();
  tl_session *s = open_session();
  char *want = print_csv(s, "SELECT count(*) AS n, sum(level) AS total FROM "
                            "log_entries WHERE target = 'tests::stream'");
  char want2[64];
  snprintf(want2, sizeof want2, "n,total\n%d,%d\n", NROWS,
           NWARN * 3 + (NROWS - NWARN) * 4);
  CHECK_STR(want, want2);
  free(want);
  tl_query *q = prepare(s, "SELECT level, msg FROM log_entries WHERE target = "
                           "'tests::stream'");
  execute(q, -1);
  static bool seen[NROWS];
  memset(seen, 0, sizeof seen);
  int64_t rows = 0, total = 0, chunks = 0;
  struct ArrowArray a;
  char err[1024], msg[64];
  int rc;
  while ((rc = tl_query_next(q, &a, err, sizeof err)) == 1) {
    chunks++;
    for (int64_t r = 0; r < a.length; r++) {
      int64_t level = int_at(&a, 0, r, 'i');
      CHECK(str_at(&a, 1, r, msg, sizeof msg));
      int i;
      CHECK_EQ(sscanf(msg, "row %d", &i), 1);
      CHECK(i >= 0 && i < NROWS && !seen[i]);
      seen[i] = true;
      CHECK_EQ(level, i % 7 == 0 ? 3 : 4);
      total += level;
    }
    rows += a.length;
    a.release(&a);
  }
  CHECK_EQ(rc, 0);
  CHECK_EQ(rows, NROWS);
  CHECK_EQ(total, NWARN * 3 + (NROWS - NWARN) * 4);
  CHECK(chunks >= 2);
  /* The end stays the end. */
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), 0);
  /* Executing again runs the statement again. */
  execute(q, -1);
  rows = 0;
  while ((rc = tl_query_next(q, &a, err, sizeof err)) == 1) {
    rows += a.length;
    a.release(&a);
  }
  CHECK_EQ(rc, 0);
  CHECK_EQ(rows, NROWS);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

TEST(limit_caps_rows) {
  setup();
  log_rows();
  tl_session *s = open_session();
  tl_query *q = prepare(s, "SELECT level, msg FROM log_entries WHERE target = "
                           "'tests::stream'");
  static const int64_t limits[] = {3000, 1, 2048, 0, NROWS + 10};
  for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
    execute(q, limits[k]);
    int64_t rows = 0;
    struct ArrowArray a;
    char err[1024], msg[64];
    int rc;
    while ((rc = tl_query_next(q, &a, err, sizeof err)) == 1) {
      CHECK(a.length > 0);
      /* The last row of a cut chunk is still readable. */
      CHECK(str_at(&a, 1, a.length - 1, msg, sizeof msg));
      rows += a.length;
      a.release(&a);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(rows, limits[k] < NROWS ? limits[k] : NROWS);
  }
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

TEST(parameters_bind_and_rebind) {
  setup();
  log_rows();
  tl_session *s = open_session();
  const char *sql = "SELECT count(*) FROM log_entries WHERE target = "
                    "'tests::stream' AND level <= ?";
  tl_query *q = prepare(s, sql);
  CHECK_EQ(tl_query_nparams(q), 1);
  char err[1024];
  struct ArrowSchema ps;
  CHECK_EQ(tl_query_parameter_schema(q, &ps, err, sizeof err), 0);
  CHECK_STR(ps.format, "+s");
  CHECK_EQ(ps.n_children, 1);
  CHECK_STR(ps.children[0]->name, "1");
  CHECK_STR(ps.children[0]->format, "i"); /* level is INTEGER */
  ps.release(&ps);
  /* A client sends int64; DuckDB casts. Rebinding changes the count. */
  static const int64_t levels[] = {3, 4, 2};
  batch b;
  batch_init(&b, 3);
  batch_col(&b, "l", 3, 0, NULL, levels, NULL);
  CHECK_EQ(tl_query_bind(q, &b.schema, &b.array, 0, err, sizeof err), 0);
  CHECK_EQ(single_int(q), NWARN);
  CHECK_EQ(tl_query_bind(q, &b.schema, &b.array, 1, err, sizeof err), 0);
  CHECK_EQ(single_int(q), NROWS);
  CHECK_EQ(tl_query_bind(q, &b.schema, &b.array, 2, err, sizeof err), 0);
  CHECK_EQ(single_int(q), 0);
  /* The wrong number of columns. */
  batch_col(&b, "l", 3, 0, NULL, levels, NULL);
  CHECK_EQ(tl_query_bind(q, &b.schema, &b.array, 0, err, sizeof err),
           TL_EINVAL);
  CHECK_STR(err, "the statement has 1 parameter, the batch 2 columns");
  /* An unsupported type is named. */
  batch_init(&b, 1);
  batch_col(&b, "tin", 1, 0, NULL, levels, NULL);
  CHECK_EQ(tl_query_bind(q, &b.schema, &b.array, 0, err, sizeof err),
           TL_EINVAL);
  CHECK(strstr(err, "'tin'") != NULL);
  tl_query_close(q);

  /* Offsets and validity: the array's offset applies, then the root's. */
  static const uint8_t valid_bits[] = {0xfd}; /* value 1 is null */
  CHECK_EQ(count_with(s, sql, "l", 2, 1, NULL, levels, NULL, 0), NROWS);
  CHECK_EQ(count_with(s, sql, "l", 3, 0, valid_bits, levels, NULL, 1), 0);
  CHECK_EQ(count_with(s, sql, "n", 1, 0, NULL, NULL, NULL, 0), 0);
  /* Other types, cast by DuckDB to the parameter's. */
  static const int8_t i8[] = {3};
  static const uint64_t u64[] = {4};
  static const double f64[] = {3.0};
  static const int32_t offs[] = {0, 1, 2};
  static const char digits[] = "34";
  CHECK_EQ(count_with(s, sql, "c", 1, 0, NULL, i8, NULL, 0), NWARN);
  CHECK_EQ(count_with(s, sql, "L", 1, 0, NULL, u64, NULL, 0), NROWS);
  CHECK_EQ(count_with(s, sql, "g", 1, 0, NULL, f64, NULL, 0), NWARN);
  CHECK_EQ(count_with(s, sql, "u", 2, 0, NULL, offs, digits, 1), NROWS);
  /* 4.50 as decimal(10,2): a 128-bit little-endian integer. */
  static const int64_t dec[2] = {450, 0};
  CHECK_EQ(count_with(s, sql, "d:10,2", 1, 0, NULL, dec, NULL, 0), NROWS);
  static const char msg[] = "row 42";
  static const int32_t msg_offs[] = {0, 6};
  CHECK_EQ(count_with(s,
                      "SELECT count(*) FROM log_entries WHERE msg = ? AND "
                      "target = 'tests::stream'",
                      "u", 1, 0, NULL, msg_offs, msg, 0),
           1);
  /* Timestamps of any unit, with or without a zone: UTC instants. */
  int64_t ns[] = {tl_wall_ns() - 3600 * 1000000000ll};
  int64_t us[] = {ns[0] / 1000}, sec[] = {ns[0] / 1000000000 + 7200};
  const char *tsql = "SELECT count(*) FROM log_entries WHERE target = "
                     "'tests::stream' AND time > ?";
  CHECK_EQ(count_with(s, tsql, "tsn:+00:00", 1, 0, NULL, ns, NULL, 0), NROWS);
  CHECK_EQ(count_with(s, tsql, "tsu:", 1, 0, NULL, us, NULL, 0), NROWS);
  CHECK_EQ(count_with(s, tsql, "tss:UTC", 1, 0, NULL, sec, NULL, 0), 0);
  int32_t today[] = {(int32_t)(tl_wall_ns() / 86400000000000ll)};
  CHECK_EQ(count_with(s,
                      "SELECT count(*) FROM log_entries WHERE target = "
                      "'tests::stream' AND time::DATE + 1 > ?",
                      "tdD", 1, 0, NULL, today, NULL, 0),
           NROWS);
  tl_session_close(s);
  teardown();
}

TEST(parameter_schema_and_result_schema_after_binding) {
  setup();
  tl_session *s = open_session();
  tl_query *q = prepare(s, "SELECT ? + 1 AS a, ?::VARCHAR AS b");
  CHECK_EQ(tl_query_nparams(q), 2);
  char err[1024];
  struct ArrowSchema sc;
  /* DuckDB cannot tell these types before binding: null fields. */
  CHECK_EQ(tl_query_parameter_schema(q, &sc, err, sizeof err), 0);
  CHECK_EQ(sc.n_children, 2);
  check_field(&sc, 0, "1", "n");
  check_field(&sc, 1, "2", "n");
  sc.release(&sc);
  /* Nor the result's columns: no fields until executed. */
  CHECK_EQ(tl_query_schema(q, &sc, err, sizeof err), 0);
  CHECK_STR(sc.format, "+s");
  CHECK_EQ(sc.n_children, 0);
  sc.release(&sc);
  /* Bound and executed: the result's own types. */
  static const int64_t v[] = {41};
  static const int32_t offs[] = {0, 1};
  batch b;
  batch_init(&b, 1);
  batch_col(&b, "l", 1, 0, NULL, v, NULL);
  batch_col(&b, "u", 1, 0, NULL, offs, "x");
  CHECK_EQ(tl_query_bind(q, &b.schema, &b.array, 0, err, sizeof err), 0);
  execute(q, -1);
  CHECK_EQ(tl_query_schema(q, &sc, err, sizeof err), 0);
  check_field(&sc, 0, "a", "l");
  check_field(&sc, 1, "b", "u");
  sc.release(&sc);
  struct ArrowArray a;
  char out[16];
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), 1);
  CHECK_EQ(int_at(&a, 0, 0, 'l'), 42);
  CHECK_STR(str_at(&a, 1, 0, out, sizeof out), "x");
  a.release(&a);
  tl_query_close(q);
  /* Types DuckDB infers from the context; named parameters keep names. */
  q = prepare(s, "SELECT count(*) FROM log_entries WHERE msg = $m AND time > "
                 "$t AND level = $m2");
  CHECK_EQ(tl_query_parameter_schema(q, &sc, err, sizeof err), 0);
  CHECK_EQ(sc.n_children, 3);
  check_field(&sc, 0, "m", "u");
  check_field(&sc, 1, "t", "tsn:+00:00");
  check_field(&sc, 2, "m2", "i");
  sc.release(&sc);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

TEST(errors_carry_duckdb_messages) {
  setup();
  log_rows();
  tl_session *s = open_session();
  tl_query *q;
  char err[1024];
  CHECK_EQ(tl_query_prepare(&q, s, "SELEC 1", err, sizeof err), TL_EINVAL);
  CHECK(strstr(err, "syntax error") != NULL);
  CHECK_EQ(tl_query_prepare(&q, s, "SELECT * FROM nope", err, sizeof err),
           TL_EINVAL);
  CHECK(strstr(err, "nope") != NULL);
  /* At execution. */
  q = prepare(s, "SELECT error('boom')");
  CHECK_EQ(tl_query_execute(q, -1, NULL, NULL, err, sizeof err), TL_EINVAL);
  CHECK(strstr(err, "boom") != NULL);
  struct ArrowArray a;
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), 0);
  tl_query_close(q);
  /* In the middle of the stream, after rows were returned. */
  q = prepare(s, "SELECT CASE WHEN i = 3000000 THEN error('late') ELSE i END "
                 "AS i FROM range(4000000) t(i)");
  execute(q, -1);
  int64_t rows = 0;
  int rc;
  while ((rc = tl_query_next(q, &a, err, sizeof err)) == 1) {
    rows += a.length;
    a.release(&a);
  }
  CHECK_EQ(rc, TL_EINVAL);
  CHECK(strstr(err, "late") != NULL);
  CHECK(rows > 0 && rows < 3000000);
  tl_query_close(q);
  /* The session goes on. */
  q = prepare(s, "SELECT count(*) FROM log_entries");
  CHECK_EQ(single_int(q), NROWS);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

TEST(refused_statements) {
  setup();
  tl_session *s = open_session();
  static const char *const refused[] = {
      "COPY (SELECT 1) TO '/tmp/tl-stream-copy.csv'",
      "ATTACH ':memory:' AS x",
      "SET threads = 1",
      "CREATE TABLE t (a INTEGER)",
      "INSTALL httpfs",
      "LOAD parquet",
      "CHECKPOINT"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    tl_query *q = NULL;
    char err[1024];
    if (tl_query_prepare(&q, s, refused[i], err, sizeof err) != TL_EINVAL)
      FAILF("%s was not refused", refused[i]);
    CHECK(q == NULL);
    /* DuckDB itself refuses a COPY to a file outside the lake first. */
    if (!strstr(err, "read-only") &&
        !(i == 0 && strstr(err, "disabled by configuration")))
      FAILF("%s: %s", refused[i], err);
  }
  tl_query *q;
  char err[1024];
  CHECK_EQ(tl_query_prepare(&q, s, "SELECT 1; SELECT 2", err, sizeof err),
           TL_EINVAL);
  CHECK(strstr(err, "one statement") != NULL);
  CHECK(access("/tmp/tl-stream-copy.csv", F_OK) != 0);
  tl_session_close(s);
  teardown();
}

typedef struct interrupter {
  tl_query *q;
  double at;
} interrupter;

static void *interrupt_later(void *arg) {
  interrupter *it = arg;
  usleep(300 * 1000);
  it->at = now_s();
  tl_query_interrupt(it->q);
  return NULL;
}

TEST(interrupt_from_another_thread) {
  setup();
  tl_session *s = open_session();
  char err[1024];
  /* During execution (a blocking aggregate). */
  tl_query *q = prepare(s, "SELECT count(*) FROM range(10000000000)");
  interrupter it = {q, 0};
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, interrupt_later, &it), 0);
  int rc = tl_query_execute(q, -1, NULL, NULL, err, sizeof err);
  double done = now_s();
  pthread_join(t, NULL);
  CHECK_EQ(rc, TL_ECANCELED);
  CHECK(done - it.at < 1.0);
  struct ArrowArray a;
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), TL_ECANCELED);
  CHECK_EQ(tl_query_execute(q, -1, NULL, NULL, err, sizeof err), TL_ECANCELED);
  tl_query_close(q);
  /* During a fetch: a million rows fill DuckDB's stream buffer (execution
   * returns), then the rest are far apart. */
  q = prepare(s, "SELECT i FROM range(10000000000) t(i) WHERE i < 1000000 OR "
                 "i % 1000000007 = 1000000006");
  execute(q, -1);
  it = (interrupter){q, 0};
  CHECK_EQ(pthread_create(&t, NULL, interrupt_later, &it), 0);
  int64_t rows = 0;
  while ((rc = tl_query_next(q, &a, err, sizeof err)) == 1) {
    rows += a.length;
    a.release(&a);
  }
  done = now_s();
  CHECK(rows <= 1000000);
  pthread_join(t, NULL);
  CHECK_EQ(rc, TL_ECANCELED);
  CHECK(done - it.at < 1.0);
  tl_query_close(q);
  /* Interrupting a finished query is harmless, for it and the session. */
  q = prepare(s, "SELECT 7::BIGINT");
  CHECK_EQ(single_int(q), 7);
  tl_query_interrupt(q);
  tl_query_close(q);
  q = prepare(s, "SELECT 8::BIGINT");
  CHECK_EQ(single_int(q), 8);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

TEST(another_statement_of_the_session_ends_the_stream) {
  setup();
  tl_session *s = open_session();
  tl_query *q = prepare(s, "SELECT i FROM range(100000000) t(i)");
  execute(q, -1);
  struct ArrowArray a;
  char err[1024];
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), 1);
  a.release(&a);
  /* DuckDB runs one statement at a time per connection. */
  tl_query *other = prepare(s, "SELECT 5::BIGINT");
  CHECK_EQ(single_int(other), 5);
  tl_query_close(other);
  int rc = tl_query_next(q, &a, err, sizeof err);
  CHECK_EQ(rc, TL_EINVAL);
  CHECK(strstr(err, "another statement") != NULL);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

static bool stop_after(void *ctx) {
  return ++*(int *)ctx > 20;
}

TEST(should_stop_cancels) {
  setup();
  tl_session *s = open_session();
  char err[1024];
  tl_query *q = prepare(s, "SELECT count(*) FROM range(10000000000)");
  int polls = 0;
  double t0 = now_s();
  CHECK_EQ(tl_query_execute(q, -1, stop_after, &polls, err, sizeof err),
           TL_ECANCELED);
  CHECK(now_s() - t0 < 1.0);
  CHECK(polls > 20);
  tl_query_close(q);
  q = prepare(s, "SELECT 9::BIGINT");
  CHECK_EQ(single_int(q), 9);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

typedef struct table_seen {
  char names[16][64];
  char types[16][8];
  int n;
  bool log_entries_ok, processes_ok;
} table_seen;

static int on_table(void *ctx, const char *name, const char *type,
                    const struct ArrowSchema *schema) {
  table_seen *t = ctx;
  CHECK(t->n < 16);
  snprintf(t->names[t->n], sizeof t->names[t->n], "%s", name);
  snprintf(t->types[t->n], sizeof t->types[t->n], "%s", type);
  t->n++;
  CHECK_STR(schema->format, "+s");
  if (!strcmp(name, "log_entries")) {
    check_log_entries_schema(schema);
    t->log_entries_ok = true;
  }
  if (!strcmp(name, "processes")) {
    check_field(schema, 0, "process_id", "u");
    check_field(schema, 8, "start_time", "tsn:+00:00");
    check_properties(schema, 12, "properties");
    t->processes_ok = true;
  }
  return 0;
}

TEST(session_tables_lists_the_views) {
  setup();
  log_rows();
  tl_session *s = open_session();
  table_seen t;
  memset(&t, 0, sizeof t);
  char err[1024];
  if (tl_session_tables(s, on_table, &t, err, sizeof err))
    FAILF("tables: %s", err);
  static const char *const want[] = {"blocks",    "log_entries", "measures",
                                     "processes", "query_log",   "streams"};
  CHECK_EQ(t.n, 6);
  for (int i = 0; i < 6; i++) {
    CHECK_STR(t.names[i], want[i]);
    CHECK_STR(t.types[i], "VIEW");
  }
  CHECK(t.log_entries_ok && t.processes_ok);
  tl_session_close(s);
  teardown();
}

TEST(view_instance_applies) {
  setup();
  log_rows();
  tl_session *s = open_session();
  tl_query *q = prepare(s, "SELECT process_id FROM processes WHERE exe LIKE "
                           "'%test_stream'");
  execute(q, -1);
  struct ArrowArray a;
  char err[1024], pid[64], sql[256];
  CHECK_EQ(tl_query_next(q, &a, err, sizeof err), 1);
  CHECK(str_at(&a, 0, 0, pid, sizeof pid));
  a.release(&a);
  tl_query_close(q);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM view_instance('log_entries', '%s') WHERE "
           "target = 'tests::stream'",
           pid);
  q = prepare(s, sql);
  CHECK_EQ(single_int(q), NROWS);
  tl_query_close(q);
  tl_session_close(s);
  teardown();
}

TEST(keywords_and_functions) {
  setup();
  const char *k = tl_sql_keywords();
  CHECK(k && *k);
  bool select = false;
  int n = 0;
  for (const char *p = k; *p; p += strlen(p) + 1, n++)
    select |= !strcasecmp(p, "select");
  CHECK(select && n > 100);
  CHECK(tl_sql_keywords() == k); /* computed once */
  static const char *const want[4] = {"abs", "lower", "date_trunc", "version"};
  for (int kind = 0; kind < 4; kind++) {
    const char *f = tl_sql_functions(lake, kind);
    bool found = false;
    for (const char *p = f; *p; p += strlen(p) + 1)
      found |= !strcmp(p, want[kind]);
    if (!found)
      FAILF("kind %d lacks %s", kind, want[kind]);
    CHECK(tl_sql_functions(lake, kind) == f);
  }
  CHECK_STR(tl_sql_functions(lake, 4), "");
  teardown();
}

static void *stream_all(void *arg) {
  int64_t *rows = arg;
  tl_session *s = open_session();
  tl_query *q = prepare(s, "SELECT msg FROM log_entries WHERE target = "
                           "'tests::stream'");
  execute(q, -1);
  struct ArrowArray a;
  char err[1024];
  int rc;
  while ((rc = tl_query_next(q, &a, err, sizeof err)) == 1) {
    *rows += a.length;
    a.release(&a);
  }
  CHECK_EQ(rc, 0);
  tl_query_close(q);
  tl_session_close(s);
  return NULL;
}

TEST(sessions_stream_in_parallel) {
  setup();
  log_rows();
  pthread_t t[3];
  int64_t rows[3] = {0};
  for (int i = 0; i < 3; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, stream_all, &rows[i]), 0);
  for (int i = 0; i < 3; i++) {
    pthread_join(t[i], NULL);
    CHECK_EQ(rows[i], NROWS);
  }
  teardown();
}

TL_TEST_MAIN()

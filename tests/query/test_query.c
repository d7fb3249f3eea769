/* test_query.c - the lakehouse end to end: events recorded with
 * libtracelake are ingested into a real lake (blobs + catalog), materialized
 * as Parquet, and come back through the SQL views with exact counts and
 * values; time ranges prune partitions; the engine refuses to touch server
 * files. TL_TEST_CATALOG=pg runs the same tests on PostgreSQL. */
#define TL_TARGET "tests::query"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "duckdb.h" /* to write a partition of the older format */
#include "ingest/ingest.h"
#include "query/lake.h"
#include "test.h"
#include "tracelake/tracelake.h"

static char data[128];
static tl_catalog *cat;
static tl_store *store;
static tl_ingest *ig;
static tl_lake *lake;

static char pg_admin_uri[512], pg_db[64]; /* to drop the database after */

static void catalog_spec(char *out, size_t cap) {
  const char *which = getenv("TL_TEST_CATALOG");
  if (which && !strcmp(which, "pg")) {
    /* A fresh database on the fixture's server. */
    char path[512], uri[512] = "";
    snprintf(path, sizeof path, "%s/uri", getenv("TL_TEST_PG_DIR"));
    FILE *f = fopen(path, "r");
    CHECK(f && fgets(uri, sizeof uri, f));
    fclose(f);
    uri[strcspn(uri, "\n")] = 0;
    char db[64], cmd[1024];
    snprintf(db, sizeof db, "tl_query_%d_%u", (int)getpid(),
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

/* A lake in a temp dir; the runtime's sink stores straight into it. The
 * process's properties are `props`. */
static void setup_with(const char *props) {
  snprintf(data, sizeof data, "/tmp/tl-query-XXXXXX");
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
  cfg.properties = props;
  CHECK_EQ(tl_init(&cfg), 0);
}

static void setup(void) {
  setup_with("service=query-test,zone=eu");
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

/* Runs SQL over [begin, end) and returns the CSV output (malloc'd), or NULL
 * with the error in `err`. */
static char *query_range(const char *sql, int64_t begin, int64_t end, char *err,
                         size_t errcap) {
  tl_session *s;
  if (tl_session_open(&s, lake, begin, end, err, errcap))
    return NULL;
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  int rc = tl_session_print(s, sql, TL_FORMAT_CSV, f, err, errcap);
  fclose(f);
  tl_session_close(s);
  if (rc) {
    free(buf);
    return NULL;
  }
  return buf;
}

static char *query(const char *sql) {
  char err[1024];
  char *r = query_range(sql, INT64_MIN, INT64_MAX, err, sizeof err);
  if (!r)
    FAILF("query failed: %s\n  %s", sql, err);
  return r;
}

#define CHECK_QUERY(sql, want)                                                 \
  do {                                                                         \
    char *got_ = query(sql);                                                   \
    if (strcmp(got_, want))                                                    \
      FAILF("%s\n--- got ---\n%s--- want ---\n%s", sql, got_, want);           \
    free(got_);                                                                \
  } while (0)

static void *log_thread(void *arg) {
  int id = (int)(intptr_t)arg;
  pthread_setname_np(pthread_self(), id ? "worker-b" : "worker-a");
  for (int i = 0; i < 1000; i++) {
    if (i % 10 == 0)
      TL_WARN("thread %d item %d is slow", id, i);
    else
      TL_INFO("thread %d item %d", id, i);
  }
  TL_ERROR("thread done");
  return NULL;
}

TEST(log_entries_exact_counts_and_values) {
  setup();
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  tl_flush();
  CHECK_QUERY("SELECT level, count(*) AS n FROM log_entries "
              "WHERE target = 'tests::query' GROUP BY level ORDER BY level",
              "level,n\n2,2\n3,200\n4,1800\n");
  CHECK_QUERY("SELECT msg FROM log_entries WHERE msg LIKE 'thread 1 item 990%'",
              "msg\nthread 1 item 990 is slow\n");
  CHECK_QUERY("SELECT DISTINCT exe LIKE '%test_query' AS is_test, "
              "list_filter(process_properties, x -> x.key = 'zone')[1].value "
              "AS zone FROM log_entries WHERE target = 'tests::query'",
              "is_test,zone\ntrue,eu\n");
  /* Times are UTC nanoseconds of this run, in order within a stream. */
  CHECK_QUERY("SELECT count(*) FILTER (WHERE epoch_ns(time) < (epoch_ms(now()) "
              "- 3600000) * 1000000 OR epoch_ns(time) > (epoch_ms(now()) + "
              "60000) * 1000000) AS off FROM log_entries",
              "off\n0\n");
  teardown();
}

TEST(measures_units_and_values) {
  setup();
  uint64_t freq_ticks = 0;
  for (int i = 0; i < 100; i++) {
    TL_IMETRIC("bytes_sent", "bytes", 1000 + i);
    TL_FMETRIC("load", "ratio", i / 100.0);
  }
  /* A duration in ticks comes back in seconds. */
  tl_flush();
  char *r = query("SELECT tsc_frequency FROM processes WHERE exe LIKE "
                  "'%test_query'");
  CHECK(sscanf(r, "tsc_frequency\n%lu", &freq_ticks) == 1);
  free(r);
  TL_IMETRIC("wait", "ticks", freq_ticks / 2); /* half a second */
  tl_flush();
  CHECK_QUERY(
      "SELECT name, unit, count(*) AS n, round(sum(value), 6) AS total FROM "
      "measures WHERE target = 'tests::query' GROUP BY ALL "
      "ORDER BY name",
      "name,unit,n,total\nbytes_sent,bytes,100,104950.0\n"
      "load,ratio,100,49.5\nwait,seconds,1,0.5\n");
  teardown();
}

TEST(catalog_views) {
  setup();
  TL_INFO("hello");
  TL_IMETRIC("m", "count", 1);
  { TL_SPAN_SCOPE("span"); }
  tl_flush();
  CHECK_QUERY("SELECT count(*) AS n FROM processes WHERE exe LIKE "
              "'%test_query'",
              "n\n1\n");
  CHECK_QUERY("SELECT list_sort(list(tags[1])) AS tags FROM streams s JOIN "
              "processes p USING (process_id) WHERE p.exe LIKE '%test_query' "
              "AND list_filter(s.properties, x -> x.key = 'thread-name')[1]"
              ".value = 'test_query'",
              "tags\n\"[cpu, log, metrics]\"\n");
  CHECK_QUERY("SELECT sum(nb_objects) AS n FROM blocks b JOIN processes p "
              "USING (process_id) WHERE p.exe LIKE '%test_query'",
              "n\n4\n");
  teardown();
}

TEST(empty_lake_and_empty_ranges) {
  setup();
  CHECK_QUERY("SELECT count(*) AS n FROM log_entries", "n\n0\n");
  CHECK_QUERY("SELECT count(*) AS n FROM measures", "n\n0\n");
  TL_INFO("now");
  tl_flush();
  char err[512];
  char *r = query_range("SELECT count(*) AS n FROM log_entries", 0, 1000000000,
                        err, sizeof err); /* 1970 */
  CHECK(r != NULL);
  CHECK_STR(r, "n\n0\n");
  free(r);
  teardown();
}

TEST(read_your_writes) {
  setup();
  for (int round = 1; round <= 3; round++) {
    TL_INFO("round");
    tl_flush(); /* acknowledged: the block is durable */
    char sql[128], want[64];
    snprintf(sql, sizeof sql,
             "SELECT count(*) AS n FROM log_entries WHERE msg = 'round'");
    snprintf(want, sizeof want, "n\n%d\n", round);
    CHECK_QUERY(sql, want);
  }
  teardown();
}

/* Blocks at chosen times, one partition each: a short range opens only the
 * partitions that overlap it. */
TEST(time_range_prunes_partitions) {
  setup();
  tl_shutdown(); /* this test writes its own blocks */
  static const tl_callsite cs = {TL_CS_LOG, TL_LEVEL_INFO, 0,           1,
                                 "tick",    NULL,          "synthetic", "x.c"};
  tl_wire_process pm;
  memset(&pm, 0, sizeof pm);
  tl_uuid_v4(pm.process_id);
  pm.start_time = 1700000000000000000;
  pm.tsc_frequency = 1000000000; /* ticks are nanoseconds */
  pm.exe = tl_slice_str("synthetic");
  tl_wire_stream sm;
  memset(&sm, 0, sizeof sm);
  tl_uuid_v4(sm.stream_id);
  memcpy(sm.process_id, pm.process_id, 16);
  sm.ntags = 1;
  sm.tags[0] = tl_slice_str("log");
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  tl_ingest_reply r;
  CHECK_EQ(tl_process_encode(&pm, &b), 0);
  tl_ingest_handle(ig, TL_MSG_PROCESS, b.p, b.len, false, &r);
  CHECK_EQ(r.status, 200);
  b.len = 0;
  CHECK_EQ(tl_stream_encode(&sm, &b), 0);
  tl_ingest_handle(ig, TL_MSG_STREAM, b.p, b.len, false, &r);
  CHECK_EQ(r.status, 200);
  tl_clock_ref ref = {0, pm.start_time, pm.tsc_frequency};
  const int64_t ten_min = 600 * (int64_t)1000000000;
  char err[512];
  for (int i = 0; i < 144; i++) { /* a day in 10-minute blocks */
    tl_block_builder bb;
    tl_block_builder_init(&bb);
    CHECK_EQ(tl_block_builder_callsite(&bb, &cs), 0);
    for (int k = 0; k < 10; k++) {
      tl_wire_event ev = {TL_EV_LOG,
                          NULL,
                          (uint64_t)(i * ten_min + k * 60 * 1000000000ll),
                          {0}};
      CHECK_EQ(tl_block_builder_event(&bb, 0, &ev), 0);
    }
    tl_wire_block_header h;
    memset(&h, 0, sizeof h);
    tl_uuid_v4(h.block_id);
    memcpy(h.stream_id, sm.stream_id, 16);
    memcpy(h.process_id, pm.process_id, 16);
    h.begin_ticks = UINT64_MAX;
    b.len = 0;
    CHECK_EQ(tl_block_builder_finish(&bb, &h, &ref, &b), 0);
    tl_block_builder_free(&bb);
    tl_ingest_handle(ig, TL_MSG_BLOCK, b.p, b.len, false, &r);
    CHECK_EQ(r.status, 200);
    /* Materialize now: one partition per block. */
    if (tl_lake_materialize(lake, tl_wall_ns(), NULL, err, sizeof err))
      FAILF("materialize: %s", err);
  }
  tl_bytes_free(&b);
  /* One minute in the middle of the day: one partition, one row. */
  int64_t begin = pm.start_time + 50 * ten_min + 3 * 60 * 1000000000ll;
  tl_session *s;
  if (tl_session_open(&s, lake, begin, begin + 60 * 1000000000ll, err,
                      sizeof err))
    FAILF("session: %s", err);
  CHECK_U64(tl_session_files(s), 1); /* of 144 log_entries partitions */
  char *out = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&out, &n);
  CHECK_EQ(tl_session_print(s, "SELECT count(*) AS n FROM log_entries", 1, f,
                            err, sizeof err),
           0);
  fclose(f);
  CHECK_STR(out, "n\n1\n");
  free(out);
  tl_session_close(s);
  CHECK_QUERY("SELECT count(*) AS n FROM log_entries WHERE target = "
              "'synthetic'",
              "n\n1440\n");
  tl_lake_close(lake);
  tl_ingest_close(ig);
  tl_store_close(store);
  tl_catalog_close(cat);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", data);
  CHECK_EQ(system(cmd), 0);
}

/* The partition files of a global view (paths under the data dir). */
typedef struct part_files {
  char file[8][TL_PARTITION_FILE_MAX];
  uint64_t rows[8];
  int n;
} part_files;

static int add_part_file(void *ctx, const tl_partition *p) {
  part_files *f = ctx;
  if (f->n < 8) {
    snprintf(f->file[f->n], sizeof f->file[0], "%s", p->file);
    f->rows[f->n++] = p->nb_rows;
  }
  return 0;
}

static part_files list_files(const char *view) {
  part_files f;
  memset(&f, 0, sizeof f);
  CHECK_EQ(tl_catalog_list_partitions(cat, view, "global", INT64_MIN, INT64_MAX,
                                      add_part_file, &f),
           0);
  return f;
}

static bool ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), k = strlen(tail);
  return n >= k && !strcmp(s + n - k, tail);
}

/* exe, username, computer and process_properties are written into the
 * partitions (the views read them there, without a join) and equal the
 * processes view's, properties with quotes, backslashes, tabs and UTF-8
 * included. */
TEST(process_columns_are_stored_in_partitions) {
  setup_with("service=query-test,zone=eu,note=say \"hi\"\\ \tt\xc3\xa9st");
  TL_INFO("stored");
  TL_IMETRIC("stored_metric", "count", 1);
  tl_flush();
  CHECK_QUERY("SELECT count(*) AS n FROM log_entries l JOIN processes p USING "
              "(process_id) WHERE l.msg = 'stored' AND l.exe = p.exe AND "
              "l.username IS NOT DISTINCT FROM p.username AND l.computer IS "
              "NOT DISTINCT FROM p.computer AND l.process_properties = "
              "p.properties AND len(l.process_properties) = 3",
              "n\n1\n");
  CHECK_QUERY("SELECT count(*) AS n FROM measures m JOIN processes p USING "
              "(process_id) WHERE m.name = 'stored_metric' AND m.exe = p.exe "
              "AND m.process_properties = p.properties",
              "n\n1\n");
  CHECK_QUERY("SELECT list_filter(process_properties, x -> x.key = 'note')[1]"
              ".value = 'say \"hi\"\\ ' || chr(9) || 't\xc3\xa9st' AS ok FROM "
              "log_entries WHERE msg = 'stored'",
              "ok\ntrue\n");
  /* In the files themselves. */
  part_files f = list_files("log_entries");
  CHECK_EQ(f.n, 1);
  CHECK(ends_with(f.file[0], ".v2.parquet"));
  char sql[1024];
  snprintf(sql, sizeof sql,
           "SELECT count(*) AS n FROM read_parquet('%s/%s') f JOIN processes "
           "p USING (process_id) WHERE f.msg = 'stored' AND f.exe = p.exe AND "
           "f.process_properties = p.properties",
           data, f.file[0]);
  CHECK_QUERY(sql, "n\n1\n");
  /* No join in the plan of a query through the view. */
  char *plan = query("EXPLAIN SELECT exe, level, count(*) FROM log_entries "
                     "GROUP BY ALL");
  if (strstr(plan, "JOIN"))
    FAILF("the view joins:\n%s", plan);
  free(plan);
  teardown();
}

/* Writes a log_entries partition as the code before TL_PARTITION_V2 did
 * (text ids, no process columns, zstd): `rows` rows of this process with
 * target 'tests::legacy', recorded in the catalog with a made-up block. */
static int64_t write_legacy_partition(uint64_t rows) {
  int64_t now = tl_wall_ns();
  int64_t day = now / ((int64_t)86400 * 1000000000);
  uint8_t fid[16], bid[16];
  char fname[37], pid[37];
  tl_uuid_v4(fid);
  tl_uuid_v4(bid);
  tl_uuid_format(fid, fname);
  uint8_t p[16];
  CHECK_EQ(tl_process_id(p), 0);
  tl_uuid_format(p, pid);
  tl_partition part;
  memset(&part, 0, sizeof part);
  snprintf(part.view_name, sizeof part.view_name, "log_entries");
  snprintf(part.instance, sizeof part.instance, "global");
  snprintf(part.file, sizeof part.file,
           "views/log_entries/global/%lld/%s.parquet", (long long)day, fname);
  char dir[512], sql[2048];
  snprintf(dir, sizeof dir, "mkdir -p %s/views/log_entries/global/%lld", data,
           (long long)day);
  CHECK_EQ(system(dir), 0);
  snprintf(sql, sizeof sql,
           "COPY (SELECT '%s' AS process_id, '%s' AS stream_id, '%s' AS "
           "block_id, make_timestamp_ns(%lld) AS insert_time, "
           "make_timestamp_ns(%lld + i) AS time, 'tests::legacy' AS target, "
           "3 AS level, 'legacy entry' AS msg FROM range(%llu) t(i)) TO "
           "'%s/%s' (FORMAT parquet, COMPRESSION zstd)",
           pid, pid, pid, (long long)now, (long long)now,
           (unsigned long long)rows, data, part.file);
  duckdb_database db;
  duckdb_connection c;
  CHECK(duckdb_open(NULL, &db) == DuckDBSuccess);
  CHECK(duckdb_connect(db, &c) == DuckDBSuccess);
  duckdb_result r;
  if (duckdb_query(c, sql, &r) == DuckDBError)
    FAILF("%s", duckdb_result_error(&r));
  duckdb_destroy_result(&r);
  duckdb_disconnect(&c);
  duckdb_close(&db);
  part.nb_rows = rows;
  part.nb_blocks = 1;
  part.begin_time = now;
  part.end_time = now + (int64_t)rows - 1;
  part.min_insert_time = part.max_insert_time = now;
  part.created_time = now;
  CHECK_EQ(tl_catalog_add_partition(cat, &part, (const uint8_t(*)[16])bid, 1),
           0);
  return now;
}

/* A lake written before the process columns were stored: its partitions
 * still read through the views (process columns NULL), beside new ones, and
 * a merge of old and new partitions writes the current format. */
TEST(partitions_of_the_older_format_still_read) {
  setup();
  TL_INFO("current entry");
  tl_flush();
  char err[512];
  if (tl_lake_materialize(lake, tl_wall_ns(), NULL, err, sizeof err))
    FAILF("materialize: %s", err);
  part_files f = list_files("log_entries");
  CHECK_EQ(f.n, 1);
  /* As many rows as the new partition: the merge takes both. */
  int64_t legacy_begin = write_legacy_partition(f.rows[0]);
  char want[256];
  snprintf(want, sizeof want,
           "target,n,no_exe,no_props\ntests::legacy,%llu,true,true\n"
           "tests::query,1,false,false\n",
           (unsigned long long)f.rows[0]);
  static const char q[] =
      "SELECT target, count(*) AS n, bool_and(exe IS NULL) AS no_exe, "
      "bool_and(process_properties IS NULL) AS no_props FROM log_entries "
      "WHERE target LIKE 'tests::%' GROUP BY target ORDER BY target";
  CHECK_QUERY(q, want);
  /* A range with only the old partition: the view has every column. */
  tl_session *s;
  if (tl_session_open(&s, lake, legacy_begin, INT64_MAX, err, sizeof err))
    FAILF("session: %s", err);
  CHECK_U64(tl_session_files(s), 1);
  tl_session_close(s);
  char *r = query_range("SELECT count(*) AS n, count(exe) AS exes, "
                        "count(process_properties) AS props, "
                        "min(msg) AS msg FROM log_entries",
                        legacy_begin, INT64_MAX, err, sizeof err);
  if (!r)
    FAILF("legacy only: %s", err);
  snprintf(want, sizeof want, "n,exes,props,msg\n%llu,0,0,legacy entry\n",
           (unsigned long long)f.rows[0]);
  CHECK_STR(r, want);
  free(r);
  snprintf(want, sizeof want,
           "target,n,no_exe,no_props\ntests::legacy,%llu,true,true\n"
           "tests::query,1,false,false\n",
           (unsigned long long)f.rows[0]);
  tl_merge_opts o = {.fan_in = 2}; /* the two partitions merge */
  tl_merge_stats st;
  memset(&st, 0, sizeof st);
  if (tl_lake_merge_with(lake, "log_entries", &o, &st, err, sizeof err))
    FAILF("merge: %s", err);
  CHECK_U64(st.merges, 1);
  CHECK_U64(st.replaced, 2);
  f = list_files("log_entries");
  CHECK_EQ(f.n, 1);
  CHECK(ends_with(f.file[0], ".v2.parquet"));
  CHECK_QUERY(q, want);
  teardown();
}

/* `why` lists acceptable words, separated by '|': which layer refuses
 * (the engine's file lock-down or the statement filter) may vary. */
static void expect_refused(const char *sql, const char *why) {
  char err[1024] = "";
  char *r = query_range(sql, INT64_MIN, INT64_MAX, err, sizeof err);
  if (r)
    FAILF("accepted: %s\n%s", sql, r);
  char words[128];
  snprintf(words, sizeof words, "%s", why);
  char *save = NULL;
  for (char *w = strtok_r(words, "|", &save); w; w = strtok_r(NULL, "|", &save))
    if (strstr(err, w))
      return;
  FAILF("%s\n  refused with \"%s\", expected it to mention \"%s\"", sql, err,
        why);
}

TEST(engine_refuses_server_files) {
  setup();
  TL_INFO("x");
  tl_flush();
  expect_refused("SELECT * FROM read_csv('/etc/passwd')", "disabled");
  expect_refused("SELECT * FROM read_text('/etc/hostname')", "disabled");
  expect_refused("SELECT * FROM glob('/etc/*')", "disabled");
  expect_refused("SELECT * FROM read_parquet('/tmp/x.parquet')", "disabled");
  expect_refused("COPY (SELECT 1) TO '/tmp/tl-out.csv'", "disabled");
  char sql[512];
  snprintf(sql, sizeof sql, "COPY (SELECT 1) TO '%s/views/evil.csv'", data);
  expect_refused(sql, "read-only");
  expect_refused("ATTACH '/tmp/tl-other.duckdb'", "disabled|read-only");
  expect_refused("INSTALL httpfs", "read-only");
  expect_refused("LOAD httpfs", "read-only");
  expect_refused("SET enable_external_access = true", "read-only");
  expect_refused("CREATE TABLE t AS SELECT 1", "read-only");
  expect_refused("DROP VIEW log_entries", "read-only");
  expect_refused("SELECT 1; SELECT 2", "one statement");
  expect_refused("SELEC nonsense", "syntax");
  expect_refused("SELECT * FROM no_such_table", "no_such_table");
  /* The materializer's table function is not part of the SQL surface. */
  expect_refused("SELECT * FROM tl_materialize()", "internal");
  /* And the session still works. */
  CHECK_QUERY("SELECT count(*) AS n FROM log_entries WHERE msg = 'x'",
              "n\n1\n");
  teardown();
}

/* A process with thousands of small blocks: every event comes back once. */
TEST(process_with_thousands_of_blocks) {
  snprintf(data, sizeof data, "/tmp/tl-query-XXXXXX");
  CHECK(mkdtemp(data) != NULL);
  char spec[600], err[512];
  catalog_spec(spec, sizeof spec);
  CHECK_EQ(tl_catalog_open(&cat, spec, err, sizeof err), 0);
  CHECK_EQ(tl_store_open(&store, data), 0);
  CHECK_EQ(tl_ingest_open(&ig, cat, store), 0);
  CHECK_EQ(tl_lake_open(&lake, cat, store, err, sizeof err), 0);
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.buffer_size = 4096; /* about 170 metrics a block */
  cfg.sink = tl_ingest_sink;
  cfg.sink_ctx = ig;
  CHECK_EQ(tl_init(&cfg), 0);
  enum { N = 400000 };
  for (int i = 0; i < N; i++)
    TL_IMETRIC("seq", "count", i);
  tl_flush();
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.events_recorded, N);
  CHECK(st.blocks >= 2000);
  char *r = query("SELECT count(*) AS n, count(DISTINCT value) AS d, "
                  "sum(value) AS total, count(DISTINCT block_id) AS blocks "
                  "FROM measures WHERE name = 'seq'");
  unsigned long long n = 0, nd = 0, nb = 0;
  double total = 0;
  CHECK(sscanf(r, "n,d,total,blocks\n%llu,%llu,%lf,%llu", &n, &nd, &total,
               &nb) == 4);
  free(r);
  CHECK_U64(n, N);
  CHECK_U64(nd, N);
  CHECK(total == (double)N * (N - 1) / 2);
  CHECK(nb >= 2000);
  teardown();
}

static atomic_int writer_stop;
static atomic_long acknowledged;

static void *keep_writing(void *arg) {
  (void)arg;
  for (long round = 1; !atomic_load(&writer_stop); round++) {
    for (int i = 0; i < 100; i++)
      TL_INFO("concurrent");
    tl_flush();
    atomic_store(&acknowledged, round * 100);
  }
  return NULL;
}

/* Queries while blocks keep arriving: each sees at least what was
 * acknowledged before it started and never less than the previous one; the
 * final count is exact. */
TEST(concurrent_ingest_while_querying) {
  setup();
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, keep_writing, NULL), 0);
  long last = 0;
  for (int q = 0; q < 25; q++) {
    long before = atomic_load(&acknowledged);
    char *r = query("SELECT count(*) AS n FROM log_entries WHERE msg = "
                    "'concurrent'");
    long n = -1;
    CHECK(sscanf(r, "n\n%ld", &n) == 1);
    free(r);
    if (n < before || n < last)
      FAILF("query %d saw %ld rows; %ld were acknowledged before it, the "
            "previous query saw %ld",
            q, n, before, last);
    last = n;
  }
  atomic_store(&writer_stop, 1);
  pthread_join(t, NULL);
  char want[64];
  snprintf(want, sizeof want, "n\n%ld\n", atomic_load(&acknowledged));
  CHECK_QUERY("SELECT count(*) AS n FROM log_entries WHERE msg = 'concurrent'",
              want);
  CHECK(last > 0);
  teardown();
}

/* Sessions opened from several threads at once, while blocks keep arriving:
 * those that queue behind one materialization are served by the next one
 * (lake.c, done_through), and each still sees at least what was
 * acknowledged before it opened. */
static void *query_loop(void *arg) {
  long *failures = arg;
  for (int q = 0; q < 10; q++) {
    long before = atomic_load(&acknowledged);
    char err[1024];
    char *r = query_range("SELECT count(*) AS n FROM log_entries WHERE msg = "
                          "'concurrent'",
                          INT64_MIN, INT64_MAX, err, sizeof err);
    long n = -1;
    if (!r || sscanf(r, "n\n%ld", &n) != 1 || n < before) {
      fprintf(stderr, "query %d saw %ld rows, %ld acknowledged before: %s\n", q,
              n, before, r ? r : err);
      (*failures)++;
    }
    free(r);
  }
  return NULL;
}

TEST(concurrent_sessions_see_what_was_acknowledged) {
  setup();
  atomic_store(&writer_stop, 0);
  atomic_store(&acknowledged, 0);
  pthread_t w, q[4];
  long failures[4] = {0};
  CHECK_EQ(pthread_create(&w, NULL, keep_writing, NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(pthread_create(&q[i], NULL, query_loop, &failures[i]), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(q[i], NULL);
  atomic_store(&writer_stop, 1);
  pthread_join(w, NULL);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(failures[i], 0);
  char want[64];
  snprintf(want, sizeof want, "n\n%ld\n", atomic_load(&acknowledged));
  CHECK_QUERY("SELECT count(*) AS n FROM log_entries WHERE msg = 'concurrent'",
              want);
  teardown();
}

/* DuckDB's memory is bounded (its default is 80% of RAM) and its cache of
 * Parquet data is off; a query cannot change either. */
TEST(engine_memory_is_bounded) {
  setup();
  uint64_t def = tl_lake_default_memory();
  CHECK(def >= ((uint64_t)256 << 20) && def <= ((uint64_t)4 << 30));
  tl_lake_close(lake);
  char err[512];
  tl_lake_opts o = {(uint64_t)300 << 20};
  if (tl_lake_open_opts(&lake, cat, store, &o, err, sizeof err))
    FAILF("lake: %s", err);
  /* Three quarters for queries; the materializing engine has the rest. */
  CHECK_QUERY("SELECT current_setting('memory_limit') AS m, "
              "current_setting('enable_external_file_cache') AS c",
              "m,c\n225.0 MiB,false\n");
  expect_refused("SET memory_limit = '10GB'", "read-only");
  expect_refused("SELECT set_config('memory_limit', '10GB')",
                 "read-only|set_config|does not exist");
  teardown();
}

static void inner(void) {
  TL_SPAN_FN();
}

static void outer(int n) {
  TL_SPAN_FN();
  for (int i = 0; i < n; i++)
    inner();
}

static tl_async_span handed[2];

static void *end_async(void *arg) {
  (void)arg;
  TL_ASYNC_END(handed[1]);
  TL_ASYNC_END(handed[0]);
  return NULL;
}

/* Both per-instance views, materialized just in time: the thread's call
 * tree with exact parents and depths, and async spans begun on one thread
 * and ended on another. */
TEST(per_instance_views) {
  setup();
  for (int i = 0; i < 100; i++)
    outer(3);
  handed[0] = TL_ASYNC_BEGIN("request", TL_ASYNC_ROOT);
  handed[1] = TL_ASYNC_BEGIN("query", handed[0]);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, end_async, NULL), 0);
  pthread_join(t, NULL);
  TL_INFO("instance log");
  tl_flush();
  uint8_t pid[16];
  char p[37];
  CHECK_EQ(tl_process_id(pid), 0);
  tl_uuid_format(pid, p);
  /* This thread's cpu stream. */
  char sql[1024];
  snprintf(sql, sizeof sql,
           "SELECT stream_id FROM streams WHERE process_id = '%s' AND "
           "list_contains(tags, 'cpu') AND list_filter(properties, x -> x.key "
           "= 'thread-id')[1].value = '%d'",
           p, (int)gettid());
  char *r = query(sql);
  char sid[64] = "";
  CHECK(sscanf(r, "stream_id\n%63s", sid) == 1);
  free(r);
  snprintf(sql, sizeof sql,
           "SELECT name, depth, count(*) AS n, count(DISTINCT id) AS ids FROM "
           "view_instance('thread_spans', '%s') GROUP BY ALL ORDER BY depth",
           sid);
  CHECK_QUERY(sql, "name,depth,n,ids\nouter,0,100,100\ninner,1,300,300\n");
  /* Every inner span's parent is an outer span that contains it. */
  snprintf(sql, sizeof sql,
           "SELECT count(*) AS bad FROM view_instance('thread_spans', '%s') c "
           "LEFT JOIN view_instance('thread_spans', '%s') o ON c.parent = "
           "o.id WHERE c.name = 'inner' AND (o.name IS DISTINCT FROM 'outer' "
           "OR c.begin < o.begin OR c.end > o.end OR c.duration < 0)",
           sid, sid);
  CHECK_QUERY(sql, "bad\n0\n");
  snprintf(sql, sizeof sql,
           "SELECT event_type, name, depth, parent_span_id = 0 AS root, "
           "count(DISTINCT stream_id) AS streams FROM view_instance("
           "'async_events', '%s') GROUP BY ALL ORDER BY event_type, depth",
           p);
  CHECK_QUERY(sql, "event_type,name,depth,root,streams\n"
                   "begin,request,0,true,1\nbegin,query,1,false,1\n"
                   "end,request,0,true,1\nend,query,1,false,1\n");
  snprintf(sql, sizeof sql,
           "SELECT (SELECT span_id FROM view_instance('async_events', '%s') "
           "WHERE name = 'request' AND event_type = 'begin') = (SELECT "
           "parent_span_id FROM view_instance('async_events', '%s') WHERE name "
           "= 'query' AND event_type = 'end') AS linked",
           p, p);
  CHECK_QUERY(sql, "linked\ntrue\n");
  snprintf(sql, sizeof sql,
           "SELECT msg FROM view_instance('log_entries', '%s') WHERE target = "
           "'tests::query'",
           p);
  CHECK_QUERY(sql, "msg\ninstance log\n");
  char err[512];
  r = query_range("SELECT * FROM view_instance('thread_spans', 42)", INT64_MIN,
                  INT64_MAX, err, sizeof err);
  CHECK(r == NULL && strstr(err, "two string literals"));
  r = query_range("SELECT * FROM view_instance('nope', "
                  "'6a3da82f-2ffd-401b-a355-dd1d60584bd3')",
                  INT64_MIN, INT64_MAX, err, sizeof err);
  CHECK(r == NULL && strstr(err, "unknown view"));
  teardown();
}

TL_TEST_MAIN()

/* test_maintain.c - the lake's maintenance: merging small partitions keeps
 * every row exactly once and bounds the file count, replaced files outlive
 * the sessions that listed them (grace period), the real `tracelake serve`
 * materializes and merges without any query and stops cleanly on SIGTERM,
 * `tracelake admin retire` retires partitions with their blocks, and the
 * freshness figure (acknowledgement to materialized). Uses the ingestion
 * tests' harness (tests/ingest/harness.h) for servers, tools and catalogs:
 * TL_TEST_CATALOG=pg runs the same tests on a fresh PostgreSQL database. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/harness.h"
#include "ingest/ingest.h"
#include "procfs.h"
#include "query/lake.h"
#include "test.h"
#include "wire/wire.h"

#define SEC ((int64_t)1000000000)
#define DAY (86400 * SEC)

/* ---- An in-process lake ------------------------------------------------ */

typedef struct lake {
  char data[512];
  tl_catalog *cat;
  tl_store *store;
  tl_ingest *ig;
  tl_lake *lake;
  uint8_t pid[16], sid[16];
  int64_t start; /* the process's start time: tick 0 */
} lake;

static void post(lake *k, int kind, const tl_bytes *b) {
  tl_ingest_reply r;
  tl_ingest_handle(k->ig, kind, b->p, b->len, false, &r);
  if (r.status != 200)
    FAILF("ingest: %d %s", r.status, r.msg);
}

static void encode_stream(tl_bytes *b, const uint8_t sid[16],
                          const uint8_t pid[16]) {
  tl_wire_stream sm;
  memset(&sm, 0, sizeof sm);
  memcpy(sm.stream_id, sid, 16);
  memcpy(sm.process_id, pid, 16);
  sm.ntags = 2;
  sm.tags[0] = tl_slice_str("log");
  sm.tags[1] = tl_slice_str("metrics");
  CHECK_EQ(tl_stream_encode(&sm, b), 0);
}

/* A lake under the test's scratch directory, with one process (ticks are
 * nanoseconds from `start`) and one log+metrics stream. */
static void lake_open(lake *k, const char *name, int64_t start) {
  memset(k, 0, sizeof *k);
  snprintf(k->data, sizeof k->data, "%s", th_path(name));
  CHECK(mkdir(k->data, 0755) == 0);
  k->cat = th_catalog_open(k->data);
  CHECK_EQ(tl_store_open(&k->store, k->data), 0);
  CHECK_EQ(tl_ingest_open(&k->ig, k->cat, k->store), 0);
  char err[512];
  if (tl_lake_open(&k->lake, k->cat, k->store, err, sizeof err))
    FAILF("lake: %s", err);
  k->start = start;
  tl_uuid_v4(k->pid);
  tl_uuid_v4(k->sid);
  tl_wire_process pm;
  memset(&pm, 0, sizeof pm);
  memcpy(pm.process_id, k->pid, 16);
  pm.start_time = start;
  pm.tsc_frequency = 1000000000;
  pm.exe = tl_slice_str("maint-test");
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_process_encode(&pm, &b), 0);
  post(k, TL_MSG_PROCESS, &b);
  b.len = 0;
  encode_stream(&b, k->sid, k->pid);
  post(k, TL_MSG_STREAM, &b);
  tl_bytes_free(&b);
}

static void lake_close(lake *k) {
  tl_lake_close(k->lake);
  tl_ingest_close(k->ig);
  tl_store_close(k->store);
  tl_catalog_close(k->cat);
}

static const tl_callsite cs_log = {TL_CS_LOG, TL_LEVEL_INFO, 0,       1,
                                   "event",   NULL,          "maint", "m.c"};
static const tl_callsite cs_metric = {TL_CS_FMETRIC, 0,       0,       2,
                                      "load",        "ratio", "maint", "m.c"};

/* Block `i`: 20 log rows and 10 measures, one a second from `at` (UTC ns),
 * acknowledged, then materialized on its own (one partition per view). */
static void add_block(lake *k, int i, int64_t at, bool materialize) {
  tl_block_builder bb;
  tl_block_builder_init(&bb);
  CHECK_EQ(tl_block_builder_callsite(&bb, &cs_log), 0);
  CHECK_EQ(tl_block_builder_callsite(&bb, &cs_metric), 0);
  for (int e = 0; e < 30; e++) {
    tl_wire_event ev;
    memset(&ev, 0, sizeof ev);
    ev.ticks = (uint64_t)(at - k->start + e * SEC);
    char msg[64];
    if (e < 20) {
      ev.type = TL_EV_LOGF;
      int n = snprintf(msg, sizeof msg, "block %d event %d", i, e);
      ev.v.msg = (tl_slice){(const uint8_t *)msg, (size_t)n};
      CHECK_EQ(tl_block_builder_event(&bb, 0, &ev), 0);
    } else {
      ev.type = TL_EV_FMETRIC;
      ev.v.f = i + e / 100.0;
      CHECK_EQ(tl_block_builder_event(&bb, 1, &ev), 0);
    }
  }
  tl_wire_block_header h;
  memset(&h, 0, sizeof h);
  tl_uuid_v4(h.block_id);
  memcpy(h.stream_id, k->sid, 16);
  memcpy(h.process_id, k->pid, 16);
  h.begin_ticks = UINT64_MAX;
  tl_clock_ref ref = {0, k->start, 1000000000};
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_block_builder_finish(&bb, &h, &ref, &b), 0);
  tl_block_builder_free(&bb);
  post(k, TL_MSG_BLOCK, &b);
  tl_bytes_free(&b);
  char err[512];
  if (materialize &&
      tl_lake_materialize(k->lake, tl_wall_ns(), NULL, err, sizeof err))
    FAILF("materialize: %s", err);
}

/* ---- Queries and the catalog ------------------------------------------- */

static char *session_csv(tl_session *s, const char *sql, char *err,
                         size_t errcap) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  int rc = tl_session_print(s, sql, TL_FORMAT_CSV, f, err, errcap);
  fclose(f);
  if (rc) {
    free(buf);
    return NULL;
  }
  return buf;
}

static char *query(lake *k, const char *sql) {
  char err[1024];
  tl_session *s;
  if (tl_session_open(&s, k->lake, INT64_MIN, INT64_MAX, err, sizeof err))
    FAILF("session: %s", err);
  char *r = session_csv(s, sql, err, sizeof err);
  if (!r)
    FAILF("%s\n  %s", sql, err);
  tl_session_close(s);
  return r;
}

/* Counts and checksums of every row, and whether each block has exactly
 * its rows. */
static const char *fingerprint_sql =
    "SELECT (SELECT count(*) FROM log_entries) AS logs, "
    "(SELECT sum(hash(msg, time, block_id)) FROM log_entries) AS log_sum, "
    "(SELECT count(*) FROM (SELECT block_id FROM log_entries GROUP BY "
    "block_id HAVING count(*) <> 20)) AS bad_log_blocks, "
    "(SELECT count(*) FROM measures) AS measures, "
    "(SELECT sum(hash(name, time, value, block_id)) FROM measures) AS "
    "measure_sum, "
    "(SELECT count(*) FROM (SELECT block_id FROM measures GROUP BY block_id "
    "HAVING count(*) <> 10)) AS bad_measure_blocks";

typedef struct part_count {
  uint64_t n, rows, blocks;
  int64_t max_blocks;
} part_count;

static int count_part(void *ctx, const tl_partition *p) {
  part_count *c = ctx;
  c->n++;
  c->rows += p->nb_rows;
  c->blocks += p->nb_blocks;
  if ((int64_t)p->nb_blocks > c->max_blocks)
    c->max_blocks = (int64_t)p->nb_blocks;
  return 0;
}

/* The partitions of `view` overlapping [begin, end). */
static part_count partitions_in(tl_catalog *cat, const char *view,
                                int64_t begin, int64_t end) {
  part_count c = {0, 0, 0, 0};
  CHECK_EQ(tl_catalog_list_partitions(cat, view, "global", begin, end,
                                      count_part, &c),
           0);
  return c;
}

static part_count partitions(tl_catalog *cat, const char *view) {
  return partitions_in(cat, view, INT64_MIN, INT64_MAX);
}

static unsigned files_of(const char *data, const char *view) {
  char dir[700];
  snprintf(dir, sizeof dir, "%s/views/%s", data, view);
  return th_count_files(dir, "", ".parquet");
}

/* Blocks of `tag` streams acknowledged that `view` does not hold yet. */
static unsigned pending(tl_catalog *cat, const char *view, const char *tag) {
  static tl_catalog_block out[1000];
  unsigned n = 0;
  CHECK_EQ(tl_catalog_blocks_to_materialize(cat, view, "global", TL_SCOPE_ALL,
                                            tag, INT64_MIN, INT64_MAX, 1000,
                                            out, &n),
           0);
  return n;
}

/* 50 blocks of one morning, one partition each per view. */
static int64_t morning(void) {
  return 1767225600 * SEC + 3600 * SEC; /* 2026-01-01T01:00:00Z */
}

static void fifty_partitions(lake *k, const char *name) {
  lake_open(k, name, morning());
  for (int i = 0; i < 50; i++)
    add_block(k, i, morning() + i * 60 * SEC, true);
  CHECK_U64(partitions(k->cat, "log_entries").n, 50);
  CHECK_U64(partitions(k->cat, "measures").n, 50);
  CHECK_EQ(files_of(k->data, "log_entries"), 50);
}

/* ---- Merging ------------------------------------------------------------ */

/* 20 log rows (10 measures) a partition and a limit of 200 rows: runs of
 * 9 (19) partitions, so 9+9+9+9+9+5 and 19+19+12. */
static tl_merge_opts small_limits(int64_t grace_ns) {
  tl_merge_opts o;
  memset(&o, 0, sizeof o);
  o.max_rows = 200;
  o.grace_ns = grace_ns;
  return o;
}

TEST(merge_bounds_file_count_and_keeps_every_row_once) {
  lake k;
  fifty_partitions(&k, "merge");
  char *before = query(&k, fingerprint_sql);
  tl_merge_opts o = small_limits(0);
  tl_merge_stats st;
  memset(&st, 0, sizeof st);
  char err[1024];
  if (tl_lake_merge_with(k.lake, NULL, &o, &st, err, sizeof err))
    FAILF("merge: %s", err);
  CHECK_U64(st.merges, 9);
  CHECK_U64(st.replaced, 100);
  CHECK_U64(st.rows, 50 * 30);
  CHECK_U64(st.blocks, 100);
  CHECK_U64(st.conflicts, 0);
  part_count logs = partitions(k.cat, "log_entries");
  part_count ms = partitions(k.cat, "measures");
  CHECK_U64(logs.n, 6);
  CHECK_U64(ms.n, 3);
  /* Every block in exactly one partition of each view. */
  CHECK_U64(logs.blocks, 50);
  CHECK_U64(ms.blocks, 50);
  CHECK_U64(logs.rows, 50 * 20);
  CHECK_EQ(logs.max_blocks, 9);
  CHECK_EQ(pending(k.cat, "log_entries", "log"), 0);
  CHECK_EQ(pending(k.cat, "measures", "metrics"), 0);
  /* The same rows, through the views. */
  char *after = query(&k, fingerprint_sql);
  CHECK_STR(after, before);
  /* 1000 log rows, 500 measures, no block with other than its rows. */
  CHECK(strstr(after, "\n1000,") && strstr(after, ",0,500,") &&
        strstr(after, ",0\n"));
  /* Grace 0: the old files go with the first purge. */
  uint64_t deleted = 0;
  CHECK_EQ(tl_trash_purge(k.store, tl_wall_ns(), &deleted), 0);
  CHECK_U64(deleted, 100);
  CHECK_EQ(files_of(k.data, "log_entries"), 6);
  CHECK_EQ(files_of(k.data, "measures"), 3);
  char trash[700];
  snprintf(trash, sizeof trash, "%s/views/.trash", k.data);
  CHECK_EQ(th_count_files(trash, "", ""), 0);
  /* Stable: the merged partitions are as large as the limit allows. */
  memset(&st, 0, sizeof st);
  if (tl_lake_merge_with(k.lake, NULL, &o, &st, err, sizeof err))
    FAILF("merge: %s", err);
  CHECK_U64(st.merges, 0);
  /* Defaults (64 MiB, 1M rows): everything of the morning in one file. */
  if (tl_lake_merge(k.lake, "log_entries", err, sizeof err, NULL))
    FAILF("merge: %s", err);
  CHECK_U64(partitions(k.cat, "log_entries").n, 1);
  CHECK_U64(partitions(k.cat, "measures").n, 3);
  char *last = query(&k, fingerprint_sql);
  CHECK_STR(last, before);
  CHECK_EQ(tl_lake_merge(k.lake, "no_such_view", err, sizeof err, NULL),
           TL_EINVAL);
  free(before);
  free(after);
  free(last);
  lake_close(&k);
}

/* A large partition is left alone and the small ones beside it merge among
 * themselves, until together they weigh as much (fan-in 2: the rule of
 * doubling; the default fan-in 4 is the test below). */
TEST(merge_leaves_out_a_partition_larger_than_the_rest) {
  lake k;
  tl_merge_opts two;
  memset(&two, 0, sizeof two);
  two.fan_in = 2;
  two.grace_ns = -1;
  lake_open(&k, "ratio", morning());
  for (int i = 0; i < 8; i++) /* one partition of 8 blocks */
    add_block(&k, i, morning() + i * 60 * SEC, false);
  char err[1024];
  if (tl_lake_materialize(k.lake, tl_wall_ns(), NULL, err, sizeof err))
    FAILF("materialize: %s", err);
  for (int i = 8; i < 11; i++) /* three of one block */
    add_block(&k, i, morning() + i * 60 * SEC, true);
  CHECK_U64(partitions(k.cat, "log_entries").n, 4);
  tl_merge_stats st;
  memset(&st, 0, sizeof st);
  if (tl_lake_merge_with(k.lake, "log_entries", &two, &st, err, sizeof err))
    FAILF("merge: %s", err);
  CHECK_U64(st.merges, 1);
  CHECK_U64(st.replaced, 3);
  part_count c = partitions(k.cat, "log_entries");
  CHECK_U64(c.n, 2);
  CHECK_EQ(c.max_blocks, 8);
  for (int i = 11; i < 16; i++) /* 3 + 5 blocks now outweigh the 8 */
    add_block(&k, i, morning() + i * 60 * SEC, true);
  memset(&st, 0, sizeof st);
  if (tl_lake_merge_with(k.lake, "log_entries", &two, &st, err, sizeof err))
    FAILF("merge: %s", err);
  CHECK_U64(st.merges, 1);
  c = partitions(k.cat, "log_entries");
  CHECK_U64(c.n, 1);
  CHECK_EQ(c.max_blocks, 16);
  char *r = query(&k, "SELECT count(*) AS n FROM log_entries");
  CHECK_STR(r, "n\n320\n");
  free(r);
  lake_close(&k);
}

/* Partitions arriving one at a time, merged after each as the maintenance
 * loop does: with the default fan-in 4 a row is rewritten when its
 * partition has grown 4-fold, 2.5 times on average for 64 partitions (64
 * -> 16 -> 4 -> 1 with 3 left at each size meanwhile); with fan-in 2,
 * each doubling, 3.5 times. Every row stays exactly once. */
TEST(merge_fan_in_bounds_how_often_a_row_is_rewritten) {
  uint64_t rewritten[2] = {0, 0}, merges[2] = {0, 0};
  for (int f = 0; f < 2; f++) {
    lake k;
    lake_open(&k, f ? "fan_in_2" : "fan_in_4", morning());
    tl_merge_opts o;
    memset(&o, 0, sizeof o);
    o.fan_in = f ? 2 : 0; /* 0: the default */
    o.grace_ns = -1;
    uint64_t most = 0;
    for (int i = 0; i < 64; i++) {
      add_block(&k, i, morning() + i * 60 * SEC, true);
      tl_merge_stats st;
      memset(&st, 0, sizeof st);
      char err[1024];
      if (tl_lake_merge_with(k.lake, "log_entries", &o, &st, err, sizeof err))
        FAILF("merge: %s", err);
      rewritten[f] += st.rows;
      merges[f] += st.merges;
      part_count c = partitions(k.cat, "log_entries");
      if (c.n > most)
        most = c.n;
    }
    part_count c = partitions(k.cat, "log_entries");
    CHECK_U64(c.n, 1);
    CHECK_U64(c.rows, 64 * 20);
    CHECK_U64(c.blocks, 64);
    char *r = query(&k, "SELECT count(*) AS n, count(DISTINCT msg) AS d FROM "
                        "log_entries");
    CHECK_STR(r, "n,d\n1280,1280\n");
    free(r);
    printf("fan-in %d: %" PRIu64 " merges rewrote %" PRIu64
           " rows for 1280 (%.2f times each); at most %" PRIu64 " partitions\n",
           f ? 2 : 4, merges[f], rewritten[f], rewritten[f] / 1280.0, most);
    CHECK_U64(most, f ? 6 : 9); /* at most 1 (fan-in 2) or 3 of each size */
    lake_close(&k);
  }
  CHECK_U64(rewritten[0], 160 * 20);
  CHECK_U64(merges[0], 16);
  CHECK_U64(rewritten[1], 224 * 20);
  CHECK_U64(merges[1], 32);
}

TEST(merged_files_outlive_sessions_for_the_grace_period) {
  lake k;
  fifty_partitions(&k, "grace");
  char err[1024];
  tl_session *old;
  if (tl_session_open(&old, k.lake, INT64_MIN, INT64_MAX, err, sizeof err))
    FAILF("session: %s", err);
  CHECK_U64(tl_session_files(old), 100);
  char *before = session_csv(old, fingerprint_sql, err, sizeof err);
  CHECK(before != NULL);
  tl_merge_opts o = small_limits(SEC);
  if (tl_lake_merge_with(k.lake, NULL, &o, NULL, err, sizeof err))
    FAILF("merge: %s", err);
  /* Within the grace period: the old files are all there, and the session
   * opened before the merge reads them. */
  uint64_t deleted = 0;
  CHECK_EQ(tl_trash_purge(k.store, tl_wall_ns(), &deleted), 0);
  CHECK_U64(deleted, 0);
  CHECK_EQ(files_of(k.data, "log_entries"), 50 + 6);
  char *during = session_csv(old, fingerprint_sql, err, sizeof err);
  if (!during)
    FAILF("the session opened before the merge: %s", err);
  CHECK_STR(during, before);
  /* A new session reads the merged files only. */
  tl_session *fresh;
  if (tl_session_open(&fresh, k.lake, INT64_MIN, INT64_MAX, err, sizeof err))
    FAILF("session: %s", err);
  CHECK_U64(tl_session_files(fresh), 6 + 3);
  char *now = session_csv(fresh, fingerprint_sql, err, sizeof err);
  CHECK(now != NULL);
  CHECK_STR(now, before);
  /* After it, the old files are gone; so is the old session's view of
   * them (the period bounds how long a session may keep its views). */
  th_sleep_ms(1100);
  CHECK_EQ(tl_trash_purge(k.store, tl_wall_ns(), &deleted), 0);
  CHECK_U64(deleted, 100);
  CHECK_EQ(files_of(k.data, "log_entries"), 6);
  CHECK_EQ(files_of(k.data, "measures"), 3);
  char *late = session_csv(old, fingerprint_sql, err, sizeof err);
  CHECK(late == NULL);
  free(late);
  char *again = session_csv(fresh, fingerprint_sql, err, sizeof err);
  CHECK(again != NULL);
  CHECK_STR(again, before);
  tl_session_close(old);
  tl_session_close(fresh);
  free(before);
  free(during);
  free(now);
  free(again);
  lake_close(&k);
}

static int first_file(void *ctx, const tl_partition *p) {
  snprintf(ctx, TL_PARTITION_FILE_MAX, "%s", p->file);
  return 1; /* the first one only */
}

/* A file removed by hand fails its run's merge, not the others'. */
TEST(merge_with_a_missing_file_fails_that_run_only) {
  lake k;
  fifty_partitions(&k, "missing");
  char file[TL_PARTITION_FILE_MAX] = "", path[1024];
  CHECK_EQ(tl_catalog_list_partitions(k.cat, "log_entries", "global", INT64_MIN,
                                      INT64_MAX, first_file, file),
           1);
  snprintf(path, sizeof path, "%s/%s", k.data, file);
  CHECK_EQ(unlink(path), 0);
  tl_merge_opts o = small_limits(0);
  tl_merge_stats st;
  memset(&st, 0, sizeof st);
  char err[1024] = "";
  CHECK(tl_lake_merge_with(k.lake, NULL, &o, &st, err, sizeof err) != 0);
  fprintf(stderr, "merge failed as expected: %s\n", err);
  CHECK(strstr(err, "log_entries") != NULL);
  CHECK_U64(st.merges, 5 + 3);
  CHECK_U64(partitions(k.cat, "log_entries").n, 9 + 5);
  CHECK_U64(partitions(k.cat, "measures").n, 3);
  char dir[700];
  snprintf(dir, sizeof dir, "%s/views", k.data);
  CHECK_EQ(th_count_files(dir, ".tmp-", ""), 0);
  CHECK_EQ(tl_trash_purge(k.store, tl_wall_ns(), NULL), 0);
  CHECK_EQ(files_of(k.data, "log_entries"), 8 + 5); /* the 9th is gone */
  lake_close(&k);
}

typedef struct merger {
  tl_lake *lake;
  tl_merge_stats st;
  int rc;
  char err[1024];
} merger;

static void *merge_thread(void *arg) {
  merger *m = arg;
  tl_merge_opts o = small_limits(0);
  m->rc = tl_lake_merge_with(m->lake, NULL, &o, &m->st, m->err, sizeof m->err);
  return NULL;
}

/* Four compactors (each its own DuckDB) at once: each run is merged once,
 * the losers delete their files, and no row is lost or doubled. */
TEST(concurrent_merges_keep_rows_and_leave_no_orphan_file) {
  lake k;
  fifty_partitions(&k, "concurrent");
  char *before = query(&k, fingerprint_sql);
  merger m[4];
  pthread_t t[4];
  memset(m, 0, sizeof m);
  for (int i = 0; i < 4; i++) {
    if (tl_lake_open(&m[i].lake, k.cat, k.store, m[i].err, sizeof m[i].err))
      FAILF("lake: %s", m[i].err);
    CHECK_EQ(pthread_create(&t[i], NULL, merge_thread, &m[i]), 0);
  }
  uint64_t merges = 0, conflicts = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    if (m[i].rc)
      FAILF("merger %d: %s", i, m[i].err);
    merges += m[i].st.merges;
    conflicts += m[i].st.conflicts;
    tl_lake_close(m[i].lake);
  }
  fprintf(stderr, "%" PRIu64 " merges recorded, %" PRIu64 " lost a race\n",
          merges, conflicts);
  part_count logs = partitions(k.cat, "log_entries");
  part_count ms = partitions(k.cat, "measures");
  CHECK(logs.n >= 6 && logs.n <= 10);
  CHECK(ms.n >= 3 && ms.n <= 6);
  CHECK_U64(logs.blocks, 50);
  CHECK_U64(ms.blocks, 50);
  char *after = query(&k, fingerprint_sql);
  CHECK_STR(after, before);
  CHECK_EQ(tl_trash_purge(k.store, tl_wall_ns(), NULL), 0);
  CHECK_EQ(files_of(k.data, "log_entries"), logs.n);
  CHECK_EQ(files_of(k.data, "measures"), ms.n);
  free(before);
  free(after);
  lake_close(&k);
}

/* ---- Retention ------------------------------------------------------------
 */

static void write_file(const char *path) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fputs("not really parquet", f);
  fclose(f);
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Orphan files (a stray partition file, a COPY's temp file left by a crash,
 * one under a per-instance view) are deleted by the second sweep that finds
 * them, never the first; files of partitions, files in the trash (not yet
 * due) and files that are not Parquet are left alone; the rows stay. */
TEST(sweep_deletes_orphans_found_twice) {
  lake k;
  lake_open(&k, "sweep", morning());
  for (int i = 0; i < 3; i++)
    add_block(&k, i, morning() + i * 60 * SEC, true);
  char *before = query(&k, fingerprint_sql);
  /* Merged away (fan-in 2: three partitions of one block merge), in the
   * trash for an hour. */
  tl_merge_opts o = {.grace_ns = 3600 * SEC, .fan_in = 2};
  char err[1024];
  if (tl_lake_merge_with(k.lake, "log_entries", &o, NULL, err, sizeof err))
    FAILF("merge: %s", err);
  CHECK_U64(partitions(k.cat, "log_entries").n, 1);
  CHECK_EQ(files_of(k.data, "log_entries"), 4);
  int64_t day = morning() / DAY;
  char stray[900], tmp[900], inst[900], notes[900], dir[800];
  snprintf(stray, sizeof stray,
           "%s/views/log_entries/global/%lld/"
           "0b6f6e2c-6a4e-4c8e-9a3d-3f1f0e2d4c5b.v2.parquet",
           k.data, (long long)day);
  snprintf(tmp, sizeof tmp, "%s/views/measures/global/%lld/.tmp-x.parquet",
           k.data, (long long)day);
  snprintf(notes, sizeof notes, "%s/views/measures/global/%lld/notes.txt",
           k.data, (long long)day);
  snprintf(dir, sizeof dir,
           "%s/views/thread_spans/5d1c2a7e-0000-4000-8000-000000000001/%lld",
           k.data, (long long)day);
  CHECK_EQ(tl_mkdirs(dir), 0);
  snprintf(inst, sizeof inst, "%s/x.parquet", dir);
  write_file(stray);
  write_file(tmp);
  write_file(notes);
  write_file(inst);
  tl_orphan_sweep *sw = NULL;
  uint64_t deleted = 0;
  if (tl_lake_sweep(k.lake, &sw, &deleted, err, sizeof err))
    FAILF("sweep: %s", err);
  CHECK_U64(deleted, 0);
  CHECK(exists(stray) && exists(tmp) && exists(inst));
  if (tl_lake_sweep(k.lake, &sw, &deleted, err, sizeof err))
    FAILF("sweep: %s", err);
  CHECK_U64(deleted, 3);
  CHECK(!exists(stray) && !exists(tmp) && !exists(inst) && exists(notes));
  /* The partition and the three trashed files of log_entries, the three
   * partitions of measures. */
  CHECK_EQ(files_of(k.data, "log_entries"), 4);
  CHECK_EQ(files_of(k.data, "measures"), 3);
  char *after = query(&k, fingerprint_sql);
  CHECK_STR(after, before);
  /* A new orphan waits for the next sweep but one. */
  write_file(stray);
  deleted = 0;
  CHECK_EQ(tl_lake_sweep(k.lake, &sw, &deleted, err, sizeof err), 0);
  CHECK(deleted == 0 && exists(stray));
  CHECK_EQ(tl_lake_sweep(k.lake, &sw, &deleted, err, sizeof err), 0);
  CHECK(deleted == 1 && !exists(stray));
  tl_orphan_sweep_free(sw);
  free(before);
  free(after);
  lake_close(&k);
}

/* Runs the tracelake command; returns its exit status, output in `out`. */
static int run_tool(const char *const *args, tl_bytes *out) {
  char *argv[24];
  int n = 0;
  argv[n++] = (char *)TL_TRACELAKE_EXE;
  for (int i = 0; args[i] && n < 23; i++)
    argv[n++] = (char *)args[i];
  argv[n] = NULL;
  const char *path = th_path("tool.out");
  unlink(path);
  int rc = th_wait(th_spawn(argv, path), 120000);
  CHECK_EQ(th_read_file(path, out), 0);
  CHECK_EQ(tl_bytes_append(out, "", 1), 0);
  return rc;
}

/* Runs `tracelake sql --format csv SQL` on the lake in `data` and checks
 * that it succeeds with exactly `want`. */
static void expect_csv(const char *data, const char *sql, const char *want) {
  const char *args[] = {
      "sql",      "--data", data, "--catalog", th_catalog_spec(data),
      "--format", "csv",    sql,  NULL};
  tl_bytes out;
  int rc = run_tool(args, &out);
  if (rc != 0 || strcmp((char *)out.p, want))
    FAILF("sql: %d\n%s\nwanted:\n%s", rc, (char *)out.p, want);
  tl_bytes_free(&out);
}

TEST(retire_removes_old_partitions_files_and_rows) {
  lake k;
  int64_t now = tl_wall_ns();
  lake_open(&k, "retire", now - 11 * DAY);
  for (int i = 0; i < 20; i++) /* ten days old */
    add_block(&k, i, now - 10 * DAY + i * 60 * SEC, true);
  for (int i = 20; i < 25; i++) /* of the last minutes */
    add_block(&k, i, now - 600 * SEC + (i - 20) * 60 * SEC, true);
  CHECK_U64(partitions(k.cat, "log_entries").n, 25);
  char data[512];
  snprintf(data, sizeof data, "%s", k.data);
  lake_close(&k);

  const char *spec = th_catalog_spec(data);
  tl_bytes out;
  const char *retire[] = {
      "admin",  "retire", "--older-than", "5d", "--batch", "7",
      "--data", data,     "--catalog",    spec, NULL};
  int rc = run_tool(retire, &out);
  if (rc != 0 ||
      !strstr((char *)out.p, "retired 20 blocks and 40 partitions older "
                             "than 5d; 0 partition files deleted (this "
                             "run's files in 60 s)"))
    FAILF("admin retire: %d\n%s", rc, (char *)out.p);
  tl_bytes_free(&out);

  /* The rows are gone; the files wait for the grace period. */
  tl_catalog *cat = th_catalog_open(data);
  CHECK_U64(partitions(cat, "log_entries").n, 5);
  CHECK_U64(partitions(cat, "measures").n, 5);
  CHECK_EQ(pending(cat, "log_entries", "log"), 0);
  CHECK_EQ(files_of(data, "log_entries"), 25);
  tl_catalog_counts counts;
  CHECK_EQ(tl_catalog_counts_get(cat, &counts), 0);
  CHECK_U64(counts.blocks, 5);
  tl_catalog_close(cat);

  /* Queries see only the recent rows (and materialize nothing again). */
  expect_csv(data,
             "SELECT count(*) AS n, min(epoch_ns(time)) > "
             "(epoch_ms(now()) - 3600000) * 1000000 AS recent, "
             "(SELECT count(*) FROM measures) AS m FROM log_entries",
             "n,recent,m\n100,true,50\n");

  /* Past the grace period, a purge (a server's, or the next retire's)
   * deletes them. */
  tl_store *store;
  CHECK_EQ(tl_store_open(&store, data), 0);
  uint64_t deleted = 0;
  CHECK_EQ(tl_trash_purge(store, tl_wall_ns() + 61 * SEC, &deleted), 0);
  tl_store_close(store);
  CHECK_U64(deleted, 40);
  CHECK_EQ(files_of(data, "log_entries"), 5);
  CHECK_EQ(files_of(data, "measures"), 5);

  /* With --grace 0, nothing left to retire, nothing left in the trash. */
  const char *again[] = {
      "admin",     "retire", "--older-than", "5d", "--data", data,
      "--catalog", spec,     "--grace",      "0",  NULL};
  rc = run_tool(again, &out);
  if (rc != 0 || !strstr((char *)out.p, "retired 0 blocks and 0 partitions "
                                        "older than 5d; 0 partition files "
                                        "deleted\n"))
    FAILF("admin retire: %d\n%s", rc, (char *)out.p);
  tl_bytes_free(&out);
}

static bool stop_at_once(void *ctx, const tl_retire_stats *st) {
  (void)st;
  ++*(int *)ctx;
  return false;
}

/* A retirement told to stop (a server shutting down) ends after the batch
 * in progress, before any partition while old blocks remain; the next one
 * finishes the work. */
TEST(retire_stops_between_batches_blocks_first) {
  lake k;
  int64_t now = tl_wall_ns(), cutoff = now - 5 * DAY;
  lake_open(&k, "retire-stop", now - 11 * DAY);
  for (int i = 0; i < 20; i++)
    add_block(&k, i, now - 10 * DAY + i * 60 * SEC, true);
  add_block(&k, 20, now - 60 * SEC, true);
  tl_retire_stats st;
  memset(&st, 0, sizeof st);
  char err[512];
  int calls = 0;
  CHECK_EQ(tl_retire(k.cat, k.store, cutoff, 7, now, &st, stop_at_once, &calls,
                     err, sizeof err),
           0);
  CHECK_EQ(calls, 1);
  CHECK_U64(st.blocks, 7);
  CHECK_U64(st.partitions, 0);
  CHECK_U64(partitions(k.cat, "log_entries").n, 21);
  memset(&st, 0, sizeof st);
  CHECK_EQ(tl_retire(k.cat, k.store, cutoff, 7, now, &st, NULL, NULL, err,
                     sizeof err),
           0);
  CHECK_U64(st.blocks, 13);
  CHECK_U64(st.partitions, 40);
  CHECK_U64(st.undeleted, 0);
  CHECK_U64(partitions(k.cat, "log_entries").n, 1);
  CHECK_EQ(tl_retire(k.cat, k.store, cutoff, 0, now, &st, NULL, NULL, err,
                     sizeof err),
           TL_EINVAL);
  CHECK_STR(err, "batch must be 1..100000");
  lake_close(&k);
}

/* ---- The server's maintenance loop --------------------------------------- */

typedef struct served {
  th_server srv;
  char data[512];
  uint8_t pid[16], sid[16];
} served;

static void serve_start(served *s, const char *name, const char *interval) {
  memset(s, 0, sizeof *s);
  snprintf(s->data, sizeof s->data, "%s", th_path(name));
  const char *extra[] = {"--maintain-interval-ms", interval,
                         "--merge-interval-ms", "1000", NULL};
  if (th_server_start(&s->srv, s->data, interval ? extra : NULL))
    FAILF("the server did not start");
  tl_uuid_v4(s->pid);
  tl_uuid_v4(s->sid);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  th_make_process(&b, s->pid, "maint-served");
  th_resp r;
  th_post(&s->srv, TL_MSG_PROCESS, b.p, b.len, &r);
  TH_EXPECT(&r, 200, NULL);
  b.len = 0;
  encode_stream(&b, s->sid, s->pid);
  th_post(&s->srv, TL_MSG_STREAM, b.p, b.len, &r);
  TH_EXPECT(&r, 200, NULL);
  tl_bytes_free(&b);
}

/* Posts a block of 64 events (16 log rows); returns its id in `id`. */
static void serve_block(served *s, uint32_t seed, uint8_t id[16]) {
  th_ids ids;
  memcpy(ids.process, s->pid, 16);
  memcpy(ids.stream, s->sid, 16);
  tl_uuid_v4(ids.block);
  memcpy(id, ids.block, 16);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  th_make_block(&b, &ids, 64, seed, 0);
  th_resp r;
  th_post(&s->srv, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, NULL);
  tl_bytes_free(&b);
}

static bool block_pending(const tl_catalog_block *out, unsigned n,
                          const uint8_t id[16]) {
  for (unsigned i = 0; i < n; i++)
    if (!memcmp(out[i].block_id, id, 16))
      return true;
  return false;
}

TEST(serve_materializes_and_merges_without_queries) {
  served s;
  serve_start(&s, "served", "200");
  tl_catalog *cat = th_catalog_open(s.data);
  static tl_catalog_block out[1000];
  uint8_t ids[20][16];
  for (int i = 0; i < 20; i++) {
    serve_block(&s, (uint32_t)i, ids[i]);
    /* Each block in a partition of its own before the next one: */
    uint64_t until = th_now_ms() + 3000;
    for (;;) {
      unsigned n = 0;
      CHECK_EQ(tl_catalog_blocks_to_materialize(cat, "log_entries", "global",
                                                TL_SCOPE_ALL, "log", INT64_MIN,
                                                INT64_MAX, 1000, out, &n),
               0);
      if (!block_pending(out, n, ids[i]))
        break;
      if (th_now_ms() > until)
        FAILF("block %d not materialized within 3 s (no query ran)", i);
      th_sleep_ms(10);
    }
  }
  CHECK(files_of(s.data, "log_entries") >= 1);
  CHECK(files_of(s.data, "measures") >= 1);
  /* Within a few merge intervals, the 20 partitions of one block are
   * merged down to at most 8: with fan-in 4, sizes where none has 3 times
   * its size in smaller ones beside it, e.g. 6 4 3 2 2 1 1 1. */
  uint64_t until = th_now_ms() + 8000;
  part_count c;
  while ((c = partitions(cat, "log_entries")).n > 8) {
    if (th_now_ms() > until)
      FAILF("no merge within 8 s: %" PRIu64 " partitions, at most %" PRId64
            " blocks each",
            c.n, c.max_blocks);
    th_sleep_ms(50);
  }
  CHECK(c.max_blocks >= 3);
  tl_catalog_close(cat);
  CHECK_EQ(th_server_stop(&s.srv, SIGTERM, 15000), 0);
  CHECK(th_server_log_has(&s.srv, "tracelake: stopped"));
  /* Every row once, through the views. */
  expect_csv(s.data,
             "SELECT count(*) AS n, count(DISTINCT block_id) AS b "
             "FROM log_entries WHERE exe = 'maint-served'",
             "n,b\n320,20\n");
  /* And the server reported its work with its own telemetry. */
  expect_csv(s.data,
             "SELECT sum(value) FILTER (WHERE name = "
             "'maintain_partitions_materialized') > 0 AS mat, "
             "sum(value) FILTER (WHERE name = 'maintain_merges') > 0 "
             "AS merged FROM measures WHERE target = "
             "'tracelake::maintain'",
             "mat,merged\ntrue,true\n");
}

/* The threads that work in the background (the telemetry's flusher, the
 * maintainer) run at nice 10, the others at the process's value. */
TEST(serve_runs_its_background_threads_at_nice_10) {
  served s;
  serve_start(&s, "nice", "200");
  int mine = getpriority(PRIO_PROCESS, 0);
  uint64_t until = th_now_ms() + 5000;
  while (test_thread_nice(s.srv.pid, "tl-flusher") != 10 ||
         test_thread_nice(s.srv.pid, "tl-maintain") != 10) {
    if (th_now_ms() > until)
      FAILF("flusher at %d, maintainer at %d",
            test_thread_nice(s.srv.pid, "tl-flusher"),
            test_thread_nice(s.srv.pid, "tl-maintain"));
    th_sleep_ms(20);
  }
  CHECK_EQ(test_thread_nice(s.srv.pid, "tl-fsql-accept"), mine);
  CHECK_EQ(test_thread_nice(s.srv.pid, "tracelake"), mine); /* main */
  CHECK_EQ(th_server_stop(&s.srv, SIGTERM, 15000), 0);
}

typedef struct old_blocks {
  const uint8_t *sid; /* only this stream's */
  unsigned n;
  char keys[32][128];
} old_blocks;

static int add_old(void *ctx, const tl_catalog_block *b) {
  old_blocks *o = ctx;
  if (memcmp(b->stream_id, o->sid, 16))
    return 0;
  if (o->n < 32)
    tl_store_block_key(b->process_id, b->stream_id, b->block_id, o->keys[o->n]);
  o->n++;
  return 0;
}

static unsigned blocks_in(tl_catalog *cat, const uint8_t sid[16], int64_t begin,
                          int64_t end, old_blocks *o) {
  memset(o, 0, sizeof *o);
  o->sid = sid;
  CHECK_EQ(tl_catalog_foreach_block_in(cat, begin, end, add_old, o), 0);
  return o->n;
}

/* With --retention, the server retires by itself what ended before it: the
 * old blocks' rows and blobs and their partitions, keeping the rest, and
 * reports it with its own telemetry. */
TEST(serve_retires_what_falls_out_of_its_retention) {
  lake k;
  int64_t now = tl_wall_ns(), cutoff = now - 5 * DAY;
  lake_open(&k, "retained", now - 11 * DAY);
  for (int i = 0; i < 20; i++) /* ten days old */
    add_block(&k, i, now - 10 * DAY + i * 60 * SEC, true);
  for (int i = 20; i < 25; i++) /* of the last minutes */
    add_block(&k, i, now - 600 * SEC + (i - 20) * 60 * SEC, true);
  static old_blocks old;
  CHECK_EQ(blocks_in(k.cat, k.sid, INT64_MIN, cutoff, &old), 20);
  uint8_t sid[16];
  memcpy(sid, k.sid, 16);
  char data[512];
  snprintf(data, sizeof data, "%s", k.data);
  lake_close(&k);

  th_server srv;
  const char *extra[] = {"--retention", "5d", NULL};
  if (th_server_start(&srv, data, extra))
    FAILF("the server did not start");
  tl_catalog *cat = th_catalog_open(data);
  static old_blocks left;
  uint64_t until = th_now_ms() + 10000;
  while (blocks_in(cat, sid, INT64_MIN, cutoff, &left) ||
         partitions_in(cat, "log_entries", INT64_MIN, cutoff).n ||
         partitions_in(cat, "measures", INT64_MIN, cutoff).n) {
    if (th_now_ms() > until)
      FAILF("not retired within 10 s: %u old blocks, %" PRIu64 " and %" PRIu64
            " partitions",
            left.n, partitions_in(cat, "log_entries", INT64_MIN, cutoff).n,
            partitions_in(cat, "measures", INT64_MIN, cutoff).n);
    th_sleep_ms(50);
  }
  static old_blocks kept;
  CHECK_EQ(blocks_in(cat, sid, cutoff, INT64_MAX, &kept), 5);
  tl_catalog_close(cat);
  tl_store *store;
  CHECK_EQ(tl_store_open(&store, data), 0);
  for (unsigned i = 0; i < old.n; i++) { /* the old blobs are gone */
    uint8_t *p = NULL;
    size_t n;
    CHECK_EQ(tl_store_get(store, old.keys[i], 1 << 20, &p, &n), TL_ENOTFOUND);
  }
  for (unsigned i = 0; i < kept.n; i++) { /* the others are not */
    uint8_t *p = NULL;
    size_t n;
    CHECK_EQ(tl_store_get(store, kept.keys[i], 1 << 20, &p, &n), 0);
    free(p);
  }
  tl_store_close(store);
  CHECK_EQ(th_server_stop(&srv, SIGTERM, 15000), 0);

  /* The recent rows are all there; the server counted what it retired. */
  expect_csv(
      data,
      "SELECT (SELECT count(*) FROM log_entries WHERE exe = 'maint-test') AS "
      "n, (SELECT count(*) FROM measures WHERE exe = 'maint-test') AS m, "
      "(SELECT sum(value) FROM measures WHERE name = "
      "'maintain_blocks_retired') AS blocks, (SELECT sum(value) FROM measures "
      "WHERE name = 'maintain_partitions_retired') AS parts",
      "n,m,blocks,parts\n100,50,20.0,40.0\n");
}

TEST(serve_without_maintenance_materializes_nothing_by_itself) {
  served s;
  serve_start(&s, "idle", "0");
  uint8_t id[16];
  serve_block(&s, 1, id);
  th_sleep_ms(1500);
  tl_catalog *cat = th_catalog_open(s.data);
  CHECK(pending(cat, "log_entries", "log") >= 1);
  CHECK_U64(partitions(cat, "log_entries").n, 0);
  tl_catalog_close(cat);
  CHECK_EQ(th_server_stop(&s.srv, SIGTERM, 15000), 0);
}

/* ---- Freshness ---------------------------------------------------------- */

#define FRESH_BLOCKS 80

typedef struct fresh {
  served *s;
  pthread_mutex_t mu;
  uint8_t ids[FRESH_BLOCKS][16];
  uint64_t acked_ms[FRESH_BLOCKS]; /* 0: not yet */
  int nposted;
} fresh;

static void *fresh_poster(void *arg) {
  fresh *f = arg;
  uint32_t rnd = 12345;
  for (int i = 0; i < FRESH_BLOCKS; i++) {
    uint8_t id[16];
    serve_block(f->s, (uint32_t)i, id);
    uint64_t t = th_now_ms();
    pthread_mutex_lock(&f->mu);
    memcpy(f->ids[i], id, 16);
    f->acked_ms[i] = t;
    f->nposted = i + 1;
    pthread_mutex_unlock(&f->mu);
    rnd = rnd * 1103515245u + 12345u;
    th_sleep_ms(30 + (rnd >> 16) % 140); /* not in step with the loop */
  }
  th_http_done();
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The figure: p95 of acknowledgement -> materialized by the
 * server's loop (a query then opens partitions and materializes nothing),
 * at the default interval unless TL_FRESHNESS_INTERVAL_MS says otherwise.
 * Printed; timing never fails the test. */
TEST(freshness_figure) {
  const char *interval = getenv("TL_FRESHNESS_INTERVAL_MS");
  served s;
  serve_start(&s, "fresh", interval);
  tl_catalog *cat = th_catalog_open(s.data);
  static fresh f;
  memset(&f, 0, sizeof f);
  f.s = &s;
  pthread_mutex_init(&f.mu, NULL);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, fresh_poster, &f), 0);
  static tl_catalog_block out[1000];
  uint64_t lat[FRESH_BLOCKS];
  bool seen[FRESH_BLOCKS] = {false};
  int nseen = 0;
  uint64_t deadline = th_now_ms() + 60000;
  while (nseen < FRESH_BLOCKS) {
    if (th_now_ms() > deadline)
      FAILF("only %d of %d blocks materialized within 60 s", nseen,
            FRESH_BLOCKS);
    unsigned n = 0;
    CHECK_EQ(tl_catalog_blocks_to_materialize(cat, "log_entries", "global",
                                              TL_SCOPE_ALL, "log", INT64_MIN,
                                              INT64_MAX, 1000, out, &n),
             0);
    uint64_t now = th_now_ms();
    pthread_mutex_lock(&f.mu);
    for (int i = 0; i < f.nposted; i++)
      if (!seen[i] && !block_pending(out, n, f.ids[i])) {
        seen[i] = true;
        lat[nseen++] = now - f.acked_ms[i];
      }
    pthread_mutex_unlock(&f.mu);
    th_sleep_ms(5);
  }
  pthread_join(t, NULL);
  tl_catalog_close(cat);
  CHECK_EQ(th_server_stop(&s.srv, SIGTERM, 15000), 0);
  qsort(lat, FRESH_BLOCKS, sizeof lat[0], cmp_u64);
  printf("freshness (%s catalog, --maintain-interval-ms %s): %d blocks, "
         "acknowledged -> materialized p50 %" PRIu64 " ms, p95 %" PRIu64
         " ms, max %" PRIu64 " ms (target p95 <= 1000 ms)\n",
         th_pg() ? "postgresql" : "sqlite", interval ? interval : "default",
         FRESH_BLOCKS, lat[FRESH_BLOCKS / 2], lat[FRESH_BLOCKS * 95 / 100],
         lat[FRESH_BLOCKS - 1]);
  fflush(stdout);
}

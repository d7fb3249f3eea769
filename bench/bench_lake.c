/* bench_lake.c - the lakehouse's speed (issue 4): materializing blocks into
 * Parquet, queries through the SQL views, and freshness (acknowledgement to
 * visible in log_entries), each beside a DuckDB baseline measured in the
 * same run. bench/run-lake.sh drives it; docs/performance.md ("Lakehouse")
 * has the method and the figures.
 *
 * The lake is real: a SQLite catalog and a blob store in a temporary
 * directory, fed by libtracelake through the in-process ingest sink (every
 * block durable before its acknowledgement), from several threads recording
 * varied formatted logs at every level plus some metrics. Beside the targets,
 * it measures what explains them: decoding alone, DuckDB's own Parquet
 * writer over the same rows, the partitions read without the view, and the
 * same rows in other Parquet formats. Figures are printed as text and as
 * `RESULT bench=lake ...` lines; timing never makes this program fail, wrong
 * row counts do. */
#define TL_TARGET "bench::lake"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tracelake/tracelake.h>

#include "bench.h"
#include "common/common.h"
#include "duckdb.h"
#include "ingest/ingest.h"
#include "lake/catalog.h"
#include "lake/store.h"
#include "query/lake.h"
#include "query/lake_impl.h" /* TL_PARTITION_FORMAT */
#include "wire/wire.h"

extern char **environ;

#define MAX_THREADS 64
#define MAX_REPS 1000
#define MAX_ROUNDS 10000
#define MAX_BLOB ((size_t)TL_WIRE_MAX_PAYLOAD + 4096)
#define TARGET_MAT_PER_CORE 2e6 /* events per CPU-second */
#define TARGET_QUERY_RATIO 1.5  /* view p50 / native-table p50 */
#define TARGET_FRESH_P95_MS 1000.0

typedef struct opts {
  const char *dir;  /* parent of the lake's temporary directory */
  const char *perf; /* directory for perf profiles of each phase, or NULL */
  const char *callgraph; /* perf --call-graph mode ("fp", "dwarf") */
  uint64_t events;       /* log entries */
  unsigned metric_every, threads, reps, rounds, keep;
} opts;

/* ---- Small helpers ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of v[0..n), sorted in place. */
static double pct(double *v, size_t n, double p) {
  if (!n)
    return 0;
  qsort(v, n, sizeof *v, cmp_double);
  size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
  return v[k ? (k > n ? n : k) - 1 : 0];
}

static double ms_since(uint64_t t0) {
  return (double)(bench_mono_ns() - t0) / 1e6;
}

/* A phase's wall and CPU time (all of this process's threads: DuckDB's
 * workers included). */
typedef struct span {
  uint64_t t0;
  double cpu0;
  double wall_s, cpu_s;
} span;

static void span_begin(span *s) {
  s->cpu0 = bench_cpu_seconds();
  s->t0 = bench_mono_ns();
}

static void span_end(span *s) {
  s->wall_s = (double)(bench_mono_ns() - s->t0) / 1e9;
  s->cpu_s = bench_cpu_seconds() - s->cpu0;
}

/* perf record of this process around one phase, when --perf is given. */
static pid_t perf_start(const opts *o, const char *phase) {
  if (!o->perf)
    return 0;
  char out[1024], pid[32], cg[64];
  snprintf(out, sizeof out, "%s/%s.data", o->perf, phase);
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  snprintf(cg, sizeof cg, "--call-graph=%s", o->callgraph);
  /* DWARF unwinding copies stacks: sample less often. */
  char *freq = strncmp(o->callgraph, "dwarf", 5) ? "999" : "199";
  char *argv[] = {"perf", "record", "-q", "-e", "cpu-clock", "-F", freq,
                  cg,     "-p",     pid,  "-o", out,         NULL};
  pid_t p;
  if (posix_spawnp(&p, "perf", NULL, NULL, argv, environ)) {
    fprintf(stderr, "bench_lake: cannot start perf: %s\n", strerror(errno));
    return 0;
  }
  struct timespec d = {0, 400 * 1000000L}; /* let it attach */
  nanosleep(&d, NULL);
  return p;
}

static void perf_stop(pid_t p) {
  if (p <= 0)
    return;
  kill(p, SIGINT);
  int st;
  waitpid(p, &st, 0);
}

/* ---- The workload ---------------------------------------------------------
 * Log messages of a web service: level and printf arguments derived from one
 * random word, recorded with TL_<level>. */

static const char *const RES[8] = {"users",    "orders",   "items",  "carts",
                                   "sessions", "invoices", "search", "health"};
static const char *const USERS[16] = {
    "alice", "bob",  "carol",   "dave", "erin",   "frank", "grace",  "heidi",
    "ivan",  "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil"};
static const char *const CITIES[16] = {"paris",  "berlin", "madrid",  "lisbon",
                                       "rome",   "vienna", "prague",  "warsaw",
                                       "oslo",   "dublin", "athens",  "sofia",
                                       "zagreb", "riga",   "tallinn", "bern"};
static const char *const TABLES[8] = {"accounts", "orders",   "payments",
                                      "events",   "sessions", "audit_log",
                                      "products", "shipments"};
static const char *const PREFIX[4] = {"session", "user", "feed", "token"};
static const unsigned STATUS[8] = {200, 200, 200, 200, 201, 204, 404, 500};

/* X(case, LEVEL, format, args...) with a, b, c (16-bit) and r in scope. */
#define MESSAGES(X)                                                            \
  X(0, INFO, "GET /api/v1/%s/%u -> %u in %u us", RES[a & 7], b, STATUS[c & 7], \
    40 + a % 9000)                                                             \
  X(1, INFO, "POST /api/v1/%s -> %u in %u us (%u bytes)", RES[b & 7],          \
    STATUS[a & 7], 80 + c % 20000, a)                                          \
  X(2, INFO, "user %s logged in from %s", USERS[a & 15], CITIES[b & 15])       \
  X(3, INFO, "heartbeat")                                                      \
  X(4, DEBUG, "cache %s for key %s:%08x (shard %u)", c & 1 ? "hit" : "miss",   \
    PREFIX[a & 3], (unsigned)(r >> 8), b & 31)                                 \
  X(5, DEBUG, "worker %u picked job %u from queue %s", a & 15, b * 65536u + c, \
    TABLES[c & 7])                                                             \
  X(6, WARN, "slow query on %s: %u ms, %u rows", TABLES[a & 7],                \
    200 + b % 5000, c)                                                         \
  X(7, WARN, "retrying request %u to %s after %u ms (attempt %u)", b,          \
    CITIES[a & 15], 10u << (c & 7), 1 + (c & 3))                               \
  X(8, ERROR, "connection to 10.0.%u.%u:%u reset after %u bytes", a & 255,     \
    b & 255, 5432 + (c & 7), a * 7 + b)                                        \
  X(9, TRACE, "poll loop iteration %u: %u events ready", b, c & 63)            \
  X(10, ERROR, "request %u rejected: needle rule %s matched", b,               \
    PREFIX[a & 3])                                                             \
  X(11, FATAL, "out of file descriptors (%u open)", 1024 + (a & 1023))

/* Which message entry `i` is: mostly INFO, then DEBUG, WARN, ERROR, TRACE;
 * one in 10 007 holds "needle", one in 1 000 003 is FATAL. */
static unsigned pick(uint64_t i, uint64_t r) {
  static const uint8_t slots[16] = {0, 0, 0, 0, 0, 1, 1, 2,
                                    3, 4, 4, 5, 6, 7, 8, 9};
  if (i % 1000003 == 999)
    return 11;
  if (i % 10007 == 17)
    return 10;
  return slots[r & 15];
}

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

#define WORDS(r)                                                               \
  unsigned a = (unsigned)((r) >> 16 & 0xffff),                                 \
           b = (unsigned)((r) >> 32 & 0xffff), c = (unsigned)((r) >> 48)

static void record_entry(uint64_t i, uint64_t r) {
  WORDS(r);
#define RECORD(k, lvl, ...)                                                    \
  case k:                                                                      \
    TL_##lvl(__VA_ARGS__);                                                     \
    break;
  switch (pick(i, r)) { MESSAGES(RECORD) }
#undef RECORD
}

static void record_metric(uint64_t k, uint64_t r) {
  switch (k % 3) {
  case 0:
    TL_IMETRIC("request_bytes", "bytes", r >> 44);
    break;
  case 1:
    TL_FMETRIC("cpu_load", "ratio", (double)(r & 0xffff) / 65536.0);
    break;
  default:
    TL_IMETRIC("request_duration", "ticks", (r >> 48) * 1000);
    break;
  }
}

typedef struct gen_arg {
  uint64_t first, count;
  unsigned id, metric_every;
  uint64_t metrics; /* out */
} gen_arg;

static void *generate(void *arg) {
  gen_arg *g = arg;
  char name[16];
  snprintf(name, sizeof name, "http-worker-%u", g->id);
  pthread_setname_np(pthread_self(), name);
  uint64_t s = 0x9e3779b97f4a7c15ull * (g->id + 1);
  for (uint64_t i = g->first; i < g->first + g->count; i++) {
    uint64_t r = rnd(&s);
    record_entry(i, r);
    if (g->metric_every && i % g->metric_every == 0) {
      record_metric(i / g->metric_every, r);
      g->metrics++;
    }
    /* Keep the backlog (events recorded, not yet stored) in check: the
     * sink stores a block per fsync, far slower than recording. */
    if ((i - g->first) % 250000 == 249999)
      tl_flush();
  }
  return NULL;
}

/* ---- The lake under test --------------------------------------------------
 */

typedef struct lake_env {
  char data[512];
  tl_catalog *cat;
  tl_store *store;
  tl_ingest *ig;
  tl_lake *lake;
  bool runtime;
} lake_env;

static int lake_setup(lake_env *e, const opts *o) {
  char spec[600], err[512];
  memset(e, 0, sizeof *e);
  if (bench_mkdtemp(o->dir, "tlbench-lake", e->data, sizeof e->data))
    return -1;
  snprintf(spec, sizeof spec, "%s/catalog.db", e->data);
  if (tl_catalog_open(&e->cat, spec, err, sizeof err)) {
    fprintf(stderr, "bench_lake: catalog: %s\n", err);
    return -1;
  }
  if (tl_store_open(&e->store, e->data) ||
      tl_ingest_open(&e->ig, e->cat, e->store)) {
    fprintf(stderr, "bench_lake: cannot open the store\n");
    return -1;
  }
  if (tl_lake_open(&e->lake, e->cat, e->store, err, sizeof err)) {
    fprintf(stderr, "bench_lake: lake: %s\n", err);
    return -1;
  }
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.level = TL_LEVEL_TRACE;
  cfg.sink = tl_ingest_sink;
  cfg.sink_ctx = e->ig;
  /* The producers record much faster than the ingest sink stores blocks
   * (a fsync each): the backlog waits in memory (the producers flush every
   * 250 000 entries), nothing is dropped. */
  cfg.memory_limit = (size_t)2 << 30;
  cfg.properties = "service=bench-lake,zone=eu-west";
  if (tl_init(&cfg)) {
    fprintf(stderr, "bench_lake: tl_init failed\n");
    return -1;
  }
  e->runtime = true;
  return 0;
}

static void lake_teardown(lake_env *e, const opts *o) {
  if (e->runtime)
    tl_shutdown();
  tl_lake_close(e->lake);
  tl_ingest_close(e->ig);
  tl_store_close(e->store);
  tl_catalog_close(e->cat);
  if (e->data[0] && !o->keep)
    bench_rm_rf(e->data);
  else if (e->data[0])
    printf("lake kept in %s\n", e->data);
}

/* ---- A plain DuckDB for the baselines ------------------------------------
 */

typedef struct duck {
  duckdb_database db;
  duckdb_connection c;
} duck;

static int duck_exec(duckdb_connection c, const char *sql) {
  duckdb_result r;
  int rc = 0;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    fprintf(stderr, "bench_lake: duckdb: %s\n  in: %.300s\n",
            duckdb_result_error(&r), sql);
    rc = -1;
  }
  duckdb_destroy_result(&r);
  return rc;
}

static int duck_open(duck *d, const char *data) {
  duckdb_config cfg;
  duckdb_create_config(&cfg);
  duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
  duckdb_set_config(cfg, "autoload_known_extensions", "false");
  char *err = NULL;
  int rc = duckdb_open_ext(NULL, &d->db, cfg, &err) == DuckDBError ? -1 : 0;
  duckdb_destroy_config(&cfg);
  if (rc) {
    fprintf(stderr, "bench_lake: duckdb: %s\n", err ? err : "?");
    duckdb_free(err);
    return -1;
  }
  duckdb_connect(d->db, &d->c);
  char sql[1024];
  snprintf(sql, sizeof sql, "SET temp_directory='%s/base/.tmp'", data);
  return duck_exec(d->c, sql);
}

static void duck_close(duck *d) {
  duckdb_disconnect(&d->c);
  duckdb_close(&d->db);
}

/* Runs a query and prints its rows to `out`, as a client would read them:
 * the native side of the query comparison. */
static int duck_print(duckdb_connection c, const char *sql, FILE *out) {
  duckdb_result r;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    fprintf(stderr, "bench_lake: duckdb: %s\n", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    return -1;
  }
  idx_t rows = duckdb_row_count(&r), cols = duckdb_column_count(&r);
  for (idx_t i = 0; i < rows; i++) {
    for (idx_t k = 0; k < cols; k++) {
      char *v = duckdb_value_varchar(&r, k, i);
      fprintf(out, "%s%s", k ? "," : "", v ? v : "");
      duckdb_free(v);
    }
    fputc('\n', out);
  }
  duckdb_destroy_result(&r);
  return 0;
}

/* One integer from a query (count(*)), or -1. */
static int64_t duck_int(duckdb_connection c, const char *sql) {
  duckdb_result r;
  int64_t v = -1;
  if (duckdb_query(c, sql, &r) == DuckDBSuccess && duckdb_row_count(&r) == 1)
    v = duckdb_value_int64(&r, 0, 0);
  else
    fprintf(stderr, "bench_lake: duckdb: %s\n", duckdb_result_error(&r));
  duckdb_destroy_result(&r);
  return v;
}

/* ---- Phase 1: ingest ------------------------------------------------------
 */

typedef struct ingest_result {
  uint64_t logs, metrics, blocks, dropped;
  double record_s, total_s;
} ingest_result;

static int phase_ingest(const opts *o, ingest_result *ir) {
  pthread_t t[MAX_THREADS];
  gen_arg g[MAX_THREADS];
  memset(ir, 0, sizeof *ir);
  memset(g, 0, sizeof g);
  tl_stats s0, s1;
  tl_stats_get(&s0);
  uint64_t per = o->events / o->threads, t0 = bench_mono_ns();
  unsigned started = 0;
  for (; started < o->threads; started++) {
    unsigned i = started;
    g[i].first = per * i;
    g[i].count = i + 1 == o->threads ? o->events - per * i : per;
    g[i].id = i;
    g[i].metric_every = o->metric_every;
    if (pthread_create(&t[i], NULL, generate, &g[i]))
      break;
  }
  for (unsigned i = 0; i < started; i++) {
    pthread_join(t[i], NULL);
    ir->metrics += g[i].metrics;
  }
  if (started < o->threads) {
    fprintf(stderr, "bench_lake: cannot start the recording threads\n");
    return -1;
  }
  ir->record_s = (double)(bench_mono_ns() - t0) / 1e9;
  tl_flush(); /* every block handed to the sink: stored durably */
  ir->total_s = (double)(bench_mono_ns() - t0) / 1e9;
  tl_stats_get(&s1);
  ir->logs = o->events;
  ir->blocks = s1.blocks - s0.blocks;
  for (int k = 0; k < TL_DROP__COUNT; k++)
    ir->dropped += s1.dropped[k] - s0.dropped[k];
  ir->dropped += s1.blocks_failed - s0.blocks_failed;
  printf("ingest: %" PRIu64 " log entries + %" PRIu64
         " metrics from %u threads, %" PRIu64 " blocks (%.1f MB), recorded "
         "and stored durably in %.2f s (%.2f M events/s through the "
         "in-process ingest sink, a fsync per block); dropped %" PRIu64 "\n",
         ir->logs, ir->metrics, o->threads, ir->blocks,
         (double)(s1.bytes - s0.bytes) / 1e6, ir->total_s,
         (double)(ir->logs + ir->metrics) / ir->total_s / 1e6, ir->dropped);
  bench_result("RESULT bench=lake name=ingest logs=%" PRIu64 " metrics=%" PRIu64
               " blocks=%" PRIu64
               " record_s=%.3f total_s=%.3f dropped=%" PRIu64,
               ir->logs, ir->metrics, ir->blocks, ir->record_s, ir->total_s,
               ir->dropped);
  return ir->dropped ? -1 : 0;
}

/* ---- Phase 2: materialization and its baselines ----------------------------
 */

typedef struct mat_result {
  tl_materialize_stats st;
  span sp;
} mat_result;

static void print_rate(const char *name, const char *label, uint64_t rows,
                       const span *sp, double target_per_core) {
  double per_s = sp->wall_s > 0 ? (double)rows / sp->wall_s : 0;
  double per_core = sp->cpu_s > 0 ? (double)rows / sp->cpu_s : 0;
  double ns = rows ? sp->cpu_s * 1e9 / (double)rows : 0;
  const char *verdict = target_per_core <= 0          ? ""
                        : per_core >= target_per_core ? "  met"
                                                      : "  MISSED";
  printf("  %-44s %11" PRIu64 " %8.2f %8.2f %9.2f %9.2f %7.0f%s\n", label, rows,
         sp->wall_s, sp->cpu_s, per_s / 1e6, per_core / 1e6, ns, verdict);
  bench_result("RESULT bench=lake name=%s rows=%" PRIu64
               " wall_s=%.3f cpu_s=%.3f events_per_s=%.0f "
               "events_per_cpu_s=%.0f cpu_ns_per_event=%.1f%s%s",
               name, rows, sp->wall_s, sp->cpu_s, per_s, per_core, ns,
               target_per_core > 0 ? " met=" : "",
               target_per_core <= 0          ? ""
               : per_core >= target_per_core ? "yes"
                                             : "no");
}

static void print_rate_header(void) {
  printf("  %-44s %11s %8s %8s %9s %9s %7s\n", "", "rows", "wall s", "CPU s",
         "M rows/s", "M/CPU-s", "CPU ns");
}

static int phase_materialize(const opts *o, lake_env *e, mat_result *mr) {
  char err[1024];
  memset(mr, 0, sizeof *mr);
  pid_t pp = perf_start(o, "materialize");
  span_begin(&mr->sp);
  int rc = tl_lake_materialize(e->lake, tl_wall_ns(), &mr->st, err, sizeof err);
  span_end(&mr->sp);
  perf_stop(pp);
  if (rc) {
    fprintf(stderr, "bench_lake: materialize: %s\n", err);
    return -1;
  }
  return 0;
}

/* Decode only: every block read from the store and decoded, events counted
 * (what materialization does before DuckDB). */
typedef struct block_key {
  char key[128];
  tl_catalog_block b;
} block_key;

typedef struct key_list {
  block_key *v;
  size_t n, cap;
} key_list;

static int add_key(void *ctx, const tl_catalog_block *b) {
  key_list *k = ctx;
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 1024;
    block_key *v = realloc(k->v, cap * sizeof *v);
    if (!v)
      return TL_ENOMEM;
    k->v = v;
    k->cap = cap;
  }
  k->v[k->n].b = *b;
  tl_store_block_key(b->process_id, b->stream_id, b->block_id,
                     k->v[k->n++].key);
  return 0;
}

typedef struct decode_count {
  uint64_t logs, metrics, other, msg_bytes;
} decode_count;

static int count_event(void *ctx, const tl_wire_event *ev) {
  decode_count *d = ctx;
  if (ev->type == TL_EV_LOG || ev->type == TL_EV_LOGF) {
    d->logs++;
    d->msg_bytes += ev->v.msg.n;
  } else if (ev->type == TL_EV_IMETRIC || ev->type == TL_EV_FMETRIC) {
    d->metrics++;
  } else {
    d->other++;
  }
  return 0;
}

static int baseline_decode(lake_env *e, const key_list *k, decode_count *d,
                           span *sp) {
  memset(d, 0, sizeof *d);
  span_begin(sp);
  int rc = 0;
  for (size_t i = 0; i < k->n && !rc; i++) {
    uint8_t *p = NULL;
    size_t n = 0;
    if (tl_store_get(e->store, k->v[i].key, MAX_BLOB, &p, &n)) {
      rc = -1;
      break;
    }
    tl_block_visitor vis = {d, NULL, count_event};
    tl_wire_error werr = {0};
    if (tl_block_decode(p, n, &vis, &werr))
      rc = -1;
    free(p);
  }
  span_end(sp);
  return rc;
}

/* DuckDB's own Parquet writer over the same rows, from a native in-memory
 * table (the one phase 3 queries: the log entries as the partitions hold
 * them, in their order) to a file in the lake's format, or in `options`:
 * what a COPY costs when DuckDB has nothing to read or decode. The
 * materializer writes the same columns (its ids and process columns as
 * ENUMs, see lake.c). */
static int baseline_writer(duck *d, const char *data, const char *options,
                           span *sp) {
  char sql[2560], path[1024];
  snprintf(path, sizeof path, "%s/base/out.parquet", data);
  snprintf(sql, sizeof sql, "COPY log_entries_blocks TO '%s' (%s)", path,
           options);
  span_begin(sp);
  int rc = duck_exec(d->c, sql);
  span_end(sp);
  unlink(path);
  return rc;
}

/* ---- Phase 3: queries -------------------------------------------------------
 */

static const char *const QUERIES[2][2] = {
    {"group_by_level", "SELECT level, count(*) FROM %s GROUP BY level"},
    {"like_needle", "SELECT count(*) FROM %s WHERE msg LIKE '%%needle%%'"},
};

typedef struct file_list {
  char *sql; /* "'a', 'b'" */
  size_t len, cap;
  uint64_t n;
  const char *data;
} file_list;

static int add_file(void *ctx, const tl_partition *p) {
  file_list *f = ctx;
  size_t need = f->len + strlen(f->data) + strlen(p->file) + 8;
  if (need > f->cap) {
    size_t cap = need * 2;
    char *s = realloc(f->sql, cap);
    if (!s)
      return TL_ENOMEM;
    f->sql = s;
    f->cap = cap;
  }
  f->len += (size_t)snprintf(f->sql + f->len, f->cap - f->len, "%s'%s/%s'",
                             f->n ? ", " : "", f->data, p->file);
  f->n++;
  return 0;
}

static int session_query(tl_session *s, const char *sql, FILE *out) {
  char err[1024];
  if (tl_session_print(s, sql, TL_FORMAT_CSV, out, err, sizeof err)) {
    fprintf(stderr, "bench_lake: query failed: %s\n  %s\n", sql, err);
    return -1;
  }
  return 0;
}

/* The ways the same SQL is run. The first two answer the target: the
 * session's view and a native DuckDB table holding the same rows, loaded
 * from the lake's partitions in time order. (In the order of the partitions,
 * by block, DuckDB compresses `msg` with DICT_FSST and scans it about 1.5x
 * slower: the next variant. The former partitions were sorted by time, so
 * the time-ordered table is the baseline the figures compare with.) Then
 * the partitions read with read_parquet() without the view, and what-ifs:
 * the same rows, in block order, rewritten as one Parquet file per format.
 * All run in the bench's DuckDB but the view, and all in turn within each
 * repetition, so that background load hits them alike. */
typedef struct qvariant {
  const char *name, *label;
  const char *table;   /* NULL: through the session's log_entries view */
  const char *options; /* one-file what-ifs: the COPY options */
  double p50[2], min[2];
  uint64_t bytes; /* one-file what-ifs: the file's size */
} qvariant;

enum { QV_VIEW, QV_NATIVE, QV_BLOCK_ORDER, QV_PARQUET, QV_FORMAT };

static qvariant QV[] = {
    {"view", "view (tl_session_print)", NULL, NULL, {0}, {0}, 0},
    {"native", "native table", "log_entries", NULL, {0}, {0}, 0},
    {"native_block_order",
     "native table, rows in block order",
     "log_entries_blocks",
     NULL,
     {0},
     {0},
     0},
    {"parquet",
     "read_parquet(partitions)",
     "pq_log_entries",
     NULL,
     {0},
     {0},
     0},
    {"zstd_v1",
     "one file, zstd (the former format)",
     "whatif_zstd_v1",
     "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880",
     {0},
     {0},
     0},
    {"lz4_v1",
     "one file, lz4_raw, Parquet v1",
     "whatif_lz4_v1",
     "FORMAT parquet, COMPRESSION lz4_raw, ROW_GROUP_SIZE 122880",
     {0},
     {0},
     0},
    {"lz4_v2",
     "one file, lz4_raw, Parquet v2",
     "whatif_lz4_v2",
     "FORMAT parquet, COMPRESSION lz4_raw, ROW_GROUP_SIZE 122880, "
     "PARQUET_VERSION V2",
     {0},
     {0},
     0},
    {"uncompressed_v2",
     "one file, uncompressed, Parquet v2",
     "whatif_uncompressed_v2",
     "FORMAT parquet, COMPRESSION uncompressed, ROW_GROUP_SIZE 122880, "
     "PARQUET_VERSION V2",
     {0},
     {0},
     0},
};
#define NQV (sizeof QV / sizeof QV[0])

static int run_variant(tl_session *s, duck *d, const qvariant *v, int k,
                       FILE *out) {
  char sql[256];
  snprintf(sql, sizeof sql, QUERIES[k][1], v->table ? v->table : "log_entries");
  return v->table ? duck_print(d->c, sql, out) : session_query(s, sql, out);
}

/* Times each query `reps` times per variant v[0..nv) (one untimed run each
 * first: file metadata and caches warm). Profiles of the first two variants
 * with --perf, outside the timed runs. */
static int time_variants(const opts *o, tl_session *s, duck *d, qvariant *v,
                         size_t nv, const char *suffix) {
  FILE *null = fopen("/dev/null", "w");
  double *t = calloc(nv * o->reps, sizeof *t);
  int rc = null && t ? 0 : -1;
  for (int k = 0; k < 2 && !rc; k++) {
    for (size_t j = 0; j < nv && !rc; j++)
      rc = run_variant(s, d, &v[j], k, null);
    for (unsigned r = 0; r < o->reps && !rc; r++)
      for (size_t j = 0; j < nv && !rc; j++) {
        uint64_t t0 = bench_mono_ns();
        rc = run_variant(s, d, &v[j], k, null);
        t[j * o->reps + r] = ms_since(t0);
      }
    for (size_t j = 0; j < nv && !rc; j++) {
      v[j].p50[k] = pct(t + j * o->reps, o->reps, 50);
      v[j].min[k] = t[j * o->reps];
    }
    for (size_t j = 0; j < nv && j < 2 && o->perf && !rc; j++) {
      char name[128];
      snprintf(name, sizeof name, "query_%s_%s%s", QUERIES[k][0], v[j].name,
               suffix);
      pid_t pp = perf_start(o, name);
      for (int r = 0; r < 5 && !rc; r++)
        rc = run_variant(s, d, &v[j], k, null);
      perf_stop(pp);
    }
  }
  free(t);
  if (null)
    fclose(null);
  return rc;
}

/* The native tables log_entries (time order) and log_entries_blocks (the
 * partitions' order), the view pq_log_entries over the lake's partitions
 * (`files`), and one file per format what-if (base/whatif_<name>.parquet)
 * with its view. */
static int prepare_variants(duck *d, lake_env *e, const char *files,
                            span *load) {
  size_t need = strlen(files) + 2048;
  char *sql = malloc(need);
  if (!sql)
    return -1;
  snprintf(sql, need,
           "CREATE TABLE log_entries_blocks AS SELECT * FROM "
           "read_parquet([%s])",
           files);
  span_begin(load);
  int rc = duck_exec(d->c, sql);
  span_end(load);
  rc = rc || duck_exec(d->c, "CREATE TABLE log_entries AS SELECT * FROM "
                             "log_entries_blocks ORDER BY time");
  snprintf(sql, need,
           "CREATE VIEW pq_log_entries AS SELECT * FROM read_parquet([%s])",
           files);
  rc = rc || duck_exec(d->c, sql);
  for (size_t v = QV_FORMAT; v < NQV && !rc; v++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/base/%s.parquet", e->data, QV[v].table);
    snprintf(sql, need, "COPY log_entries_blocks TO '%s' (%s)", path,
             QV[v].options);
    rc = duck_exec(d->c, sql);
    struct stat st;
    QV[v].bytes = stat(path, &st) ? 0 : (uint64_t)st.st_size;
    snprintf(sql, need, "CREATE VIEW %s AS SELECT * FROM read_parquet('%s')",
             QV[v].table, path);
    rc = rc || duck_exec(d->c, sql);
  }
  free(sql);
  return rc;
}

static void drop_variants(duck *d, lake_env *e) {
  duck_exec(d->c, "DROP TABLE IF EXISTS log_entries");
  duck_exec(d->c, "DROP TABLE IF EXISTS log_entries_blocks");
  for (size_t v = QV_FORMAT; v < NQV; v++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/base/%s.parquet", e->data, QV[v].table);
    unlink(path);
  }
}

/* Opens and closes `n` sessions; p50 and max of the open time in ms. */
static int time_session_open(const opts *o, lake_env *e, unsigned n,
                             double *p50, double *max, const char *phase) {
  pid_t pp = phase ? perf_start(o, phase) : 0;
  double v[64];
  if (n > 64)
    n = 64;
  if (!n)
    return -1;
  for (unsigned i = 0; i < n; i++) {
    char err[1024];
    tl_session *s;
    uint64_t t0 = bench_mono_ns();
    if (tl_session_open(&s, e->lake, INT64_MIN, INT64_MAX, err, sizeof err)) {
      fprintf(stderr, "bench_lake: session: %s\n", err);
      perf_stop(pp);
      return -1;
    }
    v[i] = ms_since(t0);
    tl_session_close(s);
  }
  perf_stop(pp);
  *p50 = pct(v, n, 50);
  *max = v[n - 1];
  return 0;
}

/* ---- Phase 4: freshness ----------------------------------------------------
 */

typedef struct fresh_result {
  double total_p50, total_p95, total_max, mat_p50, open_p50, query_p50, mat_p95,
      open_p95, query_p95;
  double full_p50, full_p95, full_open_p50, full_query_p50;
  unsigned rounds, seen, full_rounds, full_seen;
} fresh_result;

/* Runs `sql` in a new session over [begin, end); adds the open and query
 * times (ms) and whether the result was `want`. */
static int probe(lake_env *e, int64_t begin, const char *sql, const char *want,
                 double *open_ms, double *query_ms, unsigned *seen) {
  char err[1024];
  tl_session *s;
  uint64_t t0 = bench_mono_ns();
  if (tl_session_open(&s, e->lake, begin, INT64_MAX, err, sizeof err)) {
    fprintf(stderr, "bench_lake: session: %s\n", err);
    return -1;
  }
  uint64_t t1 = bench_mono_ns();
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  int rc = f ? session_query(s, sql, f) : -1;
  if (f)
    fclose(f);
  uint64_t t2 = bench_mono_ns();
  tl_session_close(s);
  if (!rc && buf && !strcmp(buf, want))
    (*seen)++;
  free(buf);
  *open_ms = (double)(t1 - t0) / 1e6;
  *query_ms = (double)(t2 - t1) / 1e6;
  return rc;
}

/* Each round records one log entry, waits for its acknowledgement
 * (tl_flush returns once the ingest sink stored the block durably), then
 * times what a new session does to see it: materialize (what
 * tl_session_open does first, timed on its own), open a session over the
 * last second and count the entry. Every fifth round also counts it in a
 * session over all time (10 M rows to scan). */
static int phase_freshness(const opts *o, lake_env *e, fresh_result *fr) {
  unsigned n = o->rounds, nf = (o->rounds + 4) / 5;
  double *tot = calloc(n ? n : 1, sizeof *tot);
  double *mat = calloc(n ? n : 1, sizeof *mat);
  double *opn = calloc(n ? n : 1, sizeof *opn);
  double *qry = calloc(n ? n : 1, sizeof *qry);
  double *ftot = calloc(nf ? nf : 1, sizeof *ftot);
  double *fopn = calloc(nf ? nf : 1, sizeof *fopn);
  double *fqry = calloc(nf ? nf : 1, sizeof *fqry);
  int rc = 0;
  memset(fr, 0, sizeof *fr);
  if (!tot || !mat || !opn || !qry || !ftot || !fopn || !fqry)
    rc = -1;
  pid_t pp = perf_start(o, "freshness");
  for (unsigned i = 0; i < n && !rc; i++) {
    char err[1024], sql[256];
    int64_t recorded = tl_wall_ns();
    TL_INFO("freshness probe %u", i);
    tl_flush(); /* acknowledged */
    uint64_t t0 = bench_mono_ns();
    if (tl_lake_materialize(e->lake, tl_wall_ns(), NULL, err, sizeof err)) {
      fprintf(stderr, "bench_lake: materialize: %s\n", err);
      rc = -1;
      break;
    }
    mat[i] = ms_since(t0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) AS n FROM log_entries WHERE msg = "
             "'freshness probe %u'",
             i);
    rc = probe(e, recorded - 1000000000, sql, "n\n1\n", &opn[i], &qry[i],
               &fr->seen);
    tot[i] = mat[i] + opn[i] + qry[i];
    fr->rounds++;
    if (!rc && i % 5 == 0) {
      unsigned k = fr->full_rounds++;
      rc = probe(e, INT64_MIN, sql, "n\n1\n", &fopn[k], &fqry[k],
                 &fr->full_seen);
      ftot[k] = mat[i] + fopn[k] + fqry[k];
    }
  }
  perf_stop(pp);
  if (!rc && fr->rounds) {
    fr->total_p50 = pct(tot, fr->rounds, 50);
    fr->total_p95 = pct(tot, fr->rounds, 95);
    fr->total_max = tot[fr->rounds - 1];
    fr->mat_p50 = pct(mat, fr->rounds, 50);
    fr->mat_p95 = pct(mat, fr->rounds, 95);
    fr->open_p50 = pct(opn, fr->rounds, 50);
    fr->open_p95 = pct(opn, fr->rounds, 95);
    fr->query_p50 = pct(qry, fr->rounds, 50);
    fr->query_p95 = pct(qry, fr->rounds, 95);
  }
  if (!rc && fr->full_rounds) {
    fr->full_p50 = pct(ftot, fr->full_rounds, 50);
    fr->full_p95 = pct(ftot, fr->full_rounds, 95);
    fr->full_open_p50 = pct(fopn, fr->full_rounds, 50);
    fr->full_query_p50 = pct(fqry, fr->full_rounds, 50);
  }
  free(tot);
  free(mat);
  free(opn);
  free(qry);
  free(ftot);
  free(fopn);
  free(fqry);
  return rc;
}

/* ---- main ----------------------------------------------------------------
 */

static void usage(FILE *f) {
  fprintf(f,
          "usage: bench_lake [--events N] [--metric-every K] [--threads T]\n"
          "                  [--reps R] [--rounds F] [--dir PARENT]\n"
          "                  [--perf DIR [--callgraph fp|dwarf]] [--keep]\n"
          "  --events N        log entries to ingest (10000000)\n"
          "  --metric-every K  one metric per K log entries (8; 0 = none)\n"
          "  --threads T       recording threads (4)\n"
          "  --reps R          timed runs per query and variant (7)\n"
          "  --rounds F        freshness rounds (100)\n"
          "  --dir PARENT      where the lake's temp dir goes ($TMPDIR, /tmp)\n"
          "  --perf DIR        perf record each phase into DIR/<phase>.data\n"
          "  --callgraph MODE  perf's --call-graph mode (fp; dwarf: DuckDB\n"
          "                    has no frame pointers)\n"
          "  --keep            keep the lake directory\n");
}

static uint64_t parse_count(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*end == 'k' || *end == 'K')
    v *= 1e3;
  else if (*end == 'm' || *end == 'M')
    v *= 1e6;
  return v < 0 ? 0 : (uint64_t)v;
}

int main(int argc, char **argv) {
  opts o = {0};
  o.events = 10000000;
  o.metric_every = 8;
  o.threads = 4;
  o.reps = 7;
  o.rounds = 100;
  o.callgraph = "fp";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--keep")) {
      o.keep = 1;
      continue;
    }
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!v) {
      usage(stderr);
      return 2;
    }
    i++;
    if (!strcmp(a, "--events"))
      o.events = parse_count(v);
    else if (!strcmp(a, "--metric-every"))
      o.metric_every = (unsigned)parse_count(v);
    else if (!strcmp(a, "--threads"))
      o.threads = (unsigned)parse_count(v);
    else if (!strcmp(a, "--reps"))
      o.reps = (unsigned)parse_count(v);
    else if (!strcmp(a, "--rounds"))
      o.rounds = (unsigned)parse_count(v);
    else if (!strcmp(a, "--dir"))
      o.dir = v;
    else if (!strcmp(a, "--perf"))
      o.perf = v;
    else if (!strcmp(a, "--callgraph"))
      o.callgraph = v;
    else {
      usage(stderr);
      return 2;
    }
  }
  if (!o.events || !o.threads || o.threads > MAX_THREADS || !o.reps ||
      o.reps > MAX_REPS || o.rounds > MAX_ROUNDS) {
    usage(stderr);
    return 2;
  }

  bench_print_machine("lake", bench_tsc_calibrate(100));
  printf("duckdb %s; %" PRIu64 " log entries, a metric every %u; %u query "
         "runs per variant; %u freshness rounds\n",
         duckdb_library_version(), o.events, o.metric_every, o.reps, o.rounds);
  bench_cpu_sample q0, q1;
  bench_cpu_sample_take(&q0);

  int status = 0;
  lake_env e;
  duck d = {0};
  bool have_duck = false;
  ingest_result ir;
  mat_result mr;
  span sdec = {0}, sload = {0}, swrite = {0}, swrite_old = {0};
  key_list keys = {0};
  char *files_sql = NULL;
  decode_count dc;
  qvariant qa = QV[QV_VIEW];
  fresh_result fr;
  double open_p50 = 0, open_max = 0, open2_p50 = 0, open2_max = 0;
  uint64_t files = 0, files_after = 0, bytes_lake = 0, nfiles_lake = 0;
  char path[1024];
  memset(&fr, 0, sizeof fr);

  if (lake_setup(&e, &o)) {
    status = 1;
    goto out;
  }
  printf("lake: %s (SQLite catalog, blobs and partitions on %s)\n", e.data,
         e.data);

  /* 1. Ingest. */
  if (phase_ingest(&o, &ir)) {
    fprintf(stderr, "bench_lake: events were dropped: figures invalid\n");
    status = 1;
    goto out;
  }

  /* 2. Materialization, then its baselines on the same rows. */
  if (phase_materialize(&o, &e, &mr)) {
    status = 1;
    goto out;
  }
  uint64_t expected = ir.logs + ir.metrics;
  printf("\nmaterialization: %" PRIu64 " rows from %" PRIu64
         " blocks into %" PRIu64 " partitions (%.1f MB of Parquet)%s\n",
         mr.st.rows, mr.st.blocks, mr.st.partitions, (double)mr.st.bytes / 1e6,
         mr.st.rows >= expected ? "" : "  (ROWS MISSING)");
  if (mr.st.rows < expected)
    status = 1;

  snprintf(path, sizeof path, "%s/base", e.data);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/base/.tmp", e.data);
  mkdir(path, 0755);
  if (duck_open(&d, e.data)) {
    status = 1;
    goto out;
  }
  have_duck = true;
  if (tl_catalog_foreach_block(e.cat, add_key, &keys) ||
      baseline_decode(&e, &keys, &dc, &sdec)) {
    status = 1;
    goto out;
  }

  /* The native table (for the queries too), then DuckDB writing it. */
  {
    file_list fl = {0};
    fl.data = e.data;
    if (tl_catalog_list_partitions(e.cat, "log_entries", "global", INT64_MIN,
                                   INT64_MAX, add_file, &fl) ||
        !fl.n) {
      free(fl.sql);
      status = 1;
      goto out;
    }
    files = fl.n;
    files_sql = fl.sql;
    int rc = prepare_variants(&d, &e, files_sql, &sload);
    int64_t native_rows =
        rc ? -1 : duck_int(d.c, "SELECT count(*) FROM log_entries");
    if (native_rows != (int64_t)ir.logs) {
      fprintf(stderr,
              "bench_lake: native table holds %" PRId64 " rows, want %" PRIu64
              "\n",
              native_rows, ir.logs);
      status = 1;
      goto out;
    }
  }
  if (baseline_writer(&d, e.data, TL_PARTITION_FORMAT, &swrite) ||
      baseline_writer(&d, e.data, QV[QV_FORMAT].options, &swrite_old)) {
    status = 1;
    goto out;
  }
  printf("\n#### Materialization (target: >= %.0f M events/s per core, i.e. "
         "per CPU-second)\n",
         TARGET_MAT_PER_CORE / 1e6);
  print_rate_header();
  print_rate("materialize", "tl_lake_materialize (read+decode+COPY)",
             mr.st.rows, &mr.sp, TARGET_MAT_PER_CORE);
  print_rate("base_decode", "baseline: read blobs + decode only",
             dc.logs + dc.metrics, &sdec, 0);
  print_rate("base_writer", "baseline: DuckDB COPY native -> lake format",
             ir.logs, &swrite, 0);
  print_rate("base_writer_zstd_v1", "baseline: DuckDB COPY native -> zstd v1",
             ir.logs, &swrite_old, 0);
  printf("  (CPU = this process's user+system time, DuckDB's threads "
         "included; M/CPU-s = rows per CPU-second = per core. The writer "
         "baselines copy the log entries from a native in-memory table "
         "loaded from the partitions, to the lake's Parquet format and to "
         "the former one.)\n");

  /* 3. Queries. */
  if (time_session_open(&o, &e, 5, &open_p50, &open_max, NULL)) {
    status = 1;
    goto out;
  }
  {
    char err[1024];
    tl_session *s;
    if (tl_session_open(&s, e.lake, INT64_MIN, INT64_MAX, err, sizeof err)) {
      fprintf(stderr, "bench_lake: session: %s\n", err);
      status = 1;
      goto out;
    }
    int rc = time_variants(&o, s, &d, QV, NQV, "");
    tl_session_close(s);
    drop_variants(&d, &e); /* memory and disk back */
    if (rc) {
      status = 1;
      goto out;
    }
  }

  /* 4. Freshness. */
  if (phase_freshness(&o, &e, &fr)) {
    status = 1;
    goto out;
  }
  if (fr.seen != fr.rounds || fr.full_seen != fr.full_rounds) {
    fprintf(stderr, "bench_lake: %u of %u probes were not visible\n",
            fr.rounds + fr.full_rounds - fr.seen - fr.full_seen,
            fr.rounds + fr.full_rounds);
    status = 1;
  }

  /* 5. The queries again, now that each round left a small partition. */
  if (time_session_open(&o, &e, 20, &open2_p50, &open2_max, "session_open")) {
    status = 1;
    goto out;
  }
  {
    char err[1024];
    tl_session *s;
    if (tl_session_open(&s, e.lake, INT64_MIN, INT64_MAX, err, sizeof err)) {
      fprintf(stderr, "bench_lake: session: %s\n", err);
      status = 1;
      goto out;
    }
    files_after = tl_session_files(s);
    int rc = time_variants(&o, s, &d, &qa, 1, "_after_freshness");
    tl_session_close(s);
    if (rc) {
      status = 1;
      goto out;
    }
  }
  bytes_lake = bench_du(e.data, &nfiles_lake);

  printf("\n#### Queries over %" PRIu64 " log entries (%" PRIu64
         " Parquet files); ms, p50 of %u runs each\n",
         ir.logs, files, o.reps);
  printf("  %-38s %15s %15s  %s\n", "", "group_by_level", "like_needle",
         "(ratio to the native table)");
  for (size_t j = 0; j < NQV; j++) {
    double r0 = QV[QV_NATIVE].p50[0] > 0 ? QV[j].p50[0] / QV[QV_NATIVE].p50[0]
                                         : 0,
           r1 = QV[QV_NATIVE].p50[1] > 0 ? QV[j].p50[1] / QV[QV_NATIVE].p50[1]
                                         : 0;
    if (j == QV_FORMAT)
      printf("  what-ifs on the same rows, in the bench's DuckDB:\n");
    char size[48] = "";
    if (QV[j].bytes)
      snprintf(size, sizeof size, "  (%.0f MB)%s", (double)QV[j].bytes / 1e6,
               strcmp(QV[j].options, TL_PARTITION_FORMAT) ? "" : " the lake's");
    printf("  %-38s %8.1f %5.2fx %8.1f %5.2fx%s\n", QV[j].label, QV[j].p50[0],
           r0, QV[j].p50[1], r1, size);
    bench_result("RESULT bench=lake name=query_%s group_by_level_p50_ms=%.2f "
                 "group_by_level_min_ms=%.2f like_needle_p50_ms=%.2f "
                 "like_needle_min_ms=%.2f group_by_level_ratio=%.3f "
                 "like_needle_ratio=%.3f bytes=%" PRIu64,
                 QV[j].name, QV[j].p50[0], QV[j].min[0], QV[j].p50[1],
                 QV[j].min[1], r0, r1, QV[j].bytes);
  }
  for (int k = 0; k < 2; k++) {
    double r = QV[QV_NATIVE].p50[k] > 0
                   ? QV[QV_VIEW].p50[k] / QV[QV_NATIVE].p50[k]
                   : 0;
    printf("  target %s: view <= %.1fx native: %.2fx  %s\n", QUERIES[k][0],
           TARGET_QUERY_RATIO, r, r <= TARGET_QUERY_RATIO ? "met" : "MISSED");
    bench_result("RESULT bench=lake name=target_query_%s ratio=%.3f "
                 "target=ratio<=%.1f met=%s",
                 QUERIES[k][0], r, TARGET_QUERY_RATIO,
                 r <= TARGET_QUERY_RATIO ? "yes" : "no");
  }
  printf("  (view = tl_session_print of the session's log_entries view, CSV "
         "to /dev/null; the others run in the bench's own DuckDB and print "
         "the rows the same way; native = a table loaded from the lake's "
         "partitions in %.2f s, then sorted by time)\n",
         sload.wall_s);
  printf(
      "  session open (nothing to materialize): p50 %.1f ms, max %.1f ms "
      "over 5; after the freshness rounds: p50 %.1f ms, max %.1f ms over 20\n",
      open_p50, open_max, open2_p50, open2_max);
  bench_result("RESULT bench=lake name=session_open p50_ms=%.2f max_ms=%.2f "
               "after_freshness_p50_ms=%.2f after_freshness_max_ms=%.2f",
               open_p50, open_max, open2_p50, open2_max);
  printf("  after the freshness rounds (%" PRIu64 " files): group_by_level "
         "%.1f ms, like_needle %.1f ms through the view\n",
         files_after, qa.p50[0], qa.p50[1]);
  bench_result("RESULT bench=lake name=query_after_freshness files=%" PRIu64
               " group_by_level_p50_ms=%.2f like_needle_p50_ms=%.2f",
               files_after, qa.p50[0], qa.p50[1]);

  printf("\n#### Freshness: block acknowledged -> visible to a new session "
         "(%u rounds; target p95 <= %.0f ms)\n",
         fr.rounds, TARGET_FRESH_P95_MS);
  printf("  session over the last second: p50 %.1f ms, p95 %.1f ms, max %.1f "
         "ms  %s; visible in %u/%u\n",
         fr.total_p50, fr.total_p95, fr.total_max,
         fr.total_p95 <= TARGET_FRESH_P95_MS ? "met" : "MISSED", fr.seen,
         fr.rounds);
  printf("    of which materialize (1 block) p50 %.1f / p95 %.1f ms, session "
         "open p50 %.1f / p95 %.1f ms, query p50 %.1f / p95 %.1f ms\n",
         fr.mat_p50, fr.mat_p95, fr.open_p50, fr.open_p95, fr.query_p50,
         fr.query_p95);
  printf("  session over all time (%u rounds; the count scans every "
         "msg): p50 %.1f ms, p95 %.1f ms (open p50 %.1f ms, query p50 %.1f "
         "ms); visible in %u/%u\n",
         fr.full_rounds, fr.full_p50, fr.full_p95, fr.full_open_p50,
         fr.full_query_p50, fr.full_seen, fr.full_rounds);
  bench_result("RESULT bench=lake name=freshness rounds=%u seen=%u p50_ms=%.2f "
               "p95_ms=%.2f max_ms=%.2f materialize_p50_ms=%.2f "
               "open_p50_ms=%.2f query_p50_ms=%.2f target=p95<=%.0f met=%s",
               fr.rounds, fr.seen, fr.total_p50, fr.total_p95, fr.total_max,
               fr.mat_p50, fr.open_p50, fr.query_p50, TARGET_FRESH_P95_MS,
               fr.total_p95 <= TARGET_FRESH_P95_MS ? "yes" : "no");
  bench_result("RESULT bench=lake name=freshness_all_time rounds=%u seen=%u "
               "p50_ms=%.2f p95_ms=%.2f open_p50_ms=%.2f query_p50_ms=%.2f",
               fr.full_rounds, fr.full_seen, fr.full_p50, fr.full_p95,
               fr.full_open_p50, fr.full_query_p50);
  printf("\nlake on disk at the end: %.1f MB in %" PRIu64 " files; peak RSS "
         "%.0f MiB\n",
         (double)bytes_lake / 1e6, nfiles_lake, bench_max_rss_mib());

out:
  bench_cpu_sample_take(&q1);
  bench_print_contention(&q0, &q1, 1, NULL, NULL);
  if (have_duck)
    duck_close(&d);
  free(keys.v);
  free(files_sql);
  lake_teardown(&e, &o);
  bench_print_results();
  return status;
}

/* bench_flight.c - the Flight SQL service's speed: a `SELECT 1` round trip
 * through the client library, DoGet throughput of large results beside raw
 * loopback TCP, the same results fetched in-process from DuckDB, 32
 * concurrent clients with the server's memory watched, and what the
 * server's per-query self-telemetry costs. bench/run-flight.sh drives it;
 * docs/performance.md ("Flight SQL") has the method and the figures.
 *
 * The servers are the real `tracelake serve`, started here on ephemeral
 * loopback ports over lakes in a temporary directory: one with its
 * self-telemetry (loaded with `tracelake demo`), one started with
 * --no-self-telemetry. Every figure is printed beside a baseline measured
 * in the same run, and as a `RESULT bench=flight ...` line; timing never
 * makes this program fail, query errors and wrong row counts do. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tracelake/tracelake.h>

#include "arrow/arrow.h"
#include "bench.h"
#include "common/common.h"
#include "flightsql/client/client.h"
#include "flightsql/qlog.h"
#include "lake/catalog.h"
#include "lake/store.h"
#include "query/lake.h"
#include "query/stream.h"

extern char **environ;

#define MAX_CLIENTS 256
#define MAX_SAMPLES ((size_t)1 << 20) /* latencies kept per thread and kind */
#define TARGET_SELECT1_P50_MS 1.0
#define TARGET_TCP_FRACTION 0.5
#define TARGET_INPROC_RATIO 1.3
#define TARGET_OVERHEAD_US 2.0
/* Phase 4's memory is bounded when the RSS trend over its second half adds
 * less than 10% of that half's mean. */
#define RSS_BOUND 1.10

/* The results of phases 2 and 3, and the concurrent mix. */
#define Q_INT "SELECT i, i * 2 AS j FROM range(%" PRIu64 ") t(i)"
/* Strings of 30 to 40 bytes cut from a log-like line: cheap for DuckDB to
 * make, so that the transport is what is measured. */
#define Q_STR                                                                  \
  "SELECT i, substr('GET /api/v1/users/ORDERS/ITEMS/CARTS/SESSIONS/health "    \
  "-> 200 in 1234 us', 1 + i %% 16, 30 + i %% 11) AS msg FROM range(%" PRIu64  \
  ") t(i)"
#define Q_SMALL_AGG                                                            \
  "SELECT level, count(*) AS n FROM log_entries GROUP BY level"
#define Q_10K "SELECT i, i * 2 AS j FROM range(10000) t(i)"

enum {
  PH_LATENCY = 1,
  PH_THROUGHPUT = 2, /* with the in-process comparison */
  PH_CONCURRENT = 4,
  PH_OVERHEAD = 8,
  PH_QREC = 16,
  PH_PAIRS = 32, /* phase 5 over several fresh pairs of servers */
  PH_ALL = 63
};

typedef struct opts {
  const char *tracelake; /* the tracelake executable */
  const char *dir;       /* parent of the work directory */
  const char *perf;      /* directory for perf profiles, or NULL */
  const char *callgraph; /* perf --call-graph mode ("fp", "dwarf") */
  unsigned phases;
  unsigned queries, warmup; /* SELECT 1 loop */
  uint64_t rows;            /* rows of the large results */
  unsigned reps;            /* runs of each large result */
  unsigned clients, seconds;
  unsigned rounds, block;      /* overhead: rounds of two blocks */
  unsigned pairs, pair_rounds; /* pairs: fresh server pairs, rounds each */
  bool keep;
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

static const char *verdict(bool met) {
  return met ? "met" : "MISSED";
}

static double ms_since(uint64_t t0) {
  return (double)(bench_mono_ns() - t0) / 1e6;
}

static void sleep_ms(unsigned ms) {
  struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&d, &d) != 0 && errno == EINTR) {
  }
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU seconds (user + system) of process `pid`, from /proc; -1 if gone. */
static double proc_cpu_s(pid_t pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* the command may hold spaces */
  unsigned long ut, st;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Resident set size of process `pid` in MiB (VmRSS); -1 if gone. */
static double proc_rss_mib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  double mib = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long kb;
    if (sscanf(line, "VmRSS: %lu kB", &kb) == 1) {
      mib = (double)kb / 1024.0;
      break;
    }
  }
  fclose(f);
  return mib;
}

/* Context switches (voluntary and not) of every thread of `pid`. */
static uint64_t proc_ctxsw(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  uint64_t sum = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char sp[400], line[256];
    snprintf(sp, sizeof sp, "%s/%s/status", path, e->d_name);
    FILE *f = fopen(sp, "r");
    while (f && fgets(line, sizeof line, f)) {
      unsigned long long v;
      if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
          sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
        sum += v;
    }
    if (f)
      fclose(f);
  }
  if (d)
    closedir(d);
  return sum;
}

/* CPU seconds of the threads of `pid` named `comm` ("tl-flusher"), and
 * how many threads the process has. */
static double proc_threads_cpu_s(pid_t pid, const char *comm,
                                 unsigned *nthreads) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  double sum = 0;
  unsigned n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    n++;
    char sp[400], buf[1024];
    snprintf(sp, sizeof sp, "%s/%s/stat", path, e->d_name);
    FILE *f = fopen(sp, "r");
    if (!f)
      continue;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    const char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    unsigned long ut, st;
    if (!open || !close || (size_t)(close - open - 1) != strlen(comm) ||
        strncmp(open + 1, comm, strlen(comm)) ||
        sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
      continue;
    sum += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  }
  if (d)
    closedir(d);
  if (nthreads)
    *nthreads = n;
  return sum;
}

/* CPU seconds of each thread of `pid` named `comm`, from the scheduler's
 * own count (/proc/PID/task/TID/sched, se.sum_exec_runtime: nanoseconds,
 * where stat counts 10 ms ticks). A sample is a list of (thread, seconds),
 * so that the CPU spent between two samples counts only threads alive in
 * the second one, each from its value in the first (0 if it was not
 * there): a thread that retires in between takes nothing away. */
typedef struct thread_cpu {
  int tid;
  double s;
} thread_cpu;

typedef struct cpu_sample {
  thread_cpu t[512];
  unsigned n;
} cpu_sample;

static void threads_sample(pid_t pid, const char *comm, cpu_sample *out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  out->n = 0;
  DIR *d = opendir(path);
  struct dirent *e;
  while (d && (e = readdir(d)) && out->n < 512) {
    if (e->d_name[0] == '.')
      continue;
    char fp[400], name[64] = "", line[256];
    snprintf(fp, sizeof fp, "%s/%s/comm", path, e->d_name);
    FILE *f = fopen(fp, "r");
    if (!f)
      continue;
    if (fgets(name, sizeof name, f))
      name[strcspn(name, "\n")] = 0;
    fclose(f);
    if (strcmp(name, comm))
      continue;
    snprintf(fp, sizeof fp, "%s/%s/sched", path, e->d_name);
    if (!(f = fopen(fp, "r")))
      continue;
    double ms = -1;
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "se.sum_exec_runtime", 19)) {
        const char *colon = strchr(line, ':');
        ms = colon ? strtod(colon + 1, NULL) : -1;
        break;
      }
    fclose(f);
    if (ms >= 0)
      out->t[out->n++] = (thread_cpu){atoi(e->d_name), ms / 1e3};
  }
  if (d)
    closedir(d);
}

static double threads_cpu_between(const cpu_sample *a, const cpu_sample *b) {
  double sum = 0;
  for (unsigned i = 0; i < b->n; i++) {
    double before = 0;
    for (unsigned j = 0; j < a->n; j++)
      if (a->t[j].tid == b->t[i].tid)
        before = a->t[j].s;
    sum += b->t[i].s - before;
  }
  return sum;
}

/* Partitions of the global log_entries view in the lake under `data` (its
 * SQLite catalog, read beside the server), or -1. */
static int add_one(void *ctx, const tl_partition *p) {
  (void)p;
  (*(long *)ctx)++;
  return 0;
}

static long lake_partitions(const char *data) {
  char spec[900], err[512];
  snprintf(spec, sizeof spec, "%s/catalog.db", data);
  tl_catalog *cat = NULL;
  long n = 0;
  if (tl_catalog_open(&cat, spec, err, sizeof err))
    return -1;
  if (tl_catalog_list_partitions(cat, "log_entries", "global", INT64_MIN,
                                 INT64_MAX, add_one, &n))
    n = -1;
  tl_catalog_close(cat);
  return n;
}

/* ---- Servers -------------------------------------------------------------
 * `tracelake serve` as a child process, its output in a log file; its ports
 * come from the "serving" line. */

typedef struct server {
  const char *name;
  bool telemetry;
  pid_t pid;
  char data[700], log[800];
  unsigned http_port, flight_port;
  char http_url[64], grpc_url[64];
} server;

/* The children, for a signal that ends the benchmark early. */
static volatile pid_t children[4];

static void on_signal(int sig) {
  for (int i = 0; i < 4; i++)
    if (children[i] > 0)
      kill(children[i], SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void child_add(pid_t p) {
  for (int i = 0; i < 4; i++)
    if (children[i] <= 0) {
      children[i] = p;
      return;
    }
}

static void child_forget(pid_t p) {
  for (int i = 0; i < 4; i++)
    if (children[i] == p)
      children[i] = 0;
}

/* Spawns argv with stdout and stderr to `log`. Returns the pid or -1. */
static pid_t spawn_logged(char *const argv[], const char *log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t p;
  int rc = posix_spawn(&p, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc) {
    fprintf(stderr, "bench_flight: cannot run %s: %s\n", argv[0], strerror(rc));
    return -1;
  }
  return p;
}

static void print_file(const char *path) {
  FILE *f = fopen(path, "r");
  char line[1024];
  while (f && fgets(line, sizeof line, f))
    fprintf(stderr, "  | %s", line);
  if (f)
    fclose(f);
}

static int server_start(server *s, const opts *o, const char *work,
                        const char *name, bool telemetry) {
  memset(s, 0, sizeof *s);
  s->name = name;
  s->telemetry = telemetry;
  snprintf(s->data, sizeof s->data, "%s/%s", work, name);
  snprintf(s->log, sizeof s->log, "%s/%s.log", work, name);
  if (mkdir(s->data, 0755) && errno != EEXIST) {
    fprintf(stderr, "bench_flight: mkdir %s: %s\n", s->data, strerror(errno));
    return -1;
  }
  char *argv[40];
  int n = 0;
  argv[n++] = (char *)o->tracelake;
  argv[n++] = "serve";
  argv[n++] = "--data";
  argv[n++] = s->data;
  argv[n++] = "--http";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--flight";
  argv[n++] = "127.0.0.1:0";
  if (!telemetry)
    argv[n++] = "--no-self-telemetry";
  /* BENCH_FLIGHT_SERVE_ARGS: more options for both servers (experiments). */
  static char extra[1024];
  const char *env = getenv("BENCH_FLIGHT_SERVE_ARGS");
  snprintf(extra, sizeof extra, "%s", env ? env : "");
  char *save = NULL;
  for (char *t = strtok_r(extra, " ", &save); t && n < 38;
       t = strtok_r(NULL, " ", &save))
    argv[n++] = t;
  argv[n] = NULL;
  s->pid = spawn_logged(argv, s->log);
  if (s->pid <= 0)
    return -1;
  child_add(s->pid);
  for (int i = 0; i < 300; i++) {
    char buf[4096] = "";
    FILE *f = fopen(s->log, "r");
    if (f) {
      size_t k = fread(buf, 1, sizeof buf - 1, f);
      buf[k] = 0;
      fclose(f);
    }
    const char *at = strstr(buf, "tracelake: serving http://");
    if (at && strchr(at, '\n') &&
        sscanf(at,
               "tracelake: serving http://127.0.0.1:%u and "
               "grpc://127.0.0.1:%u",
               &s->http_port, &s->flight_port) == 2) {
      snprintf(s->http_url, sizeof s->http_url, "http://127.0.0.1:%u",
               s->http_port);
      snprintf(s->grpc_url, sizeof s->grpc_url, "grpc://127.0.0.1:%u",
               s->flight_port);
      return 0;
    }
    int st;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
      child_forget(s->pid);
      s->pid = 0;
      break;
    }
    sleep_ms(100);
  }
  fprintf(stderr, "bench_flight: the %s server did not start:\n", name);
  print_file(s->log);
  return -1;
}

/* SIGTERM (the server stores its last telemetry), 30 s at most. */
static void server_stop(server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGTERM);
  int st;
  for (int i = 0; i < 300; i++) {
    if (waitpid(s->pid, &st, WNOHANG) == s->pid)
      goto done;
    sleep_ms(100);
  }
  fprintf(stderr, "bench_flight: the %s server did not stop: killed\n",
          s->name);
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &st, 0);
done:
  child_forget(s->pid);
  s->pid = 0;
}

/* Runs `tracelake demo --url` against the server: a few hundred log
 * entries, metrics and spans for the small aggregate. */
static int load_demo(const server *s, const opts *o, const char *work) {
  char spill[800], log[800];
  snprintf(spill, sizeof spill, "%s/demo-spill", work);
  snprintf(log, sizeof log, "%s/demo.log", work);
  char *argv[] = {(char *)o->tracelake,
                  "demo",
                  "--url",
                  (char *)s->http_url,
                  "--spool",
                  spill,
                  NULL};
  pid_t p = spawn_logged(argv, log);
  if (p <= 0)
    return -1;
  int st;
  waitpid(p, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "bench_flight: tracelake demo failed:\n");
    print_file(log);
    return -1;
  }
  return 0;
}

/* perf record of the server (and of a second one, `also`, when the phase
 * compares two: sampling slows what it samples, so both or neither) and of
 * this process around one phase. */
static pid_t perf_start(const opts *o, const server *s, const server *also,
                        const char *phase) {
  if (!o->perf)
    return 0;
  char out[1024], pids[64], cg[64];
  snprintf(out, sizeof out, "%s/%s.data", o->perf, phase);
  if (also)
    snprintf(pids, sizeof pids, "%d,%d,%d", (int)s->pid, (int)also->pid,
             (int)getpid());
  else
    snprintf(pids, sizeof pids, "%d,%d", (int)s->pid, (int)getpid());
  snprintf(cg, sizeof cg, "--call-graph=%s", o->callgraph);
  /* DWARF unwinding copies stacks: sample less often. */
  char *freq = strncmp(o->callgraph, "dwarf", 5) ? "999" : "499";
  char *argv[] = {"perf", "record", "-q", "-e", "cpu-clock", "-F", freq,
                  cg,     "-p",     pids, "-o", out,         NULL};
  pid_t p;
  if (posix_spawnp(&p, "perf", NULL, NULL, argv, environ)) {
    fprintf(stderr, "bench_flight: cannot start perf: %s\n", strerror(errno));
    return 0;
  }
  sleep_ms(400); /* let it attach */
  return p;
}

static void perf_stop(pid_t p) {
  if (p <= 0)
    return;
  kill(p, SIGINT);
  int st;
  waitpid(p, &st, 0);
}

/* ---- Client helpers ------------------------------------------------------ */

static tl_fc *client_open(const server *s) {
  tl_fc_opts fo = {0};
  fo.url = s->grpc_url;
  fo.timeout_ms = 600000;
  char err[512];
  tl_fc *c = NULL;
  if (tl_fc_connect(&c, &fo, err, sizeof err)) {
    fprintf(stderr, "bench_flight: connect to %s: %s\n", s->grpc_url, err);
    return NULL;
  }
  return c;
}

typedef struct counter {
  int64_t rows;
  uint64_t batches;
} counter;

static int count_rows(void *ctx, const struct ArrowSchema *schema,
                      const struct ArrowArray *batch) {
  (void)schema;
  counter *n = ctx;
  n->rows += batch->length;
  n->batches++;
  return 0;
}

/* Runs `sql`, counting the rows. Prints the error unless `quiet`. */
static int run_count(tl_fc *c, const char *sql, counter *n, bool quiet) {
  memset(n, 0, sizeof *n);
  tl_fc_sink sink = {NULL, count_rows, n};
  int rc = tl_fc_execute(c, sql, &sink);
  if (rc && !quiet)
    fprintf(stderr, "bench_flight: %.80s: %s\n", sql, tl_fc_errmsg(c));
  return rc;
}

/* The first row of a result as numbers (NaN for NULL or text). */
typedef struct row_values {
  double v[16];
  int n;
  bool got;
} row_values;

static int take_values(void *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch) {
  row_values *r = ctx;
  if (r->got || batch->length < 1)
    return 0;
  tl_bytes b;
  tl_bytes_init(&b, 4096);
  for (int64_t col = 0; col < schema->n_children && col < 16; col++) {
    bool null = false;
    b.len = 0;
    r->v[col] = NAN;
    if (tl_arrow_value_text(schema, batch, col, 0, &b, &null) == 0 && !null &&
        tl_bytes_append(&b, "", 1) == 0)
      r->v[col] = strtod((const char *)b.p, NULL);
    r->n = (int)col + 1;
  }
  tl_bytes_free(&b);
  r->got = true;
  return 0;
}

static int query_values(tl_fc *c, const char *sql, row_values *r) {
  memset(r, 0, sizeof *r);
  tl_fc_sink sink = {NULL, take_values, r};
  int rc = tl_fc_execute(c, sql, &sink);
  if (rc)
    fprintf(stderr, "bench_flight: %.200s: %s\n", sql, tl_fc_errmsg(c));
  return rc;
}

/* ---- 1. SELECT 1 round trip --------------------------------------------- */

typedef struct lat_stats {
  double p50, p99, min, max, mean;
  size_t n;
} lat_stats;

static void lat_summarize(double *v, size_t n, lat_stats *st) {
  memset(st, 0, sizeof *st);
  if (!n)
    return;
  double sum = 0;
  for (size_t i = 0; i < n; i++)
    sum += v[i];
  st->n = n;
  st->mean = sum / (double)n;
  st->p50 = pct(v, n, 50);
  st->p99 = pct(v, n, 99);
  st->min = v[0];
  st->max = v[n - 1];
}

/* n SELECT 1 on `c`, latencies (ms) into v. */
static int select1_loop(tl_fc *c, unsigned n, double *v) {
  for (unsigned i = 0; i < n; i++) {
    counter k;
    uint64_t t0 = bench_mono_ns();
    if (run_count(c, "SELECT 1", &k, false))
      return -1;
    if (v)
      v[i] = ms_since(t0);
    if (k.rows != 1) {
      fprintf(stderr, "bench_flight: SELECT 1 gave %" PRId64 " rows\n", k.rows);
      return -1;
    }
  }
  return 0;
}

/* Raw loopback TCP round trips: 64 bytes each way, an echo thread. */
static void *echo_main(void *arg) {
  int fd = *(int *)arg;
  char b[64];
  for (;;) {
    size_t got = 0;
    while (got < sizeof b) {
      ssize_t k = read(fd, b + got, sizeof b - got);
      if (k <= 0)
        return NULL;
      got += (size_t)k;
    }
    if (write(fd, b, sizeof b) != (ssize_t)sizeof b)
      return NULL;
  }
}

static int tcp_ping_pong(unsigned n, double *v) {
  int ls = socket(AF_INET, SOCK_STREAM, 0), cl = -1, sv = -1, one = 1, rc = -1;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  pthread_t t;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1) ||
      getsockname(ls, (struct sockaddr *)&sa, &sl))
    goto out;
  cl = socket(AF_INET, SOCK_STREAM, 0);
  if (cl < 0 || connect(cl, (struct sockaddr *)&sa, sizeof sa) ||
      (sv = accept(ls, NULL, NULL)) < 0)
    goto out;
  setsockopt(cl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(sv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (pthread_create(&t, NULL, echo_main, &sv))
    goto out;
  char b[64] = {0};
  rc = 0;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    uint64_t t0 = bench_mono_ns();
    size_t got = 0;
    if (write(cl, b, sizeof b) != (ssize_t)sizeof b)
      rc = -1;
    while (rc == 0 && got < sizeof b) {
      ssize_t k = read(cl, b + got, sizeof b - got);
      if (k <= 0)
        rc = -1;
      else
        got += (size_t)k;
    }
    v[i] = ms_since(t0);
  }
  shutdown(cl, SHUT_RDWR);
  pthread_join(t, NULL);
out:
  if (cl >= 0)
    close(cl);
  if (sv >= 0)
    close(sv);
  if (ls >= 0)
    close(ls);
  return rc;
}

typedef struct latency_result {
  lat_stats select1, rpc, info, doget, tcp;
  /* Server side, p50 from query_log (ms): context, planning, execution,
   * setup, total, first batch; and total p99. */
  double srv[7];
  double logged; /* queries found in query_log */
} latency_result;

/* query_log's phase percentiles for SELECT 1 queries begun in [w0, w1). */
static int server_phases(tl_fc *c, int64_t w0, int64_t w1, unsigned want,
                         double out[7], double *found) {
  char sql[2048];
  snprintf(sql, sizeof sql,
           "SELECT count(*), quantile_disc(context_ns, 0.5), "
           "quantile_disc(planning_ns, 0.5), quantile_disc(execution_ns, "
           "0.5), quantile_disc(setup_ns, 0.5), quantile_disc(total_ns, 0.5), "
           "quantile_disc(first_batch_ns, 0.5), quantile_disc(total_ns, 0.99) "
           "FROM query_log WHERE sql = 'SELECT 1' AND status = 'ok' AND "
           "begin_time >= make_timestamp_ns(%" PRId64 ") AND begin_time < "
           "make_timestamp_ns(%" PRId64 ")",
           w0, w1);
  /* The log lines are flushed every 200 ms and materialized when a
   * session opens: a few seconds at most. */
  row_values r = {0};
  for (int i = 0; i < 60; i++) {
    if (query_values(c, sql, &r))
      return -1;
    if (r.got && r.v[0] >= want)
      break;
    sleep_ms(250);
  }
  *found = r.got ? r.v[0] : 0;
  for (int k = 0; k < 7; k++)
    out[k] = r.got ? r.v[k + 1] / 1e6 : NAN;
  return 0;
}

static int phase_latency(const opts *o, const server *a, latency_result *lr) {
  memset(lr, 0, sizeof *lr);
  tl_fc *c = client_open(a);
  if (!c)
    return -1;
  int rc = -1;
  unsigned n = o->queries;
  double *v = calloc(n, sizeof *v);
  if (!v)
    goto out;
  if (select1_loop(c, o->warmup, NULL))
    goto out;
  pid_t perf = perf_start(o, a, NULL, "latency");
  int64_t w0 = wall_ns();
  if (select1_loop(c, n, v))
    goto out;
  int64_t w1 = wall_ns();
  perf_stop(perf);
  lat_summarize(v, n, &lr->select1);

  /* Baseline: one RPC that touches no query engine (DoAction
   * GetSessionOptions: one request, one result, status). A SELECT 1 is two
   * RPCs: GetFlightInfo (session, plan) then DoGet (execute, stream). */
  for (unsigned i = 0; i < n; i++) {
    uint64_t t0 = bench_mono_ns();
    if (tl_fc_do_action(c, "GetSessionOptions", NULL, 0, NULL, NULL)) {
      fprintf(stderr, "bench_flight: GetSessionOptions: %s\n", tl_fc_errmsg(c));
      goto out;
    }
    v[i] = ms_since(t0);
  }
  lat_summarize(v, n, &lr->rpc);

  /* The two RPCs of a SELECT 1 apart. */
  double *v2 = calloc(n, sizeof *v2);
  if (!v2)
    goto out;
  Arrow__Flight__Protocol__Sql__CommandStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY__INIT;
  q.query = "SELECT 1";
  for (unsigned i = 0; i < n; i++) {
    Arrow__Flight__Protocol__FlightInfo *info = NULL;
    uint64_t t0 = bench_mono_ns();
    if (tl_fc_get_flight_info(c, &q.base, &info)) {
      fprintf(stderr, "bench_flight: GetFlightInfo: %s\n", tl_fc_errmsg(c));
      free(v2);
      goto out;
    }
    v[i] = ms_since(t0);
    counter k = {0};
    tl_fc_sink sink = {NULL, count_rows, &k};
    t0 = bench_mono_ns();
    int grc = info->n_endpoint && info->endpoint[0]->ticket
                  ? tl_fc_do_get(c, info->endpoint[0]->ticket->ticket.data,
                                 info->endpoint[0]->ticket->ticket.len, &sink)
                  : TL_EMALFORMED;
    v2[i] = ms_since(t0);
    arrow__flight__protocol__flight_info__free_unpacked(info, NULL);
    if (grc || k.rows != 1) {
      fprintf(stderr, "bench_flight: DoGet: %s\n", tl_fc_errmsg(c));
      free(v2);
      goto out;
    }
  }
  lat_summarize(v, n, &lr->info);
  lat_summarize(v2, n, &lr->doget);
  free(v2);
  if (tcp_ping_pong(n, v)) {
    fprintf(stderr, "bench_flight: loopback TCP ping-pong failed\n");
    goto out;
  }
  lat_summarize(v, n, &lr->tcp);

  if (a->telemetry &&
      server_phases(c, w0, w1, n * 99 / 100, lr->srv, &lr->logged))
    goto out;
  rc = 0;
out:
  free(v);
  tl_fc_close(c);
  return rc;
}

/* ---- 2 and 3. Large results: Flight, in-process, loopback TCP ----------- */

typedef struct in_process {
  char data[800];
  tl_catalog *cat;
  tl_store *store;
  tl_lake *lake;
} in_process;

static int inproc_open(in_process *ip, const char *work) {
  char spec[900], err[512];
  memset(ip, 0, sizeof *ip);
  snprintf(ip->data, sizeof ip->data, "%s/inproc", work);
  mkdir(ip->data, 0755);
  snprintf(spec, sizeof spec, "%s/catalog.db", ip->data);
  if (tl_catalog_open(&ip->cat, spec, err, sizeof err)) {
    fprintf(stderr, "bench_flight: catalog: %s\n", err);
    return -1;
  }
  if (tl_store_open(&ip->store, ip->data)) {
    fprintf(stderr, "bench_flight: cannot open the store\n");
    return -1;
  }
  if (tl_lake_open(&ip->lake, ip->cat, ip->store, err, sizeof err)) {
    fprintf(stderr, "bench_flight: lake: %s\n", err);
    return -1;
  }
  return 0;
}

static void inproc_close(in_process *ip) {
  tl_lake_close(ip->lake);
  tl_store_close(ip->store);
  tl_catalog_close(ip->cat);
  memset(ip, 0, sizeof *ip);
}

/* What the Flight service does for a statement, without the network: a
 * session for the SQL, prepare, execute, every chunk as an Arrow array. */
static int inproc_run(in_process *ip, const char *sql, int64_t *rows) {
  char err[2048];
  tl_session *s = NULL;
  tl_query *q = NULL;
  int rc = tl_session_open_for(&s, ip->lake, INT64_MIN, INT64_MAX, sql, err,
                               sizeof err);
  if (rc == 0)
    rc = tl_query_prepare(&q, s, sql, err, sizeof err);
  if (rc == 0)
    rc = tl_query_execute(q, -1, NULL, NULL, err, sizeof err);
  *rows = 0;
  while (rc == 0) {
    struct ArrowArray a = {0};
    int got = tl_query_next(q, &a, err, sizeof err);
    if (got < 0)
      rc = got;
    if (got <= 0)
      break;
    *rows += a.length;
    tl_arrow_array_release(&a);
  }
  if (rc)
    fprintf(stderr, "bench_flight: in-process %.60s: %s\n", sql, err);
  tl_query_close(q);
  tl_session_close(s);
  return rc;
}

/* The same, plus what the service adds to the data without a network:
 * chunks coalesced into record batches of at most 64 Ki rows or 1 MiB (as
 * flightsql.c does), encoded as Arrow IPC, and decoded back into arrays as
 * the client does. */
typedef struct codec_sink {
  tl_ipc_reader *r;
  int64_t rows;
  uint64_t bytes;
  char err[256];
} codec_sink;

static int codec_emit(void *ctx, const uint8_t *header, size_t header_len,
                      uint8_t *body, size_t body_len, bool *take_body) {
  codec_sink *k = ctx;
  int kind = 0;
  (void)take_body; /* the writer frees it */
  int rc = tl_ipc_reader_feed(k->r, header, header_len, body, body_len, &kind,
                              k->err, sizeof k->err);
  k->bytes += header_len + body_len;
  struct ArrowArray a;
  if (rc == 0 && kind == TL_IPC_BATCH && tl_ipc_reader_take(k->r, &a) == 0) {
    k->rows += a.length;
    tl_arrow_array_release(&a);
  }
  return rc;
}

#define CODEC_ROWS 65536
#define CODEC_BYTES ((uint64_t)1 << 20)
#define CODEC_PENDING 256

static int inproc_codec_run(in_process *ip, const char *sql, int64_t *rows,
                            uint64_t *bytes) {
  char err[2048] = "";
  tl_session *s = NULL;
  tl_query *q = NULL;
  tl_ipc_writer *w = NULL;
  codec_sink k = {0};
  struct ArrowSchema schema = {0};
  struct ArrowArray pend[CODEC_PENDING];
  tl_ipc_slice sl[CODEC_PENDING];
  size_t n = 0;
  int64_t prow = 0;
  uint64_t pbytes = 0;
  int rc = tl_ipc_reader_new(&k.r);
  if (rc == 0)
    rc = tl_session_open_for(&s, ip->lake, INT64_MIN, INT64_MAX, sql, err,
                             sizeof err);
  if (rc == 0)
    rc = tl_query_prepare(&q, s, sql, err, sizeof err);
  if (rc == 0)
    rc = tl_query_execute(q, -1, NULL, NULL, err, sizeof err);
  if (rc == 0)
    rc = tl_query_schema(q, &schema, err, sizeof err);
  if (rc == 0)
    rc = tl_ipc_writer_new(&w, &schema, err, sizeof err);
  if (rc == 0)
    rc = tl_ipc_writer_schema(w, codec_emit, &k);
  bool end = false;
  while (rc == 0 && !end) {
    int got =
        n < CODEC_PENDING ? tl_query_next(q, &pend[n], err, sizeof err) : 0;
    if (got < 0) {
      rc = got;
      break;
    }
    if (got > 0) {
      prow += pend[n].length;
      pbytes += tl_ipc_body_size(&schema, &pend[n], 0, pend[n].length);
      sl[n] = (tl_ipc_slice){&pend[n], 0, pend[n].length};
      n++;
    } else if (n < CODEC_PENDING) {
      end = true;
    }
    if (n && (end || n == CODEC_PENDING || prow >= CODEC_ROWS ||
              pbytes >= CODEC_BYTES)) {
      rc = tl_ipc_writer_batch(w, sl, n, codec_emit, &k, err, sizeof err);
      for (size_t i = 0; i < n; i++)
        tl_arrow_array_release(&pend[i]);
      n = 0;
      prow = 0;
      pbytes = 0;
    }
  }
  for (size_t i = 0; i < n; i++)
    tl_arrow_array_release(&pend[i]);
  if (rc)
    fprintf(stderr, "bench_flight: in-process codec %.60s: %s %s\n", sql, err,
            k.err);
  *rows = k.rows;
  *bytes = k.bytes;
  tl_ipc_writer_free(w);
  if (schema.release)
    schema.release(&schema);
  tl_ipc_reader_free(k.r);
  tl_query_close(q);
  tl_session_close(s);
  return rc;
}

/* Raw loopback TCP: a writer thread sends `bytes` in 1 MiB writes over
 * 127.0.0.1, this thread reads them. Returns the seconds from the
 * connection to the last byte read, or -1. */
typedef struct tcp_writer {
  int fd;
  uint64_t bytes;
  int rc;
} tcp_writer;

static void *tcp_write_main(void *arg) {
  tcp_writer *w = arg;
  size_t chunk = 1u << 20;
  char *buf = malloc(chunk);
  w->rc = buf ? 0 : -1;
  if (buf)
    memset(buf, 0x5a, chunk);
  for (uint64_t sent = 0; buf && sent < w->bytes;) {
    size_t n = w->bytes - sent < chunk ? (size_t)(w->bytes - sent) : chunk;
    ssize_t k = write(w->fd, buf, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      w->rc = -1;
      break;
    }
    sent += (uint64_t)k;
  }
  free(buf);
  close(w->fd);
  return NULL;
}

static double tcp_loopback_s(uint64_t bytes) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  double secs = -1;
  char *buf = malloc(1u << 20);
  if (ls < 0 || !buf || bind(ls, (struct sockaddr *)&sa, sizeof sa) ||
      listen(ls, 1) || getsockname(ls, (struct sockaddr *)&sa, &sl))
    goto out;
  tcp_writer w = {socket(AF_INET, SOCK_STREAM, 0), bytes, 0};
  if (w.fd < 0 || connect(w.fd, (struct sockaddr *)&sa, sizeof sa)) {
    if (w.fd >= 0)
      close(w.fd);
    goto out;
  }
  int rd = accept(ls, NULL, NULL);
  if (rd < 0) {
    close(w.fd);
    goto out;
  }
  uint64_t t0 = bench_mono_ns(), got = 0;
  pthread_t t;
  if (pthread_create(&t, NULL, tcp_write_main, &w)) {
    close(w.fd);
    close(rd);
    goto out;
  }
  for (;;) {
    ssize_t k = read(rd, buf, 1u << 20);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    got += (uint64_t)k;
  }
  double s = (double)(bench_mono_ns() - t0) / 1e9;
  pthread_join(t, NULL);
  close(rd);
  if (got == bytes && w.rc == 0)
    secs = s;
out:
  free(buf);
  if (ls >= 0)
    close(ls);
  return secs;
}

/* `s` as the body of an SQL string literal (quotes doubled). */
static const char *sql_literal(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 3 < cap; s++) {
    if (*s == '\'')
      out[o++] = '\'';
    out[o++] = *s;
  }
  out[o] = 0;
  return out;
}

/* Runs of the loopback TCP baseline (short: 40-150 ms each). */
#define TCP_REPS 7

typedef struct big_result {
  const char *name, *label;
  char sql[512];
  int64_t rows;
  uint64_t bytes; /* received through Flight, one run */
  /* p50 and min of the runs, seconds: Flight, in-process, in-process with
   * the IPC codec, loopback TCP. */
  double flight_s, inproc_s, codec_s, tcp_s;
  double flight_min, inproc_min, codec_min, tcp_min;
  /* CPU seconds per run (p50): the server's and this process's during
   * Flight, this process's in-process and with the codec. */
  double cpu_server, cpu_client, cpu_inproc, cpu_codec;
  /* Context switches per run (p50): server, client; in-process. */
  double cs_server, cs_client, cs_inproc;
  double srv_total_s, srv_first_ms; /* query_log, p50 */
} big_result;

static int phase_throughput(const opts *o, const server *a, const char *work,
                            big_result *br, size_t nbr) {
  tl_fc *c = client_open(a);
  in_process ip;
  memset(&ip, 0, sizeof ip);
  int rc = -1;
  enum { F, I, X, T, CS, CC, CI, CX, XS, XC, XI, NV };
  double *v[NV];
  bool ok = c != NULL;
  for (int k = 0; k < NV; k++)
    ok = (v[k] = calloc(o->reps + TCP_REPS, sizeof(double))) != NULL && ok;
  if (!ok || inproc_open(&ip, work))
    goto out;
  counter k;
  /* Warm both paths (DuckDB's first query, gRPC's buffers). */
  if (run_count(c, Q_10K, &k, false))
    goto out;
  int64_t rows;
  uint64_t cbytes;
  if (inproc_run(&ip, Q_10K, &rows))
    goto out;
  for (size_t b = 0; b < nbr; b++) {
    pid_t perf = 0;
    char pname[64];
    snprintf(pname, sizeof pname, "throughput_%s", br[b].name);
    int64_t w0 = wall_ns();
    for (unsigned r = 0; r < o->reps; r++) {
      /* Flight and in-process alternate, so that a disturbance of the
       * machine hits both. perf records the last Flight run. */
      if (r == o->reps - 1)
        perf = perf_start(o, a, NULL, pname);
      double sc0 = proc_cpu_s(a->pid), cc0 = bench_cpu_seconds();
      uint64_t ss0 = proc_ctxsw(a->pid), cs0 = proc_ctxsw(getpid());
      uint64_t before = tl_fc_bytes_received(c), t0 = bench_mono_ns();
      if (run_count(c, br[b].sql, &k, false))
        goto out;
      v[F][r] = (double)(bench_mono_ns() - t0) / 1e9;
      v[CS][r] = proc_cpu_s(a->pid) - sc0;
      v[CC][r] = bench_cpu_seconds() - cc0;
      v[XS][r] = (double)(proc_ctxsw(a->pid) - ss0);
      v[XC][r] = (double)(proc_ctxsw(getpid()) - cs0);
      perf_stop(perf);
      perf = 0;
      br[b].bytes = tl_fc_bytes_received(c) - before;
      if (k.rows != (int64_t)o->rows) {
        fprintf(stderr, "bench_flight: %s: %" PRId64 " rows through Flight\n",
                br[b].name, k.rows);
        goto out;
      }
      cc0 = bench_cpu_seconds();
      cs0 = proc_ctxsw(getpid());
      t0 = bench_mono_ns();
      if (inproc_run(&ip, br[b].sql, &rows))
        goto out;
      v[I][r] = (double)(bench_mono_ns() - t0) / 1e9;
      v[CI][r] = bench_cpu_seconds() - cc0;
      v[XI][r] = (double)(proc_ctxsw(getpid()) - cs0);
      if (rows != (int64_t)o->rows) {
        fprintf(stderr, "bench_flight: %s: %" PRId64 " rows in-process\n",
                br[b].name, rows);
        goto out;
      }
      cc0 = bench_cpu_seconds();
      t0 = bench_mono_ns();
      if (inproc_codec_run(&ip, br[b].sql, &rows, &cbytes))
        goto out;
      v[X][r] = (double)(bench_mono_ns() - t0) / 1e9;
      v[CX][r] = bench_cpu_seconds() - cc0;
      if (rows != (int64_t)o->rows) {
        fprintf(stderr,
                "bench_flight: %s: %" PRId64 " rows in-process with IPC\n",
                br[b].name, rows);
        goto out;
      }
    }
    int64_t w1 = wall_ns();
    for (unsigned r = 0; r < TCP_REPS; r++) {
      v[T][r] = tcp_loopback_s(br[b].bytes);
      if (v[T][r] < 0) {
        fprintf(stderr, "bench_flight: loopback TCP baseline failed\n");
        goto out;
      }
    }
    br[b].rows = k.rows;
    br[b].flight_s = pct(v[F], o->reps, 50);
    br[b].flight_min = v[F][0];
    br[b].inproc_s = pct(v[I], o->reps, 50);
    br[b].inproc_min = v[I][0];
    br[b].codec_s = pct(v[X], o->reps, 50);
    br[b].codec_min = v[X][0];
    br[b].tcp_s = pct(v[T], TCP_REPS, 50);
    br[b].tcp_min = v[T][0];
    br[b].cpu_server = pct(v[CS], o->reps, 50);
    br[b].cpu_client = pct(v[CC], o->reps, 50);
    br[b].cpu_inproc = pct(v[CI], o->reps, 50);
    br[b].cpu_codec = pct(v[CX], o->reps, 50);
    br[b].cs_server = pct(v[XS], o->reps, 50);
    br[b].cs_client = pct(v[XC], o->reps, 50);
    br[b].cs_inproc = pct(v[XI], o->reps, 50);
    if (a->telemetry) {
      char sql[2400], lit[1100];
      row_values rv;
      snprintf(sql, sizeof sql,
               "SELECT count(*), quantile_disc(total_ns, 0.5), "
               "quantile_disc(first_batch_ns, 0.5) FROM query_log WHERE sql "
               "= '%s' AND begin_time >= make_timestamp_ns(%" PRId64
               ") AND begin_time < make_timestamp_ns(%" PRId64 ")",
               sql_literal(br[b].sql, lit, sizeof lit), w0, w1);
      for (int i = 0; i < 40; i++) {
        if (query_values(c, sql, &rv))
          goto out;
        if (rv.got && rv.v[0] >= o->reps)
          break;
        sleep_ms(250);
      }
      br[b].srv_total_s = rv.got ? rv.v[1] / 1e9 : NAN;
      br[b].srv_first_ms = rv.got ? rv.v[2] / 1e6 : NAN;
    }
  }
  rc = 0;
out:
  if (ip.lake || ip.cat || ip.store)
    inproc_close(&ip);
  for (int j = 0; j < NV; j++)
    free(v[j]);
  tl_fc_close(c);
  return rc;
}

/* DuckDB's memory in the server, MiB: its external file cache and total. */
static int duck_memory(const server *a, double *cache, double *total) {
  tl_fc *c = client_open(a);
  row_values rv;
  *cache = *total = NAN;
  if (!c)
    return -1;
  int rc = query_values(c,
                        "SELECT coalesce(sum(memory_usage_bytes) FILTER (tag = "
                        "'EXTERNAL_FILE_CACHE'), 0), "
                        "coalesce(sum(memory_usage_bytes), 0) FROM "
                        "duckdb_memory()",
                        &rv);
  if (rc == 0 && rv.got) {
    *cache = rv.v[0] / 1048576.0;
    *total = rv.v[1] / 1048576.0;
  }
  tl_fc_close(c);
  return rc;
}

/* ---- 4. Concurrent clients ---------------------------------------------- */

enum { K_SELECT1 = 0, K_AGG = 1, K_10K = 2, NKINDS = 3 };
static const char *const KIND_SQL[NKINDS] = {"SELECT 1", Q_SMALL_AGG, Q_10K};
static const char *const KIND_NAME[NKINDS] = {"select1", "small_agg",
                                              "rows_10k"};

typedef struct cthread {
  const server *s;
  int id;
  uint64_t deadline;
  double *lat[NKINDS];
  size_t n[NKINDS];
  uint64_t done, errors;
  char first_err[300];
  pthread_t t;
} cthread;

static void *client_main(void *arg) {
  cthread *ct = arg;
  tl_fc *c = client_open(ct->s);
  if (!c) {
    ct->errors++;
    snprintf(ct->first_err, sizeof ct->first_err, "cannot connect");
    return NULL;
  }
  for (uint64_t i = 0; bench_mono_ns() < ct->deadline; i++) {
    int kind = (int)((i + (uint64_t)ct->id) % NKINDS);
    counter k;
    uint64_t t0 = bench_mono_ns();
    int rc = run_count(c, KIND_SQL[kind], &k, true);
    double ms = ms_since(t0);
    bool ok = rc == 0 && (kind == K_SELECT1 ? k.rows == 1
                          : kind == K_10K   ? k.rows == 10000
                                            : k.rows >= 1);
    if (!ok) {
      if (!ct->errors)
        snprintf(ct->first_err, sizeof ct->first_err, "%s: %s", KIND_NAME[kind],
                 rc ? tl_fc_errmsg(c) : "wrong number of rows");
      ct->errors++;
      continue;
    }
    ct->done++;
    if (ct->n[kind] < MAX_SAMPLES)
      ct->lat[kind][ct->n[kind]++] = ms;
  }
  tl_fc_close(c);
  return NULL;
}

typedef struct conc_result {
  unsigned clients;
  double seconds;
  uint64_t queries, errors;
  char first_err[300];
  lat_stats all, kind[NKINDS];
  double rss_min, rss_max, rss_last, rss_first, rss_h1_max, rss_h2_max;
  double server_cores, bench_cores;
  unsigned rss_samples;
  /* query_log p50 per kind (ms): context, planning, execution, setup,
   * total; and how many were logged. */
  double srv[NKINDS][5], logged[NKINDS];
  unsigned threads;    /* of the server, at the end */
  long parts0, parts1; /* log_entries partitions before, after */
  /* DuckDB's own accounting (duckdb_memory()), MiB, before and after: its
   * external file cache (Parquet data kept in memory) and everything. */
  double cache0, cache1, duck0, duck1;
  double rss_slope; /* MiB per minute over the second half */
  double rss_h2_mean;
  char rss_series[512]; /* every 5 s */
} conc_result;

static int phase_concurrent(const opts *o, const server *a, conc_result *cr) {
  memset(cr, 0, sizeof *cr);
  cr->clients = o->clients;
  cthread *ct = calloc(o->clients, sizeof *ct);
  unsigned started = 0;
  int rc = -1;
  if (!ct)
    return -1;
  for (unsigned i = 0; i < o->clients; i++)
    for (int k = 0; k < NKINDS; k++)
      if (!(ct[i].lat[k] = malloc(MAX_SAMPLES * sizeof(double))))
        goto out;
  unsigned nsamples = o->seconds + 2;
  double *rss = calloc(nsamples, sizeof *rss);
  if (!rss)
    goto out;
  cr->parts0 = lake_partitions(a->data);
  duck_memory(a, &cr->cache0, &cr->duck0);
  pid_t perf = perf_start(o, a, NULL, "concurrent");
  double cpu0 = proc_cpu_s(a->pid), self0 = bench_cpu_seconds();
  uint64_t t0 = bench_mono_ns();
  uint64_t deadline = t0 + (uint64_t)o->seconds * 1000000000u;
  for (unsigned i = 0; i < o->clients; i++) {
    ct[i].s = a;
    ct[i].id = (int)i;
    ct[i].deadline = deadline;
    if (pthread_create(&ct[i].t, NULL, client_main, &ct[i]))
      break;
    started++;
  }
  /* The server's RSS, every second. */
  int64_t w0 = wall_ns();
  cr->rss_first = proc_rss_mib(a->pid);
  for (unsigned s = 0; s < nsamples; s++) {
    uint64_t at = t0 + (uint64_t)(s + 1) * 1000000000u;
    uint64_t now = bench_mono_ns();
    if (at > deadline)
      break;
    if (at > now)
      sleep_ms((unsigned)((at - now) / 1000000));
    rss[cr->rss_samples++] = proc_rss_mib(a->pid);
  }
  for (unsigned i = 0; i < started; i++)
    pthread_join(ct[i].t, NULL);
  int64_t w1 = wall_ns();
  cr->seconds = (double)(bench_mono_ns() - t0) / 1e9;
  cr->server_cores = (proc_cpu_s(a->pid) - cpu0) / cr->seconds;
  cr->bench_cores = (bench_cpu_seconds() - self0) / cr->seconds;
  perf_stop(perf);
  rss[cr->rss_samples++] = proc_rss_mib(a->pid);
  cr->rss_min = cr->rss_max = rss[0];
  for (unsigned s = 0; s < cr->rss_samples; s++) {
    if (rss[s] < cr->rss_min)
      cr->rss_min = rss[s];
    if (rss[s] > cr->rss_max)
      cr->rss_max = rss[s];
    double *h = s < cr->rss_samples / 2 ? &cr->rss_h1_max : &cr->rss_h2_max;
    if (rss[s] > *h)
      *h = rss[s];
  }
  cr->rss_last = rss[cr->rss_samples - 1];
  {
    /* Least-squares slope over the second half: steady growth shows there,
     * single spikes (a large result in flight) barely move it. */
    unsigned h = cr->rss_samples / 2, m = cr->rss_samples - h;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (unsigned i = h; i < cr->rss_samples; i++) {
      double x = (double)i, y = rss[i];
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    double den = (double)m * sxx - sx * sx;
    cr->rss_slope =
        m > 2 && den != 0 ? ((double)m * sxy - sx * sy) / den * 60 : 0;
    cr->rss_h2_mean = m ? sy / m : 0;
  }
  for (unsigned i = 4; i < cr->rss_samples; i += 5) {
    size_t len = strlen(cr->rss_series);
    snprintf(cr->rss_series + len, sizeof cr->rss_series - len, "%s%.0f",
             len ? " " : "", rss[i]);
  }
  free(rss);

  size_t total = 0;
  for (int k = 0; k < NKINDS; k++) {
    size_t n = 0;
    for (unsigned i = 0; i < started; i++)
      n += ct[i].n[k];
    total += n;
  }
  double *all = malloc((total ? total : 1) * sizeof *all);
  if (!all)
    goto out;
  size_t at = 0;
  for (int k = 0; k < NKINDS; k++) {
    size_t n = 0;
    double *v = malloc((total ? total : 1) * sizeof *v);
    if (!v) {
      free(all);
      goto out;
    }
    for (unsigned i = 0; i < started; i++) {
      memcpy(v + n, ct[i].lat[k], ct[i].n[k] * sizeof *v);
      memcpy(all + at, ct[i].lat[k], ct[i].n[k] * sizeof *v);
      n += ct[i].n[k];
      at += ct[i].n[k];
    }
    lat_summarize(v, n, &cr->kind[k]);
    free(v);
  }
  lat_summarize(all, at, &cr->all);
  free(all);
  for (unsigned i = 0; i < started; i++) {
    cr->queries += ct[i].done;
    cr->errors += ct[i].errors;
    if (ct[i].errors && !cr->first_err[0])
      snprintf(cr->first_err, sizeof cr->first_err, "%s", ct[i].first_err);
  }
  if (started < o->clients) {
    cr->errors += o->clients - started;
    snprintf(cr->first_err, sizeof cr->first_err, "pthread_create failed");
  }
  proc_threads_cpu_s(a->pid, "", &cr->threads);
  cr->parts1 = lake_partitions(a->data);
  duck_memory(a, &cr->cache1, &cr->duck1);
  /* Where the server says the time went, per kind of query. */
  if (a->telemetry) {
    tl_fc *c = client_open(a);
    if (!c)
      goto out;
    for (int k = 0; k < NKINDS; k++) {
      char sql[1600], lit[600];
      snprintf(sql, sizeof sql,
               "SELECT count(*), quantile_disc(context_ns, 0.5), "
               "quantile_disc(planning_ns, 0.5), quantile_disc(execution_ns, "
               "0.5), quantile_disc(setup_ns, 0.5), quantile_disc(total_ns, "
               "0.5) FROM query_log WHERE sql = '%s' AND begin_time >= "
               "make_timestamp_ns(%" PRId64 ") AND begin_time < "
               "make_timestamp_ns(%" PRId64 ")",
               sql_literal(KIND_SQL[k], lit, sizeof lit), w0, w1);
      row_values rv = {0};
      for (int i = 0; i < 40; i++) {
        if (query_values(c, sql, &rv))
          break;
        if (rv.got && rv.v[0] >= 0.99 * (double)cr->kind[k].n)
          break;
        sleep_ms(250);
      }
      cr->logged[k] = rv.got ? rv.v[0] : 0;
      for (int j = 0; j < 5; j++)
        cr->srv[k][j] = rv.got ? rv.v[j + 1] / 1e6 : NAN;
    }
    tl_fc_close(c);
  }
  rc = 0;
out:
  for (unsigned i = 0; i < o->clients; i++)
    for (int k = 0; k < NKINDS; k++)
      free(ct[i].lat[k]);
  free(ct);
  return rc;
}

/* Bounded: what the trend adds over the second half stays under
 * RSS_BOUND - 1 of the second half's mean. */
static bool rss_bounded(const conc_result *cr, unsigned seconds) {
  double growth = cr->rss_slope * (double)seconds / 2.0 / 60.0;
  return growth <= (RSS_BOUND - 1) * cr->rss_h2_mean;
}

/* ---- 5. Self-telemetry overhead, end to end ----------------------------- */

typedef struct overhead_result {
  const char *when; /* "fresh", "after load" */
  lat_stats on, off;
  double diff_us;                                        /* p50 on - off */
  double round_diff_med, round_diff_min, round_diff_max; /* us */
  double round_diff_lo, round_diff_hi; /* 95% CI of the median, us */
  /* CPU per query of the threads serving the calls (tl-fsql-worker), us */
  double workers_on_us, workers_off_us;
  double cpu_on_us, cpu_off_us; /* server CPU per query */
  /* Of the server with self-telemetry: CPU of its flusher (encoding and
   * storing its own blocks) and maintenance thread per query, its threads,
   * and the blocks of its own telemetry stored meanwhile (per second). */
  double flusher_us, maintain_us, blocks_per_s, streams;
  unsigned threads;
  double seconds;
  unsigned rounds;
} overhead_result;

static int phase_overhead(const opts *o, const server *on, const server *off,
                          const char *when, overhead_result *r) {
  memset(r, 0, sizeof *r);
  r->when = when;
  tl_fc *c[2] = {client_open(on), client_open(off)};
  const server *s[2] = {on, off};
  size_t total = (size_t)o->rounds * o->block;
  double *v[2] = {calloc(total, sizeof(double)), calloc(total, sizeof(double))};
  double *rd = calloc(o->rounds, sizeof *rd);
  double *tmp = calloc(o->block, sizeof *tmp);
  double cpu[2] = {0, 0};
  int rc = -1;
  /* BENCH_FLIGHT_ROUNDS_CSV=FILE: each round's two p50s (us) appended. */
  const char *csv = getenv("BENCH_FLIGHT_ROUNDS_CSV");
  FILE *rounds_csv = csv && *csv ? fopen(csv, "a") : NULL;
  if (!c[0] || !c[1] || !v[0] || !v[1] || !rd || !tmp)
    goto out;
  for (int k = 0; k < 2; k++)
    if (select1_loop(c[k], o->warmup, NULL))
      goto out;
  char pname[64];
  snprintf(pname, sizeof pname, "overhead_%s",
           !strcmp(when, "fresh")        ? "fresh"
           : !strcmp(when, "after load") ? "loaded"
                                         : when);
  pid_t perf = perf_start(o, on, off, pname);
  static cpu_sample w0s[2], w1s[2];
  for (int k = 0; k < 2; k++)
    threads_sample(s[k]->pid, "tl-fsql-worker", &w0s[k]);
  double fl0 = proc_threads_cpu_s(on->pid, "tl-flusher", NULL);
  double mt0 = proc_threads_cpu_s(on->pid, "tl-maintain", NULL);
  int64_t w0 = wall_ns();
  uint64_t t0 = bench_mono_ns();
  for (unsigned round = 0; round < o->rounds; round++) {
    double p50[2];
    for (int j = 0; j < 2; j++) {
      int k = round % 2 ? 1 - j : j; /* ABBA... against drift */
      double *blk = v[k] + (size_t)round * o->block;
      double c0 = proc_cpu_s(s[k]->pid);
      if (select1_loop(c[k], o->block, blk))
        goto out;
      cpu[k] += proc_cpu_s(s[k]->pid) - c0;
      memcpy(tmp, blk, o->block * sizeof *tmp);
      p50[k] = pct(tmp, o->block, 50);
    }
    rd[round] = (p50[0] - p50[1]) * 1000.0;
    if (rounds_csv)
      fprintf(rounds_csv, "%s,%u,%.2f,%.2f\n", when, round, p50[0] * 1000.0,
              p50[1] * 1000.0);
  }
  r->seconds = (double)(bench_mono_ns() - t0) / 1e9;
  int64_t w1 = wall_ns();
  for (int k = 0; k < 2; k++)
    threads_sample(s[k]->pid, "tl-fsql-worker", &w1s[k]);
  r->workers_on_us = threads_cpu_between(&w0s[0], &w1s[0]) / total * 1e6;
  r->workers_off_us = threads_cpu_between(&w0s[1], &w1s[1]) / total * 1e6;
  r->flusher_us =
      (proc_threads_cpu_s(on->pid, "tl-flusher", NULL) - fl0) / total * 1e6;
  r->maintain_us =
      (proc_threads_cpu_s(on->pid, "tl-maintain", &r->threads) - mt0) / total *
      1e6;
  perf_stop(perf);
  r->rounds = o->rounds;
  lat_summarize(v[0], total, &r->on);
  lat_summarize(v[1], total, &r->off);
  r->diff_us = (r->on.p50 - r->off.p50) * 1000.0;
  r->round_diff_med = pct(rd, o->rounds, 50); /* sorts rd */
  r->round_diff_min = rd[0];
  r->round_diff_max = rd[o->rounds - 1];
  /* A 95% confidence interval of that median, distribution-free: the
   * order statistics n/2 -+ 0.98 sqrt(n) (normal approximation of the
   * binomial), 1-based. */
  double n = (double)o->rounds, h = 0.98 * sqrt(n);
  long lo = (long)floor(n / 2 - h), hi = (long)ceil(n / 2 + 1 + h);
  lo = lo < 1 ? 1 : lo;
  hi = hi > (long)n ? (long)n : hi;
  r->round_diff_lo = rd[lo - 1];
  r->round_diff_hi = rd[hi - 1];
  r->cpu_on_us = cpu[0] / (double)total * 1e6;
  r->cpu_off_us = cpu[1] / (double)total * 1e6;
  /* What the self-telemetry stored meanwhile (it is acknowledged within
   * 200 ms; the catalog is read when a session opens). */
  sleep_ms(500);
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*), count(DISTINCT stream_id) FROM blocks WHERE "
           "insert_time >= make_timestamp_ns(%" PRId64 ") AND insert_time < "
           "make_timestamp_ns(%" PRId64 ")",
           w0, w1);
  row_values bv;
  if (query_values(c[0], sql, &bv) == 0 && bv.got) {
    r->blocks_per_s = bv.v[0] / r->seconds;
    r->streams = bv.v[1];
  }
  rc = 0;
out:
  if (rounds_csv)
    fclose(rounds_csv);
  free(v[0]);
  free(v[1]);
  free(rd);
  free(tmp);
  tl_fc_close(c[0]);
  tl_fc_close(c[1]);
  return rc;
}

static void print_overhead(const opts *o, const overhead_result *r) {
  printf("  %-34s %9s %9s %14s\n", "", "p50 ms", "p99 ms", "server CPU/query");
  printf("  %-34s %9.3f %9.3f %11.1f us\n", "with self-telemetry", r->on.p50,
         r->on.p99, r->cpu_on_us);
  printf("  %-34s %9.3f %9.3f %11.1f us\n", "--no-self-telemetry", r->off.p50,
         r->off.p99, r->cpu_off_us);
  printf("  difference: p50 %+.1f us (per-round p50 differences: median "
         "%+.1f, 95%% CI %+.1f .. %+.1f, range %+.1f .. %+.1f us); server "
         "CPU %+.1f us/query\n",
         r->diff_us, r->round_diff_med, r->round_diff_lo, r->round_diff_hi,
         r->round_diff_min, r->round_diff_max, r->cpu_on_us - r->cpu_off_us);
  printf("  CPU per query of the threads serving the calls (tl-fsql-worker, "
         "ns-precise): %.2f us with, %.2f us without: %+.2f us\n",
         r->workers_on_us, r->workers_off_us,
         r->workers_on_us - r->workers_off_us);
  printf("  with self-telemetry: its flusher %.1f us and maintenance thread "
         "%.1f us of CPU per query; %.0f blocks of its own telemetry stored "
         "per second (%.0f streams), %u threads\n",
         r->flusher_us, r->maintain_us, r->blocks_per_s, r->streams,
         r->threads);
  /* Met when the whole interval is at most the target, missed when it is
   * all above; otherwise this run cannot tell. */
  const char *v = r->round_diff_hi <= TARGET_OVERHEAD_US  ? "met"
                  : r->round_diff_lo > TARGET_OVERHEAD_US ? "MISSED"
                                                          : "not resolved";
  printf("  target <= %.0f us per query (median per-round difference, its "
         "95%% CI): %s\n",
         TARGET_OVERHEAD_US, v);
  bench_result("RESULT bench=flight name=overhead_%s rounds=%u block=%u "
               "on_p50_ms=%.4f off_p50_ms=%.4f diff_us=%.2f "
               "round_diff_median_us=%.2f round_diff_ci_lo_us=%.2f "
               "round_diff_ci_hi_us=%.2f round_diff_min_us=%.2f "
               "round_diff_max_us=%.2f cpu_on_us=%.2f cpu_off_us=%.2f "
               "flusher_us=%.2f maintain_us=%.2f blocks_per_s=%.1f "
               "streams=%.0f threads=%u workers_on_us=%.3f "
               "workers_off_us=%.3f target=diff<=%.0fus verdict=%s",
               r->when[0] == 'f' ? "fresh" : "loaded", r->rounds, o->block,
               r->on.p50, r->off.p50, r->diff_us, r->round_diff_med,
               r->round_diff_lo, r->round_diff_hi, r->round_diff_min,
               r->round_diff_max, r->cpu_on_us, r->cpu_off_us, r->flusher_us,
               r->maintain_us, r->blocks_per_s, r->streams, r->threads,
               r->workers_on_us, r->workers_off_us, TARGET_OVERHEAD_US, v);
}

/* ---- 5c. The same over several pairs of servers ------------------------ */

/* One pair of server processes differs from the next by a few us whatever
 * the telemetry (where the scheduler puts their threads, what their
 * background work does meanwhile): the rounds of one pair cannot tell that
 * offset from the telemetry's cost. So this phase starts `pairs` fresh
 * pairs, one after the other, runs phase 5's rounds on each, and takes
 * the interval over the pairs: each pair's median difference is one
 * observation. */
typedef struct pairs_result {
  unsigned n;          /* pairs measured */
  double med[64];      /* each pair's median per-round difference, us */
  double workers[64];  /* each pair's serving-thread CPU difference, us */
  double maintain[64]; /* each pair's maintenance CPU per query, us */
  double flusher[64];  /* each pair's flusher CPU per query, us */
  double other[64];    /* cores other processes used meanwhile */
  double mean, lo, hi; /* mean of med[] and its 95% t-interval */
  double srv_cpu;      /* CPU seconds of all the pairs' servers */
  double median;       /* median of med[] */
} pairs_result;

#define MAX_PAIRS 64

/* The two-sided 95% quantile of Student's t with df degrees of freedom. */
static double t95(unsigned df) {
  static const double t[] = {0,     12.706, 4.303, 3.182, 2.776, 2.571, 2.447,
                             2.365, 2.306,  2.262, 2.228, 2.201, 2.179, 2.160,
                             2.145, 2.131,  2.120, 2.110, 2.101, 2.093, 2.086};
  if (df < sizeof t / sizeof t[0])
    return t[df];
  return df < 30 ? 2.06 : df < 60 ? 2.02 : 1.98;
}

static int phase_pairs(const opts *o, const char *work, pairs_result *pr) {
  memset(pr, 0, sizeof *pr);
  opts po = *o;
  po.rounds = o->pair_rounds;
  po.perf = NULL; /* a profile per pair would be noise */
  printf("  %-5s %10s %10s %10s %11s %11s %10s %6s\n", "pair", "p50 on ms",
         "p50 off ms", "median us", "workers us", "maintain us", "flusher us",
         "other");
  for (unsigned p = 0; p < o->pairs; p++) {
    char n_on[32], n_off[32], when[16];
    snprintf(n_on, sizeof n_on, "pair%u-telemetry", p + 1);
    snprintf(n_off, sizeof n_off, "pair%u-no-telemetry", p + 1);
    snprintf(when, sizeof when, "pair%u", p + 1);
    server on = {0}, off = {0};
    overhead_result r;
    bench_cpu_sample c0, c1;
    bench_cpu_sample_take(&c0);
    /* Alternate which server starts first, against an order effect. */
    int rc = p % 2 ? server_start(&off, o, work, n_off, false) ||
                         server_start(&on, o, work, n_on, true)
                   : server_start(&on, o, work, n_on, true) ||
                         server_start(&off, o, work, n_off, false);
    if (!rc)
      rc = phase_overhead(&po, &on, &off, when, &r);
    /* Other processes: busy CPU less this process and the pair's servers
     * (their CPU since they started, shortly after c0). */
    double srv = proc_cpu_s(on.pid) + proc_cpu_s(off.pid);
    bench_cpu_sample_take(&c1);
    double wall = (double)(c1.wall_ns - c0.wall_ns) / 1e9;
    server_stop(&on);
    server_stop(&off);
    for (int k = 0; !o->keep && k < 2; k++) /* tens of MiB each */
      if ((k ? off : on).data[0])
        bench_rm_rf((k ? off : on).data);
    if (rc)
      return -1;
    unsigned k = pr->n++;
    pr->med[k] = r.round_diff_med;
    pr->workers[k] = r.workers_on_us - r.workers_off_us;
    pr->maintain[k] = r.maintain_us;
    pr->flusher[k] = r.flusher_us;
    pr->srv_cpu += srv;
    pr->other[k] = ((c1.busy - c0.busy) - (c1.self - c0.self) - srv) / wall;
    if (pr->other[k] < 0) /* /proc's 10 ms ticks */
      pr->other[k] = 0;
    printf("  %-5u %10.3f %10.3f %+10.1f %+11.2f %11.1f %10.1f %6.2f\n", p + 1,
           r.on.p50, r.off.p50, r.round_diff_med, pr->workers[k], r.maintain_us,
           r.flusher_us, pr->other[k]);
    fflush(stdout);
  }
  if (pr->n < 2)
    return -1;
  double sum = 0, ss = 0, tmp[MAX_PAIRS];
  for (unsigned k = 0; k < pr->n; k++)
    sum += pr->med[k];
  pr->mean = sum / pr->n;
  for (unsigned k = 0; k < pr->n; k++)
    ss += (pr->med[k] - pr->mean) * (pr->med[k] - pr->mean);
  double half = t95(pr->n - 1) * sqrt(ss / (pr->n - 1) / pr->n);
  pr->lo = pr->mean - half;
  pr->hi = pr->mean + half;
  memcpy(tmp, pr->med, pr->n * sizeof *tmp);
  pr->median = pct(tmp, pr->n, 50);
  return 0;
}

static const char *pairs_verdict(const pairs_result *pr) {
  return pr->hi <= TARGET_OVERHEAD_US  ? "met"
         : pr->lo > TARGET_OVERHEAD_US ? "MISSED"
                                       : "not resolved";
}

static void print_pairs(const opts *o, const pairs_result *pr) {
  double w = 0, m = 0, f = 0;
  for (unsigned k = 0; k < pr->n; k++) {
    w += pr->workers[k] / pr->n;
    m += pr->maintain[k] / pr->n;
    f += pr->flusher[k] / pr->n;
  }
  printf("  over %u pairs: mean of the pairs' medians %+.1f us, 95%% CI "
         "%+.1f .. %+.1f us (t, %u df); median of the pairs' medians %+.1f "
         "us; serving threads' CPU %+.2f us, maintenance %.1f us and flusher "
         "%.1f us per query (means)\n",
         pr->n, pr->mean, pr->lo, pr->hi, pr->n - 1, pr->median, w, m, f);
  printf("  target <= %.0f us per query (the mean over pairs, its 95%% CI): "
         "%s\n",
         TARGET_OVERHEAD_US, pairs_verdict(pr));
  bench_result("RESULT bench=flight name=overhead_pairs pairs=%u "
               "rounds_per_pair=%u block=%u mean_us=%.2f ci_lo_us=%.2f "
               "ci_hi_us=%.2f median_us=%.2f workers_us=%.3f maintain_us=%.2f "
               "flusher_us=%.2f target=diff<=%.0fus verdict=%s",
               pr->n, o->pair_rounds, o->block, pr->mean, pr->lo, pr->hi,
               pr->median, w, m, f, TARGET_OVERHEAD_US, pairs_verdict(pr));
}

/* ---- 6. The instrumentation alone, in this process ---------------------- */

static int discard_sink(void *ctx, int kind, const uint8_t *p, size_t n) {
  (void)ctx;
  (void)kind;
  (void)p;
  (void)n;
  return 0;
}

/* What qlog.c records for one SELECT 1 (the server's calls, in order). */
static void qrec_once(uint64_t i) {
  tl_qrec q;
  tl_qrec_begin(&q, "0b6c9f5e-4a3d-4c1b-9e8f-7a6b5c4d3e2f", tl_ticks(),
                (int64_t)i, "", "ipv4:127.0.0.1:40000");
  q.sql = "SELECT 1";
  for (int ph = TL_QPH_CONTEXT; ph <= TL_QPH_EXECUTION; ph++) {
    tl_qrec_phase_begin(&q, ph);
    tl_qrec_phase_end(&q, ph);
  }
  tl_qrec_phase_begin(&q, TL_QPH_STREAM);
  tl_qrec_batch(&q, 1, 289);
  tl_qrec_finish(&q, TL_QST_OK, NULL);
}

/* ns per query: p50 over `nbatches` batches of 1000, flushed between. */
static double qrec_measure(unsigned nbatches, bool flush) {
  double *v = calloc(nbatches, sizeof *v);
  if (!v)
    return -1;
  for (unsigned b = 0; b < nbatches; b++) {
    uint64_t t0 = bench_mono_ns();
    for (unsigned i = 0; i < 1000; i++)
      qrec_once(b * 1000u + i);
    v[b] = (double)(bench_mono_ns() - t0) / 1000.0;
    if (flush)
      tl_flush();
  }
  double p50 = pct(v, nbatches, 50);
  free(v);
  return p50;
}

typedef struct qrec_result {
  double off_ns, on_ns, log_ns; /* log_ns: tl_sql_fingerprint alone */
  double events;                /* recorded per query */
  uint64_t dropped;
} qrec_result;

static int phase_qrec(qrec_result *r) {
  memset(r, 0, sizeof *r);
  r->off_ns = qrec_measure(50, false); /* runtime not started */
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.sink = discard_sink;
  cfg.flush_period_ms = 200;
  if (tl_init(&cfg)) {
    fprintf(stderr, "bench_flight: tl_init failed\n");
    return -1;
  }
  qrec_measure(5, true); /* warm the buffers */
  tl_stats st0, st1;
  tl_stats_get(&st0);
  r->on_ns = qrec_measure(100, true);
  tl_stats_get(&st1);
  for (int k = 0; k < TL_DROP__COUNT; k++)
    r->dropped += st1.dropped[k] - st0.dropped[k];
  r->events = (double)(st1.events_recorded - st0.events_recorded) / 100000.0;
  tl_shutdown();
  char fp[256];
  uint64_t t0 = bench_mono_ns();
  for (int i = 0; i < 100000; i++) {
    tl_sql_fingerprint("SELECT 1", fp, sizeof fp);
    BENCH_KEEP();
  }
  r->log_ns = (double)(bench_mono_ns() - t0) / 100000.0;
  return 0;
}

/* ---- Main ---------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(
      f, "usage: bench_flight --tracelake PATH [options]\n"
         "  --tracelake PATH  the tracelake executable (servers, demo load)\n"
         "  --dir DIR         parent of the work directory ($TMPDIR or /tmp)\n"
         "  --phases LIST     latency,throughput,concurrent,overhead,pairs,"
         "qrec (all)\n"
         "  --queries N       timed SELECT 1 queries (2000); --warmup N (100)\n"
         "  --rows N          rows of the large results (10000000)\n"
         "  --reps N          runs of each large result (3)\n"
         "  --clients N       concurrent clients (32); --seconds N (60)\n"
         "  --rounds N        overhead rounds (40) of two --block N (200)\n"
         "  --pairs N         server pairs of the pairs phase (24), each for\n"
         "                    --pair-rounds N rounds (50)\n"
         "  --perf DIR        perf record the server and this process per "
         "phase\n"
         "  --callgraph MODE  perf's --call-graph mode (fp; dwarf,32768)\n"
         "  --keep            keep the work directory\n");
}

static unsigned parse_phases(const char *v) {
  unsigned p = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", v);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (!strcmp(t, "all"))
      p |= PH_ALL;
    else if (!strcmp(t, "latency"))
      p |= PH_LATENCY;
    else if (!strcmp(t, "throughput"))
      p |= PH_THROUGHPUT;
    else if (!strcmp(t, "concurrent"))
      p |= PH_CONCURRENT;
    else if (!strcmp(t, "overhead"))
      p |= PH_OVERHEAD;
    else if (!strcmp(t, "qrec"))
      p |= PH_QREC;
    else if (!strcmp(t, "pairs"))
      p |= PH_PAIRS;
    else
      return 0;
  }
  return p;
}

int main(int argc, char **argv) {
  opts o = {0};
  o.dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  o.phases = PH_ALL;
  o.callgraph = "fp";
  o.queries = 2000;
  o.warmup = 100;
  o.rows = 10000000;
  o.reps = 3;
  o.clients = 32;
  o.seconds = 60;
  o.rounds = 40;
  o.block = 200;
  o.pairs = 24;
  o.pair_rounds = 50;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--keep")) {
      o.keep = true;
      continue;
    }
    if (!v) {
      usage(stderr);
      return 2;
    }
    i++;
    if (!strcmp(a, "--tracelake"))
      o.tracelake = v;
    else if (!strcmp(a, "--dir"))
      o.dir = v;
    else if (!strcmp(a, "--perf"))
      o.perf = v;
    else if (!strcmp(a, "--callgraph"))
      o.callgraph = v;
    else if (!strcmp(a, "--phases"))
      o.phases = parse_phases(v);
    else if (!strcmp(a, "--queries"))
      o.queries = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--warmup"))
      o.warmup = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--rows"))
      o.rows = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--reps"))
      o.reps = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--clients"))
      o.clients = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--seconds"))
      o.seconds = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--rounds"))
      o.rounds = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--block"))
      o.block = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--pairs"))
      o.pairs = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--pair-rounds"))
      o.pair_rounds = (unsigned)strtoul(v, NULL, 10);
    else {
      usage(stderr);
      return 2;
    }
  }
  if (!o.tracelake || !o.phases || !o.queries || !o.rows || !o.reps ||
      !o.clients || o.clients > MAX_CLIENTS || !o.seconds || !o.rounds ||
      !o.block || o.pairs < 2 || o.pairs > MAX_PAIRS || !o.pair_rounds) {
    usage(stderr);
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);

  bench_print_machine("flight", bench_tsc_calibrate(100));
  char work[600];
  if (bench_mkdtemp(o.dir, "tlbench-flight", work, sizeof work))
    return 1;
  printf("work directory %s; servers: %s serve --http 127.0.0.1:0 --flight "
         "127.0.0.1:0 [--no-self-telemetry]\n",
         work, o.tracelake);
  bench_cpu_sample q0, q1 = {0};
  bench_cpu_sample_take(&q0);
  pairs_result pr;
  bool have_pairs = false;
  if (o.phases & PH_PAIRS) { /* first: its own servers, one pair at a time */
    printf("\n#### 5c. Self-telemetry overhead over %u pairs of fresh "
           "servers: SELECT 1, %u rounds of %u queries on each server of "
           "each pair, interleaved (ABBA)\n",
           o.pairs, o.pair_rounds, o.block);
    fflush(stdout);
    if (phase_pairs(&o, work, &pr)) {
      if (!o.keep)
        bench_rm_rf(work);
      return 1;
    }
    have_pairs = true;
    print_pairs(&o, &pr);
    fflush(stdout);
  }
  double srv_cpu0[2] = {0, 0}, srv_cpu1[2] = {0, 0};

  int status = 0;
  server on = {0}, off = {0};
  latency_result lr;
  big_result br[2];
  conc_result cr;
  overhead_result ovr[2];
  qrec_result qr;
  bool have_lat = false, have_big = false, have_conc = false,
       have_ovr[2] = {false, false}, have_qrec = false;
  memset(br, 0, sizeof br);
  br[0].name = "int";
  br[0].label = "two BIGINT columns";
  snprintf(br[0].sql, sizeof br[0].sql, Q_INT, o.rows);
  br[1].name = "str";
  br[1].label = "BIGINT + a 30-40 byte VARCHAR";
  snprintf(br[1].sql, sizeof br[1].sql, Q_STR, o.rows);

  if (!(o.phases & (PH_LATENCY | PH_THROUGHPUT | PH_CONCURRENT | PH_OVERHEAD)))
    goto in_process; /* no phase needs the two long-lived servers */
  if (server_start(&on, &o, work, "telemetry", true) ||
      ((o.phases & PH_OVERHEAD) &&
       server_start(&off, &o, work, "no-telemetry", false))) {
    status = 1;
    goto out;
  }
  srv_cpu0[0] = proc_cpu_s(on.pid);
  srv_cpu0[1] = off.pid > 0 ? proc_cpu_s(off.pid) : 0;
  printf("server with self-telemetry: pid %d, %s; RSS %.0f MiB\n", (int)on.pid,
         on.grpc_url, proc_rss_mib(on.pid));
  if (off.pid > 0)
    printf("server --no-self-telemetry: pid %d, %s; RSS %.0f MiB\n",
           (int)off.pid, off.grpc_url, proc_rss_mib(off.pid));
  if (load_demo(&on, &o, work)) {
    status = 1;
    goto out;
  }
  printf("loaded: tracelake demo --url %s\n", on.http_url);
  fflush(stdout);

  if (o.phases & PH_OVERHEAD) {
    printf("\n#### 5a. Self-telemetry overhead on fresh servers: SELECT 1, %u "
           "rounds of %u queries on each server, interleaved (ABBA)\n",
           o.rounds, o.block);
    fflush(stdout);
    if (phase_overhead(&o, &on, &off, "fresh", &ovr[0])) {
      status = 1;
      goto out;
    }
    have_ovr[0] = true;
    print_overhead(&o, &ovr[0]);
    fflush(stdout);
  }

  if (o.phases & PH_LATENCY) {
    printf("\n#### 1. SELECT 1 round trip (persistent connection; %u warm-up, "
           "%u timed)\n",
           o.warmup, o.queries);
    fflush(stdout);
    if (phase_latency(&o, &on, &lr)) {
      status = 1;
      goto out;
    }
    have_lat = true;
    printf("  %-44s %9s %9s %9s\n", "", "p50 ms", "p99 ms", "min ms");
    printf("  %-44s %9.3f %9.3f %9.3f  target p50 <= %.1f ms: %s\n",
           "SELECT 1 (tl_fc_execute)", lr.select1.p50, lr.select1.p99,
           lr.select1.min, TARGET_SELECT1_P50_MS,
           verdict(lr.select1.p50 <= TARGET_SELECT1_P50_MS));
    printf("  %-44s %9.3f %9.3f %9.3f\n", "  of which GetFlightInfo alone",
           lr.info.p50, lr.info.p99, lr.info.min);
    printf("  %-44s %9.3f %9.3f %9.3f\n", "  of which DoGet alone",
           lr.doget.p50, lr.doget.p99, lr.doget.min);
    printf("  %-44s %9.3f %9.3f %9.3f  (x2 = %.3f ms: the floor of 2 RPCs)\n",
           "baseline: empty RPC (DoAction GetSession..)", lr.rpc.p50,
           lr.rpc.p99, lr.rpc.min, 2 * lr.rpc.p50);
    printf("  %-44s %9.3f %9.3f %9.3f\n",
           "baseline: TCP round trip, 64 B (echo thread)", lr.tcp.p50,
           lr.tcp.p99, lr.tcp.min);
    printf("  server side, query_log p50 over %.0f of these queries (ms): "
           "context %.3f, planning %.3f, execution %.3f, setup %.3f, first "
           "batch %.3f, total %.3f (p99 %.3f)\n",
           lr.logged, lr.srv[0], lr.srv[1], lr.srv[2], lr.srv[3], lr.srv[5],
           lr.srv[4], lr.srv[6]);
    printf("  (setup = arrival of GetFlightInfo to the end of execution in "
           "DoGet: it includes the client's turn-around between the two "
           "RPCs; total ends after the status of DoGet was sent)\n");
    bench_result("RESULT bench=flight name=select1 p50_ms=%.4f p99_ms=%.4f "
                 "min_ms=%.4f info_p50_ms=%.4f doget_p50_ms=%.4f "
                 "rpc_p50_ms=%.4f rpc_p99_ms=%.4f tcp_rtt_p50_ms=%.4f "
                 "target=p50<=%.1fms met=%s",
                 lr.select1.p50, lr.select1.p99, lr.select1.min, lr.info.p50,
                 lr.doget.p50, lr.rpc.p50, lr.rpc.p99, lr.tcp.p50,
                 TARGET_SELECT1_P50_MS,
                 lr.select1.p50 <= TARGET_SELECT1_P50_MS ? "yes" : "no");
    bench_result("RESULT bench=flight name=select1_server logged=%.0f "
                 "context_p50_ms=%.4f planning_p50_ms=%.4f "
                 "execution_p50_ms=%.4f setup_p50_ms=%.4f total_p50_ms=%.4f "
                 "first_batch_p50_ms=%.4f total_p99_ms=%.4f",
                 lr.logged, lr.srv[0], lr.srv[1], lr.srv[2], lr.srv[3],
                 lr.srv[4], lr.srv[5], lr.srv[6]);
    fflush(stdout);
  }

  if (o.phases & PH_THROUGHPUT) {
    printf("\n#### 2-3. Large results: %" PRIu64 " rows, %u runs each "
           "(loopback TCP: %d); Flight (DoGet) vs raw loopback TCP vs "
           "in-process DuckDB\n",
           o.rows, o.reps, TCP_REPS);
    fflush(stdout);
    if (phase_throughput(&o, &on, work, br, 2)) {
      status = 1;
      goto out;
    }
    have_big = true;
    for (int b = 0; b < 2; b++) {
      double gb = (double)br[b].bytes / 1e9;
      double fl = gb / br[b].flight_s, tcp = gb / br[b].tcp_s;
      double ratio = br[b].flight_s / br[b].inproc_s;
      printf("  %s: %s\n", br[b].name, br[b].sql);
      printf("    %-34s %7s %7s %8s %9s %9s %9s\n", "", "p50 s", "min s",
             "GB/s", "CPU srv s", "CPU cli s", "ctx sw");
      printf("    %-34s %7.3f %7.3f %8.3f %9.3f %9.3f %9.0f\n",
             "Flight DoGet (tl_fc_execute)", br[b].flight_s, br[b].flight_min,
             fl, br[b].cpu_server, br[b].cpu_client,
             br[b].cs_server + br[b].cs_client);
      printf("    %-34s %7.3f %7.3f %8.3f %9s %9s\n",
             "baseline: loopback TCP, same bytes", br[b].tcp_s, br[b].tcp_min,
             tcp, "", "");
      printf("    %-34s %7.3f %7.3f %8.3f %9s %9.3f %9.0f\n",
             "baseline: in-process DuckDB", br[b].inproc_s, br[b].inproc_min,
             gb / br[b].inproc_s, "", br[b].cpu_inproc, br[b].cs_inproc);
      printf("    %-34s %7.3f %7.3f %8.3f %9s %9.3f\n",
             "  same + IPC encode + decode", br[b].codec_s, br[b].codec_min,
             gb / br[b].codec_s, "", br[b].cpu_codec);
      printf("    %.1f MB received (%.1f bytes/row); server (query_log p50): "
             "total %.3f s, first batch after %.1f ms; context switches: "
             "server %.0f, client %.0f\n",
             (double)br[b].bytes / 1e6,
             (double)br[b].bytes / (double)br[b].rows, br[b].srv_total_s,
             br[b].srv_first_ms, br[b].cs_server, br[b].cs_client);
      printf("    Flight / TCP = %.1f%%  (target >= %.0f%%: %s); Flight / "
             "in-process = %.2fx  (target <= %.1fx: %s)\n",
             100 * fl / tcp, 100 * TARGET_TCP_FRACTION,
             verdict(fl / tcp >= TARGET_TCP_FRACTION), ratio,
             TARGET_INPROC_RATIO, verdict(ratio <= TARGET_INPROC_RATIO));
      bench_result(
          "RESULT bench=flight name=doget_%s rows=%" PRId64 " bytes=%" PRIu64
          " flight_s=%.4f flight_min_s=%.4f flight_gbps=%.4f tcp_s=%.4f "
          "tcp_gbps=%.4f fraction=%.4f inproc_s=%.4f inproc_min_s=%.4f "
          "ratio=%.4f codec_s=%.4f cpu_server_s=%.4f cpu_client_s=%.4f "
          "cpu_inproc_s=%.4f cpu_codec_s=%.4f ctxsw_server=%.0f "
          "ctxsw_client=%.0f ctxsw_inproc=%.0f server_total_s=%.4f "
          "server_first_batch_ms=%.3f target=fraction>=%.2f,ratio<=%.2f "
          "met=%s,%s",
          br[b].name, br[b].rows, br[b].bytes, br[b].flight_s, br[b].flight_min,
          fl, br[b].tcp_s, tcp, fl / tcp, br[b].inproc_s, br[b].inproc_min,
          ratio, br[b].codec_s, br[b].cpu_server, br[b].cpu_client,
          br[b].cpu_inproc, br[b].cpu_codec, br[b].cs_server, br[b].cs_client,
          br[b].cs_inproc, br[b].srv_total_s, br[b].srv_first_ms,
          TARGET_TCP_FRACTION, TARGET_INPROC_RATIO,
          fl / tcp >= TARGET_TCP_FRACTION ? "yes" : "no",
          ratio <= TARGET_INPROC_RATIO ? "yes" : "no");
    }
    fflush(stdout);
  }

  if (o.phases & PH_CONCURRENT) {
    printf("\n#### 4. %u concurrent clients for %u s, each looping over: "
           "SELECT 1; %s; %s\n",
           o.clients, o.seconds, Q_SMALL_AGG, Q_10K);
    fflush(stdout);
    if (phase_concurrent(&o, &on, &cr)) {
      status = 1;
      goto out;
    }
    have_conc = true;
    printf("  %" PRIu64 " queries in %.1f s (%.0f/s), %" PRIu64 " errors%s%s\n",
           cr.queries, cr.seconds, (double)cr.queries / cr.seconds, cr.errors,
           cr.errors ? ", first: " : "", cr.first_err);
    printf("  %-12s %9s %9s %9s %9s\n", "latency", "queries", "p50 ms",
           "p99 ms", "max ms");
    printf("  %-12s %9zu %9.2f %9.2f %9.2f\n", "all", cr.all.n, cr.all.p50,
           cr.all.p99, cr.all.max);
    for (int k = 0; k < NKINDS; k++)
      printf("  %-12s %9zu %9.2f %9.2f %9.2f\n", KIND_NAME[k], cr.kind[k].n,
             cr.kind[k].p50, cr.kind[k].p99, cr.kind[k].max);
    printf("  server side, query_log p50 (ms): %-10s %7s %8s %9s %7s %7s\n", "",
           "context", "planning", "execution", "setup", "total");
    for (int k = 0; k < NKINDS; k++)
      printf("  %32s %-10s %7.2f %8.2f %9.2f %7.2f %7.2f  (%.0f logged)\n", "",
             KIND_NAME[k], cr.srv[k][0], cr.srv[k][1], cr.srv[k][2],
             cr.srv[k][3], cr.srv[k][4], cr.logged[k]);
    printf("  (setup includes the wait between GetFlightInfo and DoGet; total "
           "runs to the status of DoGet)\n");
    printf("  server RSS (MiB, %u samples, 1/s): first %.0f, min %.0f, max "
           "%.0f, last %.0f; max of 1st half %.0f, of 2nd half %.0f\n",
           cr.rss_samples, cr.rss_first, cr.rss_min, cr.rss_max, cr.rss_last,
           cr.rss_h1_max, cr.rss_h2_max);
    printf("  server RSS every 5 s (MiB): %s\n", cr.rss_series);
    printf("  CPU: server %.2f cores, clients (this process) %.2f cores; "
           "server threads at the end: %u\n",
           cr.server_cores, cr.bench_cores, cr.threads);
    for (int k = 0; k < NKINDS; k++)
      bench_result("RESULT bench=flight name=concurrent_server_%s logged=%.0f "
                   "context_p50_ms=%.3f planning_p50_ms=%.3f "
                   "execution_p50_ms=%.3f setup_p50_ms=%.3f total_p50_ms=%.3f",
                   KIND_NAME[k], cr.logged[k], cr.srv[k][0], cr.srv[k][1],
                   cr.srv[k][2], cr.srv[k][3], cr.srv[k][4]);
    bool bounded = rss_bounded(&cr, o.seconds);
    printf("  server RSS trend over the 2nd half: %+.1f MiB/min (mean %.0f "
           "MiB); log_entries partitions: %ld before, %ld after\n",
           cr.rss_slope, cr.rss_h2_mean, cr.parts0, cr.parts1);
    printf("  DuckDB's memory in the server (duckdb_memory(), MiB): external "
           "file cache %.1f -> %.1f, all %.1f -> %.1f\n",
           cr.cache0, cr.cache1, cr.duck0, cr.duck1);
    printf("  errors == 0: %s; memory bounded (2nd-half growth <= %.0f%% of "
           "its mean): %s\n",
           verdict(cr.errors == 0), 100 * (RSS_BOUND - 1), verdict(bounded));
    bench_result("RESULT bench=flight name=concurrent clients=%u seconds=%.1f "
                 "queries=%" PRIu64 " errors=%" PRIu64 " qps=%.1f "
                 "p50_ms=%.3f p99_ms=%.3f select1_p50_ms=%.3f "
                 "select1_p99_ms=%.3f agg_p50_ms=%.3f agg_p99_ms=%.3f "
                 "rows10k_p50_ms=%.3f rows10k_p99_ms=%.3f rss_min_mib=%.1f "
                 "rss_max_mib=%.1f rss_last_mib=%.1f "
                 "rss_slope_mib_per_min=%.2f partitions_before=%ld "
                 "partitions_after=%ld duck_cache_mib=%.1f duck_total_mib=%.1f "
                 "server_threads=%u server_cores=%.2f "
                 "client_cores=%.2f met=%s",
                 cr.clients, cr.seconds, cr.queries, cr.errors,
                 (double)cr.queries / cr.seconds, cr.all.p50, cr.all.p99,
                 cr.kind[0].p50, cr.kind[0].p99, cr.kind[1].p50, cr.kind[1].p99,
                 cr.kind[2].p50, cr.kind[2].p99, cr.rss_min, cr.rss_max,
                 cr.rss_last, cr.rss_slope, cr.parts0, cr.parts1, cr.cache1,
                 cr.duck1, cr.threads, cr.server_cores, cr.bench_cores,
                 cr.errors == 0 && bounded ? "yes" : "no");
    if (cr.errors)
      status = 1;
    fflush(stdout);
  }

  if (o.phases & PH_OVERHEAD) {
    printf("\n#### 5b. Self-telemetry overhead after phases 1-4: SELECT 1, %u "
           "rounds of %u queries on each server, interleaved (ABBA)\n",
           o.rounds, o.block);
    fflush(stdout);
    if (phase_overhead(&o, &on, &off, "after load", &ovr[1])) {
      status = 1;
      goto out;
    }
    have_ovr[1] = true;
    print_overhead(&o, &ovr[1]);
    fflush(stdout);
  }

  if (off.pid > 0)
    srv_cpu1[1] = proc_cpu_s(off.pid);
  srv_cpu1[0] = proc_cpu_s(on.pid);
  printf("\nserver RSS at the end: with self-telemetry %.0f MiB",
         proc_rss_mib(on.pid));
  if (off.pid > 0)
    printf(", --no-self-telemetry %.0f MiB", proc_rss_mib(off.pid));
  printf("\n");
  bench_cpu_sample_take(&q1);
  server_stop(&on);
  server_stop(&off);

in_process:
  /* Last: it starts libtracelake's runtime in this process. */
  if (o.phases & PH_QREC) {
    printf("\n#### 6. The per-query instrumentation alone (qlog.c's calls "
           "for one SELECT 1, in this process, p50 of batches of 1000)\n");
    if (phase_qrec(&qr)) {
      status = 1;
      goto out;
    }
    have_qrec = true;
    printf("  runtime not started (calls are counted drops): %8.0f ns/query\n",
           qr.off_ns);
    printf("  runtime started, sink discards blocks:          %8.0f ns/query "
           "(%.1f events per query, %" PRIu64 " dropped)\n",
           qr.on_ns, qr.events, qr.dropped);
    printf("  of which tl_sql_fingerprint(\"SELECT 1\"): %.0f ns\n", qr.log_ns);
    bench_result("RESULT bench=flight name=qrec off_ns=%.1f on_ns=%.1f "
                 "fingerprint_ns=%.1f events=%.1f dropped=%" PRIu64,
                 qr.off_ns, qr.on_ns, qr.log_ns, qr.events, qr.dropped);
  }

out:
  if (q1.wall_ns == 0) {
    if (on.pid > 0)
      srv_cpu1[0] = proc_cpu_s(on.pid);
    if (off.pid > 0)
      srv_cpu1[1] = proc_cpu_s(off.pid);
    bench_cpu_sample_take(&q1);
  }
  server_stop(&on);
  server_stop(&off);
  {
    /* Other processes = busy CPU minus this process and the servers. */
    double wall = (double)(q1.wall_ns - q0.wall_ns) / 1e9;
    double srv = (srv_cpu1[0] - srv_cpu0[0]) + (srv_cpu1[1] - srv_cpu0[1]) +
                 (have_pairs ? pr.srv_cpu : 0);
    double other =
        wall > 0 ? ((q1.busy - q0.busy) - (q1.self - q0.self) - srv) / wall : 0;
    double load[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
      if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
        load[0] = 0;
      fclose(f);
    }
    printf("\nmachine during the run (%.0f s): other processes %.2f cores "
           "(besides this one and the servers), steal %.2f, load average "
           "%.2f %.2f %.2f%s\n",
           wall, other < 0 ? 0 : other,
           wall > 0 ? (q1.steal - q0.steal) / wall : 0, load[0], load[1],
           load[2], other > 0.25 ? "  (NOT QUIET: figures disturbed)" : "");
    bench_result("RESULT bench=flight name=machine seconds=%.1f "
                 "other_cores=%.2f load1=%.2f",
                 wall, other < 0 ? 0 : other, load[0]);
  }

  printf("\n#### Summary\n");
  if (have_lat)
    printf("  %-52s %-10s %10.3f ms  %s\n", "1. SELECT 1 round trip p50",
           "<= 1 ms", lr.select1.p50,
           verdict(lr.select1.p50 <= TARGET_SELECT1_P50_MS));
  for (int b = 0; have_big && b < 2; b++) {
    double fl = (double)br[b].bytes / 1e9 / br[b].flight_s;
    double tcp = (double)br[b].bytes / 1e9 / br[b].tcp_s;
    char label[80];
    snprintf(label, sizeof label, "2. DoGet %s: %.3f GB/s of loopback TCP's",
             br[b].name, fl);
    printf("  %-52s %-10s %10.1f %%   %s\n", label, ">= 50%", 100 * fl / tcp,
           verdict(fl / tcp >= TARGET_TCP_FRACTION));
  }
  for (int b = 0; have_big && b < 2; b++) {
    double ratio = br[b].flight_s / br[b].inproc_s;
    char label[80];
    snprintf(label, sizeof label, "3. Flight / in-process, %s", br[b].name);
    printf("  %-52s %-10s %10.2f x   %s\n", label, "<= 1.3x", ratio,
           verdict(ratio <= TARGET_INPROC_RATIO));
  }
  if (have_conc) {
    char label[80];
    snprintf(label, sizeof label, "4. %u clients: errors (%" PRIu64 " queries)",
             cr.clients, cr.queries);
    printf("  %-52s %-10s %10" PRIu64 "     %s\n", label, "0", cr.errors,
           verdict(cr.errors == 0));
    snprintf(label, sizeof label,
             "4. server RSS max, MiB (min %.0f, last %.0f)", cr.rss_min,
             cr.rss_last);
    printf("  %-52s %-10s %10.0f     %s\n", label, "bounded", cr.rss_max,
           verdict(rss_bounded(&cr, o.seconds)));
  }
  for (int k = 0; k < 2; k++) {
    if (!have_ovr[k])
      continue;
    char label[80];
    snprintf(label, sizeof label, "5%c. self-telemetry, SELECT 1, %s", 'a' + k,
             ovr[k].when);
    /* The median of the per-round p50 differences, with its 95% CI: met
     * only when the whole interval is within the target. */
    const overhead_result *r = &ovr[k];
    printf("  %-52s %-10s %+10.1f us  %s (95%% CI %+.1f..%+.1f us; server "
           "CPU %+.0f us/query)\n",
           label, "<= 2 us", r->round_diff_med,
           r->round_diff_hi <= TARGET_OVERHEAD_US  ? "met"
           : r->round_diff_lo > TARGET_OVERHEAD_US ? "MISSED"
                                                   : "not resolved",
           r->round_diff_lo, r->round_diff_hi, r->cpu_on_us - r->cpu_off_us);
  }
  if (have_pairs)
    printf("  %-52s %-10s %+10.1f us  %s (95%% CI %+.1f..%+.1f us over %u "
           "pairs)\n",
           "5c. self-telemetry, SELECT 1, pairs of servers", "<= 2 us", pr.mean,
           pairs_verdict(&pr), pr.lo, pr.hi, pr.n);
  if (have_qrec)
    printf("  %-52s %-10s %10.2f us  %s\n",
           "   (instrumentation alone, in-process)", "<= 2 us",
           qr.on_ns / 1000.0, verdict(qr.on_ns / 1000.0 <= TARGET_OVERHEAD_US));
  if (!o.keep)
    bench_rm_rf(work);
  else
    printf("work directory kept: %s\n", work);
  printf("\n");
  bench_print_results();
  return status;
}

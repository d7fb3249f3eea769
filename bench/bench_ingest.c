/* bench_ingest.c - the ingestion service under load. libtracelake itself
 * sends real blocks over HTTP to `tracelake serve` from N processes of M
 * threads each; a direct HTTP client posts blocks captured from the library
 * and times every acknowledgement; and the baselines that explain where the
 * time goes run the same way: a server that answers 200 without storing
 * (optionally after validating), the store's durable-write sequence and a
 * SQLite WAL commit on the same disk. bench/run-ingest.sh drives it all.
 *
 *   bench_ingest load     N sender processes (`send`), aggregated
 *   bench_ingest send     one sender process (run by `load`)
 *   bench_ingest post     C keep-alive connections posting blocks, latency
 *   bench_ingest null-server [--decode]   the "raw loopback HTTP" baseline
 *   bench_ingest fsync    the store's write+fsync+link+fsync(dir) sequence
 *   bench_ingest sqlite   one-row WAL commits with synchronous=FULL
 *   bench_ingest verify   the catalog holds exactly what was acknowledged;
 *                         the server's own ingest_block_duration telemetry
 *
 * Figures are printed as text and as `RESULT bench=ingest ...` lines. Timing
 * never makes this program fail; lost or refused data does. Traffic goes to
 * the URL given (run-ingest.sh only ever gives 127.0.0.1). */
#define TL_TARGET "bench::ingest"
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
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
#include "lake/catalog.h"
#include "lake/store.h"
#include "wire/wire.h"

extern char **environ;

#define MAX_PROCS 64
#define MAX_THREADS 64
#define MAX_SENDERS 1024

typedef struct opts {
  const char *url;     /* server base URL */
  const char *dir;     /* spill root (load/send), files (fsync), db (sqlite) */
  const char *data;    /* verify: the lake's --data */
  const char *catalog; /* verify: --catalog, default DATA/catalog.db */
  const char *senders; /* verify: SENDER lines; load/post: append them */
  const char *tag;     /* RESULT name */
  const char *meta;    /* extra "k=v ..." appended to RESULT lines */
  unsigned processes, threads, connections, http_threads;
  uint64_t events;    /* send/load: per process; post: captured */
  double rate;        /* send/load: events/s per process; 0 = unpaced */
  double seconds;     /* post: duration */
  size_t buffer_size; /* tl_config.buffer_size; 0 = default (128 KiB) */
  size_t memory;      /* tl_config.memory_limit */
  size_t size;        /* fsync: bytes per blob */
  unsigned drain_ms, timeout_s, ops, batch, events_per_block;
  uint64_t start_at; /* send: CLOCK_MONOTONIC ns at which to start */
  int decode, plain, quiet;
  unsigned port;
  int server_pid; /* load/post: the server, for its CPU time; 0 = unknown */
  int pg_pid;     /* load/post: PostgreSQL's postmaster; 0 = none */
} opts;

static double pct(double *v, size_t n, double p) {
  if (!n)
    return 0;
  size_t i = (size_t)(p / 100.0 * (double)n);
  return v[i < n ? i : n - 1];
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void sleep_until(uint64_t t) {
  for (;;) {
    uint64_t now = bench_mono_ns();
    if (now >= t)
      return;
    uint64_t d = t - now;
    struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
    nanosleep(&ts, NULL);
  }
}

/* A growable array of latencies (ms), capped. */
typedef struct lat {
  double *v;
  size_t n, cap;
} lat;

static void lat_add(lat *l, double ms) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4096;
    if (cap > ((size_t)1 << 24))
      return;
    double *v = realloc(l->v, cap * sizeof *v);
    if (!v)
      return;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = ms;
}

/* CPU seconds (user + system) process `pid` has used, from /proc; 0 when
 * unknown. */
static double proc_cpu_seconds(int pid) {
  if (pid <= 0)
    return 0;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (!p ||
      sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
             &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Where the machine's CPU went during a run: the server (by pid),
 * PostgreSQL (its postmaster and every child, by pid), the load generator
 * (its processes' own count) and the other: kernel threads and anyone else
 * on the machine. A run with more than a quarter of a core of "other" was
 * disturbed (the machine is shared). */
#define MAX_PG 256
#define QUIET_CORES 0.25

typedef struct cpu_probe {
  bench_cpu_sample m;
  double server;
  int pg_pid[MAX_PG];
  double pg_cpu[MAX_PG];
  unsigned npg;
} cpu_probe;

typedef struct cpu_use {
  double busy, server, pg, load, other, steal, server_us_per_block;
} cpu_use;

/* The postmaster `pg` and its children, with their CPU seconds so far. */
static void pg_sample(int pg, cpu_probe *p) {
  p->npg = 0;
  if (pg <= 0)
    return;
  p->pg_pid[p->npg] = pg;
  p->pg_cpu[p->npg++] = proc_cpu_seconds(pg);
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d)) && p->npg < MAX_PG) {
    int pid = atoi(e->d_name);
    if (pid <= 0)
      continue;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *c = strrchr(buf, ')');
    int ppid = 0;
    if (c && sscanf(c + 1, " %*c %d", &ppid) == 1 && ppid == pg) {
      p->pg_pid[p->npg] = pid;
      p->pg_cpu[p->npg++] = proc_cpu_seconds(pid);
    }
  }
  if (d)
    closedir(d);
}

static void cpu_probe_take(const opts *o, cpu_probe *p) {
  bench_cpu_sample_take(&p->m);
  p->server = proc_cpu_seconds(o->server_pid);
  pg_sample(o->pg_pid, p);
}

/* PostgreSQL's CPU between two probes: processes that exist at the end,
 * minus what they had used at the start (0 for those born meanwhile). */
static double pg_delta(const cpu_probe *a, const cpu_probe *b) {
  double d = 0;
  for (unsigned i = 0; i < b->npg; i++) {
    double before = 0;
    for (unsigned k = 0; k < a->npg; k++)
      if (a->pg_pid[k] == b->pg_pid[i])
        before = a->pg_cpu[k];
    d += b->pg_cpu[i] - before;
  }
  return d;
}

static void cpu_report(const cpu_probe *a, const cpu_probe *b, double load_s,
                       uint64_t blocks, cpu_use *u) {
  double wall = (double)(b->m.wall_ns - a->m.wall_ns) / 1e9;
  if (wall <= 0)
    wall = 1e-9;
  u->busy = (b->m.busy - a->m.busy) / wall;
  u->server = (b->server - a->server) / wall;
  u->pg = pg_delta(a, b) / wall;
  u->load = load_s / wall;
  u->other = u->busy - u->server - u->pg - u->load;
  if (u->other < 0) /* /proc/stat ticks are coarse */
    u->other = 0;
  u->steal = (b->m.steal - a->m.steal) / wall;
  u->server_us_per_block =
      blocks ? (b->server - a->server) / (double)blocks * 1e6 : 0;
  printf("  CPU: machine %.2f of %ld cores busy: server %.2f (%.0f us per "
         "block), PostgreSQL %.2f, load generator %.2f, other %.2f; steal "
         "%.2f%s\n",
         u->busy, sysconf(_SC_NPROCESSORS_ONLN), u->server,
         u->server_us_per_block, u->pg, u->load, u->other, u->steal,
         u->other > QUIET_CORES || u->steal > QUIET_CORES
             ? "  (NOT QUIET: other processes disturbed the run)"
             : "");
}

/* The CPU fields of a RESULT line. */
static void cpu_fields(const cpu_use *u, char *out, size_t cap) {
  snprintf(out, cap,
           "server_cores=%.2f server_us_per_block=%.0f pg_cores=%.2f "
           "load_cores=%.2f other_cores=%.2f busy_cores=%.2f "
           "steal_cores=%.2f quiet=%s",
           u->server, u->server_us_per_block, u->pg, u->load, u->other, u->busy,
           u->steal,
           u->other > QUIET_CORES || u->steal > QUIET_CORES ? "no" : "yes");
}

/* Appends the RESULT suffix given with --meta. */
static const char *meta(const opts *o) {
  return o->meta ? o->meta : "";
}

/* ---- The recording workload ---------------------------------------------
 * A request-handling mix per iteration: a span around the work, a static
 * log, an integer and a float metric, and one formatted log every fourth
 * iteration: 5.25 events on average, in the three streams of the thread. */

static void record_iteration(uint32_t i) {
  TL_SPAN_SCOPE("handle_request");
  TL_INFO("request received");
  TL_IMETRIC("request_bytes", "bytes", i & 4095);
  TL_FMETRIC("cpu_load", "ratio", (double)(i & 1023) / 1024.0);
  if ((i & 3) == 0)
    TL_INFO("request %u done in %u us", i, i % 977);
}

#define EVENTS_PER_4_ITERS 21 /* 4 x (2 + 1 + 1 + 1) + 1 */

typedef struct producer {
  uint64_t iters;
  double iters_per_ns; /* pacing; 0 = as fast as possible */
  uint64_t t0;
  pthread_barrier_t *start;
} producer;

static void *produce(void *arg) {
  producer *p = arg;
  pthread_barrier_wait(p->start);
  uint64_t t0 = p->t0;
  for (uint64_t i = 0; i < p->iters;) {
    uint64_t end = i + 256 < p->iters ? i + 256 : p->iters;
    for (; i < end; i++)
      record_iteration((uint32_t)i);
    if (p->iters_per_ns > 0)
      sleep_until(t0 + (uint64_t)((double)i / p->iters_per_ns));
  }
  return NULL;
}

/* Records `events` (about) over `threads` threads, paced to `rate` events/s
 * in all when rate > 0. Fills the start and end times of the recording. */
static void run_producers(unsigned threads, uint64_t events, double rate,
                          uint64_t start_at, uint64_t *t0, uint64_t *t1) {
  pthread_t th[MAX_THREADS];
  producer p[MAX_THREADS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, threads + 1);
  uint64_t iters = events * 4 / EVENTS_PER_4_ITERS / threads;
  if (start_at)
    sleep_until(start_at);
  uint64_t now = bench_mono_ns();
  for (unsigned i = 0; i < threads; i++) {
    p[i].iters = iters;
    p[i].iters_per_ns =
        rate > 0 ? rate * 4 / EVENTS_PER_4_ITERS / threads / 1e9 : 0;
    p[i].t0 = now + 2000000; /* everyone is past the barrier by then */
    p[i].start = &start;
    if (pthread_create(&th[i], NULL, produce, &p[i])) {
      fprintf(stderr, "bench_ingest: pthread_create failed\n");
      _exit(1);
    }
  }
  pthread_barrier_wait(&start);
  *t0 = bench_mono_ns();
  for (unsigned i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  *t1 = bench_mono_ns();
  pthread_barrier_destroy(&start);
}

static uint64_t total_drops(const tl_stats *s) {
  uint64_t d = 0;
  for (int r = 0; r < TL_DROP__COUNT; r++)
    d += s->dropped[r];
  return d;
}

/* ---- send: one sender process -------------------------------------------- */

static int cmd_send(const opts *o) {
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.url = o->url;
  cfg.spool_dir = o->dir;
  cfg.buffer_size = o->buffer_size;
  cfg.memory_limit = o->memory;
  cfg.http_drain_ms = o->drain_ms;
  cfg.properties = "app=bench_ingest";
  int rc = tl_init(&cfg);
  if (rc) {
    fprintf(stderr, "bench_ingest send: tl_init: %s\n", tl_strerror(rc));
    return 1;
  }
  uint8_t pid[16];
  char id[37];
  tl_process_id(pid);
  tl_uuid_format(pid, id);
  uint64_t t0, t1;
  run_producers(o->threads, o->events, o->rate, o->start_at, &t0, &t1);
  tl_shutdown();
  uint64_t t2 = bench_mono_ns();
  tl_stats s;
  tl_stats_get(&s);
  printf("SENDER process=%s events=%" PRIu64 " blocks=%" PRIu64
         " bytes=%" PRIu64 " dropped=%" PRIu64 " dropped_sink=%" PRIu64
         " failed=%" PRIu64 " spilled=%" PRIu64 " resent=%" PRIu64
         " t_start=%" PRIu64 " t_produced=%" PRIu64 " t_end=%" PRIu64
         " cpu_s=%.3f\n",
         id, s.events_recorded - s.dropped[TL_DROP_SINK], s.blocks, s.bytes,
         total_drops(&s), s.dropped[TL_DROP_SINK], s.blocks_failed,
         s.blocks_spilled, s.blocks_resent, t0, t1, t2, bench_cpu_seconds());
  return 0;
}

/* ---- load: N sender processes -------------------------------------------- */

typedef struct sender_line {
  char process[37];
  uint64_t events, blocks, bytes, dropped, failed, spilled, resent;
  uint64_t t_start, t_produced, t_end;
  double cpu_s;
} sender_line;

static uint64_t kv_u64(const char *line, const char *key) {
  char k[64];
  snprintf(k, sizeof k, " %s=", key);
  const char *at = strstr(line, k);
  return at ? strtoull(at + strlen(k), NULL, 10) : 0;
}

static int parse_sender(const char *line, sender_line *s) {
  memset(s, 0, sizeof *s);
  const char *p = strstr(line, "process=");
  if (strncmp(line, "SENDER ", 7) || !p)
    return -1;
  snprintf(s->process, sizeof s->process, "%.36s", p + 8);
  s->events = kv_u64(line, "events");
  s->blocks = kv_u64(line, "blocks");
  s->bytes = kv_u64(line, "bytes");
  s->dropped = kv_u64(line, "dropped");
  s->failed = kv_u64(line, "failed");
  s->spilled = kv_u64(line, "spilled");
  s->resent = kv_u64(line, "resent");
  s->t_start = kv_u64(line, "t_start");
  s->t_produced = kv_u64(line, "t_produced");
  s->t_end = kv_u64(line, "t_end");
  const char *c = strstr(line, " cpu_s=");
  s->cpu_s = c ? atof(c + 7) : 0;
  return 0;
}

static void append_senders(const opts *o, const char *text) {
  if (!o->senders)
    return;
  FILE *f = fopen(o->senders, "a");
  if (!f) {
    fprintf(stderr, "bench_ingest: %s: %s\n", o->senders, strerror(errno));
    return;
  }
  fputs(text, f);
  fclose(f);
}

static int cmd_load(const opts *o) {
  unsigned np = o->processes;
  pid_t pids[MAX_PROCS];
  int fds[MAX_PROCS];
  char self[4096];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) {
    fprintf(stderr, "bench_ingest: cannot find /proc/self/exe\n");
    return 1;
  }
  self[sl] = 0;
  /* Every process starts recording at the same instant. */
  uint64_t start_at = bench_mono_ns() + 300000000ull + 30000000ull * np;
  char th[16], ev[32], rate[32], bs[32], mem[32], drain[16], at[32];
  snprintf(th, sizeof th, "%u", o->threads);
  snprintf(ev, sizeof ev, "%" PRIu64, o->events);
  snprintf(rate, sizeof rate, "%.0f", o->rate);
  snprintf(bs, sizeof bs, "%zu", o->buffer_size);
  snprintf(mem, sizeof mem, "%zu", o->memory);
  snprintf(drain, sizeof drain, "%u", o->drain_ms);
  snprintf(at, sizeof at, "%" PRIu64, start_at);
  static cpu_probe c0, c1;
  cpu_probe_take(o, &c0);
  for (unsigned i = 0; i < np; i++) {
    char spill[4096];
    snprintf(spill, sizeof spill, "%s/spill-%u", o->dir, i);
    mkdir(spill, 0755);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) { /* only the dup2'ed end reaches the child */
      fprintf(stderr, "bench_ingest: pipe: %s\n", strerror(errno));
      return 1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
    char *argv[] = {(char *)"bench_ingest",
                    (char *)"send",
                    (char *)"--url",
                    (char *)o->url,
                    (char *)"--dir",
                    spill,
                    (char *)"--threads",
                    th,
                    (char *)"--events",
                    ev,
                    (char *)"--rate",
                    rate,
                    (char *)"--buffer-size",
                    bs,
                    (char *)"--memory",
                    mem,
                    (char *)"--drain-ms",
                    drain,
                    (char *)"--start-at",
                    at,
                    NULL};
    int rc = posix_spawn(&pids[i], self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc) {
      fprintf(stderr, "bench_ingest: spawn: %s\n", strerror(rc));
      close(pfd[0]);
      np = i;
      break;
    }
    fds[i] = pfd[0];
  }
  /* Collect the outputs (small) and the exits, within the time limit. */
  static char out[MAX_PROCS][8192];
  size_t got[MAX_PROCS] = {0};
  int status[MAX_PROCS];
  unsigned left = np;
  uint64_t deadline = bench_mono_ns() + (uint64_t)o->timeout_s * 1000000000u;
  bool timed_out = false;
  for (unsigned i = 0; i < np; i++)
    status[i] = -1;
  while (left) {
    struct pollfd pf[MAX_PROCS];
    unsigned map[MAX_PROCS], n = 0;
    for (unsigned i = 0; i < np; i++)
      if (fds[i] >= 0) {
        pf[n].fd = fds[i];
        pf[n].events = POLLIN;
        map[n++] = i;
      }
    if (n)
      poll(pf, n, 100);
    for (unsigned k = 0; k < n; k++) {
      if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      unsigned i = map[k];
      ssize_t r = read(fds[i], out[i] + got[i], sizeof out[i] - 1 - got[i]);
      if (r > 0) {
        got[i] += (size_t)r;
      } else {
        close(fds[i]);
        fds[i] = -1;
      }
    }
    for (unsigned i = 0; i < np; i++) {
      int st;
      if (status[i] == -1 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
        status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        left--;
      }
    }
    if (!n && left)
      poll(NULL, 0, 20);
    if (left && bench_mono_ns() > deadline) {
      fprintf(stderr,
              "bench_ingest: senders still running after %u s: "
              "killing them\n",
              o->timeout_s);
      for (unsigned i = 0; i < np; i++)
        if (status[i] == -1)
          kill(pids[i], SIGKILL);
      timed_out = true;
      deadline = UINT64_MAX;
    }
  }
  for (unsigned i = 0; i < np; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  cpu_probe_take(o, &c1);

  sender_line sum = {{0}};
  uint64_t tmin = UINT64_MAX, tmax = 0, tprod = 0;
  unsigned ok = 0;
  double cpu = 0;
  for (unsigned i = 0; i < np; i++) {
    out[i][got[i]] = 0;
    sender_line s;
    const char *line = strstr(out[i], "SENDER ");
    if (status[i] != 0 || !line || parse_sender(line, &s)) {
      fprintf(stderr, "bench_ingest: sender %u failed (status %d): %s\n", i,
              status[i], out[i]);
      continue;
    }
    ok++;
    append_senders(o, line);
    sum.events += s.events;
    sum.blocks += s.blocks;
    sum.bytes += s.bytes;
    sum.dropped += s.dropped;
    sum.failed += s.failed;
    sum.spilled += s.spilled;
    sum.resent += s.resent;
    cpu += s.cpu_s;
    if (s.t_start < tmin)
      tmin = s.t_start;
    if (s.t_end > tmax)
      tmax = s.t_end;
    if (s.t_produced > tprod)
      tprod = s.t_produced;
    if (!o->quiet)
      printf("  sender %u: %" PRIu64 " events in %" PRIu64
             " blocks (%.1f KB/block), recording %.2f s, last ack %.2f s, "
             "dropped %" PRIu64 ", failed %" PRIu64 ", spilled %" PRIu64 "\n",
             i, s.events, s.blocks,
             s.blocks ? (double)s.bytes / (double)s.blocks / 1e3 : 0,
             (double)(s.t_produced - s.t_start) / 1e9,
             (double)(s.t_end - s.t_start) / 1e9, s.dropped, s.failed,
             s.spilled);
  }
  double wall = tmax > tmin ? (double)(tmax - tmin) / 1e9 : 0;
  double prod = tprod > tmin ? (double)(tprod - tmin) / 1e9 : 0;
  double eps = wall > 0 ? (double)sum.events / wall : 0;
  double mbps = wall > 0 ? (double)sum.bytes / 1e6 / wall : 0;
  int valid = ok == np && np == o->processes && !timed_out &&
              sum.dropped == 0 && sum.failed == 0 && sum.spilled == 0;
  printf("  %u x %u threads: %" PRIu64 " events in %" PRIu64
         " blocks, %.1f MB; recording %.2f s (offered %.2f M/s), last ack "
         "%.2f s\n",
         np, o->threads, sum.events, sum.blocks, (double)sum.bytes / 1e6, prod,
         prod > 0 ? (double)sum.events / prod / 1e6 : 0, wall);
  printf("  accepted %.2f M events/s, %.1f MB/s%s\n", eps / 1e6, mbps,
         valid ? "" : "  (INVALID: drops, failures, spills or a timeout)");
  if (sum.spilled)
    printf("  the HTTP sink spilled %" PRIu64 " blocks: the server did not "
           "keep up with the offered load (saturated)\n",
           sum.spilled);
  cpu_use u;
  char cpuf[512];
  cpu_report(&c0, &c1, cpu + bench_cpu_seconds(), sum.blocks, &u);
  cpu_fields(&u, cpuf, sizeof cpuf);
  printf("RESULT bench=ingest name=%s kind=library processes=%u threads=%u "
         "events=%" PRIu64 " blocks=%" PRIu64 " bytes=%" PRIu64
         " seconds=%.4f producer_seconds=%.4f events_per_s=%.0f "
         "offered_per_s=%.0f mb_per_s=%.2f bytes_per_block=%.0f "
         "events_per_block=%.0f dropped=%" PRIu64 " failed=%" PRIu64
         " spilled=%" PRIu64 " resent=%" PRIu64 " sender_cpu_cores=%.2f "
         "%s rate=%.0f valid=%s%s%s\n",
         o->tag ? o->tag : "load", np, o->threads, sum.events, sum.blocks,
         sum.bytes, wall, prod, eps, prod > 0 ? (double)sum.events / prod : 0,
         mbps, sum.blocks ? (double)sum.bytes / (double)sum.blocks : 0,
         sum.blocks ? (double)sum.events / (double)sum.blocks : 0, sum.dropped,
         sum.failed, sum.spilled, sum.resent, wall > 0 ? cpu / wall : 0, cpuf,
         o->rate * np, valid ? "yes" : "no", o->meta ? " " : "", meta(o));
  return ok == np && !timed_out ? 0 : 1;
}

/* ---- post: a direct HTTP client with per-request latency ------------------
 * The blocks are real: recorded by libtracelake in this process through an
 * in-process sink, then posted again and again, each time under a fresh
 * block id (the header CRC is recomputed). */

typedef struct captured {
  int kind;
  uint8_t *p;
  size_t n;
  bool last_of_stream; /* flushed at shutdown: partial, not posted */
} captured;

static captured *cap_msgs;
static size_t cap_n, cap_cap;

static int capture_sink(void *ctx, int kind, const uint8_t *p, size_t n) {
  (void)ctx;
  if (cap_n == cap_cap) {
    size_t c = cap_cap ? cap_cap * 2 : 256;
    captured *m = realloc(cap_msgs, c * sizeof *m);
    if (!m)
      return TL_ENOMEM;
    cap_msgs = m;
    cap_cap = c;
  }
  uint8_t *copy = malloc(n);
  if (!copy)
    return TL_ENOMEM;
  memcpy(copy, p, n);
  cap_msgs[cap_n++] = (captured){kind, copy, n, false};
  return 0;
}

typedef struct poster {
  const opts *o;
  unsigned index;
  const size_t *blocks; /* indexes into cap_msgs */
  size_t nblocks;
  pthread_barrier_t *start;
  uint64_t deadline;
  /* results */
  lat l;
  uint64_t ok, bad, transport, events, bytes, t_end;
  long last_status;
} poster;

static size_t discard(char *p, size_t size, size_t nmemb, void *ctx) {
  (void)p;
  (void)ctx;
  return size * nmemb;
}

static CURL *http_conn(struct curl_slist **h) {
  CURL *c = curl_easy_init();
  if (!c)
    return NULL;
  *h = curl_slist_append(NULL, "Expect:");
  *h = curl_slist_append(*h, "Content-Type: application/octet-stream");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, *h);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  return c;
}

/* POSTs one message; returns the status, or 0 on a transport failure. */
static long http_post(CURL *c, const char *url, const uint8_t *p, size_t n) {
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)p);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
  if (curl_easy_perform(c) != CURLE_OK)
    return 0;
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  return code;
}

static void *post_loop(void *arg) {
  poster *ps = arg;
  struct curl_slist *h = NULL;
  CURL *c = http_conn(&h);
  char url[512];
  snprintf(url, sizeof url, "%s/ingestion/insert_block", ps->o->url);
  size_t maxn = 0;
  for (size_t i = 0; i < ps->nblocks; i++)
    if (cap_msgs[ps->blocks[i]].n > maxn)
      maxn = cap_msgs[ps->blocks[i]].n;
  uint8_t *buf = malloc(maxn);
  uint8_t id[16];
  tl_uuid_v4(id);
  uint64_t limit = ps->o->ops ? ps->o->ops : UINT64_MAX;
  pthread_barrier_wait(ps->start);
  if (!c || !buf)
    goto out;
  for (uint64_t k = 0; k < limit && bench_mono_ns() < ps->deadline; k++) {
    const captured *m =
        &cap_msgs[ps->blocks[(k + ps->index * 7) % ps->nblocks]];
    memcpy(buf, m->p, m->n);
    /* A fresh block id: random per thread, then a counter. */
    uint64_t seq = k;
    memcpy(id + 8, &seq, 8);
    memcpy(buf + 8, id, 16);
    tl_put_u32(buf + 104, tl_crc32c(0, buf, 104));
    uint64_t t0 = bench_mono_ns();
    long st = http_post(c, url, buf, m->n);
    uint64_t t1 = bench_mono_ns();
    ps->last_status = st;
    if (st == 200) {
      ps->ok++;
      ps->events += tl_get_u32(buf + 88);
      ps->bytes += m->n;
      lat_add(&ps->l, (double)(t1 - t0) / 1e6);
      ps->t_end = t1;
    } else if (st) {
      ps->bad++;
    } else {
      ps->transport++;
    }
  }
out:
  free(buf);
  if (c)
    curl_easy_cleanup(c);
  curl_slist_free_all(h);
  return NULL;
}

static int cmd_post(const opts *o) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  /* 1. Record the workload into memory through an in-process sink. */
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.sink = capture_sink;
  cfg.buffer_size = o->buffer_size;
  cfg.memory_limit = o->memory;
  cfg.properties = "app=bench_ingest_post";
  int rc = tl_init(&cfg);
  if (rc) {
    fprintf(stderr, "bench_ingest post: tl_init: %s\n", tl_strerror(rc));
    return 1;
  }
  uint8_t pid[16];
  char pidtext[37];
  tl_process_id(pid);
  tl_uuid_format(pid, pidtext);
  uint64_t t0, t1;
  run_producers(1, o->events, 0, 0, &t0, &t1);
  tl_shutdown();
  /* The last block of each stream was flushed at shutdown, partly full. */
  for (size_t i = 0; i < cap_n; i++) {
    if (cap_msgs[i].kind != TL_MSG_BLOCK)
      continue;
    bool later = false;
    for (size_t j = i + 1; j < cap_n && !later; j++)
      later = cap_msgs[j].kind == TL_MSG_BLOCK &&
              !memcmp(cap_msgs[j].p + 24, cap_msgs[i].p + 24, 16);
    cap_msgs[i].last_of_stream = !later;
  }
  size_t *blocks = malloc(cap_n * sizeof *blocks), nblocks = 0;
  uint64_t cap_events = 0, cap_bytes = 0;
  for (size_t i = 0; blocks && i < cap_n; i++)
    if (cap_msgs[i].kind == TL_MSG_BLOCK && !cap_msgs[i].last_of_stream) {
      blocks[nblocks++] = i;
      cap_events += tl_get_u32(cap_msgs[i].p + 88);
      cap_bytes += cap_msgs[i].n;
    }
  if (!nblocks) {
    fprintf(stderr, "bench_ingest post: no full block captured (raise "
                    "--events)\n");
    return 1;
  }
  /* 2. The process and its streams, in order. */
  struct curl_slist *h = NULL;
  CURL *c = http_conn(&h);
  static const char *paths[4] = {"", "process", "stream", "block"};
  for (size_t i = 0; c && i < cap_n; i++) {
    if (cap_msgs[i].kind == TL_MSG_BLOCK)
      continue;
    char url[512];
    snprintf(url, sizeof url, "%s/ingestion/insert_%s", o->url,
             paths[cap_msgs[i].kind]);
    long st = http_post(c, url, cap_msgs[i].p, cap_msgs[i].n);
    if (st != 200) {
      fprintf(stderr, "bench_ingest post: %s message answered %ld\n",
              paths[cap_msgs[i].kind], st);
      return 1;
    }
  }
  if (c)
    curl_easy_cleanup(c);
  curl_slist_free_all(h);

  /* 3. C connections post blocks back to back. */
  unsigned nc = o->connections;
  poster *ps = calloc(nc, sizeof *ps);
  pthread_t *th = calloc(nc, sizeof *th);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, nc + 1);
  static cpu_probe c0, c1;
  uint64_t deadline =
      bench_mono_ns() + (uint64_t)(o->seconds * 1e9) + 100000000ull;
  for (unsigned i = 0; i < nc; i++) {
    ps[i].o = o;
    ps[i].index = i;
    ps[i].blocks = blocks;
    ps[i].nblocks = nblocks;
    ps[i].start = &start;
    ps[i].deadline = deadline;
    if (pthread_create(&th[i], NULL, post_loop, &ps[i])) {
      fprintf(stderr, "bench_ingest: pthread_create failed\n");
      _exit(1);
    }
  }
  cpu_probe_take(o, &c0);
  double self0 = bench_cpu_seconds();
  pthread_barrier_wait(&start);
  uint64_t ts = bench_mono_ns();
  lat all = {0};
  uint64_t ok = 0, bad = 0, transport = 0, events = 0, bytes = 0, tend = ts;
  long last_bad = 0;
  for (unsigned i = 0; i < nc; i++) {
    pthread_join(th[i], NULL);
    ok += ps[i].ok;
    bad += ps[i].bad;
    transport += ps[i].transport;
    events += ps[i].events;
    bytes += ps[i].bytes;
    if (ps[i].t_end > tend)
      tend = ps[i].t_end;
    if (ps[i].last_status != 200)
      last_bad = ps[i].last_status;
    for (size_t k = 0; k < ps[i].l.n; k++)
      lat_add(&all, ps[i].l.v[k]);
    free(ps[i].l.v);
  }
  cpu_probe_take(o, &c1);
  double self1 = bench_cpu_seconds();
  pthread_barrier_destroy(&start);
  qsort(all.v, all.n, sizeof *all.v, cmp_double);
  double wall = (double)(tend - ts) / 1e9;
  double eps = wall > 0 ? (double)events / wall : 0;
  double mean = 0;
  for (size_t k = 0; k < all.n; k++)
    mean += all.v[k];
  mean = all.n ? mean / (double)all.n : 0;
  printf("  %u connection%s, %.1f s: %" PRIu64 " blocks acknowledged (200), "
         "%" PRIu64 " refused, %" PRIu64 " transport errors%s\n",
         nc, nc == 1 ? "" : "s", wall, ok, bad, transport,
         bad || transport ? " (INVALID)" : "");
  if (bad || transport)
    printf("  last non-200 status: %ld\n", last_bad);
  printf("  %.2f M events/s, %.0f blocks/s, %.1f MB/s (blocks of %.1f KB, "
         "%.0f events); ack latency ms: p50 %.3f p90 %.3f p99 %.3f max "
         "%.3f\n",
         eps / 1e6, wall > 0 ? (double)ok / wall : 0,
         wall > 0 ? (double)bytes / 1e6 / wall : 0,
         nblocks ? (double)cap_bytes / (double)nblocks / 1e3 : 0,
         nblocks ? (double)cap_events / (double)nblocks : 0,
         pct(all.v, all.n, 50), pct(all.v, all.n, 90), pct(all.v, all.n, 99),
         all.n ? all.v[all.n - 1] : 0);
  cpu_use u;
  char cpuf[512];
  cpu_report(&c0, &c1, self1 - self0, ok, &u);
  cpu_fields(&u, cpuf, sizeof cpuf);
  printf("RESULT bench=ingest name=%s kind=post connections=%u blocks=%" PRIu64
         " events=%" PRIu64 " bytes=%" PRIu64 " seconds=%.4f "
         "events_per_s=%.0f blocks_per_s=%.0f mb_per_s=%.2f p50_ms=%.3f "
         "p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f refused=%" PRIu64
         " transport_errors=%" PRIu64 " %s valid=%s%s%s\n",
         o->tag ? o->tag : "post", nc, ok, events, bytes, wall, eps,
         wall > 0 ? (double)ok / wall : 0,
         wall > 0 ? (double)bytes / 1e6 / wall : 0, pct(all.v, all.n, 50),
         pct(all.v, all.n, 90), pct(all.v, all.n, 99),
         all.n ? all.v[all.n - 1] : 0, mean, bad, transport, cpuf,
         bad || transport ? "no" : "yes", o->meta ? " " : "", meta(o));
  char line[256];
  snprintf(line, sizeof line,
           "SENDER process=%s events=%" PRIu64 " blocks=%" PRIu64 "\n", pidtext,
           events, ok);
  append_senders(o, line);
  free(all.v);
  free(ps);
  free(th);
  free(blocks);
  for (size_t i = 0; i < cap_n; i++)
    free(cap_msgs[i].p);
  free(cap_msgs);
  curl_global_cleanup();
  return bad || transport ? 1 : 0;
}

/* ---- null-server: HTTP without storage ------------------------------------
 * The same libmicrohttpd configuration as `tracelake serve` (internal
 * polling thread, epoll, a pool of --http-threads), the body collected the
 * same way, an answer of the same shape; nothing is stored. With --decode
 * every message is validated with the wire decoders first, as the server
 * does before storing: the difference to the real server is then storage. */

typedef struct null_req {
  uint8_t *p;
  size_t n, cap;
} null_req;

static int null_decode;
static _Atomic uint64_t null_requests, null_bytes, null_refused;

static enum MHD_Result null_respond(struct MHD_Connection *c, unsigned status,
                                    const char *msg) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(msg), (void *)msg, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result null_on_request(void *cls, struct MHD_Connection *c,
                                       const char *url, const char *method,
                                       const char *version, const char *upload,
                                       size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)url;
  (void)method;
  (void)version;
  null_req *q = *con_cls;
  if (!q) {
    if (!(q = calloc(1, sizeof *q)))
      return MHD_NO;
    *con_cls = q;
    return MHD_YES;
  }
  if (*upload_size) {
    if (q->n + *upload_size > q->cap) {
      size_t cap = (q->n + *upload_size) * 2;
      uint8_t *p = realloc(q->p, cap);
      if (!p)
        return MHD_NO;
      q->p = p;
      q->cap = cap;
    }
    memcpy(q->p + q->n, upload, *upload_size);
    q->n += *upload_size;
    *upload_size = 0;
    return MHD_YES;
  }
  atomic_fetch_add(&null_requests, 1);
  atomic_fetch_add(&null_bytes, q->n);
  char msg[160];
  snprintf(msg, sizeof msg, "stored %zu bytes\n", q->n);
  if (null_decode) {
    tl_wire_error err = {0};
    int kind = tl_wire_kind(q->p, q->n), rc = TL_EMALFORMED;
    if (kind == TL_MSG_BLOCK)
      rc = tl_block_decode(q->p, q->n, NULL, &err);
    else if (kind == TL_MSG_PROCESS) {
      tl_wire_process m;
      rc = tl_process_decode(q->p, q->n, &m, &err);
    } else if (kind == TL_MSG_STREAM) {
      tl_wire_stream m;
      rc = tl_stream_decode(q->p, q->n, &m, &err);
    }
    if (rc) {
      atomic_fetch_add(&null_refused, 1);
      snprintf(msg, sizeof msg, "malformed: %.120s\n", err.reason);
      return null_respond(c, 400, msg);
    }
  }
  return null_respond(c, 200, msg);
}

static void null_on_completed(void *cls, struct MHD_Connection *c,
                              void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  null_req *q = *con_cls;
  if (q) {
    free(q->p);
    free(q);
    *con_cls = NULL;
  }
}

static int cmd_null_server(const opts *o) {
  null_decode = o->decode;
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)o->port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY,
      (uint16_t)o->port, NULL, NULL, null_on_request, NULL,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_THREAD_POOL_SIZE, o->http_threads,
      MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)80 * 1024, MHD_OPTION_CONNECTION_LIMIT, 1024u,
      MHD_OPTION_NOTIFY_COMPLETED, null_on_completed, NULL, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "bench_ingest null-server: cannot listen on port %u\n",
            o->port);
    return 1;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  printf("bench_ingest null-server: serving http://127.0.0.1:%u "
         "(%u threads, %s, nothing stored)\n",
         info ? info->port : o->port, o->http_threads,
         o->decode ? "messages decoded and validated" : "messages not read");
  fflush(stdout);
  int sig = 0;
  sigwait(&sigs, &sig);
  MHD_stop_daemon(d);
  printf("bench_ingest null-server: stopped after %" PRIu64
         " requests, %" PRIu64 " bytes, %" PRIu64 " refused\n",
         (uint64_t)null_requests, (uint64_t)null_bytes, (uint64_t)null_refused);
  return 0;
}

/* ---- fsync: the store's durable write on the same disk --------------------
 * Per blob, what docs/ingestion.md describes for the object store: create a
 * temp file beside the final name, write, fsync, close, link to the final
 * name, unlink the temp, fsync the directory; and, as the store does, make
 * sure the parent directories exist (mkdir, EEXIST). --plain: create, write,
 * fsync, close only. T threads, one directory each (a stream each). */

typedef struct fsyncer {
  const opts *o;
  unsigned index;
  pthread_barrier_t *start;
  lat l;
  uint64_t t_end;
  int failed;
} fsyncer;

static void *fsync_loop(void *arg) {
  fsyncer *f = arg;
  const opts *o = f->o;
  char dir[4096], path[4200], tmp[4200];
  snprintf(dir, sizeof dir, "%s/blobs/p/s%u", o->dir, f->index);
  uint8_t *buf = malloc(o->size);
  uint32_t x = 0x9e3779b9u * (f->index + 1);
  for (size_t i = 0; buf && i < o->size; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (uint8_t)x;
  }
  char parent[4096];
  snprintf(parent, sizeof parent, "%s/blobs", o->dir);
  mkdir(parent, 0755);
  snprintf(parent, sizeof parent, "%s/blobs/p", o->dir);
  mkdir(parent, 0755);
  mkdir(dir, 0755);
  pthread_barrier_wait(f->start);
  for (unsigned k = 0; buf && k < o->ops && !f->failed; k++) {
    uint64_t t0 = bench_mono_ns();
    snprintf(path, sizeof path, "%s/%08u-%08u", dir, f->index, k);
    if (o->plain) {
      int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, buf, o->size) != (ssize_t)o->size || fsync(fd))
        f->failed = 1;
      if (fd >= 0)
        close(fd);
    } else {
      mkdir(o->dir, 0755); /* the store walks the path: EEXIST each time */
      mkdir(parent, 0755);
      mkdir(dir, 0755);
      snprintf(tmp, sizeof tmp, "%s/.tmp-%u-%u", dir, f->index, k);
      int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 || write(fd, buf, o->size) != (ssize_t)o->size || fsync(fd))
        f->failed = 1;
      if (fd >= 0)
        close(fd);
      if (!f->failed && link(tmp, path))
        f->failed = 1;
      unlink(tmp);
      int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (d < 0 || fsync(d))
        f->failed = 1;
      if (d >= 0)
        close(d);
    }
    f->t_end = bench_mono_ns();
    lat_add(&f->l, (double)(f->t_end - t0) / 1e6);
  }
  free(buf);
  return NULL;
}

static int cmd_fsync(const opts *o) {
  unsigned nt = o->threads;
  fsyncer f[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, nt + 1);
  for (unsigned i = 0; i < nt; i++) {
    f[i] = (fsyncer){o, i, &start, {0}, 0, 0};
    if (pthread_create(&th[i], NULL, fsync_loop, &f[i])) {
      fprintf(stderr, "bench_ingest: pthread_create failed\n");
      _exit(1);
    }
  }
  pthread_barrier_wait(&start);
  uint64_t t0 = bench_mono_ns(), t1 = t0;
  double cpu0 = bench_cpu_seconds();
  lat all = {0};
  int failed = 0;
  for (unsigned i = 0; i < nt; i++) {
    pthread_join(th[i], NULL);
    failed |= f[i].failed;
    if (f[i].t_end > t1)
      t1 = f[i].t_end;
    for (size_t k = 0; k < f[i].l.n; k++)
      lat_add(&all, f[i].l.v[k]);
    free(f[i].l.v);
  }
  pthread_barrier_destroy(&start);
  double cpu_us =
      all.n ? (bench_cpu_seconds() - cpu0) / (double)all.n * 1e6 : 0;
  qsort(all.v, all.n, sizeof *all.v, cmp_double);
  double wall = (double)(t1 - t0) / 1e9;
  double ops = wall > 0 ? (double)all.n / wall : 0;
  printf("  %s, %u thread%s x %u blobs of %zu bytes: %.0f blobs/s, %.1f "
         "MB/s, ms p50 %.3f p99 %.3f, CPU %.0f us/blob; at %u events/blob: "
         "%.2f M events/s%s\n",
         o->plain ? "write+fsync" : "temp+fsync+link+fsync(dir)", nt,
         nt == 1 ? "" : "s", o->ops, o->size, ops, ops * (double)o->size / 1e6,
         pct(all.v, all.n, 50), pct(all.v, all.n, 99), cpu_us,
         o->events_per_block, ops * o->events_per_block / 1e6,
         failed ? "  (I/O ERRORS)" : "");
  printf("RESULT bench=ingest name=%s kind=fsync threads=%u ops=%zu size=%zu "
         "seconds=%.4f ops_per_s=%.0f mb_per_s=%.2f p50_ms=%.3f p99_ms=%.3f "
         "cpu_us_per_op=%.0f events_per_block=%u events_per_s=%.0f "
         "valid=%s%s%s\n",
         o->tag ? o->tag : "fsync", nt, all.n, o->size, wall, ops,
         ops * (double)o->size / 1e6, pct(all.v, all.n, 50),
         pct(all.v, all.n, 99), cpu_us, o->events_per_block,
         ops * o->events_per_block, failed ? "no" : "yes", o->meta ? " " : "",
         meta(o));
  free(all.v);
  return failed;
}

/* ---- sqlite: one-row commits ----------------------------------------------
 * What a catalog commit costs on this disk by itself: a blocks table with
 * the catalog's columns and indexes (docs/catalog.md), WAL,
 * synchronous=FULL, --batch rows per transaction, one connection. */

static int cmd_sqlite(const opts *o) {
  char path[4096];
  snprintf(path, sizeof path, "%s/baseline.db", o->dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = 1;
  if (sqlite3_open(path, &db) != SQLITE_OK)
    goto out;
  if (sqlite3_exec(
          db,
          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
          "CREATE TABLE blocks (block_id TEXT PRIMARY KEY, stream_id TEXT "
          "NOT NULL, process_id TEXT NOT NULL, begin_time INTEGER NOT NULL, "
          "begin_ticks INTEGER NOT NULL, end_time INTEGER NOT NULL, end_ticks "
          "INTEGER NOT NULL, nb_objects INTEGER NOT NULL, payload_size "
          "INTEGER NOT NULL, blob_size INTEGER NOT NULL, blob_crc INTEGER NOT "
          "NULL, insert_time INTEGER NOT NULL);"
          "CREATE INDEX blocks_stream_time ON blocks(stream_id, begin_time);"
          "CREATE INDEX blocks_process_time ON blocks(process_id, "
          "begin_time);"
          "CREATE INDEX blocks_end_time ON blocks(end_time);"
          "CREATE INDEX blocks_insert_time ON blocks(insert_time);",
          NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "INSERT INTO blocks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    goto out;
  unsigned batch = o->batch ? o->batch : 1;
  lat l = {0};
  uint64_t t0 = bench_mono_ns();
  uint8_t id[16];
  char sid[37], pid[37], bid[37];
  tl_uuid_v4(id);
  tl_uuid_format(id, sid);
  tl_uuid_format(id, pid);
  int failed = 0;
  for (unsigned k = 0; k < o->ops && !failed; k++) {
    uint64_t a = bench_mono_ns();
    failed |= sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (unsigned b = 0; b < batch && !failed; b++) {
      tl_uuid_v4(id);
      tl_uuid_format(id, bid);
      int64_t now = tl_wall_ns();
      sqlite3_bind_text(st, 1, bid, 36, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, sid, 36, SQLITE_STATIC);
      sqlite3_bind_text(st, 3, pid, 36, SQLITE_STATIC);
      for (int c = 4; c <= 12; c++)
        sqlite3_bind_int64(st, c, now + c);
      failed |= sqlite3_step(st) != SQLITE_DONE;
      sqlite3_reset(st);
    }
    failed |= sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    lat_add(&l, (double)(bench_mono_ns() - a) / 1e6);
  }
  double wall = (double)(bench_mono_ns() - t0) / 1e9;
  qsort(l.v, l.n, sizeof *l.v, cmp_double);
  double tps = wall > 0 ? (double)l.n / wall : 0;
  printf("  SQLite WAL synchronous=FULL, %u row%s per commit: %.0f commits/s, "
         "ms p50 %.3f p99 %.3f%s\n",
         batch, batch == 1 ? "" : "s", tps, pct(l.v, l.n, 50),
         pct(l.v, l.n, 99), failed ? "  (ERRORS)" : "");
  printf("RESULT bench=ingest name=%s kind=sqlite batch=%u commits=%zu "
         "seconds=%.4f commits_per_s=%.0f p50_ms=%.3f p99_ms=%.3f valid=%s%s"
         "%s\n",
         o->tag ? o->tag : "sqlite", batch, l.n, wall, tps, pct(l.v, l.n, 50),
         pct(l.v, l.n, 99), failed ? "no" : "yes", o->meta ? " " : "", meta(o));
  free(l.v);
  rc = failed;
out:
  if (rc && db)
    fprintf(stderr, "bench_ingest sqlite: %s\n", sqlite3_errmsg(db));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rc;
}

/* ---- verify: what the catalog holds ---------------------------------------
 * Every acknowledged block of every sender must be in the catalog, with its
 * blob whole on disk, and nothing more: per process, events and blocks must
 * equal what the sender counted. Blocks of other processes are the server's
 * own telemetry; their ingest_block_duration metrics (ticks spent in the
 * handler per block request) give the server-side view of the latency. */

typedef struct expect {
  uint8_t id[16];
  uint64_t events, blocks; /* the sender's count */
  uint64_t got_events, got_blocks;
} expect;

typedef struct verify_ctx {
  const opts *o;
  tl_store *store;
  expect *ex;
  size_t nex;
  uint64_t other_events, other_blocks, total_events, total_blocks;
  uint64_t blob_missing, blob_wrong;
  lat handler; /* ticks, later ms */
  uint64_t bad_decode;
} verify_ctx;

static int find_duration(void *ctx, const tl_wire_event *ev) {
  verify_ctx *v = ctx;
  if (ev->type == TL_EV_IMETRIC && ev->cs &&
      ev->cs->name.n == strlen("ingest_block_duration") &&
      !memcmp(ev->cs->name.p, "ingest_block_duration", ev->cs->name.n))
    lat_add(&v->handler, (double)ev->v.u);
  return 0;
}

static int verify_block(void *ctx, const tl_catalog_block *b) {
  verify_ctx *v = ctx;
  v->total_events += b->nb_objects;
  v->total_blocks++;
  char key[128];
  tl_store_block_key(b->process_id, b->stream_id, b->block_id, key);
  for (size_t i = 0; i < v->nex; i++)
    if (!memcmp(v->ex[i].id, b->process_id, 16)) {
      v->ex[i].got_events += b->nb_objects;
      v->ex[i].got_blocks++;
      char path[4096];
      struct stat st;
      snprintf(path, sizeof path, "%s/%s", v->o->data, key);
      if (stat(path, &st))
        v->blob_missing++;
      else if ((uint64_t)st.st_size != b->blob_size)
        v->blob_wrong++;
      return 0;
    }
  v->other_events += b->nb_objects;
  v->other_blocks++;
  uint8_t *p = NULL;
  size_t n = 0;
  if (tl_store_get(v->store, key, (size_t)1 << 28, &p, &n)) {
    v->blob_missing++;
    return 0;
  }
  tl_block_visitor vis = {v, NULL, find_duration};
  tl_wire_error err = {0};
  if (tl_block_decode(p, n, &vis, &err))
    v->bad_decode++;
  free(p);
  return 0;
}

static int cmd_verify(const opts *o) {
  verify_ctx v;
  memset(&v, 0, sizeof v);
  v.o = o;
  v.ex = calloc(MAX_SENDERS, sizeof *v.ex);
  FILE *f = o->senders ? fopen(o->senders, "r") : NULL;
  if (!f || !v.ex) {
    fprintf(stderr, "bench_ingest verify: cannot read %s\n",
            o->senders ? o->senders : "(no --senders)");
    return 1;
  }
  char line[1024];
  uint64_t want_events = 0, want_blocks = 0;
  while (fgets(line, sizeof line, f) && v.nex < MAX_SENDERS) {
    sender_line s;
    if (parse_sender(line, &s) || tl_uuid_parse(s.process, v.ex[v.nex].id))
      continue;
    v.ex[v.nex].events = s.events;
    v.ex[v.nex].blocks = s.blocks - s.failed;
    want_events += s.events;
    want_blocks += s.blocks - s.failed;
    v.nex++;
  }
  fclose(f);
  char spec[4096], err[512];
  if (o->catalog)
    snprintf(spec, sizeof spec, "%s", o->catalog);
  else
    snprintf(spec, sizeof spec, "%s/catalog.db", o->data);
  tl_catalog *cat = NULL;
  if (tl_catalog_open(&cat, spec, err, sizeof err)) {
    fprintf(stderr, "bench_ingest verify: catalog: %s\n", err);
    return 1;
  }
  if (tl_store_open(&v.store, o->data)) {
    fprintf(stderr, "bench_ingest verify: cannot open the store %s\n", o->data);
    tl_catalog_close(cat);
    return 1;
  }
  int rc = tl_catalog_foreach_block(cat, verify_block, &v);
  tl_catalog_counts counts = {0};
  tl_catalog_counts_get(cat, &counts);
  uint64_t got_events = 0, got_blocks = 0;
  unsigned mismatched = 0;
  for (size_t i = 0; i < v.nex; i++) {
    got_events += v.ex[i].got_events;
    got_blocks += v.ex[i].got_blocks;
    if (v.ex[i].got_events != v.ex[i].events ||
        v.ex[i].got_blocks != v.ex[i].blocks) {
      char id[37];
      tl_uuid_format(v.ex[i].id, id);
      printf("  MISMATCH process %s: sent %" PRIu64 " events in %" PRIu64
             " blocks, catalog holds %" PRIu64 " in %" PRIu64 "\n",
             id, v.ex[i].events, v.ex[i].blocks, v.ex[i].got_events,
             v.ex[i].got_blocks);
      mismatched++;
    }
  }
  int ok = !rc && !mismatched && !v.blob_missing && !v.blob_wrong &&
           counts.events == v.total_events && counts.blocks == v.total_blocks;
  /* The server's ticks are this machine's TSC (or ns where there is none). */
  double ticks_per_ms = (double)tl_ticks_calibrate(100) / 1e3;
  for (size_t k = 0; k < v.handler.n; k++)
    v.handler.v[k] /= ticks_per_ms;
  qsort(v.handler.v, v.handler.n, sizeof *v.handler.v, cmp_double);
  printf("  catalog (%s): senders' %" PRIu64 " events in %" PRIu64
         " blocks, expected %" PRIu64 " in %" PRIu64 " from %zu senders%s; "
         "blobs missing %" PRIu64 ", wrong size %" PRIu64 "\n",
         tl_catalog_backend(cat), got_events, got_blocks, want_events,
         want_blocks, v.nex, ok ? " (exact)" : "  (MISMATCH)", v.blob_missing,
         v.blob_wrong);
  printf("  plus the server's own telemetry: %" PRIu64 " events in %" PRIu64
         " blocks; totals %" PRIu64 " events, %" PRIu64 " blocks (admin "
         "counts: %" PRIu64 ", %" PRIu64 ")\n",
         v.other_events, v.other_blocks, v.total_events, v.total_blocks,
         counts.events, counts.blocks);
  if (v.handler.n)
    printf("  server-side time in the block handler (its own "
           "ingest_block_duration, %zu requests): ms p50 %.3f p90 %.3f p99 "
           "%.3f max %.3f\n",
           v.handler.n, pct(v.handler.v, v.handler.n, 50),
           pct(v.handler.v, v.handler.n, 90), pct(v.handler.v, v.handler.n, 99),
           v.handler.v[v.handler.n - 1]);
  printf("RESULT bench=ingest name=%s kind=verify ok=%s sender_events=%" PRIu64
         " sender_blocks=%" PRIu64 " expected_events=%" PRIu64
         " expected_blocks=%" PRIu64 " other_events=%" PRIu64
         " total_events=%" PRIu64 " total_blocks=%" PRIu64
         " blob_missing=%" PRIu64 " blob_wrong=%" PRIu64
         " server_requests=%zu server_p50_ms=%.3f server_p90_ms=%.3f "
         "server_p99_ms=%.3f%s%s\n",
         o->tag ? o->tag : "verify", ok ? "yes" : "no", got_events, got_blocks,
         want_events, want_blocks, v.other_events, v.total_events,
         v.total_blocks, v.blob_missing, v.blob_wrong, v.handler.n,
         pct(v.handler.v, v.handler.n, 50), pct(v.handler.v, v.handler.n, 90),
         pct(v.handler.v, v.handler.n, 99), o->meta ? " " : "", meta(o));
  free(v.handler.v);
  free(v.ex);
  tl_store_close(v.store);
  tl_catalog_close(cat);
  return ok ? 0 : 1;
}

/* ---- Command line -------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(
      f, "usage: bench_ingest COMMAND [options]\n\n"
         "  load   --url URL --dir SPILL_ROOT [--processes N] [--threads M]\n"
         "         [--events PER_PROCESS] [--rate EVENTS_PER_S_PER_PROCESS]\n"
         "         [--senders FILE] [--timeout S] [--server-pid PID] [--pg-pid "
         "PID]\n"
         "  post   --url URL [--connections C] [--seconds S] [--ops "
         "PER_CONN]\n"
         "         [--events CAPTURED] [--senders FILE] [--server-pid PID] "
         "[--pg-pid PID]\n"
         "  null-server [--port P] [--http-threads N] [--decode]\n"
         "  fsync  --dir DIR [--threads T] [--ops PER_THREAD] [--size "
         "BYTES]\n"
         "         [--events-per-block E] [--plain]\n"
         "  sqlite --dir DIR [--ops COMMITS] [--batch ROWS]\n"
         "  verify --data DIR [--catalog SPEC] --senders FILE\n\n"
         "Common: --tag NAME (RESULT name), --meta 'k=v ...' (appended),\n"
         "--buffer-size BYTES (default: the runtime's, 128k), --memory "
         "BYTES (1g),\n--drain-ms MS (120000). Sizes take k/m/g.\n");
}

static int parse_size(const char *s, size_t *out) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s)
    return -1;
  if (*end == 'k' || *end == 'K')
    v <<= 10, end++;
  else if (*end == 'm' || *end == 'M')
    v <<= 20, end++;
  else if (*end == 'g' || *end == 'G')
    v <<= 30, end++;
  if (*end)
    return -1;
  *out = (size_t)v;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  opts o = {0};
  o.processes = 1;
  o.threads = 1;
  o.connections = 1;
  o.http_threads = 8;
  o.events = 2000000;
  o.seconds = 5;
  o.memory = (size_t)1 << 30;
  o.size = 16384;
  o.drain_ms = 120000;
  o.timeout_s = 300;
  o.ops = 0;
  o.events_per_block = 1;
  const char *cmd = argv[1];
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--decode")) {
      o.decode = 1;
      continue;
    }
    if (!strcmp(a, "--plain")) {
      o.plain = 1;
      continue;
    }
    if (!strcmp(a, "--quiet")) {
      o.quiet = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "bench_ingest: %s needs a value\n", a);
      return 2;
    }
    i++;
    unsigned long long x = strtoull(v, NULL, 10);
    int bad = 0;
    if (!strcmp(a, "--url"))
      o.url = v;
    else if (!strcmp(a, "--dir"))
      o.dir = v;
    else if (!strcmp(a, "--data"))
      o.data = v;
    else if (!strcmp(a, "--catalog"))
      o.catalog = v;
    else if (!strcmp(a, "--senders"))
      o.senders = v;
    else if (!strcmp(a, "--tag"))
      o.tag = v;
    else if (!strcmp(a, "--meta"))
      o.meta = v;
    else if (!strcmp(a, "--processes"))
      bad = !(x >= 1 && x <= MAX_PROCS) || !(o.processes = (unsigned)x);
    else if (!strcmp(a, "--threads"))
      bad = !(x >= 1 && x <= MAX_THREADS) || !(o.threads = (unsigned)x);
    else if (!strcmp(a, "--connections"))
      bad = !(x >= 1 && x <= 256) || !(o.connections = (unsigned)x);
    else if (!strcmp(a, "--http-threads"))
      bad = !(x >= 1 && x <= 256) || !(o.http_threads = (unsigned)x);
    else if (!strcmp(a, "--events"))
      bad = !(x >= 100) || !(o.events = x);
    else if (!strcmp(a, "--rate"))
      o.rate = atof(v);
    else if (!strcmp(a, "--seconds"))
      bad = !((o.seconds = atof(v)) > 0);
    else if (!strcmp(a, "--buffer-size"))
      bad = parse_size(v, &o.buffer_size);
    else if (!strcmp(a, "--memory"))
      bad = parse_size(v, &o.memory);
    else if (!strcmp(a, "--size"))
      bad = parse_size(v, &o.size) || !o.size;
    else if (!strcmp(a, "--drain-ms"))
      o.drain_ms = (unsigned)x;
    else if (!strcmp(a, "--timeout"))
      bad = !(o.timeout_s = (unsigned)x);
    else if (!strcmp(a, "--ops"))
      o.ops = (unsigned)x;
    else if (!strcmp(a, "--batch"))
      o.batch = (unsigned)x;
    else if (!strcmp(a, "--events-per-block"))
      o.events_per_block = (unsigned)x;
    else if (!strcmp(a, "--start-at"))
      o.start_at = x;
    else if (!strcmp(a, "--server-pid"))
      o.server_pid = (int)x;
    else if (!strcmp(a, "--pg-pid"))
      o.pg_pid = (int)x;
    else if (!strcmp(a, "--port"))
      bad = x > 65535 || ((o.port = (unsigned)x), 0);
    else {
      fprintf(stderr, "bench_ingest: unknown option %s\n", a);
      return 2;
    }
    if (bad) {
      fprintf(stderr, "bench_ingest: bad value for %s: %s\n", a, v);
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(cmd, "send") || !strcmp(cmd, "load") || !strcmp(cmd, "post")) {
    if (!o.url || (strcmp(cmd, "post") && !o.dir)) {
      fprintf(stderr, "bench_ingest %s: --url%s required\n", cmd,
              strcmp(cmd, "post") ? " and --dir are" : " is");
      return 2;
    }
  }
  if (!strcmp(cmd, "send"))
    return cmd_send(&o);
  if (!strcmp(cmd, "load"))
    return cmd_load(&o);
  if (!strcmp(cmd, "post")) {
    if (!o.ops && !o.seconds)
      o.seconds = 5;
    return cmd_post(&o);
  }
  if (!strcmp(cmd, "null-server"))
    return cmd_null_server(&o);
  if (!strcmp(cmd, "fsync") || !strcmp(cmd, "sqlite")) {
    if (!o.dir) {
      fprintf(stderr, "bench_ingest %s: --dir is required\n", cmd);
      return 2;
    }
    if (!o.ops)
      o.ops = 200;
    return !strcmp(cmd, "fsync") ? cmd_fsync(&o) : cmd_sqlite(&o);
  }
  if (!strcmp(cmd, "verify")) {
    if (!o.data || !o.senders) {
      fprintf(stderr, "bench_ingest verify: --data and --senders are "
                      "required\n");
      return 2;
    }
    return cmd_verify(&o);
  }
  fprintf(stderr, "bench_ingest: unknown command %s\n", cmd);
  usage(stderr);
  return 2;
}

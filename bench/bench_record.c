/* bench_record.c - what recording costs with libtracelake, against a bare
 * rdtsc loop measured the same way in the same process.
 *
 * Phases (tl_init may run once per process, so every phase that needs its
 * own configuration runs in its own process; without --phase this program
 * re-executes itself through /proc/self/exe for each one):
 *   latency     ns/event on the calling thread, p50/p99 over timed batches
 *   throughput  N producer threads + flusher + spool sink, until every block
 *               is written; zero drops expected
 *   overload    the same with a small memory limit: how much is dropped
 * Figures are printed as a table and as `RESULT ...` lines for scripts.
 * Timing never makes this program fail; only errors do. */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tracelake/tracelake.h>

#include "bench.h"

extern char **environ;

/* Call sites compiled with TL_DISABLE, in disabled.c. */
void bench_disabled_info(uint32_t n);
void bench_disabled_span(uint32_t n);

typedef struct opts {
  const char *phase;      /* NULL: all phases, each in a child process */
  unsigned threads;       /* 0: 1 then 2 (throughput), 2 (overload) */
  uint64_t events;        /* per sustained run */
  uint32_t batch;         /* operations per timed batch */
  uint32_t batches;       /* timed batches per case */
  size_t memory;          /* latency and throughput memory limit */
  size_t overload_memory; /* overload memory limit */
  size_t buffer_size;     /* tl_config.buffer_size; 0: the default */
  const char *dir;        /* parent of the temporary spool directory */
  const char *tag;        /* appended to RESULT names of sustained runs */
  int keep;               /* keep the spool directory */
  int child;              /* run by run_all: leave removal to the parent */
} opts;

/* ---- Latency cases ------------------------------------------------------
 * Each performs n operations; noinline so that every case is the same call
 * from the timing loop. */

static volatile uint64_t sink_u64;

static __attribute__((noinline)) void case_rdtsc(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
#if BENCH_HAVE_TSC
    sink_u64 = __rdtsc();
#else
    sink_u64 = bench_mono_ns();
#endif
}

static __attribute__((noinline)) void case_empty(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    BENCH_KEEP();
}

static __attribute__((noinline)) void case_info(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    TL_INFO("bench static message");
}

/* The same as case_info, its own call site: timed before anything warmed
 * the buffers up, so that first touches of the arena are part of it. */
static __attribute__((noinline)) void case_info_cold(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    TL_INFO("bench static message, cold");
}

static __attribute__((noinline)) void case_infof(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    TL_INFO("%d", (int)i);
}

static __attribute__((noinline)) void case_imetric(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    TL_IMETRIC("bench_int_metric", "count", i);
}

static __attribute__((noinline)) void case_fmetric(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    TL_FMETRIC("bench_float_metric", "ratio", (double)i * 0.5);
}

static __attribute__((noinline)) void case_span(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    TL_SPAN_SCOPE("bench_span");
    BENCH_KEEP();
  }
}

static __attribute__((noinline)) void case_async(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    tl_async_span s = TL_ASYNC_BEGIN("bench_async", TL_ASYNC_ROOT);
    TL_ASYNC_END(s);
  }
}

static __attribute__((noinline)) void case_filtered(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    TL_DEBUG("bench filtered message");
    BENCH_KEEP();
  }
}

typedef struct lat_case {
  const char *name;  /* RESULT name */
  const char *label; /* table label */
  bench_fn fn;
  double target_ratio; /* p50 / rdtsc p50, or 0 */
  double target_ns;    /* p50 ns, or 0 */
  int cold;            /* no warm-up pass */
} lat_case;

static uint64_t total_drops(const tl_stats *s) {
  uint64_t d = 0;
  for (int r = 0; r < TL_DROP__COUNT; r++)
    d += s->dropped[r];
  return d;
}

static void print_drops(const char *indent, const tl_stats *s) {
  printf("%sdropped %llu:", indent, (unsigned long long)total_drops(s));
  for (int r = 0; r < TL_DROP__COUNT; r++)
    printf(" %s=%llu", tl_drop_reason_name(r),
           (unsigned long long)s->dropped[r]);
  printf("\n");
}

static int start_runtime(const opts *o, size_t memory, char *dir, size_t cap,
                         const char *tag) {
  if (bench_mkdtemp(o->dir, tag, dir, cap))
    return -1;
  tl_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.flags = TL_CONFIG_NO_ENV; /* the figures must not depend on TRACELAKE_* */
  cfg.level = TL_LEVEL_INFO;
  cfg.memory_limit = memory;
  cfg.buffer_size = o->buffer_size;
  cfg.spool_dir = dir;
  int rc = tl_init(&cfg);
  if (rc) {
    fprintf(stderr, "bench_record: tl_init: %s\n", tl_strerror(rc));
    bench_rm_rf(dir);
    return -1;
  }
  return 0;
}

/* Removing a spool deletes thousands of files; on some file systems (ext4
 * without a journal) the inode allocator then scans past recently deleted
 * inodes on every later file creation, which would slow the next phase's
 * spool down. So under run_all the parent removes every spool at the end. */
static void finish_dir(const opts *o, const char *dir) {
  if (o->child)
    return;
  if (o->keep)
    printf("  spool kept in %s\n", dir);
  else if (bench_rm_rf(dir))
    fprintf(stderr, "bench_record: could not remove %s\n", dir);
}

static int phase_latency(const opts *o) {
  static const lat_case cases[] = {
      {"rdtsc", "bare rdtsc (baseline)", case_rdtsc, 0, 0, 0},
      {"empty_loop", "empty loop", case_empty, 0, 0, 0},
      {"static_log_cold", "TL_INFO(\"literal\"), cold buffers", case_info_cold,
       0, 0, 1},
      {"static_log", "TL_INFO(\"literal\")", case_info, 1.3, 0, 0},
      {"formatted_log", "TL_INFO(\"%d\", i)", case_infof, 0, 0, 0},
      {"int_metric", "TL_IMETRIC", case_imetric, 1.3, 0, 0},
      {"float_metric", "TL_FMETRIC", case_fmetric, 0, 0, 0},
      {"span", "TL_SPAN_SCOPE (begin+end)", case_span, 2.6, 0, 0},
      {"async_span", "TL_ASYNC_BEGIN+END", case_async, 0, 0, 0},
      {"filtered_debug", "TL_DEBUG, level INFO (filtered)", case_filtered, 0,
       1.0, 0},
      {"disabled_info", "TL_INFO, -DTL_DISABLE", bench_disabled_info, 0, 1.0,
       0},
      {"disabled_span", "TL_SPAN_SCOPE, -DTL_DISABLE", bench_disabled_span, 0,
       1.0, 0},
      {"rdtsc_again", "bare rdtsc (again, drift check)", case_rdtsc, 0, 0, 0},
  };
  char dir[4096];
  if (start_runtime(o, o->memory, dir, sizeof dir, "tlbench-latency"))
    return 1;
  double tpn = bench_tsc_calibrate(200);
  bench_print_machine("tracelake", tpn);
  printf("\n== tracelake: per-event cost on the calling thread ==\n");
  printf("%u batches of %u calls per case, each batch timed with fenced "
         "rdtsc/rdtscp;\nthree untimed warm-up passes first (but for the "
         "cold case), tl_flush() between\ncases; spool sink, memory limit "
         "%zu MiB. net = p50 - empty-loop p50; faults = page\nfaults taken "
         "during the timed batches (first touches of buffer memory).\n\n",
         o->batches, o->batch, o->memory >> 20);
  bench_print_header();
  bench_stats rdtsc = {0}, empty = {0};
  int have_empty = 0;
  int all_valid = 1;
  bench_cpu_sample c0, c1;
  bench_cpu_sample_take(&c0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const lat_case *c = &cases[i];
    bench_stats st;
    tl_stats before, after;
    if (!c->cold) {
      /* Warm-up: three passes, so that the measured pass finds every
       * buffer it needs already faulted in (the pool reuses the most
       * recently freed buffers first). */
      for (int w = 0; w < 3; w++)
        bench_measure(c->fn, o->batch, o->batches, tpn, &st);
      tl_flush();
    }
    tl_stats_get(&before);
    bench_measure(c->fn, o->batch, o->batches, tpn, &st);
    tl_flush();
    tl_stats_get(&after);
    int valid = total_drops(&after) == total_drops(&before);
    all_valid &= valid;
    if (i == 0)
      rdtsc = st;
    if (!strcmp(c->name, "empty_loop")) {
      empty = st;
      have_empty = 1;
    }
    bench_print_case("tracelake", c->name, c->label, &st, &rdtsc,
                     have_empty ? &empty : NULL, c->target_ratio, c->target_ns,
                     valid);
    fflush(stdout);
  }
  bench_cpu_sample_take(&c1);
  tl_shutdown();
  double other, steal;
  printf("\n");
  bench_print_contention(&c0, &c1, 1, &other, &steal);
  tl_stats s;
  tl_stats_get(&s);
  printf("runtime after the latency cases: %llu events recorded, %llu "
         "blocks, %.1f MB encoded\n",
         (unsigned long long)s.events_recorded, (unsigned long long)s.blocks,
         s.bytes / 1e6);
  print_drops("  ", &s);
  if (!all_valid)
    printf("NOTE: events were dropped during a case: its figures are not "
           "valid (raise --memory)\n");
  bench_result("RESULT bench=tracelake name=latency_drops dropped=%llu "
               "valid=%s other_cores=%.2f steal_cores=%.2f",
               (unsigned long long)total_drops(&s), all_valid ? "yes" : "no",
               other, steal);
  printf("\n");
  bench_print_results();
  finish_dir(o, dir);
  return 0;
}

/* ---- Sustained throughput -------------------------------------------------
 */

typedef struct producer_arg {
  uint64_t iters;
  pthread_barrier_t *start;
} producer_arg;

/* Four events per iteration: a static log, an integer metric, and a span
 * (begin + end). */
#define EVENTS_PER_ITER 4

static void *producer(void *p) {
  producer_arg *a = p;
  pthread_barrier_wait(a->start);
  for (uint64_t i = 0; i < a->iters; i++) {
    TL_INFO("sustained static message");
    TL_IMETRIC("sustained_metric", "count", i);
    TL_SPAN_SCOPE("sustained_span");
  }
  return NULL;
}

/* The file system type under the spool, for the record: creating one file
 * per block costs very different amounts on tmpfs and on disk. */
static const char *spool_fs(const char *dir) {
  struct statfs sf;
  if (statfs(dir, &sf))
    return "unknown";
  switch ((unsigned long)sf.f_type) {
  case 0x01021994ul:
    return "tmpfs";
  case 0xEF53ul:
    return "ext4";
  case 0x58465342ul:
    return "xfs";
  case 0x9123683Eul:
    return "btrfs";
  case 0x794c7630ul:
    return "overlayfs";
  default:
    return "other";
  }
}

static int phase_sustained(const opts *o, unsigned nthreads, int overload) {
  const char *bench = "tracelake";
  size_t memory = overload ? o->overload_memory : o->memory;
  char dir[4096];
  if (start_runtime(o, memory, dir, sizeof dir,
                    overload ? "tlbench-overload" : "tlbench-sustained"))
    return 1;
  uint64_t iters = o->events / EVENTS_PER_ITER / nthreads;
  uint64_t attempted = iters * EVENTS_PER_ITER * nthreads;
  printf("\n== tracelake: %s, %u producer thread%s ==\n",
         overload ? "overload" : "sustained throughput", nthreads,
         nthreads == 1 ? "" : "s");
  printf(
      "each thread loops {TL_INFO static; TL_IMETRIC; TL_SPAN_SCOPE} "
      "(4 events); %llu events in all;\nspool sink in %s (%s), memory "
      "limit %zu MiB, buffers of %zu KiB;\ntimed from the start barrier until "
      "tl_shutdown returns\n",
      (unsigned long long)attempted, dir, spool_fs(dir), memory >> 20,
      (o->buffer_size ? o->buffer_size : (size_t)128 << 10) >> 10);
  pthread_t th[64];
  producer_arg args[64];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, nthreads + 1);
  unsigned started = 0;
  for (; started < nthreads; started++) {
    args[started].iters = iters;
    args[started].start = &start;
    if (pthread_create(&th[started], NULL, producer, &args[started])) {
      fprintf(stderr, "bench_record: pthread_create failed\n");
      /* The barrier cannot be released without every thread: give up. */
      _exit(1);
    }
  }
  double cpu0 = bench_cpu_seconds();
  bench_cpu_sample c0, c1;
  bench_cpu_sample_take(&c0);
  pthread_barrier_wait(&start);
  uint64_t t0 = bench_mono_ns();
  for (unsigned i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  uint64_t t1 = bench_mono_ns();
  tl_shutdown();
  uint64_t t2 = bench_mono_ns();
  bench_cpu_sample_take(&c1);
  double cpu = bench_cpu_seconds() - cpu0;
  pthread_barrier_destroy(&start);

  tl_stats s;
  tl_stats_get(&s);
  uint64_t files, disk = bench_du(dir, &files);
  double prod_s = (t1 - t0) / 1e9, all_s = (t2 - t0) / 1e9;
  uint64_t drops = total_drops(&s);
  double eps = s.events_recorded / all_s;
  double mbps = s.bytes / 1e6 / all_s;
  printf("  producers finished   %7.3f s  %7.2f M events/s attempted "
         "(calling threads only)\n",
         prod_s, attempted / prod_s / 1e6);
  printf("  all blocks written   %7.3f s  %7.2f M events/s recorded, %.1f "
         "MB/s of blocks\n",
         all_s, eps / 1e6, mbps);
  printf("  %llu events recorded, %llu blocks, %.1f MB encoded (%.2f "
         "bytes/event); spool: %llu files, %.1f MB\n",
         (unsigned long long)s.events_recorded, (unsigned long long)s.blocks,
         s.bytes / 1e6,
         s.events_recorded ? (double)s.bytes / s.events_recorded : 0,
         (unsigned long long)files, disk / 1e6);
  print_drops("  ", &s);
  printf("  accounted: recorded + dropped = %llu of %llu attempted\n",
         (unsigned long long)(s.events_recorded + drops),
         (unsigned long long)attempted);
  printf("  CPU %.2f s over %.2f s wall (%.2f cores), peak RSS %.0f MiB\n", cpu,
         all_s, cpu / all_s, bench_max_rss_mib());
  double other, steal;
  bench_print_contention(&c0, &c1, 1, &other, &steal);
  char name[96];
  snprintf(name, sizeof name, "%s_%up%s%s", overload ? "overload" : "sustained",
           nthreads, o->tag ? "_" : "", o->tag ? o->tag : "");
  int met = !overload && drops == 0 && eps >= 20e6;
  printf("RESULT bench=%s name=%s threads=%u events=%llu recorded=%llu "
         "seconds=%.4f producer_seconds=%.4f events_per_s=%.0f "
         "attempted_per_s=%.0f mb_per_s=%.2f blocks=%llu bytes=%llu "
         "dropped=%llu dropped_no_memory=%llu cpu_cores=%.2f rss_mib=%.0f "
         "memory_mib=%zu buffer_kib=%zu spool=%s other_cores=%.2f "
         "steal_cores=%.2f target=%s met=%s\n",
         bench, name, nthreads, (unsigned long long)attempted,
         (unsigned long long)s.events_recorded, all_s, prod_s, eps,
         attempted / all_s, mbps, (unsigned long long)s.blocks,
         (unsigned long long)s.bytes, (unsigned long long)drops,
         (unsigned long long)s.dropped[TL_DROP_NO_MEMORY], cpu / all_s,
         bench_max_rss_mib(), memory >> 20,
         (o->buffer_size ? o->buffer_size : (size_t)128 << 10) >> 10,
         spool_fs(dir), other, steal,
         overload ? "none" : "events_per_s>=20000000,dropped=0",
         overload ? "n/a"
         : met    ? "yes"
                  : "no");
  finish_dir(o, dir);
  return 0;
}

/* ---- All phases, each in a child process ---------------------------------
 */

static int run_child(const char *self, const opts *o, const char *phase,
                     unsigned threads) {
  char th[16], ev[32], b[16], nb[16], mem[32], omem[32], bs[32];
  snprintf(th, sizeof th, "%u", threads);
  snprintf(ev, sizeof ev, "%llu", (unsigned long long)o->events);
  snprintf(b, sizeof b, "%u", o->batch);
  snprintf(nb, sizeof nb, "%u", o->batches);
  snprintf(mem, sizeof mem, "%zu", o->memory);
  snprintf(omem, sizeof omem, "%zu", o->overload_memory);
  snprintf(bs, sizeof bs, "%zu", o->buffer_size);
  char *argv[24];
  int n = 0;
  argv[n++] = (char *)"bench_record";
  argv[n++] = (char *)"--phase";
  argv[n++] = (char *)phase;
  argv[n++] = (char *)"--threads";
  argv[n++] = th;
  argv[n++] = (char *)"--events";
  argv[n++] = ev;
  argv[n++] = (char *)"--batch";
  argv[n++] = b;
  argv[n++] = (char *)"--batches";
  argv[n++] = nb;
  argv[n++] = (char *)"--memory";
  argv[n++] = mem;
  argv[n++] = (char *)"--overload-memory";
  argv[n++] = omem;
  argv[n++] = (char *)"--buffer-size";
  argv[n++] = bs;
  if (o->dir) {
    argv[n++] = (char *)"--dir";
    argv[n++] = (char *)o->dir;
  }
  if (o->tag) {
    argv[n++] = (char *)"--tag";
    argv[n++] = (char *)o->tag;
  }
  argv[n++] = (char *)"--child";
  argv[n] = NULL;
  fflush(stdout);
  pid_t pid;
  int rc = posix_spawn(&pid, self, NULL, NULL, argv, environ);
  if (rc) {
    fprintf(stderr, "bench_record: cannot run %s: %s\n", self, strerror(rc));
    return 1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return 1;
  if (!WIFEXITED(status) || WEXITSTATUS(status)) {
    fprintf(stderr, "bench_record: phase %s (%u threads) failed\n", phase,
            threads);
    return 1;
  }
  return 0;
}

static int run_all(const opts *o) {
  const char *self = "/proc/self/exe";
  char root[4096];
  if (bench_mkdtemp(o->dir, "tlbench", root, sizeof root))
    return 1;
  opts c = *o;
  c.dir = root;
  int failed = run_child(self, &c, "latency", 0);
  if (o->threads) {
    failed |= run_child(self, &c, "throughput", o->threads);
  } else {
    failed |= run_child(self, &c, "throughput", 1);
    failed |= run_child(self, &c, "throughput", 2);
  }
  failed |= run_child(self, &c, "overload", o->threads ? o->threads : 2);
  if (o->keep)
    printf("\nspools kept in %s\n", root);
  else if (bench_rm_rf(root))
    fprintf(stderr, "bench_record: could not remove %s\n", root);
  return failed;
}

/* ---- Command line -------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s)
    return -1;
  unsigned long long mul = 1;
  switch (*end) {
  case 'k':
  case 'K':
    mul = 1ull << 10;
    end++;
    break;
  case 'm':
  case 'M':
    mul = 1ull << 20;
    end++;
    break;
  case 'g':
  case 'G':
    mul = 1ull << 30;
    end++;
    break;
  }
  if (*end)
    return -1;
  *out = v * mul;
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_record [--phase latency|throughput|overload]\n"
          "         [--threads N] [--events N] [--batch N] [--batches N]\n"
          "         [--memory BYTES] [--overload-memory BYTES] "
          "[--buffer-size BYTES]\n"
          "         [--dir DIR] [--tag TEXT] [--keep]\n"
          "Without --phase, runs every phase, each in its own process.\n"
          "Sizes take k/m/g suffixes (powers of two). Defaults: --events "
          "20000000\n--batch 1000 --batches 2000 --memory 1g "
          "--overload-memory 4m, --buffer-size\n0 (the runtime's default, "
          "128k). The spool goes to a temporary directory\nin --dir "
          "(default $TMPDIR or /tmp), removed afterwards unless --keep.\n");
}

int main(int argc, char **argv) {
  opts o = {NULL, 0,    20000000, 1000, 2000, (size_t)1 << 30, (size_t)4 << 20,
            0,    NULL, NULL,     0,    0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    uint64_t x = 0;
    if (!strcmp(a, "--keep")) {
      o.keep = 1;
      continue;
    }
    if (!strcmp(a, "--child")) {
      o.child = 1;
      continue;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage();
      return 0;
    }
    if (!v) {
      usage();
      return 2;
    }
    i++;
    if (!strcmp(a, "--phase")) {
      o.phase = v;
      continue;
    }
    if (!strcmp(a, "--dir")) {
      o.dir = v;
      continue;
    }
    if (!strcmp(a, "--tag")) {
      o.tag = v;
      continue;
    }
    if (parse_u64(v, &x)) {
      usage();
      return 2;
    }
    if (!strcmp(a, "--threads") && x <= 64)
      o.threads = (unsigned)x;
    else if (!strcmp(a, "--events") && x >= 4)
      o.events = x;
    else if (!strcmp(a, "--batch") && x >= 1 && x <= 100000000)
      o.batch = (uint32_t)x;
    else if (!strcmp(a, "--batches") && x >= 1 && x <= 100000000)
      o.batches = (uint32_t)x;
    else if (!strcmp(a, "--memory"))
      o.memory = (size_t)x;
    else if (!strcmp(a, "--overload-memory"))
      o.overload_memory = (size_t)x;
    else if (!strcmp(a, "--buffer-size"))
      o.buffer_size = (size_t)x;
    else {
      usage();
      return 2;
    }
  }
  if (!o.phase)
    return run_all(&o);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(o.phase, "latency"))
    return phase_latency(&o);
  if (!strcmp(o.phase, "throughput"))
    return phase_sustained(&o, o.threads ? o.threads : 1, 0);
  if (!strcmp(o.phase, "overload"))
    return phase_sustained(&o, o.threads ? o.threads : 2, 1);
  usage();
  return 2;
}

/* bench_lttng.c - the LTTng-UST peer of bench_record: the same batched
 * per-event timing and the same sustained workload, recorded through
 * LTTng-UST tracepoints into an active session (bench/run-lttng.sh creates
 * the session, enables the events and starts tracing before running this).
 *
 *   bench_lttng --phase latency
 *   bench_lttng --phase throughput --threads N [--events N]
 *
 * LTTng discards events when its ring buffers are full; the application
 * cannot see that, so run-lttng.sh reports the session's discarded-event
 * count next to these figures. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lttng/tracef.h>

#include "bench.h"
#include "tl_bench_tp.h"

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

static __attribute__((noinline)) void case_static(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    lttng_ust_tracepoint(tl_bench, static_msg);
}

static __attribute__((noinline)) void case_tracef(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    lttng_ust_tracef("%d", (int)i);
}

static __attribute__((noinline)) void case_imetric(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    lttng_ust_tracepoint(tl_bench, int_metric, (uint64_t)i);
}

static __attribute__((noinline)) void case_fmetric(uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    lttng_ust_tracepoint(tl_bench, float_metric, (double)i * 0.5);
}

static __attribute__((noinline)) void case_span(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    lttng_ust_tracepoint(tl_bench, span_begin);
    BENCH_KEEP();
    lttng_ust_tracepoint(tl_bench, span_end);
  }
}

static __attribute__((noinline)) void case_not_enabled(uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    lttng_ust_tracepoint(tl_bench, not_enabled);
    BENCH_KEEP();
  }
}

typedef struct lat_case {
  const char *name;
  const char *label;
  bench_fn fn;
} lat_case;

/* LTTng has no synchronous flush an application can call: give the consumer
 * daemon time to drain the ring buffers between cases instead. */
static void let_consumer_drain(void) {
  struct timespec d = {0, 300 * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
}

static int session_active(void) {
  return lttng_ust_tracepoint_enabled(tl_bench, static_msg) &&
         lttng_ust_tracepoint_enabled(tl_bench, int_metric);
}

static void print_session(int active) {
  printf("session: %s\n",
         active ? "active (tl_bench events enabled)"
                : "INACTIVE: tl_bench events are not enabled, figures "
                  "measure a disabled tracepoint (run bench/run-lttng.sh)");
}

static int phase_latency(uint32_t batch, uint32_t batches) {
  static const lat_case cases[] = {
      {"rdtsc", "bare rdtsc (baseline)", case_rdtsc},
      {"empty_loop", "empty loop", case_empty},
      {"static_log", "tracepoint static_msg (no field)", case_static},
      {"formatted_log", "lttng_ust_tracef(\"%d\", i)", case_tracef},
      {"int_metric", "tracepoint int_metric (u64)", case_imetric},
      {"float_metric", "tracepoint float_metric (double)", case_fmetric},
      {"span", "tracepoints span_begin+span_end", case_span},
      {"not_enabled", "tracepoint not enabled in session", case_not_enabled},
      {"rdtsc_again", "bare rdtsc (again, drift check)", case_rdtsc},
  };
  double tpn = bench_tsc_calibrate(200);
  bench_print_machine("lttng", tpn);
  printf("\n== LTTng-UST %d.%d: per-event cost on the calling thread ==\n",
         LTTNG_UST_MAJOR_VERSION, LTTNG_UST_MINOR_VERSION);
  int active = session_active();
  print_session(active);
  printf("%u batches of %u calls per case, each batch timed with fenced "
         "rdtsc/rdtscp;\nan untimed warm-up pass first, 300 ms pause between "
         "cases for the consumer\n\n",
         batches, batch);
  bench_print_header();
  bench_stats rdtsc = {0}, empty = {0};
  int have_empty = 0;
  bench_cpu_sample c0, c1;
  bench_cpu_sample_take(&c0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const lat_case *c = &cases[i];
    bench_stats st;
    bench_measure(c->fn, batch, batches, tpn, &st); /* warm-up */
    let_consumer_drain();
    bench_measure(c->fn, batch, batches, tpn, &st);
    let_consumer_drain();
    if (i == 0)
      rdtsc = st;
    if (!strcmp(c->name, "empty_loop")) {
      empty = st;
      have_empty = 1;
    }
    int uses_session = strcmp(c->name, "rdtsc") &&
                       strcmp(c->name, "rdtsc_again") &&
                       strcmp(c->name, "empty_loop");
    bench_print_case("lttng", c->name, c->label, &st, &rdtsc,
                     have_empty ? &empty : NULL, 0, 0, !uses_session || active);
  }
  bench_cpu_sample_take(&c1);
  double other, steal;
  printf("\n");
  bench_print_contention(&c0, &c1, 0, &other, &steal);
  printf("  (other processes include LTTng's consumer daemon)\n");
  bench_result("RESULT bench=lttng name=latency_session active=%s "
               "other_cores=%.2f steal_cores=%.2f",
               active ? "yes" : "no", other, steal);
  printf("\n");
  bench_print_results();
  return 0;
}

typedef struct producer_arg {
  uint64_t iters;
  pthread_barrier_t *start;
} producer_arg;

#define EVENTS_PER_ITER 4

static void *producer(void *p) {
  producer_arg *a = p;
  pthread_barrier_wait(a->start);
  for (uint64_t i = 0; i < a->iters; i++) {
    lttng_ust_tracepoint(tl_bench, static_msg);
    lttng_ust_tracepoint(tl_bench, int_metric, i);
    lttng_ust_tracepoint(tl_bench, span_begin);
    lttng_ust_tracepoint(tl_bench, span_end);
  }
  return NULL;
}

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int phase_throughput(unsigned nthreads, uint64_t events,
                            const char *tag) {
  int active = session_active();
  uint64_t iters = events / EVENTS_PER_ITER / nthreads;
  uint64_t attempted = iters * EVENTS_PER_ITER * nthreads;
  printf("\n== LTTng-UST: sustained throughput, %u producer thread%s%s%s ==\n",
         nthreads, nthreads == 1 ? "" : "s", tag ? ", " : "", tag ? tag : "");
  print_session(active);
  printf("each thread loops {static_msg; int_metric; span_begin; span_end} "
         "(4 events); %llu events in all\n",
         (unsigned long long)attempted);
  pthread_t th[64];
  producer_arg args[64];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, nthreads + 1);
  for (unsigned i = 0; i < nthreads; i++) {
    args[i].iters = iters;
    args[i].start = &start;
    if (pthread_create(&th[i], NULL, producer, &args[i])) {
      fprintf(stderr, "bench_lttng: pthread_create failed\n");
      _exit(1);
    }
  }
  double cpu0 = bench_cpu_seconds();
  bench_cpu_sample c0, c1;
  bench_cpu_sample_take(&c0);
  pthread_barrier_wait(&start);
  int64_t t0_real = realtime_ns();
  uint64_t t0 = bench_mono_ns();
  for (unsigned i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  uint64_t t1 = bench_mono_ns();
  bench_cpu_sample_take(&c1);
  double cpu = bench_cpu_seconds() - cpu0;
  pthread_barrier_destroy(&start);
  double s = (t1 - t0) / 1e9;
  printf("  producers finished   %7.3f s  %7.2f M events/s attempted "
         "(calling threads only; discards are reported by the session)\n",
         s, attempted / s / 1e6);
  printf("  CPU of this process %.2f s (%.2f cores); the consumer daemon's "
         "CPU is not included\n",
         cpu, cpu / s);
  double other, steal;
  bench_print_contention(&c0, &c1, 0, &other, &steal);
  printf("  (other processes include LTTng's consumer daemon)\n");
  printf("RESULT bench=lttng name=sustained_%up%s%s threads=%u events=%llu "
         "producer_seconds=%.4f attempted_per_s=%.0f start_realtime_ns=%lld "
         "cpu_cores=%.2f other_cores=%.2f steal_cores=%.2f session=%s\n",
         nthreads, tag ? "_" : "", tag ? tag : "", nthreads,
         (unsigned long long)attempted, s, attempted / s, (long long)t0_real,
         cpu / s, other, steal, active ? "active" : "inactive");
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_lttng --phase latency [--batch N] [--batches N]\n"
          "       bench_lttng --phase throughput [--threads N] [--events N] "
          "[--tag TEXT]\n");
}

int main(int argc, char **argv) {
  const char *phase = NULL, *tag = NULL;
  unsigned long long threads = 1, events = 20000000, batch = 1000,
                     batches = 2000;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      usage();
      return 2;
    }
    i++;
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    int num = end != v && !*end;
    if (!strcmp(a, "--phase"))
      phase = v;
    else if (!strcmp(a, "--tag"))
      tag = v;
    else if (!strcmp(a, "--threads") && num && x >= 1 && x <= 64)
      threads = x;
    else if (!strcmp(a, "--events") && num && x >= 4)
      events = x;
    else if (!strcmp(a, "--batch") && num && x >= 1 && x <= 100000000)
      batch = x;
    else if (!strcmp(a, "--batches") && num && x >= 1 && x <= 100000000)
      batches = x;
    else {
      usage();
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (phase && !strcmp(phase, "latency"))
    return phase_latency((uint32_t)batch, (uint32_t)batches);
  if (phase && !strcmp(phase, "throughput"))
    return phase_throughput((unsigned)threads, events, tag);
  usage();
  return 2;
}

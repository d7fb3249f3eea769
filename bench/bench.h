/* bench.h - measurement helpers shared by bench_record (tracelake) and
 * bench_lttng (the LTTng-UST peer): a fenced TSC timer calibrated against
 * CLOCK_MONOTONIC, batched per-event timing with percentiles, and the table
 * and RESULT-line output both benchmarks print. Nothing here knows about
 * either tracer, so both binaries measure the same way. */
#ifndef TL_BENCH_H
#define TL_BENCH_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_HAVE_TSC 1
#else
#define BENCH_HAVE_TSC 0
#endif

/* Keeps a loop alive without touching memory: an empty volatile asm is
 * emitted once per iteration, so the compiler can neither delete nor
 * collapse a loop whose body is otherwise empty (disabled call sites). */
#define BENCH_KEEP() __asm__ __volatile__("")

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_mono_ns(void);

/* Reads the TSC before the code under test: the fences keep earlier work
 * from leaking into the interval and the body from starting early. */
static inline uint64_t bench_tsc_begin(void) {
#if BENCH_HAVE_TSC
  _mm_lfence();
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
#else
  return bench_mono_ns();
#endif
}

/* Reads the TSC after the code under test (rdtscp waits for it to retire). */
static inline uint64_t bench_tsc_end(void) {
#if BENCH_HAVE_TSC
  unsigned aux;
  uint64_t t = __rdtscp(&aux);
  _mm_lfence();
  return t;
#else
  return bench_mono_ns();
#endif
}

/* Ticks per nanosecond, measured against CLOCK_MONOTONIC over `ms`. */
double bench_tsc_calibrate(unsigned ms);

/* One benchmark case: performs `n` operations (e.g. n TL_INFO calls). */
typedef void (*bench_fn)(uint32_t n);

typedef struct bench_stats {
  double p50, p99, min, mean; /* ns per operation over the batches */
  long faults; /* minor page faults during the batches (first touches) */
} bench_stats;

/* Times `nbatches` batches of `batch` operations each, one fenced TSC pair
 * per batch, and summarizes ns/operation over the batches. Also counts the
 * page faults taken meanwhile: a case that touches fresh memory pays for
 * them, which is a different (start-up) cost from the steady state. */
void bench_measure(bench_fn fn, uint32_t batch, uint32_t nbatches,
                   double ticks_per_ns, bench_stats *out);

/* Output: the machine line, a table row (its greppable RESULT line,
 * `RESULT bench=<bench> name=<name> k=v ...`, is queued). */
void bench_print_machine(const char *bench, double ticks_per_ns);
void bench_print_header(void);
/* `rdtsc` and `empty` are the baselines measured so far (NULL before they
 * are): the ratio is p50 / rdtsc p50, "net" is p50 - empty-loop p50, the
 * cost of the operation without the loop around it. `target_ratio` <= 0
 * means no ratio target; `target_ns` <= 0 no ns target (targets are checked
 * against the raw p50, loop included). `valid` is 0 when the run is known
 * to be biased (drops, inactive session): the row and RESULT line say so. */
void bench_print_case(const char *bench, const char *name, const char *label,
                      const bench_stats *st, const bench_stats *rdtsc,
                      const bench_stats *empty, double target_ratio,
                      double target_ns, int valid);

/* Queues a RESULT line (printf-style, without the newline) to be printed
 * by bench_print_results, so that the table stays readable. */
void bench_result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the queued RESULT lines, then forgets them. */
void bench_print_results(void);

/* Temporary directories for sinks and traces. */
int bench_mkdtemp(const char *parent, const char *prefix, char *out,
                  size_t cap);
/* Sum of the sizes of regular files below `dir` (and how many there are). */
uint64_t bench_du(const char *dir, uint64_t *nfiles);
/* Removes `dir` and everything below it. Returns 0 or -1. */
int bench_rm_rf(const char *dir);

/* Machine-wide CPU time from /proc/stat, in seconds: `busy` (user, nice,
 * system, irq, softirq of every CPU) and `steal` (taken by the hypervisor).
 * Other processes' share of a run is busy - this process's CPU time. */
typedef struct bench_cpu_sample {
  double busy, steal, self;
  uint64_t wall_ns;
} bench_cpu_sample;
void bench_cpu_sample_take(bench_cpu_sample *s);
/* Prints (and returns through the pointers) how many cores other processes
 * used and the hypervisor stole between two samples, plus the load average:
 * the figures of a run are only as good as the machine was quiet. With
 * `judge`, more than 0.1 core of either is flagged as disturbing the run
 * (pass 0 when a helper process of the benchmark itself counts as "other",
 * like LTTng's consumer daemon). */
void bench_print_contention(const bench_cpu_sample *a,
                            const bench_cpu_sample *b, int judge,
                            double *other_cores, double *steal_cores);

/* Seconds of CPU (user + system) this process has used so far. */
double bench_cpu_seconds(void);
/* Peak resident set size of this process, in MiB. */
double bench_max_rss_mib(void);

#endif

/* bench.c - measurement and output helpers shared by the benchmarks (see
 * bench.h). */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pairs a TSC read with a CLOCK_MONOTONIC read, keeping the tightest of a
 * few tries so that a preemption between the reads does not skew the pair. */
static void tsc_sample(uint64_t *ticks, uint64_t *ns) {
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 9; i++) {
    uint64_t t0 = bench_tsc_begin(), n = bench_mono_ns(), t1 = bench_tsc_end();
    if (t1 - t0 < best) {
      best = t1 - t0;
      *ticks = t0 + (t1 - t0) / 2;
      *ns = n;
    }
  }
}

double bench_tsc_calibrate(unsigned ms) {
  if (!BENCH_HAVE_TSC)
    return 1.0;
  uint64_t t0, n0, t1, n1;
  tsc_sample(&t0, &n0);
  struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
  tsc_sample(&t1, &n1);
  if (n1 <= n0 || t1 <= t0)
    return 1.0;
  return (double)(t1 - t0) / (double)(n1 - n0);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void bench_measure(bench_fn fn, uint32_t batch, uint32_t nbatches,
                   double ticks_per_ns, bench_stats *out) {
  memset(out, 0, sizeof *out);
  if (!batch || !nbatches)
    return;
  double *v = malloc(nbatches * sizeof *v);
  if (!v)
    return;
  double sum = 0;
  struct rusage r0, r1;
  getrusage(RUSAGE_THREAD, &r0);
  for (uint32_t b = 0; b < nbatches; b++) {
    uint64_t t0 = bench_tsc_begin();
    fn(batch);
    uint64_t t1 = bench_tsc_end();
    v[b] = (double)(t1 - t0) / ticks_per_ns / batch;
    sum += v[b];
  }
  getrusage(RUSAGE_THREAD, &r1);
  out->faults = r1.ru_minflt - r0.ru_minflt + r1.ru_majflt - r0.ru_majflt;
  qsort(v, nbatches, sizeof *v, cmp_double);
  out->min = v[0];
  out->p50 = v[(size_t)nbatches * 50 / 100];
  out->p99 = v[(size_t)nbatches * 99 / 100];
  out->mean = sum / nbatches;
  free(v);
}

/* The "model name" line of /proc/cpuinfo, and whether the CPU flags say it
 * runs under a hypervisor. */
static void cpu_model(char *out, size_t cap, int *vm) {
  snprintf(out, cap, "unknown");
  *vm = 0;
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[4096];
  int got = 0;
  while (fgets(line, sizeof line, f)) {
    if (!got && !strncmp(line, "model name", 10)) {
      const char *c = strchr(line, ':');
      if (c) {
        c += 1 + (c[1] == ' ');
        snprintf(out, cap, "%.*s", (int)strcspn(c, "\n"), c);
        got = 1;
      }
    }
    if (!strncmp(line, "flags", 5) && strstr(line, " hypervisor"))
      *vm = 1;
  }
  fclose(f);
}

void bench_print_machine(const char *bench, double ticks_per_ns) {
  char model[256];
  int vm;
  cpu_model(model, sizeof model, &vm);
  struct utsname u;
  if (uname(&u))
    snprintf(u.release, sizeof u.release, "unknown");
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf("machine: %s, %ld online CPUs, %s, kernel %s, TSC %.3f GHz\n", model,
         ncpu, vm ? "virtual machine" : "bare metal", u.release, ticks_per_ns);
  printf("MACHINE bench=%s nproc=%ld cpu=\"%s\" vm=%s kernel=%s tsc_ghz=%.3f\n",
         bench, ncpu, model, vm ? "yes" : "no", u.release, ticks_per_ns);
}

void bench_print_header(void) {
  printf("%-34s %8s %8s %8s %8s %8s %7s  %s\n", "case", "p50 ns", "p99 ns",
         "min ns", "net ns", "x rdtsc", "faults", "target");
  printf("%-34s %8s %8s %8s %8s %8s %7s  %s\n", "----", "------", "------",
         "------", "------", "-------", "------", "------");
}

void bench_print_case(const char *bench, const char *name, const char *label,
                      const bench_stats *st, const bench_stats *rdtsc,
                      const bench_stats *empty, double target_ratio,
                      double target_ns, int valid) {
  double ratio = rdtsc && rdtsc->p50 > 0 ? st->p50 / rdtsc->p50 : 0;
  double net = empty ? st->p50 - empty->p50 : 0;
  char target[64] = "", tkey[64] = "none", netcol[32] = "-";
  int met = -1;
  if (target_ratio > 0) {
    met = ratio <= target_ratio;
    snprintf(target, sizeof target, "<= %.2fx rdtsc", target_ratio);
    snprintf(tkey, sizeof tkey, "ratio<=%.2f", target_ratio);
  } else if (target_ns > 0) {
    met = st->p50 <= target_ns;
    snprintf(target, sizeof target, "<= %.2f ns", target_ns);
    snprintf(tkey, sizeof tkey, "ns<=%.2f", target_ns);
  }
  if (empty)
    snprintf(netcol, sizeof netcol, "%.2f", net);
  const char *verdict = met < 0 ? "" : met ? "  met" : "  MISSED";
  const char *metkey = met < 0 ? "n/a" : met ? "yes" : "no";
  printf("%-34s %8.2f %8.2f %8.2f %8s %8.2f %7ld  %s%s%s\n", label, st->p50,
         st->p99, st->min, netcol, ratio, st->faults, target, verdict,
         valid ? "" : "  (INVALID: see note)");
  bench_result("RESULT bench=%s name=%s p50_ns=%.3f p99_ns=%.3f min_ns=%.3f "
               "mean_ns=%.3f net_ns=%.3f ratio_rdtsc=%.3f faults=%ld "
               "target=%s met=%s valid=%s",
               bench, name, st->p50, st->p99, st->min, st->mean, net, ratio,
               st->faults, tkey, metkey, valid ? "yes" : "no");
}

/* Queued RESULT lines: a fixed cap, extra lines are printed at once. */
#define MAX_RESULTS 64
static char *results[MAX_RESULTS];
static unsigned nresults;

void bench_result(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  char *copy = nresults < MAX_RESULTS ? strdup(line) : NULL;
  if (copy)
    results[nresults++] = copy;
  else
    printf("%s\n", line);
}

void bench_print_results(void) {
  for (unsigned i = 0; i < nresults; i++) {
    printf("%s\n", results[i]);
    free(results[i]);
  }
  nresults = 0;
}

int bench_mkdtemp(const char *parent, const char *prefix, char *out,
                  size_t cap) {
  if (!parent || !*parent)
    parent = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  if ((size_t)snprintf(out, cap, "%s/%s-XXXXXX", parent, prefix) >= cap)
    return -1;
  if (!mkdtemp(out)) {
    fprintf(stderr, "bench: mkdtemp %s: %s\n", out, strerror(errno));
    return -1;
  }
  return 0;
}

static uint64_t du_bytes, du_files;

static int du_visit(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)path;
  (void)ftw;
  if (flag == FTW_F && S_ISREG(sb->st_mode)) {
    du_bytes += (uint64_t)sb->st_size;
    du_files++;
  }
  return 0;
}

uint64_t bench_du(const char *dir, uint64_t *nfiles) {
  du_bytes = du_files = 0;
  nftw(dir, du_visit, 16, FTW_PHYS);
  if (nfiles)
    *nfiles = du_files;
  return du_bytes;
}

static int rm_visit(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  return (flag == FTW_DP ? rmdir(path) : unlink(path)) ? -1 : 0;
}

int bench_rm_rf(const char *dir) {
  return nftw(dir, rm_visit, 16, FTW_DEPTH | FTW_PHYS) ? -1 : 0;
}

double bench_cpu_seconds(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru))
    return 0;
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

double bench_max_rss_mib(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru))
    return 0;
  return (double)ru.ru_maxrss / 1024.0;
}

void bench_cpu_sample_take(bench_cpu_sample *s) {
  memset(s, 0, sizeof *s);
  s->wall_ns = bench_mono_ns();
  s->self = bench_cpu_seconds();
  FILE *f = fopen("/proc/stat", "r");
  if (!f)
    return;
  unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice,
             &sys, &idle, &iowait, &irq, &softirq, &steal) == 8) {
    double hz = (double)sysconf(_SC_CLK_TCK);
    s->busy = (double)(user + nice + sys + irq + softirq) / hz;
    s->steal = (double)steal / hz;
  }
  fclose(f);
}

void bench_print_contention(const bench_cpu_sample *a,
                            const bench_cpu_sample *b, int judge,
                            double *other_cores, double *steal_cores) {
  double wall = (b->wall_ns - a->wall_ns) / 1e9;
  double other = 0, steal = 0;
  if (wall > 0) {
    other = ((b->busy - a->busy) - (b->self - a->self)) / wall;
    steal = (b->steal - a->steal) / wall;
  }
  if (other < 0) /* /proc/stat ticks are coarser than getrusage */
    other = 0;
  double load[3] = {0, 0, 0};
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
      load[0] = load[1] = load[2] = 0;
    fclose(f);
  }
  printf("  machine during the run: other processes %.2f cores, hypervisor "
         "steal %.2f cores, load average %.2f %.2f %.2f%s\n",
         other, steal, load[0], load[1], load[2],
         judge && (other > 0.1 || steal > 0.1)
             ? "  (NOT QUIET: figures disturbed)"
             : "");
  if (other_cores)
    *other_cores = other;
  if (steal_cores)
    *steal_cores = steal;
}

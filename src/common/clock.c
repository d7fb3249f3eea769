/* clock.c - wall and monotonic clocks and TSC calibration. */
#include <time.h>

#include "common.h"

uint64_t tl_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t tl_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int tl_cond_init(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  int rc = pthread_condattr_init(&ca);
  if (rc)
    return rc;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  rc = pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
  return rc;
}

struct timespec tl_deadline_in(uint64_t ns) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t nsec = (uint64_t)ts.tv_nsec + ns;
  ts.tv_sec += (time_t)(nsec / 1000000000u);
  ts.tv_nsec = (long)(nsec % 1000000000u);
  return ts;
}

/* Pairs a TSC read with a monotonic read, keeping the pair taken in the
 * shortest window so that preemption between the reads does not skew it. */
static void sample(uint64_t *ticks, uint64_t *ns) {
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 5; i++) {
    uint64_t t0 = tl_ticks(), n = tl_mono_ns(), t1 = tl_ticks();
    if (t1 - t0 < best) {
      best = t1 - t0;
      *ticks = t0 + (t1 - t0) / 2;
      *ns = n;
    }
  }
}

uint64_t tl_ticks_calibrate(unsigned ms) {
#if defined(__x86_64__) || defined(__i386__)
  uint64_t t0, n0, t1, n1;
  sample(&t0, &n0);
  struct timespec d = {0, (long)ms * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
  sample(&t1, &n1);
  if (n1 <= n0 || t1 <= t0)
    return 1000000000u;
  uint64_t f = (uint64_t)((__int128)(t1 - t0) * 1000000000 / (n1 - n0));
  return f ? f : 1000000000u;
#else
  (void)ms;
  return 1000000000u;
#endif
}

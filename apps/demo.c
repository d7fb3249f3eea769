/* demo.c - `tracelake demo`: a small instrumented workload. Worker threads
 * handle "requests" (thread spans, logs, metrics); a dispatcher begins an
 * async span per job and the worker that picks the job up ends it, so begin
 * and end happen on different threads. */
#define TL_TARGET "tracelake::demo"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps.h"
#include "common/common.h"
#include "tracelake/tracelake.h"

#define QCAP 256

typedef struct job {
  tl_async_span span;
  unsigned id;
} job;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job q[QCAP];
  unsigned head, tail;
  bool done;
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

/* Queues a job; returns the queue's depth after it. */
static unsigned push(job j) {
  pthread_mutex_lock(&queue.mu);
  while (queue.tail - queue.head == QCAP)
    pthread_cond_wait(&queue.cv, &queue.mu);
  queue.q[queue.tail++ % QCAP] = j;
  unsigned depth = queue.tail - queue.head;
  pthread_cond_broadcast(&queue.cv);
  pthread_mutex_unlock(&queue.mu);
  return depth;
}

static bool pop(job *j) {
  pthread_mutex_lock(&queue.mu);
  while (queue.tail == queue.head && !queue.done)
    pthread_cond_wait(&queue.cv, &queue.mu);
  bool ok = queue.tail != queue.head;
  if (ok)
    *j = queue.q[queue.head++ % QCAP];
  pthread_cond_broadcast(&queue.cv);
  pthread_mutex_unlock(&queue.mu);
  return ok;
}

static unsigned checksum(unsigned id) {
  TL_SPAN_FN();
  unsigned h = id * 2654435761u;
  for (int i = 0; i < 200; i++)
    h = h * 31 + (unsigned)i;
  return h;
}

static void handle(const job *j) {
  TL_SPAN_SCOPE("handle_job");
  tl_async_span work = TL_ASYNC_BEGIN("job_work", j->span);
  unsigned h = checksum(j->id);
  TL_IMETRIC("job_payload", "bytes", 512 + h % 4096);
  TL_FMETRIC("job_score", "ratio", (double)(h % 1000) / 1000.0);
  if (j->id % 100 == 0)
    TL_WARN("job %u took the slow path (hash %08x)", j->id, h);
  else
    TL_DEBUG("job %u done", j->id); /* filtered at the default level */
  TL_ASYNC_END(work);
  TL_ASYNC_END(j->span); /* begun by the dispatcher thread */
}

static void *worker(void *arg) {
  (void)arg;
  /* Named before its first event: its stream's thread-name property. */
  pthread_setname_np(pthread_self(), "demo-worker");
  TL_INFO("worker started");
  job j;
  unsigned n = 0;
  while (pop(&j)) {
    handle(&j);
    n++;
  }
  TL_INFO("worker finished after %u jobs", n);
  return NULL;
}

int tl_app_demo(int argc, char **argv) {
  const char *spool = "./tracelake-spool", *url = NULL;
  unsigned threads = 4, jobs = 20000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--spool") && i + 1 < argc)
      spool = argv[++i];
    else if (!strcmp(argv[i], "--url") && i + 1 < argc)
      url = argv[++i];
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
      jobs = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: tracelake demo [--url URL] [--spool DIR] [--threads N] "
             "[--jobs N]\n\n"
             "Records a demo workload. With --url, sends it to a tracelake\n"
             "server over HTTP (DIR is then where undeliverable blocks are\n"
             "spilled); otherwise writes it into the spool directory DIR\n"
             "(default ./tracelake-spool), then decodes it and prints a\n"
             "summary. Environment variables TRACELAKE_* apply (README.md).\n");
      return 0;
    } else {
      fprintf(stderr, "tracelake demo: bad option %s (try --help)\n", argv[i]);
      return 2;
    }
  }
  if (threads < 1 || threads > 64 || jobs < 1) {
    fprintf(stderr, "tracelake demo: --threads must be 1..64, --jobs >= 1\n");
    return 2;
  }
  if (tl_mkdirs(spool)) {
    fprintf(stderr, "tracelake demo: cannot create %s: %s\n", spool,
            strerror(errno));
    return 1;
  }
  tl_config cfg = {0};
  cfg.spool_dir = spool;
  cfg.url = url;
  cfg.properties = "app=demo";
  int rc = tl_init(&cfg);
  if (rc) {
    fprintf(stderr, "tracelake demo: tl_init: %s\n", tl_strerror(rc));
    return 1;
  }
  printf("recording %u jobs on %u worker threads into %s ...\n", jobs, threads,
         url ? url : spool);
  TL_INFO("demo starting");
  pthread_t tids[64];
  for (unsigned i = 0; i < threads; i++)
    pthread_create(&tids[i], NULL, worker, NULL);
  uint64_t t0 = __builtin_ia32_rdtsc();
  for (unsigned i = 0; i < jobs; i++) {
    job j = {TL_ASYNC_BEGIN("job", TL_ASYNC_ROOT), i};
    TL_IMETRIC("queue_depth", "count", push(j));
  }
  pthread_mutex_lock(&queue.mu);
  queue.done = true;
  pthread_cond_broadcast(&queue.cv);
  pthread_mutex_unlock(&queue.mu);
  for (unsigned i = 0; i < threads; i++)
    pthread_join(tids[i], NULL);
  TL_IMETRIC("demo_duration", "ticks", __builtin_ia32_rdtsc() - t0);
  TL_INFO("demo finished");
  tl_shutdown();

  tl_stats st;
  tl_stats_get(&st);
  uint64_t dropped = 0;
  for (int r = 0; r < TL_DROP__COUNT; r++)
    dropped += st.dropped[r];
  printf("recorded %" PRIu64 " events (%" PRIu64 " dropped) in %" PRIu64
         " blocks, %" PRIu64 " bytes\n\n",
         st.events_recorded, dropped, st.blocks, st.bytes);
  if (url) {
    printf("sent to %s: %" PRIu64 " blocks delivered, %" PRIu64
           " spilled to %s, %" PRIu64 " failed\n",
           url, st.blocks - st.blocks_failed, st.blocks_spilled, spool,
           st.blocks_failed);
    return st.blocks_failed ? 1 : 0;
  }
  printf("decoded %s:\n", spool);
  return tl_app_dump_path(spool, stdout, true);
}

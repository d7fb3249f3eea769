/* test_runtime.c - the runtime as users rely on it: exact accounting of
 * recorded, delivered and dropped events under concurrency, lazy thread
 * registration, thread exit, async spans across threads, flush semantics,
 * level filtering, process information and the spool sink. Each TEST runs
 * in its own process (one tl_init per process). */
#define TL_TARGET "tests::runtime"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collector.h"
#include "procfs.h"
#include "test.h"
#include "tracelake/tracelake.h"

static collector coll;

static void init_with_collector(bool keep, size_t memory, size_t buffer,
                                unsigned period_ms) {
  collector_init(&coll, keep);
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.level = TL_LEVEL_TRACE;
  cfg.memory_limit = memory;
  cfg.buffer_size = buffer;
  cfg.flush_period_ms = period_ms;
  cfg.sink = collector_sink;
  cfg.sink_ctx = &coll;
  CHECK_EQ(tl_init(&cfg), 0);
}

static uint64_t total_dropped(const tl_stats *st) {
  uint64_t d = 0;
  for (int r = 0; r < TL_DROP__COUNT; r++)
    d += st->dropped[r];
  return d;
}

static void check_no_errors(void) {
  if (coll.errors)
    FAILF("collector saw %llu errors, last: %s",
          (unsigned long long)coll.errors, coll.last_error);
}

/* ---- 8 threads x 1M events: recorded = decoded + dropped, exactly ---- */

#define NTHREADS 8
#define PER_THREAD 1000000

static void *record_mix(void *arg) {
  (void)arg;
  for (int i = 0; i < PER_THREAD; i += 4) {
    TL_INFO("tick");
    TL_IMETRIC("items", "count", i);
    TL_SPAN_SCOPE("step"); /* begin here, end at the end of the iteration */
  }
  return NULL;
}

static void run_many_threads(size_t memory, unsigned delay_us) {
  init_with_collector(false, memory, 64 << 10, 1000);
  coll.delay_us = delay_us;
  coll.count_prefix = "tracelake_"; /* the runtime's own drop metrics */
  pthread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, record_mix, NULL), 0);
  for (int i = 0; i < NTHREADS; i++)
    pthread_join(t[i], NULL);
  tl_shutdown();
  tl_stats st;
  tl_stats_get(&st);
  check_no_errors();
  uint64_t calls = (uint64_t)NTHREADS * PER_THREAD;
  uint64_t app = coll.events - coll.named_events;
  fprintf(stderr, "calls %llu: recorded %llu, decoded %llu, dropped %llu\n",
          (unsigned long long)calls, (unsigned long long)st.events_recorded,
          (unsigned long long)app, (unsigned long long)total_dropped(&st));
  CHECK_U64(st.events_recorded, app);
  CHECK_U64(app + total_dropped(&st), calls);
  CHECK_EQ(st.blocks_failed, 0);
  if (memory < (4u << 20)) {
    CHECK(st.dropped[TL_DROP_NO_MEMORY] > 0);
    CHECK(coll.named_events > 0); /* drops were reported as metrics */
  } else {
    CHECK_U64(total_dropped(&st), 0);
  }
  collector_free(&coll);
}

TEST(eight_threads_exact_accounting) {
  /* Enough memory to hold everything at once (pages are committed only when
   * used): no event may be dropped. */
  run_many_threads(512u << 20, 0);
}

TEST(eight_threads_exact_accounting_under_overload) {
  /* 1 MiB for 24 streams of 64 KiB buffers and a slow sink: drops happen,
   * and every one of them is counted. */
  run_many_threads(1u << 20, 200);
}

/* ---- lazy registration: a thread started before tl_init ---- */

static atomic_int phase;

static void *early_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 10; i++)
    TL_INFO("before init");
  atomic_store(&phase, 1);
  while (atomic_load(&phase) != 2)
    usleep(1000);
  for (int i = 0; i < 25; i++)
    TL_INFO("after init");
  return NULL;
}

TEST(thread_started_before_init_records_after_init) {
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, early_thread, NULL), 0);
  while (atomic_load(&phase) != 1)
    usleep(1000);
  init_with_collector(true, 0, 0, 1000);
  atomic_store(&phase, 2);
  pthread_join(t, NULL);
  tl_flush();
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.dropped[TL_DROP_BEFORE_INIT], 10);
  pthread_mutex_lock(&coll.mu);
  int after = 0;
  for (size_t i = 0; i < coll.nev; i++)
    after += !strcmp(coll.ev[i].msg, "after init");
  pthread_mutex_unlock(&coll.mu);
  CHECK_EQ(after, 25);
  tl_shutdown();
  check_no_errors();
}

/* ---- a thread that exits with pending events ---- */

static void *short_lived(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++)
    TL_IMETRIC("short_lived", "count", i);
  return NULL;
}

TEST(exiting_thread_hands_over_pending_events) {
  /* A one-hour flush period: only the thread-exit hand-off can deliver. */
  init_with_collector(true, 0, 0, 3600 * 1000);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, short_lived, NULL), 0);
  pthread_join(t, NULL);
  uint64_t got = 0;
  for (int i = 0; i < 2000 && got < 1000; i++) {
    usleep(1000);
    got = collector_events(&coll);
  }
  CHECK_U64(got, 1000);
  pthread_mutex_lock(&coll.mu);
  for (size_t i = 0; i < coll.nev; i++)
    CHECK_U64(coll.ev[i].u, i); /* in order */
  pthread_mutex_unlock(&coll.mu);
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.events_recorded, 1000);
  tl_shutdown();
  check_no_errors();
}

/* ---- async spans begun and ended on different threads ---- */

static tl_async_span handoff_spans[3];
static atomic_int handoff_ready;

static void *begin_spans(void *arg) {
  (void)arg;
  tl_async_span root = TL_ASYNC_BEGIN("request", TL_ASYNC_ROOT);
  tl_async_span child = TL_ASYNC_BEGIN("query", root);
  tl_async_span grandchild = TL_ASYNC_BEGIN("fetch", child);
  handoff_spans[0] = root;
  handoff_spans[1] = child;
  handoff_spans[2] = grandchild;
  atomic_store(&handoff_ready, 1);
  return NULL;
}

static void *end_spans(void *arg) {
  (void)arg;
  while (!atomic_load(&handoff_ready))
    usleep(100);
  for (int i = 2; i >= 0; i--)
    TL_ASYNC_END(handoff_spans[i]);
  return NULL;
}

TEST(async_spans_across_threads) {
  init_with_collector(true, 0, 0, 1000);
  pthread_t a, b;
  CHECK_EQ(pthread_create(&a, NULL, begin_spans, NULL), 0);
  pthread_join(a, NULL);
  CHECK_EQ(pthread_create(&b, NULL, end_spans, NULL), 0);
  pthread_join(b, NULL);
  tl_shutdown();
  check_no_errors();
  CHECK_U64(coll.by_type[TL_EV_ASYNC_BEGIN], 3);
  CHECK_U64(coll.by_type[TL_EV_ASYNC_END], 3);
  const coll_event *beg[3] = {0}, *end[3] = {0};
  int nb = 0, ne = 0;
  for (size_t i = 0; i < coll.nev; i++) {
    if (coll.ev[i].type == TL_EV_ASYNC_BEGIN)
      beg[nb++] = &coll.ev[i];
    if (coll.ev[i].type == TL_EV_ASYNC_END)
      end[ne++] = &coll.ev[i];
  }
  CHECK_EQ(nb, 3);
  CHECK_EQ(ne, 3);
  /* Begins on one thread's cpu stream, ends on another's. */
  CHECK(beg[0]->stream == beg[2]->stream);
  CHECK(end[0]->stream == end[2]->stream);
  CHECK(beg[0]->stream != end[0]->stream);
  CHECK_STR(collector_stream(&coll, beg[0]->stream)->tag, "cpu");
  CHECK_STR(collector_stream(&coll, end[0]->stream)->tag, "cpu");
  CHECK_STR(beg[0]->name, "request");
  CHECK_U64(beg[0]->parent, 0);
  CHECK_EQ(beg[0]->depth, 0);
  CHECK_STR(beg[1]->name, "query");
  CHECK_U64(beg[1]->parent, beg[0]->u);
  CHECK_EQ(beg[1]->depth, 1);
  CHECK_STR(beg[2]->name, "fetch");
  CHECK_U64(beg[2]->parent, beg[1]->u);
  CHECK_EQ(beg[2]->depth, 2);
  CHECK(beg[0]->u && beg[0]->u != beg[1]->u && beg[1]->u != beg[2]->u);
  /* Ends carry the same ids, parents and depths (ended innermost first). */
  for (int i = 0; i < 3; i++) {
    CHECK_U64(end[i]->u, beg[2 - i]->u);
    CHECK_U64(end[i]->parent, beg[2 - i]->parent);
    CHECK_EQ(end[i]->depth, beg[2 - i]->depth);
    CHECK_STR(end[i]->name, beg[2 - i]->name);
  }
}

enum { ID_THREADS = 4, ID_PER = 20000 };
static uint64_t ids[ID_THREADS * ID_PER];

static void *begin_many(void *arg) {
  uint64_t *out = arg;
  for (int i = 0; i < ID_PER; i++) {
    tl_async_span s = TL_ASYNC_BEGIN("many", TL_ASYNC_ROOT);
    out[i] = s.id;
    TL_ASYNC_END(s);
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

TEST(async_span_ids_unique_across_threads) {
  init_with_collector(false, 0, 0, 1000);
  pthread_t t[ID_THREADS];
  for (int i = 0; i < ID_THREADS; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, begin_many, ids + i * ID_PER), 0);
  for (int i = 0; i < ID_THREADS; i++)
    pthread_join(t[i], NULL);
  tl_shutdown();
  qsort(ids, ID_THREADS * ID_PER, sizeof ids[0], cmp_u64);
  CHECK(ids[0] != 0);
  for (int i = 1; i < ID_THREADS * ID_PER; i++)
    if (ids[i] == ids[i - 1])
      FAILF("span id %llu given twice", (unsigned long long)ids[i]);
  CHECK_U64(coll.by_type[TL_EV_ASYNC_BEGIN], ID_THREADS * ID_PER);
  CHECK_U64(coll.by_type[TL_EV_ASYNC_END], ID_THREADS * ID_PER);
}

/* ---- flush semantics ---- */

TEST(flush_is_synchronous) {
  init_with_collector(true, 0, 0, 3600 * 1000);
  for (int round = 1; round <= 3; round++) {
    for (int i = 0; i < 100; i++)
      TL_INFO("round %d item %d", round, i);
    tl_flush();
    CHECK_U64(collector_events(&coll), (uint64_t)round * 100);
  }
  pthread_mutex_lock(&coll.mu);
  CHECK_STR(coll.ev[0].msg, "round 1 item 0");
  CHECK_STR(coll.ev[299].msg, "round 3 item 99");
  CHECK_STR(coll.ev[0].name, "round %d item %d");
  CHECK_STR(coll.ev[0].target, "tests::runtime");
  pthread_mutex_unlock(&coll.mu);
  tl_shutdown();
  check_no_errors();
}

TEST(aged_buffers_flushed_by_period) {
  init_with_collector(true, 0, 0, 100);
  for (int i = 0; i < 10; i++)
    TL_WARN("aged");
  uint64_t got = 0;
  for (int i = 0; i < 300 && got < 10; i++) {
    usleep(10000);
    got = collector_events(&coll);
  }
  CHECK_U64(got, 10);
  tl_shutdown();
  check_no_errors();
}

/* ---- lifecycle ---- */

TEST(events_after_shutdown_are_counted) {
  init_with_collector(false, 0, 0, 1000);
  TL_INFO("during");
  tl_shutdown();
  tl_shutdown(); /* safe twice */
  for (int i = 0; i < 7; i++)
    TL_INFO("after");
  TL_IMETRIC("after", "count", 1);
  tl_async_span s = TL_ASYNC_BEGIN("after", TL_ASYNC_ROOT);
  CHECK(s.id != 0);
  TL_ASYNC_END(s);
  tl_flush(); /* no-op once down */
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.events_recorded, 1);
  CHECK_U64(coll.events, 1);
  CHECK_U64(st.dropped[TL_DROP_AFTER_SHUTDOWN], 10);
  CHECK_EQ(tl_init(NULL), TL_ESTATE);
}

TEST(init_rejects_bad_config) {
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.level = 9;
  CHECK_EQ(tl_init(&cfg), TL_EINVAL);
  cfg.level = 0;
  cfg.buffer_size = 100;
  CHECK_EQ(tl_init(&cfg), TL_EINVAL);
  cfg.buffer_size = 0;
  cfg.properties = "novalue";
  CHECK_EQ(tl_init(&cfg), TL_EINVAL);
  cfg.properties = NULL;
  cfg.flusher_nice = 20;
  CHECK_EQ(tl_init(&cfg), TL_EINVAL);
  cfg.flusher_nice = -1; /* raising the priority needs privileges */
  CHECK_EQ(tl_init(&cfg), TL_EINVAL);
  cfg.flusher_nice = 0;
  setenv("TRACELAKE_LEVEL", "loud", 1);
  CHECK_EQ(tl_init(NULL), TL_EINVAL);
  unsetenv("TRACELAKE_LEVEL");
  CHECK_STR(tl_strerror(TL_EINVAL), "invalid argument");
  CHECK_STR(tl_errname(TL_ECHECKSUM), "TL_ECHECKSUM");
  /* A failed init leaves the runtime usable. */
  cfg.properties = NULL;
  collector_init(&coll, false);
  cfg.sink = collector_sink;
  cfg.sink_ctx = &coll;
  CHECK_EQ(tl_init(&cfg), 0);
  tl_shutdown();
}

/* ---- level filter from the environment ---- */

TEST(level_filter_from_environment) {
  setenv("TRACELAKE_LEVEL", "warn", 1);
  collector_init(&coll, true);
  tl_config cfg = {0};
  cfg.level = TL_LEVEL_TRACE; /* the environment overrides this */
  cfg.sink = collector_sink;
  cfg.sink_ctx = &coll;
  CHECK_EQ(tl_init(&cfg), 0);
  TL_TRACE("t");
  TL_DEBUG("d %d", 1);
  TL_INFO("i");
  TL_WARN("w");
  TL_ERROR("e %s", "x");
  TL_FATAL("f");
  tl_shutdown();
  CHECK_U64(coll.events, 3);
  CHECK_EQ(coll.ev[0].level, TL_LEVEL_WARN);
  CHECK_STR(coll.ev[1].msg, "e x");
  CHECK_EQ(coll.ev[2].level, TL_LEVEL_FATAL);
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(total_dropped(&st), 0); /* filtered is not dropped */
}

/* ---- spans ---- */

static int spanned(int x) {
  TL_SPAN_FN();
  if (x > 0) {
    TL_SPAN_SCOPE("inner");
    if (x > 1)
      return 2; /* early return closes both spans */
  }
  return 0;
}

TEST(span_scopes_close_on_every_exit) {
  init_with_collector(true, 0, 0, 1000);
  spanned(0);
  spanned(1);
  spanned(2);
  tl_shutdown();
  check_no_errors();
  CHECK_U64(coll.by_type[TL_EV_SPAN_BEGIN], 5);
  CHECK_U64(coll.by_type[TL_EV_SPAN_END], 5);
  const char *want[] = {"spanned", "spanned", "spanned", "inner", "inner",
                        "spanned", "spanned", "inner",   "inner", "spanned"};
  int types[] = {4, 5, 4, 4, 5, 5, 4, 4, 5, 5};
  CHECK_U64(coll.nev, 10);
  for (int i = 0; i < 10; i++) {
    CHECK_STR(coll.ev[i].name, want[i]);
    CHECK_EQ(coll.ev[i].type, types[i]);
    if (i)
      CHECK(coll.ev[i].ticks >= coll.ev[i - 1].ticks);
  }
}

/* ---- formatted messages ---- */

TEST(formatted_messages_and_truncation) {
  init_with_collector(true, 0, 4096 * 4, 1000);
  char big[20000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  TL_INFO("%s", big);           /* longer than the 8 KiB message limit */
  for (int i = 0; i < 500; i++) /* spans many 16 KiB buffers */
    TL_INFO("msg %d %s", i, "abcdefghijklmnopqrstuvwxyz0123456789");
  TL_INFO("100% literal, no formatting");
  tl_shutdown();
  check_no_errors();
  CHECK_U64(coll.nev, 502);
  CHECK_EQ(strlen(coll.ev[0].msg), sizeof coll.ev[0].msg - 1); /* copy cap */
  CHECK_STR(coll.ev[1].msg, "msg 0 abcdefghijklmnopqrstuvwxyz0123456789");
  CHECK_STR(coll.ev[500].msg, "msg 499 abcdefghijklmnopqrstuvwxyz0123456789");
  CHECK_STR(coll.ev[501].msg, "100% literal, no formatting");
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(total_dropped(&st), 0);
}

/* ---- streams and process information ---- */

static void *named_thread(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "tl-worker-7");
  TL_SPAN_SCOPE("work");
  TL_INFO("hello");
  TL_FMETRIC("temp", "celsius", 21.5);
  return NULL;
}

/* TL_LOG_STR records `len` bytes verbatim: no format ('%' kept), no NUL
 * needed, cut at 8 KiB, across buffer exchanges like any message. */
TEST(verbatim_messages) {
  init_with_collector(true, 0, 4096 * 4, 1000);
  static char big[20000];
  memset(big, 'y', sizeof big);
  TL_LOG_STR(TL_LEVEL_INFO, big, sizeof big); /* no NUL anywhere */
  const char *line = "100% {\"a\":1} and the rest is not logged";
  for (int i = 0; i < 500; i++) /* spans many 16 KiB buffers */
    TL_LOG_STR(TL_LEVEL_WARN, line, 12);
  TL_LOG_STR(TL_LEVEL_INFO, line, 0);
  tl_shutdown();
  check_no_errors();
  CHECK_U64(coll.nev, 502);
  CHECK_U64(coll.ev[0].u, 8192);
  CHECK_EQ(coll.ev[0].msg[0], 'y');
  CHECK_STR(coll.ev[1].msg, "100% {\"a\":1}");
  CHECK_U64(coll.ev[1].u, 12);
  CHECK_EQ(coll.ev[1].level, TL_LEVEL_WARN);
  CHECK_STR(coll.ev[500].msg, "100% {\"a\":1}");
  CHECK_STR(coll.ev[501].msg, "");
  CHECK_STR(coll.ev[501].target, "tests::runtime");
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(total_dropped(&st), 0);
}

TEST(streams_carry_tags_and_thread_properties) {
  init_with_collector(true, 0, 0, 1000);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, named_thread, NULL), 0);
  pthread_join(t, NULL);
  tl_shutdown();
  check_no_errors();
  CHECK_EQ(coll.nstreams, 3);
  int seen = 0;
  for (int i = 0; i < coll.nstreams; i++) {
    const coll_stream *s = &coll.streams[i];
    CHECK_STR(s->thread_name, "tl-worker-7");
    CHECK(atoi(s->thread_id) > 0);
    int bit = !strcmp(s->tag, "cpu")       ? 1
              : !strcmp(s->tag, "log")     ? 2
              : !strcmp(s->tag, "metrics") ? 4
                                           : 0;
    seen |= bit;
    CHECK_U64(s->events, bit == 1 ? 2 : 1);
  }
  CHECK_EQ(seen, 7);
}

TEST(process_info_and_properties) {
  setenv("TRACELAKE_PROPERTIES", "region=eu,tier=gold", 1);
  unsetenv("TRACELAKE_PARENT_PROCESS_ID");
  collector_init(&coll, true);
  tl_config cfg = {0};
  cfg.properties = "service=api";
  cfg.sink = collector_sink;
  cfg.sink_ctx = &coll;
  CHECK_EQ(tl_init(&cfg), 0);
  tl_shutdown();
  check_no_errors();
  CHECK_U64(coll.processes, 1);
  const tl_wire_process *p = &coll.process;
  CHECK(p->tsc_frequency > 1000000);
  CHECK(p->start_time > 1600000000000000000);
  CHECK_EQ(p->nprops, 3);
  uint8_t zero[16] = {0}, mine[16];
  CHECK(!memcmp(p->parent_process_id, zero, 16));
  CHECK_EQ(tl_process_id(mine), 0);
  CHECK(!memcmp(p->process_id, mine, 16));
  /* Children inherit this process as their parent through the environment. */
  char text[37];
  tl_uuid_format(mine, text);
  CHECK_STR(getenv("TRACELAKE_PARENT_PROCESS_ID"), text);
}

/* The child half of child_process_names_its_parent: records into a spool
 * and exits. */
TEST(child_process_helper) {
  tl_config cfg = {0};
  CHECK_EQ(tl_init(&cfg), 0); /* TRACELAKE_SPOOL from the parent */
  TL_INFO("child");
  tl_shutdown();
}

static int load_process_from_spool(const char *root, tl_wire_process *out,
                                   uint8_t **keep) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls %s/*/*-process.tl 2>/dev/null | head -1", root);
  FILE *f = popen(cmd, "r");
  char path[512] = "";
  if (!f || !fgets(path, sizeof path, f))
    return -1;
  pclose(f);
  path[strcspn(path, "\n")] = 0;
  FILE *pf = fopen(path, "rb");
  if (!pf)
    return -1;
  static uint8_t buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, pf);
  fclose(pf);
  *keep = buf;
  tl_wire_error err;
  return tl_process_decode(buf, n, out, &err);
}

TEST(child_process_names_its_parent) {
  char root[] = "/tmp/tl-test-XXXXXX";
  CHECK(mkdtemp(root) != NULL);
  collector_init(&coll, false);
  tl_config cfg = {0};
  cfg.sink = collector_sink;
  cfg.sink_ctx = &coll;
  CHECK_EQ(tl_init(&cfg), 0);
  uint8_t mine[16];
  CHECK_EQ(tl_process_id(mine), 0);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("TRACELAKE_SPOOL", root, 1);
    execl("/proc/self/exe", "test_runtime", "child_process_helper",
          (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  tl_wire_process child;
  uint8_t *buf;
  CHECK_EQ(load_process_from_spool(root, &child, &buf), 0);
  CHECK(!memcmp(child.parent_process_id, mine, 16));
  CHECK(memcmp(child.process_id, mine, 16) != 0);
  tl_shutdown();
  char rm[600];
  snprintf(rm, sizeof rm, "rm -rf %s", root);
  CHECK_EQ(system(rm), 0);
}

TEST(spool_sink_writes_complete_files) {
  char root[] = "/tmp/tl-test-XXXXXX";
  CHECK(mkdtemp(root) != NULL);
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.spool_dir = root;
  cfg.buffer_size = 4096;
  CHECK_EQ(tl_init(&cfg), 0);
  for (int i = 0; i < 5000; i++)
    TL_IMETRIC("spooled", "count", i);
  tl_shutdown();
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.events_recorded, 5000);
  CHECK(st.blocks > 10);
  /* Count files and decode each: no temp file left, every block valid. */
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls -a %s/*/", root);
  FILE *f = popen(cmd, "r");
  char line[512];
  int blocks = 0, streams = 0, processes = 0, temps = 0;
  while (f && fgets(line, sizeof line, f)) {
    blocks += strstr(line, "-block.tl") != NULL;
    streams += strstr(line, "-stream.tl") != NULL;
    processes += strstr(line, "-process.tl") != NULL;
    temps += strstr(line, ".tmp-") != NULL;
  }
  pclose(f);
  CHECK_EQ(processes, 1);
  CHECK_EQ(streams, 1);
  CHECK_U64(blocks, st.blocks);
  CHECK_EQ(temps, 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  CHECK_EQ(system(cmd), 0);
}

TEST(no_sink_counts_blocks_as_failed) {
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  CHECK_EQ(tl_init(&cfg), 0);
  for (int i = 0; i < 100; i++)
    TL_INFO("nowhere");
  tl_shutdown();
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.events_recorded, 0);
  CHECK_U64(st.dropped[TL_DROP_SINK], 100);
  CHECK(st.blocks_failed >= 1);
}

/* A sink that stores in groups (tl_config.sink_commit): every round that
 * handed it blocks ends with a commit before tl_flush returns, and a failed
 * commit counts the round's blocks as failed and their events as dropped.
 * The flusher thread writes `grp`; the test reads it after tl_flush. */
static struct {
  uint64_t accepted, committed, commits;
  bool fail;
} grp;

static int grp_sink(void *ctx, int kind, const uint8_t *p, size_t n) {
  int rc = collector_sink(ctx, kind, p, n);
  if (!rc && kind == TL_MSG_BLOCK)
    grp.accepted++;
  return rc;
}

static int grp_commit(void *ctx) {
  (void)ctx;
  grp.commits++;
  uint64_t k = grp.accepted;
  grp.accepted = 0;
  if (grp.fail)
    return TL_EIO;
  grp.committed += k;
  return 0;
}

TEST(committing_sink_ends_each_round) {
  collector_init(&coll, false);
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.flush_period_ms = 3600 * 1000;
  cfg.sink = grp_sink;
  cfg.sink_commit = grp_commit;
  cfg.sink_ctx = &coll;
  CHECK_EQ(tl_init(&cfg), 0);
  for (uint64_t round = 1; round <= 3; round++) {
    for (int i = 0; i < 100; i++)
      TL_INFO("item %d", i);
    tl_flush();
    CHECK_U64(grp.accepted, 0); /* committed before tl_flush returned */
    CHECK_U64(grp.committed, round);
    CHECK(grp.commits >= round);
  }
  uint64_t commits = grp.commits;
  tl_flush(); /* nothing new: no block, no commit */
  CHECK_U64(grp.commits, commits);

  grp.fail = true;
  for (int i = 0; i < 50; i++)
    TL_INFO("lost %d", i);
  tl_flush();
  grp.fail = false;
  tl_stats st;
  tl_stats_get(&st);
  CHECK_U64(st.blocks_failed, 1);
  CHECK_U64(st.dropped[TL_DROP_SINK], 50);
  CHECK_U64(st.events_recorded, 300);

  for (int i = 0; i < 10; i++)
    TL_INFO("after %d", i);
  tl_shutdown();
  tl_stats_get(&st);
  CHECK_U64(st.blocks_failed, 1);
  CHECK_U64(st.events_recorded, 310);
  check_no_errors();
  collector_free(&coll);
}

TEST(flusher_runs_at_the_nice_value_asked) {
  collector_init(&coll, false);
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.sink = collector_sink;
  cfg.sink_ctx = &coll;
  cfg.flusher_nice = 19; /* allowed whatever this process's value */
  int mine = getpriority(PRIO_PROCESS, 0);
  CHECK_EQ(tl_init(&cfg), 0);
  TL_INFO("hello");
  tl_flush(); /* the flusher has named itself and set its priority */
  CHECK_EQ(test_thread_nice(0, "tl-flusher"), 19);
  CHECK_EQ(getpriority(PRIO_PROCESS, 0), mine); /* this thread's */
  tl_shutdown();
  CHECK_U64(coll.events, 1);
  collector_free(&coll);
}

TEST(forked_child_counts_its_events_as_dropped) {
  init_with_collector(false, 0, 0, 1000);
  TL_INFO("parent before fork");
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 5; i++)
      TL_INFO("child");
    tl_stats st;
    tl_stats_get(&st);
    _exit(st.dropped[TL_DROP_AFTER_SHUTDOWN] == 5 && st.events_recorded == 0
              ? 0
              : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  TL_INFO("parent after fork");
  tl_shutdown();
  CHECK_U64(coll.events, 2);
}

TL_TEST_MAIN()

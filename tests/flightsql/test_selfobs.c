/* test_selfobs.c - the query service observes itself: a known mix of
 * queries goes through Flight SQL (small and large results, joins with a
 * time range, the limit header, prepared statements, a planning error, an
 * execution error, a deadline, a CancelFlightInfo mid-stream, a client that
 * cancels its call), then the server's own telemetry is read back through
 * the same Flight SQL service and checked: how many times each metric was
 * recorded, setup <= total, context + planning + execution <= setup, one
 * async span tree per query with the right children, parents and depths,
 * a query_log row per query agreeing with the metrics, thread spans of
 * the worker threads, and no event dropped before tl_init. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "flightsql/client/client.h"
#include "ingest/harness.h"
#include "test.h"
#include "tracelake/tracelake.h"

static th_server srv;

static tl_fc *client(void) {
  char url[64], err[512];
  snprintf(url, sizeof url, "grpc://127.0.0.1:%u", srv.flight_port);
  tl_fc_opts o = {0};
  o.url = url;
  o.timeout_ms = 60000;
  tl_fc *c = NULL;
  if (tl_fc_connect(&c, &o, err, sizeof err))
    FAILF("connect: %s", err);
  return c;
}

/* A result as text rows ("a|b\n"), and how many batches it came in. */
typedef struct result {
  tl_bytes text;
  int64_t rows, batches;
  int stop_after;       /* > 0: the callback stops the call after that many */
  volatile int *signal; /* set to 1 at the first batch */
  unsigned slow_ms;     /* sleep per batch */
} result;

static int on_batch(void *ctx, const struct ArrowSchema *s,
                    const struct ArrowArray *a) {
  result *r = ctx;
  r->batches++;
  for (int64_t row = 0; row < a->length && r->text.len < (1u << 20); row++) {
    for (int64_t col = 0; col < s->n_children; col++) {
      bool null;
      if (col)
        tl_bytes_append(&r->text, "|", 1);
      tl_arrow_value_text(s, a, col, row, &r->text, &null);
      if (null)
        tl_bytes_append(&r->text, "NULL", 4);
    }
    tl_bytes_append(&r->text, "\n", 1);
  }
  r->rows += a->length;
  if (r->signal)
    *r->signal = 1;
  if (r->slow_ms)
    th_sleep_ms(r->slow_ms);
  if (r->stop_after && r->batches >= r->stop_after)
    return TL_ECANCELED;
  return 0;
}

static void result_init(result *r) {
  memset(r, 0, sizeof *r);
  tl_bytes_init(&r->text, 1u << 24);
}

static const char *text(result *r) {
  tl_bytes_append(&r->text, "", 1);
  r->text.len--;
  return (const char *)r->text.p;
}

static int run(tl_fc *c, const char *sql, result *r) {
  result_init(r);
  tl_fc_sink sink = {NULL, on_batch, r};
  return tl_fc_execute(c, sql, &sink);
}

/* Runs SQL that must succeed; returns its text. The caller frees. */
static char *must(tl_fc *c, const char *sql) {
  result r;
  if (run(c, sql, &r))
    FAILF("%s: %s", sql, tl_fc_errmsg(c));
  char *t = strdup(text(&r));
  tl_bytes_free(&r.text);
  return t;
}

static long long must_int(tl_fc *c, const char *sql) {
  char *t = must(c, sql);
  long long v = strtoll(t, NULL, 10);
  free(t);
  return v;
}

/* ---- the mix ----------------------------------------------------------------
 */

/* What each kind of query must leave behind. */
typedef struct expect {
  int queries, ok, error, cancelled, disconnected;
  int context, planning, execution, setup, first_batch;
} expect;

static void ok_query(tl_fc *c, const char *sql, int64_t rows, expect *e) {
  result r;
  if (run(c, sql, &r))
    FAILF("%s: %s", sql, tl_fc_errmsg(c));
  if (rows >= 0 && r.rows != rows)
    FAILF("%s: %" PRId64 " rows, want %" PRId64, sql, r.rows, rows);
  CHECK(r.rows > 0); /* every ok query of the mix sends a batch */
  tl_bytes_free(&r.text);
  e->queries++, e->ok++, e->context++, e->planning++, e->execution++;
  e->setup++, e->first_batch++;
}

typedef struct streamer {
  tl_fc *c;
  const uint8_t *ticket;
  size_t n;
  volatile int started;
  int rc;
} streamer;

static void *stream_slowly(void *arg) {
  streamer *s = arg;
  result r;
  result_init(&r);
  r.signal = &s->started;
  r.slow_ms = 20;
  tl_fc_sink sink = {NULL, on_batch, &r};
  s->rc = tl_fc_do_get(s->c, s->ticket, s->n, &sink);
  tl_bytes_free(&r.text);
  return NULL;
}

static int on_cancel_result(void *ctx, const uint8_t *p, size_t n) {
  Arrow__Flight__Protocol__CancelFlightInfoResult *r =
      arrow__flight__protocol__cancel_flight_info_result__unpack(NULL, n, p);
  CHECK(r != NULL);
  *(int *)ctx = r->status;
  arrow__flight__protocol__cancel_flight_info_result__free_unpacked(r, NULL);
  return 0;
}

/* A query cancelled by CancelFlightInfo while its result streams. */
static void cancel_mid_stream(expect *e) {
  tl_fc *c = client(), *other = client();
  Arrow__Flight__Protocol__Sql__CommandStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY__INIT;
  q.query = "SELECT i, repeat('y', 50) AS s FROM range(1000000000) t(i)";
  Arrow__Flight__Protocol__FlightInfo *info = NULL;
  CHECK_EQ(tl_fc_get_flight_info(c, &q.base, &info), 0);
  streamer st = {c, info->endpoint[0]->ticket->ticket.data,
                 info->endpoint[0]->ticket->ticket.len, 0, 0};
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, stream_slowly, &st), 0);
  for (int i = 0; i < 1000 && !st.started; i++)
    th_sleep_ms(10);
  CHECK(st.started);
  Arrow__Flight__Protocol__CancelFlightInfoRequest rq =
      ARROW__FLIGHT__PROTOCOL__CANCEL_FLIGHT_INFO_REQUEST__INIT;
  rq.info = info;
  tl_bytes body;
  tl_bytes_init(&body, 1 << 20);
  CHECK_EQ(tl_flight_msg_pack(&rq.base, &body), 0);
  int status = -1;
  CHECK_EQ(tl_fc_do_action(other, "CancelFlightInfo", body.p, body.len,
                           on_cancel_result, &status),
           0);
  CHECK_EQ(status,
           ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_CANCELLING);
  pthread_join(t, NULL);
  CHECK(st.rc != 0);
  CHECK_EQ(tl_fc_status(c), 1 /* CANCELLED */);
  tl_bytes_free(&body);
  arrow__flight__protocol__flight_info__free_unpacked(info, NULL);
  tl_fc_close(c);
  tl_fc_close(other);
  e->queries++, e->cancelled++, e->context++, e->planning++, e->execution++;
  e->setup++, e->first_batch++;
}

static int run_mix(expect *e) {
  memset(e, 0, sizeof *e);
  tl_fc *c = client();
  ok_query(c, "SELECT 1", 1, e);
  ok_query(c, "SELECT 42 AS answer, 'x' AS s", 1, e);
  ok_query(c, "SELECT i FROM range(300000) t(i)", 300000, e); /* large */
  /* Joins across views, bounded by a time range. */
  CHECK_EQ(tl_fc_set_range(c, "2000-01-01T00:00:00Z", "2200-01-01T00:00:00Z"),
           0);
  ok_query(c,
           "SELECT p.exe, count(*) FROM log_entries l JOIN processes p "
           "USING (process_id) GROUP BY 1",
           -1, e);
  ok_query(c,
           "SELECT m.name, count(*) FROM measures m JOIN streams s "
           "USING (stream_id) GROUP BY 1",
           -1, e);
  CHECK_EQ(tl_fc_set_range(c, NULL, NULL), 0);
  /* The limit header. */
  tl_fc_set_limit(c, 10);
  ok_query(c, "SELECT * FROM range(1000)", 10, e);
  tl_fc_set_limit(c, -1);
  /* A prepared statement, executed twice with parameters. */
  tl_fc_prepared *p = NULL;
  CHECK_EQ(tl_fc_prepare(c, "SELECT count(*) FROM range(?::BIGINT)", &p), 0);
  for (int v = 5; v <= 6; v++) {
    tl_ab *root = tl_ab_new();
    tl_ab_int(tl_ab_child(root, "l", "1", true), v);
    tl_ab_row(root);
    struct ArrowSchema s;
    struct ArrowArray a;
    CHECK_EQ(tl_ab_finish(root, &s, &a), 0);
    CHECK_EQ(tl_fc_prepared_bind(c, p, &s, &a), 0);
    tl_arrow_array_release(&a);
    tl_arrow_schema_release(&s);
    result r;
    result_init(&r);
    tl_fc_sink sink = {NULL, on_batch, &r};
    CHECK_EQ(tl_fc_prepared_execute(c, p, &sink), 0);
    char want[16];
    snprintf(want, sizeof want, "%d\n", v);
    CHECK_STR(text(&r), want);
    tl_bytes_free(&r.text);
    e->queries++, e->ok++, e->context++, e->planning++, e->execution++;
    e->setup++, e->first_batch++;
  }
  CHECK_EQ(tl_fc_prepared_close(c, p), 0);
  /* A planning error (in GetFlightInfo) and an execution error (in DoGet). */
  result r;
  CHECK(run(c, "SELEC 1", &r) != 0);
  tl_bytes_free(&r.text);
  e->queries++, e->error++, e->context++;
  CHECK(run(c, "SELECT CAST('x' || i AS INTEGER) FROM range(3) t(i)", &r) != 0);
  tl_bytes_free(&r.text);
  e->queries++, e->error++, e->context++, e->planning++;
  /* A deadline passes during execution. */
  tl_fc_set_timeout(c, 300);
  CHECK(run(c, "SELECT count(*) FROM range(100000000000) a(i) WHERE i % 7 = 3",
            &r) != 0);
  tl_bytes_free(&r.text);
  tl_fc_set_timeout(c, 60000);
  e->queries++, e->cancelled++, e->context++, e->planning++;
  /* Cancelled by CancelFlightInfo mid-stream. */
  cancel_mid_stream(e);
  /* A client that gives up after the first batch: its call is cancelled,
   * as when it disconnects. */
  result_init(&r);
  r.stop_after = 1;
  tl_fc_sink sink = {NULL, on_batch, &r};
  CHECK(tl_fc_execute(c, "SELECT i FROM range(1000000000) t(i)", &sink) != 0);
  tl_bytes_free(&r.text);
  e->queries++, e->disconnected++, e->context++, e->planning++;
  e->execution++, e->setup++, e->first_batch++;
  tl_fc_close(c);
  return 0;
}

/* ---- reading it back
 * ------------------------------------------------------------- */

/* The checks' own queries carry this comment, so that the mix's rows are
 * told apart in the query log. */
#define CHECK_TAG "/*check*/ "
#define MIX "sql NOT LIKE '%%/*check*/%%'"

TEST(every_query_is_observed) {
  const char *extra[] = {"--merge-interval-ms", "0", NULL};
  CHECK_EQ(th_server_start(&srv, th_path("data"), extra), 0);
  CHECK(srv.flight_port != 0);
  /* Some data of another process to join over: the demo. */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s demo --url %s >/dev/null 2>&1",
           TL_TRACELAKE_EXE, srv.base);
  CHECK_EQ(system(cmd), 0);
  expect e;
  run_mix(&e);
  uint64_t ended = th_now_ms();

  /* The query log shows every query within a second or so. */
  tl_fc *c = client();
  long long logged = 0;
  char sql[4096];
  snprintf(sql, sizeof sql,
           CHECK_TAG "SELECT count(*) FROM query_log WHERE " MIX);
  while (th_now_ms() - ended < 10000) {
    logged = must_int(c, sql);
    if (logged >= e.queries)
      break;
    th_sleep_ms(50);
  }
  printf("query log complete %llu ms after the mix ended\n",
         (unsigned long long)(th_now_ms() - ended));
  CHECK_EQ(logged, e.queries);
  /* Quiet for a while: every event of every query so far is flushed. Then
   * one query counts every metric, and the checks' own queries so far (all
   * ok, none seen by that query yet). */
  th_sleep_ms(1000);
  static const char *const names[] = {
      "context_init_duration",     "query_planning_duration",
      "query_execution_duration",  "query_setup_duration",
      "query_duration_total",      "query_completed_successfully",
      "query_duration_with_error", "query_time_to_first_batch",
      "query_rows_sent",           "query_bytes_sent"};
  int mix[] = {e.context,
               e.planning,
               e.execution,
               e.setup,
               e.ok,
               e.ok,
               e.error + e.cancelled + e.disconnected,
               e.first_batch,
               e.queries,
               e.queries};
  int per_ok[] = {1, 1, 1, 1, 1, 1, 0, 1, 1, 1}; /* a check query's */
  int n = snprintf(sql, sizeof sql,
                   CHECK_TAG "SELECT (SELECT count(*) FROM query_log WHERE "
                             "NOT " MIX ")");
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    n += snprintf(sql + n, sizeof sql - n, ", count(*) FILTER (name = '%s')",
                  names[i]);
  snprintf(sql + n, sizeof sql - n,
           " FROM measures WHERE target = 'tracelake::query'");
  char *counts = must(c, sql);
  long long checks = strtoll(counts, NULL, 10);
  const char *at = strchr(counts, '|');
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    CHECK(at);
    long long got = strtoll(at + 1, NULL, 10);
    long long want = mix[i] + checks * per_ok[i];
    if (got != want)
      FAILF("metric %s recorded %lld times, want %lld (%d for the mix, %lld "
            "check queries)",
            names[i], got, want, mix[i], checks);
    at = strchr(at + 1, '|');
  }
  free(counts);

  snprintf(sql, sizeof sql,
           CHECK_TAG "SELECT status, count(*) FROM query_log WHERE " MIX
                     " GROUP BY 1 ORDER BY 1");
  char want[256];
  snprintf(want, sizeof want,
           "cancelled|%d\ndisconnected|%d\nerror|%d\nok|%d\n", e.cancelled,
           e.disconnected, e.error, e.ok);
  char *got = must(c, sql);
  CHECK_STR(got, want);
  free(got);

  /* Durations: setup <= total; context + planning + execution <= setup. */
  snprintf(sql, sizeof sql,
           CHECK_TAG "SELECT count(*) FROM query_log WHERE " MIX
                     " AND (setup_ns > total_ns OR context_ns + planning_ns + "
                     "execution_ns > setup_ns OR first_batch_ns > total_ns)");
  CHECK_EQ(must_int(c, sql), 0);
  /* The log agrees with the metrics: the totals of the ok queries. (This
   * query's own metric is not recorded yet, nor its log line; those of the
   * checks before it are flushed within the server's 500 ms period, the
   * line and the metric in different streams, so possibly apart: asked
   * again until both are in, for at most 5 s.) */
  snprintf(sql, sizeof sql,
           CHECK_TAG "SELECT (SELECT sum(total_ns) FROM query_log WHERE "
                     "status = 'ok') - (SELECT round(sum(value) * 1e9) FROM "
                     "measures WHERE name = 'query_duration_total')");
  long long diff = 0;
  for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < 5000;) {
    th_sleep_ms(300);
    diff = must_int(c, sql);
    if (diff > -1000 * e.ok && diff < 1000 * e.ok)
      break;
  }
  CHECK(diff > -1000 * e.ok && diff < 1000 * e.ok); /* rounding only */
  snprintf(sql, sizeof sql,
           CHECK_TAG "SELECT count(*) FROM query_log WHERE " MIX
                     " AND status = 'ok' AND \"rows\" > 0 AND bytes > 0 AND "
                     "batches > 0 AND fingerprint <> '' AND client LIKE "
                     "'ipv4:127.0.0.1:%%'");
  CHECK_EQ(must_int(c, sql), e.ok);
  got = must(c, CHECK_TAG "SELECT fingerprint FROM query_log WHERE sql = "
                          "'SELECT 42 AS answer, ''x'' AS s'");
  CHECK_STR(got, "SELECT ? AS answer, ? AS s\n");
  free(got);

  /* One span tree per query: a root, its children with the root as parent
   * and depth one more, each begun and ended. */
  char *pid = must(c, CHECK_TAG "SELECT DISTINCT process_id FROM query_log");
  pid[strcspn(pid, "\n")] = 0;
  snprintf(
      sql, sizeof sql,
      CHECK_TAG
      "WITH ev AS (SELECT * FROM view_instance('async_events', '%s')), "
      "spans AS (SELECT span_id, any_value(parent_span_id) AS parent, "
      "any_value(depth) AS depth, any_value(name) AS name, "
      "count(*) FILTER (event_type = 'begin') AS b, "
      "count(*) FILTER (event_type = 'end') AS e FROM ev GROUP BY span_id), "
      "q AS (SELECT root_span_id, status FROM query_log WHERE " MIX ") "
      "SELECT q.status, string_agg(c.name || ':' || (c.depth - r.depth) "
      "|| ':' || c.b || c.e, ',' ORDER BY c.name), r.b, r.e, r.depth "
      "FROM q JOIN spans r ON r.span_id = q.root_span_id "
      "LEFT JOIN spans c ON c.parent = r.span_id "
      "WHERE r.name = 'flight_sql_execute_query' "
      "GROUP BY q.root_span_id, q.status, r.b, r.e, r.depth "
      "ORDER BY 1, 2",
      pid);
  got = must(c, sql);
  /* Every ok query: exactly its four children. */
  const char *four =
      "flight_sql_query_execution:1:11,flight_sql_query_planning:1:11,"
      "flight_sql_stream_results:1:11,make_session_context:1:11|1|1|0\n";
  int ok_trees = 0;
  for (const char *line = got; *line; line = strchr(line, '\n') + 1) {
    if (strncmp(line, "ok|", 3) == 0) {
      if (strncmp(line + 3, four, strlen(four)) != 0)
        FAILF("an ok query's span tree: %.*s", (int)strcspn(line, "\n"), line);
      ok_trees++;
    }
    CHECK(strstr(line, "|1|1|0\n") == strchr(line, '\n') - 6); /* root */
  }
  CHECK_EQ(ok_trees, e.ok);
  /* A planning error: the context and planning spans only. */
  CHECK(strstr(got, "error|flight_sql_query_planning:1:11,"
                    "make_session_context:1:11|1|1|0\n"));
  /* Cancelled mid-stream: all four, the stream's ended by the cancel. */
  CHECK(strstr(got, "cancelled|flight_sql_query_execution:1:11,"
                    "flight_sql_query_planning:1:11,"
                    "flight_sql_stream_results:1:11,"
                    "make_session_context:1:11|1|1|0\n"));
  free(got);

  /* Worker threads (streams named after them) have thread spans
   * (session, planning, execution). */
  snprintf(sql, sizeof sql,
           "SELECT count(DISTINCT stream_id) FROM streams WHERE process_id = "
           "'%s'",
           pid);
  CHECK(must_int(c, sql) >= 2);
  char *streams = must(c, "SELECT stream_id FROM streams WHERE process_id = "
                          "(SELECT DISTINCT process_id FROM query_log) AND "
                          "list_contains(properties, {'key': 'thread-name', "
                          "'value': 'tl-fsql-worker'})");
  CHECK(streams[0] != 0);
  int with_spans = 0;
  for (char *line = streams; *line;) {
    char *nl = strchr(line, '\n');
    *nl = 0;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM view_instance('thread_spans', '%s') WHERE "
             "name IN ('tl_session_open_for', 'tl_query_prepare', "
             "'tl_query_execute')",
             line);
    if (must_int(c, sql) > 0)
      with_spans++;
    line = nl + 1;
  }
  CHECK(with_spans >= 1);
  free(streams);

  /* The server started its telemetry before its threads: nothing was
   * dropped before tl_init (the counter is reported only when not 0). */
  CHECK_EQ(must_int(c, "SELECT count(*) FROM measures WHERE name = "
                       "'tracelake_dropped_before_init' AND value > 0"),
           0);
  /* The process says what it is. */
  snprintf(sql, sizeof sql,
           "SELECT exe LIKE '%%tracelake' AND list_contains(map_keys(map_from_"
           "entries(properties)), 'role') FROM processes WHERE process_id = "
           "'%s'",
           pid);
  got = must(c, sql);
  CHECK_STR(got, "true\n");
  free(got);
  free(pid);
  tl_fc_close(c);
  CHECK_EQ(th_server_stop(&srv, 15, 20000), 0);
}

/* Calls go to the most recently idle worker: after a burst has started
 * many workers, one client's queries in turn keep to one or two of them
 * (each worker that records is a telemetry stream the server stores every
 * flush), where handing them round the pool would use every one. */
static void *burst(void *arg) {
  (void)arg;
  tl_fc *c = client();
  free(must(c, "SELECT count(*) AS burst FROM range(30000000)"));
  tl_fc_close(c);
  return NULL;
}

TEST(queries_in_turn_stay_on_few_workers) {
  CHECK_EQ(th_server_start(&srv, th_path("data"), NULL), 0);
  pthread_t t[8];
  for (int i = 0; i < 8; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, burst, NULL), 0);
  for (int i = 0; i < 8; i++)
    pthread_join(t[i], NULL);
  tl_fc *c = client();
  /* 10 ms apart: what is measured is which idle worker a call goes to, not
   * whether the last call's worker is idle again by the time the next call
   * comes (it may not be, under a machine's load). */
  for (int i = 0; i < 40; i++) {
    free(must(c, "SELECT 1 AS in_turn"));
    th_sleep_ms(10);
  }
  th_sleep_ms(1000); /* the query log lines are flushed */
  long long burst_workers =
      must_int(c, "SELECT count(DISTINCT stream_id) FROM log_entries WHERE "
                  "target = 'tracelake::query' AND msg LIKE '%AS burst%'");
  long long turn_workers =
      must_int(c, "SELECT count(DISTINCT stream_id) FROM log_entries WHERE "
                  "target = 'tracelake::query' AND msg LIKE '%AS in_turn%'");
  long long turn_queries =
      must_int(c, "SELECT count(*) FROM log_entries WHERE target = "
                  "'tracelake::query' AND msg LIKE '%AS in_turn%'");
  printf("burst on %lld workers; 40 queries in turn on %lld\n", burst_workers,
         turn_workers);
  CHECK_EQ(turn_queries, 40);
  CHECK(burst_workers >= 4);
  CHECK(turn_workers <= 3);
  tl_fc_close(c);
  CHECK_EQ(th_server_stop(&srv, 15, 20000), 0);
}

/* Threads of the server named `name`. */
static int threads_named(pid_t pid, const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char fp[400], comm[64] = "";
    snprintf(fp, sizeof fp, "%s/%s/comm", path, e->d_name);
    FILE *f = e->d_name[0] == '.' ? NULL : fopen(fp, "r");
    if (!f)
      continue;
    if (fgets(comm, sizeof comm, f))
      comm[strcspn(comm, "\n")] = 0;
    fclose(f);
    n += strcmp(comm, name) == 0;
  }
  if (d)
    closedir(d);
  return n;
}

static void *long_query(void *arg) {
  (void)arg;
  tl_fc *c = client();
  free(must(c, "SELECT count(*) AS burst FROM range(100000000)"));
  tl_fc_close(c);
  return NULL;
}

/* No more workers than --flight-max-calls: further calls wait for one and
 * succeed; workers idle for --flight-worker-idle retire, down to 4. */
TEST(workers_are_capped_and_retire) {
  const char *extra[] = {"--flight-max-calls", "6", "--flight-worker-idle", "1",
                         NULL};
  CHECK_EQ(th_server_start(&srv, th_path("data"), extra), 0);
  pthread_t t[12];
  for (int i = 0; i < 12; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, long_query, NULL), 0);
  for (int i = 0; i < 12; i++)
    pthread_join(t[i], NULL); /* every query succeeded (must) */
  int busy = threads_named(srv.pid, "tl-fsql-worker");
  printf("workers after 12 concurrent queries: %d\n", busy);
  CHECK(busy >= 5 && busy <= 6);
  th_sleep_ms(2500);
  int left = threads_named(srv.pid, "tl-fsql-worker");
  printf("workers after 2.5 s idle: %d\n", left);
  CHECK_EQ(left, 4);
  tl_fc *c = client();
  CHECK_EQ(must_int(c, "SELECT 42"), 42);
  tl_fc_close(c);
  CHECK_EQ(th_server_stop(&srv, 15, 20000), 0);
}

TEST(self_telemetry_can_be_turned_off) {
  const char *extra[] = {"--no-self-telemetry", NULL};
  CHECK_EQ(th_server_start(&srv, th_path("data"), extra), 0);
  tl_fc *c = client();
  for (int i = 0; i < 5; i++)
    free(must(c, "SELECT 1"));
  th_sleep_ms(500);
  CHECK_EQ(must_int(c, "SELECT count(*) FROM query_log"), 0);
  CHECK_EQ(must_int(c, "SELECT count(*) FROM processes"), 0);
  tl_fc_close(c);
  CHECK_EQ(th_server_stop(&srv, 15, 20000), 0);
}

/* A statement whose log line would outgrow a log message (a comment of
 * quotes, newlines and multibyte characters, each escaped to 2-6 bytes)
 * still gets its query_log row, its SQL cut at a character boundary. */
TEST(long_sql_still_gets_its_query_log_row) {
  CHECK_EQ(th_server_start(&srv, th_path("data"), NULL), 0);
  tl_fc *c = client();
  tl_bytes sql;
  tl_bytes_init(&sql, 1 << 20);
  const char *head = "SELECT 42 AS long_sql_marker /* ";
  tl_bytes_append(&sql, head, strlen(head));
  for (int i = 0; i < 3000; i++)
    tl_bytes_append(&sql, i % 8 ? "\"\n" : "\xc3\xa9", 2);
  tl_bytes_append(&sql, " */", 4); /* with the NUL */
  CHECK_EQ(must_int(c, (const char *)sql.p), 42);
  char *got = NULL;
  for (int tries = 0; tries < 100; tries++) {
    got = must(c, "SELECT status || '|' || length(sql) || '|' || "
                  "left(sql, 28) || '|' || rows FROM query_log WHERE sql "
                  "LIKE 'SELECT 42 AS long_sql_marker%'");
    if (got[0])
      break;
    free(got);
    got = NULL;
    th_sleep_ms(100);
  }
  CHECK(got != NULL);
  printf("query_log: %s", got);
  CHECK(!strncmp(got, "ok|", 3));
  long chars = strtol(got + 3, NULL, 10);
  CHECK(chars > 500 && chars < 3000); /* cut, in characters */
  CHECK(strstr(got, "|SELECT 42 AS long_sql_marker|1\n") != NULL);
  free(got);
  tl_bytes_free(&sql);
  tl_fc_close(c);
  CHECK_EQ(th_server_stop(&srv, 15, 20000), 0);
}

/* Querying the server's own telemetry does not feed on itself: once the
 * queries stop, the number of blocks settles. */
TEST(querying_the_telemetry_does_not_cascade) {
  CHECK_EQ(th_server_start(&srv, th_path("data"), NULL), 0);
  tl_fc *c = client();
  for (int i = 0; i < 20; i++)
    free(must(c, "SELECT count(*) FROM query_log"));
  th_sleep_ms(1500); /* flushes and one materialization after the last */
  long long a = must_int(c, "SELECT count(*) FROM blocks");
  th_sleep_ms(2000);
  long long b = must_int(c, "SELECT count(*) FROM blocks");
  /* The two counting queries themselves and the maintenance loop's own
   * metrics add a few blocks, not a growing stream of them. */
  printf("blocks: %lld then %lld 2 s later\n", a, b);
  CHECK(b - a <= 12);
  tl_fc_close(c);
  CHECK_EQ(th_server_stop(&srv, 15, 20000), 0);
}

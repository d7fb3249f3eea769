/* test_flight.c - the Flight SQL service end to end: the real `tracelake
 * serve` on ephemeral loopback ports, events recorded with libtracelake and
 * sent over HTTP, then read back through gRPC with the project's C client
 * (statements, prepared statements with parameters, headers, metadata,
 * auth, TLS, errors, cancellation, large and concurrent results). The
 * independent Node.js client of tests/interop checks the same surface
 * from outside. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "flightsql/client/client.h"
#include "ingest/harness.h"
#include "test.h"
#include "tracelake/tracelake.h"

#define NLOGS 3000 /* log entries recorded: level = 1 + i % 5 */
#define NMETRICS 500

/* gRPC status codes the tests check. */
enum {
  ST_CANCELLED = 1,
  ST_INVALID_ARGUMENT = 3,
  ST_DEADLINE = 4,
  ST_NOT_FOUND = 5,
  ST_UNIMPLEMENTED = 12,
  ST_UNAUTHENTICATED = 16
};

static th_server srv;

/* Starts the server (extra options may be NULL) and records the known
 * events into it through the HTTP sink. */
static void start(const char *const *extra, bool record) {
  CHECK_EQ(th_server_start(&srv, th_path("data"), extra), 0);
  CHECK(srv.flight_port != 0);
  if (!record)
    return;
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.url = srv.base;
  cfg.spool_dir = th_path("spill");
  cfg.api_key = getenv("TL_TEST_KEY");
  cfg.level = TL_LEVEL_TRACE;
  CHECK_EQ(tl_init(&cfg), 0);
  for (int i = 0; i < NLOGS; i++) {
    switch (i % 5) {
    case 0:
      TL_FATAL("fatal %d", i);
      break;
    case 1:
      TL_ERROR("error %d", i);
      break;
    case 2:
      TL_WARN("warn %d", i);
      break;
    case 3:
      TL_INFO("info %d", i);
      break;
    default:
      TL_DEBUG("debug %d", i);
    }
  }
  for (int i = 0; i < NMETRICS; i++)
    TL_IMETRIC("test_bytes", "bytes", i);
  tl_shutdown(); /* delivers everything before returning */
}

static void stop(void) {
  CHECK_EQ(th_server_stop(&srv, 15, 20000), 0);
}

static tl_fc *client(const char *token) {
  char url[64], err[512];
  snprintf(url, sizeof url, "grpc://127.0.0.1:%u", srv.flight_port);
  tl_fc_opts o = {0};
  o.url = url;
  o.token = token;
  o.timeout_ms = 60000;
  tl_fc *c = NULL;
  if (tl_fc_connect(&c, &o, err, sizeof err))
    FAILF("connect: %s", err);
  return c;
}

/* A result as text: one line per row, values joined by '|'. */
typedef struct result {
  tl_bytes text;
  int64_t rows;
  int ncols;
  char names[512];
  char formats[512];
  uint64_t batches;
} result;

static int on_schema(void *ctx, const struct ArrowSchema *s) {
  result *r = ctx;
  r->ncols = (int)s->n_children;
  r->names[0] = r->formats[0] = 0;
  for (int64_t i = 0; i < s->n_children; i++) {
    size_t n = strlen(r->names), f = strlen(r->formats);
    snprintf(r->names + n, sizeof r->names - n, "%s%s", i ? "," : "",
             s->children[i]->name);
    snprintf(r->formats + f, sizeof r->formats - f, "%s%s", i ? "," : "",
             s->children[i]->format);
  }
  return 0;
}

static int on_batch(void *ctx, const struct ArrowSchema *s,
                    const struct ArrowArray *a) {
  result *r = ctx;
  r->batches++;
  for (int64_t row = 0; row < a->length; row++) {
    for (int64_t col = 0; col < s->n_children; col++) {
      bool null;
      if (col)
        tl_bytes_append(&r->text, "|", 1);
      CHECK_EQ(tl_arrow_value_text(s, a, col, row, &r->text, &null), 0);
      if (null)
        tl_bytes_append(&r->text, "NULL", 4);
    }
    tl_bytes_append(&r->text, "\n", 1);
    r->rows++;
  }
  return 0;
}

static void result_init(result *r) {
  memset(r, 0, sizeof *r);
  tl_bytes_init(&r->text, 1u << 30);
}

static const char *result_str(result *r) {
  tl_bytes_append(&r->text, "", 1);
  r->text.len--;
  return (const char *)r->text.p;
}

/* Runs `sql`; returns the client's code (0 on success). */
static int query(tl_fc *c, const char *sql, result *r) {
  result_init(r);
  tl_fc_sink sink = {on_schema, on_batch, r};
  return tl_fc_execute(c, sql, &sink);
}

static void expect_rows(tl_fc *c, const char *sql, const char *want) {
  result r;
  if (query(c, sql, &r))
    FAILF("%s: %s", sql, tl_fc_errmsg(c));
  if (strcmp(result_str(&r), want) != 0)
    FAILF("%s:\n got:\n%s\n want:\n%s", sql, result_str(&r), want);
  tl_bytes_free(&r.text);
}

static void expect_status(tl_fc *c, const char *sql, int status,
                          const char *needle) {
  result r;
  int rc = query(c, sql, &r);
  tl_bytes_free(&r.text);
  if (rc == 0)
    FAILF("%s: succeeded, wanted status %d", sql, status);
  if (tl_fc_status(c) != status)
    FAILF("%s: status %d (%s), wanted %d", sql, tl_fc_status(c),
          tl_fc_errmsg(c), status);
  if (needle && !strstr(tl_fc_errmsg(c), needle))
    FAILF("%s: '%s' lacks '%s'", sql, tl_fc_errmsg(c), needle);
}

/* ---- statements -----------------------------------------------------------
 */

TEST(statement_returns_the_recorded_rows) {
  start(NULL, true);
  tl_fc *c = client(NULL);
  char want[256];
  snprintf(want, sizeof want, "1|%d\n2|%d\n3|%d\n4|%d\n5|%d\n", NLOGS / 5,
           NLOGS / 5, NLOGS / 5, NLOGS / 5, NLOGS / 5);
  expect_rows(c,
              "SELECT level, count(*) FROM log_entries "
              "WHERE target LIKE '%test_flight%' GROUP BY level ORDER BY 1",
              want);
  expect_rows(c,
              "SELECT msg FROM log_entries WHERE msg IN ('warn 7', "
              "'fatal 10') ORDER BY msg",
              "fatal 10\nwarn 7\n");
  snprintf(want, sizeof want, "%d|%d|bytes\n", NMETRICS,
           NMETRICS * (NMETRICS - 1) / 2);
  expect_rows(c,
              "SELECT count(*), sum(value)::BIGINT, any_value(unit) "
              "FROM measures WHERE name = 'test_bytes'",
              want);
  /* The schema is the view's: UTC nanosecond times, Int32 levels, Utf8. */
  result r;
  CHECK_EQ(query(c, "SELECT time, level, msg FROM log_entries LIMIT 1", &r), 0);
  CHECK_STR(r.names, "time,level,msg");
  CHECK_STR(r.formats, "tsn:+00:00,i,u");
  tl_bytes_free(&r.text);
  tl_fc_close(c);
  stop();
}

TEST(flight_info_has_the_real_schema_and_one_ticket) {
  start(NULL, false);
  tl_fc *c = client(NULL);
  Arrow__Flight__Protocol__Sql__CommandStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY__INIT;
  q.query = "SELECT 42 AS answer, 'x' AS s";
  Arrow__Flight__Protocol__FlightInfo *info = NULL;
  CHECK_EQ(tl_fc_get_flight_info(c, &q.base, &info), 0);
  CHECK_EQ(info->n_endpoint, 1);
  CHECK_EQ(info->endpoint[0]->n_location, 0);
  CHECK(info->endpoint[0]->ticket && info->endpoint[0]->ticket->ticket.len);
  CHECK_EQ(info->total_records, -1);
  CHECK_EQ(info->total_bytes, -1);
  tl_ipc_reader *rd;
  CHECK_EQ(tl_ipc_reader_new(&rd), 0);
  char err[256];
  CHECK_EQ(tl_ipc_reader_feed_stream(rd, info->schema.data, info->schema.len,
                                     NULL, NULL, err, sizeof err),
           0);
  const struct ArrowSchema *s = tl_ipc_reader_schema(rd);
  CHECK(s && s->n_children == 2);
  CHECK_STR(s->children[0]->name, "answer");
  CHECK_STR(s->children[0]->format, "i");
  CHECK_STR(s->children[1]->format, "u");
  tl_ipc_reader_free(rd);
  /* The ticket gives the rows. */
  result r;
  result_init(&r);
  tl_fc_sink sink = {on_schema, on_batch, &r};
  CHECK_EQ(tl_fc_do_get(c, info->endpoint[0]->ticket->ticket.data,
                        info->endpoint[0]->ticket->ticket.len, &sink),
           0);
  CHECK_STR(result_str(&r), "42|x\n");
  tl_bytes_free(&r.text);
  arrow__flight__protocol__flight_info__free_unpacked(info, NULL);
  tl_fc_close(c);
  stop();
}

TEST(large_result_arrives_whole_in_messages_under_4mib) {
  start(NULL, false);
  tl_fc *c = client(NULL); /* accepts messages up to 4 MiB only */
  result r;
  CHECK_EQ(
      query(c, "SELECT i, repeat('x', 100) AS s FROM range(300000) t(i)", &r),
      0);
  CHECK_EQ(r.rows, 300000);
  CHECK(r.batches >= 8); /* ~31 MB of strings: many batches */
  /* Every row, in order, once. */
  const char *p = result_str(&r);
  char line[160];
  for (int64_t i = 0; i < 300000; i += 29999) {
    int n = snprintf(line, sizeof line, "%" PRId64 "|", i);
    const char *at = strstr(p, line);
    CHECK(at && (at == p || at[-1] == '\n'));
    CHECK_EQ(strncmp(at + n, "xxxxxxxxxx", 10), 0);
  }
  tl_bytes_free(&r.text);
  tl_fc_close(c);
  stop();
}

TEST(headers_bound_the_range_and_cap_rows) {
  start(NULL, true);
  tl_fc *c = client(NULL);
  tl_fc_set_limit(c, 7);
  result r;
  CHECK_EQ(query(c, "SELECT * FROM log_entries", &r), 0);
  CHECK_EQ(r.rows, 7);
  tl_bytes_free(&r.text);
  tl_fc_set_limit(c, -1);
  /* A range in the past holds nothing; one around now holds it all. */
  CHECK_EQ(tl_fc_set_range(c, "2001-01-01T00:00:00Z", "2001-01-02T00:00:00Z"),
           0);
  expect_rows(c, "SELECT count(*) FROM log_entries", "0\n");
  CHECK_EQ(tl_fc_set_range(c, "2001-01-01T00:00:00Z", "2200-01-01T00:00:00Z"),
           0);
  char want[32];
  snprintf(want, sizeof want, "%d\n", NLOGS);
  expect_rows(c,
              "SELECT count(*) FROM log_entries WHERE target LIKE "
              "'%test_flight%'",
              want);
  CHECK_EQ(tl_fc_set_range(c, "yesterday", NULL), 0);
  expect_status(c, "SELECT 1", ST_INVALID_ARGUMENT, "query_range_begin");
  tl_fc_close(c);
  stop();
}

/* ---- prepared statements ---------------------------------------------------
 */

static void int_param(int32_t v, struct ArrowSchema *s, struct ArrowArray *a) {
  tl_ab *root = tl_ab_new();
  tl_ab *col = tl_ab_child(root, "i", "0", true);
  tl_ab_int(col, v);
  tl_ab_row(root);
  CHECK_EQ(tl_ab_finish(root, s, a), 0);
}

TEST(prepared_statement_binds_parameters) {
  start(NULL, true);
  tl_fc *c = client(NULL);
  tl_fc_prepared *p = NULL;
  CHECK_EQ(tl_fc_prepare(c,
                         "SELECT count(*) AS n FROM log_entries WHERE level "
                         "<= ? AND target LIKE '%test_flight%'",
                         &p),
           0);
  CHECK(tl_fc_prepared_handle(p).n > 0);
  CHECK(tl_fc_prepared_dataset_schema(p).n > 0);
  CHECK(tl_fc_prepared_parameter_schema(p).n > 0);
  for (int32_t level = 1; level <= 5; level += 2) {
    struct ArrowSchema s;
    struct ArrowArray a;
    int_param(level, &s, &a);
    CHECK_EQ(tl_fc_prepared_bind(c, p, &s, &a), 0);
    tl_arrow_array_release(&a);
    tl_arrow_schema_release(&s);
    result r;
    result_init(&r);
    tl_fc_sink sink = {on_schema, on_batch, &r};
    CHECK_EQ(tl_fc_prepared_execute(c, p, &sink), 0);
    char want[32];
    snprintf(want, sizeof want, "%d\n", level * NLOGS / 5);
    CHECK_STR(result_str(&r), want);
    CHECK_STR(r.names, "n");
    tl_bytes_free(&r.text);
  }
  /* Closed, it is gone. */
  uint8_t handle[64];
  tl_slice h = tl_fc_prepared_handle(p);
  CHECK(h.n <= sizeof handle);
  memcpy(handle, h.p, h.n);
  size_t hn = h.n;
  CHECK_EQ(tl_fc_prepared_close(c, p), 0);
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_QUERY__INIT;
  q.prepared_statement_handle.data = handle;
  q.prepared_statement_handle.len = hn;
  Arrow__Flight__Protocol__FlightInfo *info = NULL;
  CHECK(tl_fc_get_flight_info(c, &q.base, &info) != 0);
  CHECK_EQ(tl_fc_status(c), ST_NOT_FOUND);
  tl_fc_close(c);
  stop();
}

/* ---- metadata
 * ----------------------------------------------------------------- */

TEST(metadata_commands_answer_with_the_spec_schemas) {
  start(NULL, false);
  tl_fc *c = client(NULL);
  result r;
  result_init(&r);
  tl_fc_sink sink = {on_schema, on_batch, &r};
  CHECK_EQ(tl_fc_get_tables(c, NULL, NULL, "%", false, &sink), 0);
  CHECK_STR(r.names, "catalog_name,db_schema_name,table_name,table_type");
  CHECK(strstr(result_str(&r), "|log_entries|"));
  CHECK(strstr(result_str(&r), "|measures|"));
  tl_bytes_free(&r.text);
  result_init(&r);
  CHECK_EQ(tl_fc_get_tables(c, NULL, NULL, "meas%", true, &sink), 0);
  CHECK_EQ(r.ncols, 5);
  CHECK_EQ(r.rows, 1);
  tl_bytes_free(&r.text);
  uint32_t ids[] = {0, 3};
  result_init(&r);
  CHECK_EQ(tl_fc_get_sql_info(c, ids, 2, &sink), 0);
  CHECK_STR(r.names, "info_name,value");
  CHECK_EQ(r.rows, 2);
  CHECK(strstr(result_str(&r), "tracelake"));
  tl_bytes_free(&r.text);
  result_init(&r);
  CHECK_EQ(tl_fc_get_catalogs(c, &sink), 0);
  CHECK_STR(result_str(&r), "tracelake\n");
  tl_bytes_free(&r.text);
  tl_fc_close(c);
  stop();
}

/* ---- auth and TLS
 * --------------------------------------------------------------- */

TEST(keys_are_required_when_configured) {
  const char *keys = th_path("keys");
  const char *text = "alice k-alice-0123456789\n";
  th_write_file(keys, text, strlen(text));
  const char *extra[] = {"--api-keys", keys, NULL};
  setenv("TL_TEST_KEY", "k-alice-0123456789", 1);
  start(extra, true);
  tl_fc *c = client(NULL);
  expect_status(c, "SELECT 1", ST_UNAUTHENTICATED, NULL);
  CHECK_EQ(tl_fc_set_token(c, "wrong"), 0);
  expect_status(c, "SELECT 1", ST_UNAUTHENTICATED, NULL);
  CHECK_EQ(tl_fc_set_token(c, "k-alice-0123456789"), 0);
  expect_rows(c, "SELECT 1", "1\n");
  /* Handshake with Basic name:key gives a token that works by itself. */
  CHECK_EQ(tl_fc_set_token(c, NULL), 0);
  CHECK(tl_fc_handshake(c, "alice", "nope") != 0);
  CHECK_EQ(tl_fc_status(c), ST_UNAUTHENTICATED);
  CHECK_EQ(tl_fc_handshake(c, "alice", "k-alice-0123456789"), 0);
  CHECK(tl_fc_token(c) && strcmp(tl_fc_token(c), "k-alice-0123456789") != 0);
  char want[32];
  snprintf(want, sizeof want, "%d\n", NLOGS);
  expect_rows(c,
              "SELECT count(*) FROM log_entries WHERE target LIKE "
              "'%test_flight%'",
              want);
  tl_fc_close(c);
  stop();
}

TEST(tls_serves_flight_sql) {
  const char *cert = th_path("cert.pem"), *key = th_path("key.pem");
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
           "/CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost "
           "-keyout %s -out %s >/dev/null 2>&1",
           key, cert);
  CHECK_EQ(system(cmd), 0);
  const char *extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
  start(extra, false);
  CHECK(th_server_log_has(&srv, "grpc+tls://"));
  char url[64], err[512];
  snprintf(url, sizeof url, "grpc+tls://127.0.0.1:%u", srv.flight_port);
  tl_fc_opts o = {0};
  o.url = url;
  o.ca_file = cert;
  o.timeout_ms = 30000;
  tl_fc *c = NULL;
  if (tl_fc_connect(&c, &o, err, sizeof err))
    FAILF("connect: %s", err);
  expect_rows(c, "SELECT 'secure'", "secure\n");
  tl_fc_close(c);
  /* A plaintext client gets nowhere. */
  tl_fc *plain = client(NULL);
  tl_fc_set_timeout(plain, 3000);
  result r;
  CHECK(query(plain, "SELECT 1", &r) != 0);
  tl_bytes_free(&r.text);
  tl_fc_close(plain);
  stop();
}

/* ---- errors and cancellation
 * ------------------------------------------------------ */

TEST(bad_requests_get_clear_errors_and_the_server_keeps_serving) {
  start(NULL, false);
  tl_fc *c = client(NULL);
  expect_status(c, "SELEC 1", ST_INVALID_ARGUMENT, "Parser Error");
  expect_status(c, "SELECT * FROM nowhere", ST_INVALID_ARGUMENT, "nowhere");
  expect_status(c, "SELECT * FROM read_csv('/etc/passwd')", ST_INVALID_ARGUMENT,
                NULL);
  expect_status(c, "COPY (SELECT 1) TO '/tmp/x.csv'", ST_INVALID_ARGUMENT,
                NULL);
  expect_status(c, "SELECT error('boom')", ST_INVALID_ARGUMENT, "boom");
  /* The error names the query. */
  CHECK(strstr(tl_fc_errmsg(c), "query "));
  /* Updates are refused as read-only; unknown commands are UNIMPLEMENTED. */
  Arrow__Flight__Protocol__Sql__CommandStatementUpdate u =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_UPDATE__INIT;
  u.query = "DELETE FROM log_entries";
  Arrow__Flight__Protocol__FlightInfo *info = NULL;
  CHECK(tl_fc_get_flight_info(c, &u.base, &info) != 0);
  CHECK_EQ(tl_fc_status(c), ST_INVALID_ARGUMENT);
  CHECK(strstr(tl_fc_errmsg(c), "read-only"));
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  (void)t;
  static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0x01, 0x02};
  result r;
  result_init(&r);
  tl_fc_sink sink = {on_schema, on_batch, &r};
  CHECK(tl_fc_do_get(c, garbage, sizeof garbage, &sink) != 0);
  CHECK_EQ(tl_fc_status(c), ST_INVALID_ARGUMENT);
  tl_bytes_free(&r.text);
  CHECK(tl_fc_do_action(c, "DropEverything", NULL, 0, NULL, NULL) != 0);
  CHECK_EQ(tl_fc_status(c), ST_UNIMPLEMENTED);
  CHECK(strstr(tl_fc_errmsg(c), "DropEverything"));
  expect_rows(c, "SELECT 'still here'", "still here\n");
  tl_fc_close(c);
  stop();
}

typedef struct long_query {
  tl_fc *c;
  int rc;
  uint64_t ms;
} long_query;

static void *run_long(void *arg) {
  long_query *l = arg;
  result r;
  uint64_t t0 = th_now_ms();
  l->rc = query(l->c,
                "SELECT count(*) FROM range(100000000000) a(i) "
                "WHERE i % 7 = 3",
                &r);
  l->ms = th_now_ms() - t0;
  tl_bytes_free(&r.text);
  return NULL;
}

TEST(cancellation_and_deadlines_stop_the_work) {
  start(NULL, false);
  /* The client cancels its call. */
  long_query l = {client(NULL), 0, 0};
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, run_long, &l), 0);
  th_sleep_ms(500);
  tl_fc_cancel(l.c);
  pthread_join(t, NULL);
  CHECK_EQ(l.rc, TL_ECANCELED);
  CHECK(l.ms < 5000);
  tl_fc_close(l.c);
  /* A deadline passes. */
  tl_fc *c = client(NULL);
  tl_fc_set_timeout(c, 400);
  expect_status(c,
                "SELECT count(*) FROM range(100000000000) a(i) "
                "WHERE i % 7 = 3",
                ST_DEADLINE, NULL);
  /* The server is not busy with the abandoned work: a query answers at
   * once (two cores would be saturated otherwise). */
  tl_fc_set_timeout(c, 60000);
  uint64_t t0 = th_now_ms();
  expect_rows(c, "SELECT sum(i) FROM range(1000) t(i)", "499500\n");
  CHECK(th_now_ms() - t0 < 3000);
  tl_fc_close(c);
  stop();
}

typedef struct worker {
  int id;
  int errors;
} worker;

static void *run_worker(void *arg) {
  worker *w = arg;
  tl_fc *c = client(NULL);
  for (int i = 0; i < 20; i++) {
    char sql[128], want[64];
    int n = w->id * 1000 + i;
    snprintf(sql, sizeof sql, "SELECT sum(i) FROM range(%d) t(i)", n + 1);
    snprintf(want, sizeof want, "%lld\n", (long long)n * (n + 1) / 2);
    result r;
    if (query(c, sql, &r) || strcmp(result_str(&r), want) != 0)
      w->errors++;
    tl_bytes_free(&r.text);
  }
  tl_fc_close(c);
  return NULL;
}

TEST(concurrent_clients_all_get_their_answers) {
  start(NULL, false);
  enum { N = 16 };
  pthread_t t[N];
  worker w[N];
  for (int i = 0; i < N; i++) {
    w[i] = (worker){i, 0};
    CHECK_EQ(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
  }
  int errors = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    errors += w[i].errors;
  }
  CHECK_EQ(errors, 0);
  stop();
}

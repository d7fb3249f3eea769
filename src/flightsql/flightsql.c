/* flightsql.c - the Flight SQL commands: statements and prepared
 * statements over query sessions of the lake, metadata commands, actions
 * (prepared statements, cancellation, session options), and the results
 * streamed as Arrow IPC in FlightData messages. Transport and auth are in
 * server.c; this file sees one call at a time through tl_fcall. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/flight_common.h"
#include "flight_impl.h"
#include "meta.h"
#include "qlog.h"
#include "query/stream.h"
#include "tracelake/tracelake.h"

/* Result batches: DuckDB's chunks (2048 rows at most, often far fewer
 * after a filter) are coalesced up to these; a batch alone over
 * BATCH_BYTES is split by rows, and one that cannot get under MAX_BODY
 * (a single huge row) fails the query: no FlightData message reaches the
 * 4 MiB limit of gRPC clients. */
#define BATCH_ROWS 65536
#define BATCH_BYTES ((uint64_t)1 << 20)
#define MAX_BODY ((uint64_t)3800 << 10)
#define MAX_PENDING 256 /* chunks per batch */

#define QUERY_TTL_NS ((int64_t)60 * 1000000000)      /* GetFlightInfo→DoGet */
#define PREPARED_TTL_NS ((int64_t)3600 * 1000000000) /* idle prepared */
#define MAX_STMTS 4096
#define MAX_MSG ((size_t)16 << 20)

#define ARROW_VERSION "18.0.0"

enum { STMT_QUERY = 1, STMT_PREPARED = 2 };

/* Parameters bound by a DoPut: shared by the executions that use them, so
 * that a new DoPut replaces them for the next execution without waiting
 * for the running ones. */
typedef struct bound_params {
  _Atomic int refs;
  struct ArrowSchema schema;
  struct ArrowArray batch;
} bound_params;

static void params_put(bound_params *p) {
  if (p && atomic_fetch_sub(&p->refs, 1) == 1) {
    tl_arrow_schema_release(&p->schema);
    tl_arrow_array_release(&p->batch);
    free(p);
  }
}

/* A statement the server holds between calls: a query prepared by
 * GetFlightInfo and waiting for its DoGet, or a prepared statement. A
 * query being streamed stays listed (busy) so that it can be cancelled. */
typedef struct stmt {
  struct stmt *next;
  uint8_t id[16];
  int kind;
  char *sql;
  int64_t begin, end, limit;
  char user[64];
  int64_t expires; /* tl_mono_ns */
  int busy;        /* calls using it */
  bool unlinked;   /* off the list: freed by its last user */
  bool cancelled;
  /* STMT_QUERY, before DoGet: the session and the prepared statement. */
  tl_session *session;
  tl_query *query;
  /* While streaming: the query to interrupt. */
  tl_query *running;
  /* STMT_QUERY: the query's record, begun by GetFlightInfo and carried on
   * by the DoGet (or finished as never fetched when the statement goes). */
  tl_qrec q;
  /* STMT_PREPARED */
  struct ArrowSchema dataset, params_schema;
  struct bound_params *bound; /* the parameters from the last DoPut, or NULL */
} stmt;

struct tl_fsql {
  tl_flight_server *srv;
  tl_lake *lake;
  size_t max_sql;
  pthread_mutex_t mu;
  stmt *stmts;
  size_t nstmts;
};

/* ---- small helpers ----------------------------------------------------------
 */

static void id_text(const uint8_t id[16], char out[37]) {
  tl_uuid_format(id, out);
}

static int fail(tl_fcall *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(tl_fcall *c, grpc_status_code code, const char *fmt, ...) {
  char text[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  tl__call_finish(c, code, "%s", text);
  return -1;
}

static grpc_status_code status_of(int rc) {
  switch (rc) {
  case TL_ECANCELED:
    return GRPC_STATUS_CANCELLED;
  case TL_ENOMEM:
  case TL_ETOOBIG:
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  case TL_EUNAVAILABLE:
  case TL_EIO:
    return GRPC_STATUS_UNAVAILABLE;
  case TL_ENOTFOUND:
    return GRPC_STATUS_NOT_FOUND;
  default:
    return GRPC_STATUS_INVALID_ARGUMENT;
  }
}

static void free_schema(struct ArrowSchema *s) {
  tl_arrow_schema_release(s);
}

/* The call headers that shape a query: query_range_begin/end (RFC 3339)
 * and limit. A malformed one is named in the error. */
static int call_options(tl_fcall *c, int64_t *begin, int64_t *end,
                        int64_t *limit) {
  char v[128];
  *begin = INT64_MIN;
  *end = INT64_MAX;
  *limit = -1;
  if (tl__call_header(c, "query_range_begin", v, sizeof v) && v[0] &&
      tl_rfc3339_parse(v, begin) != 0)
    return fail(c, GRPC_STATUS_INVALID_ARGUMENT,
                "header query_range_begin: not an RFC 3339 time: '%s'", v);
  if (tl__call_header(c, "query_range_end", v, sizeof v) && v[0] &&
      tl_rfc3339_parse(v, end) != 0)
    return fail(c, GRPC_STATUS_INVALID_ARGUMENT,
                "header query_range_end: not an RFC 3339 time: '%s'", v);
  if (*begin > *end)
    return fail(c, GRPC_STATUS_INVALID_ARGUMENT,
                "headers query_range_begin and query_range_end: the range "
                "ends before it begins");
  if (tl__call_header(c, "limit", v, sizeof v) && v[0]) {
    char *e;
    long long n = strtoll(v, &e, 10);
    if (*e || n < 0 || e == v)
      return fail(c, GRPC_STATUS_INVALID_ARGUMENT,
                  "header limit: not a row count: '%s'", v);
    *limit = n;
  }
  return 0;
}

/* Unpacks the request message of a unary call. */
static ProtobufCMessage *
recv_request(tl_fcall *c, const ProtobufCMessageDescriptor *d, tl_bytes *buf) {
  int rc = tl__call_recv(c, buf, MAX_MSG);
  if (rc == TL_ECANCELED) {
    fail(c, GRPC_STATUS_CANCELLED, "the client went away");
    return NULL;
  }
  if (rc == TL_ETOOBIG) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s: the request is over %zu bytes",
         c->method, MAX_MSG);
    return NULL;
  }
  if (rc != 1) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s: no request message", c->method);
    return NULL;
  }
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, buf->len, buf->p);
  if (!m)
    fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s: malformed %s", c->method,
         d->short_name);
  return m;
}

/* Sends one protobuf message (a unary reply or one of a stream). */
static int send_msg(tl_fcall *c, const ProtobufCMessage *m) {
  tl_bytes b;
  tl_bytes_init(&b, MAX_MSG);
  int rc = tl_flight_msg_pack(m, &b);
  if (rc == 0)
    rc = tl__call_send(c, b.p, b.len, NULL, 0);
  tl_bytes_free(&b);
  return rc;
}

/* ---- statements held between calls
 * ------------------------------------------- */

static void stmt_free(stmt *s) {
  if (!s)
    return;
  tl_qrec_finish(&s->q, TL_QST_DISCONNECTED,
                 "the result was never fetched (no DoGet)");
  tl_query_close(s->query);
  tl_session_close(s->session);
  free_schema(&s->dataset);
  free_schema(&s->params_schema);
  params_put(s->bound);
  free(s->sql);
  free(s);
}

static int stmt_add(tl_fsql *fs, stmt *s) {
  pthread_mutex_lock(&fs->mu);
  if (fs->nstmts >= MAX_STMTS) {
    pthread_mutex_unlock(&fs->mu);
    return TL_ETOOBIG;
  }
  s->next = fs->stmts;
  fs->stmts = s;
  fs->nstmts++;
  pthread_mutex_unlock(&fs->mu);
  return 0;
}

/* Finds a statement of `user` and marks it busy; NULL if unknown. A
 * statement is only ever seen by the user (key) that made it. */
static stmt *stmt_get(tl_fsql *fs, const uint8_t id[16], int kind,
                      const char *user) {
  pthread_mutex_lock(&fs->mu);
  stmt *s = fs->stmts;
  while (s && !(s->kind == kind && memcmp(s->id, id, 16) == 0 &&
                strcmp(s->user, user) == 0))
    s = s->next;
  if (s)
    s->busy++;
  pthread_mutex_unlock(&fs->mu);
  return s;
}

static void stmt_unlink_locked(tl_fsql *fs, stmt *s) {
  for (stmt **p = &fs->stmts; *p; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      fs->nstmts--;
      s->unlinked = true;
      return;
    }
}

/* Ends a use; with `remove`, the statement goes once unused. */
static void stmt_put(tl_fsql *fs, stmt *s, bool remove) {
  pthread_mutex_lock(&fs->mu);
  s->busy--;
  s->running = NULL;
  if (remove && !s->unlinked)
    stmt_unlink_locked(fs, s);
  else if (s->kind == STMT_PREPARED)
    s->expires = (int64_t)tl_mono_ns() + PREPARED_TTL_NS;
  bool gone = s->unlinked && s->busy == 0;
  pthread_mutex_unlock(&fs->mu);
  if (gone)
    stmt_free(s);
}

void tl__fsql_tick(tl_fsql *fs, int64_t now) {
  stmt *dead = NULL;
  pthread_mutex_lock(&fs->mu);
  for (stmt **p = &fs->stmts; *p;) {
    stmt *s = *p;
    if (s->busy == 0 && s->expires < now) {
      *p = s->next;
      fs->nstmts--;
      s->unlinked = true;
      s->next = dead;
      dead = s;
    } else {
      p = &s->next;
    }
  }
  pthread_mutex_unlock(&fs->mu);
  while (dead) {
    stmt *n = dead->next;
    stmt_free(dead);
    dead = n;
  }
}

/* Interrupts a statement: one being streamed stops, one waiting for its
 * DoGet will fail with CANCELLED. Returns the Flight CancelStatus. */
static int stmt_cancel(tl_fsql *fs, const uint8_t id[16], const char *user) {
  int status =
      ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_NOT_CANCELLABLE;
  pthread_mutex_lock(&fs->mu);
  for (stmt *s = fs->stmts; s; s = s->next) {
    if (s->kind != STMT_QUERY || memcmp(s->id, id, 16) != 0 ||
        strcmp(s->user, user) != 0)
      continue;
    s->cancelled = true;
    if (s->running) {
      tl_query_interrupt(s->running);
      status = ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_CANCELLING;
    } else {
      status = ARROW__FLIGHT__PROTOCOL__CANCEL_STATUS__CANCEL_STATUS_CANCELLED;
    }
  }
  pthread_mutex_unlock(&fs->mu);
  return status;
}

/* ---- handles and tickets
 * ------------------------------------------------------- A statement ticket
 * carries everything needed to run the query again
 * ("TLQ1", id, range, limit, SQL), so a DoGet still works after the
 * prepared query expired or on another query node. A prepared statement's
 * handle is "TLP1" and its id. */

#define QUERY_MAGIC "TLQ1"
#define PREPARED_MAGIC "TLP1"
#define QUERY_HANDLE_FIXED (4 + 16 + 24)

static int query_handle(const stmt *s, tl_bytes *out) {
  uint8_t fixed[QUERY_HANDLE_FIXED];
  memcpy(fixed, QUERY_MAGIC, 4);
  memcpy(fixed + 4, s->id, 16);
  tl_put_u64(fixed + 20, (uint64_t)s->begin);
  tl_put_u64(fixed + 28, (uint64_t)s->end);
  tl_put_u64(fixed + 36, (uint64_t)s->limit);
  int rc = tl_bytes_append(out, fixed, sizeof fixed);
  return rc ? rc : tl_bytes_append(out, s->sql, strlen(s->sql));
}

/* The ticket of a statement: Any(TicketStatementQuery{handle}). */
static int statement_ticket(const stmt *s, tl_bytes *out) {
  tl_bytes h;
  tl_bytes_init(&h, out->max);
  int rc = query_handle(s, &h);
  if (rc == 0) {
    Arrow__Flight__Protocol__Sql__TicketStatementQuery t =
        ARROW__FLIGHT__PROTOCOL__SQL__TICKET_STATEMENT_QUERY__INIT;
    t.statement_handle.data = h.p;
    t.statement_handle.len = h.len;
    rc = tl_flight_any_pack(&t.base, out);
  }
  tl_bytes_free(&h);
  return rc;
}

typedef struct query_ticket {
  uint8_t id[16];
  int64_t begin, end, limit;
  char *sql; /* owned */
} query_ticket;

static int parse_query_handle(const uint8_t *p, size_t n, size_t max_sql,
                              query_ticket *t) {
  if (n < QUERY_HANDLE_FIXED || memcmp(p, QUERY_MAGIC, 4) != 0 ||
      n - QUERY_HANDLE_FIXED > max_sql)
    return TL_EMALFORMED;
  memcpy(t->id, p + 4, 16);
  t->begin = (int64_t)tl_get_u64(p + 20);
  t->end = (int64_t)tl_get_u64(p + 28);
  t->limit = (int64_t)tl_get_u64(p + 36);
  size_t len = n - QUERY_HANDLE_FIXED;
  if (memchr(p + QUERY_HANDLE_FIXED, 0, len) || t->begin > t->end)
    return TL_EMALFORMED;
  t->sql = malloc(len + 1);
  if (!t->sql)
    return TL_ENOMEM;
  memcpy(t->sql, p + QUERY_HANDLE_FIXED, len);
  t->sql[len] = 0;
  return 0;
}

static void prepared_handle(const uint8_t id[16], uint8_t out[20]) {
  memcpy(out, PREPARED_MAGIC, 4);
  memcpy(out + 4, id, 16);
}

static bool parse_prepared_handle(ProtobufCBinaryData h, uint8_t id[16]) {
  if (h.len != 20 || memcmp(h.data, PREPARED_MAGIC, 4) != 0)
    return false;
  memcpy(id, h.data + 4, 16);
  return true;
}

/* ---- streaming results
 * -------------------------------------------------------- */

typedef struct sender {
  tl_fcall *c;
  tl_qrec *q;     /* may be NULL (metadata replies) */
  uint64_t bytes; /* of the messages sent */
} sender;

/* One IPC message as one FlightData; the body goes without a copy. */
static int emit(void *ctx, const uint8_t *header, size_t header_len,
                uint8_t *body, size_t body_len, bool *take_body) {
  sender *s = ctx;
  tl_flight_data_parts parts = {.header = {header, header_len},
                                .body_len = body_len};
  size_t cap = tl_flight_data_prefix_size(&parts), n;
  uint8_t stackbuf[1024];
  uint8_t *buf = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
  if (!buf)
    return TL_ENOMEM;
  int rc = tl_flight_data_prefix(&parts, buf, cap, &n);
  if (rc == 0) {
    *take_body = true;
    rc = tl__call_send(s->c, buf, n, body_len ? body : NULL, body_len);
    if (!body_len)
      free(body);
    s->bytes += n + body_len;
  }
  if (buf != stackbuf)
    free(buf);
  return rc;
}

/* Chunks waiting to become one record batch. */
typedef struct coalescer {
  const struct ArrowSchema *schema;
  tl_ipc_writer *w;
  sender *snd;
  struct ArrowArray arrays[MAX_PENDING];
  size_t narrays;
  tl_ipc_slice slices[MAX_PENDING];
  size_t nslices;
  int64_t rows;
  uint64_t bytes;
} coalescer;

/* Sends what is pending as one batch; the last array stays when
 * `keep_last` (it still has rows to slice). */
static int co_flush(coalescer *co, bool keep_last, char *err, size_t errcap) {
  int rc = 0;
  if (co->nslices && co->w) {
    uint64_t before = co->snd->bytes;
    rc = tl_ipc_writer_batch(co->w, co->slices, co->nslices, emit, co->snd, err,
                             errcap);
    if (rc == 0 && co->snd->q)
      tl_qrec_batch(co->snd->q, co->rows, co->snd->bytes - before);
  }
  size_t keep = keep_last && co->narrays ? 1 : 0;
  for (size_t i = 0; i + keep < co->narrays; i++)
    tl_arrow_array_release(&co->arrays[i]);
  if (keep) {
    co->arrays[0] = co->arrays[co->narrays - 1];
    co->narrays = 1;
  } else {
    co->narrays = 0;
  }
  co->nslices = 0;
  co->rows = 0;
  co->bytes = 0;
  return rc;
}

/* Adds one chunk (owned), flushing batches as they fill. */
static int co_add(coalescer *co, struct ArrowArray *a, bool first, char *err,
                  size_t errcap) {
  int rc;
  if (co->narrays == MAX_PENDING && (rc = co_flush(co, false, err, errcap)))
    return rc;
  co->arrays[co->narrays++] = *a;
  memset(a, 0, sizeof *a);
  int64_t len = co->arrays[co->narrays - 1].length;
  int64_t off = 0;
  while (off < len) {
    const struct ArrowArray *cur = &co->arrays[co->narrays - 1];
    int64_t take = len - off;
    if (take > BATCH_ROWS - co->rows)
      take = BATCH_ROWS - co->rows;
    uint64_t size = tl_ipc_body_size(co->schema, cur, off, take);
    if (co->bytes + size > BATCH_BYTES && co->nslices) {
      if ((rc = co_flush(co, true, err, errcap)))
        return rc;
      continue;
    }
    while (size > BATCH_BYTES && take > 1) {
      take /= 2;
      size = tl_ipc_body_size(co->schema, cur, off, take);
    }
    if (size > MAX_BODY) {
      snprintf(err, errcap,
               "a row of the result takes %" PRIu64 " bytes, over the %" PRIu64
               " bytes a Flight message may hold",
               size, MAX_BODY);
      return TL_ETOOBIG;
    }
    co->slices[co->nslices++] = (tl_ipc_slice){cur, off, take};
    co->rows += take;
    co->bytes += size;
    off += take;
    /* The first batch goes at once: a client sees rows early. */
    if (first || co->rows >= BATCH_ROWS || co->bytes >= BATCH_BYTES ||
        co->nslices == MAX_PENDING) {
      if ((rc = co_flush(co, off < len, err, errcap)))
        return rc;
      first = false;
    }
  }
  return 0;
}

static bool call_gone(void *ctx) {
  return tl__call_gone(ctx);
}

/* A result on its way to the client: the IPC writer and the coalescer. */
typedef struct qstream {
  struct ArrowSchema schema;
  tl_ipc_writer *w;
  sender snd;
  coalescer co;
  bool first;
} qstream;

static void qstream_close(qstream *st) {
  st->co.nslices = 0;
  co_flush(&st->co, false, NULL, 0);
  tl_ipc_writer_free(st->w);
  free_schema(&st->schema);
  free(st);
}

/* Sends the Schema message of `q`'s result. */
static int qstream_open(qstream **out, tl_fcall *c, tl_query *q, tl_qrec *rec,
                        char *err, size_t errcap) {
  qstream *st = calloc(1, sizeof *st);
  if (!st)
    return TL_ENOMEM;
  st->snd = (sender){c, rec, 0};
  st->first = true;
  int rc = tl_query_schema(q, &st->schema, err, errcap);
  if (rc == 0)
    rc = tl_ipc_writer_new(&st->w, &st->schema, err, errcap);
  if (rc == 0)
    rc = tl_ipc_writer_schema(st->w, emit, &st->snd);
  if (rc == 0 && rec && rec->active)
    rec->bytes += st->snd.bytes;
  st->co.schema = &st->schema;
  st->co.w = st->w;
  st->co.snd = &st->snd;
  if (rc) {
    qstream_close(st);
    return rc;
  }
  *out = st;
  return 0;
}

/* Streams the rows of an executed query. Returns 0 or a TL_E* code with
 * err set (TL_ECANCELED when the client went away). */
static int qstream_rows(qstream *st, tl_query *q, char *err, size_t errcap) {
  int rc;
  for (;;) {
    if (tl__call_gone(st->snd.c)) {
      tl_query_interrupt(q);
      return TL_ECANCELED;
    }
    struct ArrowArray a = {0};
    rc = tl_query_next(q, &a, err, errcap);
    if (rc <= 0)
      break;
    rc = co_add(&st->co, &a, st->first, err, errcap);
    tl_arrow_array_release(&a);
    st->first = false;
    if (rc)
      return rc;
  }
  return rc == 0 ? co_flush(&st->co, false, err, errcap) : rc;
}

/* Streams a reply made in memory (metadata commands). */
static int stream_batch(tl_fcall *c, const struct ArrowSchema *schema,
                        const struct ArrowArray *batch, char *err,
                        size_t errcap) {
  tl_ipc_writer *w = NULL;
  sender snd = {c, NULL, 0};
  int rc = tl_ipc_writer_new(&w, schema, err, errcap);
  if (rc == 0)
    rc = tl_ipc_writer_schema(w, emit, &snd);
  if (rc == 0 && batch->length > 0) {
    tl_ipc_slice sl = {batch, 0, batch->length};
    rc = tl_ipc_writer_batch(w, &sl, 1, emit, &snd, err, errcap);
  }
  tl_ipc_writer_free(w);
  return rc;
}

/* ---- metadata commands
 * --------------------------------------------------------- */

static const char *opt_str(int is_set, const char *v) {
  return is_set ? v : NULL;
}

/* Builds a metadata command's reply (batch NULL: only its schema). */
static int meta_reply(tl_fsql *fs, tl_fcall *c, tl_flight_cmd kind,
                      const ProtobufCMessage *m, struct ArrowSchema *schema,
                      struct ArrowArray *batch, char *err, size_t errcap) {
  static const tl_meta_server server = {"tracelake", TL_VERSION_STRING,
                                        ARROW_VERSION};
  switch (kind) {
  case TL_FLIGHT_CMD_GET_CATALOGS:
    return tl_meta_catalogs(schema, batch);
  case TL_FLIGHT_CMD_GET_DB_SCHEMAS: {
    const Arrow__Flight__Protocol__Sql__CommandGetDbSchemas *q =
        (const void *)m;
    return tl_meta_db_schemas(
        opt_str(q->_catalog_case, q->catalog),
        opt_str(q->_db_schema_filter_pattern_case, q->db_schema_filter_pattern),
        schema, batch);
  }
  case TL_FLIGHT_CMD_GET_TABLES: {
    const Arrow__Flight__Protocol__Sql__CommandGetTables *q = (const void *)m;
    tl_session *s = NULL;
    int rc = 0;
    if (batch) {
      int64_t b, e, l;
      if (call_options(c, &b, &e, &l))
        return TL_EINVAL; /* answered */
      rc = tl_session_open(&s, fs->lake, b, e, err, errcap);
    }
    if (rc == 0)
      rc = tl_meta_tables(s, opt_str(q->_catalog_case, q->catalog),
                          opt_str(q->_db_schema_filter_pattern_case,
                                  q->db_schema_filter_pattern),
                          opt_str(q->_table_name_filter_pattern_case,
                                  q->table_name_filter_pattern),
                          (const char *const *)q->table_types, q->n_table_types,
                          q->include_schema, schema, batch, err, errcap);
    tl_session_close(s);
    return rc;
  }
  case TL_FLIGHT_CMD_GET_TABLE_TYPES:
    return tl_meta_table_types(schema, batch);
  case TL_FLIGHT_CMD_GET_PRIMARY_KEYS:
    return tl_meta_keys(TL_META_PRIMARY_KEYS, schema, batch);
  case TL_FLIGHT_CMD_GET_EXPORTED_KEYS:
  case TL_FLIGHT_CMD_GET_IMPORTED_KEYS:
  case TL_FLIGHT_CMD_GET_CROSS_REFERENCE:
    return tl_meta_keys(TL_META_FOREIGN_KEYS, schema, batch);
  case TL_FLIGHT_CMD_GET_SQL_INFO: {
    const Arrow__Flight__Protocol__Sql__CommandGetSqlInfo *q = (const void *)m;
    return tl_meta_sql_info(fs->lake, &server, q->info, q->n_info, schema,
                            batch);
  }
  case TL_FLIGHT_CMD_GET_XDBC_TYPE_INFO: {
    const Arrow__Flight__Protocol__Sql__CommandGetXdbcTypeInfo *q =
        (const void *)m;
    return tl_meta_xdbc_type_info(q->_data_type_case != 0, q->data_type, schema,
                                  batch);
  }
  default:
    snprintf(err, errcap, "not a metadata command");
    return TL_EINVAL;
  }
}

static bool is_meta(tl_flight_cmd k) {
  switch (k) {
  case TL_FLIGHT_CMD_GET_CATALOGS:
  case TL_FLIGHT_CMD_GET_DB_SCHEMAS:
  case TL_FLIGHT_CMD_GET_TABLES:
  case TL_FLIGHT_CMD_GET_TABLE_TYPES:
  case TL_FLIGHT_CMD_GET_PRIMARY_KEYS:
  case TL_FLIGHT_CMD_GET_EXPORTED_KEYS:
  case TL_FLIGHT_CMD_GET_IMPORTED_KEYS:
  case TL_FLIGHT_CMD_GET_CROSS_REFERENCE:
  case TL_FLIGHT_CMD_GET_SQL_INFO:
  case TL_FLIGHT_CMD_GET_XDBC_TYPE_INFO:
    return true;
  default:
    return false;
  }
}

/* Unpacks the Flight SQL command (or ticket) in p[0, n). An empty or
 * malformed one is answered INVALID_ARGUMENT with the reason (return
 * TL_EINVAL); a well-formed Any naming no Flight SQL message gives
 * TL_ENOTFOUND (the caller refuses it as unknown). SQL that lost bytes in
 * decoding (an embedded NUL: C strings stop there) is refused rather than
 * run cut short. */
static int unpack_command(tl_fcall *c, const uint8_t *p, size_t n,
                          tl_flight_cmd *kind, ProtobufCMessage **m,
                          tl_flight_any *any) {
  memset(any, 0, sizeof *any);
  if (n == 0) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "%s: no command: expected a Flight SQL command packed in an Any",
         c->method);
    return TL_EINVAL;
  }
  int rc = tl_flight_any_unpack(p, n, kind, m, any);
  if (rc == TL_ENOTFOUND && any->type_url.n == 0) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "%s: the command is not a packed Any (no type_url)", c->method);
    return TL_EINVAL;
  }
  if (rc == TL_ENOTFOUND)
    return rc;
  if (rc) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "%s: the command is not a valid packed Flight SQL command: %s",
         c->method, tl_strerror(rc));
    return TL_EINVAL;
  }
  if ((*kind == TL_FLIGHT_CMD_STATEMENT_QUERY ||
       *kind == TL_FLIGHT_CMD_CREATE_PREPARED_STATEMENT_REQUEST) &&
      protobuf_c_message_get_packed_size(*m) < any->value.n &&
      memchr(any->value.p, 0, any->value.n)) {
    protobuf_c_message_free_unpacked(*m, NULL);
    *m = NULL;
    fail(c, GRPC_STATUS_INVALID_ARGUMENT, "%s: the SQL contains a NUL byte",
         c->method);
    return TL_EINVAL;
  }
  return 0;
}

/* Refusals shared by GetFlightInfo, GetSchema, DoPut and DoGet. */
static int refuse_command(tl_fcall *c, tl_flight_cmd kind, tl_flight_any *any) {
  switch (kind) {
  case TL_FLIGHT_CMD_STATEMENT_UPDATE:
  case TL_FLIGHT_CMD_PREPARED_STATEMENT_UPDATE:
  case TL_FLIGHT_CMD_STATEMENT_INGEST:
    return fail(c, GRPC_STATUS_INVALID_ARGUMENT,
                "%s: tracelake is read-only: %s is refused", c->method,
                tl_flight_cmd_name(kind));
  case TL_FLIGHT_CMD_STATEMENT_SUBSTRAIT_PLAN:
    return fail(c, GRPC_STATUS_UNIMPLEMENTED,
                "%s: Substrait plans are not supported; send SQL", c->method);
  case TL_FLIGHT_CMD_UNKNOWN:
    return fail(c, GRPC_STATUS_UNIMPLEMENTED, "%s: unknown command %.*s",
                c->method, any ? (int)any->type_url.n : 0,
                any ? (const char *)any->type_url.p : "");
  default:
    return fail(c, GRPC_STATUS_UNIMPLEMENTED, "%s: %s is not supported here",
                c->method, tl_flight_cmd_name(kind));
  }
}

/* ---- GetFlightInfo / GetSchema / PollFlightInfo
 * ------------------------------- */

/* Prepares a statement for a later DoGet and describes it. */
static int info_statement(tl_fsql *fs, tl_fcall *c, const char *sql,
                          struct ArrowSchema *schema, tl_bytes *ticket,
                          bool keep) {
  char err[2048];
  stmt *s = calloc(1, sizeof *s);
  if (!s)
    return fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  s->kind = STMT_QUERY;
  tl_uuid_v4(s->id);
  char id[37];
  id_text(s->id, id);
  int rc;
  if (strlen(sql) > fs->max_sql) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
         "query %s: the SQL is over %zu bytes", id, fs->max_sql);
    goto fail;
  }
  if (call_options(c, &s->begin, &s->end, &s->limit))
    goto fail;
  s->sql = strdup(sql);
  snprintf(s->user, sizeof s->user, "%s", c->user);
  if (!s->sql) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto fail;
  }
  tl_qrec *q = &s->q;
  if (keep) { /* a query begins (GetSchema only describes one) */
    tl_qrec_begin(q, id, c->arrival_ticks, c->arrival_wall, c->user, c->peer);
    q->sql = s->sql;
    q->range_begin = s->begin;
    q->range_end = s->end;
    q->limit = s->limit;
  }
  /* A phase that fails ends with the query (tl_qrec_finish): only
   * completed phases have duration metrics. */
  tl_qrec_phase_begin(q, TL_QPH_CONTEXT);
  rc = tl_session_open_for(&s->session, fs->lake, s->begin, s->end, sql, err,
                           sizeof err);
  if (rc == 0) {
    tl_qrec_phase_end(q, TL_QPH_CONTEXT);
    tl_qrec_phase_begin(q, TL_QPH_PLANNING);
    rc = tl_query_prepare(&s->query, s->session, sql, err, sizeof err);
    if (rc == 0)
      rc = tl_query_schema(s->query, schema, err, sizeof err);
    if (rc == 0)
      tl_qrec_phase_end(q, TL_QPH_PLANNING);
  }
  if (rc) {
    fail(c, status_of(rc), "query %s: %s", id, err);
    tl_qrec_finish(q, TL_QST_ERROR, err);
    goto fail;
  }
  if (ticket && (rc = statement_ticket(s, ticket))) {
    fail(c, status_of(rc), "query %s: %s", id, tl_strerror(rc));
    goto fail;
  }
  if (!keep) {
    stmt_free(s);
    return 0;
  }
  s->expires = (int64_t)tl_mono_ns() + QUERY_TTL_NS;
  if (stmt_add(fs, s) != 0) {
    /* Too many waiting: the DoGet will prepare it again from the ticket
     * (and record the query again). */
    tl_qrec_finish(q, TL_QST_ERROR,
                   "too many statements waiting for their DoGet: "
                   "prepared again by the DoGet");
    stmt_free(s);
  }
  return 0;
fail:
  free_schema(schema);
  stmt_free(s);
  return -1;
}

/* The result schema of a prepared statement whose columns DuckDB only
 * types once its parameters are bound (`SELECT ? AS v`): the statement is
 * run with its parameters under LIMIT 0. Falls back to the schema of its
 * creation. */
static bound_params *params_get(tl_fsql *fs, stmt *s) {
  pthread_mutex_lock(&fs->mu);
  bound_params *p = s->bound;
  if (p)
    atomic_fetch_add(&p->refs, 1);
  pthread_mutex_unlock(&fs->mu);
  return p;
}

static int bound_schema(tl_fsql *fs, stmt *s, struct ArrowSchema *out) {
  char err[512];
  bound_params *p = params_get(fs, s);
  size_t n = strlen(s->sql) + 64;
  char *sql = malloc(n);
  tl_session *session = NULL;
  tl_query *q = NULL;
  int rc = TL_ENOMEM;
  if (sql) {
    snprintf(sql, n, "SELECT * FROM (%s) LIMIT 0", s->sql);
    rc = tl_session_open_for(&session, fs->lake, s->begin, s->end, sql, err,
                             sizeof err);
  }
  if (rc == 0)
    rc = tl_query_prepare(&q, session, sql, err, sizeof err);
  if (rc == 0)
    rc = p ? tl_query_bind(q, &p->schema, &p->batch, 0, err, sizeof err)
           : TL_EINVAL;
  if (rc == 0)
    rc = tl_query_execute(q, 0, NULL, NULL, err, sizeof err);
  if (rc == 0)
    rc = tl_query_schema(q, out, err, sizeof err);
  tl_query_close(q);
  tl_session_close(session);
  free(sql);
  params_put(p);
  return rc == 0 ? 0 : tl_arrow_schema_copy(&s->dataset, out);
}

/* Fills schema (and the ticket) for any supported command. Returns 0, or
 * -1 when the call was answered with an error. */
static int describe(tl_fsql *fs, tl_fcall *c, const uint8_t *cmd, size_t n,
                    struct ArrowSchema *schema, tl_bytes *ticket, bool keep) {
  tl_flight_cmd kind;
  ProtobufCMessage *m = NULL;
  tl_flight_any any;
  int rc = unpack_command(c, cmd, n, &kind, &m, &any);
  if (rc == TL_ENOTFOUND)
    return refuse_command(c, TL_FLIGHT_CMD_UNKNOWN, &any);
  if (rc)
    return -1; /* answered */
  char err[2048];
  int out = 0;
  if (kind == TL_FLIGHT_CMD_STATEMENT_QUERY) {
    const Arrow__Flight__Protocol__Sql__CommandStatementQuery *q = (void *)m;
    out = info_statement(fs, c, q->query, schema, ticket, keep);
  } else if (kind == TL_FLIGHT_CMD_PREPARED_STATEMENT_QUERY) {
    const Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery *q =
        (void *)m;
    uint8_t id[16];
    stmt *s = parse_prepared_handle(q->prepared_statement_handle, id)
                  ? stmt_get(fs, id, STMT_PREPARED, c->user)
                  : NULL;
    if (!s) {
      out = fail(c, GRPC_STATUS_NOT_FOUND,
                 "%s: unknown or closed prepared statement", c->method);
    } else {
      rc = s->dataset.n_children == 0 && s->bound
               ? bound_schema(fs, s, schema)
               : tl_arrow_schema_copy(&s->dataset, schema);
      stmt_put(fs, s, false);
      if (rc == 0 && ticket)
        rc = tl_flight_any_pack(m, ticket);
      if (rc)
        out = fail(c, status_of(rc), "%s: %s", c->method, tl_strerror(rc));
    }
  } else if (is_meta(kind)) {
    rc = meta_reply(fs, c, kind, m, schema, NULL, err, sizeof err);
    if (rc == 0 && ticket)
      rc = tl_bytes_append(ticket, cmd, n); /* the command is the ticket */
    if (rc)
      out = fail(c, status_of(rc), "%s: %s: %s", c->method,
                 tl_flight_cmd_name(kind), err);
  } else {
    out = refuse_command(c, kind, &any);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return out;
}

/* Reads the FlightDescriptor of GetFlightInfo / GetSchema / PollFlightInfo. */
static Arrow__Flight__Protocol__FlightDescriptor *
recv_descriptor(tl_fcall *c, tl_bytes *buf) {
  Arrow__Flight__Protocol__FlightDescriptor *d = (void *)recv_request(
      c, &arrow__flight__protocol__flight_descriptor__descriptor, buf);
  if (d &&
      d->type !=
          ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "%s: tracelake serves commands (descriptor type CMD), not paths",
         c->method);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    return NULL;
  }
  return d;
}

/* Builds the FlightInfo of a descriptor into `out` (serialized). */
static int flight_info(tl_fsql *fs, tl_fcall *c,
                       Arrow__Flight__Protocol__FlightDescriptor *d,
                       tl_bytes *out) {
  struct ArrowSchema schema = {0};
  tl_bytes ticket, schema_bytes;
  tl_bytes_init(&ticket, MAX_MSG);
  tl_bytes_init(&schema_bytes, MAX_MSG);
  int rc = describe(fs, c, d->cmd.data, d->cmd.len, &schema, &ticket, true);
  if (rc)
    goto out;
  char err[256];
  if ((rc = tl_ipc_schema_bytes(&schema, &schema_bytes, err, sizeof err))) {
    rc = fail(c, GRPC_STATUS_INTERNAL, "%s: %s", c->method, err);
    goto out;
  }
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = ticket.p;
  t.ticket.len = ticket.len;
  Arrow__Flight__Protocol__FlightEndpoint ep =
      ARROW__FLIGHT__PROTOCOL__FLIGHT_ENDPOINT__INIT;
  ep.ticket = &t;
  Arrow__Flight__Protocol__FlightEndpoint *eps[1] = {&ep};
  Arrow__Flight__Protocol__FlightInfo info =
      ARROW__FLIGHT__PROTOCOL__FLIGHT_INFO__INIT;
  info.schema.data = schema_bytes.p;
  info.schema.len = schema_bytes.len;
  info.flight_descriptor = d;
  info.n_endpoint = 1;
  info.endpoint = eps;
  info.total_records = -1;
  info.total_bytes = -1;
  if ((rc = tl_flight_msg_pack(&info.base, out)))
    rc = fail(c, status_of(rc), "%s: %s", c->method, tl_strerror(rc));
out:
  free_schema(&schema);
  tl_bytes_free(&ticket);
  tl_bytes_free(&schema_bytes);
  return rc;
}

static void serve_get_flight_info(tl_fsql *fs, tl_fcall *c, bool poll) {
  tl_bytes buf, out;
  tl_bytes_init(&buf, MAX_MSG);
  tl_bytes_init(&out, MAX_MSG);
  Arrow__Flight__Protocol__FlightDescriptor *d = recv_descriptor(c, &buf);
  if (!d || flight_info(fs, c, d, &out) != 0)
    goto out;
  if (poll) {
    /* The query is ready at once: a complete PollInfo (no descriptor to
     * poll again, progress 1). */
    Arrow__Flight__Protocol__FlightInfo *info =
        (void *)protobuf_c_message_unpack(
            &arrow__flight__protocol__flight_info__descriptor, NULL, out.len,
            out.p);
    Arrow__Flight__Protocol__PollInfo p =
        ARROW__FLIGHT__PROTOCOL__POLL_INFO__INIT;
    p.info = info;
    p._progress_case = ARROW__FLIGHT__PROTOCOL__POLL_INFO___PROGRESS_PROGRESS;
    p.progress = 1.0;
    if (send_msg(c, &p.base) == 0)
      tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
    if (info)
      protobuf_c_message_free_unpacked(&info->base, NULL);
  } else if (tl__call_send(c, out.p, out.len, NULL, 0) == 0) {
    tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
  }
out:
  if (d)
    protobuf_c_message_free_unpacked(&d->base, NULL);
  tl_bytes_free(&buf);
  tl_bytes_free(&out);
}

static void serve_get_schema(tl_fsql *fs, tl_fcall *c) {
  tl_bytes buf, bytes;
  tl_bytes_init(&buf, MAX_MSG);
  tl_bytes_init(&bytes, MAX_MSG);
  struct ArrowSchema schema = {0};
  Arrow__Flight__Protocol__FlightDescriptor *d = recv_descriptor(c, &buf);
  if (!d || describe(fs, c, d->cmd.data, d->cmd.len, &schema, NULL, false))
    goto out;
  char err[256];
  if (tl_ipc_schema_bytes(&schema, &bytes, err, sizeof err)) {
    fail(c, GRPC_STATUS_INTERNAL, "GetSchema: %s", err);
    goto out;
  }
  Arrow__Flight__Protocol__SchemaResult r =
      ARROW__FLIGHT__PROTOCOL__SCHEMA_RESULT__INIT;
  r.schema.data = bytes.p;
  r.schema.len = bytes.len;
  if (send_msg(c, &r.base) == 0)
    tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
out:
  free_schema(&schema);
  if (d)
    protobuf_c_message_free_unpacked(&d->base, NULL);
  tl_bytes_free(&buf);
  tl_bytes_free(&bytes);
}

/* ---- DoGet
 * ------------------------------------------------------------------------ */

/* How a query that stopped with TL_ECANCELED ended, and why. */
static int gone_status(tl_fsql *fs, tl_fcall *c, stmt *s, const char **why) {
  bool cancelled = false;
  if (s) {
    pthread_mutex_lock(&fs->mu);
    cancelled = s->cancelled;
    pthread_mutex_unlock(&fs->mu);
  }
  if (cancelled) {
    *why = "cancelled by CancelFlightInfo";
    return TL_QST_CANCELLED;
  }
  if (tl__call_stopping(c)) {
    *why = "the server is stopping";
    return TL_QST_CANCELLED;
  }
  if (tl__call_deadline_passed(c)) {
    *why = "the call's deadline passed";
    return TL_QST_CANCELLED;
  }
  *why = "the client cancelled the call or went away";
  return TL_QST_DISCONNECTED;
}

/* Phases a query through its own session and statement, when GetFlightInfo
 * did not (a DoGet of a ticket this server did not prepare, or a prepared
 * statement's execution). Returns 0, or answers the call and finishes the
 * record. */
static int open_and_plan(tl_fsql *fs, tl_fcall *c, tl_qrec *rec,
                         const char *sql, int64_t begin, int64_t end,
                         tl_session **session, tl_query **q) {
  char err[2048];
  tl_qrec_phase_begin(rec, TL_QPH_CONTEXT);
  int rc =
      tl_session_open_for(session, fs->lake, begin, end, sql, err, sizeof err);
  if (rc == 0) {
    tl_qrec_phase_end(rec, TL_QPH_CONTEXT);
    tl_qrec_phase_begin(rec, TL_QPH_PLANNING);
    rc = tl_query_prepare(q, *session, sql, err, sizeof err);
    if (rc == 0)
      tl_qrec_phase_end(rec, TL_QPH_PLANNING);
  }
  if (rc) {
    fail(c, status_of(rc), "query %s: %s", rec->id, err);
    tl_qrec_finish(rec, TL_QST_ERROR, err);
  }
  return rc;
}

/* Runs a query to the end of its stream, answers the call and finishes
 * its record. `s` (may be NULL) is the listed statement, so that
 * CancelFlightInfo can reach it. */
static void run_query(tl_fsql *fs, tl_fcall *c, stmt *s, tl_query *q,
                      const struct ArrowSchema *params_schema,
                      const struct ArrowArray *params, int64_t limit,
                      tl_qrec *rec) {
  char err[2048] = "";
  int rc = 0;
  qstream *st = NULL;
  if (s) {
    pthread_mutex_lock(&fs->mu);
    s->running = q;
    bool cancelled = s->cancelled;
    pthread_mutex_unlock(&fs->mu);
    if (cancelled)
      rc = TL_ECANCELED;
  }
  /* A batch of parameter rows runs the statement once per row, the
   * results streamed one after the other. The schema goes once, taken
   * after the first execution (DuckDB may only know it then, e.g. for
   * `SELECT ? + 1`). */
  int64_t rows = params && params->length > 0 ? params->length : 1;
  for (int64_t r = 0; r < rows && rc == 0; r++) {
    if (params &&
        (rc = tl_query_bind(q, params_schema, params, r, err, sizeof err)))
      break;
    tl_qrec_phase_begin(rec, TL_QPH_EXECUTION);
    rc = tl_query_execute(q, limit, call_gone, c, err, sizeof err);
    if (rc)
      break;
    if (!st) {
      tl_qrec_phase_end(rec, TL_QPH_EXECUTION); /* the stream is ready */
      tl_qrec_phase_begin(rec, TL_QPH_STREAM);
      if ((rc = qstream_open(&st, c, q, rec, err, sizeof err)))
        break;
    }
    rc = qstream_rows(st, q, err, sizeof err);
  }
  if (st)
    qstream_close(st);
  int status = TL_QST_OK;
  const char *why = NULL;
  if (rc == 0) {
    /* Drained: the OK status is the last thing the client gets. */
    if (tl__call_finish(c, GRPC_STATUS_OK, "%s", "") != 0) {
      status = gone_status(fs, c, s, &why);
    }
  } else if (rc == TL_ECANCELED) {
    status = gone_status(fs, c, s, &why);
    tl__call_finish(c, GRPC_STATUS_CANCELLED, "query %s: %s", rec->id, why);
  } else {
    status = TL_QST_ERROR;
    why = err[0] ? err : tl_strerror(rc);
    tl__call_finish(c, status_of(rc), "query %s: %s", rec->id, why);
  }
  tl_qrec_finish(rec, status, why);
}

static void doget_statement(tl_fsql *fs, tl_fcall *c, ProtobufCBinaryData h) {
  query_ticket t = {0};
  tl_qrec rec;
  memset(&rec, 0, sizeof rec);
  int rc = parse_query_handle(h.data, h.len, fs->max_sql, &t);
  if (rc) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT, "DoGet: malformed statement ticket");
    return;
  }
  stmt *s = stmt_get(fs, t.id, STMT_QUERY, c->user);
  tl_session *session = NULL;
  tl_query *q = NULL;
  if (s) {
    /* The query GetFlightInfo prepared: take it, and its record. */
    pthread_mutex_lock(&fs->mu);
    session = s->session;
    q = s->query;
    s->session = NULL;
    s->query = NULL;
    if (q) {
      rec = s->q;
      s->q.active = false;
    }
    pthread_mutex_unlock(&fs->mu);
  }
  if (!q) {
    char id[37];
    id_text(t.id, id);
    tl_qrec_begin(&rec, id, c->arrival_ticks, c->arrival_wall, c->user,
                  c->peer);
    rec.sql = t.sql;
    rec.range_begin = t.begin;
    rec.range_end = t.end;
    rec.limit = t.limit;
    if (open_and_plan(fs, c, &rec, t.sql, t.begin, t.end, &session, &q))
      goto out;
  }
  run_query(fs, c, s, q, NULL, NULL, t.limit, &rec);
out:
  if (s)
    stmt_put(fs, s, true);
  tl_query_close(q);
  tl_session_close(session);
  free(t.sql);
}

static void doget_prepared(tl_fsql *fs, tl_fcall *c, ProtobufCBinaryData h) {
  uint8_t id[16];
  stmt *s = parse_prepared_handle(h, id)
                ? stmt_get(fs, id, STMT_PREPARED, c->user)
                : NULL;
  if (!s) {
    fail(c, GRPC_STATUS_NOT_FOUND,
         "DoGet: unknown or closed prepared statement");
    return;
  }
  int64_t begin, end, limit;
  if (call_options(c, &begin, &end, &limit)) {
    stmt_put(fs, s, false);
    return;
  }
  /* The call's headers win over those of the statement's creation. */
  if (begin == INT64_MIN && end == INT64_MAX) {
    begin = s->begin;
    end = s->end;
  }
  if (limit < 0)
    limit = s->limit;
  /* Each execution is a query of its own, with a fresh session: it sees
   * what was acknowledged before it started, and never a file merged away
   * since the statement was prepared. */
  uint8_t qid[16];
  char qtext[37];
  tl_uuid_v4(qid);
  id_text(qid, qtext);
  tl_qrec rec;
  tl_qrec_begin(&rec, qtext, c->arrival_ticks, c->arrival_wall, c->user,
                c->peer);
  rec.sql = s->sql;
  rec.range_begin = begin;
  rec.range_end = end;
  rec.limit = limit;
  rec.prepared = true;
  tl_session *session = NULL;
  tl_query *q = NULL;
  bound_params *p = params_get(fs, s);
  if (open_and_plan(fs, c, &rec, s->sql, begin, end, &session, &q) == 0)
    run_query(fs, c, NULL, q, p ? &p->schema : NULL, p ? &p->batch : NULL,
              limit, &rec);
  params_put(p);
  tl_query_close(q);
  tl_session_close(session);
  stmt_put(fs, s, false);
}

static void serve_do_get(tl_fsql *fs, tl_fcall *c) {
  tl_bytes buf;
  tl_bytes_init(&buf, MAX_MSG);
  Arrow__Flight__Protocol__Ticket *t = (void *)recv_request(
      c, &arrow__flight__protocol__ticket__descriptor, &buf);
  if (!t)
    goto out;
  tl_flight_cmd kind;
  ProtobufCMessage *m = NULL;
  tl_flight_any any;
  int rc = unpack_command(c, t->ticket.data, t->ticket.len, &kind, &m, &any);
  if (rc == TL_ENOTFOUND) {
    refuse_command(c, TL_FLIGHT_CMD_UNKNOWN, &any);
  } else if (rc) {
    /* answered */
  } else if (kind == TL_FLIGHT_CMD_TICKET_STATEMENT_QUERY) {
    doget_statement(fs, c,
                    ((Arrow__Flight__Protocol__Sql__TicketStatementQuery *)m)
                        ->statement_handle);
  } else if (kind == TL_FLIGHT_CMD_PREPARED_STATEMENT_QUERY) {
    doget_prepared(
        fs, c,
        ((Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery *)m)
            ->prepared_statement_handle);
  } else if (is_meta(kind)) {
    struct ArrowSchema schema = {0};
    struct ArrowArray batch = {0};
    char err[2048];
    rc = meta_reply(fs, c, kind, m, &schema, &batch, err, sizeof err);
    if (rc == 0)
      rc = stream_batch(c, &schema, &batch, err, sizeof err);
    if (rc == 0)
      tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
    else if (!c->finished)
      fail(c, status_of(rc), "DoGet: %s: %s", tl_flight_cmd_name(kind), err);
    tl_arrow_array_release(&batch);
    free_schema(&schema);
  } else {
    refuse_command(c, kind, &any);
  }
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
  protobuf_c_message_free_unpacked(&t->base, NULL);
out:
  tl_bytes_free(&buf);
}

/* ---- DoPut: parameters of a prepared statement
 * ---------------------------------- */

static void serve_do_put(tl_fsql *fs, tl_fcall *c) {
  tl_bytes buf;
  tl_bytes_init(&buf, MAX_MSG);
  tl_ipc_reader *r = NULL;
  ProtobufCMessage *m = NULL;
  stmt *s = NULL;
  char err[512];
  int rc = tl__call_recv(c, &buf, MAX_MSG);
  tl_flight_data_view v;
  if (rc != 1 || tl_flight_data_decode(buf.p, buf.len, &v) != 0 ||
      !v.has_descriptor) {
    fail(c,
         rc == TL_ECANCELED ? GRPC_STATUS_CANCELLED
                            : GRPC_STATUS_INVALID_ARGUMENT,
         "DoPut: the first message must be a FlightData with a descriptor");
    goto out;
  }
  Arrow__Flight__Protocol__FlightDescriptor *d =
      (void *)protobuf_c_message_unpack(
          &arrow__flight__protocol__flight_descriptor__descriptor, NULL,
          v.descriptor.n, v.descriptor.p);
  if (!d) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT, "DoPut: malformed FlightDescriptor");
    goto out;
  }
  tl_flight_cmd kind;
  tl_flight_any any;
  if (d->type !=
      ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD) {
    protobuf_c_message_free_unpacked(&d->base, NULL);
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "DoPut: tracelake takes commands (descriptor type CMD), not paths");
    goto out;
  }
  rc = unpack_command(c, d->cmd.data, d->cmd.len, &kind, &m, &any);
  protobuf_c_message_free_unpacked(&d->base, NULL);
  if (rc == TL_ENOTFOUND ||
      (rc == 0 && kind != TL_FLIGHT_CMD_PREPARED_STATEMENT_QUERY)) {
    refuse_command(c, rc ? TL_FLIGHT_CMD_UNKNOWN : kind, &any);
    goto out;
  }
  if (rc)
    goto out; /* answered */
  uint8_t id[16];
  const Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery *q =
      (const void *)m;
  s = parse_prepared_handle(q->prepared_statement_handle, id)
          ? stmt_get(fs, id, STMT_PREPARED, c->user)
          : NULL;
  if (!s) {
    fail(c, GRPC_STATUS_NOT_FOUND,
         "DoPut: unknown or closed prepared statement");
    goto out;
  }
  /* The parameters: an IPC stream in the FlightData messages. */
  if (tl_ipc_reader_new(&r) != 0) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  struct ArrowArray last = {0};
  for (;;) {
    if (v.header.n) {
      int k;
      if ((rc = tl_ipc_reader_feed(r, v.header.p, v.header.n, v.body.p,
                                   v.body.n, &k, err, sizeof err))) {
        fail(c, GRPC_STATUS_INVALID_ARGUMENT, "DoPut: parameters: %s", err);
        goto out_last;
      }
      if (k == TL_IPC_BATCH) {
        tl_arrow_array_release(&last);
        tl_ipc_reader_take(r, &last);
      }
    }
    rc = tl__call_recv(c, &buf, MAX_MSG);
    if (rc == 0)
      break;
    if (rc < 0 || tl_flight_data_decode(buf.p, buf.len, &v) != 0) {
      fail(c,
           rc == TL_ECANCELED ? GRPC_STATUS_CANCELLED
                              : GRPC_STATUS_INVALID_ARGUMENT,
           "DoPut: malformed FlightData");
      goto out_last;
    }
  }
  const struct ArrowSchema *ps = tl_ipc_reader_schema(r);
  if (!ps || !last.release) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "DoPut: no parameter batch in the stream");
    goto out_last;
  }
  if (ps->n_children != s->params_schema.n_children) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "DoPut: the statement has %" PRId64 " parameters, the batch %" PRId64
         " columns",
         s->params_schema.n_children, ps->n_children);
    goto out_last;
  }
  bound_params *np = calloc(1, sizeof *np);
  if (!np || tl_arrow_schema_copy(ps, &np->schema) != 0) {
    free(np);
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto out_last;
  }
  atomic_init(&np->refs, 1);
  np->batch = last;
  memset(&last, 0, sizeof last);
  pthread_mutex_lock(&fs->mu);
  bound_params *old = s->bound;
  s->bound = np;
  pthread_mutex_unlock(&fs->mu);
  params_put(old);
  /* PutResult.app_metadata = DoPutPreparedStatementResult (same handle). */
  {
    uint8_t handle[20];
    prepared_handle(s->id, handle);
    Arrow__Flight__Protocol__Sql__DoPutPreparedStatementResult res =
        ARROW__FLIGHT__PROTOCOL__SQL__DO_PUT_PREPARED_STATEMENT_RESULT__INIT;
    res._prepared_statement_handle_case =
        ARROW__FLIGHT__PROTOCOL__SQL__DO_PUT_PREPARED_STATEMENT_RESULT___PREPARED_STATEMENT_HANDLE_PREPARED_STATEMENT_HANDLE;
    res.prepared_statement_handle.data = handle;
    res.prepared_statement_handle.len = sizeof handle;
    tl_bytes meta;
    tl_bytes_init(&meta, 4096);
    if (tl_flight_msg_pack(&res.base, &meta) == 0) {
      Arrow__Flight__Protocol__PutResult pr =
          ARROW__FLIGHT__PROTOCOL__PUT_RESULT__INIT;
      pr.app_metadata.data = meta.p;
      pr.app_metadata.len = meta.len;
      if (send_msg(c, &pr.base) == 0)
        tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
    }
    tl_bytes_free(&meta);
  }
out_last:
  tl_arrow_array_release(&last);
out:
  if (s)
    stmt_put(fs, s, false);
  tl_ipc_reader_free(r);
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
  tl_bytes_free(&buf);
}

/* ---- DoAction / ListActions
 * --------------------------------------------------------- */

static const struct {
  const char *type, *description;
} actions[] = {
    {"CreatePreparedStatement",
     "Prepares a SQL query: ActionCreatePreparedStatementRequest"},
    {"ClosePreparedStatement",
     "Closes a prepared statement: ActionClosePreparedStatementRequest"},
    {"CancelFlightInfo", "Cancels a query: CancelFlightInfoRequest"},
    {"CancelQuery", "Cancels a query (deprecated): ActionCancelQueryRequest"},
    {"SetSessionOptions", "Accepts session options (catalog, schema)"},
    {"GetSessionOptions", "Returns the session options"},
    {"CloseSession", "Closes the session (sessions hold no state)"},
};

static int send_result(tl_fcall *c, const ProtobufCMessage *body, bool any) {
  tl_bytes b;
  tl_bytes_init(&b, MAX_MSG);
  int rc = any ? tl_flight_any_pack(body, &b) : tl_flight_msg_pack(body, &b);
  if (rc == 0) {
    Arrow__Flight__Protocol__Result r = ARROW__FLIGHT__PROTOCOL__RESULT__INIT;
    r.body.data = b.p;
    r.body.len = b.len;
    rc = send_msg(c, &r.base);
  }
  tl_bytes_free(&b);
  return rc;
}

static void action_create_prepared(tl_fsql *fs, tl_fcall *c,
                                   const Arrow__Flight__Protocol__Action *a) {
  ProtobufCMessage *m = NULL;
  char err[2048];
  tl_flight_cmd kind;
  tl_flight_any any;
  int urc = unpack_command(c, a->body.data, a->body.len, &kind, &m, &any);
  if (urc == TL_EINVAL)
    return; /* answered */
  if (urc != 0 || kind != TL_FLIGHT_CMD_CREATE_PREPARED_STATEMENT_REQUEST) {
    if (m)
      protobuf_c_message_free_unpacked(m, NULL);
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "CreatePreparedStatement: the body must be a packed "
         "ActionCreatePreparedStatementRequest");
    return;
  }
  const Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementRequest *rq =
      (const void *)m;
  stmt *s = calloc(1, sizeof *s);
  tl_session *session = NULL;
  tl_query *q = NULL;
  tl_bytes ds, ps;
  tl_bytes_init(&ds, MAX_MSG);
  tl_bytes_init(&ps, MAX_MSG);
  int rc;
  if (!s) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  s->kind = STMT_PREPARED;
  tl_uuid_v4(s->id);
  char id[37];
  id_text(s->id, id);
  if (rq->_transaction_id_case) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "CreatePreparedStatement: transactions are not supported");
    goto out;
  }
  if (strlen(rq->query) > fs->max_sql) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
         "query %s: the SQL is over %zu bytes", id, fs->max_sql);
    goto out;
  }
  if (call_options(c, &s->begin, &s->end, &s->limit))
    goto out;
  s->sql = strdup(rq->query);
  snprintf(s->user, sizeof s->user, "%s", c->user);
  if (!s->sql) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  if ((rc = tl_session_open(&session, fs->lake, s->begin, s->end, err,
                            sizeof err)) ||
      (rc = tl_query_prepare(&q, session, s->sql, err, sizeof err)) ||
      (rc = tl_query_schema(q, &s->dataset, err, sizeof err)) ||
      (rc = tl_query_parameter_schema(q, &s->params_schema, err, sizeof err)) ||
      (rc = tl_ipc_schema_bytes(&s->dataset, &ds, err, sizeof err)) ||
      (rc = tl_ipc_schema_bytes(&s->params_schema, &ps, err, sizeof err))) {
    fail(c, status_of(rc), "query %s: %s", id, err);
    goto out;
  }
  s->expires = (int64_t)tl_mono_ns() + PREPARED_TTL_NS;
  uint8_t handle[20];
  prepared_handle(s->id, handle);
  if (stmt_add(fs, s) != 0) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
         "CreatePreparedStatement: too many open prepared statements");
    goto out;
  }
  s = NULL; /* listed */
  Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementResult res =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CREATE_PREPARED_STATEMENT_RESULT__INIT;
  res.prepared_statement_handle.data = handle;
  res.prepared_statement_handle.len = sizeof handle;
  res.dataset_schema.data = ds.p;
  res.dataset_schema.len = ds.len;
  res.parameter_schema.data = ps.p;
  res.parameter_schema.len = ps.len;
  if (send_result(c, &res.base, true) == 0)
    tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
out:
  tl_query_close(q);
  tl_session_close(session);
  stmt_free(s);
  tl_bytes_free(&ds);
  tl_bytes_free(&ps);
  if (m)
    protobuf_c_message_free_unpacked(m, NULL);
}

static void action_close_prepared(tl_fsql *fs, tl_fcall *c,
                                  const Arrow__Flight__Protocol__Action *a) {
  ProtobufCMessage *m = NULL;
  if (tl_flight_any_unpack_as(a->body.data, a->body.len,
                              TL_FLIGHT_CMD_CLOSE_PREPARED_STATEMENT_REQUEST,
                              &m) != 0) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "ClosePreparedStatement: the body must be a packed "
         "ActionClosePreparedStatementRequest");
    return;
  }
  uint8_t id[16];
  const Arrow__Flight__Protocol__Sql__ActionClosePreparedStatementRequest *rq =
      (const void *)m;
  stmt *s = parse_prepared_handle(rq->prepared_statement_handle, id)
                ? stmt_get(fs, id, STMT_PREPARED, c->user)
                : NULL;
  if (s) {
    stmt_put(fs, s, true);
    tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
  } else {
    fail(c, GRPC_STATUS_NOT_FOUND,
         "ClosePreparedStatement: unknown or closed prepared statement");
  }
  protobuf_c_message_free_unpacked(m, NULL);
}

/* The statement id in a FlightInfo's first ticket, if it is ours. */
static bool info_statement_id(const Arrow__Flight__Protocol__FlightInfo *info,
                              uint8_t id[16]) {
  if (!info || info->n_endpoint < 1 || !info->endpoint[0]->ticket)
    return false;
  const ProtobufCBinaryData *t = &info->endpoint[0]->ticket->ticket;
  ProtobufCMessage *m = NULL;
  bool ok = false;
  if (tl_flight_any_unpack_as(t->data, t->len,
                              TL_FLIGHT_CMD_TICKET_STATEMENT_QUERY, &m) == 0) {
    ProtobufCBinaryData h =
        ((Arrow__Flight__Protocol__Sql__TicketStatementQuery *)m)
            ->statement_handle;
    if (h.len >= QUERY_HANDLE_FIXED && memcmp(h.data, QUERY_MAGIC, 4) == 0) {
      memcpy(id, h.data + 4, 16);
      ok = true;
    }
    protobuf_c_message_free_unpacked(m, NULL);
  }
  return ok;
}

static void action_cancel(tl_fsql *fs, tl_fcall *c,
                          const Arrow__Flight__Protocol__Action *a,
                          bool deprecated) {
  Arrow__Flight__Protocol__FlightInfo *info = NULL;
  ProtobufCMessage *outer = NULL;
  if (deprecated) {
    /* ActionCancelQueryRequest { bytes info = 1 } packed in an Any. */
    if (tl_flight_any_unpack_as(a->body.data, a->body.len,
                                TL_FLIGHT_CMD_CANCEL_QUERY_REQUEST,
                                &outer) == 0) {
      ProtobufCBinaryData b =
          ((Arrow__Flight__Protocol__Sql__ActionCancelQueryRequest *)outer)
              ->info;
      info = (void *)protobuf_c_message_unpack(
          &arrow__flight__protocol__flight_info__descriptor, NULL, b.len,
          b.data);
    }
  } else {
    Arrow__Flight__Protocol__CancelFlightInfoRequest *rq =
        (void *)protobuf_c_message_unpack(
            &arrow__flight__protocol__cancel_flight_info_request__descriptor,
            NULL, a->body.len, a->body.data);
    outer = rq ? &rq->base : NULL;
    info = rq ? rq->info : NULL;
  }
  uint8_t id[16];
  if (!info || !info_statement_id(info, id)) {
    fail(c, GRPC_STATUS_INVALID_ARGUMENT,
         "%s: the body must hold the FlightInfo of a statement",
         deprecated ? "CancelQuery" : "CancelFlightInfo");
    goto out;
  }
  int status = stmt_cancel(fs, id, c->user);
  int rc;
  if (deprecated) {
    Arrow__Flight__Protocol__Sql__ActionCancelQueryResult r =
        ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CANCEL_QUERY_RESULT__INIT;
    r.result =
        (Arrow__Flight__Protocol__Sql__ActionCancelQueryResult__CancelResult)
            status; /* the two enums share their values */
    rc = send_result(c, &r.base, true);
  } else {
    Arrow__Flight__Protocol__CancelFlightInfoResult r =
        ARROW__FLIGHT__PROTOCOL__CANCEL_FLIGHT_INFO_RESULT__INIT;
    r.status = (Arrow__Flight__Protocol__CancelStatus)status;
    rc = send_result(c, &r.base, false);
  }
  if (rc == 0)
    tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
out:
  if (deprecated && info)
    protobuf_c_message_free_unpacked(&info->base, NULL);
  if (outer)
    protobuf_c_message_free_unpacked(outer, NULL);
}

/* SetSessionOptions: tracelake has one catalog and one schema, so
 * "catalog" and "schema" are accepted when they name them (clients that
 * pass a catalog connect), anything else is refused option by option. */
static int set_session_options(tl_fcall *c,
                               const Arrow__Flight__Protocol__Action *a) {
  Arrow__Flight__Protocol__SetSessionOptionsRequest *rq =
      (void *)protobuf_c_message_unpack(
          &arrow__flight__protocol__set_session_options_request__descriptor,
          NULL, a->body.len, a->body.data);
  if (!rq)
    return fail(c, GRPC_STATUS_INVALID_ARGUMENT,
                "SetSessionOptions: malformed SetSessionOptionsRequest");
  size_t n = rq->n_session_options;
  Arrow__Flight__Protocol__SetSessionOptionsResult__ErrorsEntry *entries =
      calloc(n ? n : 1, sizeof *entries);
  Arrow__Flight__Protocol__SetSessionOptionsResult__ErrorsEntry **ptrs =
      calloc(n ? n : 1, sizeof *ptrs);
  Arrow__Flight__Protocol__SetSessionOptionsResult__Error *errs =
      calloc(n ? n : 1, sizeof *errs);
  int rc = -1;
  if (!entries || !ptrs || !errs) {
    fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  Arrow__Flight__Protocol__SetSessionOptionsResult r =
      ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__INIT;
  for (size_t i = 0; i < n; i++) {
    const char *key = rq->session_options[i]->key;
    const Arrow__Flight__Protocol__SessionOptionValue *v =
        rq->session_options[i]->value;
    const char *want = strcmp(key, "catalog") == 0  ? TL_META_CATALOG
                       : strcmp(key, "schema") == 0 ? TL_META_SCHEMA
                                                    : NULL;
    int e = 0;
    if (!want)
      e = ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERROR_VALUE__INVALID_NAME;
    else if (
        v && v->option_value_case != 0 &&
        !(v->option_value_case ==
              ARROW__FLIGHT__PROTOCOL__SESSION_OPTION_VALUE__OPTION_VALUE_STRING_VALUE &&
          strcmp(v->string_value, want) == 0))
      e = ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERROR_VALUE__INVALID_VALUE;
    if (!e)
      continue;
    Arrow__Flight__Protocol__SetSessionOptionsResult__Error ev =
        ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERROR__INIT;
    ev.value = (Arrow__Flight__Protocol__SetSessionOptionsResult__ErrorValue)e;
    errs[r.n_errors] = ev;
    Arrow__Flight__Protocol__SetSessionOptionsResult__ErrorsEntry en =
        ARROW__FLIGHT__PROTOCOL__SET_SESSION_OPTIONS_RESULT__ERRORS_ENTRY__INIT;
    en.key = (char *)key;
    en.value = &errs[r.n_errors];
    entries[r.n_errors] = en;
    ptrs[r.n_errors] = &entries[r.n_errors];
    r.n_errors++;
  }
  r.errors = ptrs;
  rc = send_result(c, &r.base, false);
out:
  free(entries);
  free(ptrs);
  free(errs);
  protobuf_c_message_free_unpacked(&rq->base, NULL);
  return rc;
}

static void action_session(tl_fcall *c,
                           const Arrow__Flight__Protocol__Action *a,
                           const char *type) {
  int rc = 0;
  if (strcmp(type, "SetSessionOptions") == 0) {
    if ((rc = set_session_options(c, a)) != 0)
      return; /* answered, or the client went away */
  } else if (strcmp(type, "GetSessionOptions") == 0) {
    Arrow__Flight__Protocol__SessionOptionValue v[2] = {
        ARROW__FLIGHT__PROTOCOL__SESSION_OPTION_VALUE__INIT,
        ARROW__FLIGHT__PROTOCOL__SESSION_OPTION_VALUE__INIT};
    Arrow__Flight__Protocol__GetSessionOptionsResult__SessionOptionsEntry e[2] = {
        ARROW__FLIGHT__PROTOCOL__GET_SESSION_OPTIONS_RESULT__SESSION_OPTIONS_ENTRY__INIT,
        ARROW__FLIGHT__PROTOCOL__GET_SESSION_OPTIONS_RESULT__SESSION_OPTIONS_ENTRY__INIT};
    Arrow__Flight__Protocol__GetSessionOptionsResult__SessionOptionsEntry
        *ep[2] = {&e[0], &e[1]};
    const char *keys[2] = {"catalog", "schema"};
    const char *vals[2] = {TL_META_CATALOG, TL_META_SCHEMA};
    for (int i = 0; i < 2; i++) {
      v[i].option_value_case =
          ARROW__FLIGHT__PROTOCOL__SESSION_OPTION_VALUE__OPTION_VALUE_STRING_VALUE;
      v[i].string_value = (char *)vals[i];
      e[i].key = (char *)keys[i];
      e[i].value = &v[i];
    }
    Arrow__Flight__Protocol__GetSessionOptionsResult r =
        ARROW__FLIGHT__PROTOCOL__GET_SESSION_OPTIONS_RESULT__INIT;
    r.n_session_options = 2;
    r.session_options = ep;
    rc = send_result(c, &r.base, false);
  } else {
    Arrow__Flight__Protocol__CloseSessionResult r =
        ARROW__FLIGHT__PROTOCOL__CLOSE_SESSION_RESULT__INIT;
    r.status = ARROW__FLIGHT__PROTOCOL__CLOSE_SESSION_RESULT__STATUS__CLOSED;
    rc = send_result(c, &r.base, false);
  }
  if (rc == 0)
    tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
}

static void serve_do_action(tl_fsql *fs, tl_fcall *c) {
  tl_bytes buf;
  tl_bytes_init(&buf, MAX_MSG);
  Arrow__Flight__Protocol__Action *a = (void *)recv_request(
      c, &arrow__flight__protocol__action__descriptor, &buf);
  if (!a)
    goto out;
  const char *t = a->type;
  if (strcmp(t, "CreatePreparedStatement") == 0)
    action_create_prepared(fs, c, a);
  else if (strcmp(t, "ClosePreparedStatement") == 0)
    action_close_prepared(fs, c, a);
  else if (strcmp(t, "CancelFlightInfo") == 0)
    action_cancel(fs, c, a, false);
  else if (strcmp(t, "CancelQuery") == 0)
    action_cancel(fs, c, a, true);
  else if (strcmp(t, "SetSessionOptions") == 0 ||
           strcmp(t, "GetSessionOptions") == 0 ||
           strcmp(t, "CloseSession") == 0)
    action_session(c, a, t);
  else if (strcmp(t, "BeginTransaction") == 0 ||
           strcmp(t, "EndTransaction") == 0 ||
           strcmp(t, "BeginSavepoint") == 0 || strcmp(t, "EndSavepoint") == 0)
    fail(c, GRPC_STATUS_UNIMPLEMENTED,
         "DoAction %s: transactions are not supported (tracelake is "
         "read-only)",
         t);
  else
    fail(c, GRPC_STATUS_UNIMPLEMENTED, "DoAction: unknown action '%.100s'", t);
  protobuf_c_message_free_unpacked(&a->base, NULL);
out:
  tl_bytes_free(&buf);
}

static void serve_list_actions(tl_fcall *c) {
  tl_bytes buf;
  tl_bytes_init(&buf, MAX_MSG);
  int rc = tl__call_recv(c, &buf, MAX_MSG); /* Empty */
  tl_bytes_free(&buf);
  if (rc < 0) {
    fail(c, GRPC_STATUS_CANCELLED, "the client went away");
    return;
  }
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
    Arrow__Flight__Protocol__ActionType t =
        ARROW__FLIGHT__PROTOCOL__ACTION_TYPE__INIT;
    t.type = (char *)actions[i].type;
    t.description = (char *)actions[i].description;
    if (send_msg(c, &t.base) != 0)
      return;
  }
  tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
}

/* ---- dispatch
 * --------------------------------------------------------------------- */

void tl__fsql_serve(tl_fcall *c) {
  tl_fsql *fs = c->fs;
  const char *m = c->method;
  if (strcmp(m, "GetFlightInfo") == 0)
    serve_get_flight_info(fs, c, false);
  else if (strcmp(m, "PollFlightInfo") == 0)
    serve_get_flight_info(fs, c, true);
  else if (strcmp(m, "DoGet") == 0)
    serve_do_get(fs, c);
  else if (strcmp(m, "GetSchema") == 0)
    serve_get_schema(fs, c);
  else if (strcmp(m, "DoAction") == 0)
    serve_do_action(fs, c);
  else if (strcmp(m, "ListActions") == 0)
    serve_list_actions(c);
  else if (strcmp(m, "DoPut") == 0)
    serve_do_put(fs, c);
  else if (strcmp(m, "ListFlights") == 0)
    tl__call_finish(c, GRPC_STATUS_OK, "%s", ""); /* no named flights */
  else
    fail(c, GRPC_STATUS_UNIMPLEMENTED, "%s is not implemented by tracelake", m);
}

int tl__fsql_new(tl_fsql **out, tl_flight_server *srv, tl_lake *lake,
                 size_t max_sql_bytes) {
  tl_fsql *fs = calloc(1, sizeof *fs);
  if (!fs)
    return TL_ENOMEM;
  fs->srv = srv;
  fs->lake = lake;
  fs->max_sql = max_sql_bytes;
  pthread_mutex_init(&fs->mu, NULL);
  *out = fs;
  return 0;
}

void tl__fsql_free(tl_fsql *fs) {
  if (!fs)
    return;
  while (fs->stmts) {
    stmt *s = fs->stmts;
    fs->stmts = s->next;
    stmt_free(s);
  }
  pthread_mutex_destroy(&fs->mu);
  free(fs);
}

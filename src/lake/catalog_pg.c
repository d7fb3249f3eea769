/* catalog_pg.c - the PostgreSQL catalog backend, for several servers that
 * share one catalog. Same tables and behaviour as the SQLite backend; every
 * value travels as a bound parameter in binary form. A small pool of
 * connections serves concurrent requests, and a connection that broke (the
 * server restarted, the network dropped) is reset on its next use. */
#include <endian.h>
#include <libpq-fe.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_impl.h"

#define POOL 4
#define MAXPARAMS 16

/* pg_advisory_xact_lock key that serializes migrations: "tracelak". */
#define MIGRATION_LOCK_KEY 0x74726163656c616bLL

/* Type OIDs of the parameters we bind (from pg_type.h, stable). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

enum {
  ST_INS_PROCESS,
  ST_SAME_PROCESS_RAW,
  ST_HAS_PROCESS,
  ST_INS_STREAM,
  ST_SAME_STREAM_RAW,
  ST_STREAM_PROCESS,
  ST_INS_BLOCK,
  ST_GET_BLOCK,
  ST_SCHEMA_VERSION,
  ST_COUNTS,
  ST_RETIRE,
  ST__COUNT
};

#define BLOCK_COLUMNS                                                          \
  "block_id, stream_id, process_id, begin_time, begin_ticks, end_time, "       \
  "end_ticks, nb_objects, payload_size, blob_size, blob_crc, insert_time"

static const struct {
  const char *sql;
  int nparams;
  Oid types[MAXPARAMS];
} stmts[ST__COUNT] = {
    [ST_INS_PROCESS] = {"INSERT INTO processes (process_id, exe, username, "
                        "realname, computer, distro, cpu_brand, "
                        "tsc_frequency, start_time, start_ticks, "
                        "parent_process_id, properties, insert_time, "
                        "last_update_time, raw) VALUES ($1,$2,$3,$4,$5,$6,$7,"
                        "$8,$9,$10,$11,$12,$13,$14,$15) "
                        "ON CONFLICT (process_id) DO NOTHING",
                        15,
                        {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT,
                         OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_INT8,
                         OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_BYTEA}},
    [ST_SAME_PROCESS_RAW] = {"SELECT raw = $2 FROM processes "
                             "WHERE process_id = $1",
                             2,
                             {OID_TEXT, OID_BYTEA}},
    [ST_HAS_PROCESS] = {"SELECT 1 FROM processes WHERE process_id = $1",
                        1,
                        {OID_TEXT}},
    [ST_INS_STREAM] = {"INSERT INTO streams (stream_id, process_id, tags, "
                       "properties, insert_time, last_update_time, raw) "
                       "VALUES ($1,$2,$3,$4,$5,$6,$7) "
                       "ON CONFLICT (stream_id) DO NOTHING",
                       7,
                       {OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8,
                        OID_INT8, OID_BYTEA}},
    [ST_SAME_STREAM_RAW] = {"SELECT raw = $2 FROM streams "
                            "WHERE stream_id = $1",
                            2,
                            {OID_TEXT, OID_BYTEA}},
    [ST_STREAM_PROCESS] = {"SELECT process_id FROM streams "
                           "WHERE stream_id = $1",
                           1,
                           {OID_TEXT}},
    [ST_INS_BLOCK] = {"INSERT INTO blocks (" BLOCK_COLUMNS ") VALUES ($1,$2,"
                      "$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) "
                      "ON CONFLICT (block_id) DO NOTHING",
                      12,
                      {OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8, OID_INT8,
                       OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_INT8,
                       OID_INT8, OID_INT8}},
    [ST_GET_BLOCK] = {"SELECT " BLOCK_COLUMNS " FROM blocks "
                      "WHERE block_id = $1",
                      1,
                      {OID_TEXT}},
    [ST_SCHEMA_VERSION] = {"SELECT max(version)::bigint FROM schema_version",
                           0,
                           {0}},
    [ST_COUNTS] = {"SELECT (SELECT count(*) FROM processes), "
                   "(SELECT count(*) FROM streams), count(*), "
                   "coalesce(sum(nb_objects), 0)::bigint, "
                   "coalesce(sum(blob_size), 0)::bigint FROM blocks",
                   0,
                   {0}},
    /* Bounded, and safe with several retirers: rows another transaction
     * holds are skipped, not waited for. */
    [ST_RETIRE] = {"WITH gone AS (DELETE FROM blocks WHERE block_id IN ("
                   "SELECT block_id FROM blocks WHERE end_time < $1 "
                   "ORDER BY end_time LIMIT $2 FOR UPDATE SKIP LOCKED) "
                   "RETURNING " BLOCK_COLUMNS ") "
                   "SELECT " BLOCK_COLUMNS " FROM gone ORDER BY end_time",
                   2,
                   {OID_INT8, OID_INT8}},
};

/* Migrations: numbered, applied in order inside one transaction that holds
 * the migration advisory lock. Same tables and index names as SQLite; the
 * 64-bit integers are BIGINT (u64 values keep their int64 bit pattern).
 * blocks.seq stands in for SQLite's rowid: the insert order. */
static const char *migrations[] = {
    /* 1: processes, streams, blocks */
    "CREATE TABLE IF NOT EXISTS processes ("
    " process_id TEXT PRIMARY KEY, exe TEXT NOT NULL, username TEXT NOT NULL,"
    " realname TEXT NOT NULL, computer TEXT NOT NULL, distro TEXT NOT NULL,"
    " cpu_brand TEXT NOT NULL, tsc_frequency BIGINT NOT NULL,"
    " start_time BIGINT NOT NULL, start_ticks BIGINT NOT NULL,"
    " parent_process_id TEXT, properties TEXT NOT NULL,"
    " insert_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL,"
    " raw BYTEA NOT NULL);"
    "CREATE TABLE IF NOT EXISTS streams ("
    " stream_id TEXT PRIMARY KEY,"
    " process_id TEXT NOT NULL REFERENCES processes(process_id),"
    " tags TEXT NOT NULL, properties TEXT NOT NULL,"
    " insert_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL,"
    " raw BYTEA NOT NULL);"
    "CREATE INDEX IF NOT EXISTS streams_process ON streams(process_id);"
    "CREATE TABLE IF NOT EXISTS blocks ("
    " block_id TEXT PRIMARY KEY,"
    " stream_id TEXT NOT NULL REFERENCES streams(stream_id),"
    " process_id TEXT NOT NULL REFERENCES processes(process_id),"
    " begin_time BIGINT NOT NULL, begin_ticks BIGINT NOT NULL,"
    " end_time BIGINT NOT NULL, end_ticks BIGINT NOT NULL,"
    " nb_objects BIGINT NOT NULL, payload_size BIGINT NOT NULL,"
    " blob_size BIGINT NOT NULL, blob_crc BIGINT NOT NULL,"
    " insert_time BIGINT NOT NULL,"
    " seq BIGINT GENERATED ALWAYS AS IDENTITY);"
    "CREATE INDEX IF NOT EXISTS blocks_stream_time ON blocks(stream_id, "
    "begin_time);"
    "CREATE INDEX IF NOT EXISTS blocks_process_time ON blocks(process_id, "
    "begin_time);"
    "CREATE INDEX IF NOT EXISTS blocks_end_time ON blocks(end_time);"
    "CREATE INDEX IF NOT EXISTS blocks_insert_time ON blocks(insert_time, "
    "seq);",
};
#define NMIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

typedef struct conn {
  PGconn *db;
  unsigned prepared; /* bit i: statement i is prepared on this session */
  struct conn *next;
} conn;

typedef struct pg {
  conn conns[POOL];
  conn *free;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} pg;

/* Bound parameters, all in binary format. */
typedef struct params {
  int n;
  const char *v[MAXPARAMS];
  int len[MAXPARAMS];
  int fmt[MAXPARAMS];
  uint64_t i64[MAXPARAMS]; /* big-endian storage for int8 values */
  char uuid[MAXPARAMS][37];
} params;

static void p_i64(params *ps, int64_t v) {
  int i = ps->n++;
  ps->i64[i] = htobe64((uint64_t)v);
  ps->v[i] = (const char *)&ps->i64[i];
  ps->len[i] = 8;
  ps->fmt[i] = 1;
}

static void p_bytes(params *ps, const void *p, size_t n) {
  int i = ps->n++;
  ps->v[i] = n ? (const char *)p : "";
  ps->len[i] = (int)n;
  ps->fmt[i] = 1;
}

static void p_uuid(params *ps, const uint8_t id[16]) {
  tl_uuid_format(id, ps->uuid[ps->n]);
  p_bytes(ps, ps->uuid[ps->n], 36);
}

static void p_null(params *ps) {
  int i = ps->n++;
  ps->v[i] = NULL;
  ps->len[i] = 0;
  ps->fmt[i] = 1;
}

/* ---- Errors -------------------------------------------------------------- */

static void quiet_notices(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* libpq messages span lines (ERROR, DETAIL, HINT) and end with a newline:
 * copy them as one line, for logs and HTTP error bodies. */
static void trimmed(const char *msg, char *out, size_t cap) {
  if (!msg || !*msg)
    msg = "unknown error";
  size_t n = 0;
  for (const char *s = msg; *s && n + 1 < cap; s++) {
    if (*s == '\n' || *s == '\t' || *s == '\r') {
      if (n && out[n - 1] != ' ')
        out[n++] = ' ';
    } else {
      out[n++] = *s;
    }
  }
  while (n && out[n - 1] == ' ')
    n--;
  out[n] = 0;
}

/* Lost connections and the classes PostgreSQL uses for "try again later"
 * map to TL_EUNAVAILABLE: 08 connection exception, 40 transaction rollback
 * (serialization, deadlock), 53 insufficient resources, 55P03 lock not
 * available, 57 operator intervention (shutdown, cancel). */
static int map_result(conn *c, const PGresult *r) {
  if (PQstatus(c->db) != CONNECTION_OK)
    return TL_EUNAVAILABLE;
  if (!r)
    return TL_ENOMEM;
  const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (!st)
    return TL_EUNAVAILABLE; /* a client-side failure: the socket broke */
  if (!strncmp(st, "08", 2) || !strncmp(st, "40", 2) || !strncmp(st, "53", 2) ||
      !strcmp(st, "55P03") || !strncmp(st, "57", 2))
    return TL_EUNAVAILABLE;
  if (!strncmp(st, "22", 2))
    return TL_EINVAL; /* data exception: e.g. text that is not UTF-8 */
  return TL_EIO;
}

static int fail_result(conn *c, const PGresult *r, const char *what) {
  char msg[400];
  trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(c->db), msg, sizeof msg);
  if (!*msg || !strcmp(msg, "unknown error"))
    trimmed(PQerrorMessage(c->db), msg, sizeof msg);
  return tl__catalog_fail(map_result(c, r), "postgresql: %s: %s", what, msg);
}

/* ---- Connections --------------------------------------------------------- */

static PGconn *connect_uri(const char *uri) {
  /* Defaults first: later keywords win, so the URI can override them. */
  /* A statement waits at most 10 s for a lock (as SQLite's busy timeout):
   * then it fails with 55P03, a 503 for the client, instead of hanging. */
  const char *keys[] = {"connect_timeout", "application_name", "options",
                        "dbname", NULL};
  const char *vals[] = {"10", "tracelake",
                        "-c lock_timeout=10000 -c statement_timeout=60000", uri,
                        NULL};
  PGconn *db = PQconnectdbParams(keys, vals, 1);
  if (db)
    PQsetNoticeProcessor(db, quiet_notices, NULL);
  return db;
}

/* Makes sure the connection is usable: a connection whose server went away
 * is noticed here and reset. A server that shuts down sends a last message
 * (57P01) and closes: the first read takes the message, the second sees
 * the end of the stream and marks the connection bad. Both reads are
 * non-blocking. */
static int ensure_live(conn *c) {
  if (PQstatus(c->db) == CONNECTION_OK &&
      PQtransactionStatus(c->db) == PQTRANS_IDLE && PQconsumeInput(c->db) &&
      PQconsumeInput(c->db) && PQstatus(c->db) == CONNECTION_OK)
    return 0;
  PQreset(c->db);
  c->prepared = 0;
  if (PQstatus(c->db) != CONNECTION_OK) {
    char msg[400];
    trimmed(PQerrorMessage(c->db), msg, sizeof msg);
    return tl__catalog_fail(TL_EUNAVAILABLE, "postgresql: cannot connect: %s",
                            msg);
  }
  return 0;
}

/* Waits at most 15 s for a free connection (they may all be stuck behind a
 * lock): NULL then, and the caller answers "unavailable". */
static conn *acquire(pg *p) {
  struct timespec deadline = tl_deadline_in(15000000000ull);
  pthread_mutex_lock(&p->mu);
  while (!p->free)
    if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT)
      break;
  conn *c = p->free;
  if (c)
    p->free = c->next;
  pthread_mutex_unlock(&p->mu);
  return c;
}

static void release(pg *p, conn *c) {
  pthread_mutex_lock(&p->mu);
  c->next = p->free;
  p->free = c;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Takes a pooled connection that is ready for a statement, or fails with
 * TL_EUNAVAILABLE (the connection goes back to the pool either way). */
static int take(pg *p, conn **out) {
  conn *c = acquire(p);
  if (!c)
    return tl__catalog_fail(TL_EUNAVAILABLE,
                            "postgresql: every catalog connection is busy");
  int rc = ensure_live(c);
  if (rc) {
    release(p, c);
    return rc;
  }
  *out = c;
  return 0;
}

static PGresult *run_once(conn *c, int st, const params *ps) {
  if (!(c->prepared & (1u << st))) {
    char name[16];
    snprintf(name, sizeof name, "tl%d", st);
    PGresult *r = PQprepare(c->db, name, stmts[st].sql, stmts[st].nparams,
                            stmts[st].types);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
      return r;
    PQclear(r);
    c->prepared |= 1u << st;
  }
  char name[16];
  snprintf(name, sizeof name, "tl%d", st);
  static const params none;
  if (!ps)
    ps = &none;
  return PQexecPrepared(c->db, name, ps->n, ps->v, ps->len, ps->fmt, 1);
}

static bool result_ok(const PGresult *r) {
  ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* Runs a prepared statement (preparing it on first use). Each statement is
 * one idempotent transaction, so when the connection turns out to be dead
 * the statement is retried once on a fresh connection: a server restart
 * between two requests costs no failed request. On failure returns NULL
 * with the error recorded in *rc. */
static PGresult *run(conn *c, int st, const params *ps, const char *what,
                     int *rc) {
  PGresult *r = run_once(c, st, ps);
  if (!result_ok(r) && PQstatus(c->db) != CONNECTION_OK) {
    PQclear(r);
    if ((*rc = ensure_live(c)))
      return NULL;
    r = run_once(c, st, ps);
  }
  if (!result_ok(r)) {
    *rc = fail_result(c, r, what);
    PQclear(r);
    return NULL;
  }
  *rc = 0;
  return r;
}

/* Runs SQL without parameters (transaction control, migrations). */
static int exec_sql(conn *c, const char *sql, const char *what) {
  PGresult *r = PQexec(c->db, sql);
  int rc = result_ok(r) ? 0 : fail_result(c, r, what);
  PQclear(r);
  return rc;
}

/* ---- Reading results ----------------------------------------------------- */

static int64_t col_i64(const PGresult *r, int row, int col) {
  const char *v = PQgetvalue(r, row, col);
  if (PQgetisnull(r, row, col))
    return 0;
  if (PQfformat(r, col) == 0)
    return strtoll(v, NULL, 10);
  switch (PQgetlength(r, row, col)) {
  case 8: {
    uint64_t x;
    memcpy(&x, v, 8);
    return (int64_t)be64toh(x);
  }
  case 4: {
    uint32_t x;
    memcpy(&x, v, 4);
    return (int32_t)be32toh(x);
  }
  default:
    return 0;
  }
}

static int col_uuid(const PGresult *r, int row, int col, uint8_t out[16]) {
  if (PQgetisnull(r, row, col))
    return TL_EIO;
  return tl_uuid_parse(PQgetvalue(r, row, col), out) ? TL_EIO : 0;
}

static void read_block_row(const PGresult *r, int row, tl_catalog_block *b) {
  memset(b, 0, sizeof *b);
  col_uuid(r, row, 0, b->block_id);
  col_uuid(r, row, 1, b->stream_id);
  col_uuid(r, row, 2, b->process_id);
  b->begin_time = col_i64(r, row, 3);
  b->begin_ticks = (uint64_t)col_i64(r, row, 4);
  b->end_time = col_i64(r, row, 5);
  b->end_ticks = (uint64_t)col_i64(r, row, 6);
  b->nb_objects = (uint32_t)col_i64(r, row, 7);
  b->payload_size = (uint32_t)col_i64(r, row, 8);
  b->blob_size = (uint64_t)col_i64(r, row, 9);
  b->blob_crc = (uint32_t)col_i64(r, row, 10);
  b->insert_time = col_i64(r, row, 11);
}

/* ---- Operations ---------------------------------------------------------- */

/* After an insert that did nothing: is the stored raw message the same?
 * 0 same, TL_ECONFLICT other. */
static int compare_raw(conn *c, int st, const uint8_t id[16], tl_slice raw,
                       const char *kind) {
  params ps = {0};
  p_uuid(&ps, id);
  p_bytes(&ps, raw.p, raw.n);
  int rc;
  char what[64];
  snprintf(what, sizeof what, "reading the %s", kind);
  PGresult *r = run(c, st, &ps, what, &rc);
  if (!r)
    return rc;
  if (PQntuples(r) != 1) {
    rc = tl__catalog_fail(TL_EIO, "postgresql: the %s %s vanished", kind,
                          ps.uuid[0]);
  } else if (!PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 0)[0] == 1) {
    rc = 0;
  } else {
    rc = tl__catalog_fail(TL_ECONFLICT,
                          "the %s %s exists with different content", kind,
                          ps.uuid[0]);
  }
  PQclear(r);
  return rc;
}

static bool inserted_nothing(const PGresult *r) {
  return !strcmp(PQcmdTuples((PGresult *)r), "0");
}

static int pg_insert_process(tl_catalog *cat, const tl_wire_process *m,
                             tl_slice raw, int64_t insert_time, bool *existed) {
  pg *p = cat->impl;
  tl_bytes props;
  tl_bytes_init(&props, 1 << 24);
  conn *c = NULL;
  int rc = tl__catalog_props_json(m->props, m->nprops, &props);
  if (rc) {
    rc = tl__catalog_fail(rc, "process properties too large");
    goto out;
  }
  if ((rc = take(p, &c)))
    goto out;
  static const uint8_t zero[16];
  params ps = {0};
  p_uuid(&ps, m->process_id);
  p_bytes(&ps, m->exe.p, m->exe.n);
  p_bytes(&ps, m->username.p, m->username.n);
  p_bytes(&ps, m->realname.p, m->realname.n);
  p_bytes(&ps, m->computer.p, m->computer.n);
  p_bytes(&ps, m->distro.p, m->distro.n);
  p_bytes(&ps, m->cpu_brand.p, m->cpu_brand.n);
  p_i64(&ps, (int64_t)m->tsc_frequency);
  p_i64(&ps, m->start_time);
  p_i64(&ps, (int64_t)m->start_ticks);
  if (memcmp(m->parent_process_id, zero, 16))
    p_uuid(&ps, m->parent_process_id);
  else
    p_null(&ps);
  p_bytes(&ps, props.p, props.len - 1); /* without the NUL */
  p_i64(&ps, insert_time);
  p_i64(&ps, insert_time);
  p_bytes(&ps, raw.p, raw.n);
  PGresult *r = run(c, ST_INS_PROCESS, &ps, "inserting a process", &rc);
  *existed = false;
  if (r && inserted_nothing(r)) {
    *existed = true;
    rc = compare_raw(c, ST_SAME_PROCESS_RAW, m->process_id, raw, "process");
  }
  PQclear(r);
out:
  if (c)
    release(p, c);
  tl_bytes_free(&props);
  return rc;
}

static int pg_insert_stream(tl_catalog *cat, const tl_wire_stream *m,
                            tl_slice raw, int64_t insert_time, bool *existed) {
  pg *p = cat->impl;
  tl_bytes tags, props;
  tl_bytes_init(&tags, 1 << 24);
  tl_bytes_init(&props, 1 << 24);
  conn *c = NULL;
  PGresult *r = NULL;
  *existed = false;
  int rc = take(p, &c);
  if (rc)
    goto out;
  params has = {0};
  p_uuid(&has, m->process_id);
  if (!(r = run(c, ST_HAS_PROCESS, &has, "looking up a process", &rc)))
    goto out;
  if (PQntuples(r) == 0) {
    rc = tl__catalog_fail(TL_ENOTFOUND, "unknown process %s", has.uuid[0]);
    goto out;
  }
  PQclear(r);
  r = NULL;
  rc = tl__catalog_tags_json(m->tags, m->ntags, &tags);
  if (!rc)
    rc = tl__catalog_props_json(m->props, m->nprops, &props);
  if (rc) {
    rc = tl__catalog_fail(rc, "stream tags or properties too large");
    goto out;
  }
  params ps = {0};
  p_uuid(&ps, m->stream_id);
  p_uuid(&ps, m->process_id);
  p_bytes(&ps, tags.p, tags.len - 1);
  p_bytes(&ps, props.p, props.len - 1);
  p_i64(&ps, insert_time);
  p_i64(&ps, insert_time);
  p_bytes(&ps, raw.p, raw.n);
  r = run(c, ST_INS_STREAM, &ps, "inserting a stream", &rc);
  if (r && inserted_nothing(r)) {
    *existed = true;
    rc = compare_raw(c, ST_SAME_STREAM_RAW, m->stream_id, raw, "stream");
  }
out:
  PQclear(r);
  if (c)
    release(p, c);
  tl_bytes_free(&tags);
  tl_bytes_free(&props);
  return rc;
}

static int pg_stream_process(tl_catalog *cat, const uint8_t stream_id[16],
                             uint8_t process_id[16]) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  params ps = {0};
  p_uuid(&ps, stream_id);
  PGresult *r = run(c, ST_STREAM_PROCESS, &ps, "looking up a stream", &rc);
  if (r) {
    if (PQntuples(r) == 0)
      rc = tl__catalog_fail(TL_ENOTFOUND, "unknown stream %s", ps.uuid[0]);
    else if (col_uuid(r, 0, 0, process_id))
      rc = tl__catalog_fail(TL_EIO, "corrupt process id in streams");
  }
  PQclear(r);
  release(p, c);
  return rc;
}

static int get_block(conn *c, const uint8_t block_id[16],
                     tl_catalog_block *out) {
  params ps = {0};
  p_uuid(&ps, block_id);
  int rc;
  PGresult *r = run(c, ST_GET_BLOCK, &ps, "reading a block", &rc);
  if (r) {
    if (PQntuples(r) == 0)
      rc = tl__catalog_fail(TL_ENOTFOUND, "unknown block %s", ps.uuid[0]);
    else
      read_block_row(r, 0, out);
  }
  PQclear(r);
  return rc;
}

static int pg_insert_block(tl_catalog *cat, const tl_catalog_block *b,
                           bool *existed, bool *same) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  params ps = {0};
  p_uuid(&ps, b->block_id);
  p_uuid(&ps, b->stream_id);
  p_uuid(&ps, b->process_id);
  p_i64(&ps, b->begin_time);
  p_i64(&ps, (int64_t)b->begin_ticks);
  p_i64(&ps, b->end_time);
  p_i64(&ps, (int64_t)b->end_ticks);
  p_i64(&ps, b->nb_objects);
  p_i64(&ps, b->payload_size);
  p_i64(&ps, (int64_t)b->blob_size);
  p_i64(&ps, b->blob_crc);
  p_i64(&ps, b->insert_time);
  PGresult *r = run(c, ST_INS_BLOCK, &ps, "inserting a block", &rc);
  *existed = *same = false;
  if (r && inserted_nothing(r)) {
    tl_catalog_block old;
    *existed = true;
    if (!(rc = get_block(c, b->block_id, &old)))
      *same = old.blob_size == b->blob_size && old.blob_crc == b->blob_crc;
  }
  PQclear(r);
  release(p, c);
  return rc;
}

static int pg_get_block(tl_catalog *cat, const uint8_t block_id[16],
                        tl_catalog_block *out) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  rc = get_block(c, block_id, out);
  release(p, c);
  return rc;
}

static int pg_schema_version(tl_catalog *cat, int *version) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  PGresult *r =
      run(c, ST_SCHEMA_VERSION, NULL, "reading the schema version", &rc);
  if (r)
    *version = (int)col_i64(r, 0, 0);
  PQclear(r);
  release(p, c);
  return rc;
}

static int pg_health(tl_catalog *cat) {
  int v;
  return pg_schema_version(cat, &v) ? TL_EUNAVAILABLE : 0;
}

static int pg_counts(tl_catalog *cat, tl_catalog_counts *out) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  memset(out, 0, sizeof *out);
  PGresult *r = run(c, ST_COUNTS, NULL, "counting", &rc);
  if (r) {
    out->processes = (uint64_t)col_i64(r, 0, 0);
    out->streams = (uint64_t)col_i64(r, 0, 1);
    out->blocks = (uint64_t)col_i64(r, 0, 2);
    out->events = (uint64_t)col_i64(r, 0, 3);
    out->bytes = (uint64_t)col_i64(r, 0, 4);
  }
  PQclear(r);
  release(p, c);
  return rc;
}

static int pg_retire_batch(tl_catalog *cat, int64_t cutoff, unsigned limit,
                           void (*on_block)(void *ctx,
                                            const tl_catalog_block *b),
                           void *ctx, unsigned *removed) {
  pg *p = cat->impl;
  *removed = 0;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  params ps = {0};
  p_i64(&ps, cutoff);
  p_i64(&ps, limit);
  /* One statement, so one transaction: the rows are gone (committed) when
   * the result arrives, and only then are their blobs handed out. */
  PGresult *r = run(c, ST_RETIRE, &ps, "retiring blocks", &rc);
  release(p, c);
  if (!r)
    return rc;
  unsigned n = (unsigned)PQntuples(r);
  *removed = n;
  for (unsigned i = 0; i < n && on_block; i++) {
    tl_catalog_block b;
    read_block_row(r, (int)i, &b);
    on_block(ctx, &b);
  }
  PQclear(r);
  return 0;
}

static int pg_foreach_block(tl_catalog *cat,
                            int (*fn)(void *ctx, const tl_catalog_block *b),
                            void *ctx) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  /* A cursor keeps memory bounded however many blocks there are. Nothing
   * has been done if opening it fails on a dead connection: retry once. */
  static const char *open_cursor =
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
      "DECLARE tl_blocks NO SCROLL CURSOR FOR SELECT " BLOCK_COLUMNS
      " FROM blocks ORDER BY insert_time, seq";
  rc = exec_sql(c, open_cursor, "listing blocks");
  if (rc && PQstatus(c->db) != CONNECTION_OK && !(rc = ensure_live(c)))
    rc = exec_sql(c, open_cursor, "listing blocks");
  if (rc)
    goto out;
  for (;;) {
    PGresult *r = PQexecParams(c->db, "FETCH 1000 FROM tl_blocks", 0, NULL,
                               NULL, NULL, NULL, 1);
    if (!result_ok(r)) {
      rc = fail_result(c, r, "listing blocks");
      PQclear(r);
      break;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n && !rc; i++) {
      tl_catalog_block b;
      read_block_row(r, i, &b);
      rc = fn(ctx, &b);
    }
    PQclear(r);
    if (rc || n == 0)
      break;
  }
  if (PQstatus(c->db) == CONNECTION_OK) {
    PGresult *r = PQexec(c->db, "ROLLBACK");
    PQclear(r);
  }
out:
  release(p, c);
  return rc;
}

/* ---- Open, migrate, close ------------------------------------------------ */

static int migrate(conn *c) {
  int rc = exec_sql(c, "BEGIN", "starting the migration");
  if (rc)
    return rc;
  /* Taken before any DDL: servers starting at once wait here in turn, and
   * the later ones find the migrations applied. */
  params lk = {0};
  p_i64(&lk, MIGRATION_LOCK_KEY);
  static const Oid int8[] = {OID_INT8};
  PGresult *r = PQexecParams(c->db, "SELECT pg_advisory_xact_lock($1)", 1, int8,
                             lk.v, lk.len, lk.fmt, 1);
  if (!result_ok(r))
    rc = fail_result(c, r, "taking the migration lock");
  PQclear(r);
  if (!rc)
    rc = exec_sql(c,
                  "CREATE TABLE IF NOT EXISTS schema_version ("
                  " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                  "creating schema_version");
  int have = 0;
  if (!rc) {
    r = PQexecParams(c->db,
                     "SELECT coalesce(max(version), 0)::bigint "
                     "FROM schema_version",
                     0, NULL, NULL, NULL, NULL, 1);
    if (result_ok(r) && PQntuples(r) == 1)
      have = (int)col_i64(r, 0, 0);
    else
      rc = fail_result(c, r, "reading the schema version");
    PQclear(r);
  }
  for (int v = have + 1; v <= NMIGRATIONS && !rc; v++) {
    char what[48];
    snprintf(what, sizeof what, "applying migration %d", v);
    if ((rc = exec_sql(c, migrations[v - 1], what)))
      break;
    static const Oid types[] = {OID_INT8, OID_INT8};
    params ps = {0};
    p_i64(&ps, v);
    p_i64(&ps, tl_wall_ns());
    r = PQexecParams(c->db, "INSERT INTO schema_version VALUES ($1, $2)", 2,
                     types, ps.v, ps.len, ps.fmt, 1);
    if (!result_ok(r))
      rc = fail_result(c, r, what);
    PQclear(r);
  }
  if (!rc)
    return exec_sql(c, "COMMIT", "committing the migration");
  if (PQstatus(c->db) == CONNECTION_OK)
    PQclear(PQexec(c->db, "ROLLBACK"));
  return rc;
}

static void pg_close(tl_catalog *cat) {
  pg *p = cat->impl;
  for (int i = 0; i < POOL; i++)
    if (p->conns[i].db)
      PQfinish(p->conns[i].db);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
  free(cat);
}

static const tl_catalog_ops pg_ops = {
    "postgresql",      pg_close,         pg_schema_version, pg_health,
    pg_insert_process, pg_insert_stream, pg_stream_process, pg_insert_block,
    pg_get_block,      pg_counts,        pg_retire_batch,   pg_foreach_block,
};

int tl__catalog_pg_open(tl_catalog **out, const char *uri, char *err,
                        size_t errcap) {
  tl_catalog *cat = calloc(1, sizeof *cat);
  pg *p = calloc(1, sizeof *p);
  if (!cat || !p) {
    free(cat);
    free(p);
    snprintf(err, errcap, "out of memory");
    return TL_ENOMEM;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  cat->ops = &pg_ops;
  cat->impl = p;
  int rc = 0;
  for (int i = 0; i < POOL && !rc; i++) {
    conn *c = &p->conns[i];
    if (!(c->db = connect_uri(uri))) {
      snprintf(err, errcap, "postgresql: out of memory");
      rc = TL_ENOMEM;
    } else if (PQstatus(c->db) != CONNECTION_OK) {
      char msg[400];
      trimmed(PQerrorMessage(c->db), msg, sizeof msg);
      snprintf(err, errcap, "postgresql: cannot connect: %s", msg);
      rc = TL_EUNAVAILABLE;
    } else if (i == 0 && (rc = migrate(c))) {
      snprintf(err, errcap, "%s", tl_catalog_errmsg(NULL));
    }
    c->next = p->free;
    p->free = c;
  }
  if (rc) {
    pg_close(cat);
    return rc;
  }
  *out = cat;
  return 0;
}

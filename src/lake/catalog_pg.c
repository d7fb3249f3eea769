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
#define OID_TEXT_ARRAY 1009 /* bound in text form: {a,b} */
#define OID_INT8_ARRAY 1016

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
  ST_TODO_ALL,
  ST_TODO_PROCESS,
  ST_TODO_STREAM,
  ST_PART_BY_FILE,
  ST_INS_PART,
  ST_INS_PART_BLOCKS,
  ST_LOCK_PARTS,
  ST_MOVE_PART_BLOCKS,
  ST_DEL_PARTS,
  ST_RETIRE_PARTS,
  ST__COUNT
};

#define BLOCK_COLUMNS                                                          \
  "block_id, stream_id, process_id, begin_time, begin_ticks, end_time, "       \
  "end_ticks, nb_objects, payload_size, blob_size, blob_crc, insert_time"
#define B_BLOCK_COLUMNS                                                        \
  "b.block_id, b.stream_id, b.process_id, b.begin_time, b.begin_ticks, "       \
  "b.end_time, b.end_ticks, b.nb_objects, b.payload_size, b.blob_size, "       \
  "b.blob_crc, b.insert_time"
#define PART_COLUMNS                                                           \
  "id, view_name, instance, begin_time, end_time, min_insert_time, "           \
  "max_insert_time, file, file_size, nb_rows, nb_blocks, created_time"

/* Blocks still to materialize into a view instance: $1 max insert time,
 * $2 the process or stream id, $3 the tag as JSON text, $4 view,
 * $5 instance, $6 limit. The tags are compared as the JSON text of each
 * element (what the server wrote), never decoded: a stream whose tag holds
 * \u0000 (which PostgreSQL cannot decode to text) must not fail the query.
 * OFFSET 0 keeps NOT EXISTS a per-row primary-key lookup: as an anti join,
 * the planner trusts statistics taken while partition_blocks was nearly
 * empty (the materializer fills it between two autoanalyze runs) and scans
 * it once per block, turning 100 ms into seconds. */
#define TODO_SQL(scope)                                                        \
  "SELECT " B_BLOCK_COLUMNS " FROM blocks b JOIN streams s ON "                \
  "s.stream_id = b.stream_id WHERE b.insert_time <= $1 AND "                   \
  "b.insert_time >= $7 " scope                                                 \
  " AND EXISTS (SELECT 1 FROM json_array_elements(s.tags::json) t "            \
  "WHERE t::text = $3) AND NOT EXISTS (SELECT 1 FROM partition_blocks pb "     \
  "WHERE pb.view_name = $4 AND pb.instance = $5 AND "                          \
  "pb.block_id = b.block_id OFFSET 0) ORDER BY b.insert_time, b.seq LIMIT $6"
#define TODO_TYPES                                                             \
  { OID_INT8, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8, OID_INT8 }

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
    [ST_TODO_ALL] = {TODO_SQL(""), 7, TODO_TYPES},
    [ST_TODO_PROCESS] = {TODO_SQL("AND b.process_id = $2"), 7, TODO_TYPES},
    [ST_TODO_STREAM] = {TODO_SQL("AND b.stream_id = $2"), 7, TODO_TYPES},
    [ST_PART_BY_FILE] = {"SELECT " PART_COLUMNS " FROM partitions "
                         "WHERE file = $1",
                         1,
                         {OID_TEXT}},
    [ST_INS_PART] = {"INSERT INTO partitions (view_name, instance, "
                     "begin_time, end_time, min_insert_time, "
                     "max_insert_time, file, file_size, nb_rows, nb_blocks, "
                     "created_time) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,"
                     "$11) RETURNING id",
                     11,
                     {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_INT8,
                      OID_INT8, OID_TEXT, OID_INT8, OID_INT8, OID_INT8,
                      OID_INT8}},
    /* In the order given (sorted): concurrent materializers lock the same
     * keys in the same order, so the loser waits and then conflicts. */
    [ST_INS_PART_BLOCKS] = {"INSERT INTO partition_blocks (view_name, "
                            "instance, block_id, partition_id) "
                            "SELECT $1, $2, u.block_id, $3 FROM "
                            "unnest($4::text[]) WITH ORDINALITY "
                            "AS u(block_id, ord) ORDER BY u.ord",
                            4,
                            {OID_TEXT, OID_TEXT, OID_INT8, OID_TEXT_ARRAY}},
    [ST_LOCK_PARTS] = {"SELECT id, view_name, instance FROM partitions "
                       "WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                       1,
                       {OID_INT8_ARRAY}},
    [ST_MOVE_PART_BLOCKS] = {"UPDATE partition_blocks SET partition_id = $1 "
                             "WHERE partition_id = ANY($2::bigint[])",
                             2,
                             {OID_INT8, OID_INT8_ARRAY}},
    [ST_DEL_PARTS] = {"DELETE FROM partitions WHERE id = ANY($1::bigint[])",
                      1,
                      {OID_INT8_ARRAY}},
    /* As ST_RETIRE: several retirers skip each other's rows; ON DELETE
     * CASCADE takes the partition_blocks rows. */
    [ST_RETIRE_PARTS] = {"WITH gone AS (DELETE FROM partitions WHERE id IN ("
                         "SELECT id FROM partitions WHERE end_time < $1 "
                         "ORDER BY end_time, id LIMIT $2 "
                         "FOR UPDATE SKIP LOCKED) RETURNING " PART_COLUMNS
                         ") SELECT " PART_COLUMNS " FROM gone "
                         "ORDER BY end_time, id",
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
    /* 2: partitions (Parquet files of the views) and their source blocks */
    "CREATE TABLE IF NOT EXISTS partitions ("
    " id BIGSERIAL PRIMARY KEY,"
    " view_name TEXT NOT NULL, instance TEXT NOT NULL,"
    " begin_time BIGINT NOT NULL, end_time BIGINT NOT NULL,"
    " min_insert_time BIGINT NOT NULL, max_insert_time BIGINT NOT NULL,"
    " file TEXT NOT NULL UNIQUE, file_size BIGINT NOT NULL,"
    " nb_rows BIGINT NOT NULL, nb_blocks BIGINT NOT NULL,"
    " created_time BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS partitions_view_begin ON "
    "partitions(view_name, instance, begin_time);"
    "CREATE INDEX IF NOT EXISTS partitions_view_end ON "
    "partitions(view_name, instance, end_time);"
    "CREATE INDEX IF NOT EXISTS partitions_end_time ON partitions(end_time);"
    "CREATE TABLE IF NOT EXISTS partition_blocks ("
    " view_name TEXT NOT NULL, instance TEXT NOT NULL, block_id TEXT NOT NULL,"
    " partition_id BIGINT NOT NULL"
    " REFERENCES partitions(id) ON DELETE CASCADE,"
    " PRIMARY KEY (view_name, instance, block_id));"
    "CREATE INDEX IF NOT EXISTS partition_blocks_partition ON "
    "partition_blocks(partition_id);",
};
#define NMIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

_Static_assert(ST__COUNT <= 64, "conn.prepared has one bit per statement");

typedef struct conn {
  PGconn *db;
  uint64_t prepared; /* bit i: statement i is prepared on this session */
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

/* A NUL-terminated value in text form (arrays: "{a,b}"). */
static void p_text(params *ps, const char *text) {
  int i = ps->n++;
  ps->v[i] = text;
  ps->len[i] = 0;
  ps->fmt[i] = 0;
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
  if (!(c->prepared & (1ull << st))) {
    char name[16];
    snprintf(name, sizeof name, "tl%d", st);
    PGresult *r = PQprepare(c->db, name, stmts[st].sql, stmts[st].nparams,
                            stmts[st].types);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
      return r;
    PQclear(r);
    c->prepared |= 1ull << st;
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

/* Transactions of several statements (a group of blocks; a partition added
 * or replaced) run their statements without run()'s retry: a statement
 * retried on a fresh connection would run outside the transaction. Only
 * BEGIN is retried (nothing done yet); a connection lost later fails the
 * call with TL_EUNAVAILABLE, and the caller's retry is safe because block
 * ids and a partition's file make it idempotent. */
static int tx_begin(conn *c) {
  int rc = exec_sql(c, "BEGIN", "starting a transaction");
  if (rc && PQstatus(c->db) != CONNECTION_OK && !(rc = ensure_live(c)))
    rc = exec_sql(c, "BEGIN", "starting a transaction");
  return rc;
}

static void tx_rollback(conn *c) {
  if (PQstatus(c->db) == CONNECTION_OK)
    PQclear(PQexec(c->db, "ROLLBACK"));
}

/* A unique violation (23505) inside these transactions means another
 * materializer recorded the same block (or file) first. */
static PGresult *run_tx(conn *c, int st, const params *ps, const char *what,
                        int *rc) {
  PGresult *r = run_once(c, st, ps);
  if (!result_ok(r)) {
    *rc = fail_result(c, r, what);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && !strcmp(state, "23505"))
      *rc = TL_ECONFLICT;
    PQclear(r);
    return NULL;
  }
  *rc = 0;
  return r;
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

/* Inserts one block row on `c`: on its own (retried once on a fresh
 * connection) or as a statement of the transaction open on `c`. */
static int insert_block_on(conn *c, const tl_catalog_block *b, bool in_tx,
                           bool *existed, bool *same) {
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
  int rc;
  PGresult *r = in_tx ? run_tx(c, ST_INS_BLOCK, &ps, "inserting a block", &rc)
                      : run(c, ST_INS_BLOCK, &ps, "inserting a block", &rc);
  *existed = *same = false;
  if (r && inserted_nothing(r)) {
    tl_catalog_block old;
    *existed = true;
    if (!(rc = get_block(c, b->block_id, &old)))
      *same = old.blob_size == b->blob_size && old.blob_crc == b->blob_crc;
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
  rc = insert_block_on(c, b, false, existed, same);
  release(p, c);
  return rc;
}

static int pg_insert_blocks(tl_catalog *cat, const tl_catalog_block *b,
                            size_t n, size_t *conflicts) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  rc = tx_begin(c);
  for (size_t i = 0; i < n && !rc; i++) {
    bool existed, same;
    if (!(rc = insert_block_on(c, &b[i], true, &existed, &same)) && existed &&
        !same)
      ++*conflicts;
  }
  /* A statement retried on a fresh connection (get_block) ran outside the
   * transaction, which is then gone: never COMMIT on the fresh one. */
  if (!rc && PQtransactionStatus(c->db) != PQTRANS_INTRANS)
    rc = tl__catalog_fail(TL_EUNAVAILABLE,
                          "postgresql: connection lost while inserting blocks");
  if (!rc)
    rc = exec_sql(c, "COMMIT", "committing blocks");
  if (rc)
    tx_rollback(c);
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

/* Walks the rows of a query through a cursor, 1000 rows at a time, so that
 * memory stays bounded however many rows there are; `row` gets each row
 * and a nonzero return stops the walk and is returned. The walk reads one
 * snapshot (a read-only repeatable-read transaction). Nothing has been done
 * if starting it fails on a dead connection: then it is retried once. */
static int walk(tl_catalog *cat, const char *select, const params *ps,
                const Oid *types, const char *what,
                int (*row)(const PGresult *r, int i, void *ctx), void *ctx) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  static const char *begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
  rc = exec_sql(c, begin, what);
  if (rc && PQstatus(c->db) != CONNECTION_OK && !(rc = ensure_live(c)))
    rc = exec_sql(c, begin, what);
  if (rc)
    goto out;
  char declare[2048];
  snprintf(declare, sizeof declare, "DECLARE tl_walk NO SCROLL CURSOR FOR %s",
           select); /* our own constant queries, far shorter */
  static const params none;
  if (!ps)
    ps = &none;
  PGresult *r =
      PQexecParams(c->db, declare, ps->n, types, ps->v, ps->len, ps->fmt, 1);
  if (!result_ok(r))
    rc = fail_result(c, r, what);
  PQclear(r);
  while (!rc) {
    r = PQexecParams(c->db, "FETCH 1000 FROM tl_walk", 0, NULL, NULL, NULL,
                     NULL, 1);
    if (!result_ok(r)) {
      rc = fail_result(c, r, what);
      PQclear(r);
      break;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n && !rc; i++)
      rc = row(r, i, ctx);
    PQclear(r);
    if (n == 0)
      break;
  }
  if (PQstatus(c->db) == CONNECTION_OK)
    PQclear(PQexec(c->db, "ROLLBACK"));
out:
  release(p, c);
  return rc;
}

typedef struct block_walk {
  int (*fn)(void *ctx, const tl_catalog_block *b);
  void *ctx;
} block_walk;

static int block_row(const PGresult *r, int i, void *ctx) {
  block_walk *w = ctx;
  tl_catalog_block b;
  read_block_row(r, i, &b);
  return w->fn(w->ctx, &b);
}

static int pg_foreach_block(tl_catalog *cat,
                            int (*fn)(void *ctx, const tl_catalog_block *b),
                            void *ctx) {
  block_walk w = {fn, ctx};
  return walk(cat,
              "SELECT " BLOCK_COLUMNS " FROM blocks ORDER BY insert_time, seq",
              NULL, NULL, "listing blocks", block_row, &w);
}

/* ---- Rows for the SQL views ---------------------------------------------- */

static int pg_foreach_block_in(tl_catalog *cat, int64_t begin, int64_t last,
                               int (*fn)(void *ctx, const tl_catalog_block *b),
                               void *ctx) {
  block_walk w = {fn, ctx};
  params ps = {0};
  p_i64(&ps, begin);
  p_i64(&ps, last);
  static const Oid types[] = {OID_INT8, OID_INT8};
  return walk(cat,
              "SELECT " BLOCK_COLUMNS " FROM blocks WHERE end_time >= $1 AND "
              "begin_time <= $2 ORDER BY insert_time, seq",
              &ps, types, "listing blocks", block_row, &w);
}

static const char *col_text(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
}

typedef struct process_walk {
  int (*fn)(void *ctx, const tl_catalog_process_row *r);
  void *ctx;
} process_walk;

static int process_row(const PGresult *r, int i, void *ctx) {
  process_walk *w = ctx;
  tl_catalog_process_row row;
  memset(&row, 0, sizeof row);
  col_uuid(r, i, 0, row.process_id);
  row.exe = col_text(r, i, 1);
  row.username = col_text(r, i, 2);
  row.realname = col_text(r, i, 3);
  row.computer = col_text(r, i, 4);
  row.distro = col_text(r, i, 5);
  row.cpu_brand = col_text(r, i, 6);
  row.tsc_frequency = (uint64_t)col_i64(r, i, 7);
  row.start_time = col_i64(r, i, 8);
  row.start_ticks = (uint64_t)col_i64(r, i, 9);
  row.has_parent = !PQgetisnull(r, i, 10);
  if (row.has_parent && col_uuid(r, i, 10, row.parent_process_id))
    memset(row.parent_process_id, 0, 16);
  row.properties = col_text(r, i, 11);
  row.insert_time = col_i64(r, i, 12);
  row.last_update_time = col_i64(r, i, 13);
  return w->fn(w->ctx, &row);
}

/* Ids order as in SQLite (bytewise), whatever the database's collation. */
static int pg_foreach_process(tl_catalog *cat,
                              int (*fn)(void *ctx,
                                        const tl_catalog_process_row *r),
                              void *ctx) {
  process_walk w = {fn, ctx};
  return walk(cat,
              "SELECT process_id, exe, username, realname, computer, distro, "
              "cpu_brand, tsc_frequency, start_time, start_ticks, "
              "parent_process_id, properties, insert_time, last_update_time "
              "FROM processes ORDER BY insert_time, process_id COLLATE \"C\"",
              NULL, NULL, "listing processes", process_row, &w);
}

typedef struct stream_walk {
  int (*fn)(void *ctx, const tl_catalog_stream_row *r);
  void *ctx;
} stream_walk;

static int stream_row(const PGresult *r, int i, void *ctx) {
  stream_walk *w = ctx;
  tl_catalog_stream_row row;
  memset(&row, 0, sizeof row);
  col_uuid(r, i, 0, row.stream_id);
  col_uuid(r, i, 1, row.process_id);
  row.tags = col_text(r, i, 2);
  row.properties = col_text(r, i, 3);
  row.insert_time = col_i64(r, i, 4);
  row.last_update_time = col_i64(r, i, 5);
  return w->fn(w->ctx, &row);
}

static int pg_foreach_stream(tl_catalog *cat,
                             int (*fn)(void *ctx,
                                       const tl_catalog_stream_row *r),
                             void *ctx) {
  stream_walk w = {fn, ctx};
  return walk(cat,
              "SELECT stream_id, process_id, tags, properties, insert_time, "
              "last_update_time FROM streams "
              "ORDER BY insert_time, stream_id COLLATE \"C\"",
              NULL, NULL, "listing streams", stream_row, &w);
}

/* ---- Partitions ---------------------------------------------------------- */

static void read_part_row(const PGresult *r, int row, tl_partition *p) {
  memset(p, 0, sizeof *p);
  p->id = col_i64(r, row, 0);
  snprintf(p->view_name, sizeof p->view_name, "%s", col_text(r, row, 1));
  snprintf(p->instance, sizeof p->instance, "%s", col_text(r, row, 2));
  p->begin_time = col_i64(r, row, 3);
  p->end_time = col_i64(r, row, 4);
  p->min_insert_time = col_i64(r, row, 5);
  p->max_insert_time = col_i64(r, row, 6);
  snprintf(p->file, sizeof p->file, "%s", col_text(r, row, 7));
  p->file_size = (uint64_t)col_i64(r, row, 8);
  p->nb_rows = (uint64_t)col_i64(r, row, 9);
  p->nb_blocks = (uint64_t)col_i64(r, row, 10);
  p->created_time = col_i64(r, row, 11);
}

static int pg_blocks_to_materialize(tl_catalog *cat, const char *view_name,
                                    const char *instance, int scope,
                                    const char *tag_json,
                                    int64_t min_insert_time,
                                    int64_t max_insert_time, unsigned limit,
                                    tl_catalog_block *out, unsigned *n) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  params ps = {0};
  p_i64(&ps, max_insert_time);
  if (scope == TL_SCOPE_ALL)
    p_null(&ps);
  else
    p_bytes(&ps, instance, strlen(instance));
  p_bytes(&ps, tag_json, strlen(tag_json));
  p_bytes(&ps, view_name, strlen(view_name));
  p_bytes(&ps, instance, strlen(instance));
  p_i64(&ps, limit);
  p_i64(&ps, min_insert_time);
  int st = scope == TL_SCOPE_PROCESS  ? ST_TODO_PROCESS
           : scope == TL_SCOPE_STREAM ? ST_TODO_STREAM
                                      : ST_TODO_ALL;
  PGresult *r = run(c, st, &ps, "listing blocks to materialize", &rc);
  release(p, c);
  if (!r)
    return rc;
  unsigned got = (unsigned)PQntuples(r);
  for (unsigned i = 0; i < got && i < limit; i++)
    read_block_row(r, (int)i, &out[i]);
  *n = got < limit ? got : limit;
  PQclear(r);
  return 0;
}

static void part_params(params *ps, const tl_partition *p) {
  p_bytes(ps, p->view_name, strlen(p->view_name));
  p_bytes(ps, p->instance, strlen(p->instance));
  p_i64(ps, p->begin_time);
  p_i64(ps, p->end_time);
  p_i64(ps, p->min_insert_time);
  p_i64(ps, p->max_insert_time);
  p_bytes(ps, p->file, strlen(p->file));
  p_i64(ps, (int64_t)p->file_size);
  p_i64(ps, (int64_t)p->nb_rows);
  p_i64(ps, (int64_t)p->nb_blocks);
  p_i64(ps, p->created_time);
}

/* Inside the caller's transaction: is p->file recorded already? 1 when it
 * is (then 0/TL_ECONFLICT in *rc as for a retry), 0 when not, or a failure
 * in *rc. */
static int file_recorded(conn *c, tl_partition *p, int *rc) {
  params ps = {0};
  p_bytes(&ps, p->file, strlen(p->file));
  PGresult *r =
      run_tx(c, ST_PART_BY_FILE, &ps, "looking up a partition file", rc);
  if (!r)
    return 0;
  int found = PQntuples(r) > 0;
  if (found) {
    tl_partition stored;
    read_part_row(r, 0, &stored);
    if (tl__partition_same(&stored, p))
      p->id = stored.id;
    else
      *rc = tl__partition_file_conflict(p);
  }
  PQclear(r);
  return found;
}

static int insert_part(conn *c, const tl_partition *p, int64_t *id) {
  params ps = {0};
  part_params(&ps, p);
  int rc;
  PGresult *r = run_tx(c, ST_INS_PART, &ps, "recording a partition", &rc);
  if (r) {
    *id = col_i64(r, 0, 0);
    PQclear(r);
  }
  return rc;
}

/* "{a,b,...}": ids as a text-form array parameter. */
static int uuid_array(const uint8_t (*ids)[16], unsigned n, tl_bytes *out) {
  int rc = tl_bytes_append(out, "{", 1);
  for (unsigned i = 0; i < n && !rc; i++) {
    char text[38];
    tl_uuid_format(ids[i], text);
    text[36] = i + 1 < n ? ',' : '}';
    rc = tl_bytes_append(out, text, 37);
  }
  if (!rc && !n)
    rc = tl_bytes_append(out, "}", 1);
  return rc ? rc : tl_bytes_append(out, "", 1);
}

static int i64_array(const int64_t *v, unsigned n, tl_bytes *out) {
  int rc = tl_bytes_append(out, "{", 1);
  for (unsigned i = 0; i < n && !rc; i++) {
    char text[32];
    int len = snprintf(text, sizeof text, "%lld%c", (long long)v[i],
                       i + 1 < n ? ',' : '}');
    rc = tl_bytes_append(out, text, (size_t)len);
  }
  return rc ? rc : tl_bytes_append(out, "", 1);
}

static int pg_add_partition(tl_catalog *cat, tl_partition *p,
                            const uint8_t (*block_ids)[16], unsigned nblocks) {
  pg *pp = cat->impl;
  tl_bytes ids;
  tl_bytes_init(&ids, (size_t)TL_PARTITION_MAX_BLOCKS * 37 + 3);
  int rc = uuid_array(block_ids, nblocks, &ids);
  if (rc)
    goto free_ids;
  conn *c;
  if ((rc = take(pp, &c)))
    goto free_ids;
  if ((rc = tx_begin(c)))
    goto out;
  int64_t id;
  if (file_recorded(c, p, &rc) || rc || (rc = insert_part(c, p, &id)))
    goto rollback;
  params ps = {0};
  p_bytes(&ps, p->view_name, strlen(p->view_name));
  p_bytes(&ps, p->instance, strlen(p->instance));
  p_i64(&ps, id);
  p_text(&ps, (const char *)ids.p);
  PGresult *r =
      run_tx(c, ST_INS_PART_BLOCKS, &ps, "recording a partition's blocks", &rc);
  PQclear(r);
  if (rc == TL_ECONFLICT) { /* the message names the block */
    char msg[400];
    snprintf(msg, sizeof msg, "%s", tl_catalog_errmsg(cat));
    rc = tl__catalog_fail(TL_ECONFLICT,
                          "a block is already in a partition of %s/%s: %s",
                          p->view_name, p->instance, msg);
  }
  if (rc || (rc = exec_sql(c, "COMMIT", "committing a partition")))
    goto rollback;
  p->id = id;
  goto out;
rollback:
  tx_rollback(c);
out:
  release(pp, c);
free_ids:
  tl_bytes_free(&ids);
  return rc;
}

typedef struct part_walk {
  int (*fn)(void *ctx, const tl_partition *p);
  void *ctx;
} part_walk;

static int part_row(const PGresult *r, int i, void *ctx) {
  part_walk *w = ctx;
  tl_partition p;
  read_part_row(r, i, &p);
  return w->fn(w->ctx, &p);
}

static int pg_list_partitions(tl_catalog *cat, const char *view_name,
                              const char *instance, int64_t begin, int64_t last,
                              int (*fn)(void *ctx, const tl_partition *p),
                              void *ctx) {
  part_walk w = {fn, ctx};
  params ps = {0};
  p_bytes(&ps, view_name, strlen(view_name));
  p_bytes(&ps, instance, strlen(instance));
  p_i64(&ps, begin);
  p_i64(&ps, last);
  static const Oid types[] = {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8};
  /* Overlap of [begin_time, end_time] with [$3, $4], both inclusive. */
  return walk(cat,
              "SELECT " PART_COLUMNS " FROM partitions WHERE view_name = $1 "
              "AND instance = $2 AND end_time >= $3 AND begin_time <= $4 "
              "ORDER BY begin_time, id",
              &ps, types, "listing partitions", part_row, &w);
}

static int pg_replace_partitions(tl_catalog *cat, const int64_t *old_ids,
                                 unsigned nold, tl_partition *p) {
  pg *pp = cat->impl;
  tl_bytes ids;
  tl_bytes_init(&ids, (size_t)TL_PARTITION_MAX_REPLACE * 21 + 3);
  int rc = i64_array(old_ids, nold, &ids);
  if (rc)
    goto free_ids;
  conn *c;
  if ((rc = take(pp, &c)))
    goto free_ids;
  if ((rc = tx_begin(c)))
    goto out;
  if (file_recorded(c, p, &rc) || rc)
    goto rollback;
  /* Locks the old rows (in id order): a concurrent compactor or retirer of
   * one of them waits for us, or we for it and then find it gone. */
  params lk = {0};
  p_text(&lk, (const char *)ids.p);
  PGresult *r = run_tx(c, ST_LOCK_PARTS, &lk, "locking partitions", &rc);
  if (!r)
    goto rollback;
  unsigned found = (unsigned)PQntuples(r);
  for (unsigned i = 0, j = 0; i < nold && !rc; i++) {
    if (j < found && col_i64(r, (int)j, 0) == old_ids[i]) {
      if (strcmp(col_text(r, (int)j, 1), p->view_name) ||
          strcmp(col_text(r, (int)j, 2), p->instance))
        rc = tl__catalog_fail(TL_EINVAL, "partition %lld is not of %s/%s",
                              (long long)old_ids[i], p->view_name, p->instance);
      j++;
    } else {
      rc = tl__catalog_fail(TL_ECONFLICT, "partition %lld is gone",
                            (long long)old_ids[i]);
    }
  }
  PQclear(r);
  int64_t id;
  if (rc || (rc = insert_part(c, p, &id)))
    goto rollback;
  params mv = {0};
  p_i64(&mv, id);
  p_text(&mv, (const char *)ids.p);
  r = run_tx(c, ST_MOVE_PART_BLOCKS, &mv, "moving a partition's blocks", &rc);
  if (!r)
    goto rollback;
  long long moved = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  if ((uint64_t)moved != p->nb_blocks) {
    rc = tl__catalog_fail(TL_EINVAL,
                          "partition %s: nb_blocks %llu but the replaced "
                          "partitions hold %lld blocks",
                          p->file, (unsigned long long)p->nb_blocks, moved);
    goto rollback;
  }
  r = run_tx(c, ST_DEL_PARTS, &lk, "removing replaced partitions", &rc);
  PQclear(r);
  if (rc || (rc = exec_sql(c, "COMMIT", "committing a merged partition")))
    goto rollback;
  p->id = id;
  goto out;
rollback:
  tx_rollback(c);
out:
  release(pp, c);
free_ids:
  tl_bytes_free(&ids);
  return rc;
}

static int pg_retire_partitions(tl_catalog *cat, int64_t cutoff, unsigned limit,
                                void (*on_partition)(void *ctx,
                                                     const tl_partition *p),
                                void *ctx, unsigned *removed) {
  pg *p = cat->impl;
  conn *c;
  int rc = take(p, &c);
  if (rc)
    return rc;
  params ps = {0};
  p_i64(&ps, cutoff);
  p_i64(&ps, limit);
  /* One statement, so one transaction, as retire_batch. */
  PGresult *r = run(c, ST_RETIRE_PARTS, &ps, "retiring partitions", &rc);
  release(p, c);
  if (!r)
    return rc;
  unsigned n = (unsigned)PQntuples(r);
  *removed = n;
  for (unsigned i = 0; i < n && on_partition; i++) {
    tl_partition part;
    read_part_row(r, (int)i, &part);
    on_partition(ctx, &part);
  }
  PQclear(r);
  return 0;
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
    .name = "postgresql",
    .close = pg_close,
    .schema_version = pg_schema_version,
    .health = pg_health,
    .insert_process = pg_insert_process,
    .insert_stream = pg_insert_stream,
    .stream_process = pg_stream_process,
    .insert_block = pg_insert_block,
    .insert_blocks = pg_insert_blocks,
    .get_block = pg_get_block,
    .counts = pg_counts,
    .retire_batch = pg_retire_batch,
    .foreach_block = pg_foreach_block,
    .foreach_block_in = pg_foreach_block_in,
    .foreach_process = pg_foreach_process,
    .foreach_stream = pg_foreach_stream,
    .blocks_to_materialize = pg_blocks_to_materialize,
    .add_partition = pg_add_partition,
    .list_partitions = pg_list_partitions,
    .replace_partitions = pg_replace_partitions,
    .retire_partitions = pg_retire_partitions,
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
  tl_cond_init(&p->cv);
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

/* catalog_sqlite.c - the SQLite catalog backend (the embedded default): one
 * database file in WAL mode with synchronous=FULL, so a committed row
 * survives a crash. A small pool of connections serves concurrent requests;
 * SQLite serializes the writers. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog_impl.h"

#define POOL 4
#define BUSY_MS 5000

enum {
  ST_INS_PROCESS,
  ST_GET_PROCESS_RAW,
  ST_HAS_PROCESS,
  ST_INS_STREAM,
  ST_GET_STREAM_RAW,
  ST_STREAM_PROCESS,
  ST_INS_BLOCK,
  ST_GET_BLOCK,
  ST_PENDING_ALL,
  ST_PENDING_PROCESS,
  ST_PENDING_STREAM,
  ST_PART_BY_FILE,
  ST_INS_PART,
  ST_INS_PART_BLOCK,
  ST_PART_OWNER,
  ST_MOVE_PART_BLOCKS,
  ST_DEL_PART,
  ST_LIST_PARTS,
  ST_RETIRE_PARTS,
  ST_BLOCKS_IN,
  ST_PROCESSES,
  ST_STREAMS,
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

/* Blocks still to materialize into a view instance: ?1 max insert time,
 * ?2 the process or stream id, ?3 the tag as JSON text, ?4 view, ?5
 * instance, ?6 limit, ?7 min insert time. tl_has_tag compares JSON text
 * (see has_tag). */
#define PENDING_SQL(scope)                                                     \
  "SELECT " B_BLOCK_COLUMNS " FROM blocks b JOIN streams s ON "                \
  "s.stream_id = b.stream_id WHERE b.insert_time <= ?1 AND "                   \
  "b.insert_time >= ?7 " scope " AND tl_has_tag(s.tags, ?3)"                   \
  " AND NOT EXISTS (SELECT 1 FROM partition_blocks pb WHERE "                  \
  "pb.view_name = ?4 AND pb.instance = ?5 AND pb.block_id = b.block_id)"       \
  " ORDER BY b.insert_time, b.rowid LIMIT ?6"

static const char *sql_text[ST__COUNT] = {
    "INSERT INTO processes (process_id, exe, username, realname, computer, "
    "distro, cpu_brand, tsc_frequency, start_time, start_ticks, "
    "parent_process_id, properties, insert_time, last_update_time, raw) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(process_id) DO NOTHING",
    "SELECT raw FROM processes WHERE process_id = ?",
    "SELECT 1 FROM processes WHERE process_id = ?",
    "INSERT INTO streams (stream_id, process_id, tags, properties, "
    "insert_time, last_update_time, raw) VALUES (?,?,?,?,?,?,?) "
    "ON CONFLICT(stream_id) DO NOTHING",
    "SELECT raw FROM streams WHERE stream_id = ?",
    "SELECT process_id FROM streams WHERE stream_id = ?",
    "INSERT INTO blocks (block_id, stream_id, process_id, begin_time, "
    "begin_ticks, end_time, end_ticks, nb_objects, payload_size, blob_size, "
    "blob_crc, insert_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(block_id) DO NOTHING",
    "SELECT block_id, stream_id, process_id, begin_time, begin_ticks, "
    "end_time, end_ticks, nb_objects, payload_size, blob_size, blob_crc, "
    "insert_time FROM blocks WHERE block_id = ?",
    PENDING_SQL(""),
    PENDING_SQL("AND b.process_id = ?2"),
    PENDING_SQL("AND b.stream_id = ?2"),
    "SELECT " PART_COLUMNS " FROM partitions WHERE file = ?",
    "INSERT INTO partitions (view_name, instance, begin_time, end_time, "
    "min_insert_time, max_insert_time, file, file_size, nb_rows, nb_blocks, "
    "created_time) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "INSERT INTO partition_blocks (view_name, instance, block_id, "
    "partition_id) VALUES (?,?,?,?)",
    "SELECT view_name, instance FROM partitions WHERE id = ?",
    "UPDATE partition_blocks SET partition_id = ? WHERE partition_id = ?",
    "DELETE FROM partitions WHERE id = ?",
    /* Overlap of [begin_time, end_time] with [?3, ?4], both inclusive. */
    "SELECT " PART_COLUMNS " FROM partitions WHERE view_name = ? AND "
    "instance = ? AND end_time >= ? AND begin_time <= ? "
    "ORDER BY begin_time, id",
    "SELECT " PART_COLUMNS " FROM partitions WHERE end_time < ? "
    "ORDER BY end_time, id LIMIT ?",
    "SELECT " BLOCK_COLUMNS " FROM blocks WHERE end_time >= ? AND "
    "begin_time <= ? ORDER BY insert_time, rowid",
    "SELECT process_id, exe, username, realname, computer, distro, "
    "cpu_brand, tsc_frequency, start_time, start_ticks, parent_process_id, "
    "properties, insert_time, last_update_time FROM processes "
    "ORDER BY insert_time, process_id",
    "SELECT stream_id, process_id, tags, properties, insert_time, "
    "last_update_time FROM streams ORDER BY insert_time, stream_id",
};

/* Migrations: numbered, applied in order inside one write transaction. */
static const char *migrations[] = {
    /* 1: processes, streams, blocks */
    "CREATE TABLE IF NOT EXISTS processes ("
    " process_id TEXT PRIMARY KEY, exe TEXT NOT NULL, username TEXT NOT NULL,"
    " realname TEXT NOT NULL, computer TEXT NOT NULL, distro TEXT NOT NULL,"
    " cpu_brand TEXT NOT NULL, tsc_frequency INTEGER NOT NULL,"
    " start_time INTEGER NOT NULL, start_ticks INTEGER NOT NULL,"
    " parent_process_id TEXT, properties TEXT NOT NULL,"
    " insert_time INTEGER NOT NULL, last_update_time INTEGER NOT NULL,"
    " raw BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS streams ("
    " stream_id TEXT PRIMARY KEY,"
    " process_id TEXT NOT NULL REFERENCES processes(process_id),"
    " tags TEXT NOT NULL, properties TEXT NOT NULL,"
    " insert_time INTEGER NOT NULL, last_update_time INTEGER NOT NULL,"
    " raw BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS streams_process ON streams(process_id);"
    "CREATE TABLE IF NOT EXISTS blocks ("
    " block_id TEXT PRIMARY KEY,"
    " stream_id TEXT NOT NULL REFERENCES streams(stream_id),"
    " process_id TEXT NOT NULL REFERENCES processes(process_id),"
    " begin_time INTEGER NOT NULL, begin_ticks INTEGER NOT NULL,"
    " end_time INTEGER NOT NULL, end_ticks INTEGER NOT NULL,"
    " nb_objects INTEGER NOT NULL, payload_size INTEGER NOT NULL,"
    " blob_size INTEGER NOT NULL, blob_crc INTEGER NOT NULL,"
    " insert_time INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS blocks_stream_time ON blocks(stream_id, "
    "begin_time);"
    "CREATE INDEX IF NOT EXISTS blocks_process_time ON blocks(process_id, "
    "begin_time);"
    "CREATE INDEX IF NOT EXISTS blocks_end_time ON blocks(end_time);"
    "CREATE INDEX IF NOT EXISTS blocks_insert_time ON blocks(insert_time);",
    /* 2: partitions (Parquet files of the views) and their source blocks.
     * AUTOINCREMENT: an id is never reused, as in PostgreSQL, so a stale id
     * cannot name a newer partition. */
    "CREATE TABLE IF NOT EXISTS partitions ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " view_name TEXT NOT NULL, instance TEXT NOT NULL,"
    " begin_time INTEGER NOT NULL, end_time INTEGER NOT NULL,"
    " min_insert_time INTEGER NOT NULL, max_insert_time INTEGER NOT NULL,"
    " file TEXT NOT NULL UNIQUE, file_size INTEGER NOT NULL,"
    " nb_rows INTEGER NOT NULL, nb_blocks INTEGER NOT NULL,"
    " created_time INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS partitions_view_begin ON "
    "partitions(view_name, instance, begin_time);"
    "CREATE INDEX IF NOT EXISTS partitions_view_end ON "
    "partitions(view_name, instance, end_time);"
    "CREATE INDEX IF NOT EXISTS partitions_end_time ON partitions(end_time);"
    "CREATE TABLE IF NOT EXISTS partition_blocks ("
    " view_name TEXT NOT NULL, instance TEXT NOT NULL, block_id TEXT NOT NULL,"
    " partition_id INTEGER NOT NULL"
    " REFERENCES partitions(id) ON DELETE CASCADE,"
    " PRIMARY KEY (view_name, instance, block_id));"
    "CREATE INDEX IF NOT EXISTS partition_blocks_partition ON "
    "partition_blocks(partition_id);",
};
#define NMIGRATIONS (int)(sizeof migrations / sizeof migrations[0])

typedef struct conn {
  sqlite3 *db;
  sqlite3_stmt *st[ST__COUNT];
  struct conn *next;
} conn;

/* A block insert waiting for a group commit. */
typedef struct pending {
  const tl_catalog_block *b;
  bool existed, same, done;
  bool taken; /* in a batch being committed */
  int rc;
  char err[200]; /* the committing thread's error message */
  struct pending *next;
} pending;

typedef struct sq {
  char *path;
  conn conns[POOL];
  conn *free;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Group commit of block inserts: whoever finds no commit running commits
   * everything queued in one transaction (one WAL fsync for the batch). */
  pthread_mutex_t gc_mu;
  pthread_cond_t gc_cv;
  pending *queue, **queue_tail;
  bool committing;
} sq;

static int fail_db(sqlite3 *db, int code, const char *what) {
  return tl__catalog_fail(code, "sqlite: %s: %s", what,
                          db ? sqlite3_errmsg(db) : "cannot open");
}

/* Maps a SQLite result to a TL code: busy/locked/IO mean "try again". */
static int map_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return 0;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
    return TL_EUNAVAILABLE;
  case SQLITE_NOMEM:
    return TL_ENOMEM;
  default:
    return TL_EIO;
  }
}

static conn *acquire(sq *s) {
  pthread_mutex_lock(&s->mu);
  while (!s->free)
    pthread_cond_wait(&s->cv, &s->mu);
  conn *c = s->free;
  s->free = c->next;
  pthread_mutex_unlock(&s->mu);
  return c;
}

static void release(sq *s, conn *c) {
  pthread_mutex_lock(&s->mu);
  c->next = s->free;
  s->free = c;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static int exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    tl__catalog_fail(map_rc(rc), "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return map_rc(rc) ? map_rc(rc) : TL_EIO;
  }
  return 0;
}

static int migrate(sqlite3 *db) {
  int rc = exec(db, "BEGIN IMMEDIATE");
  if (rc)
    return rc;
  rc = exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  int have = 0;
  sqlite3_stmt *st = NULL;
  if (!rc &&
      sqlite3_prepare_v2(db,
                         "SELECT coalesce(max(version), 0) FROM "
                         "schema_version",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    have = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  for (int v = have + 1; v <= NMIGRATIONS && !rc; v++) {
    rc = exec(db, migrations[v - 1]);
    char ins[128];
    snprintf(ins, sizeof ins, "INSERT INTO schema_version VALUES (%d, %lld)", v,
             (long long)tl_wall_ns());
    if (!rc)
      rc = exec(db, ins);
  }
  if (rc) {
    exec(db, "ROLLBACK");
    return rc;
  }
  return exec(db, "COMMIT");
}

static int open_conn(sq *s, conn *c, char *err, size_t errcap) {
  int rc = sqlite3_open_v2(
      s->path, &c->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errcap, "cannot open %s: %s", s->path,
             c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    return TL_EUNAVAILABLE;
  }
  /* A write waits at most BUSY_MS for another writer's lock, and a block
   * insert at most that long in the group-commit queue: a catalog locked by
   * another program costs a client about 2 x BUSY_MS, then a 503. */
  sqlite3_busy_timeout(c->db, BUSY_MS);
  sqlite3_extended_result_codes(c->db, 1);
  static const char *pragmas =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
      "PRAGMA foreign_keys=ON;";
  /* Switching a fresh database to WAL needs a moment alone with it, and
   * SQLite may report "locked" without waiting when several servers open
   * it at once: try again for a while. */
  for (int tries = 0;; tries++) {
    rc = exec(c->db, pragmas);
    if (rc != TL_EUNAVAILABLE || tries == 250)
      break;
    usleep(20000);
  }
  if (rc) {
    snprintf(err, errcap, "%s", tl_catalog_errmsg(NULL));
    return rc;
  }
  return 0;
}

/* tl_has_tag(tags, tag): whether `tags`, a JSON array as the server writes
 * it (["a","b"]: no spaces), holds the JSON string `tag` (quotes included),
 * comparing JSON text. json_each would decode the elements, and SQLite
 * decodes \u0000 by cutting the string there: "n\u0000l" would match "n".
 * PostgreSQL compares the same JSON text (catalog_pg.c). */
static bool has_tag(const unsigned char *t, size_t n, const unsigned char *w,
                    size_t wn) {
  if (n < 2 || t[0] != '[')
    return false;
  size_t i = 1;
  while (i < n && t[i] == '"') {
    size_t start = i++;
    while (i < n && t[i] != '"')
      i += t[i] == '\\' ? 2 : 1;
    if (i >= n)
      return false; /* not our JSON: no match */
    i++;
    if (i - start == wn && !memcmp(t + start, w, wn))
      return true;
    if (i < n && t[i] == ',')
      i++;
  }
  return false;
}

static void sql_has_tag(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const unsigned char *t = sqlite3_value_text(argv[0]);
  size_t n = (size_t)sqlite3_value_bytes(argv[0]);
  const unsigned char *w = sqlite3_value_text(argv[1]);
  size_t wn = (size_t)sqlite3_value_bytes(argv[1]);
  sqlite3_result_int(ctx, t && w && has_tag(t, n, w, wn));
}

static int prepare_all(conn *c, char *err, size_t errcap) {
  if (sqlite3_create_function(c->db, "tl_has_tag", 2,
                              SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                  SQLITE_INNOCUOUS,
                              NULL, sql_has_tag, NULL, NULL) != SQLITE_OK) {
    snprintf(err, errcap, "sqlite: registering tl_has_tag: %s",
             sqlite3_errmsg(c->db));
    return TL_EIO;
  }
  for (int i = 0; i < ST__COUNT; i++)
    if (sqlite3_prepare_v3(c->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &c->st[i], NULL) != SQLITE_OK) {
      snprintf(err, errcap, "sqlite: preparing statement %d: %s", i,
               sqlite3_errmsg(c->db));
      return TL_EIO;
    }
  return 0;
}

static void sq_close(tl_catalog *cat) {
  sq *s = cat->impl;
  for (int i = 0; i < POOL; i++) {
    for (int k = 0; k < ST__COUNT; k++)
      sqlite3_finalize(s->conns[i].st[k]);
    sqlite3_close(s->conns[i].db);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->gc_mu);
  pthread_cond_destroy(&s->gc_cv);
  free(s->path);
  free(s);
  free(cat);
}

/* ---- Binding helpers ---------------------------------------------------- */

static void bind_uuid(sqlite3_stmt *st, int i, const uint8_t id[16]) {
  char text[37];
  tl_uuid_format(id, text);
  sqlite3_bind_text(st, i, text, 36, SQLITE_TRANSIENT);
}

static void bind_slice(sqlite3_stmt *st, int i, tl_slice s) {
  sqlite3_bind_text(st, i, s.n ? (const char *)s.p : "", (int)s.n,
                    SQLITE_TRANSIENT);
}

static int step_done(conn *c, sqlite3_stmt *st, const char *what) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return fail_db(c->db, map_rc(rc) ? map_rc(rc) : TL_EIO, what);
  return 0;
}

/* Compares the stored raw message with `raw`: 0 same, TL_ECONFLICT other. */
static int compare_raw(conn *c, sqlite3_stmt *st, const uint8_t id[16],
                       tl_slice raw, const char *what) {
  bind_uuid(st, 1, id);
  int rc = sqlite3_step(st);
  int out;
  if (rc == SQLITE_ROW) {
    const void *p = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    char text[37];
    tl_uuid_format(id, text);
    out = n == raw.n && (!n || !memcmp(p, raw.p, n))
              ? 0
              : tl__catalog_fail(TL_ECONFLICT,
                                 "%s %s exists with different content", what,
                                 text);
  } else {
    out = fail_db(c->db, TL_EIO, what);
  }
  sqlite3_reset(st);
  return out;
}

static int sq_insert_process(tl_catalog *cat, const tl_wire_process *m,
                             tl_slice raw, int64_t insert_time, bool *existed) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  tl_bytes props;
  tl_bytes_init(&props, 1 << 24);
  int rc = tl__catalog_props_json(m->props, m->nprops, &props);
  if (rc) {
    release(s, c);
    tl_bytes_free(&props);
    return tl__catalog_fail(rc, "process properties too large");
  }
  sqlite3_stmt *st = c->st[ST_INS_PROCESS];
  static const uint8_t zero[16];
  bind_uuid(st, 1, m->process_id);
  bind_slice(st, 2, m->exe);
  bind_slice(st, 3, m->username);
  bind_slice(st, 4, m->realname);
  bind_slice(st, 5, m->computer);
  bind_slice(st, 6, m->distro);
  bind_slice(st, 7, m->cpu_brand);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)m->tsc_frequency);
  sqlite3_bind_int64(st, 9, m->start_time);
  sqlite3_bind_int64(st, 10, (sqlite3_int64)m->start_ticks);
  if (memcmp(m->parent_process_id, zero, 16))
    bind_uuid(st, 11, m->parent_process_id);
  else
    sqlite3_bind_null(st, 11);
  sqlite3_bind_text(st, 12, (const char *)props.p, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 13, insert_time);
  sqlite3_bind_int64(st, 14, insert_time);
  sqlite3_bind_blob(st, 15, raw.p, (int)raw.n, SQLITE_TRANSIENT);
  rc = step_done(c, st, "inserting a process");
  *existed = false;
  if (!rc && sqlite3_changes(c->db) == 0) {
    *existed = true;
    rc = compare_raw(c, c->st[ST_GET_PROCESS_RAW], m->process_id, raw,
                     "process");
  }
  sqlite3_clear_bindings(st);
  release(s, c);
  tl_bytes_free(&props);
  return rc;
}

static int sq_insert_stream(tl_catalog *cat, const tl_wire_stream *m,
                            tl_slice raw, int64_t insert_time, bool *existed) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  *existed = false;
  sqlite3_stmt *has = c->st[ST_HAS_PROCESS];
  bind_uuid(has, 1, m->process_id);
  int step = sqlite3_step(has);
  sqlite3_reset(has);
  int rc;
  if (step == SQLITE_DONE) {
    char id[37];
    tl_uuid_format(m->process_id, id);
    rc = tl__catalog_fail(TL_ENOTFOUND, "unknown process %s", id);
    goto out;
  }
  if (step != SQLITE_ROW) {
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                 "looking up a process");
    goto out;
  }
  tl_bytes tags, props;
  tl_bytes_init(&tags, 1 << 24);
  tl_bytes_init(&props, 1 << 24);
  rc = tl__catalog_tags_json(m->tags, m->ntags, &tags);
  if (!rc)
    rc = tl__catalog_props_json(m->props, m->nprops, &props);
  if (!rc) {
    sqlite3_stmt *st = c->st[ST_INS_STREAM];
    bind_uuid(st, 1, m->stream_id);
    bind_uuid(st, 2, m->process_id);
    sqlite3_bind_text(st, 3, (const char *)tags.p, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, (const char *)props.p, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, insert_time);
    sqlite3_bind_int64(st, 6, insert_time);
    sqlite3_bind_blob(st, 7, raw.p, (int)raw.n, SQLITE_TRANSIENT);
    rc = step_done(c, st, "inserting a stream");
    if (!rc && sqlite3_changes(c->db) == 0) {
      *existed = true;
      rc =
          compare_raw(c, c->st[ST_GET_STREAM_RAW], m->stream_id, raw, "stream");
    }
    sqlite3_clear_bindings(st);
  }
  tl_bytes_free(&tags);
  tl_bytes_free(&props);
out:
  release(s, c);
  return rc;
}

static int sq_stream_process(tl_catalog *cat, const uint8_t stream_id[16],
                             uint8_t process_id[16]) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = c->st[ST_STREAM_PROCESS];
  bind_uuid(st, 1, stream_id);
  int step = sqlite3_step(st), rc;
  if (step == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    rc = t && !tl_uuid_parse(t, process_id)
             ? 0
             : tl__catalog_fail(TL_EIO, "corrupt process id in streams");
  } else if (step == SQLITE_DONE) {
    char id[37];
    tl_uuid_format(stream_id, id);
    rc = tl__catalog_fail(TL_ENOTFOUND, "unknown stream %s", id);
  } else {
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                 "looking up a stream");
  }
  sqlite3_reset(st);
  release(s, c);
  return rc;
}

static void read_block_row(sqlite3_stmt *st, tl_catalog_block *b) {
  memset(b, 0, sizeof *b);
  const char *t;
  if ((t = (const char *)sqlite3_column_text(st, 0)))
    tl_uuid_parse(t, b->block_id);
  if ((t = (const char *)sqlite3_column_text(st, 1)))
    tl_uuid_parse(t, b->stream_id);
  if ((t = (const char *)sqlite3_column_text(st, 2)))
    tl_uuid_parse(t, b->process_id);
  b->begin_time = sqlite3_column_int64(st, 3);
  b->begin_ticks = (uint64_t)sqlite3_column_int64(st, 4);
  b->end_time = sqlite3_column_int64(st, 5);
  b->end_ticks = (uint64_t)sqlite3_column_int64(st, 6);
  b->nb_objects = (uint32_t)sqlite3_column_int64(st, 7);
  b->payload_size = (uint32_t)sqlite3_column_int64(st, 8);
  b->blob_size = (uint64_t)sqlite3_column_int64(st, 9);
  b->blob_crc = (uint32_t)sqlite3_column_int64(st, 10);
  b->insert_time = sqlite3_column_int64(st, 11);
}

static int get_block(conn *c, const uint8_t block_id[16],
                     tl_catalog_block *out) {
  sqlite3_stmt *st = c->st[ST_GET_BLOCK];
  bind_uuid(st, 1, block_id);
  int step = sqlite3_step(st), rc = 0;
  if (step == SQLITE_ROW)
    read_block_row(st, out);
  else if (step == SQLITE_DONE) {
    char text[37];
    tl_uuid_format(block_id, text);
    rc = tl__catalog_fail(TL_ENOTFOUND, "unknown block %s", text);
  } else
    rc =
        fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO, "reading a block");
  sqlite3_reset(st);
  return rc;
}

/* Inserts one row inside the caller's transaction. */
static int insert_one(conn *c, pending *p) {
  const tl_catalog_block *b = p->b;
  sqlite3_stmt *st = c->st[ST_INS_BLOCK];
  bind_uuid(st, 1, b->block_id);
  bind_uuid(st, 2, b->stream_id);
  bind_uuid(st, 3, b->process_id);
  sqlite3_bind_int64(st, 4, b->begin_time);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)b->begin_ticks);
  sqlite3_bind_int64(st, 6, b->end_time);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)b->end_ticks);
  sqlite3_bind_int64(st, 8, b->nb_objects);
  sqlite3_bind_int64(st, 9, b->payload_size);
  sqlite3_bind_int64(st, 10, (sqlite3_int64)b->blob_size);
  sqlite3_bind_int64(st, 11, b->blob_crc);
  sqlite3_bind_int64(st, 12, b->insert_time);
  int rc = step_done(c, st, "inserting a block");
  p->existed = p->same = false;
  if (!rc && sqlite3_changes(c->db) == 0) {
    tl_catalog_block old;
    p->existed = true;
    if (!(rc = get_block(c, b->block_id, &old)))
      p->same = old.blob_size == b->blob_size && old.blob_crc == b->blob_crc;
  }
  return rc;
}

/* Commits a batch of inserts in one transaction. A row that fails alone
 * (e.g. a foreign key) fails alone; a failed commit fails the batch. */
static void commit_batch(sq *s, pending *batch) {
  conn *c = acquire(s);
  int rc = exec(c->db, "BEGIN IMMEDIATE");
  for (pending *p = batch; p; p = p->next) {
    p->rc = rc;
    if (!rc) {
      exec(c->db, "SAVEPOINT row");
      if ((p->rc = insert_one(c, p)))
        exec(c->db, "ROLLBACK TO row");
      exec(c->db, "RELEASE row");
    }
  }
  if (!rc && (rc = exec(c->db, "COMMIT"))) {
    exec(c->db, "ROLLBACK");
    for (pending *p = batch; p; p = p->next)
      p->rc = rc;
  }
  for (pending *p = batch; p; p = p->next)
    if (p->rc)
      snprintf(p->err, sizeof p->err, "%s", tl_catalog_errmsg(NULL));
  release(s, c);
}

/* Removes a pending insert that gave up waiting from the queue. */
static void unqueue(sq *s, pending *me) {
  pending **pp = &s->queue;
  while (*pp && *pp != me)
    pp = &(*pp)->next;
  if (!*pp)
    return;
  *pp = me->next;
  if (s->queue_tail == &me->next)
    s->queue_tail = pp;
}

/* Queues the `n` inserts of `me` for the next group commit and waits until
 * it is done. Queued together, they are taken by one batch. */
static int insert_pending(sq *s, pending *me, size_t n) {
  struct timespec deadline = tl_deadline_in((uint64_t)BUSY_MS * 1000000u);
  pthread_mutex_lock(&s->gc_mu);
  for (size_t i = 0; i < n; i++) {
    *s->queue_tail = &me[i];
    s->queue_tail = &me[i].next;
  }
  while (!me[0].done) {
    if (s->committing) {
      if (pthread_cond_timedwait(&s->gc_cv, &s->gc_mu, &deadline) ==
              ETIMEDOUT &&
          !me[0].taken) {
        /* The batch ahead is stuck on a lock: give up rather than wait for
         * it and then for our own turn. */
        for (size_t i = 0; i < n; i++)
          unqueue(s, &me[i]);
        pthread_mutex_unlock(&s->gc_mu);
        return tl__catalog_fail(TL_EUNAVAILABLE,
                                "sqlite: the catalog is locked (waited %d ms)",
                                BUSY_MS);
      }
      continue;
    }
    pending *batch = s->queue;
    for (pending *p = batch; p; p = p->next)
      p->taken = true;
    s->queue = NULL;
    s->queue_tail = &s->queue;
    s->committing = true;
    pthread_mutex_unlock(&s->gc_mu);
    commit_batch(s, batch);
    pthread_mutex_lock(&s->gc_mu);
    for (pending *p = batch, *next; p; p = next) {
      next = p->next;
      p->done = true;
    }
    s->committing = false;
    pthread_cond_broadcast(&s->gc_cv);
  }
  pthread_mutex_unlock(&s->gc_mu);
  return 0;
}

static int sq_insert_block(tl_catalog *cat, const tl_catalog_block *b,
                           bool *existed, bool *same) {
  pending me = {b, false, false, false, false, 0, "", NULL};
  int rc = insert_pending(cat->impl, &me, 1);
  if (rc)
    return rc;
  *existed = me.existed;
  *same = me.same;
  if (me.rc)
    return tl__catalog_fail(me.rc, "%s", me.err);
  return 0;
}

static int sq_insert_blocks(tl_catalog *cat, const tl_catalog_block *b,
                            size_t n, size_t *conflicts) {
  pending *me = calloc(n, sizeof *me);
  if (!me)
    return tl__catalog_fail(TL_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    me[i].b = &b[i];
  int rc = insert_pending(cat->impl, me, n);
  for (size_t i = 0; i < n && !rc; i++) {
    if (me[i].rc)
      rc = tl__catalog_fail(me[i].rc, "%s", me[i].err);
    else if (me[i].existed && !me[i].same)
      ++*conflicts;
  }
  free(me);
  return rc;
}

static int sq_get_block(tl_catalog *cat, const uint8_t block_id[16],
                        tl_catalog_block *out) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  int rc = get_block(c, block_id, out);
  release(s, c);
  return rc;
}

static int sq_schema_version(tl_catalog *cat, int *version) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = NULL;
  int rc = TL_EIO;
  if (sqlite3_prepare_v2(c->db, "SELECT max(version) FROM schema_version", -1,
                         &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    *version = sqlite3_column_int(st, 0);
    rc = 0;
  } else {
    rc = fail_db(c->db, TL_EIO, "reading the schema version");
  }
  sqlite3_finalize(st);
  release(s, c);
  return rc;
}

static int sq_health(tl_catalog *cat) {
  int v;
  return sq_schema_version(cat, &v) ? TL_EUNAVAILABLE : 0;
}

static int sq_counts(tl_catalog *cat, tl_catalog_counts *out) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = NULL;
  int rc = 0;
  memset(out, 0, sizeof *out);
  if (sqlite3_prepare_v2(
          c->db,
          "SELECT (SELECT count(*) FROM processes), (SELECT count(*) FROM "
          "streams), count(*), coalesce(sum(nb_objects), 0), "
          "coalesce(sum(blob_size), 0) FROM blocks",
          -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    out->processes = (uint64_t)sqlite3_column_int64(st, 0);
    out->streams = (uint64_t)sqlite3_column_int64(st, 1);
    out->blocks = (uint64_t)sqlite3_column_int64(st, 2);
    out->events = (uint64_t)sqlite3_column_int64(st, 3);
    out->bytes = (uint64_t)sqlite3_column_int64(st, 4);
  } else {
    rc = fail_db(c->db, TL_EIO, "counting");
  }
  sqlite3_finalize(st);
  release(s, c);
  return rc;
}

static int sq_retire_batch(tl_catalog *cat, int64_t cutoff, unsigned limit,
                           void (*on_block)(void *ctx,
                                            const tl_catalog_block *b),
                           void *ctx, unsigned *removed) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  *removed = 0;
  tl_catalog_block *rows = calloc(limit ? limit : 1, sizeof *rows);
  sqlite3_stmt *sel = NULL, *del = NULL;
  unsigned n = 0;
  int rc = rows ? exec(c->db, "BEGIN IMMEDIATE") : TL_ENOMEM;
  if (rc)
    goto out;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT block_id, stream_id, process_id, begin_time, "
                         "begin_ticks, end_time, end_ticks, nb_objects, "
                         "payload_size, blob_size, blob_crc, insert_time FROM "
                         "blocks WHERE end_time < ? ORDER BY end_time LIMIT ?",
                         -1, &sel, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(c->db, "DELETE FROM blocks WHERE block_id = ?", -1,
                         &del, NULL) != SQLITE_OK) {
    rc = fail_db(c->db, TL_EIO, "preparing retention");
    goto rollback;
  }
  sqlite3_bind_int64(sel, 1, cutoff);
  sqlite3_bind_int64(sel, 2, limit);
  int step = SQLITE_DONE;
  while (n < limit && (step = sqlite3_step(sel)) == SQLITE_ROW)
    read_block_row(sel, &rows[n++]);
  if (n < limit && step != SQLITE_DONE) {
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                 "selecting blocks to retire");
    goto rollback;
  }
  for (unsigned i = 0; i < n && !rc; i++) {
    bind_uuid(del, 1, rows[i].block_id);
    rc = step_done(c, del, "deleting a block");
  }
  if (rc)
    goto rollback;
  if ((rc = exec(c->db, "COMMIT")))
    goto rollback;
  *removed = n;
  for (unsigned i = 0; i < n; i++)
    if (on_block)
      on_block(ctx, &rows[i]);
  goto out;
rollback:
  exec(c->db, "ROLLBACK");
out:
  sqlite3_finalize(sel);
  sqlite3_finalize(del);
  free(rows);
  release(s, c);
  return rc;
}

static int sq_foreach_block(tl_catalog *cat,
                            int (*fn)(void *ctx, const tl_catalog_block *b),
                            void *ctx) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = NULL;
  int rc = 0;
  if (sqlite3_prepare_v2(c->db,
                         "SELECT block_id, stream_id, process_id, begin_time, "
                         "begin_ticks, end_time, end_ticks, nb_objects, "
                         "payload_size, blob_size, blob_crc, insert_time FROM "
                         "blocks ORDER BY insert_time, rowid",
                         -1, &st, NULL) != SQLITE_OK) {
    rc = fail_db(c->db, TL_EIO, "listing blocks");
  } else {
    int step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
      tl_catalog_block b;
      read_block_row(st, &b);
      rc = fn(ctx, &b);
    }
    if (!rc && step != SQLITE_DONE)
      rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                   "listing blocks");
  }
  sqlite3_finalize(st);
  release(s, c);
  return rc;
}

/* ---- Rows for the SQL views ---------------------------------------------- */

static int sq_foreach_block_in(tl_catalog *cat, int64_t begin, int64_t last,
                               int (*fn)(void *ctx, const tl_catalog_block *b),
                               void *ctx) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = c->st[ST_BLOCKS_IN];
  sqlite3_bind_int64(st, 1, begin);
  sqlite3_bind_int64(st, 2, last);
  int rc = 0, step;
  while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tl_catalog_block b;
    read_block_row(st, &b);
    rc = fn(ctx, &b);
  }
  if (!rc && step != SQLITE_DONE)
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO, "listing blocks");
  sqlite3_reset(st);
  release(s, c);
  return rc;
}

static const char *col_text(sqlite3_stmt *st, int i) {
  const char *t = (const char *)sqlite3_column_text(st, i);
  return t ? t : "";
}

static void col_uuid(sqlite3_stmt *st, int i, uint8_t out[16]) {
  const char *t = (const char *)sqlite3_column_text(st, i);
  if (!t || tl_uuid_parse(t, out))
    memset(out, 0, 16);
}

static int sq_foreach_process(tl_catalog *cat,
                              int (*fn)(void *ctx,
                                        const tl_catalog_process_row *r),
                              void *ctx) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = c->st[ST_PROCESSES];
  int rc = 0, step;
  while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tl_catalog_process_row r;
    memset(&r, 0, sizeof r);
    col_uuid(st, 0, r.process_id);
    r.exe = col_text(st, 1);
    r.username = col_text(st, 2);
    r.realname = col_text(st, 3);
    r.computer = col_text(st, 4);
    r.distro = col_text(st, 5);
    r.cpu_brand = col_text(st, 6);
    r.tsc_frequency = (uint64_t)sqlite3_column_int64(st, 7);
    r.start_time = sqlite3_column_int64(st, 8);
    r.start_ticks = (uint64_t)sqlite3_column_int64(st, 9);
    r.has_parent = sqlite3_column_type(st, 10) != SQLITE_NULL;
    if (r.has_parent)
      col_uuid(st, 10, r.parent_process_id);
    r.properties = col_text(st, 11);
    r.insert_time = sqlite3_column_int64(st, 12);
    r.last_update_time = sqlite3_column_int64(st, 13);
    rc = fn(ctx, &r);
  }
  if (!rc && step != SQLITE_DONE)
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                 "listing processes");
  sqlite3_reset(st);
  release(s, c);
  return rc;
}

static int sq_foreach_stream(tl_catalog *cat,
                             int (*fn)(void *ctx,
                                       const tl_catalog_stream_row *r),
                             void *ctx) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = c->st[ST_STREAMS];
  int rc = 0, step;
  while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tl_catalog_stream_row r;
    memset(&r, 0, sizeof r);
    col_uuid(st, 0, r.stream_id);
    col_uuid(st, 1, r.process_id);
    r.tags = col_text(st, 2);
    r.properties = col_text(st, 3);
    r.insert_time = sqlite3_column_int64(st, 4);
    r.last_update_time = sqlite3_column_int64(st, 5);
    rc = fn(ctx, &r);
  }
  if (!rc && step != SQLITE_DONE)
    rc =
        fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO, "listing streams");
  sqlite3_reset(st);
  release(s, c);
  return rc;
}

/* ---- Partitions ---------------------------------------------------------- */

static int sq_blocks_to_materialize(tl_catalog *cat, const char *view_name,
                                    const char *instance, int scope,
                                    const char *tag_json,
                                    int64_t min_insert_time,
                                    int64_t max_insert_time, unsigned limit,
                                    tl_catalog_block *out, unsigned *n) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = c->st[scope == TL_SCOPE_PROCESS  ? ST_PENDING_PROCESS
                           : scope == TL_SCOPE_STREAM ? ST_PENDING_STREAM
                                                      : ST_PENDING_ALL];
  sqlite3_bind_int64(st, 1, max_insert_time);
  if (scope != TL_SCOPE_ALL)
    sqlite3_bind_text(st, 2, instance, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, tag_json, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, view_name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, instance, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 6, limit);
  sqlite3_bind_int64(st, 7, min_insert_time);
  unsigned got = 0;
  int step = SQLITE_DONE, rc = 0;
  while (got < limit && (step = sqlite3_step(st)) == SQLITE_ROW)
    read_block_row(st, &out[got++]);
  if (got < limit && step != SQLITE_DONE)
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                 "listing blocks to materialize");
  else
    *n = got;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  release(s, c);
  return rc;
}

static void read_part_row(sqlite3_stmt *st, tl_partition *p) {
  memset(p, 0, sizeof *p);
  p->id = sqlite3_column_int64(st, 0);
  snprintf(p->view_name, sizeof p->view_name, "%s", col_text(st, 1));
  snprintf(p->instance, sizeof p->instance, "%s", col_text(st, 2));
  p->begin_time = sqlite3_column_int64(st, 3);
  p->end_time = sqlite3_column_int64(st, 4);
  p->min_insert_time = sqlite3_column_int64(st, 5);
  p->max_insert_time = sqlite3_column_int64(st, 6);
  snprintf(p->file, sizeof p->file, "%s", col_text(st, 7));
  p->file_size = (uint64_t)sqlite3_column_int64(st, 8);
  p->nb_rows = (uint64_t)sqlite3_column_int64(st, 9);
  p->nb_blocks = (uint64_t)sqlite3_column_int64(st, 10);
  p->created_time = sqlite3_column_int64(st, 11);
}

/* Inside the caller's transaction: is p->file recorded already? 1 when it
 * is (then 0/TL_ECONFLICT in *rc as for a retry), 0 when not, or a failure
 * in *rc. */
static int file_recorded(conn *c, tl_partition *p, int *rc) {
  sqlite3_stmt *st = c->st[ST_PART_BY_FILE];
  sqlite3_bind_text(st, 1, p->file, -1, SQLITE_TRANSIENT);
  int step = sqlite3_step(st), found = 0;
  *rc = 0;
  if (step == SQLITE_ROW) {
    tl_partition stored;
    read_part_row(st, &stored);
    found = 1;
    if (tl__partition_same(&stored, p))
      p->id = stored.id;
    else
      *rc = tl__partition_file_conflict(p);
  } else if (step != SQLITE_DONE) {
    *rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                  "looking up a partition file");
  }
  sqlite3_reset(st);
  return found;
}

static int insert_part(conn *c, const tl_partition *p, int64_t *id) {
  sqlite3_stmt *st = c->st[ST_INS_PART];
  sqlite3_bind_text(st, 1, p->view_name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, p->instance, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, p->begin_time);
  sqlite3_bind_int64(st, 4, p->end_time);
  sqlite3_bind_int64(st, 5, p->min_insert_time);
  sqlite3_bind_int64(st, 6, p->max_insert_time);
  sqlite3_bind_text(st, 7, p->file, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)p->file_size);
  sqlite3_bind_int64(st, 9, (sqlite3_int64)p->nb_rows);
  sqlite3_bind_int64(st, 10, (sqlite3_int64)p->nb_blocks);
  sqlite3_bind_int64(st, 11, p->created_time);
  int rc = step_done(c, st, "recording a partition");
  sqlite3_clear_bindings(st);
  if (!rc)
    *id = sqlite3_last_insert_rowid(c->db);
  return rc;
}

static int sq_add_partition(tl_catalog *cat, tl_partition *p,
                            const uint8_t (*block_ids)[16], unsigned nblocks) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  /* IMMEDIATE: the write lock first, so that two materializers of the same
   * blocks run one after the other and the second sees the first's rows. */
  int rc = exec(c->db, "BEGIN IMMEDIATE");
  if (rc)
    goto out;
  if (file_recorded(c, p, &rc) || rc)
    goto rollback;
  int64_t id;
  if ((rc = insert_part(c, p, &id)))
    goto rollback;
  sqlite3_stmt *st = c->st[ST_INS_PART_BLOCK];
  sqlite3_bind_text(st, 1, p->view_name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, p->instance, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, id);
  for (unsigned i = 0; i < nblocks && !rc; i++) {
    bind_uuid(st, 3, block_ids[i]);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    if (step == SQLITE_CONSTRAINT_PRIMARYKEY) {
      char text[37];
      tl_uuid_format(block_ids[i], text);
      rc = tl__catalog_fail(TL_ECONFLICT,
                            "block %s is already in a partition of %s/%s", text,
                            p->view_name, p->instance);
    } else if (step != SQLITE_DONE) {
      rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                   "recording a partition's blocks");
    }
  }
  sqlite3_clear_bindings(st);
  if (rc || (rc = exec(c->db, "COMMIT")))
    goto rollback;
  p->id = id;
  goto out;
rollback:
  exec(c->db, "ROLLBACK");
out:
  release(s, c);
  return rc;
}

static int sq_list_partitions(tl_catalog *cat, const char *view_name,
                              const char *instance, int64_t begin, int64_t last,
                              int (*fn)(void *ctx, const tl_partition *p),
                              void *ctx) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  sqlite3_stmt *st = c->st[ST_LIST_PARTS];
  sqlite3_bind_text(st, 1, view_name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, instance, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, begin);
  sqlite3_bind_int64(st, 4, last);
  int rc = 0, step;
  while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
    tl_partition p;
    read_part_row(st, &p);
    rc = fn(ctx, &p);
  }
  if (!rc && step != SQLITE_DONE)
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                 "listing partitions");
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  release(s, c);
  return rc;
}

static int sq_replace_partitions(tl_catalog *cat, const int64_t *old_ids,
                                 unsigned nold, tl_partition *p) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  int64_t id = 0, moved = 0;
  int rc = exec(c->db, "BEGIN IMMEDIATE");
  if (rc)
    goto out;
  if (file_recorded(c, p, &rc) || rc)
    goto rollback;
  sqlite3_stmt *own = c->st[ST_PART_OWNER];
  for (unsigned i = 0; i < nold && !rc; i++) {
    sqlite3_bind_int64(own, 1, old_ids[i]);
    int step = sqlite3_step(own);
    if (step == SQLITE_DONE)
      rc = tl__catalog_fail(TL_ECONFLICT, "partition %lld is gone",
                            (long long)old_ids[i]);
    else if (step != SQLITE_ROW)
      rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                   "reading a partition");
    else if (strcmp(col_text(own, 0), p->view_name) ||
             strcmp(col_text(own, 1), p->instance))
      rc = tl__catalog_fail(TL_EINVAL, "partition %lld is not of %s/%s",
                            (long long)old_ids[i], p->view_name, p->instance);
    sqlite3_reset(own);
  }
  if (rc || (rc = insert_part(c, p, &id)))
    goto rollback;
  sqlite3_stmt *mv = c->st[ST_MOVE_PART_BLOCKS], *del = c->st[ST_DEL_PART];
  for (unsigned i = 0; i < nold && !rc; i++) {
    sqlite3_bind_int64(mv, 1, id);
    sqlite3_bind_int64(mv, 2, old_ids[i]);
    if (!(rc = step_done(c, mv, "moving a partition's blocks")))
      moved += sqlite3_changes(c->db);
    sqlite3_bind_int64(del, 1, old_ids[i]);
    if (!rc)
      rc = step_done(c, del, "removing a replaced partition");
  }
  if (!rc && (uint64_t)moved != p->nb_blocks)
    rc = tl__catalog_fail(TL_EINVAL,
                          "partition %s: nb_blocks %llu but the replaced "
                          "partitions hold %lld blocks",
                          p->file, (unsigned long long)p->nb_blocks,
                          (long long)moved);
  if (rc || (rc = exec(c->db, "COMMIT")))
    goto rollback;
  p->id = id;
  goto out;
rollback:
  exec(c->db, "ROLLBACK");
out:
  release(s, c);
  return rc;
}

static int sq_retire_partitions(tl_catalog *cat, int64_t cutoff, unsigned limit,
                                void (*on_partition)(void *ctx,
                                                     const tl_partition *p),
                                void *ctx, unsigned *removed) {
  sq *s = cat->impl;
  conn *c = acquire(s);
  tl_partition *rows = calloc(limit ? limit : 1, sizeof *rows);
  unsigned n = 0;
  int rc = rows ? exec(c->db, "BEGIN IMMEDIATE") : TL_ENOMEM;
  if (rc)
    goto out;
  sqlite3_stmt *sel = c->st[ST_RETIRE_PARTS], *del = c->st[ST_DEL_PART];
  sqlite3_bind_int64(sel, 1, cutoff);
  sqlite3_bind_int64(sel, 2, limit);
  int step = SQLITE_DONE;
  while (n < limit && (step = sqlite3_step(sel)) == SQLITE_ROW)
    read_part_row(sel, &rows[n++]);
  sqlite3_reset(sel);
  if (n < limit && step != SQLITE_DONE) {
    rc = fail_db(c->db, map_rc(step) ? map_rc(step) : TL_EIO,
                 "selecting partitions to retire");
    goto rollback;
  }
  /* ON DELETE CASCADE takes their partition_blocks rows. */
  for (unsigned i = 0; i < n && !rc; i++) {
    sqlite3_bind_int64(del, 1, rows[i].id);
    rc = step_done(c, del, "retiring a partition");
  }
  if (rc || (rc = exec(c->db, "COMMIT")))
    goto rollback;
  *removed = n;
  for (unsigned i = 0; i < n && on_partition; i++)
    on_partition(ctx, &rows[i]);
  goto out;
rollback:
  exec(c->db, "ROLLBACK");
out:
  free(rows);
  release(s, c);
  return rc;
}

static const tl_catalog_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .health = sq_health,
    .insert_process = sq_insert_process,
    .insert_stream = sq_insert_stream,
    .stream_process = sq_stream_process,
    .insert_block = sq_insert_block,
    .insert_blocks = sq_insert_blocks,
    .get_block = sq_get_block,
    .counts = sq_counts,
    .retire_batch = sq_retire_batch,
    .foreach_block = sq_foreach_block,
    .foreach_block_in = sq_foreach_block_in,
    .foreach_process = sq_foreach_process,
    .foreach_stream = sq_foreach_stream,
    .blocks_to_materialize = sq_blocks_to_materialize,
    .add_partition = sq_add_partition,
    .list_partitions = sq_list_partitions,
    .replace_partitions = sq_replace_partitions,
    .retire_partitions = sq_retire_partitions,
};

int tl__catalog_sqlite_open(tl_catalog **out, const char *path, char *err,
                            size_t errcap) {
  tl_catalog *cat = calloc(1, sizeof *cat);
  sq *s = calloc(1, sizeof *s);
  if (!cat || !s || !(s->path = strdup(path))) {
    free(cat);
    if (s)
      free(s->path);
    free(s);
    snprintf(err, errcap, "out of memory");
    return TL_ENOMEM;
  }
  pthread_mutex_init(&s->mu, NULL);
  tl_cond_init(&s->cv);
  pthread_mutex_init(&s->gc_mu, NULL);
  tl_cond_init(&s->gc_cv);
  s->queue_tail = &s->queue;
  cat->ops = &sqlite_ops;
  cat->impl = s;
  int rc = open_conn(s, &s->conns[0], err, errcap);
  if (!rc && (rc = migrate(s->conns[0].db)))
    snprintf(err, errcap, "migrating %s: %s", path, tl_catalog_errmsg(NULL));
  for (int i = 1; i < POOL && !rc; i++)
    rc = open_conn(s, &s->conns[i], err, errcap);
  for (int i = 0; i < POOL && !rc; i++) {
    rc = prepare_all(&s->conns[i], err, errcap);
    s->conns[i].next = s->free;
    s->free = &s->conns[i];
  }
  if (rc) {
    sq_close(cat);
    return rc;
  }
  *out = cat;
  return 0;
}

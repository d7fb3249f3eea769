/* test_catalog.c - one catalog suite run against both backends: the backend
 * comes from TL_TEST_CATALOG (sqlite or pg). SQLite tests use a fresh file in
 * a private directory; PostgreSQL tests use a fresh database on the server of
 * the ctest fixture (TL_TEST_PG_DIR holds its uri), so tests may run in
 * parallel. */
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lake/catalog.h"
#include "test.h"

TL_TEST_MAIN()

#define NMIGRATIONS 2 /* keep equal to the migrations both backends hold */

/* ---- Per-test catalog ---------------------------------------------------- */

static bool is_pg;
static char spec[512];   /* what tl_catalog_open gets */
static char tmpdir[256]; /* SQLite: the private directory */
static char admin_uri[512];
static char dbname[64];

static void read_file_line(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f)
    FAILF("cannot read %s (is the pg fixture running?)", path);
  if (!fgets(out, (int)cap, f))
    FAILF("empty %s", path);
  fclose(f);
  out[strcspn(out, "\r\n")] = 0;
}

static void pg_admin(const char *uri, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pg_admin(const char *uri, const char *fmt, ...) {
  char sql[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  PGconn *db = PQconnectdb(uri);
  if (PQstatus(db) != CONNECTION_OK)
    FAILF("connect %s: %s", uri, PQerrorMessage(db));
  PGresult *r = PQexec(db, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    FAILF("%s: %s", sql, PQerrorMessage(db));
  PQclear(r);
  PQfinish(db);
}

/* Replaces the database name (the last path part) of a URI. */
static void uri_with_db(const char *uri, const char *db, char *out,
                        size_t cap) {
  const char *slash = strrchr(uri, '/');
  CHECK(slash && slash > uri + 13);
  snprintf(out, cap, "%.*s/%s", (int)(slash - uri), uri, db);
}

static void remove_tmpdir(void) {
  if (tmpdir[0]) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", tmpdir);
  }
}

static void drop_db(void) {
  if (dbname[0]) {
    PGconn *db = PQconnectdb(admin_uri);
    if (PQstatus(db) == CONNECTION_OK)
      PQclear(PQexec(db, "SET client_min_messages = warning"));
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             dbname);
    PQclear(PQexec(db, sql));
    PQfinish(db);
  }
}

/* Sets `spec` to a fresh, empty catalog of the backend under test. */
static void fresh_catalog_on(const char *pg_uri) {
  const char *backend = getenv("TL_TEST_CATALOG");
  is_pg = backend && !strcmp(backend, "pg");
  if (!is_pg) {
    snprintf(tmpdir, sizeof tmpdir, "%s/tl-catalog-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(tmpdir));
    atexit(remove_tmpdir);
    snprintf(spec, sizeof spec, "%s/catalog.db", tmpdir);
    return;
  }
  snprintf(admin_uri, sizeof admin_uri, "%s", pg_uri);
  snprintf(dbname, sizeof dbname, "tl_test_%d", (int)getpid());
  pg_admin(admin_uri, "CREATE DATABASE %s", dbname);
  atexit(drop_db);
  uri_with_db(admin_uri, dbname, spec, sizeof spec);
}

static const char *fixture_dir(void) {
  const char *dir = getenv("TL_TEST_PG_DIR");
  if (!dir)
    FAILF("TL_TEST_PG_DIR is not set");
  return dir;
}

static void fresh_catalog(void) {
  const char *backend = getenv("TL_TEST_CATALOG");
  if (backend && !strcmp(backend, "pg")) {
    char path[512], uri[512];
    snprintf(path, sizeof path, "%s/uri", fixture_dir());
    read_file_line(path, uri, sizeof uri);
    fresh_catalog_on(uri);
  } else {
    fresh_catalog_on(NULL);
  }
}

static tl_catalog *open_catalog(void) {
  tl_catalog *c = NULL;
  char err[512] = "";
  int rc = tl_catalog_open(&c, spec, err, sizeof err);
  if (rc)
    FAILF("open %s: %s (%s)", spec, tl_errname(rc), err);
  CHECK_STR(tl_catalog_backend(c), is_pg ? "postgresql" : "sqlite");
  return c;
}

/* One integer from a query, through the backend's own client library. */
static long long query_int(const char *sql) {
  long long v = -1;
  if (is_pg) {
    PGconn *db = PQconnectdb(spec);
    if (PQstatus(db) != CONNECTION_OK)
      FAILF("connect: %s", PQerrorMessage(db));
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
      FAILF("%s: %s", sql, PQerrorMessage(db));
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(db);
  } else {
    sqlite3 *db;
    sqlite3_stmt *st;
    CHECK(sqlite3_open(spec, &db) == SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
      FAILF("%s: %s", sql, sqlite3_errmsg(db));
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  return v;
}

/* Runs one statement through the backend's own client library. */
static void exec_direct(const char *sql) {
  if (is_pg) {
    PGconn *db = PQconnectdb(spec);
    if (PQstatus(db) != CONNECTION_OK)
      FAILF("connect: %s", PQerrorMessage(db));
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      FAILF("%s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    PQfinish(db);
  } else {
    sqlite3 *db;
    char *msg = NULL;
    CHECK(sqlite3_open(spec, &db) == SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
      FAILF("%s: %s", sql, msg);
    sqlite3_close(db);
  }
}

/* ---- Test data ----------------------------------------------------------- */

typedef struct proc_msg {
  tl_wire_process m;
  tl_bytes raw;
} proc_msg;

static void id_of(uint8_t id[16], uint8_t kind, uint32_t n) {
  memset(id, 0, 16);
  id[0] = kind;
  id[6] = 0x40; /* looks like a v4 UUID */
  id[8] = 0x80;
  memcpy(id + 10, &n, 4);
}

static void make_process(proc_msg *p, uint32_t n, const char *exe) {
  memset(p, 0, sizeof *p);
  id_of(p->m.process_id, 0xa1, n);
  p->m.start_time = 1700000000000000000LL;
  p->m.start_ticks = (1ULL << 62) + 3;
  p->m.tsc_frequency = 2400000000ULL;
  p->m.exe = tl_slice_str(exe);
  p->m.username = tl_slice_str("alice");
  p->m.realname = tl_slice_str("Alice \"Q\" O'Hara");
  p->m.computer = tl_slice_str("host-1");
  p->m.distro = tl_slice_str("Debian 12");
  p->m.cpu_brand = tl_slice_str("Test CPU");
  p->m.nprops = 1;
  p->m.props[0].key = tl_slice_str("k");
  p->m.props[0].value = tl_slice_str("v\\\"");
  tl_bytes_init(&p->raw, 1 << 20);
  CHECK_EQ(tl_process_encode(&p->m, &p->raw), 0);
}

typedef struct stream_msg {
  tl_wire_stream m;
  tl_bytes raw;
} stream_msg;

static void make_stream(stream_msg *s, uint32_t n, const uint8_t proc[16],
                        const char *tag) {
  memset(s, 0, sizeof *s);
  id_of(s->m.stream_id, 0xb2, n);
  memcpy(s->m.process_id, proc, 16);
  s->m.ntags = 1;
  s->m.tags[0] = tl_slice_str(tag);
  tl_bytes_init(&s->raw, 1 << 20);
  CHECK_EQ(tl_stream_encode(&s->m, &s->raw), 0);
}

static tl_slice raw_of(const tl_bytes *b) {
  tl_slice s = {b->p, b->len};
  return s;
}

static tl_catalog_block make_block(uint32_t n, const uint8_t stream[16],
                                   const uint8_t proc[16], int64_t end_time) {
  tl_catalog_block b;
  memset(&b, 0, sizeof b);
  id_of(b.block_id, 0xc3, n);
  memcpy(b.stream_id, stream, 16);
  memcpy(b.process_id, proc, 16);
  b.begin_time = end_time - 1000;
  b.end_time = end_time;
  b.begin_ticks = (1ULL << 62) + n;
  b.end_ticks = (1ULL << 62) + n + 500;
  b.nb_objects = 10 + n;
  b.payload_size = 100 + n;
  b.blob_size = 200 + n;
  b.blob_crc = 0xdead0000u + n;
  b.insert_time = 1000 + n;
  return b;
}

/* A catalog holding process 1 and stream 1. */
typedef struct world {
  tl_catalog *c;
  proc_msg p;
  stream_msg s;
} world;

static void make_world(world *w) {
  fresh_catalog();
  w->c = open_catalog();
  bool existed = true;
  make_process(&w->p, 1, "/usr/bin/app");
  CHECK_EQ(
      tl_catalog_insert_process(w->c, &w->p.m, raw_of(&w->p.raw), 5, &existed),
      0);
  CHECK(!existed);
  make_stream(&w->s, 1, w->p.m.process_id, "log");
  CHECK_EQ(
      tl_catalog_insert_stream(w->c, &w->s.m, raw_of(&w->s.raw), 6, &existed),
      0);
  CHECK(!existed);
}

static void free_world(world *w) {
  tl_catalog_close(w->c);
  tl_bytes_free(&w->p.raw);
  tl_bytes_free(&w->s.raw);
}

static void insert_block(tl_catalog *c, const tl_catalog_block *b) {
  bool existed = true, same = false;
  int rc = tl_catalog_insert_block(c, b, &existed, &same);
  if (rc)
    FAILF("insert_block: %s: %s", tl_errname(rc), tl_catalog_errmsg(c));
  CHECK(!existed);
}

static void check_block_eq(const tl_catalog_block *a,
                           const tl_catalog_block *b) {
  CHECK(!memcmp(a->block_id, b->block_id, 16));
  CHECK(!memcmp(a->stream_id, b->stream_id, 16));
  CHECK(!memcmp(a->process_id, b->process_id, 16));
  CHECK_EQ(a->begin_time, b->begin_time);
  CHECK_EQ(a->end_time, b->end_time);
  CHECK_U64(a->begin_ticks, b->begin_ticks);
  CHECK_U64(a->end_ticks, b->end_ticks);
  CHECK_U64(a->nb_objects, b->nb_objects);
  CHECK_U64(a->payload_size, b->payload_size);
  CHECK_U64(a->blob_size, b->blob_size);
  CHECK_U64(a->blob_crc, b->blob_crc);
  CHECK_EQ(a->insert_time, b->insert_time);
}

/* ---- Schema and migrations ----------------------------------------------- */

static void check_schema(void) {
  CHECK_EQ(query_int("SELECT count(*) FROM schema_version"), NMIGRATIONS);
  CHECK_EQ(query_int("SELECT max(version) FROM schema_version"), NMIGRATIONS);
  CHECK_EQ(query_int("SELECT count(DISTINCT version) FROM schema_version"),
           NMIGRATIONS);
#define INDEX_NAMES                                                            \
  "('streams_process', 'blocks_stream_time', 'blocks_process_time', "          \
  "'blocks_end_time', 'blocks_insert_time', 'partitions_view_begin', "         \
  "'partitions_view_end', 'partitions_end_time', "                             \
  "'partition_blocks_partition')"
  const char *indexes =
      is_pg ? "SELECT count(*) FROM pg_indexes WHERE indexname IN " INDEX_NAMES
            : "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
              "name IN " INDEX_NAMES;
  CHECK_EQ(query_int(indexes), 9);
  CHECK_EQ(query_int("SELECT count(*) FROM processes"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM streams"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM blocks"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 0);
}

TEST(migrations_create_schema_and_reopen_is_noop) {
  fresh_catalog();
  tl_catalog *c = open_catalog();
  int v = -1;
  CHECK_EQ(tl_catalog_schema_version(c, &v), 0);
  CHECK_EQ(v, NMIGRATIONS);
  tl_catalog_close(c);
  check_schema();
  long long applied = query_int("SELECT max(applied_at) FROM schema_version");
  for (int i = 0; i < 2; i++) {
    c = open_catalog();
    CHECK_EQ(tl_catalog_schema_version(c, &v), 0);
    CHECK_EQ(v, NMIGRATIONS);
    tl_catalog_close(c);
  }
  check_schema();
  CHECK_EQ(query_int("SELECT max(applied_at) FROM schema_version"), applied);
}

#define OPENERS 6

typedef struct opener {
  pthread_barrier_t *go;
  int rc;
  char err[512];
} opener;

static void *open_at_once(void *arg) {
  opener *o = arg;
  tl_catalog *c = NULL;
  pthread_barrier_wait(o->go);
  o->rc = tl_catalog_open(&c, spec, o->err, sizeof o->err);
  if (!o->rc) {
    bool existed;
    proc_msg p;
    make_process(&p, 7, "/bin/same");
    o->rc = tl_catalog_insert_process(c, &p.m, raw_of(&p.raw), 1, &existed);
    tl_bytes_free(&p.raw);
  }
  tl_catalog_close(c);
  return NULL;
}

TEST(concurrent_open_of_fresh_catalog) {
  fresh_catalog();
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, OPENERS);
  pthread_t th[OPENERS];
  opener o[OPENERS];
  for (int i = 0; i < OPENERS; i++) {
    memset(&o[i], 0, sizeof o[i]);
    o[i].go = &go;
    CHECK_EQ(pthread_create(&th[i], NULL, open_at_once, &o[i]), 0);
  }
  for (int i = 0; i < OPENERS; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&go);
  for (int i = 0; i < OPENERS; i++)
    if (o[i].rc)
      FAILF("opener %d: %s: %s", i, tl_errname(o[i].rc), o[i].err);
  CHECK_EQ(query_int("SELECT count(*) FROM schema_version"), NMIGRATIONS);
  CHECK_EQ(query_int("SELECT max(version) FROM schema_version"), NMIGRATIONS);
  CHECK_EQ(query_int("SELECT count(*) FROM processes"), 1);
}

/* Separate processes too: nothing shared but the database. */
TEST(concurrent_open_from_processes) {
  fresh_catalog();
  pid_t pids[4];
  for (int i = 0; i < 4; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0);
    if (pids[i] == 0) {
      tl_catalog *c = NULL;
      char err[512];
      int rc = tl_catalog_open(&c, spec, err, sizeof err);
      if (rc)
        fprintf(stderr, "child %d: %s\n", i, err);
      tl_catalog_close(c);
      _exit(rc ? 1 : 0);
    }
  }
  for (int i = 0; i < 4; i++) {
    int status;
    CHECK(waitpid(pids[i], &status, 0) == pids[i]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  CHECK_EQ(query_int("SELECT count(*) FROM schema_version"), NMIGRATIONS);
}

/* ---- Rows ---------------------------------------------------------------- */

TEST(round_trip_every_field) {
  world w;
  make_world(&w);
  uint8_t proc[16];
  CHECK_EQ(tl_catalog_stream_process(w.c, w.s.m.stream_id, proc), 0);
  CHECK(!memcmp(proc, w.p.m.process_id, 16));

  tl_catalog_block b = make_block(1, w.s.m.stream_id, w.p.m.process_id, 5);
  b.begin_time = -1234567890123LL; /* before 1970 */
  b.end_time = (1LL << 62) + 17;
  b.begin_ticks = (1ULL << 62) - 1;
  b.end_ticks = (1ULL << 63) + 99; /* keeps its bit pattern */
  b.nb_objects = 0xffffffffu;
  b.payload_size = 0xfffffffeu;
  b.blob_size = (1ULL << 40) + 1;
  b.blob_crc = 0xffffffffu;
  b.insert_time = 1700000000123456789LL;
  insert_block(w.c, &b);
  tl_catalog_block got;
  memset(&got, 0x55, sizeof got);
  CHECK_EQ(tl_catalog_get_block(w.c, b.block_id, &got), 0);
  check_block_eq(&got, &b);

  tl_catalog_block b2 = make_block(2, w.s.m.stream_id, w.p.m.process_id, 0);
  b2.begin_time = INT64_MIN;
  b2.end_time = INT64_MAX;
  b2.begin_ticks = 0;
  b2.end_ticks = UINT64_MAX;
  b2.nb_objects = 0;
  b2.blob_crc = 0;
  insert_block(w.c, &b2);
  CHECK_EQ(tl_catalog_get_block(w.c, b2.block_id, &got), 0);
  check_block_eq(&got, &b2);

  /* The raw column holds the message bytes exactly; ids are canonical. */
  char sql[256], text[37];
  tl_uuid_format(w.p.m.process_id, text);
  snprintf(sql, sizeof sql,
           "SELECT length(raw) FROM processes WHERE process_id = '%s'", text);
  CHECK_EQ(query_int(sql), (long long)w.p.raw.len);
  snprintf(sql, sizeof sql,
           "SELECT start_ticks FROM processes WHERE process_id = '%s'", text);
  CHECK_EQ(query_int(sql), (long long)((1ULL << 62) + 3));
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM processes WHERE process_id = '%s' AND "
           "parent_process_id IS NULL",
           text);
  CHECK_EQ(query_int(sql), 1);
  free_world(&w);
}

TEST(unknown_ids_not_found) {
  world w;
  make_world(&w);
  uint8_t id[16], proc[16];
  id_of(id, 0xee, 99);
  CHECK_EQ(tl_catalog_stream_process(w.c, id, proc), TL_ENOTFOUND);
  tl_catalog_block got;
  CHECK_EQ(tl_catalog_get_block(w.c, id, &got), TL_ENOTFOUND);
  free_world(&w);
}

TEST(insert_idempotent) {
  world w;
  make_world(&w);
  bool existed = false, same = false;
  CHECK_EQ(
      tl_catalog_insert_process(w.c, &w.p.m, raw_of(&w.p.raw), 77, &existed),
      0);
  CHECK(existed);
  existed = false;
  CHECK_EQ(
      tl_catalog_insert_stream(w.c, &w.s.m, raw_of(&w.s.raw), 77, &existed), 0);
  CHECK(existed);

  tl_catalog_block b = make_block(1, w.s.m.stream_id, w.p.m.process_id, 50);
  insert_block(w.c, &b);
  existed = false;
  CHECK_EQ(tl_catalog_insert_block(w.c, &b, &existed, &same), 0);
  CHECK(existed && same);
  /* Same id, other blob: reported, and the stored row is untouched. */
  tl_catalog_block other = b;
  other.blob_crc ^= 1;
  other.end_time = 999;
  existed = same = false;
  CHECK_EQ(tl_catalog_insert_block(w.c, &other, &existed, &same), 0);
  CHECK(existed && !same);
  other = b;
  other.blob_size++;
  existed = false, same = true;
  CHECK_EQ(tl_catalog_insert_block(w.c, &other, &existed, &same), 0);
  CHECK(existed && !same);
  tl_catalog_block got;
  CHECK_EQ(tl_catalog_get_block(w.c, b.block_id, &got), 0);
  check_block_eq(&got, &b);

  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.processes, 1);
  CHECK_U64(n.streams, 1);
  CHECK_U64(n.blocks, 1);
  /* The first insert time is kept. */
  CHECK_EQ(query_int("SELECT insert_time FROM processes"), 5);
  free_world(&w);
}

/* A group of rows in one call: new rows, one already there identical (not
 * a conflict) and one already there with another blob (a conflict, the
 * stored row untouched); then a group naming an unknown stream fails. */
TEST(insert_blocks_as_a_group) {
  world w;
  make_world(&w);
  tl_catalog_block rows[7];
  for (uint32_t i = 0; i < 7; i++)
    rows[i] = make_block(10 + i, w.s.m.stream_id, w.p.m.process_id, 100 + i);
  insert_block(w.c, &rows[5]);
  insert_block(w.c, &rows[6]);
  tl_catalog_block stored6 = rows[6];
  rows[6].blob_crc ^= 1;
  size_t conflicts = 99;
  int rc = tl_catalog_insert_blocks(w.c, rows, 7, &conflicts);
  if (rc)
    FAILF("insert_blocks: %s: %s", tl_errname(rc), tl_catalog_errmsg(w.c));
  CHECK_U64(conflicts, 1);
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.blocks, 7);
  for (int i = 0; i < 6; i++) {
    tl_catalog_block got;
    CHECK_EQ(tl_catalog_get_block(w.c, rows[i].block_id, &got), 0);
    check_block_eq(&got, &rows[i]);
  }
  tl_catalog_block got;
  CHECK_EQ(tl_catalog_get_block(w.c, stored6.block_id, &got), 0);
  check_block_eq(&got, &stored6);
  /* Nothing to insert is no work. */
  CHECK_EQ(tl_catalog_insert_blocks(w.c, rows, 0, &conflicts), 0);
  CHECK_U64(conflicts, 0);

  uint8_t ghost[16];
  id_of(ghost, 0xb2, 404);
  tl_catalog_block bad[2] = {
      make_block(30, w.s.m.stream_id, w.p.m.process_id, 300),
      make_block(31, ghost, w.p.m.process_id, 301)};
  rc = tl_catalog_insert_blocks(w.c, bad, 2, &conflicts);
  CHECK(rc < 0);
  const char *msg = tl_catalog_errmsg(w.c);
  if (!strstr(msg, "FOREIGN KEY") && !strstr(msg, "foreign key"))
    FAILF("unexpected message: %s", msg);
  CHECK_EQ(tl_catalog_get_block(w.c, bad[1].block_id, &got), TL_ENOTFOUND);
  /* The good row alone goes in (again, if it went in with the group). */
  CHECK_EQ(tl_catalog_insert_blocks(w.c, bad, 1, &conflicts), 0);
  CHECK_U64(conflicts, 0);
  CHECK_EQ(tl_catalog_get_block(w.c, bad[0].block_id, &got), 0);
  free_world(&w);
}

TEST(conflicts_name_the_object) {
  world w;
  make_world(&w);
  char text[37];
  bool existed = false;
  proc_msg p2;
  make_process(&p2, 1, "/usr/bin/other"); /* same id, other content */
  CHECK_EQ(tl_catalog_insert_process(w.c, &p2.m, raw_of(&p2.raw), 9, &existed),
           TL_ECONFLICT);
  CHECK(existed);
  const char *msg = tl_catalog_errmsg(w.c);
  if (!strstr(msg, "process"))
    FAILF("message does not name the process: %s", msg);
  if (is_pg) { /* and the id (the SQLite backend does not yet) */
    tl_uuid_format(w.p.m.process_id, text);
    CHECK(strstr(msg, text));
  }

  stream_msg s2;
  make_stream(&s2, 1, w.p.m.process_id, "metrics");
  existed = false;
  CHECK_EQ(tl_catalog_insert_stream(w.c, &s2.m, raw_of(&s2.raw), 9, &existed),
           TL_ECONFLICT);
  CHECK(existed);
  msg = tl_catalog_errmsg(w.c);
  if (!strstr(msg, "stream"))
    FAILF("message does not name the stream: %s", msg);
  CHECK_EQ(query_int("SELECT count(*) FROM processes WHERE exe = "
                     "'/usr/bin/app'"),
           1);
  tl_bytes_free(&p2.raw);
  tl_bytes_free(&s2.raw);
  free_world(&w);
}

TEST(stream_of_unknown_process_not_found) {
  world w;
  make_world(&w);
  uint8_t ghost[16];
  id_of(ghost, 0xa1, 404);
  stream_msg s;
  make_stream(&s, 2, ghost, "log");
  bool existed = true;
  CHECK_EQ(tl_catalog_insert_stream(w.c, &s.m, raw_of(&s.raw), 9, &existed),
           TL_ENOTFOUND);
  CHECK(!existed);
  char text[37];
  tl_uuid_format(ghost, text);
  const char *msg = tl_catalog_errmsg(w.c);
  if (!strstr(msg, text))
    FAILF("message does not name the process: %s", msg);
  CHECK_EQ(query_int("SELECT count(*) FROM streams"), 1);
  tl_bytes_free(&s.raw);
  free_world(&w);
}

TEST(block_of_unknown_stream_refused) {
  world w;
  make_world(&w);
  uint8_t ghost[16];
  id_of(ghost, 0xb2, 404);
  tl_catalog_block b = make_block(1, ghost, w.p.m.process_id, 5);
  bool existed = true, same = true;
  int rc = tl_catalog_insert_block(w.c, &b, &existed, &same);
  CHECK(rc < 0);
  CHECK(rc != TL_EUNAVAILABLE); /* retrying would not help */
  CHECK_EQ(rc, TL_EIO);         /* what both backends say today */
  const char *msg = tl_catalog_errmsg(w.c);
  if (!strstr(msg, "FOREIGN KEY") && !strstr(msg, "foreign key"))
    FAILF("unexpected message: %s", msg);
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.blocks, 0);
  free_world(&w);
}

TEST(counts) {
  world w;
  make_world(&w);
  tl_catalog_counts n;
  memset(&n, 0xff, sizeof n);
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.processes, 1);
  CHECK_U64(n.streams, 1);
  CHECK_U64(n.blocks, 0);
  CHECK_U64(n.events, 0);
  CHECK_U64(n.bytes, 0);
  proc_msg p2;
  make_process(&p2, 2, "/bin/two");
  stream_msg s2;
  make_stream(&s2, 2, p2.m.process_id, "metrics");
  bool existed;
  CHECK_EQ(tl_catalog_insert_process(w.c, &p2.m, raw_of(&p2.raw), 1, &existed),
           0);
  CHECK_EQ(tl_catalog_insert_stream(w.c, &s2.m, raw_of(&s2.raw), 1, &existed),
           0);
  uint64_t events = 0, bytes = 0;
  for (uint32_t i = 0; i < 7; i++) {
    tl_catalog_block b =
        make_block(i, i % 2 ? s2.m.stream_id : w.s.m.stream_id,
                   i % 2 ? p2.m.process_id : w.p.m.process_id, i);
    b.blob_size = (1ULL << 33) + i; /* sums past 32 bits */
    insert_block(w.c, &b);
    events += b.nb_objects;
    bytes += b.blob_size;
  }
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.processes, 2);
  CHECK_U64(n.streams, 2);
  CHECK_U64(n.blocks, 7);
  CHECK_U64(n.events, events);
  CHECK_U64(n.bytes, bytes);
  tl_bytes_free(&p2.raw);
  tl_bytes_free(&s2.raw);
  free_world(&w);
}

/* ---- Retention ----------------------------------------------------------- */

#define NRETIRE 40

typedef struct seen {
  pthread_mutex_t mu;
  int calls[NRETIRE];
  int64_t last_end;
  bool ordered;
  unsigned total;
} seen;

static void on_retired(void *ctx, const tl_catalog_block *b) {
  seen *s = ctx;
  uint32_t n;
  memcpy(&n, b->block_id + 10, 4);
  pthread_mutex_lock(&s->mu);
  if (n < NRETIRE)
    s->calls[n]++;
  if (b->end_time < s->last_end)
    s->ordered = false;
  s->last_end = b->end_time;
  s->total++;
  pthread_mutex_unlock(&s->mu);
}

/* Block i ends at time (i * 7) % NRETIRE * 10: inserted out of order. */
static int64_t end_of(uint32_t i) {
  return (int64_t)((i * 7) % NRETIRE) * 10;
}

static void fill_retirable(world *w) {
  for (uint32_t i = 0; i < NRETIRE; i++) {
    tl_catalog_block b =
        make_block(i, w->s.m.stream_id, w->p.m.process_id, end_of(i));
    insert_block(w->c, &b);
  }
}

TEST(retire_batch_bounded_oldest_first) {
  world w;
  make_world(&w);
  fill_retirable(&w);
  seen s = {.ordered = true, .last_end = INT64_MIN};
  pthread_mutex_init(&s.mu, NULL);
  const int64_t cutoff = 175; /* end times 0..170: 18 blocks */
  unsigned removed, batches = 0, sum = 0;
  unsigned expect[] = {5, 5, 5, 3, 0};
  for (;;) {
    s.last_end = INT64_MIN; /* each batch is oldest first */
    CHECK_EQ(tl_catalog_retire_batch(w.c, cutoff, 5, on_retired, &s, &removed),
             0);
    CHECK(batches < 5);
    CHECK_EQ(removed, expect[batches]);
    batches++;
    sum += removed;
    if (!removed)
      break;
  }
  CHECK_EQ(sum, 18);
  CHECK_EQ(s.total, 18);
  CHECK(s.ordered);
  for (uint32_t i = 0; i < NRETIRE; i++)
    CHECK_EQ(s.calls[i], end_of(i) < cutoff ? 1 : 0);
  tl_catalog_block got;
  for (uint32_t i = 0; i < NRETIRE; i++) {
    uint8_t id[16];
    id_of(id, 0xc3, i);
    CHECK_EQ(tl_catalog_get_block(w.c, id, &got),
             end_of(i) < cutoff ? TL_ENOTFOUND : 0);
  }
  /* A limit of 0 removes nothing; a NULL callback is allowed. */
  CHECK_EQ(tl_catalog_retire_batch(w.c, INT64_MAX, 0, on_retired, &s, &removed),
           0);
  CHECK_EQ(removed, 0);
  CHECK_EQ(tl_catalog_retire_batch(w.c, INT64_MAX, 100, NULL, NULL, &removed),
           0);
  CHECK_EQ(removed, NRETIRE - 18);
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.blocks, 0);
  CHECK_U64(n.processes, 1); /* retention removes blocks only */
  CHECK_U64(n.streams, 1);
  pthread_mutex_destroy(&s.mu);
  free_world(&w);
}

typedef struct retirer {
  tl_catalog *c;
  seen *s;
  pthread_barrier_t *go;
  int rc;
} retirer;

static void *retire_loop(void *arg) {
  retirer *r = arg;
  unsigned removed;
  pthread_barrier_wait(r->go);
  do {
    r->rc = tl_catalog_retire_batch(r->c, 300, 3, on_retired, r->s, &removed);
  } while (!r->rc && removed);
  return NULL;
}

/* Several retirers at once (two handles, two threads each): every old block
 * is removed and reported exactly once. */
TEST(retire_batch_concurrent) {
  world w;
  make_world(&w);
  fill_retirable(&w);
  tl_catalog *c2 = open_catalog();
  seen s = {.ordered = true, .last_end = INT64_MIN};
  pthread_mutex_init(&s.mu, NULL);
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, 4);
  pthread_t th[4];
  retirer r[4];
  for (int i = 0; i < 4; i++) {
    r[i] = (retirer){i % 2 ? c2 : w.c, &s, &go, 0};
    CHECK_EQ(pthread_create(&th[i], NULL, retire_loop, &r[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++)
    if (r[i].rc)
      FAILF("retirer %d: %s: %s", i, tl_errname(r[i].rc),
            tl_catalog_errmsg(w.c));
  unsigned expected = 0;
  for (uint32_t i = 0; i < NRETIRE; i++) {
    expected += end_of(i) < 300;
    CHECK_EQ(s.calls[i], end_of(i) < 300 ? 1 : 0);
  }
  CHECK_EQ(s.total, expected);
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.blocks, NRETIRE - expected);
  pthread_barrier_destroy(&go);
  pthread_mutex_destroy(&s.mu);
  tl_catalog_close(c2);
  free_world(&w);
}

/* ---- Listing ------------------------------------------------------------- */

typedef struct listing {
  uint32_t order[64];
  int n, stop_after;
} listing;

static int list_block(void *ctx, const tl_catalog_block *b) {
  listing *l = ctx;
  uint32_t n;
  memcpy(&n, b->block_id + 10, 4);
  l->order[l->n++] = n;
  return l->n == l->stop_after ? 42 : 0;
}

TEST(foreach_block_in_insert_order) {
  world w;
  make_world(&w);
  /* insert_time decides; equal insert times keep the insert order. */
  uint32_t ids[] = {9, 3, 7, 1, 8, 2};
  int64_t times[] = {100, 100, 50, 100, 200, 50};
  for (int i = 0; i < 6; i++) {
    tl_catalog_block b =
        make_block(ids[i], w.s.m.stream_id, w.p.m.process_id, 1);
    b.insert_time = times[i];
    insert_block(w.c, &b);
  }
  listing l = {.stop_after = -1};
  CHECK_EQ(tl_catalog_foreach_block(w.c, list_block, &l), 0);
  uint32_t want[] = {7, 2, 9, 3, 1, 8};
  CHECK_EQ(l.n, 6);
  for (int i = 0; i < 6; i++)
    CHECK_EQ(l.order[i], want[i]);
  /* A nonzero return stops the walk and is returned. */
  listing s = {.stop_after = 2};
  CHECK_EQ(tl_catalog_foreach_block(w.c, list_block, &s), 42);
  CHECK_EQ(s.n, 2);
  /* The handle is still usable afterwards. */
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.blocks, 6);
  free_world(&w);
}

/* ---- Threads ------------------------------------------------------------- */

typedef struct inserter {
  tl_catalog *c;
  world *w;
  uint32_t first;
  int rc;
} inserter;

static void *insert_many(void *arg) {
  inserter *in = arg;
  for (uint32_t i = 0; i < 50 && !in->rc; i++) {
    tl_catalog_block b = make_block(in->first + i, in->w->s.m.stream_id,
                                    in->w->p.m.process_id, i);
    bool existed, same;
    in->rc = tl_catalog_insert_block(in->c, &b, &existed, &same);
    tl_catalog_block got;
    if (!in->rc)
      in->rc = tl_catalog_get_block(in->c, b.block_id, &got);
  }
  return NULL;
}

TEST(handle_shared_by_threads) {
  world w;
  make_world(&w);
  pthread_t th[8];
  inserter in[8];
  for (int i = 0; i < 8; i++) {
    in[i] = (inserter){w.c, &w, (uint32_t)i * 1000, 0};
    CHECK_EQ(pthread_create(&th[i], NULL, insert_many, &in[i]), 0);
  }
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 8; i++)
    CHECK_EQ(in[i].rc, 0);
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.blocks, 400);
  free_world(&w);
}

/* A bad row (unknown stream) among concurrent good ones fails alone: the
 * good rows are all stored, whatever batching the backend does. */
typedef struct mixed {
  tl_catalog *c;
  world *w;
  uint32_t first;
  bool bad;
  int failures, rc;
} mixed;

static void *insert_mixed(void *arg) {
  mixed *m = arg;
  uint8_t ghost[16];
  id_of(ghost, 0xb2, 404);
  for (uint32_t i = 0; i < 40; i++) {
    tl_catalog_block b =
        make_block(m->first + i, m->bad ? ghost : m->w->s.m.stream_id,
                   m->w->p.m.process_id, i);
    bool existed, same;
    int rc = tl_catalog_insert_block(m->c, &b, &existed, &same);
    if (m->bad)
      m->failures += rc != 0;
    else if (rc && !m->rc)
      m->rc = rc;
  }
  return NULL;
}

TEST(bad_block_does_not_fail_others) {
  world w;
  make_world(&w);
  pthread_t th[6];
  mixed m[6];
  for (int i = 0; i < 6; i++) {
    m[i] = (mixed){w.c, &w, (uint32_t)i * 1000, i % 3 == 0, 0, 0};
    CHECK_EQ(pthread_create(&th[i], NULL, insert_mixed, &m[i]), 0);
  }
  for (int i = 0; i < 6; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 6; i++) {
    if (m[i].bad)
      CHECK_EQ(m[i].failures, 40);
    else if (m[i].rc)
      FAILF("good inserter %d: %s", i, tl_errname(m[i].rc));
  }
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(w.c, &n), 0);
  CHECK_U64(n.blocks, 4 * 40);
  free_world(&w);
}

/* ---- Health and outages -------------------------------------------------- */

TEST(health) {
  world w;
  make_world(&w);
  CHECK_EQ(tl_catalog_health(w.c), 0);
  free_world(&w);
  tl_catalog *c = NULL;
  char err[512] = "";
  int rc;
  if (is_pg) {
    /* Nothing listens on port 1. */
    rc = tl_catalog_open(&c, "postgresql://postgres@127.0.0.1:1/tracelake_test",
                         err, sizeof err);
  } else {
    rc = tl_catalog_open(&c, "/nonexistent-dir/catalog.db", err, sizeof err);
  }
  CHECK_EQ(rc, TL_EUNAVAILABLE);
  CHECK(c == NULL);
  if (!*err)
    FAILF("no message");
  fprintf(stderr, "open failure says: %s\n", err);
}

static void pg_script(const char *cmd, const char *dir) {
  const char *script = getenv("TL_TEST_PG_SCRIPT");
  if (!script)
    FAILF("TL_TEST_PG_SCRIPT is not set");
  char line[1024];
  snprintf(line, sizeof line, "'%s' %s '%s'", script, cmd, dir);
  if (system(line) != 0)
    FAILF("%s failed", line);
}

/* Holds all POOL (4) connections of the handle at once: four listings that
 * wait for each other inside their callbacks. Fails unless all succeed. */
typedef struct holder {
  tl_catalog *c;
  pthread_barrier_t *all;
  bool waited;
  int rc;
  char msg[512];
} holder;

static int hold(void *ctx, const tl_catalog_block *b) {
  holder *h = ctx;
  (void)b;
  if (!h->waited) {
    h->waited = true;
    pthread_barrier_wait(h->all);
  }
  return 0;
}

static void *hold_connection(void *arg) {
  holder *h = arg;
  h->rc = tl_catalog_foreach_block(h->c, hold, h);
  snprintf(h->msg, sizeof h->msg, "%s", tl_catalog_errmsg(h->c));
  if (!h->waited) /* failed before its first row: do not strand the others */
    pthread_barrier_wait(h->all);
  return NULL;
}

static void use_all_connections(tl_catalog *c) {
  pthread_barrier_t all;
  pthread_barrier_init(&all, NULL, 4);
  pthread_t th[4];
  holder h[4];
  for (int i = 0; i < 4; i++) {
    h[i] = (holder){c, &all, false, 0, ""};
    CHECK_EQ(pthread_create(&th[i], NULL, hold_connection, &h[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&all);
  for (int i = 0; i < 4; i++)
    if (h[i].rc)
      FAILF("connection %d: %s: %s", i, tl_errname(h[i].rc), h[i].msg);
}

static char private_dir[512];
static void stop_private(void) {
  if (private_dir[0])
    pg_script("stop", private_dir);
}

/* PostgreSQL only: the server goes away and comes back; the handle reports
 * TL_EUNAVAILABLE meanwhile and recovers without being reopened. Uses a
 * private server so that other tests are not disturbed. */
TEST(survives_server_restart) {
  if (!getenv("TL_TEST_CATALOG") || strcmp(getenv("TL_TEST_CATALOG"), "pg")) {
    fprintf(stderr, "PostgreSQL only\n");
    return;
  }
  snprintf(private_dir, sizeof private_dir, "%s-restart-%d", fixture_dir(),
           (int)getpid());
  pg_script("start", private_dir);
  atexit(stop_private);
  char path[600], uri[512];
  snprintf(path, sizeof path, "%s/uri", private_dir);
  read_file_line(path, uri, sizeof uri);
  fresh_catalog_on(uri);
  world w;
  tl_catalog *c = open_catalog();
  w.c = c;
  bool existed;
  make_process(&w.p, 1, "/usr/bin/app");
  make_stream(&w.s, 1, w.p.m.process_id, "log");
  CHECK_EQ(tl_catalog_insert_process(c, &w.p.m, raw_of(&w.p.raw), 1, &existed),
           0);
  CHECK_EQ(tl_catalog_insert_stream(c, &w.s.m, raw_of(&w.s.raw), 1, &existed),
           0);
  pthread_t th[4];
  inserter in[4];
  for (int i = 0; i < 4; i++) {
    in[i] = (inserter){c, &w, (uint32_t)i * 1000, 0};
    CHECK_EQ(pthread_create(&th[i], NULL, insert_many, &in[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ(in[i].rc, 0);
  }
  use_all_connections(c); /* so that every one of them sees the outage */

  /* A restart between two requests fails none: every pooled connection
   * notices its server went away and reconnects. */
  pg_script("down", private_dir);
  pg_script("up", private_dir);
  use_all_connections(c);

  /* Down: every call fails with a readable message, none hangs. */
  pg_script("down", private_dir);
  for (int i = 0; i < 6; i++) { /* more calls than pooled connections */
    CHECK_EQ(tl_catalog_health(c), TL_EUNAVAILABLE);
    tl_catalog_counts n;
    CHECK_EQ(tl_catalog_counts_get(c, &n), TL_EUNAVAILABLE);
    const char *msg = tl_catalog_errmsg(c);
    if (strncmp(msg, "postgresql: ", 12) || strchr(msg, '\n'))
      FAILF("unreadable message: %s", msg);
  }
  fprintf(stderr, "while down: %s\n", tl_catalog_errmsg(c));
  tl_catalog_block b = make_block(5000, w.s.m.stream_id, w.p.m.process_id, 1);
  bool same;
  CHECK_EQ(tl_catalog_insert_block(c, &b, &existed, &same), TL_EUNAVAILABLE);

  pg_script("up", private_dir);
  CHECK_EQ(tl_catalog_health(c), 0);
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(c, &n), 0);
  CHECK_U64(n.blocks, 200);
  use_all_connections(c); /* each pooled connection recovered */
  insert_block(c, &b);
  for (int i = 0; i < 4; i++) {
    in[i] = (inserter){c, &w, 10000 + (uint32_t)i * 1000, 0};
    CHECK_EQ(pthread_create(&th[i], NULL, insert_many, &in[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ(in[i].rc, 0);
  }
  free_world(&w);
}

/* ---- Partitions ---------------------------------------------------------- */

/* A partition of (view, instance) numbered n, covering [begin, end]. */
static tl_partition make_part(const char *view, const char *instance,
                              uint32_t n, int64_t begin, int64_t end,
                              uint64_t nb_blocks) {
  tl_partition p;
  memset(&p, 0, sizeof p);
  snprintf(p.view_name, sizeof p.view_name, "%s", view);
  snprintf(p.instance, sizeof p.instance, "%s", instance);
  p.begin_time = begin;
  p.end_time = end;
  p.min_insert_time = 1000 + n;
  p.max_insert_time = 2000 + n;
  snprintf(p.file, sizeof p.file, "views/%s/%s/%u.parquet", view, instance, n);
  p.file_size = 4096 + n;
  p.nb_rows = 100 + n;
  p.nb_blocks = nb_blocks;
  p.created_time = 1700000000000000000LL + n;
  return p;
}

static void check_part_eq(const tl_partition *a, const tl_partition *b) {
  CHECK_EQ(a->id, b->id);
  CHECK_STR(a->view_name, b->view_name);
  CHECK_STR(a->instance, b->instance);
  CHECK_EQ(a->begin_time, b->begin_time);
  CHECK_EQ(a->end_time, b->end_time);
  CHECK_EQ(a->min_insert_time, b->min_insert_time);
  CHECK_EQ(a->max_insert_time, b->max_insert_time);
  CHECK_STR(a->file, b->file);
  CHECK_U64(a->file_size, b->file_size);
  CHECK_U64(a->nb_rows, b->nb_rows);
  CHECK_U64(a->nb_blocks, b->nb_blocks);
  CHECK_EQ(a->created_time, b->created_time);
}

static void add_part(tl_catalog *c, tl_partition *p, const uint8_t (*ids)[16],
                     unsigned n) {
  int rc = tl_catalog_add_partition(c, p, ids, n);
  if (rc)
    FAILF("add_partition %s: %s: %s", p->file, tl_errname(rc),
          tl_catalog_errmsg(c));
  CHECK(p->id > 0);
}

#define MAXLISTED 1500

typedef struct parts {
  tl_partition p[MAXLISTED];
  int n, stop_after;
} parts;

static int collect_part(void *ctx, const tl_partition *p) {
  parts *l = ctx;
  CHECK(l->n < MAXLISTED);
  l->p[l->n++] = *p;
  return l->n == l->stop_after ? 7 : 0;
}

/* Lists (view, instance) over [begin, end) into a static buffer. */
static parts *list_parts(tl_catalog *c, const char *view, const char *inst,
                         int64_t begin, int64_t end) {
  static parts l;
  memset(&l, 0, sizeof l);
  l.stop_after = -1;
  int rc =
      tl_catalog_list_partitions(c, view, inst, begin, end, collect_part, &l);
  if (rc)
    FAILF("list_partitions: %s: %s", tl_errname(rc), tl_catalog_errmsg(c));
  return &l;
}

static uint32_t block_number(const tl_catalog_block *b) {
  uint32_t n;
  memcpy(&n, b->block_id + 10, 4);
  return n;
}

/* Blocks to materialize, as block numbers; checks each row's fields
 * against `all` (indexed by block number). */
static unsigned todo(tl_catalog *c, const char *view, const char *inst,
                     int scope, const char *tag, int64_t max_insert,
                     unsigned limit, uint32_t *out,
                     const tl_catalog_block *all) {
  tl_catalog_block got[64];
  unsigned n = 99;
  CHECK(limit <= 64);
  int rc = tl_catalog_blocks_to_materialize(
      c, view, inst, scope, tag, INT64_MIN, max_insert, limit, got, &n);
  if (rc)
    FAILF("blocks_to_materialize: %s: %s", tl_errname(rc),
          tl_catalog_errmsg(c));
  CHECK(n <= limit);
  for (unsigned i = 0; i < n; i++) {
    out[i] = block_number(&got[i]);
    if (all)
      check_block_eq(&got[i], &all[out[i]]);
  }
  return n;
}

#define CHECK_LIST(got, n, ...)                                                \
  do {                                                                         \
    uint32_t want_[] = {__VA_ARGS__};                                          \
    unsigned nwant_ = sizeof want_ / sizeof want_[0];                          \
    CHECK_EQ((n), nwant_);                                                     \
    for (unsigned i_ = 0; i_ < nwant_; i_++)                                   \
      CHECK_EQ((got)[i_], want_[i_]);                                          \
  } while (0)

/* A stream with the given tags (`ntags` slices, which may hold any byte). */
static void add_stream(tl_catalog *c, stream_msg *s, uint32_t n,
                       const uint8_t proc[16], const tl_slice *tags,
                       uint32_t ntags, int64_t insert_time) {
  memset(s, 0, sizeof *s);
  id_of(s->m.stream_id, 0xb2, n);
  memcpy(s->m.process_id, proc, 16);
  s->m.ntags = ntags;
  for (uint32_t i = 0; i < ntags; i++)
    s->m.tags[i] = tags[i];
  tl_bytes_init(&s->raw, 1 << 20);
  CHECK_EQ(tl_stream_encode(&s->m, &s->raw), 0);
  bool existed;
  int rc = tl_catalog_insert_stream(c, &s->m, raw_of(&s->raw), insert_time,
                                    &existed);
  if (rc)
    FAILF("insert_stream: %s: %s", tl_errname(rc), tl_catalog_errmsg(c));
}

TEST(migration_2_upgrades_v1_catalog) {
  world w;
  make_world(&w);
  tl_catalog_block b = make_block(1, w.s.m.stream_id, w.p.m.process_id, 50);
  insert_block(w.c, &b);
  free_world(&w);
  /* Back to the v1 schema, which is exactly what migration 1 created. */
  exec_direct("DROP TABLE partition_blocks");
  exec_direct("DROP TABLE partitions");
  exec_direct("DELETE FROM schema_version WHERE version = 2");
  CHECK_EQ(query_int("SELECT max(version) FROM schema_version"), 1);
  /* Several servers upgrade it at once: migration 2 is applied once. */
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, 4);
  pthread_t th[4];
  opener o[4];
  for (int i = 0; i < 4; i++) {
    memset(&o[i], 0, sizeof o[i]);
    o[i].go = &go;
    CHECK_EQ(pthread_create(&th[i], NULL, open_at_once, &o[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&go);
  for (int i = 0; i < 4; i++)
    if (o[i].rc)
      FAILF("opener %d: %s: %s", i, tl_errname(o[i].rc), o[i].err);
  CHECK_EQ(query_int("SELECT count(*) FROM schema_version"), NMIGRATIONS);
  CHECK_EQ(query_int("SELECT max(version) FROM schema_version"), 2);
  CHECK_EQ(query_int("SELECT count(*) FROM schema_version WHERE version = 2"),
           1);
  /* The v1 rows are intact and the new tables work. */
  tl_catalog *c = open_catalog();
  int v;
  CHECK_EQ(tl_catalog_schema_version(c, &v), 0);
  CHECK_EQ(v, 2);
  tl_catalog_block got;
  CHECK_EQ(tl_catalog_get_block(c, b.block_id, &got), 0);
  check_block_eq(&got, &b);
  tl_partition p = make_part("log_entries", "global", 1, 0, 10, 1);
  uint8_t ids[1][16];
  memcpy(ids[0], b.block_id, 16);
  add_part(c, &p, (const uint8_t(*)[16])ids, 1);
  CHECK_EQ(list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX)->n, 1);
  tl_catalog_close(c);
}

TEST(blocks_to_materialize_filters) {
  world w; /* process 1, stream 1 ["log"] */
  make_world(&w);
  proc_msg p2;
  make_process(&p2, 2, "/bin/two");
  bool existed;
  CHECK_EQ(tl_catalog_insert_process(w.c, &p2.m, raw_of(&p2.raw), 1, &existed),
           0);
  const uint8_t *p1 = w.p.m.process_id, *pr2 = p2.m.process_id;
  stream_msg s2, s3, s4, s5;
  tl_slice metrics[] = {tl_slice_str("metrics")};
  tl_slice xlog[] = {tl_slice_str("x"), tl_slice_str("log")};
  /* Odd tags: commas and quotes, a control byte, a NUL (which PostgreSQL
   * cannot decode from JSON), a prefix of "log". */
  static const uint8_t nul[] = {'n', 0, 'l'};
  tl_slice odd[] = {tl_slice_str("a,"),   tl_slice_str(",b"),
                    tl_slice_str("q\"u"), tl_slice_str("c\x01"),
                    {nul, sizeof nul},    tl_slice_str("lo")};
  tl_slice log[] = {tl_slice_str("log")};
  add_stream(w.c, &s2, 2, pr2, metrics, 1, 1);
  add_stream(w.c, &s3, 3, p1, xlog, 2, 1);
  add_stream(w.c, &s4, 4, pr2, odd, 6, 1);
  add_stream(w.c, &s5, 5, pr2, log, 1, 1);

  /* Block n: its stream and insert time. */
  static tl_catalog_block all[8];
  const uint8_t *streams[8] = {NULL,
                               w.s.m.stream_id,
                               s2.m.stream_id,
                               s3.m.stream_id,
                               w.s.m.stream_id,
                               s5.m.stream_id,
                               w.s.m.stream_id,
                               s4.m.stream_id};
  const uint8_t *procs[8] = {NULL, p1, pr2, p1, p1, pr2, p1, pr2};
  int64_t inserted[8] = {0, 100, 50, 300, 200, 150, 100, 120};
  for (uint32_t n = 1; n < 8; n++) {
    all[n] = make_block(n, streams[n], procs[n], 10 * n);
    all[n].insert_time = inserted[n];
    insert_block(w.c, &all[n]);
  }
  uint32_t got[64];
  unsigned n;
  /* By insert time, ties in insert order; other tags left out. */
  n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 1, 6, 5, 4, 3);
  n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", 150, 10, got,
           all); /* inclusive */
  CHECK_LIST(got, n, 1, 6, 5);
  n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", 99, 10, got, all);
  CHECK_EQ(n, 0);
  /* A lower bound on the insert time, inclusive too. */
  tl_catalog_block since[10];
  CHECK_EQ(tl_catalog_blocks_to_materialize(w.c, "log_entries", "global",
                                            TL_SCOPE_ALL, "log", 150, 1000, 10,
                                            since, &n),
           0);
  CHECK_EQ(n, 3);
  CHECK_EQ(block_number(&since[0]), 5);
  CHECK_EQ(block_number(&since[1]), 4);
  CHECK_EQ(block_number(&since[2]), 3);
  CHECK_EQ(tl_catalog_blocks_to_materialize(w.c, "log_entries", "global",
                                            TL_SCOPE_ALL, "log", 301, 1000, 10,
                                            since, &n),
           0);
  CHECK_EQ(n, 0);
  n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", 1000, 2, got,
           all);
  CHECK_LIST(got, n, 1, 6);
  n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", 1000, 0, got,
           all);
  CHECK_EQ(n, 0);
  n = todo(w.c, "metrics", "global", TL_SCOPE_ALL, "metrics", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 2);
  /* Tags match whole elements, however odd. */
  const char *odd_hits[] = {"a,", ",b", "q\"u", "c\x01"};
  for (int i = 0; i < 4; i++) {
    n = todo(w.c, "v", "global", TL_SCOPE_ALL, odd_hits[i], 1000, 10, got, all);
    CHECK_LIST(got, n, 7);
  }
  const char *misses[] = {",", "\"a,\"", "a", "n", "", "LOG", "lo\"g"};
  for (int i = 0; i < 7; i++) {
    n = todo(w.c, "v", "global", TL_SCOPE_ALL, misses[i], 1000, 10, got, all);
    if (n)
      FAILF("tag \"%s\" matched %u blocks", misses[i], n);
  }
  n = todo(w.c, "v", "global", TL_SCOPE_ALL, "lo", 1000, 10, got, all);
  CHECK_LIST(got, n, 7);

  /* Scopes: a process's or a stream's blocks. */
  char p1_text[37], p2_text[37], s1_text[37], s3_text[37];
  tl_uuid_format(p1, p1_text);
  tl_uuid_format(pr2, p2_text);
  tl_uuid_format(w.s.m.stream_id, s1_text);
  tl_uuid_format(s3.m.stream_id, s3_text);
  n = todo(w.c, "log_entries", p1_text, TL_SCOPE_PROCESS, "log", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 1, 6, 4, 3);
  n = todo(w.c, "log_entries", p2_text, TL_SCOPE_PROCESS, "log", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 5);
  n = todo(w.c, "log_entries", s1_text, TL_SCOPE_STREAM, "log", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 1, 6, 4);
  n = todo(w.c, "log_entries", s3_text, TL_SCOPE_STREAM, "log", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 3);
  n = todo(w.c, "log_entries", s3_text, TL_SCOPE_STREAM, "metrics", 1000, 10,
           got, all);
  CHECK_EQ(n, 0);

  /* Materialized blocks are no longer offered to that view instance, and
   * only to it. */
  tl_partition p = make_part("log_entries", "global", 1, 0, 100, 2);
  uint8_t ids[2][16];
  memcpy(ids[0], all[6].block_id, 16);
  memcpy(ids[1], all[1].block_id, 16);
  add_part(w.c, &p, (const uint8_t(*)[16])ids, 2);
  n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 5, 4, 3);
  n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", 1000, 1, got,
           all);
  CHECK_LIST(got, n, 5);
  n = todo(w.c, "log_stats", "global", TL_SCOPE_ALL, "log", 1000, 10, got, all);
  CHECK_LIST(got, n, 1, 6, 5, 4, 3);
  n = todo(w.c, "log_entries", p1_text, TL_SCOPE_PROCESS, "log", 1000, 10, got,
           all);
  CHECK_LIST(got, n, 1, 6, 4, 3);

  /* Bad arguments. */
  tl_catalog_block out[4];
  char upper[37], long_view[40];
  snprintf(upper, sizeof upper, "%s", p1_text);
  for (char *q = upper; *q; q++)
    if (*q >= 'a' && *q <= 'f')
      *q = (char)(*q - 'a' + 'A');
  memset(long_view, 'v', sizeof long_view - 1);
  long_view[sizeof long_view - 1] = 0;
  struct {
    const char *view, *inst;
    int scope;
    const char *tag;
  } bad[] = {
      {"log_entries", "global", 7, "log"},
      {"log_entries", "global", TL_SCOPE_PROCESS, "log"},
      {"log_entries", upper, TL_SCOPE_PROCESS, "log"},
      {"log_entries", "global", TL_SCOPE_STREAM, "log"},
      {long_view, "global", TL_SCOPE_ALL, "log"},
      {"", "global", TL_SCOPE_ALL, "log"},
      {"log_entries", "", TL_SCOPE_ALL, "log"},
      {"log_entries", "global", TL_SCOPE_ALL, NULL},
  };
  for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    n = 5;
    int rc = tl_catalog_blocks_to_materialize(w.c, bad[i].view, bad[i].inst,
                                              bad[i].scope, bad[i].tag, 0, 1000,
                                              4, out, &n);
    if (rc != TL_EINVAL || n != 0)
      FAILF("bad call %u: %s, n=%u", i, tl_errname(rc), n);
  }
  tl_bytes_free(&p2.raw);
  tl_bytes_free(&s2.raw);
  tl_bytes_free(&s3.raw);
  tl_bytes_free(&s4.raw);
  tl_bytes_free(&s5.raw);
  free_world(&w);
}

/* Fake block ids (the partition tables do not refer to blocks). */
static void block_ids(uint8_t (*ids)[16], uint32_t first, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    id_of(ids[i], 0xd4, first + i);
}

TEST(add_partition_round_trip) {
  fresh_catalog();
  tl_catalog *c = open_catalog();
  tl_partition p = make_part("log_entries", "global", 1, -1234567890123LL,
                             (1LL << 62) + 17, 3);
  p.min_insert_time = INT64_MIN;
  p.max_insert_time = INT64_MAX;
  p.file_size = (1ULL << 40) + 1;
  p.nb_rows = (1ULL << 63) + 5; /* keeps its bit pattern */
  p.created_time = 1700000000123456789LL;
  snprintf(p.file, sizeof p.file,
           "views/log_entries/global/2024-01-01/00-00-00_%s.parquet",
           "0123456789abcdef0123456789abcdef");
  uint8_t ids[3][16];
  block_ids(ids, 1, 3);
  p.id = -1;
  add_part(c, &p, (const uint8_t(*)[16])ids, 3);
  parts *l = list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, 1);
  check_part_eq(&l->p[0], &p);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 3);
  char sql[200], text[37];
  tl_uuid_format(ids[2], text);
  snprintf(sql, sizeof sql,
           "SELECT partition_id FROM partition_blocks WHERE view_name = "
           "'log_entries' AND instance = 'global' AND block_id = '%s'",
           text);
  CHECK_EQ(query_int(sql), p.id);

  /* The same blocks in another view or instance; ids grow. */
  tl_partition q = make_part("log_stats", "global", 2, 0, 10, 3);
  add_part(c, &q, (const uint8_t(*)[16])ids, 3);
  CHECK(q.id > p.id);
  tl_partition r = make_part("log_entries", "other", 3, 0, 10, 3);
  add_part(c, &r, (const uint8_t(*)[16])ids, 3);
  CHECK(r.id > q.id);
  CHECK_EQ(list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX)->n, 1);
  l = list_parts(c, "log_stats", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, 1);
  check_part_eq(&l->p[0], &q);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 9);

  /* A retry (same file, same fields) returns the recorded partition and
   * writes nothing; the same file with other fields conflicts. */
  tl_partition again = p;
  again.id = 0;
  add_part(c, &again, (const uint8_t(*)[16])ids, 3);
  CHECK_EQ(again.id, p.id);
  again = p;
  again.nb_rows++;
  CHECK_EQ(tl_catalog_add_partition(c, &again, (const uint8_t(*)[16])ids, 3),
           TL_ECONFLICT);
  if (!strstr(tl_catalog_errmsg(c), p.file))
    FAILF("message does not name the file: %s", tl_catalog_errmsg(c));
  /* A partition without blocks is allowed. */
  tl_partition empty = make_part("log_entries", "global", 4, 5, 5, 0);
  add_part(c, &empty, NULL, 0);
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 4);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 9);
  tl_catalog_close(c);
}

TEST(add_partition_rejects_bad_input) {
  fresh_catalog();
  tl_catalog *c = open_catalog();
  uint8_t ids[3][16];
  block_ids(ids, 1, 3);
  const char *files[] = {"/abs/x.parquet", "../x.parquet", "views/../../x",
                         "views/..", ""};
  for (int i = 0; i < 5; i++) {
    tl_partition p = make_part("v", "global", 1, 0, 1, 1);
    snprintf(p.file, sizeof p.file, "%s", files[i]);
    CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids, 1),
             TL_EINVAL);
  }
  tl_partition p = make_part("v", "global", 1, 2, 1, 1); /* begin > end */
  CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids, 1),
           TL_EINVAL);
  p = make_part("v", "global", 1, 0, 1, 1);
  p.min_insert_time = p.max_insert_time + 1;
  CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids, 1),
           TL_EINVAL);
  p = make_part("v", "global", 1, 0, 1, 2); /* nb_blocks != nblocks */
  CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids, 1),
           TL_EINVAL);
  memcpy(ids[1], ids[0], 16); /* a block twice */
  CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids, 2),
           TL_EINVAL);
  p = make_part("v", "global", 1, 0, 1, 1);
  memset(p.view_name, 'v', sizeof p.view_name); /* no terminating NUL */
  CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids, 1),
           TL_EINVAL);
  p = make_part("v", "", 1, 0, 1, 1);
  CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids, 1),
           TL_EINVAL);
  p = make_part("v", "global", 1, 0, 1, TL_PARTITION_MAX_BLOCKS + 1u);
  CHECK_EQ(tl_catalog_add_partition(c, &p, (const uint8_t(*)[16])ids,
                                    TL_PARTITION_MAX_BLOCKS + 1u),
           TL_ETOOBIG);
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 0);
  tl_catalog_close(c);
}

TEST(add_partition_conflict_writes_nothing) {
  fresh_catalog();
  tl_catalog *c = open_catalog();
  uint8_t ids[4][16]; /* blocks 1..4 */
  block_ids(ids, 1, 4);
  tl_partition a = make_part("log_entries", "global", 1, 0, 10, 2);
  add_part(c, &a, (const uint8_t(*)[16])ids, 2); /* blocks 1, 2 */
  /* Blocks 2 and 3: 2 is taken, so 3 is not recorded either. */
  tl_partition b = make_part("log_entries", "global", 2, 0, 10, 2);
  b.id = -5;
  CHECK_EQ(tl_catalog_add_partition(c, &b, (const uint8_t(*)[16])(ids + 1), 2),
           TL_ECONFLICT);
  CHECK_EQ(b.id, -5);
  char text[37];
  tl_uuid_format(ids[1], text);
  if (!strstr(tl_catalog_errmsg(c), text))
    FAILF("message does not name the block: %s", tl_catalog_errmsg(c));
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 1);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 2);
  parts *l = list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, 1);
  check_part_eq(&l->p[0], &a);
  /* Its file can be recorded later with free blocks. */
  add_part(c, &b, (const uint8_t(*)[16])(ids + 2), 2); /* blocks 3, 4 */
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 4);
  tl_catalog_close(c);
}

TEST(list_partitions_overlap) {
  fresh_catalog();
  tl_catalog *c = open_catalog();
  const int64_t day = 1700006400000000000LL, min = 60000000000LL;
  /* A day of one-minute partitions, [begin, begin + 1 min - 1 ns], recorded
   * out of order, and a few of the same minutes in another instance. */
  uint64_t t0 = tl_mono_ns();
  for (uint32_t k = 0; k < 1440; k++) {
    uint32_t i = (k * 7) % 1440;
    tl_partition p = make_part("log_entries", "global", i, day + i * min,
                               day + (i + 1) * min - 1, 1);
    uint8_t id[1][16];
    block_ids(id, i, 1);
    add_part(c, &p, (const uint8_t(*)[16])id, 1);
  }
  fprintf(stderr, "1440 add_partition: %.1f ms\n",
          (double)(tl_mono_ns() - t0) / 1e6);
  for (uint32_t i = 598; i < 604; i++) {
    tl_partition p = make_part("log_entries", "other", i, day + i * min,
                               day + (i + 1) * min - 1, 0);
    add_part(c, &p, NULL, 0);
  }
  t0 = tl_mono_ns();
  /* Half a minute into minute 600, for a minute: minutes 600 and 601. */
  parts *l = list_parts(c, "log_entries", "global", day + 600 * min + min / 2,
                        day + 601 * min + min / 2);
  fprintf(stderr, "one-minute list_partitions: %.2f ms\n",
          (double)(tl_mono_ns() - t0) / 1e6);
  CHECK_EQ(l->n, 2);
  CHECK_EQ(l->p[0].begin_time, day + 600 * min);
  CHECK_EQ(l->p[1].begin_time, day + 601 * min);
  CHECK_STR(l->p[0].file, "views/log_entries/global/600.parquet");
  CHECK_STR(l->p[0].instance, "global");
  /* Exactly minute 600: the range's end is excluded, partitions' ends are
   * included. */
  l = list_parts(c, "log_entries", "global", day + 600 * min, day + 601 * min);
  CHECK_EQ(l->n, 1);
  CHECK_EQ(l->p[0].begin_time, day + 600 * min);
  l = list_parts(c, "log_entries", "global", day + 601 * min - 1,
                 day + 601 * min + 1);
  CHECK_EQ(l->n, 2);
  /* One nanosecond. */
  l = list_parts(c, "log_entries", "global", day + 600 * min + 5,
                 day + 600 * min + 6);
  CHECK_EQ(l->n, 1);
  /* Everything, by begin time. */
  l = list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, 1440);
  for (int i = 0; i < 1440; i++)
    CHECK_EQ(l->p[i].begin_time, day + i * min);
  /* Open ends. */
  CHECK_EQ(list_parts(c, "log_entries", "global", INT64_MIN, day + 10 * min)->n,
           10);
  CHECK_EQ(
      list_parts(c, "log_entries", "global", day + 1430 * min, INT64_MAX)->n,
      10);
  /* Before, after, empty and reversed ranges. */
  CHECK_EQ(list_parts(c, "log_entries", "global", INT64_MIN, day)->n, 0);
  CHECK_EQ(
      list_parts(c, "log_entries", "global", day + 1440 * min, INT64_MAX)->n,
      0);
  CHECK_EQ(
      list_parts(c, "log_entries", "global", day + 5 * min, day + 5 * min)->n,
      0);
  CHECK_EQ(
      list_parts(c, "log_entries", "global", day + 6 * min, day + 5 * min)->n,
      0);
  CHECK_EQ(list_parts(c, "log_entries", "other", INT64_MIN, INT64_MAX)->n, 6);
  CHECK_EQ(list_parts(c, "log_entries", "nobody", INT64_MIN, INT64_MAX)->n, 0);
  /* A nonzero return stops the walk and is returned. */
  static parts stop;
  memset(&stop, 0, sizeof stop);
  stop.stop_after = 3;
  CHECK_EQ(tl_catalog_list_partitions(c, "log_entries", "global", INT64_MIN,
                                      INT64_MAX, collect_part, &stop),
           7);
  CHECK_EQ(stop.n, 3);
  tl_catalog_counts n;
  CHECK_EQ(tl_catalog_counts_get(c, &n), 0); /* the handle still works */
  tl_catalog_close(c);
}

static long long blocks_of(int64_t partition_id) {
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM partition_blocks WHERE partition_id = %lld",
           (long long)partition_id);
  return query_int(sql);
}

TEST(replace_partitions_merges_atomically) {
  fresh_catalog();
  tl_catalog *c = open_catalog();
  uint8_t ids[5][16];
  block_ids(ids, 1, 5);
  tl_partition a = make_part("log_entries", "global", 1, 0, 9, 2);
  tl_partition b = make_part("log_entries", "global", 2, 10, 19, 1);
  tl_partition d = make_part("log_entries", "global", 3, 20, 29, 2);
  add_part(c, &a, (const uint8_t(*)[16])ids, 2);       /* blocks 1, 2 */
  add_part(c, &b, (const uint8_t(*)[16])(ids + 2), 1); /* block 3 */
  add_part(c, &d, (const uint8_t(*)[16])(ids + 3), 2); /* blocks 4, 5 */
  tl_partition other = make_part("log_stats", "global", 4, 0, 9, 0);
  add_part(c, &other, NULL, 0);

  /* Wrong block count, a partition of another view, an id twice, no id:
   * nothing changes. */
  int64_t old[] = {b.id, a.id};
  tl_partition m = make_part("log_entries", "global", 10, 0, 19, 4);
  CHECK_EQ(tl_catalog_replace_partitions(c, old, 2, &m), TL_EINVAL);
  int64_t mixed_ids[] = {a.id, other.id};
  m.nb_blocks = 2;
  CHECK_EQ(tl_catalog_replace_partitions(c, mixed_ids, 2, &m), TL_EINVAL);
  int64_t twice[] = {a.id, a.id};
  CHECK_EQ(tl_catalog_replace_partitions(c, twice, 2, &m), TL_EINVAL);
  CHECK_EQ(tl_catalog_replace_partitions(c, old, 0, &m), TL_EINVAL);
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 4);
  CHECK_EQ(blocks_of(a.id), 2);
  CHECK_EQ(blocks_of(other.id), 0);

  m.nb_blocks = 3;
  m.id = 0;
  CHECK_EQ(tl_catalog_replace_partitions(c, old, 2, &m), 0);
  CHECK(m.id > other.id);
  parts *l = list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, 2);
  check_part_eq(&l->p[0], &m);
  check_part_eq(&l->p[1], &d);
  CHECK_EQ(blocks_of(m.id), 3);
  CHECK_EQ(blocks_of(a.id), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 5);
  /* The merged blocks stay materialized. */
  tl_partition again = make_part("log_entries", "global", 11, 0, 9, 1);
  CHECK_EQ(tl_catalog_add_partition(c, &again, (const uint8_t(*)[16])ids, 1),
           TL_ECONFLICT);
  /* A retry of the same merge returns it. */
  tl_partition retry = m;
  retry.id = 0;
  CHECK_EQ(tl_catalog_replace_partitions(c, old, 2, &retry), 0);
  CHECK_EQ(retry.id, m.id);

  /* One of the old partitions is gone: nothing written, d keeps its
   * blocks. */
  int64_t gone[] = {d.id, a.id};
  tl_partition m2 = make_part("log_entries", "global", 12, 0, 29, 5);
  CHECK_EQ(tl_catalog_replace_partitions(c, gone, 2, &m2), TL_ECONFLICT);
  char want[40];
  snprintf(want, sizeof want, "%lld", (long long)a.id);
  if (!strstr(tl_catalog_errmsg(c), want))
    FAILF("message does not name the partition: %s", tl_catalog_errmsg(c));
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 3);
  CHECK_EQ(blocks_of(d.id), 2);
  l = list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, 2);
  check_part_eq(&l->p[1], &d);
  /* Merging everything that is left. */
  int64_t rest[] = {m.id, d.id};
  CHECK_EQ(tl_catalog_replace_partitions(c, rest, 2, &m2), 0);
  l = list_parts(c, "log_entries", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, 1);
  check_part_eq(&l->p[0], &m2);
  CHECK_EQ(blocks_of(m2.id), 5);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 5);
  tl_catalog_close(c);
}

/* Two compactors merge overlapping sets at once: one wins, the other finds
 * a partition gone; the blocks end up in exactly one partition. */
typedef struct compactor {
  tl_catalog *c;
  pthread_barrier_t *go;
  int64_t old[2];
  tl_partition p;
  int rc;
} compactor;

static void *compact(void *arg) {
  compactor *k = arg;
  pthread_barrier_wait(k->go);
  k->rc = tl_catalog_replace_partitions(k->c, k->old, 2, &k->p);
  return NULL;
}

TEST(replace_partitions_concurrent) {
  fresh_catalog();
  tl_catalog *c = open_catalog(), *c2 = open_catalog();
  for (int round = 0; round < 5; round++) {
    /* SQLite's foreign_keys is off on this connection: no cascade. */
    exec_direct("DELETE FROM partition_blocks");
    exec_direct("DELETE FROM partitions");
    tl_partition parts3[3];
    for (uint32_t i = 0; i < 3; i++) {
      uint8_t id[1][16];
      block_ids(id, i, 1);
      parts3[i] = make_part("v", "global", i, 10 * i, 10 * i + 9, 1);
      add_part(c, &parts3[i], (const uint8_t(*)[16])id, 1);
    }
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    compactor k[2] = {{c,
                       &go,
                       {parts3[0].id, parts3[1].id},
                       make_part("v", "global", 100 + 2 * round, 0, 19, 2),
                       0},
                      {c2,
                       &go,
                       {parts3[1].id, parts3[2].id},
                       make_part("v", "global", 101 + 2 * round, 10, 29, 2),
                       0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
      CHECK_EQ(pthread_create(&th[i], NULL, compact, &k[i]), 0);
    for (int i = 0; i < 2; i++)
      pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    if (!((k[0].rc == 0 && k[1].rc == TL_ECONFLICT) ||
          (k[1].rc == 0 && k[0].rc == TL_ECONFLICT)))
      FAILF("round %d: %s and %s", round, tl_errname(k[0].rc),
            tl_errname(k[1].rc));
    CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 2);
    CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 3);
    compactor *won = k[0].rc == 0 ? &k[0] : &k[1];
    CHECK_EQ(blocks_of(won->p.id), 2);
  }
  tl_catalog_close(c2);
  tl_catalog_close(c);
}

/* ---- Partition retention ------------------------------------------------- */

#define NPARTS 25

typedef struct part_seen {
  pthread_mutex_t mu;
  int calls[NPARTS];
  int64_t last_end;
  bool ordered;
  unsigned total;
} part_seen;

static void on_part_retired(void *ctx, const tl_partition *p) {
  part_seen *s = ctx;
  unsigned n = 0;
  CHECK(sscanf(p->file, "views/v/global/%u.parquet", &n) == 1);
  pthread_mutex_lock(&s->mu);
  if (n < NPARTS)
    s->calls[n]++;
  if (p->end_time < s->last_end)
    s->ordered = false;
  s->last_end = p->end_time;
  s->total++;
  pthread_mutex_unlock(&s->mu);
}

/* Partition i ends at (i * 7) % NPARTS * 10 and holds two blocks. */
static int64_t part_end(uint32_t i) {
  return (int64_t)((i * 7) % NPARTS) * 10;
}

static void fill_parts(tl_catalog *c) {
  for (uint32_t i = 0; i < NPARTS; i++) {
    tl_partition p =
        make_part("v", "global", i, part_end(i) - 5, part_end(i), 2);
    uint8_t ids[2][16];
    block_ids(ids, 2 * i, 2);
    add_part(c, &p, (const uint8_t(*)[16])ids, 2);
  }
}

TEST(retire_partitions_bounded) {
  fresh_catalog();
  tl_catalog *c = open_catalog();
  fill_parts(c);
  part_seen s = {.ordered = true};
  pthread_mutex_init(&s.mu, NULL);
  const int64_t cutoff = 125; /* ends 0..120: 13 partitions */
  unsigned removed, batches = 0, sum = 0, expect[] = {5, 5, 3, 0};
  for (;;) {
    s.last_end = INT64_MIN; /* each batch is oldest first */
    CHECK_EQ(tl_catalog_retire_partitions(c, cutoff, 5, on_part_retired, &s,
                                          &removed),
             0);
    CHECK(batches < 4);
    CHECK_EQ(removed, expect[batches]);
    batches++;
    sum += removed;
    if (!removed)
      break;
  }
  CHECK_EQ(sum, 13);
  CHECK_EQ(s.total, 13);
  CHECK(s.ordered);
  for (uint32_t i = 0; i < NPARTS; i++)
    CHECK_EQ(s.calls[i], part_end(i) < cutoff ? 1 : 0);
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), NPARTS - 13);
  /* Their partition_blocks rows went with them. */
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"),
           2 * (NPARTS - 13));
  parts *l = list_parts(c, "v", "global", INT64_MIN, INT64_MAX);
  CHECK_EQ(l->n, NPARTS - 13);
  for (int i = 0; i < l->n; i++)
    CHECK(l->p[i].end_time >= cutoff);
  /* A limit of 0 removes nothing; a NULL callback is allowed. */
  CHECK_EQ(tl_catalog_retire_partitions(c, INT64_MAX, 0, on_part_retired, &s,
                                        &removed),
           0);
  CHECK_EQ(removed, 0);
  CHECK_EQ(
      tl_catalog_retire_partitions(c, INT64_MAX, 100, NULL, NULL, &removed), 0);
  CHECK_EQ(removed, NPARTS - 13);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 0);
  pthread_mutex_destroy(&s.mu);
  tl_catalog_close(c);
}

typedef struct part_retirer {
  tl_catalog *c;
  part_seen *s;
  pthread_barrier_t *go;
  int rc;
} part_retirer;

static void *retire_parts_loop(void *arg) {
  part_retirer *r = arg;
  unsigned removed;
  pthread_barrier_wait(r->go);
  do {
    r->rc = tl_catalog_retire_partitions(r->c, 175, 2, on_part_retired, r->s,
                                         &removed);
  } while (!r->rc && removed);
  return NULL;
}

/* Several retirers at once (two handles, two threads each): each partition
 * is removed and reported exactly once. */
TEST(retire_partitions_concurrent) {
  fresh_catalog();
  tl_catalog *c = open_catalog(), *c2 = open_catalog();
  fill_parts(c);
  part_seen s = {.ordered = true, .last_end = INT64_MIN};
  pthread_mutex_init(&s.mu, NULL);
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, 4);
  pthread_t th[4];
  part_retirer r[4];
  for (int i = 0; i < 4; i++) {
    r[i] = (part_retirer){i % 2 ? c2 : c, &s, &go, 0};
    CHECK_EQ(pthread_create(&th[i], NULL, retire_parts_loop, &r[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++)
    if (r[i].rc)
      FAILF("retirer %d: %s", i, tl_errname(r[i].rc));
  unsigned expected = 0;
  for (uint32_t i = 0; i < NPARTS; i++) {
    expected += part_end(i) < 175;
    CHECK_EQ(s.calls[i], part_end(i) < 175 ? 1 : 0);
  }
  CHECK_EQ(s.total, expected);
  CHECK_EQ(query_int("SELECT count(*) FROM partitions"), NPARTS - expected);
  pthread_barrier_destroy(&go);
  pthread_mutex_destroy(&s.mu);
  tl_catalog_close(c2);
  tl_catalog_close(c);
}

/* Block retention leaves partition_blocks alone: a block sent again after
 * its retirement is not materialized twice while its partition lives; the
 * partition's own retirement frees it. */
TEST(retire_batch_keeps_partition_blocks) {
  world w;
  make_world(&w);
  tl_catalog_block b[3];
  uint8_t ids[3][16];
  for (uint32_t i = 0; i < 3; i++) {
    b[i] = make_block(i, w.s.m.stream_id, w.p.m.process_id, 100 + i);
    insert_block(w.c, &b[i]);
    memcpy(ids[i], b[i].block_id, 16);
  }
  tl_partition p = make_part("log_entries", "global", 1, 0, 102, 3);
  add_part(w.c, &p, (const uint8_t(*)[16])ids, 3);
  unsigned removed;
  CHECK_EQ(tl_catalog_retire_batch(w.c, INT64_MAX, 10, NULL, NULL, &removed),
           0);
  CHECK_EQ(removed, 3);
  CHECK_EQ(query_int("SELECT count(*) FROM blocks"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 3);
  CHECK_EQ(list_parts(w.c, "log_entries", "global", INT64_MIN, INT64_MAX)->n,
           1);
  insert_block(w.c, &b[1]); /* sent again */
  uint32_t got[8];
  CHECK_EQ(todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log", INT64_MAX, 8,
                got, NULL),
           0);
  CHECK_EQ(
      tl_catalog_retire_partitions(w.c, INT64_MAX, 10, NULL, NULL, &removed),
      0);
  CHECK_EQ(removed, 1);
  CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), 0);
  unsigned n = todo(w.c, "log_entries", "global", TL_SCOPE_ALL, "log",
                    INT64_MAX, 8, got, NULL);
  CHECK_LIST(got, n, 1);
  free_world(&w);
}

/* ---- Rows for the SQL views ---------------------------------------------- */

typedef struct proc_rows {
  int n, stop_after;
  tl_catalog_process_row r[4];
  char text[4][6][64]; /* copies of the borrowed strings */
  char props[4][128];
} proc_rows;

static int collect_process(void *ctx, const tl_catalog_process_row *r) {
  proc_rows *l = ctx;
  CHECK(l->n < 4);
  int i = l->n++;
  l->r[i] = *r;
  const char *s[6] = {r->exe,      r->username, r->realname,
                      r->computer, r->distro,   r->cpu_brand};
  for (int k = 0; k < 6; k++)
    snprintf(l->text[i][k], sizeof l->text[i][k], "%s", s[k]);
  snprintf(l->props[i], sizeof l->props[i], "%s", r->properties);
  return l->n == l->stop_after ? 9 : 0;
}

typedef struct stream_rows {
  int n;
  tl_catalog_stream_row r[4];
  char tags[4][128], props[4][128];
} stream_rows;

static int collect_stream(void *ctx, const tl_catalog_stream_row *r) {
  stream_rows *l = ctx;
  CHECK(l->n < 4);
  int i = l->n++;
  l->r[i] = *r;
  snprintf(l->tags[i], sizeof l->tags[i], "%s", r->tags);
  snprintf(l->props[i], sizeof l->props[i], "%s", r->properties);
  return 0;
}

TEST(foreach_process_and_stream_rows) {
  world w; /* process 1 inserted at 5, its stream 1 ["log"] at 6 */
  make_world(&w);
  proc_msg p2;
  make_process(&p2, 2, "/bin/child");
  memcpy(p2.m.parent_process_id, w.p.m.process_id, 16);
  p2.m.nprops = 2;
  p2.m.props[1].key = tl_slice_str("a b");
  p2.m.props[1].value = tl_slice_str("line\n");
  tl_bytes_free(&p2.raw);
  tl_bytes_init(&p2.raw, 1 << 20);
  CHECK_EQ(tl_process_encode(&p2.m, &p2.raw), 0);
  bool existed;
  CHECK_EQ(tl_catalog_insert_process(w.c, &p2.m, raw_of(&p2.raw), 3, &existed),
           0);
  stream_msg s2;
  tl_slice tags[] = {tl_slice_str("metrics"), tl_slice_str("cpu")};
  add_stream(w.c, &s2, 2, p2.m.process_id, tags, 2, 4);

  static proc_rows pr;
  pr.stop_after = -1;
  CHECK_EQ(tl_catalog_foreach_process(w.c, collect_process, &pr), 0);
  CHECK_EQ(pr.n, 2);
  /* By insert time: the child (3) first. */
  const tl_catalog_process_row *r = &pr.r[0];
  CHECK(!memcmp(r->process_id, p2.m.process_id, 16));
  CHECK(r->has_parent);
  CHECK(!memcmp(r->parent_process_id, w.p.m.process_id, 16));
  CHECK_STR(pr.text[0][0], "/bin/child");
  CHECK_STR(pr.props[0], "{\"k\":\"v\\\\\\\"\",\"a b\":\"line\\u000a\"}");
  CHECK_EQ(r->insert_time, 3);
  CHECK_EQ(r->last_update_time, 3);
  r = &pr.r[1];
  CHECK(!memcmp(r->process_id, w.p.m.process_id, 16));
  CHECK(!r->has_parent);
  static const uint8_t zero[16];
  CHECK(!memcmp(r->parent_process_id, zero, 16));
  CHECK_STR(pr.text[1][0], "/usr/bin/app");
  CHECK_STR(pr.text[1][1], "alice");
  CHECK_STR(pr.text[1][2], "Alice \"Q\" O'Hara");
  CHECK_STR(pr.text[1][3], "host-1");
  CHECK_STR(pr.text[1][4], "Debian 12");
  CHECK_STR(pr.text[1][5], "Test CPU");
  CHECK_STR(pr.props[1], "{\"k\":\"v\\\\\\\"\"}");
  CHECK_U64(r->tsc_frequency, 2400000000ULL);
  CHECK_EQ(r->start_time, 1700000000000000000LL);
  CHECK_U64(r->start_ticks, (1ULL << 62) + 3);
  CHECK_EQ(r->insert_time, 5);
  CHECK_EQ(r->last_update_time, 5);
  /* A nonzero return stops the walk and is returned. */
  static proc_rows one;
  one.stop_after = 1;
  CHECK_EQ(tl_catalog_foreach_process(w.c, collect_process, &one), 9);
  CHECK_EQ(one.n, 1);

  static stream_rows sr;
  CHECK_EQ(tl_catalog_foreach_stream(w.c, collect_stream, &sr), 0);
  CHECK_EQ(sr.n, 2);
  CHECK(!memcmp(sr.r[0].stream_id, s2.m.stream_id, 16));
  CHECK(!memcmp(sr.r[0].process_id, p2.m.process_id, 16));
  CHECK_STR(sr.tags[0], "[\"metrics\",\"cpu\"]");
  CHECK_STR(sr.props[0], "{}");
  CHECK_EQ(sr.r[0].insert_time, 4);
  CHECK_EQ(sr.r[0].last_update_time, 4);
  CHECK(!memcmp(sr.r[1].stream_id, w.s.m.stream_id, 16));
  CHECK(!memcmp(sr.r[1].process_id, w.p.m.process_id, 16));
  CHECK_STR(sr.tags[1], "[\"log\"]");
  CHECK_STR(sr.props[1], "{}");
  CHECK_EQ(sr.r[1].insert_time, 6);
  CHECK_EQ(sr.r[1].last_update_time, 6);
  tl_bytes_free(&p2.raw);
  tl_bytes_free(&s2.raw);
  free_world(&w);
}

static tl_catalog_block in_range[8];

static int collect_in_range(void *ctx, const tl_catalog_block *b) {
  listing *l = ctx;
  uint32_t n = block_number(b);
  CHECK(n < 8);
  check_block_eq(b, &in_range[n]);
  l->order[l->n++] = n;
  return l->n == l->stop_after ? 42 : 0;
}

static listing blocks_in(tl_catalog *c, int64_t begin, int64_t end) {
  listing l = {.stop_after = -1};
  int rc = tl_catalog_foreach_block_in(c, begin, end, collect_in_range, &l);
  if (rc)
    FAILF("foreach_block_in: %s: %s", tl_errname(rc), tl_catalog_errmsg(c));
  return l;
}

TEST(foreach_block_in_range) {
  world w;
  make_world(&w);
  /* Block n covers [begins[n], ends[n]]; inserted in order of n, with
   * insert times that put 5 first. */
  int64_t begins[] = {10, 50, 199, 200, 150, 0, INT64_MIN, 100};
  int64_t ends[] = {99, 100, 300, 250, 160, 1000, INT64_MAX, 100};
  for (uint32_t n = 0; n < 8; n++) {
    in_range[n] = make_block(n, w.s.m.stream_id, w.p.m.process_id, ends[n]);
    in_range[n].begin_time = begins[n];
    in_range[n].insert_time = n == 5 ? 1 : 100 + n;
    insert_block(w.c, &in_range[n]);
  }
  listing l = blocks_in(w.c, 100, 200);
  CHECK_LIST(l.order, (unsigned)l.n, 5, 1, 2, 4, 6, 7);
  l = blocks_in(w.c, INT64_MIN, INT64_MAX);
  CHECK_LIST(l.order, (unsigned)l.n, 5, 0, 1, 2, 3, 4, 6, 7);
  l = blocks_in(w.c, 1001, INT64_MAX);
  CHECK_LIST(l.order, (unsigned)l.n, 6);
  l = blocks_in(w.c, INT64_MIN, 10);
  CHECK_LIST(l.order, (unsigned)l.n, 5, 6);
  l = blocks_in(w.c, 150, 150);
  CHECK_EQ(l.n, 0);
  listing s = {.stop_after = 2};
  CHECK_EQ(tl_catalog_foreach_block_in(w.c, INT64_MIN, INT64_MAX,
                                       collect_in_range, &s),
           42);
  CHECK_EQ(s.n, 2);
  free_world(&w);
}

/* ---- Concurrent materializers -------------------------------------------- */

#define NMATERIALIZERS 8
#define NSHARED 20

typedef struct materializer {
  tl_catalog *c;
  pthread_barrier_t *go;
  uint32_t n;
  int rc;
  char msg[512];
} materializer;

static void *materialize(void *arg) {
  materializer *m = arg;
  uint8_t ids[NSHARED][16];
  /* The same blocks, each materializer listing them in its own order. */
  for (uint32_t i = 0; i < NSHARED; i++)
    id_of(ids[i], 0xd4, (i * 7 + m->n) % NSHARED);
  tl_partition p = make_part("log_entries", "global", m->n, 0, 100, NSHARED);
  pthread_barrier_wait(m->go);
  m->rc =
      tl_catalog_add_partition(m->c, &p, (const uint8_t(*)[16])ids, NSHARED);
  snprintf(m->msg, sizeof m->msg, "%s", tl_catalog_errmsg(m->c));
  return NULL;
}

TEST(concurrent_materializers_one_wins) {
  fresh_catalog();
  tl_catalog *c = open_catalog(), *c2 = open_catalog();
  for (uint32_t round = 0; round < 3; round++) {
    /* SQLite's foreign_keys is off on this connection: no cascade. */
    exec_direct("DELETE FROM partition_blocks");
    exec_direct("DELETE FROM partitions");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, NMATERIALIZERS);
    pthread_t th[NMATERIALIZERS];
    materializer m[NMATERIALIZERS];
    for (uint32_t i = 0; i < NMATERIALIZERS; i++) {
      m[i] = (materializer){i % 2 ? c2 : c, &go, round * 100 + i, 0, ""};
      CHECK_EQ(pthread_create(&th[i], NULL, materialize, &m[i]), 0);
    }
    for (int i = 0; i < NMATERIALIZERS; i++)
      pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    int wins = 0;
    for (int i = 0; i < NMATERIALIZERS; i++) {
      if (m[i].rc == 0)
        wins++;
      else if (m[i].rc != TL_ECONFLICT)
        FAILF("materializer %d: %s: %s", i, tl_errname(m[i].rc), m[i].msg);
    }
    CHECK_EQ(wins, 1);
    CHECK_EQ(query_int("SELECT count(*) FROM partitions"), 1);
    CHECK_EQ(query_int("SELECT count(*) FROM partition_blocks"), NSHARED);
    CHECK_EQ(query_int("SELECT count(DISTINCT partition_id) FROM "
                       "partition_blocks"),
             1);
  }
  tl_catalog_close(c2);
  tl_catalog_close(c);
}

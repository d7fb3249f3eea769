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

#define NMIGRATIONS 1 /* keep equal to the migrations both backends hold */

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
  const char *indexes = is_pg ? "SELECT count(*) FROM pg_indexes WHERE "
                                "indexname IN ('streams_process', "
                                "'blocks_stream_time', 'blocks_process_time', "
                                "'blocks_end_time', 'blocks_insert_time')"
                              : "SELECT count(*) FROM sqlite_master WHERE "
                                "type = 'index' AND name IN "
                                "('streams_process', 'blocks_stream_time', "
                                "'blocks_process_time', 'blocks_end_time', "
                                "'blocks_insert_time')";
  CHECK_EQ(query_int(indexes), 5);
  CHECK_EQ(query_int("SELECT count(*) FROM processes"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM streams"), 0);
  CHECK_EQ(query_int("SELECT count(*) FROM blocks"), 0);
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

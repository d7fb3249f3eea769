/* test_ingest_durability.c - what survives: a server killed with SIGKILL in
 * the middle of a load from several senders and restarted on the same port
 * (the senders' HTTP sink retries, spills and resends), a SIGTERM while
 * requests are in flight, and a catalog or object store that becomes
 * unavailable (503, so that senders retry). The tests run on either catalog
 * backend (harness.h): a catalog is made unavailable by holding its write
 * lock (both backends) or by stopping its server (PostgreSQL). */
#include <curl/curl.h>
#include <ftw.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "lake/catalog.h"
#include "lake/store.h"
#include "test.h"
#include "wire/wire.h"

static void setup_stream(const th_server *s, th_ids *ids) {
  th_ids_new(ids);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  th_resp r;
  th_make_process(&b, ids->process, "/usr/bin/app");
  th_post(s, TL_MSG_PROCESS, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored process");
  b.len = 0;
  th_make_stream(&b, ids->stream, ids->process);
  th_post(s, TL_MSG_STREAM, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored stream");
  tl_bytes_free(&b);
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* A request on its own thread (and so its own connection). */
typedef struct bg_post {
  const th_server *s;
  int kind;
  const uint8_t *p;
  size_t n;
  th_resp r;
  uint64_t took_ms;
  atomic_bool done;
  pthread_t t;
} bg_post;

static void *bg_post_main(void *arg) {
  bg_post *b = arg;
  uint64_t t0 = th_now_ms();
  th_post(b->s, b->kind, b->p, b->n, &b->r);
  b->took_ms = th_now_ms() - t0;
  th_http_done();
  atomic_store(&b->done, true);
  return NULL;
}

/* Whether the request got its answer within `timeout_ms`. */
static bool bg_post_wait(bg_post *b, unsigned timeout_ms) {
  uint64_t end = th_now_ms() + timeout_ms;
  while (!atomic_load(&b->done) && th_now_ms() < end)
    th_sleep_ms(10);
  return atomic_load(&b->done);
}

static void bg_post_start(bg_post *b, const th_server *s, int kind,
                          const tl_bytes *m) {
  memset(b, 0, sizeof *b);
  b->s = s;
  b->kind = kind;
  b->p = m->p;
  b->n = m->len;
  atomic_init(&b->done, false);
  CHECK_EQ(pthread_create(&b->t, NULL, bg_post_main, b), 0);
}

/* Another client of the catalog holding its write lock, so that the
 * server's block commits wait. SQLite: an exclusive transaction on the file
 * (the server gives up after its busy timeout, 10 s). PostgreSQL: a
 * transaction holding LOCK TABLE blocks IN EXCLUSIVE MODE (reads pass,
 * writes wait). */
typedef struct catalog_lock {
  sqlite3 *db;
  PGconn *pg;
} catalog_lock;

static void catalog_lock_take(catalog_lock *l, const char *data) {
  memset(l, 0, sizeof *l);
  const char *spec = th_catalog_spec(data);
  if (th_pg()) {
    l->pg = PQconnectdb(spec);
    if (PQstatus(l->pg) != CONNECTION_OK)
      FAILF("connect %s: %s", spec, PQerrorMessage(l->pg));
    PGresult *r = PQexec(l->pg, "BEGIN; LOCK TABLE blocks IN EXCLUSIVE MODE");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      FAILF("locking the catalog: %s", PQerrorMessage(l->pg));
    PQclear(r);
    return;
  }
  CHECK_EQ(sqlite3_open(spec, &l->db), SQLITE_OK);
  sqlite3_busy_timeout(l->db, 10000); /* the server may be writing */
  CHECK_EQ(sqlite3_exec(l->db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
}

static void catalog_lock_release(catalog_lock *l) {
  if (l->pg) {
    PGresult *r = PQexec(l->pg, "ROLLBACK");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(l->pg);
  } else {
    CHECK_EQ(sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(l->db);
  }
  memset(l, 0, sizeof *l);
}

/* ---- Checking a lake after the fact ---------------------------------------
 */

#define MAX_SENDERS 8

typedef struct sender_info {
  pid_t pid;
  char out[512];
  uint8_t process[16];
  uint64_t recorded, dropped, blocks, failed, spilled, resent;
  uint64_t rows, events; /* found in the catalog */
} sender_info;

static void read_sender(sender_info *si) {
  tl_bytes b;
  CHECK_EQ(th_read_file(si->out, &b), 0);
  CHECK_EQ(tl_bytes_append(&b, "", 1), 0);
  const char *text = (const char *)b.p;
  const char *at = strstr(text, "process ");
  char id[37] = "";
  if (!at || sscanf(at, "process %36s", id) != 1 ||
      tl_uuid_parse(id, si->process))
    FAILF("no process id in the sender's output:\n%s", text);
  at = strstr(text, "recorded ");
  if (!at || sscanf(at,
                    "recorded %" SCNu64 " events (%" SCNu64
                    " dropped) in %" SCNu64 " blocks, %" SCNu64
                    " failed, %" SCNu64 " spilled, %" SCNu64 " resent",
                    &si->recorded, &si->dropped, &si->blocks, &si->failed,
                    &si->spilled, &si->resent) != 6)
    FAILF("no summary in the sender's output:\n%s", text);
  tl_bytes_free(&b);
}

static void read_sender_id(sender_info *si) {
  uint64_t end = th_now_ms() + 5000;
  while (th_now_ms() < end) {
    tl_bytes b;
    if (!th_read_file(si->out, &b)) {
      CHECK_EQ(tl_bytes_append(&b, "", 1), 0);
      const char *at = strstr((const char *)b.p, "process ");
      char id[37];
      bool ok = at && strchr(at, '\n') && sscanf(at, "process %36s", id) == 1 &&
                !tl_uuid_parse(id, si->process);
      tl_bytes_free(&b);
      if (ok)
        return;
    }
    th_sleep_ms(10);
  }
  FAILF("sender %d printed no process id", (int)si->pid);
}

typedef struct lake_check {
  tl_store *store;
  sender_info *senders;
  int nsenders;
  uint64_t rows;
} lake_check;

static int count_event(void *ctx, const tl_wire_event *ev) {
  (void)ev;
  (*(uint64_t *)ctx)++;
  return 0;
}

/* Every row's blob exists, matches the row (size, CRC, ids) and decodes to
 * the row's number of events. */
static int check_row(void *ctx, const tl_catalog_block *b) {
  lake_check *lc = ctx;
  char key[128], id[37];
  tl_store_block_key(b->process_id, b->stream_id, b->block_id, key);
  tl_uuid_format(b->block_id, id);
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = tl_store_get(lc->store, key, (size_t)1 << 30, &p, &n);
  if (rc)
    FAILF("block %s: its blob %s cannot be read: %s", id, key, tl_strerror(rc));
  if (n != b->blob_size || tl_block_content_crc(p, n) != b->blob_crc)
    FAILF("block %s: blob of %zu bytes does not match its row (%" PRIu64
          " bytes)",
          id, n, b->blob_size);
  uint64_t events = 0;
  tl_block_visitor v = {&events, NULL, count_event};
  tl_wire_error err = {0};
  if (tl_block_decode(p, n, &v, &err))
    FAILF("block %s: stored blob does not decode: %s", id, err.reason);
  tl_wire_block_header h;
  CHECK_EQ(tl_block_header_decode(p, n, &h, &err), 0);
  CHECK(!memcmp(h.block_id, b->block_id, 16));
  CHECK(!memcmp(h.stream_id, b->stream_id, 16));
  CHECK(!memcmp(h.process_id, b->process_id, 16));
  CHECK_U64(events, b->nb_objects);
  free(p);
  lc->rows++;
  for (int i = 0; i < lc->nsenders; i++)
    if (!memcmp(lc->senders[i].process, b->process_id, 16)) {
      lc->senders[i].rows++;
      lc->senders[i].events += b->nb_objects;
    }
  return 0;
}

/* Blob files: every complete blob (not a temp file) decodes, and has a row
 * when it belongs to a sender (whose unacknowledged blocks were resent). */
static tl_catalog *walk_cat;
static lake_check *walk_lc;
static unsigned walk_blobs, walk_temps, walk_unreferenced;

static int check_blob_file(const char *path, const struct stat *st, int flag,
                           struct FTW *ftw) {
  (void)st;
  if (flag != FTW_F)
    return 0;
  const char *name = path + ftw->base;
  if (!strncmp(name, ".tmp-", 5)) {
    walk_temps++;
    return 0;
  }
  walk_blobs++;
  tl_bytes b;
  CHECK_EQ(th_read_file(path, &b), 0);
  tl_wire_error err = {0};
  if (tl_block_decode(b.p, b.len, NULL, &err))
    FAILF("%s is a partial or corrupt blob: %s", path, err.reason);
  tl_wire_block_header h;
  CHECK_EQ(tl_block_header_decode(b.p, b.len, &h, &err), 0);
  tl_catalog_block row;
  bool referenced = tl_catalog_get_block(walk_cat, h.block_id, &row) == 0;
  for (int i = 0; i < walk_lc->nsenders; i++)
    if (!memcmp(walk_lc->senders[i].process, h.process_id, 16) && !referenced)
      FAILF("%s: a sender's blob without a catalog row", path);
  if (!referenced)
    walk_unreferenced++; /* the server's own telemetry, lost in the crash */
  tl_bytes_free(&b);
  return 0;
}

static void check_lake(const char *data, sender_info *senders, int nsenders) {
  tl_catalog *cat = th_catalog_open(data);
  tl_store *store;
  CHECK_EQ(tl_store_open(&store, data), 0);
  for (int i = 0; i < nsenders; i++)
    senders[i].rows = senders[i].events = 0;
  lake_check lc = {store, senders, nsenders, 0};
  CHECK_EQ(tl_catalog_foreach_block(cat, check_row, &lc), 0);

  char blobs[600];
  snprintf(blobs, sizeof blobs, "%s/blobs", data);
  walk_cat = cat;
  walk_lc = &lc;
  walk_blobs = walk_temps = walk_unreferenced = 0;
  nftw(blobs, check_blob_file, 16, FTW_PHYS);
  fprintf(stderr,
          "lake: %" PRIu64 " rows, %u blob files, %u unreferenced (server "
          "telemetry), %u temp files left by the crash\n",
          lc.rows, walk_blobs, walk_unreferenced, walk_temps);
  /* Temp files of the killed server are garbage the sweep removes. */
  tl_store_sweep_temp(store, 0);
  CHECK_EQ(th_count_files(data, ".tmp-", ""), 0);
  tl_store_close(store);
  tl_catalog_close(cat);
}

/* Rows of the senders' processes in the catalog right now. */
static uint64_t sender_rows(const char *data, sender_info *senders, int n) {
  tl_catalog *cat = th_catalog_open(data);
  tl_store *store;
  CHECK_EQ(tl_store_open(&store, data), 0);
  for (int i = 0; i < n; i++)
    senders[i].rows = senders[i].events = 0;
  lake_check lc = {store, senders, n, 0};
  CHECK_EQ(tl_catalog_foreach_block(cat, check_row, &lc), 0);
  uint64_t rows = 0;
  for (int i = 0; i < n; i++)
    rows += senders[i].rows;
  tl_store_close(store);
  tl_catalog_close(cat);
  return rows;
}

/* ---- Crash ----------------------------------------------------------------
 * Several senders stream blocks; the server is killed with SIGKILL midway
 * and restarted on the same port a second later. Afterwards the catalog
 * must hold exactly what the senders recorded, every row's blob must be
 * whole, and nothing may be left in the senders' spill directories. */
TEST(kill_9_during_load_loses_nothing) {
  th_server s;
  memset(&s, 0, sizeof s);
  const char *data = th_path("data");
  CHECK_EQ(th_server_start(&s, data, NULL), 0);
  const char *spill = th_path("spill");
  enum { NSEND = 4 };
  sender_info snd[NSEND];
  memset(snd, 0, sizeof snd);
  for (int i = 0; i < NSEND; i++) {
    char name[32];
    snprintf(name, sizeof name, "sender-%d.txt", i);
    snprintf(snd[i].out, sizeof snd[i].out, "%s", th_path(name));
    char *argv[] = {
        (char *)TL_INGEST_SENDER, s.base, (char *)spill, "4", "30000", NULL};
    snd[i].pid = th_spawn(argv, snd[i].out);
  }
  uint64_t t0 = th_now_ms();
  for (int i = 0; i < NSEND; i++)
    read_sender_id(&snd[i]);

  /* Kill only once blocks are flowing, and while the senders still send. */
  uint64_t before = 0;
  while ((before = sender_rows(data, snd, NSEND)) < 8 ||
         th_now_ms() - t0 < 1200) {
    if (th_now_ms() - t0 > 3000)
      FAILF("only %" PRIu64 " blocks stored in 3 s: no load to crash", before);
    th_sleep_ms(100);
  }
  for (int i = 0; i < NSEND; i++)
    if (th_wait(snd[i].pid, 0) != -1)
      FAILF("sender %d finished before the kill: the load is too short", i);
  CHECK_EQ(th_server_stop(&s, SIGKILL, 5000), 128 + SIGKILL);
  uint64_t killed_at = th_now_ms() - t0;
  before = sender_rows(data, snd, NSEND);
  th_sleep_ms(1000);
  /* Same port: the senders only know that one. */
  uint64_t until = th_now_ms() + 5000;
  while (th_server_start(&s, data, NULL)) {
    if (th_now_ms() > until)
      FAILF("cannot restart the server on port %u", s.port);
    th_sleep_ms(200);
  }
  fprintf(stderr,
          "killed at %" PRIu64 " ms with %" PRIu64
          " sender blocks stored, restarted at %" PRIu64 " ms\n",
          killed_at, before, th_now_ms() - t0);

  for (int i = 0; i < NSEND; i++) {
    uint64_t left = 45000 - (th_now_ms() - t0);
    int rc = th_wait(snd[i].pid, (unsigned)(left > 45000 ? 0 : left));
    tl_bytes out;
    th_read_file(snd[i].out, &out);
    CHECK_EQ(tl_bytes_append(&out, "", 1), 0);
    fprintf(stderr, "sender %d (exit %d): %s", i, rc, (const char *)out.p);
    if (rc != 0)
      FAILF("sender %d did not finish cleanly (exit %d)", i, rc);
    tl_bytes_free(&out);
    read_sender(&snd[i]);
  }
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  fprintf(stderr, "load done at %" PRIu64 " ms\n", th_now_ms() - t0);

  check_lake(data, snd, NSEND);
  uint64_t spilled = 0;
  for (int i = 0; i < NSEND; i++) {
    sender_info *si = &snd[i];
    CHECK_U64(si->dropped, 0);
    CHECK_U64(si->failed, 0);
    if (si->events != si->recorded || si->rows != si->blocks)
      FAILF("sender %d recorded %" PRIu64 " events in %" PRIu64
            " blocks; the catalog holds %" PRIu64 " events in %" PRIu64
            " blocks",
            i, si->recorded, si->blocks, si->events, si->rows);
    spilled += si->spilled;
  }
  CHECK(sender_rows(data, snd, NSEND) > before); /* resent after restart */
  /* Everything spilled during the outage was delivered and removed. */
  CHECK_EQ(th_count_files(spill, "", ".tl"), 0);
  fprintf(stderr, "%" PRIu64 " blocks spilled during the outage\n", spilled);
}

/* ---- Graceful shutdown ----------------------------------------------------
 */

/* A request inside the handler (its catalog commit waits for a lock held by
 * the test) when SIGTERM arrives: the server waits for it, answers 200, then
 * exits 0. */
TEST(sigterm_waits_for_the_request_in_progress) {
  th_server s;
  memset(&s, 0, sizeof s);
  CHECK_EQ(th_server_start(&s, th_path("data"), NULL), 0);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, &ids, 32, 5, 200000);

  catalog_lock lock;
  catalog_lock_take(&lock, s.data);
  bg_post req;
  bg_post_start(&req, &s, TL_MSG_BLOCK, &b);
  th_sleep_ms(500);
  kill(s.pid, SIGTERM);
  th_sleep_ms(700);
  CHECK(th_server_log_has(&s, "SIGTERM received"));
  CHECK_EQ(th_wait(s.pid, 0), -1); /* still finishing the request */
  CHECK(!atomic_load(&req.done));
  catalog_lock_release(&lock);
  pthread_join(req.t, NULL);
  int rc = th_wait(s.pid, 10000);
  s.pid = 0;
  CHECK_EQ(rc, 0);
  CHECK(th_server_log_has(&s, "tracelake: stopped"));

  tl_catalog *cat = th_catalog_open(s.data);
  tl_catalog_block row;
  bool stored = tl_catalog_get_block(cat, ids.block, &row) == 0;
  tl_catalog_close(cat);
  if (req.r.curl_rc && stored)
    FAILF("the block was stored but its answer was never sent (%s): the "
          "request in progress did not finish",
          curl_easy_strerror((CURLcode)req.r.curl_rc));
  TH_EXPECT(&req.r, 200, "stored block");
  CHECK(stored);
  CHECK_U64(row.blob_size, b.len);
  char path[1024];
  tl_bytes got;
  th_blob_path(s.data, &ids, path, sizeof path);
  CHECK_EQ(th_read_file(path, &got), 0);
  CHECK(got.len == b.len && !memcmp(got.p, b.p, b.len));
  tl_bytes_free(&got);
  tl_bytes_free(&b);
}

/* SIGTERM while a large body is still being uploaded: either the request
 * completes (200, stored), or the client gets a clean error and nothing of
 * the block is on disk. The server exits 0 and says "stopped" either way. */
TEST(sigterm_during_upload_is_all_or_nothing) {
  th_server s;
  memset(&s, 0, sizeof s);
  CHECK_EQ(th_server_start(&s, th_path("data"), NULL), 0);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, &ids, 32, 5, 4 << 20);
  int fd = th_connect(s.port);
  CHECK(fd >= 0);
  char head[256];
  int hn = snprintf(head, sizeof head,
                    "POST /ingestion/insert_block HTTP/1.1\r\nHost: "
                    "127.0.0.1\r\nContent-Length: %zu\r\n\r\n",
                    b.len);
  CHECK_EQ(th_send_all(fd, head, (size_t)hn), 0);
  CHECK_EQ(th_send_all(fd, b.p, b.len / 2), 0);
  th_sleep_ms(200);
  kill(s.pid, SIGTERM);
  th_sleep_ms(300);
  bool sent_all = th_send_all(fd, b.p + b.len / 2, b.len - b.len / 2) == 0;
  char buf[2048];
  bool closed;
  th_recv_until(fd, buf, sizeof buf, 10000, &closed);
  close(fd);
  int status = th_raw_status(buf);
  int rc = th_wait(s.pid, 15000);
  s.pid = 0;
  CHECK_EQ(rc, 0);
  CHECK(th_server_log_has(&s, "tracelake: stopped"));

  tl_catalog *cat = th_catalog_open(s.data);
  tl_catalog_block row;
  bool stored = tl_catalog_get_block(cat, ids.block, &row) == 0;
  tl_catalog_close(cat);
  char path[1024];
  th_blob_path(s.data, &ids, path, sizeof path);
  fprintf(stderr, "upload: %s, answer %d (%s), row %s, blob %s\n",
          sent_all ? "body sent" : "cut while sending", status,
          closed ? "then closed" : "open", stored ? "yes" : "no",
          exists(path) ? "yes" : "no");
  if (status == 200) {
    CHECK(strstr(buf, "stored block"));
    CHECK(stored);
    tl_bytes got;
    CHECK_EQ(th_read_file(path, &got), 0);
    CHECK(got.len == b.len && !memcmp(got.p, b.p, b.len));
    tl_bytes_free(&got);
  } else {
    /* A clean error: no answer (connection closed) or a 5xx to retry. */
    CHECK(status == 0 || status >= 500);
    CHECK(closed);
    CHECK(!stored);
    CHECK(!exists(path));
  }
  CHECK_EQ(th_count_files(s.data, ".tmp-", ""), 0);
  tl_bytes_free(&b);
}

/* ---- Unavailability -------------------------------------------------------
 */

/* The object store's directory disappears (replaced by a file: chmod does
 * not stop root, which the tests may run as): blocks get 503 and /health is
 * 503; once it is back, the same block is stored. */
TEST(store_unavailable_is_503_then_recovers) {
  th_server s;
  memset(&s, 0, sizeof s);
  const char *extra[] = {"--catalog", th_path("catalog.db"), NULL};
  const char *data = th_path("data");
  CHECK_EQ(th_server_start(&s, data, extra), 0);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, &ids, 16, 9, 0);
  char away[600];
  snprintf(away, sizeof away, "%s.away", data);
  CHECK_EQ(rename(data, away), 0);
  th_write_file(data, "not a directory", 15);

  th_resp r;
  th_http(&s, "GET", "/health", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 503, "object store unavailable");
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 503, "writing the block failed, retry later");

  CHECK_EQ(unlink(data), 0);
  CHECK_EQ(rename(away, data), 0);
  th_http(&s, "GET", "/health", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 200, "ok");
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  char path[1024];
  th_blob_path(data, &ids, path, sizeof path);
  CHECK(exists(path));
  tl_bytes_free(&b);
}

/* Another client holds the catalog's write lock longer than the server
 * should wait for it: the block gets 503 (retry) within a bounded time, and
 * the retry after the lock is gone stores it, reusing the blob written the
 * first time. SQLite waits for its busy timeout (10 s); a PostgreSQL
 * catalog must not wait longer. */
TEST(catalog_locked_is_503_then_recovers) {
  th_server s;
  memset(&s, 0, sizeof s);
  CHECK_EQ(th_server_start(&s, th_path("data"), NULL), 0);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, &ids, 16, 9, 0);

  catalog_lock lock;
  catalog_lock_take(&lock, s.data);
  bg_post req;
  bg_post_start(&req, &s, TL_MSG_BLOCK, &b);
  th_sleep_ms(300);
  long health = th_health(&s);
  bool answered = bg_post_wait(&req, 15000);
  catalog_lock_release(&lock);
  pthread_join(req.t, NULL);
  fprintf(stderr,
          "locked catalog: block answered %ld after %" PRIu64
          " ms%s; /health answered %ld meanwhile\n",
          req.r.status, req.took_ms,
          answered ? "" : ", only once the lock was released", health);
  if (!answered)
    FAILF("a block waited more than 15 s for the %s catalog's lock held by "
          "another client, and was answered %ld \"%s\" only once it was "
          "released: a locked catalog must be a 503 (retry later) after a "
          "bounded wait",
          th_pg() ? "PostgreSQL" : "SQLite", req.r.status, req.r.body);
  TH_EXPECT(&req.r, 503, "retry later");
  CHECK(strstr(req.r.body, th_pg() ? "lock" : "locked") != NULL);

  th_resp r;
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  CHECK(strncmp(r.body, "already", 7) != 0);
  CHECK_EQ(th_health(&s), 200);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&b);
}

/* PostgreSQL only: the catalog's server stops (a private one, so that other
 * tests are not disturbed). Every insert gets a quick 503 (retry) without
 * writing anything, /health says why; once the server is back, the same
 * messages are stored, without restarting tracelake. */
TEST(catalog_down_is_503_then_recovers) {
  if (!th_pg()) {
    fprintf(stderr, "PostgreSQL only\n");
    return;
  }
  const char *data = th_path("data");
  th_catalog_spec_on(data, th_pg_private("start"));
  th_server s;
  memset(&s, 0, sizeof s);
  CHECK_EQ(th_server_start(&s, data, NULL), 0);
  th_ids ids, late;
  setup_stream(&s, &ids);
  th_ids_new(&late);
  tl_bytes b, pm;
  tl_bytes_init(&b, 1 << 24);
  tl_bytes_init(&pm, 1 << 20);
  th_make_block(&b, &ids, 16, 9, 0);
  th_make_process(&pm, late.process, "/usr/bin/late");
  th_resp r;
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  tl_uuid_v4(ids.block);
  b.len = 0;
  th_make_block(&b, &ids, 16, 10, 0);

  th_pg_private("down");
  uint64_t t0 = th_now_ms();
  th_http(&s, "GET", "/health", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 503, "catalog unavailable: postgresql");
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 503, "retry later");
  fprintf(stderr, "while down: %s\n", r.body);
  th_post(&s, TL_MSG_PROCESS, pm.p, pm.len, &r);
  TH_EXPECT(&r, 503, "retry later");
  uint64_t took = th_now_ms() - t0;
  if (took > 5000)
    FAILF("three requests took %" PRIu64 " ms with the catalog down", took);
  char path[1024];
  th_blob_path(data, &ids, path, sizeof path);
  CHECK(!exists(path)); /* refused before the store was touched */

  th_pg_private("up");
  th_http(&s, "GET", "/health", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 200, "ok");
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  CHECK(strncmp(r.body, "already", 7) != 0);
  th_post(&s, TL_MSG_PROCESS, pm.p, pm.len, &r);
  TH_EXPECT(&r, 200, "stored process");
  CHECK(strncmp(r.body, "already", 7) != 0);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);

  tl_catalog *cat = th_catalog_open(data);
  tl_catalog_block row;
  CHECK_EQ(tl_catalog_get_block(cat, ids.block, &row), 0);
  CHECK_U64(row.blob_size, b.len);
  tl_catalog_close(cat);
  CHECK(exists(path));
  tl_bytes_free(&pm);
  tl_bytes_free(&b);
}

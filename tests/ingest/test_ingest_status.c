/* test_ingest_status.c - what `tracelake serve` answers, over the network, to
 * valid, duplicate, conflicting, orphaned and malformed messages, to wrong
 * methods and paths, and to requests without the right API key; and what it
 * then holds on disk (blob bytes, catalog rows). */
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "lake/catalog.h"
#include "test.h"
#include "wire/wire.h"

static void start(th_server *s, const char *name, const char *const *extra) {
  memset(s, 0, sizeof *s);
  CHECK_EQ(th_server_start(s, th_path(name), extra), 0);
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* The stored blob of `ids` equals `want`, byte for byte. */
static void check_blob(const char *data, const th_ids *ids,
                       const tl_bytes *want) {
  char path[1024];
  th_blob_path(data, ids, path, sizeof path);
  tl_bytes got;
  if (th_read_file(path, &got))
    FAILF("no blob at %s", path);
  CHECK_U64(got.len, want->len);
  CHECK(!memcmp(got.p, want->p, want->len));
  tl_bytes_free(&got);
}

/* Posts a new process and stream; fills `ids` (with a fresh block id). */
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

static char *uuid(const uint8_t id[16]) {
  static char ring[4][37];
  static unsigned next;
  char *t = ring[next++ % 4];
  tl_uuid_format(id, t);
  return t;
}

TEST(valid_messages_stored_and_duplicates_acknowledged) {
  th_server s;
  start(&s, "data", NULL);
  th_ids ids;
  th_ids_new(&ids);
  tl_bytes pm, sm, bm;
  tl_bytes_init(&pm, 1 << 20);
  tl_bytes_init(&sm, 1 << 20);
  tl_bytes_init(&bm, 1 << 24);
  th_make_process(&pm, ids.process, "/usr/bin/app");
  th_make_stream(&sm, ids.stream, ids.process);
  th_make_block(&bm, &ids, 40, 1, 0);
  char want[128];
  th_resp r;

  th_post(&s, TL_MSG_PROCESS, pm.p, pm.len, &r);
  snprintf(want, sizeof want, "stored process %s", uuid(ids.process));
  TH_EXPECT(&r, 200, want);
  CHECK(strncmp(r.body, "already", 7) != 0);
  th_post(&s, TL_MSG_STREAM, sm.p, sm.len, &r);
  snprintf(want, sizeof want, "stored stream %s", uuid(ids.stream));
  TH_EXPECT(&r, 200, want);
  th_post(&s, TL_MSG_BLOCK, bm.p, bm.len, &r);
  snprintf(want, sizeof want, "stored block %s (40 events)", uuid(ids.block));
  TH_EXPECT(&r, 200, want);
  CHECK(strncmp(r.body, "already", 7) != 0);

  /* Senders retry after a lost answer: the same message again is a 200. */
  th_post(&s, TL_MSG_PROCESS, pm.p, pm.len, &r);
  TH_EXPECT(&r, 200, "already stored process");
  th_post(&s, TL_MSG_STREAM, sm.p, sm.len, &r);
  TH_EXPECT(&r, 200, "already stored stream");
  th_post(&s, TL_MSG_BLOCK, bm.p, bm.len, &r);
  snprintf(want, sizeof want, "already stored block %s", uuid(ids.block));
  TH_EXPECT(&r, 200, want);

  check_blob(s.data, &ids, &bm);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);

  /* One catalog row describing the blob. */
  tl_catalog *cat = th_catalog_open(s.data);
  tl_catalog_block row;
  CHECK_EQ(tl_catalog_get_block(cat, ids.block, &row), 0);
  CHECK(!memcmp(row.stream_id, ids.stream, 16));
  CHECK(!memcmp(row.process_id, ids.process, 16));
  CHECK_EQ(row.nb_objects, 40);
  CHECK_U64(row.blob_size, bm.len);
  CHECK_U64(row.blob_crc, tl_block_content_crc(bm.p, bm.len));
  tl_catalog_counts c;
  CHECK_EQ(tl_catalog_counts_get(cat, &c), 0);
  CHECK(c.blocks >= 1); /* plus the server's own telemetry */
  tl_catalog_close(cat);
  tl_bytes_free(&pm);
  tl_bytes_free(&sm);
  tl_bytes_free(&bm);
}

TEST(conflicting_content_is_409_and_stored_bytes_unchanged) {
  th_server s;
  start(&s, "data", NULL);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b1, b2, m;
  tl_bytes_init(&b1, 1 << 24);
  tl_bytes_init(&b2, 1 << 24);
  tl_bytes_init(&m, 1 << 20);
  th_make_block(&b1, &ids, 24, 1, 0);
  th_make_block(&b2, &ids, 24, 2, 0); /* same ids, other values */
  CHECK(b1.len != b2.len || memcmp(b1.p, b2.p, b1.len));
  th_resp r;
  th_post(&s, TL_MSG_BLOCK, b1.p, b1.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  char want[128];
  snprintf(want, sizeof want, "block %s already exists with different content",
           uuid(ids.block));
  th_post(&s, TL_MSG_BLOCK, b2.p, b2.len, &r);
  TH_EXPECT(&r, 409, want);
  check_blob(s.data, &ids, &b1);
  /* The original is still acknowledged as stored. */
  th_post(&s, TL_MSG_BLOCK, b1.p, b1.len, &r);
  TH_EXPECT(&r, 200, "already stored block");

  /* Processes and streams: same id, other content. */
  th_make_process(&m, ids.process, "/usr/bin/other");
  th_post(&s, TL_MSG_PROCESS, m.p, m.len, &r);
  snprintf(want, sizeof want,
           "process %s already exists with different content",
           uuid(ids.process));
  TH_EXPECT(&r, 409, want);
  uint8_t other[16];
  tl_uuid_v4(other);
  m.len = 0;
  th_make_process(&m, other, "/usr/bin/app");
  th_post(&s, TL_MSG_PROCESS, m.p, m.len, &r);
  TH_EXPECT(&r, 200, "stored process");
  m.len = 0;
  th_make_stream(&m, ids.stream, other); /* moved to another process */
  th_post(&s, TL_MSG_STREAM, m.p, m.len, &r);
  snprintf(want, sizeof want, "stream %s already exists with different content",
           uuid(ids.stream));
  TH_EXPECT(&r, 409, want);
  check_blob(s.data, &ids, &b1);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&b1);
  tl_bytes_free(&b2);
  tl_bytes_free(&m);
}

/* Posts block `a` (stored), then a block with the same block id in another
 * stream `b` of the same process, built with `seed_b`. Returns the answer
 * to the second. */
static void same_id_other_stream(th_server *s, uint32_t seed_b, th_ids *b,
                                 th_resp *r) {
  th_ids a;
  setup_stream(s, &a);
  *b = a;
  tl_uuid_v4(b->stream);
  tl_bytes m;
  tl_bytes_init(&m, 1 << 24);
  th_make_stream(&m, b->stream, b->process);
  th_post(s, TL_MSG_STREAM, m.p, m.len, r);
  TH_EXPECT(r, 200, "stored stream");
  m.len = 0;
  th_make_block(&m, &a, 8, 1, 0);
  th_post(s, TL_MSG_BLOCK, m.p, m.len, r);
  TH_EXPECT(r, 200, "stored block");
  m.len = 0;
  th_make_block(&m, b, 8, seed_b, 0);
  th_post(s, TL_MSG_BLOCK, m.p, m.len, r);
  tl_bytes_free(&m);
}

/* A block id is stored once: the same id again in another stream is other
 * content, even when the payload bytes happen to be identical (only the
 * header differs), and must not be acknowledged as already stored. */
TEST(same_block_id_in_other_stream_is_409) {
  th_server s;
  start(&s, "data", NULL);
  th_ids b;
  th_resp r;
  same_id_other_stream(&s, 1, &b, &r);
  TH_EXPECT(&r, 409, "already exists with different content");
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
}

/* A 409 must not leave anything behind: the refused block's blob, which no
 * catalog row will ever reference (so retention would never delete it),
 * must not stay on disk. */
TEST(conflict_in_other_stream_leaves_no_blob) {
  th_server s;
  start(&s, "data", NULL);
  th_ids b;
  th_resp r;
  same_id_other_stream(&s, 2, &b, &r);
  TH_EXPECT(&r, 409, "already exists with different content");
  char path[1024];
  th_blob_path(s.data, &b, path, sizeof path);
  if (exists(path))
    FAILF("the refused block left an unreferenced blob at %s", path);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
}

/* Same block id and stream, same events, but other header fields (the
 * block's time range moved by an hour): other content, so a 409. The row's
 * blob_crc cannot tell them apart: the CRC32C of a message that embeds the
 * CRC of its first 104 bytes is the same for any such 108-byte header, so it
 * only depends on the payload. */
TEST(same_block_id_with_other_header_is_409) {
  th_server s;
  start(&s, "data", NULL);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b1, b2;
  tl_bytes_init(&b1, 1 << 24);
  tl_bytes_init(&b2, 1 << 24);
  th_make_block(&b1, &ids, 8, 1, 0);
  CHECK_EQ(tl_bytes_append(&b2, b1.p, b1.len), 0);
  int64_t hour = 3600 * (int64_t)1000000000;
  tl_put_u64(b2.p + 56, tl_get_u64(b2.p + 56) - (uint64_t)hour);
  tl_put_u64(b2.p + 72, tl_get_u64(b2.p + 72) - (uint64_t)hour);
  th_reseal(b2.p, b2.len);
  tl_wire_error err = {0};
  CHECK_EQ(tl_block_decode(b2.p, b2.len, NULL, &err), 0);
  CHECK(memcmp(b1.p, b2.p, b1.len) != 0);
  fprintf(stderr, "content CRC32C: 0x%08x and 0x%08x\n",
          tl_block_content_crc(b1.p, b1.len),
          tl_block_content_crc(b2.p, b2.len));
  th_resp r;
  th_post(&s, TL_MSG_BLOCK, b1.p, b1.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  th_post(&s, TL_MSG_BLOCK, b2.p, b2.len, &r);
  TH_EXPECT(&r, 409, "already exists with different content");
  check_blob(s.data, &ids, &b1);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&b1);
  tl_bytes_free(&b2);
}

TEST(unknown_stream_or_process_is_404) {
  th_server s;
  start(&s, "data", NULL);
  th_ids ids;
  th_ids_new(&ids);
  tl_bytes m;
  tl_bytes_init(&m, 1 << 24);
  char want[160];
  th_resp r;
  /* A block before its stream. */
  th_make_block(&m, &ids, 8, 1, 0);
  th_post(&s, TL_MSG_BLOCK, m.p, m.len, &r);
  snprintf(want, sizeof want, "block %s names unknown stream %s",
           uuid(ids.block), uuid(ids.stream));
  TH_EXPECT(&r, 404, want);
  char path[1024];
  th_blob_path(s.data, &ids, path, sizeof path);
  CHECK(!exists(path));
  /* A stream before its process. */
  m.len = 0;
  th_make_stream(&m, ids.stream, ids.process);
  th_post(&s, TL_MSG_STREAM, m.p, m.len, &r);
  snprintf(want, sizeof want, "stream %s names unknown process %s",
           uuid(ids.stream), uuid(ids.process));
  TH_EXPECT(&r, 404, want);
  /* In order, all three are taken. */
  tl_bytes p;
  tl_bytes_init(&p, 1 << 20);
  th_make_process(&p, ids.process, "/bin/x");
  th_post(&s, TL_MSG_PROCESS, p.p, p.len, &r);
  TH_EXPECT(&r, 200, "stored process");
  th_post(&s, TL_MSG_STREAM, m.p, m.len, &r);
  TH_EXPECT(&r, 200, "stored stream");
  m.len = 0;
  th_make_block(&m, &ids, 8, 1, 0);
  th_post(&s, TL_MSG_BLOCK, m.p, m.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  CHECK(exists(path));
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&m);
  tl_bytes_free(&p);
}

TEST(block_of_another_process_is_409) {
  th_server s;
  start(&s, "data", NULL);
  th_ids ids;
  setup_stream(&s, &ids);
  th_ids wrong = ids;
  tl_uuid_v4(wrong.process);
  tl_bytes m;
  tl_bytes_init(&m, 1 << 24);
  /* The other process exists too: only the pairing is wrong. */
  th_make_process(&m, wrong.process, "/bin/y");
  th_resp r;
  th_post(&s, TL_MSG_PROCESS, m.p, m.len, &r);
  TH_EXPECT(&r, 200, "stored process");
  m.len = 0;
  th_make_block(&m, &wrong, 8, 1, 0);
  th_post(&s, TL_MSG_BLOCK, m.p, m.len, &r);
  char want[256];
  snprintf(want, sizeof want,
           "block %s names process %s but stream %s belongs to %s",
           uuid(wrong.block), uuid(wrong.process), uuid(ids.stream),
           uuid(ids.process));
  TH_EXPECT(&r, 409, want);
  char path[1024];
  th_blob_path(s.data, &wrong, path, sizeof path);
  CHECK(!exists(path));
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&m);
}

TEST(malformed_bodies_are_400_with_the_reason) {
  th_server s;
  start(&s, "data", NULL);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b, p;
  tl_bytes_init(&b, 1 << 24);
  tl_bytes_init(&p, 1 << 20);
  th_make_block(&b, &ids, 30, 1, 0);
  th_make_process(&p, ids.process, "/usr/bin/app");
  th_resp r;

  /* Truncated: inside the header, then inside the payload. */
  th_post(&s, TL_MSG_BLOCK, b.p, 60, &r);
  TH_EXPECT(&r, 400, "block truncated: 60 bytes, the header alone is 108");
  th_post(&s, TL_MSG_BLOCK, b.p, b.len - 5, &r);
  TH_EXPECT(&r, 400, "malformed block: block: header announces a");
  /* A flipped payload byte, then a flipped header byte. */
  uint8_t *c = malloc(b.len);
  memcpy(c, b.p, b.len);
  c[b.len - 3] ^= 0x40;
  th_post(&s, TL_MSG_BLOCK, c, b.len, &r);
  TH_EXPECT(&r, 400, "payload checksum mismatch");
  memcpy(c, b.p, b.len);
  c[60] ^= 0x01;
  th_post(&s, TL_MSG_BLOCK, c, b.len, &r);
  TH_EXPECT(&r, 400, "header checksum mismatch");
  /* A process message with a bad CRC. */
  uint8_t *pc = malloc(p.len);
  memcpy(pc, p.p, p.len);
  pc[20] ^= 0x10;
  th_post(&s, TL_MSG_PROCESS, pc, p.len, &r);
  TH_EXPECT(&r, 400,
            "malformed process message: process message: checksum "
            "mismatch");
  /* A truncated stream message. */
  tl_bytes sm;
  tl_bytes_init(&sm, 1 << 20);
  th_make_stream(&sm, ids.stream, ids.process);
  th_post(&s, TL_MSG_STREAM, sm.p, 10, &r);
  TH_EXPECT(&r, 400, "stream message truncated");
  /* Garbage and nothing. */
  static const char junk[] = "GET / HTTP/1.0 this is not a tracelake message";
  th_post(&s, TL_MSG_BLOCK, junk, sizeof junk, &r);
  TH_EXPECT(&r, 400, "malformed block: not a tracelake message (bad magic)");
  th_post(&s, TL_MSG_PROCESS, NULL, 0, &r);
  TH_EXPECT(&r, 400, "malformed process: not a tracelake message");
  th_post(&s, TL_MSG_BLOCK, NULL, 0, &r);
  TH_EXPECT(&r, 400, "malformed block: not a tracelake message");
  /* A valid message on the wrong endpoint. */
  th_post(&s, TL_MSG_BLOCK, p.p, p.len, &r);
  TH_EXPECT(&r, 400, "expected a block message, got a process message");
  th_post(&s, TL_MSG_PROCESS, b.p, b.len, &r);
  TH_EXPECT(&r, 400, "expected a process message, got a block message");
  th_post(&s, TL_MSG_STREAM, p.p, p.len, &r);
  TH_EXPECT(&r, 400, "expected a stream message, got a process message");
  /* An unsupported version. */
  memcpy(c, b.p, b.len);
  c[4] = 9;
  th_reseal(c, b.len);
  th_post(&s, TL_MSG_BLOCK, c, b.len, &r);
  TH_EXPECT(&r, 400, "version 9 is not supported");

  /* None of it was stored; the valid block still is. */
  char path[1024];
  th_blob_path(s.data, &ids, path, sizeof path);
  CHECK(!exists(path));
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  free(c);
  free(pc);
  tl_bytes_free(&b);
  tl_bytes_free(&p);
  tl_bytes_free(&sm);
}

TEST(methods_and_paths) {
  th_server s;
  start(&s, "data", NULL);
  th_resp r;
  th_http(&s, "GET", "/health", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 200, "ok");
  CHECK_STR(r.body, "ok");
  th_http(&s, "HEAD", "/health", NULL, 0, NULL, &r);
  CHECK_EQ(r.status, 200);
  th_http(&s, "GET", "/ingestion/insert_block", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 405, "use POST /ingestion/insert_block");
  th_http(&s, "GET", "/ingestion/insert_process", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 405, "use POST /ingestion/insert_process");
  th_http(&s, "PUT", "/ingestion/insert_stream", "x", 1, NULL, &r);
  TH_EXPECT(&r, 405, "use POST /ingestion/insert_stream");
  th_http(&s, "POST", "/health", "x", 1, NULL, &r);
  TH_EXPECT(&r, 405, "use GET /health");
  th_http(&s, "POST", "/ingestion/insert_everything", "x", 1, NULL, &r);
  TH_EXPECT(&r, 404, "no such endpoint /ingestion/insert_everything");
  th_http(&s, "GET", "/", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 404, "no such endpoint /");
  /* Still serving after all that. */
  CHECK_EQ(th_health(&s), 200);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
}

TEST(api_keys_required_except_for_health) {
  static const char keys[] = "# name key\n"
                             "alice alice-secret-key-1\n"
                             "\n"
                             "bob   bob-secret-key-22\n";
  th_write_file(th_path("keys"), keys, sizeof keys - 1);
  const char *extra[] = {"--api-keys", th_path("keys"), NULL};
  th_server s;
  start(&s, "data", extra);
  CHECK(th_server_log_has(&s, "API keys required"));
  th_ids ids;
  th_ids_new(&ids);
  tl_bytes p;
  tl_bytes_init(&p, 1 << 20);
  th_make_process(&p, ids.process, "/bin/k");
  static const char *path = "/ingestion/insert_process";
  th_resp r;
  th_http(&s, "POST", path, p.p, p.len, NULL, &r);
  TH_EXPECT(&r, 401, "missing API key");
  th_http(&s, "POST", path, p.p, p.len, "Authorization: Bearer wrong-key-123",
          &r);
  TH_EXPECT(&r, 401, "wrong API key");
  th_http(&s, "POST", path, p.p, p.len,
          "Authorization: Bearer alice-secret-key-", &r); /* a prefix */
  TH_EXPECT(&r, 401, "wrong API key");
  th_http(&s, "POST", path, p.p, p.len,
          "Authorization: Basic alice-secret-key-1", &r);
  TH_EXPECT(&r, 401, "wrong API key");
  th_http(&s, "POST", path, p.p, p.len,
          "Authorization: Bearer bob-secret-key-22", &r);
  TH_EXPECT(&r, 200, "stored process");
  th_http(&s, "POST", path, p.p, p.len,
          "Authorization: Bearer alice-secret-key-1", &r);
  TH_EXPECT(&r, 200, "already stored process");
  /* Refused before the body matters: a block without a key stores nothing. */
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, &ids, 8, 1, 0);
  th_http(&s, "POST", "/ingestion/insert_block", b.p, b.len, NULL, &r);
  TH_EXPECT(&r, 401, "missing API key");
  th_http(&s, "GET", "/health", NULL, 0, NULL, &r);
  TH_EXPECT(&r, 200, "ok");
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&p);
  tl_bytes_free(&b);
}

TEST(bad_api_keys_file_refused_at_start) {
  static const char keys[] = "alice short\n"; /* keys need 8 characters */
  th_write_file(th_path("keys"), keys, sizeof keys - 1);
  const char *extra[] = {"--api-keys", th_path("keys"), NULL};
  th_server s;
  memset(&s, 0, sizeof s);
  CHECK_EQ(th_server_start(&s, th_path("data"), extra), -1);
  CHECK(th_server_log_has(&s, "expected 'name key'"));
}

/* test_ingest_limits.c - hostile and careless clients: bodies over the limit
 * (declared or chunked), oversized headers, slow clients holding connections
 * open, and thousands of malformed or mutated messages. The server must
 * answer each with a 4xx and keep serving everybody else. */
#include <curl/curl.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "test.h"
#include "wire/wire.h"

static void start(th_server *s, const char *const *extra) {
  memset(s, 0, sizeof *s);
  CHECK_EQ(th_server_start(s, th_path("data"), extra), 0);
}

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

/* Posts a fresh valid block on `ids`'s stream and expects it stored. */
static void block_still_accepted(const th_server *s, th_ids *ids) {
  tl_uuid_v4(ids->block);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, ids, 16, 7, 0);
  th_resp r;
  th_post(s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  tl_bytes_free(&b);
}

static const char *const max_body_1m[] = {"--max-body", "1m", NULL};

TEST(declared_length_over_limit_is_413_unread) {
  th_server s;
  start(&s, max_body_1m);
  int fd = th_connect(s.port);
  CHECK(fd >= 0);
  /* Headers only, asking whether to send the body (Expect: 100-continue):
   * the answer must come without the body being sent. (A client that sends
   * its body at once gets the 413 after the body, tested below.) */
  static const char req[] = "POST /ingestion/insert_block HTTP/1.1\r\n"
                            "Host: 127.0.0.1\r\n"
                            "Expect: 100-continue\r\n"
                            "Content-Length: 1048577\r\n\r\n";
  CHECK_EQ(th_send_all(fd, req, sizeof req - 1), 0);
  char buf[2048];
  bool closed;
  uint64_t t0 = th_now_ms();
  th_recv_until(fd, buf, sizeof buf, 3000, &closed);
  close(fd);
  if (th_raw_status(buf) != 413)
    FAILF("expected 413 within 3 s, got after %u ms: %s",
          (unsigned)(th_now_ms() - t0), buf);
  CHECK(strstr(buf, "body of 1048577 bytes exceeds the 1048576-byte limit"));
  /* A length that overflows any integer is over the limit too. */
  fd = th_connect(s.port);
  CHECK(fd >= 0);
  static const char huge[] = "POST /ingestion/insert_block HTTP/1.1\r\n"
                             "Host: 127.0.0.1\r\n"
                             "Content-Length: 99999999999999999999999\r\n\r\n";
  CHECK_EQ(th_send_all(fd, huge, sizeof huge - 1), 0);
  th_recv_until(fd, buf, sizeof buf, 3000, &closed);
  close(fd);
  int st = th_raw_status(buf);
  if (st < 400 || st > 499)
    FAILF("expected a 4xx for an absurd Content-Length, got: %s", buf);

  /* Just under the limit is taken. */
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, &ids, 8, 3, 1000000);
  CHECK(b.len > 1000000 && b.len <= 1048576);
  th_resp r;
  th_post(&s, TL_MSG_BLOCK, b.p, b.len, &r);
  TH_EXPECT(&r, 200, "stored block");
  /* One byte over, through curl (a declared length), many times: the 413
   * always arrives, never a reset while the body is being sent. */
  uint8_t *big = calloc(1, 1048577);
  memcpy(big, b.p, b.len);
  for (int i = 0; i < 20; i++) {
    th_post(&s, TL_MSG_BLOCK, big, 1048577, &r);
    TH_EXPECT(&r, 413, "exceeds the 1048576-byte limit");
  }
  /* The same sent at once by a raw client that does not wait. */
  fd = th_connect(s.port);
  CHECK(fd >= 0);
  static const char eager[] = "POST /ingestion/insert_block HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Content-Length: 1048577\r\n\r\n";
  CHECK_EQ(th_send_all(fd, eager, sizeof eager - 1), 0);
  CHECK_EQ(th_send_all(fd, (const char *)big, 1048577), 0);
  th_recv_until(fd, buf, sizeof buf, 5000, &closed);
  close(fd);
  if (th_raw_status(buf) != 413)
    FAILF("an eager client got: %s", buf);
  free(big);
  CHECK_EQ(th_health(&s), 200);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&b);
}

/* Sends `n` bytes as HTTP/1.1 chunks of up to 64 KiB, then the last chunk.
 * Returns the raw response. */
static int post_chunked(uint16_t port, const uint8_t *p, size_t n, char *buf,
                        size_t cap) {
  int fd = th_connect(port);
  CHECK(fd >= 0);
  static const char req[] = "POST /ingestion/insert_block HTTP/1.1\r\n"
                            "Host: 127.0.0.1\r\nConnection: close\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n";
  int gone = th_send_all(fd, req, sizeof req - 1);
  for (size_t off = 0; off < n && !gone;) {
    size_t k = n - off < 65536 ? n - off : 65536;
    char head[32];
    int hn = snprintf(head, sizeof head, "%zx\r\n", k);
    gone = th_send_all(fd, head, (size_t)hn) || th_send_all(fd, p + off, k) ||
           th_send_all(fd, "\r\n", 2);
    off += k;
  }
  if (!gone)
    th_send_all(fd, "0\r\n\r\n", 5);
  bool closed;
  th_recv_until(fd, buf, cap, 5000, &closed);
  close(fd);
  return th_raw_status(buf);
}

TEST(chunked_body_over_limit_is_413) {
  th_server s;
  start(&s, max_body_1m);
  th_ids ids;
  setup_stream(&s, &ids);
  char buf[2048];
  /* A chunked valid block under the limit is taken... */
  tl_bytes b;
  tl_bytes_init(&b, 1 << 24);
  th_make_block(&b, &ids, 8, 3, 300000);
  CHECK_EQ(post_chunked(s.port, b.p, b.len, buf, sizeof buf), 200);
  CHECK(strstr(buf, "stored block"));
  /* ...and one growing past it is refused. */
  size_t n = (size_t)2 << 20;
  uint8_t *big = calloc(1, n);
  memcpy(big, b.p, b.len);
  int st = post_chunked(s.port, big, n, buf, sizeof buf);
  if (st != 413)
    FAILF("expected 413 for a 2 MiB chunked body, got: %s", buf);
  CHECK(strstr(buf, "body exceeds the 1048576-byte limit"));
  free(big);
  CHECK_EQ(th_health(&s), 200);
  block_still_accepted(&s, &ids);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  tl_bytes_free(&b);
}

TEST(oversized_headers_refused_and_server_keeps_serving) {
  th_server s;
  start(&s, NULL);
  th_ids ids;
  setup_stream(&s, &ids);
  size_t hn = 100 * 1024;
  char *req = malloc(hn + 256);
  int k = snprintf(req, 256,
                   "POST /ingestion/insert_block HTTP/1.1\r\n"
                   "Host: 127.0.0.1\r\nX-Padding: ");
  memset(req + k, 'a', hn);
  k += (int)hn;
  k += snprintf(req + k, 256, "\r\nContent-Length: 4\r\n\r\nabcd");
  for (int round = 0; round < 3; round++) {
    int fd = th_connect(s.port);
    CHECK(fd >= 0);
    th_send_all(fd, req, (size_t)k); /* the server may hang up midway */
    char buf[4096];
    bool closed;
    th_recv_until(fd, buf, sizeof buf, 5000, &closed);
    close(fd);
    int st = th_raw_status(buf);
    if (!(st == 431 || st == 413 || (st == 0 && closed)))
      FAILF("a 100 KiB header got neither 431/413 nor a closed connection: "
            "%.200s",
            buf);
  }
  free(req);
  CHECK_EQ(th_health(&s), 200);
  block_still_accepted(&s, &ids);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
}

/* ---- Slow clients ---------------------------------------------------------
 * With --http-timeout 2, connections that trickle their request a byte at a
 * time, or go quiet midway, are dropped within a few seconds, while normal
 * requests on other connections keep being answered. */

typedef struct slow {
  int fd;
  const char *what;
  const char *text; /* sent one byte per tick */
  size_t sent;
  bool trickle; /* false: send the first part, then nothing */
  uint64_t closed_at;
} slow;

/* Whether the server has closed `fd` (a peek that sees EOF or a reset). */
static bool peer_closed(int fd) {
  char c;
  ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
  if (r == 0)
    return true;
  if (r < 0)
    return errno != EAGAIN && errno != EWOULDBLOCK;
  /* Data: an answer (e.g. 408) before closing; read it and look again. */
  char buf[4096];
  return recv(fd, buf, sizeof buf, MSG_DONTWAIT) == 0;
}

TEST(slow_clients_dropped_while_others_served) {
  const char *extra[] = {"--http-timeout", "2", NULL};
  th_server s;
  start(&s, extra);
  static const char line[] =
      "POST /ingestion/insert_block HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  static char body_req[2200];
  int bn = snprintf(body_req, sizeof body_req,
                    "POST /ingestion/insert_block HTTP/1.1\r\n"
                    "Host: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n");
  memset(body_req + bn, 'b', 1000);
  body_req[bn + 1000] = 0;
  size_t line1 = (size_t)(strchr(line, '\n') - line) + 1;
  slow c[] = {
      {-1, "request line, byte by byte", line, 0, true, 0},
      {-1, "headers, byte by byte", line, 0, true, 0},
      {-1, "headers, byte by byte", line, 0, true, 0},
      {-1, "body, byte by byte", body_req, 0, true, 0},
      {-1, "half a request line, then silence", "POST /ingestion/ins", 0, false,
       0},
      {-1, "headers and half a body, then silence", body_req, 0, false, 0},
  };
  int nc = (int)(sizeof c / sizeof c[0]);
  uint64_t t0 = th_now_ms();
  for (int i = 0; i < nc; i++) {
    CHECK((c[i].fd = th_connect(s.port)) >= 0);
    /* Header and body tricklers send what comes before at once. */
    size_t first = c[i].text == body_req ? (size_t)bn
                   : i == 1 || i == 2    ? line1
                                         : 1;
    if (!c[i].trickle)
      first = c[i].text == body_req ? (size_t)bn + 500 : strlen(c[i].text);
    CHECK_EQ(th_send_all(c[i].fd, c[i].text, first), 0);
    c[i].sent = first;
  }
  unsigned served = 0, failed = 0;
  int open = nc;
  /* Each slow client gets 2 s of timeout plus 3 s of slack. */
  while (open > 0 && th_now_ms() - t0 < 9000) {
    for (int i = 0; i < nc; i++) {
      if (c[i].closed_at)
        continue;
      bool gone = peer_closed(c[i].fd);
      if (!gone && c[i].trickle && c[i].text[c[i].sent])
        gone = th_send_all(c[i].fd, c[i].text + c[i].sent++, 1) != 0;
      if (gone) {
        c[i].closed_at = th_now_ms();
        open--;
      }
    }
    /* Meanwhile an ordinary client, on its own connection. */
    if (th_health(&s) == 200)
      served++;
    else
      failed++;
    th_sleep_ms(250);
  }
  CHECK(served >= 8);
  CHECK_EQ(failed, 0);
  int still = 0;
  for (int i = 0; i < nc; i++) {
    if (c[i].closed_at)
      fprintf(stderr, "slow client %d (%s): dropped after %u ms\n", i,
              c[i].what, (unsigned)(c[i].closed_at - t0));
    else {
      fprintf(stderr,
              "slow client %d (%s): still connected after %u ms, %zu bytes "
              "sent\n",
              i, c[i].what, (unsigned)(th_now_ms() - t0), c[i].sent);
      still++;
    }
    close(c[i].fd);
  }
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  if (still)
    FAILF("%d of %d slow clients were not dropped within 9 s with "
          "--http-timeout 2",
          still, nc);
  for (int i = 0; i < nc; i++)
    CHECK(c[i].closed_at - t0 <= 5000);
}

/* ---- Garbage at volume ----------------------------------------------------
 */

static uint32_t rnd_state = 12345;
static uint32_t rnd(void) {
  uint32_t x = rnd_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return rnd_state = x;
}

/* A mutation of `base` (or pure noise) into `out`. Returns whether the CRCs
 * were recomputed afterwards (the message may then be valid). */
static bool mutate(const tl_bytes *base, tl_bytes *out) {
  out->len = 0;
  unsigned how = rnd() % 7;
  if (how == 0) { /* noise, sometimes with a valid magic */
    size_t n = rnd() % 2048;
    CHECK_EQ(tl_bytes_reserve(out, n + 4), 0);
    for (size_t i = 0; i < n; i++)
      out->p[i] = (uint8_t)rnd();
    if (n >= 4 && rnd() % 2)
      memcpy(out->p, base->p, 4);
    out->len = n;
    return false;
  }
  CHECK_EQ(tl_bytes_append(out, base->p, base->len), 0);
  uint8_t *p = out->p;
  size_t n = out->len;
  switch (how) {
  case 1: /* truncation */
    out->len = rnd() % n;
    break;
  case 2: /* bit flips */
  case 3:
    for (unsigned k = 1 + rnd() % 8; k > 0; k--)
      p[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
    break;
  case 4: /* a length or count field of the block header changed */
    if (n >= TL_WIRE_BLOCK_HEADER_SIZE) {
      static const size_t fields[] = {88, 92, 96};
      uint32_t v = rnd() % 3 ? rnd()
                             : tl_get_u32(p + fields[rnd() % 3]) +
                                   (uint32_t)(rnd() % 17) - 8;
      tl_put_u32(p + fields[rnd() % 3], v);
    } else if (n > 60) { /* a string length of a process/stream message */
      tl_put_u32(p + 56 + rnd() % 8, rnd() % 4 ? rnd() : rnd() % 64);
    }
    break;
  case 5: /* bytes inserted or removed in the middle */
    if (rnd() % 2) {
      size_t at = rnd() % n, k = 1 + rnd() % 16;
      memmove(p + at, p + at + (k < n - at ? k : n - at),
              n - at - (k < n - at ? k : n - at));
      out->len = n - (k < n - at ? k : n - at);
    } else {
      size_t at = rnd() % n, k = 1 + rnd() % 16;
      CHECK_EQ(tl_bytes_reserve(out, k), 0);
      p = out->p;
      memmove(p + at + k, p + at, n - at);
      for (size_t i = 0; i < k; i++)
        p[at + i] = (uint8_t)rnd();
      out->len = n + k;
    }
    break;
  default: /* a random byte set to an extreme */
    p[rnd() % n] = rnd() % 2 ? 0xff : 0x00;
  }
  bool reseal = rnd() % 2;
  if (reseal)
    th_reseal(out->p, out->len);
  return reseal;
}

TEST(garbage_at_volume_gets_4xx_and_server_stays_healthy) {
  th_server s;
  start(&s, NULL);
  th_ids ids;
  setup_stream(&s, &ids);
  tl_bytes base[3 + 1], out;
  for (int k = 0; k < 4; k++)
    tl_bytes_init(&base[k], 1 << 24);
  tl_bytes_init(&out, 1 << 24);
  th_make_process(&base[TL_MSG_PROCESS], ids.process, "/usr/bin/app");
  th_make_stream(&base[TL_MSG_STREAM], ids.stream, ids.process);
  th_make_block(&base[TL_MSG_BLOCK], &ids, 60, 1, 0);
  th_make_block(&base[0], &ids, 4, 1, 3000); /* another body, same ids */
  th_resp r;
  th_post(&s, TL_MSG_BLOCK, base[TL_MSG_BLOCK].p, base[TL_MSG_BLOCK].len, &r);
  TH_EXPECT(&r, 200, "stored block");

  unsigned count[6] = {0}; /* 2xx .. 5xx, by status / 100 */
  for (int kind = TL_MSG_PROCESS; kind <= TL_MSG_BLOCK; kind++) {
    for (int i = 0; i < 2000; i++) {
      /* Mostly this endpoint's kind, sometimes another's. */
      int from = rnd() % 5 ? kind : (int)(rnd() % 4);
      bool resealed = mutate(&base[from], &out);
      th_post(&s, kind, out.p, out.len, &r);
      if (r.curl_rc)
        FAILF("endpoint %d, body %d (%zu bytes): no answer (%s)", kind, i,
              out.len, curl_easy_strerror((CURLcode)r.curl_rc));
      count[r.status / 100 % 6]++;
      bool ok = r.status >= 400 && r.status < 500;
      /* Resealed mutations may be valid (200) or name unknown ids. */
      if (resealed && r.status == 200)
        ok = true;
      /* A mutation that changed nothing is the stored block again. */
      if (r.status == 200 && out.len == base[from].len &&
          !memcmp(out.p, base[from].p, out.len))
        ok = true;
      if (!ok || r.status == 401 || r.status == 405 || r.status == 413)
        FAILF("endpoint %d, body %d (%zu bytes, %s): %ld %s", kind, i, out.len,
              resealed ? "resealed" : "as mutated", r.status, r.body);
      if (r.status == 400 && !strstr(r.body, "malformed") &&
          !strstr(r.body, "expected a") && !strstr(r.body, "refused"))
        FAILF("400 without the decoder's reason: %s", r.body);
    }
  }
  fprintf(stderr, "statuses: %u 2xx, %u 4xx, %u 5xx\n", count[2], count[4],
          count[5]);
  CHECK_EQ(count[5], 0);
  CHECK(count[4] > 5000);
  CHECK_EQ(th_health(&s), 200);
  /* The block stored first is untouched, and new blocks are taken. */
  char path[1024];
  th_blob_path(s.data, &ids, path, sizeof path);
  tl_bytes got;
  CHECK_EQ(th_read_file(path, &got), 0);
  CHECK(got.len == base[TL_MSG_BLOCK].len &&
        !memcmp(got.p, base[TL_MSG_BLOCK].p, got.len));
  tl_bytes_free(&got);
  block_still_accepted(&s, &ids);
  CHECK_EQ(th_server_stop(&s, SIGTERM, 15000), 0);
  for (int k = 0; k < 4; k++)
    tl_bytes_free(&base[k]);
  tl_bytes_free(&out);
}

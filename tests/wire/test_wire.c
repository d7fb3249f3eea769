/* test_wire.c - the wire format: round trips of every message and event
 * kind, and rejection (with a reason) of truncated, corrupted and malformed
 * input. */

#include <errno.h>
#include <pthread.h>

#include "test.h"
#include "wire/wire.h"

static const tl_clock_ref clock_ref = {1000, 1700000000000000000, 2000000000};

TEST(crc32c_known_vector) {
  CHECK_U64(tl_crc32c(0, "123456789", 9), 0xE3069283u);
  CHECK_U64(tl_crc32c(0, "", 0), 0);
  /* Incremental equals one-shot. */
  uint32_t c = tl_crc32c(0, "1234", 4);
  CHECK_U64(tl_crc32c(c, "56789", 5), 0xE3069283u);
}

TEST(uuid_text_round_trip) {
  uint8_t a[16], b[16];
  char text[37];
  tl_uuid_v4(a);
  CHECK_EQ(a[6] >> 4, 4);
  CHECK_EQ(a[8] >> 6, 2);
  tl_uuid_format(a, text);
  CHECK_EQ(strlen(text), 36);
  CHECK_EQ(tl_uuid_parse(text, b), 0);
  CHECK(!memcmp(a, b, 16));
  CHECK_EQ(tl_uuid_parse("not-a-uuid", b), TL_EMALFORMED);
  CHECK_EQ(tl_uuid_parse("0123456789abcdef0123456789abcdef0123", b),
           TL_EMALFORMED);
}

TEST(target_from_file) {
  char t[64];
  tl_target_from_file("src/runtime/flusher.c", t, sizeof t);
  CHECK_STR(t, "runtime::flusher");
  tl_target_from_file("main.c", t, sizeof t);
  CHECK_STR(t, "main");
  tl_target_from_file("./app.c", t, sizeof t);
  CHECK_STR(t, "app");
  tl_target_from_file("/abs/path/to/x.cpp", t, sizeof t);
  CHECK_STR(t, "to::x");
  tl_target_from_file(NULL, t, sizeof t);
  CHECK_STR(t, "");
  tl_target_from_file("averyveryverylongdirectory/name.c", t, 8);
  CHECK_EQ(strlen(t), 7);
}

static void make_process(tl_wire_process *m) {
  memset(m, 0, sizeof *m);
  tl_uuid_v4(m->process_id);
  tl_uuid_v4(m->parent_process_id);
  m->start_time = 1700000000123456789;
  m->start_ticks = 987654321;
  m->tsc_frequency = 2994000000u;
  m->exe = tl_slice_str("/usr/bin/app");
  m->username = tl_slice_str("alice");
  m->realname = tl_slice_str("Alice Liddell");
  m->computer = tl_slice_str("host-1");
  m->distro = tl_slice_str("Debian GNU/Linux 12 (bookworm)");
  m->cpu_brand = tl_slice_str("AMD EPYC");
  m->nprops = 2;
  m->props[0] = (tl_kv){tl_slice_str("env"), tl_slice_str("prod")};
  m->props[1] = (tl_kv){tl_slice_str("k"), tl_slice_str("")};
}

static int slice_eq(tl_slice a, const char *b) {
  return a.n == strlen(b) && !memcmp(a.p, b, a.n);
}

TEST(process_round_trip) {
  tl_wire_process m, d;
  make_process(&m);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_process_encode(&m, &b), 0);
  CHECK_EQ(tl_wire_kind(b.p, b.len), TL_MSG_PROCESS);
  tl_wire_error err = {0};
  CHECK_EQ(tl_process_decode(b.p, b.len, &d, &err), 0);
  CHECK(!memcmp(d.process_id, m.process_id, 16));
  CHECK(!memcmp(d.parent_process_id, m.parent_process_id, 16));
  CHECK_EQ(d.start_time, m.start_time);
  CHECK_U64(d.start_ticks, m.start_ticks);
  CHECK_U64(d.tsc_frequency, m.tsc_frequency);
  CHECK(slice_eq(d.exe, "/usr/bin/app"));
  CHECK(slice_eq(d.username, "alice"));
  CHECK(slice_eq(d.realname, "Alice Liddell"));
  CHECK(slice_eq(d.computer, "host-1"));
  CHECK(slice_eq(d.distro, "Debian GNU/Linux 12 (bookworm)"));
  CHECK(slice_eq(d.cpu_brand, "AMD EPYC"));
  CHECK_EQ(d.nprops, 2);
  CHECK(slice_eq(d.props[0].key, "env") && slice_eq(d.props[0].value, "prod"));
  CHECK(slice_eq(d.props[1].key, "k") && slice_eq(d.props[1].value, ""));
  tl_bytes_free(&b);
}

TEST(stream_round_trip) {
  tl_wire_stream m, d;
  memset(&m, 0, sizeof m);
  tl_uuid_v4(m.stream_id);
  tl_uuid_v4(m.process_id);
  m.ntags = 1;
  m.tags[0] = tl_slice_str("cpu");
  m.nprops = 2;
  m.props[0] = (tl_kv){tl_slice_str("thread-id"), tl_slice_str("1234")};
  m.props[1] = (tl_kv){tl_slice_str("thread-name"), tl_slice_str("worker")};
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_stream_encode(&m, &b), 0);
  CHECK_EQ(tl_wire_kind(b.p, b.len), TL_MSG_STREAM);
  tl_wire_error err = {0};
  CHECK_EQ(tl_stream_decode(b.p, b.len, &d, &err), 0);
  CHECK(!memcmp(d.stream_id, m.stream_id, 16));
  CHECK(!memcmp(d.process_id, m.process_id, 16));
  CHECK_EQ(d.ntags, 1);
  CHECK(slice_eq(d.tags[0], "cpu"));
  CHECK_EQ(d.nprops, 2);
  CHECK(slice_eq(d.props[1].value, "worker"));
  tl_bytes_free(&b);
}

/* Call sites for the block tests, one per kind. */
static const tl_callsite cs_log = {
    TL_CS_LOG, TL_LEVEL_WARN, 0,           42, "disk %s is %d%% full",
    NULL,      "app::disk",   "src/disk.c"};
static const tl_callsite cs_static = {
    TL_CS_LOG, TL_LEVEL_INFO, 0, 7, "started", NULL, NULL, "src/app/main.c"};
static const tl_callsite cs_im = {TL_CS_IMETRIC, 0,       0,    8,
                                  "bytes_in",    "bytes", NULL, "net.c"};
static const tl_callsite cs_fm = {TL_CS_FMETRIC, 0,       0,    9,
                                  "load",        "ratio", NULL, "net.c"};
static const tl_callsite cs_span = {TL_CS_SPAN, 0,    0,    10,
                                    "parse",    NULL, NULL, "parse.c"};
static const tl_callsite cs_async = {TL_CS_ASYNC, 0,    0,    11,
                                     "request",   NULL, NULL, "srv.c"};

#define NEV 8
static tl_wire_event expected[NEV];

/* Builds a block holding one event of every type; returns it in *out. */
static void build_block(tl_bytes *out, tl_wire_block_header *h) {
  tl_block_builder bb;
  tl_block_builder_init(&bb);
  const tl_callsite *sites[] = {&cs_log, &cs_static, &cs_im,
                                &cs_fm,  &cs_span,   &cs_async};
  for (int i = 0; i < 6; i++)
    CHECK_EQ(tl_block_builder_callsite(&bb, sites[i]), 0);
  static const char msg[] = "disk /var is 93% full";
  uint32_t idx[NEV] = {1, 0, 2, 3, 4, 5, 5, 4};
  int types[NEV] = {TL_EV_LOG,       TL_EV_LOGF,       TL_EV_IMETRIC,
                    TL_EV_FMETRIC,   TL_EV_SPAN_BEGIN, TL_EV_ASYNC_BEGIN,
                    TL_EV_ASYNC_END, TL_EV_SPAN_END};
  uint64_t ticks = 5000;
  for (int i = 0; i < NEV; i++) {
    tl_wire_event *e = &expected[i];
    memset(e, 0, sizeof *e);
    e->type = types[i];
    e->ticks = ticks;
    ticks += (uint64_t)(i * 1000 + 1);
    switch (e->type) {
    case TL_EV_LOGF:
      e->v.msg = tl_slice_str(msg);
      break;
    case TL_EV_IMETRIC:
      e->v.u = 0xFFFFFFFFFFFFFFF0ull;
      break;
    case TL_EV_FMETRIC:
      e->v.f = -3.25e-7;
      break;
    case TL_EV_ASYNC_BEGIN:
    case TL_EV_ASYNC_END:
      e->v.async.id = 77;
      e->v.async.parent = 12;
      e->v.async.depth = 3;
      break;
    }
    CHECK_EQ(tl_block_builder_event(&bb, idx[i], e), 0);
  }
  memset(h, 0, sizeof *h);
  tl_uuid_v4(h->block_id);
  tl_uuid_v4(h->stream_id);
  tl_uuid_v4(h->process_id);
  h->begin_ticks = UINT64_MAX;
  h->end_ticks = 0;
  CHECK_EQ(tl_block_builder_finish(&bb, h, &clock_ref, out), 0);
  tl_block_builder_free(&bb);
}

typedef struct seen {
  int n;
  tl_wire_block_header h;
} seen;

static int on_header(void *ctx, const tl_wire_block_header *h) {
  ((seen *)ctx)->h = *h;
  return 0;
}

static int on_event(void *ctx, const tl_wire_event *ev) {
  seen *s = ctx;
  CHECK(s->n < NEV);
  const tl_wire_event *e = &expected[s->n++];
  CHECK_EQ(ev->type, e->type);
  CHECK_U64(ev->ticks, e->ticks);
  switch (ev->type) {
  case TL_EV_LOG:
    CHECK(slice_eq(ev->v.msg, "started"));
    CHECK_EQ(ev->cs->level, TL_LEVEL_INFO);
    CHECK(slice_eq(ev->cs->target, "app::main")); /* derived from the file */
    CHECK(slice_eq(ev->cs->file, "src/app/main.c"));
    CHECK_EQ(ev->cs->line, 7);
    break;
  case TL_EV_LOGF:
    CHECK(slice_eq(ev->v.msg, "disk /var is 93% full"));
    CHECK(slice_eq(ev->cs->target, "app::disk"));
    CHECK_EQ(ev->cs->level, TL_LEVEL_WARN);
    break;
  case TL_EV_IMETRIC:
    CHECK_U64(ev->v.u, e->v.u);
    CHECK(slice_eq(ev->cs->name, "bytes_in"));
    CHECK(slice_eq(ev->cs->unit, "bytes"));
    break;
  case TL_EV_FMETRIC:
    CHECK(ev->v.f == e->v.f);
    CHECK(slice_eq(ev->cs->unit, "ratio"));
    break;
  case TL_EV_SPAN_BEGIN:
  case TL_EV_SPAN_END:
    CHECK(slice_eq(ev->cs->name, "parse"));
    break;
  default:
    CHECK_U64(ev->v.async.id, 77);
    CHECK_U64(ev->v.async.parent, 12);
    CHECK_EQ(ev->v.async.depth, 3);
    CHECK(slice_eq(ev->cs->name, "request"));
  }
  return 0;
}

TEST(block_round_trip_every_kind) {
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  tl_wire_block_header h;
  build_block(&b, &h);
  CHECK_EQ(tl_wire_kind(b.p, b.len), TL_MSG_BLOCK);
  seen s = {0};
  tl_block_visitor v = {&s, on_header, on_event};
  tl_wire_error err = {0};
  int rc = tl_block_decode(b.p, b.len, &v, &err);
  if (rc)
    FAILF("decode: %s", err.reason);
  CHECK_EQ(s.n, NEV);
  CHECK(!memcmp(s.h.block_id, h.block_id, 16));
  CHECK(!memcmp(s.h.stream_id, h.stream_id, 16));
  CHECK(!memcmp(s.h.process_id, h.process_id, 16));
  CHECK_EQ(s.h.nb_objects, NEV);
  CHECK_U64(s.h.begin_ticks, 5000);
  CHECK_U64(s.h.end_ticks, expected[NEV - 1].ticks);
  /* 4000 ticks after the reference at 2 GHz is 2 us after its wall time. */
  CHECK_EQ(s.h.begin_time, clock_ref.start_time + 2000);
  CHECK(s.h.end_time > s.h.begin_time);
  tl_bytes_free(&b);
}

TEST(block_incompressible_stored_raw) {
  tl_block_builder bb;
  tl_block_builder_init(&bb);
  CHECK_EQ(tl_block_builder_callsite(&bb, &cs_log), 0);
  uint8_t noise[3000];
  for (size_t i = 0; i < sizeof noise; i++)
    noise[i] = (uint8_t)((i * 2654435761u) >> 13);
  tl_wire_event e = {TL_EV_LOGF, NULL, 100, {0}};
  e.v.msg = (tl_slice){noise, sizeof noise};
  CHECK_EQ(tl_block_builder_event(&bb, 0, &e), 0);
  tl_wire_block_header h = {0};
  h.begin_ticks = 100;
  h.end_ticks = 200;
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_block_builder_finish(&bb, &h, &clock_ref, &b), 0);
  tl_wire_error err = {0};
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), 0);
  tl_block_builder_free(&bb);
  tl_bytes_free(&b);
}

/* Every strict prefix of a valid message must be rejected with a reason. */
static void check_prefixes(const uint8_t *p, size_t n) {
  for (size_t k = 0; k < n; k++) {
    tl_wire_error err = {0};
    int rc;
    switch (tl_wire_kind(p, n)) {
    case TL_MSG_PROCESS: {
      tl_wire_process m;
      rc = tl_process_decode(p, k, &m, &err);
      break;
    }
    case TL_MSG_STREAM: {
      tl_wire_stream m;
      rc = tl_stream_decode(p, k, &m, &err);
      break;
    }
    default:
      rc = tl_block_decode(p, k, NULL, &err);
    }
    if (rc == 0)
      FAILF("a %zu-byte prefix of a %zu-byte message was accepted", k, n);
    CHECK(err.reason[0] != 0);
  }
}

TEST(truncated_messages_rejected) {
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  tl_wire_block_header h;
  build_block(&b, &h);
  check_prefixes(b.p, b.len);
  tl_wire_error err = {0};
  CHECK_EQ(tl_block_decode(b.p, 50, NULL, &err), TL_ETRUNCATED);
  CHECK(strstr(err.reason, "truncated") != NULL);
  b.len = 0;
  tl_wire_process m;
  make_process(&m);
  CHECK_EQ(tl_process_encode(&m, &b), 0);
  check_prefixes(b.p, b.len);
  tl_bytes_free(&b);
}

static int decode_any(const uint8_t *p, size_t n, tl_wire_error *err) {
  tl_wire_process pm;
  tl_wire_stream sm;
  switch (tl_wire_kind(p, n)) {
  case TL_MSG_PROCESS:
    return tl_process_decode(p, n, &pm, err);
  case TL_MSG_STREAM:
    return tl_stream_decode(p, n, &sm, err);
  case TL_MSG_BLOCK:
    return tl_block_decode(p, n, NULL, err);
  }
  return TL_EMALFORMED;
}

TEST(corrupted_bytes_rejected) {
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  tl_wire_block_header h;
  build_block(&b, &h);
  /* Flipping any single bit anywhere is caught (CRC32C detects all 1-bit
   * errors); the reason names what failed. */
  for (size_t i = 0; i < b.len; i++)
    for (int bit = 0; bit < 8; bit += 3) {
      b.p[i] ^= (uint8_t)(1 << bit);
      tl_wire_error err = {0};
      int rc = decode_any(b.p, b.len, &err);
      if (rc == 0)
        FAILF("flipping bit %d of byte %zu went unnoticed", bit, i);
      CHECK(err.reason[0] || rc == TL_EMALFORMED);
      b.p[i] ^= (uint8_t)(1 << bit);
    }
  tl_wire_error err = {0};
  b.p[TL_WIRE_BLOCK_HEADER_SIZE + 3] ^= 0x40;
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), TL_ECHECKSUM);
  CHECK(strstr(err.reason, "payload checksum") != NULL);
  b.p[TL_WIRE_BLOCK_HEADER_SIZE + 3] ^= 0x40;
  b.p[4] = 9; /* version */
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), TL_EVERSION);
  CHECK(strstr(err.reason, "version 9") != NULL);
  tl_bytes_free(&b);
}

/* Re-seals a block whose payload was edited: stores it raw with fresh CRCs,
 * so that only the structural checks can catch the edit. */
static void reseal_raw(tl_bytes *b, const uint8_t *payload, size_t n) {
  b->len = TL_WIRE_BLOCK_HEADER_SIZE;
  CHECK_EQ(tl_bytes_append(b, payload, n), 0);
  uint8_t *hp = b->p;
  tl_put_u16(hp + 6, 0);
  tl_put_u32(hp + 92, (uint32_t)n);
  tl_put_u32(hp + 96, (uint32_t)n);
  tl_put_u32(hp + 100, tl_crc32c(0, hp + TL_WIRE_BLOCK_HEADER_SIZE, n));
  tl_put_u32(hp + 104, tl_crc32c(0, hp, 104));
}

TEST(bad_payload_with_valid_crc_rejected) {
  /* One call site (kind LOG) and one event: tag, ticks. */
  tl_block_builder bb;
  tl_block_builder_init(&bb);
  CHECK_EQ(tl_block_builder_callsite(&bb, &cs_static), 0);
  tl_wire_event e = {TL_EV_LOG, NULL, 100, {0}};
  CHECK_EQ(tl_block_builder_event(&bb, 0, &e), 0);
  tl_wire_block_header h = {0};
  h.begin_ticks = 100;
  h.end_ticks = 100;
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_block_builder_finish(&bb, &h, &clock_ref, &b), 0);
  /* Rebuild the raw payload by hand: ncs=1, the call site, then the event. */
  uint8_t raw[256];
  size_t n = 0;
  raw[n++] = 1;
  memcpy(raw + n, bb.callsites.p, bb.callsites.len);
  n += bb.callsites.len;
  size_t ev_at = n;
  memcpy(raw + n, bb.events.p, bb.events.len);
  n += bb.events.len;
  tl_wire_error err = {0};
  reseal_raw(&b, raw, n);
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), 0);

  raw[ev_at] = (uint8_t)(5 << 3 | TL_EV_LOG); /* call site 5 of 1 */
  reseal_raw(&b, raw, n);
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), TL_EMALFORMED);
  CHECK(strstr(err.reason, "call site 5") != NULL);

  raw[ev_at] = (uint8_t)(0 << 3 | TL_EV_IMETRIC); /* kind mismatch */
  reseal_raw(&b, raw, n);
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), TL_EMALFORMED);
  CHECK(strstr(err.reason, "kind") != NULL);

  raw[ev_at] = (uint8_t)(0 << 3 | TL_EV_LOG);
  raw[0] = 0x7f; /* 127 call sites announced */
  reseal_raw(&b, raw, n);
  CHECK(tl_block_decode(b.p, b.len, NULL, &err) != 0);
  CHECK(err.reason[0] != 0);

  raw[0] = 1;
  tl_put_u32(b.p + 88, 2); /* nb_objects says 2, one present */
  reseal_raw(&b, raw, n);
  tl_put_u32(b.p + 88, 2);
  tl_put_u32(b.p + 104, tl_crc32c(0, b.p, 104));
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), TL_ETRUNCATED);
  CHECK(strstr(err.reason, "2 events announced, 1 present") != NULL);
  tl_block_builder_free(&bb);
  tl_bytes_free(&b);
}

TEST(limits_enforced) {
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  tl_wire_block_header h;
  build_block(&b, &h);
  tl_put_u32(b.p + 92, TL_WIRE_MAX_PAYLOAD + 1);
  tl_put_u32(b.p + 104, tl_crc32c(0, b.p, 104));
  tl_wire_error err = {0};
  CHECK_EQ(tl_block_decode(b.p, b.len, NULL, &err), TL_ETOOBIG);
  /* A string longer than the limit in a process message. */
  b.len = 0;
  uint8_t hdr[8] = {'T', 'L', 'P', 'R', 1, 0, 0, 0};
  CHECK_EQ(tl_bytes_append(&b, hdr, 8), 0);
  uint8_t zeros[56] = {0};
  zeros[48] = 1; /* tsc_frequency != 0 */
  CHECK_EQ(tl_bytes_append(&b, zeros, 56), 0);
  uint8_t len[4];
  tl_put_u32(len, 0x7fffffff);
  CHECK_EQ(tl_bytes_append(&b, len, 4), 0);
  uint8_t crc[4];
  tl_put_u32(crc, tl_crc32c(0, b.p, b.len));
  CHECK_EQ(tl_bytes_append(&b, crc, 4), 0);
  tl_wire_process m;
  CHECK_EQ(tl_process_decode(b.p, b.len, &m, &err), TL_ETOOBIG);
  CHECK(strstr(err.reason, "exe") != NULL);
  tl_bytes_free(&b);
}

/* A timed wait ends at its deadline: tl_deadline_in and tl_cond_init agree
 * on the clock (with REALTIME on one side and MONOTONIC on the other, the
 * wait would end at once or in decades). */
TEST(deadline_and_condition_variable_share_a_clock) {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv;
  CHECK_EQ(tl_cond_init(&cv), 0);
  pthread_mutex_lock(&mu);
  uint64_t t0 = tl_mono_ns();
  struct timespec dl = tl_deadline_in(50000000u);
  int rc;
  while ((rc = pthread_cond_timedwait(&cv, &mu, &dl)) == 0) {
  } /* spurious wake-ups */
  uint64_t waited = tl_mono_ns() - t0;
  pthread_mutex_unlock(&mu);
  pthread_cond_destroy(&cv);
  CHECK_EQ(rc, ETIMEDOUT);
  if (waited < 50000000u || waited > 5000000000u)
    FAILF("waited %" PRIu64 " ns for a 50 ms deadline", waited);
}

TEST(utf8_validation) {
  static const struct {
    const char *s;
    size_t n;
    bool ok;
  } cases[] = {
      {"plain ascii", 11, true},
      {"caf\xc3\xa9", 5, true},
      {"\xe2\x82\xac", 3, true},      /* euro sign */
      {"\xf0\x9f\x98\x80", 4, true},  /* emoji */
      {"a\0b", 3, false},             /* NUL */
      {"\xff\xfe", 2, false},         /* not UTF-8 */
      {"\xc0\xaf", 2, false},         /* overlong '/' */
      {"\xed\xa0\x80", 3, false},     /* surrogate */
      {"\xf4\x90\x80\x80", 4, false}, /* above U+10FFFF */
      {"\xe2\x82", 2, false},         /* truncated */
      {"", 0, true},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (tl_utf8_valid((const uint8_t *)cases[i].s, cases[i].n) != cases[i].ok)
      FAILF("case %zu: expected %s", i, cases[i].ok ? "valid" : "invalid");
}

TL_TEST_MAIN()

/* wire.c - encoder and decoder of the wire format (docs/wire-format.md).
 * A reader cursor checks every length against what remains before use. */
#include <lz4.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "wire.h"

/* ---- Errors ----------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int
fail(tl_wire_error *err, int code, size_t off, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof err->reason, fmt, ap);
    va_end(ap);
    err->code = code;
    err->offset = off;
  }
  return code;
}

/* Fuzzing builds skip checksum comparisons so that mutated inputs reach the
 * structural checks; every other check stays. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CRC_DIFFERS(a, b) ((void)(a), (void)(b), 0)
#else
#define CRC_DIFFERS(a, b) ((a) != (b))
#endif

/* ---- Reader ------------------------------------------------------------ */

typedef struct reader {
  const uint8_t *p;
  size_t n, off;
  tl_wire_error *err;
  const char *what; /* message or section being read */
  int rc;
} reader;

static int need(reader *r, size_t k, const char *field) {
  if (r->rc)
    return r->rc;
  if (k > r->n - r->off)
    r->rc = fail(r->err, TL_ETRUNCATED, r->off,
                 "%s truncated: %s needs %zu bytes at offset %zu, %zu remain",
                 r->what, field, k, r->off, r->n - r->off);
  return r->rc;
}

static uint32_t rd_u32(reader *r, const char *field) {
  if (need(r, 4, field))
    return 0;
  uint32_t v = tl_get_u32(r->p + r->off);
  r->off += 4;
  return v;
}

static uint64_t rd_u64(reader *r, const char *field) {
  if (need(r, 8, field))
    return 0;
  uint64_t v = tl_get_u64(r->p + r->off);
  r->off += 8;
  return v;
}

static void rd_bytes(reader *r, void *out, size_t k, const char *field) {
  if (need(r, k, field))
    return;
  memcpy(out, r->p + r->off, k);
  r->off += k;
}

static uint64_t rd_varint(reader *r, const char *field) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (need(r, 1, field))
      return 0;
    uint8_t b = r->p[r->off++];
    if (shift == 63 && b > 1)
      break;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      return v;
  }
  if (!r->rc)
    r->rc = fail(r->err, TL_EMALFORMED, r->off,
                 "%s: %s is a varint over 64 bits", r->what, field);
  return 0;
}

/* A string: u32 length (messages) or varint length (block payload). */
static tl_slice rd_str_len(reader *r, uint64_t len, const char *field) {
  tl_slice s = {NULL, 0};
  if (r->rc)
    return s;
  if (len > TL_WIRE_MAX_STRING) {
    r->rc = fail(r->err, TL_ETOOBIG, r->off,
                 "%s: %s is %llu bytes, over the %u-byte limit", r->what, field,
                 (unsigned long long)len, TL_WIRE_MAX_STRING);
    return s;
  }
  if (need(r, (size_t)len, field))
    return s;
  s.p = r->p + r->off;
  s.n = (size_t)len;
  r->off += (size_t)len;
  return s;
}

static tl_slice rd_str(reader *r, const char *field) {
  uint32_t len = rd_u32(r, field);
  return rd_str_len(r, len, field);
}

static uint32_t rd_props(reader *r, tl_kv *props) {
  uint32_t n = rd_u32(r, "property count");
  if (!r->rc && n > TL_WIRE_MAX_PROPS) {
    r->rc = fail(r->err, TL_ETOOBIG, r->off, "%s: %u properties, limit is %d",
                 r->what, n, TL_WIRE_MAX_PROPS);
    return 0;
  }
  for (uint32_t i = 0; i < n && !r->rc; i++) {
    props[i].key = rd_str(r, "property key");
    props[i].value = rd_str(r, "property value");
  }
  return r->rc ? 0 : n;
}

/* Checks magic, version and the trailing CRC of a process/stream message. */
static int open_message(reader *r, uint32_t magic) {
  if (r->n < 12)
    return r->rc = fail(r->err, TL_ETRUNCATED, 0,
                        "%s truncated: %zu bytes, a message has at least 12",
                        r->what, r->n);
  if (tl_get_u32(r->p) != magic)
    return r->rc = fail(r->err, TL_EMALFORMED, 0, "%s: bad magic 0x%08x",
                        r->what, tl_get_u32(r->p));
  uint16_t version = tl_get_u16(r->p + 4);
  if (version != TL_WIRE_VERSION)
    return r->rc = fail(r->err, TL_EVERSION, 4,
                        "%s: version %u is not supported (this build reads %d)",
                        r->what, version, TL_WIRE_VERSION);
  uint32_t want = tl_get_u32(r->p + r->n - 4);
  uint32_t got = tl_crc32c(0, r->p, r->n - 4);
  if (CRC_DIFFERS(want, got))
    return r->rc =
               fail(r->err, TL_ECHECKSUM, r->n - 4,
                    "%s: checksum mismatch (stored 0x%08x, computed 0x%08x)",
                    r->what, want, got);
  r->n -= 4; /* the body ends where the CRC begins */
  r->off = 8;
  return 0;
}

static int close_message(reader *r) {
  if (!r->rc && r->off != r->n)
    r->rc = fail(r->err, TL_EMALFORMED, r->off,
                 "%s: %zu unexpected trailing bytes", r->what, r->n - r->off);
  return r->rc;
}

int tl_wire_kind(const uint8_t *p, size_t n) {
  if (n < 4)
    return TL_EMALFORMED;
  switch (tl_get_u32(p)) {
  case TL_WIRE_MAGIC_PROCESS:
    return TL_MSG_PROCESS;
  case TL_WIRE_MAGIC_STREAM:
    return TL_MSG_STREAM;
  case TL_WIRE_MAGIC_BLOCK:
    return TL_MSG_BLOCK;
  }
  return TL_EMALFORMED;
}

int tl_process_decode(const uint8_t *p, size_t n, tl_wire_process *out,
                      tl_wire_error *err) {
  reader r = {p, n, 0, err, "process message", 0};
  tl_wire_process m;
  memset(&m, 0, sizeof m);
  if (open_message(&r, TL_WIRE_MAGIC_PROCESS))
    return r.rc;
  rd_bytes(&r, m.process_id, 16, "process_id");
  rd_bytes(&r, m.parent_process_id, 16, "parent_process_id");
  m.start_time = (int64_t)rd_u64(&r, "start_time");
  m.start_ticks = rd_u64(&r, "start_ticks");
  m.tsc_frequency = rd_u64(&r, "tsc_frequency");
  m.exe = rd_str(&r, "exe");
  m.username = rd_str(&r, "username");
  m.realname = rd_str(&r, "realname");
  m.computer = rd_str(&r, "computer");
  m.distro = rd_str(&r, "distro");
  m.cpu_brand = rd_str(&r, "cpu_brand");
  m.nprops = rd_props(&r, m.props);
  if (close_message(&r))
    return r.rc;
  if (m.tsc_frequency == 0)
    return fail(err, TL_EMALFORMED, 0, "process message: tsc_frequency is 0");
  *out = m;
  return 0;
}

int tl_stream_decode(const uint8_t *p, size_t n, tl_wire_stream *out,
                     tl_wire_error *err) {
  reader r = {p, n, 0, err, "stream message", 0};
  tl_wire_stream m;
  memset(&m, 0, sizeof m);
  if (open_message(&r, TL_WIRE_MAGIC_STREAM))
    return r.rc;
  rd_bytes(&r, m.stream_id, 16, "stream_id");
  rd_bytes(&r, m.process_id, 16, "process_id");
  uint32_t ntags = rd_u32(&r, "tag count");
  if (!r.rc && ntags > TL_WIRE_MAX_TAGS)
    return fail(err, TL_ETOOBIG, r.off, "stream message: %u tags, limit is %d",
                ntags, TL_WIRE_MAX_TAGS);
  for (uint32_t i = 0; i < ntags && !r.rc; i++)
    m.tags[i] = rd_str(&r, "tag");
  m.ntags = ntags;
  m.nprops = rd_props(&r, m.props);
  if (close_message(&r))
    return r.rc;
  *out = m;
  return 0;
}

int tl_block_header_decode(const uint8_t *p, size_t n,
                           tl_wire_block_header *out, tl_wire_error *err) {
  if (n < TL_WIRE_BLOCK_HEADER_SIZE)
    return fail(err, TL_ETRUNCATED, n,
                "block truncated: %zu bytes, the header alone is %d", n,
                TL_WIRE_BLOCK_HEADER_SIZE);
  if (tl_get_u32(p) != TL_WIRE_MAGIC_BLOCK)
    return fail(err, TL_EMALFORMED, 0, "block: bad magic 0x%08x",
                tl_get_u32(p));
  tl_wire_block_header h;
  h.version = tl_get_u16(p + 4);
  if (h.version != TL_WIRE_VERSION)
    return fail(err, TL_EVERSION, 4,
                "block: version %u is not supported (this build reads %d)",
                h.version, TL_WIRE_VERSION);
  uint32_t want = tl_get_u32(p + 104), got = tl_crc32c(0, p, 104);
  if (CRC_DIFFERS(want, got))
    return fail(err, TL_ECHECKSUM, 104,
                "block: header checksum mismatch (stored 0x%08x, computed "
                "0x%08x)",
                want, got);
  h.flags = tl_get_u16(p + 6);
  if (h.flags & ~TL_WIRE_BLOCK_LZ4)
    return fail(err, TL_EMALFORMED, 6, "block: unknown flags 0x%x", h.flags);
  memcpy(h.block_id, p + 8, 16);
  memcpy(h.stream_id, p + 24, 16);
  memcpy(h.process_id, p + 40, 16);
  h.begin_time = (int64_t)tl_get_u64(p + 56);
  h.begin_ticks = tl_get_u64(p + 64);
  h.end_time = (int64_t)tl_get_u64(p + 72);
  h.end_ticks = tl_get_u64(p + 80);
  h.nb_objects = tl_get_u32(p + 88);
  h.payload_raw_size = tl_get_u32(p + 92);
  h.payload_size = tl_get_u32(p + 96);
  h.payload_crc = tl_get_u32(p + 100);
  if (h.payload_raw_size > TL_WIRE_MAX_PAYLOAD)
    return fail(err, TL_ETOOBIG, 92,
                "block: payload of %u bytes exceeds the %u-byte limit",
                h.payload_raw_size, TL_WIRE_MAX_PAYLOAD);
  if (!(h.flags & TL_WIRE_BLOCK_LZ4) && h.payload_size != h.payload_raw_size)
    return fail(err, TL_EMALFORMED, 96,
                "block: uncompressed payload sizes differ (%u vs %u)",
                h.payload_size, h.payload_raw_size);
  if (n - TL_WIRE_BLOCK_HEADER_SIZE != h.payload_size)
    return fail(err,
                n - TL_WIRE_BLOCK_HEADER_SIZE < h.payload_size ? TL_ETRUNCATED
                                                               : TL_EMALFORMED,
                n,
                "block: header announces a %u-byte payload, %zu bytes follow",
                h.payload_size, n - TL_WIRE_BLOCK_HEADER_SIZE);
  if (h.end_ticks < h.begin_ticks)
    return fail(err, TL_EMALFORMED, 80, "block: end_ticks before begin_ticks");
  *out = h;
  return 0;
}

static int cs_kind_allows(uint8_t kind, int type) {
  switch (type) {
  case TL_EV_LOG:
  case TL_EV_LOGF:
    return kind == TL_CS_LOG;
  case TL_EV_IMETRIC:
    return kind == TL_CS_IMETRIC;
  case TL_EV_FMETRIC:
    return kind == TL_CS_FMETRIC;
  case TL_EV_SPAN_BEGIN:
  case TL_EV_SPAN_END:
    return kind == TL_CS_SPAN;
  default:
    return kind == TL_CS_ASYNC;
  }
}

static int64_t unzigzag(uint64_t v) {
  return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

int tl_block_decode(const uint8_t *p, size_t n, const tl_block_visitor *v,
                    tl_wire_error *err) {
  tl_wire_block_header h;
  int rc = tl_block_header_decode(p, n, &h, err);
  if (rc)
    return rc;
  const uint8_t *payload = p + TL_WIRE_BLOCK_HEADER_SIZE;
  uint32_t crc = tl_crc32c(0, payload, h.payload_size);
  if (CRC_DIFFERS(crc, h.payload_crc))
    return fail(err, TL_ECHECKSUM, TL_WIRE_BLOCK_HEADER_SIZE,
                "block: payload checksum mismatch (stored 0x%08x, computed "
                "0x%08x)",
                h.payload_crc, crc);
  if (v && v->on_header && (rc = v->on_header(v->ctx, &h)))
    return rc;

  uint8_t *raw = NULL;
  tl_wire_callsite *cs = NULL;
  if (h.flags & TL_WIRE_BLOCK_LZ4) {
    raw = malloc(h.payload_raw_size ? h.payload_raw_size : 1);
    if (!raw)
      return fail(err, TL_ENOMEM, 0, "block: no memory for %u bytes",
                  h.payload_raw_size);
    int got = LZ4_decompress_safe((const char *)payload, (char *)raw,
                                  (int)h.payload_size, (int)h.payload_raw_size);
    if (got < 0 || (uint32_t)got != h.payload_raw_size) {
      rc = fail(err, TL_EMALFORMED, TL_WIRE_BLOCK_HEADER_SIZE,
                "block: lz4 payload does not decompress to %u bytes",
                h.payload_raw_size);
      goto out;
    }
    payload = raw;
  }

  reader r = {payload, h.payload_raw_size, 0, err, "block payload", 0};
  uint64_t ncs = rd_varint(&r, "call-site count");
  if (!r.rc && ncs > TL_WIRE_MAX_CALLSITES) {
    rc = fail(err, TL_ETOOBIG, r.off, "block: %llu call sites, limit is %d",
              (unsigned long long)ncs, TL_WIRE_MAX_CALLSITES);
    goto out;
  }
  /* Each call site takes at least 7 bytes: reject counts the payload cannot
   * hold before allocating for them. */
  if (!r.rc && ncs > (r.n - r.off) / 7) {
    rc = fail(err, TL_ETRUNCATED, r.off,
              "block: %llu call sites cannot fit in %zu bytes",
              (unsigned long long)ncs, r.n - r.off);
    goto out;
  }
  if (!r.rc && ncs && !(cs = calloc((size_t)ncs, sizeof *cs))) {
    rc = fail(err, TL_ENOMEM, 0, "block: no memory for call sites");
    goto out;
  }
  for (uint64_t i = 0; i < ncs && !r.rc; i++) {
    if (need(&r, 2, "call-site kind"))
      break;
    cs[i].kind = r.p[r.off++];
    cs[i].level = r.p[r.off++];
    if (cs[i].kind < TL_CS_LOG || cs[i].kind > TL_CS_ASYNC) {
      r.rc = fail(err, TL_EMALFORMED, r.off - 2,
                  "block: call site %llu has unknown kind %u",
                  (unsigned long long)i, cs[i].kind);
      break;
    }
    if (cs[i].kind == TL_CS_LOG &&
        (cs[i].level < TL_LEVEL_FATAL || cs[i].level > TL_LEVEL_TRACE)) {
      r.rc = fail(err, TL_EMALFORMED, r.off - 1,
                  "block: call site %llu has invalid level %u",
                  (unsigned long long)i, cs[i].level);
      break;
    }
    uint64_t line = rd_varint(&r, "call-site line");
    cs[i].line = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
    cs[i].name = rd_str_len(&r, rd_varint(&r, "name length"), "name");
    cs[i].unit = rd_str_len(&r, rd_varint(&r, "unit length"), "unit");
    cs[i].target = rd_str_len(&r, rd_varint(&r, "target length"), "target");
    cs[i].file = rd_str_len(&r, rd_varint(&r, "file length"), "file");
  }
  uint64_t ticks = 0;
  uint32_t count = 0;
  while (!r.rc && r.off < r.n) {
    tl_wire_event ev;
    size_t at = r.off;
    uint64_t tag = rd_varint(&r, "event tag");
    uint64_t idx = tag >> 3;
    ev.type = (int)(tag & 7);
    int64_t delta = unzigzag(rd_varint(&r, "event ticks"));
    if (r.rc)
      break;
    if (idx >= ncs) {
      r.rc = fail(err, TL_EMALFORMED, at,
                  "block: event %u references call site %llu of %llu", count,
                  (unsigned long long)idx, (unsigned long long)ncs);
      break;
    }
    ev.cs = &cs[idx];
    if (!cs_kind_allows(ev.cs->kind, ev.type)) {
      r.rc = fail(err, TL_EMALFORMED, at,
                  "block: event %u has type %d but its call site has kind %u",
                  count, ev.type, ev.cs->kind);
      break;
    }
    ticks += (uint64_t)delta;
    ev.ticks = ticks;
    switch (ev.type) {
    case TL_EV_LOG:
      ev.v.msg = ev.cs->name;
      break;
    case TL_EV_LOGF:
      ev.v.msg = rd_str_len(&r, rd_varint(&r, "message length"), "message");
      break;
    case TL_EV_IMETRIC:
      ev.v.u = rd_varint(&r, "metric value");
      break;
    case TL_EV_FMETRIC: {
      uint64_t bits = rd_u64(&r, "metric value");
      memcpy(&ev.v.f, &bits, 8);
      break;
    }
    case TL_EV_SPAN_BEGIN:
    case TL_EV_SPAN_END:
      break;
    default: {
      ev.v.async.id = rd_varint(&r, "span id");
      ev.v.async.parent = rd_varint(&r, "parent span id");
      uint64_t depth = rd_varint(&r, "span depth");
      if (!r.rc && (depth > UINT32_MAX || ev.v.async.id == 0)) {
        r.rc = fail(err, TL_EMALFORMED, at,
                    "block: event %u has an invalid async span id or depth",
                    count);
        break;
      }
      ev.v.async.depth = (uint32_t)depth;
    }
    }
    if (r.rc)
      break;
    if (ev.ticks < h.begin_ticks || ev.ticks > h.end_ticks) {
      r.rc =
          fail(err, TL_EMALFORMED, at,
               "block: event %u time is outside the block's tick range", count);
      break;
    }
    if (++count > h.nb_objects) {
      r.rc = fail(err, TL_EMALFORMED, at,
                  "block: more events than the %u announced", h.nb_objects);
      break;
    }
    if (v && v->on_event && (rc = v->on_event(v->ctx, &ev)))
      goto out;
  }
  if (!r.rc && count != h.nb_objects)
    r.rc = fail(err, TL_ETRUNCATED, r.off,
                "block: %u events announced, %u present", h.nb_objects, count);
  rc = r.rc;
out:
  free(cs);
  free(raw);
  return rc;
}

uint32_t tl_block_content_crc(const uint8_t *p, size_t n) {
  return tl_crc32c(tl_crc32c(0, p, 104), p + 108, n - 108);
}

/* ---- Writer ------------------------------------------------------------ */

/* Writes a varint at `o`, which has room for 10 bytes; returns the end. */
static inline uint8_t *varint_at(uint8_t *o, uint64_t v) {
  while (v >= 0x80) {
    *o++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *o++ = (uint8_t)v;
  return o;
}

static int put_varint(tl_bytes *b, uint64_t v) {
  int rc = tl_bytes_reserve(b, 10);
  if (rc)
    return rc;
  b->len = (size_t)(varint_at(b->p + b->len, v) - b->p);
  return 0;
}

static int put_u32(tl_bytes *b, uint32_t v) {
  uint8_t t[4];
  tl_put_u32(t, v);
  return tl_bytes_append(b, t, 4);
}

static int put_u64(tl_bytes *b, uint64_t v) {
  uint8_t t[8];
  tl_put_u64(t, v);
  return tl_bytes_append(b, t, 8);
}

static int put_str(tl_bytes *b, tl_slice s) {
  if (s.n > TL_WIRE_MAX_STRING)
    s.n = TL_WIRE_MAX_STRING; /* truncate rather than refuse the message */
  int rc = put_u32(b, (uint32_t)s.n);
  return rc ? rc : tl_bytes_append(b, s.p, s.n);
}

static int put_vstr(tl_bytes *b, const char *s, size_t n) {
  if (n > TL_WIRE_MAX_STRING)
    n = TL_WIRE_MAX_STRING;
  int rc = put_varint(b, n);
  return rc ? rc : tl_bytes_append(b, s, n);
}

static int put_props(tl_bytes *b, uint32_t n, const tl_kv *props) {
  if (n > TL_WIRE_MAX_PROPS)
    return TL_ETOOBIG;
  int rc = put_u32(b, n);
  for (uint32_t i = 0; i < n && !rc; i++)
    if (!(rc = put_str(b, props[i].key)))
      rc = put_str(b, props[i].value);
  return rc;
}

static int put_head(tl_bytes *b, uint32_t magic) {
  uint8_t t[8];
  tl_put_u32(t, magic);
  tl_put_u16(t + 4, TL_WIRE_VERSION);
  tl_put_u16(t + 6, 0);
  return tl_bytes_append(b, t, 8);
}

static int put_crc(tl_bytes *b, size_t start) {
  return put_u32(b, tl_crc32c(0, b->p + start, b->len - start));
}

int tl_process_encode(const tl_wire_process *m, tl_bytes *out) {
  size_t start = out->len;
  int rc = put_head(out, TL_WIRE_MAGIC_PROCESS);
  if (!rc)
    rc = tl_bytes_append(out, m->process_id, 16);
  if (!rc)
    rc = tl_bytes_append(out, m->parent_process_id, 16);
  if (!rc)
    rc = put_u64(out, (uint64_t)m->start_time);
  if (!rc)
    rc = put_u64(out, m->start_ticks);
  if (!rc)
    rc = put_u64(out, m->tsc_frequency);
  const tl_slice *strs[] = {&m->exe,      &m->username, &m->realname,
                            &m->computer, &m->distro,   &m->cpu_brand};
  for (size_t i = 0; i < 6 && !rc; i++)
    rc = put_str(out, *strs[i]);
  if (!rc)
    rc = put_props(out, m->nprops, m->props);
  if (!rc)
    rc = put_crc(out, start);
  if (rc)
    out->len = start;
  return rc;
}

int tl_stream_encode(const tl_wire_stream *m, tl_bytes *out) {
  size_t start = out->len;
  int rc = m->ntags > TL_WIRE_MAX_TAGS ? TL_ETOOBIG : 0;
  if (!rc)
    rc = put_head(out, TL_WIRE_MAGIC_STREAM);
  if (!rc)
    rc = tl_bytes_append(out, m->stream_id, 16);
  if (!rc)
    rc = tl_bytes_append(out, m->process_id, 16);
  if (!rc)
    rc = put_u32(out, m->ntags);
  for (uint32_t i = 0; i < m->ntags && !rc; i++)
    rc = put_str(out, m->tags[i]);
  if (!rc)
    rc = put_props(out, m->nprops, m->props);
  if (!rc)
    rc = put_crc(out, start);
  if (rc)
    out->len = start;
  return rc;
}

size_t tl_target_from_file(const char *file, char *out, size_t cap) {
  if (!cap)
    return 0;
  if (!file)
    file = "";
  const char *end = file + strlen(file);
  const char *base = end;
  while (base > file && base[-1] != '/')
    base--;
  const char *dot = strrchr(base, '.');
  const char *stem_end = dot && dot != base ? dot : end;
  const char *dir = base > file ? base - 1 : base; /* at '/' or start */
  const char *dir_start = dir;
  while (dir_start > file && dir_start[-1] != '/')
    dir_start--;
  size_t n = 0;
  int has_dir =
      dir > dir_start && !(dir - dir_start == 1 && *dir_start == '.') &&
      !(dir - dir_start == 2 && dir_start[0] == '.' && dir_start[1] == '.');
  if (has_dir) {
    for (const char *c = dir_start; c < dir && n + 1 < cap; c++)
      out[n++] = *c;
    for (const char *c = "::"; *c && n + 1 < cap; c++)
      out[n++] = *c;
  }
  for (const char *c = base; c < stem_end && n + 1 < cap; c++)
    out[n++] = *c;
  out[n] = 0;
  return n;
}

void tl_block_builder_init(tl_block_builder *b) {
  memset(b, 0, sizeof *b);
  tl_bytes_init(&b->callsites, TL_WIRE_MAX_PAYLOAD);
  tl_bytes_init(&b->events, TL_WIRE_MAX_PAYLOAD);
  tl_bytes_init(&b->payload,
                LZ4_COMPRESSBOUND(TL_WIRE_MAX_PAYLOAD) + TL_WIRE_MAX_PAYLOAD);
}

void tl_block_builder_free(tl_block_builder *b) {
  tl_bytes_free(&b->callsites);
  tl_bytes_free(&b->events);
  tl_bytes_free(&b->payload);
}

void tl_block_builder_reset(tl_block_builder *b) {
  b->callsites.len = b->events.len = b->payload.len = 0;
  b->ncallsites = b->nevents = 0;
  b->min_ticks = b->max_ticks = b->prev_ticks = 0;
}

int tl_block_builder_callsite(tl_block_builder *b, const tl_callsite *cs) {
  tl_bytes *o = &b->callsites;
  uint8_t kl[2] = {cs->kind, cs->level};
  char target[256];
  const char *t = cs->target;
  size_t tn;
  if (t) {
    tn = strlen(t);
  } else {
    tn = tl_target_from_file(cs->file, target, sizeof target);
    t = target;
  }
  int rc = tl_bytes_append(o, kl, 2);
  if (!rc)
    rc = put_varint(o, cs->line);
  if (!rc)
    rc = put_vstr(o, cs->name ? cs->name : "", cs->name ? strlen(cs->name) : 0);
  if (!rc)
    rc = put_vstr(o, cs->unit ? cs->unit : "", cs->unit ? strlen(cs->unit) : 0);
  if (!rc)
    rc = put_vstr(o, t, tn);
  if (!rc)
    rc = put_vstr(o, cs->file ? cs->file : "", cs->file ? strlen(cs->file) : 0);
  if (!rc)
    b->ncallsites++;
  return rc;
}

int tl_block_builder_event(tl_block_builder *b, uint32_t cs_index,
                           const tl_wire_event *ev) {
  tl_bytes *o = &b->events;
  /* One reservation covers the whole event: at most five varints and a
   * double, plus the message of a formatted log. */
  size_t msg = ev->type == TL_EV_LOGF ? ev->v.msg.n : 0;
  if (msg > TL_WIRE_MAX_STRING)
    msg = TL_WIRE_MAX_STRING;
  int rc = tl_bytes_reserve(o, 60 + msg);
  if (rc)
    return rc;
  if (b->nevents == 0) { /* the first delta is from 0: absolute ticks */
    b->min_ticks = b->max_ticks = ev->ticks;
    b->prev_ticks = 0;
  }
  if (ev->ticks < b->min_ticks)
    b->min_ticks = ev->ticks;
  if (ev->ticks > b->max_ticks)
    b->max_ticks = ev->ticks;
  int64_t d = (int64_t)(ev->ticks - b->prev_ticks);
  b->prev_ticks = ev->ticks;
  uint8_t *w = o->p + o->len;
  w = varint_at(w, (uint64_t)cs_index << 3 | (uint64_t)ev->type);
  w = varint_at(w, (uint64_t)(d << 1) ^ (uint64_t)(d >> 63));
  switch (ev->type) {
  case TL_EV_LOGF:
    w = varint_at(w, msg);
    if (msg)
      memcpy(w, ev->v.msg.p, msg);
    w += msg;
    break;
  case TL_EV_IMETRIC:
    w = varint_at(w, ev->v.u);
    break;
  case TL_EV_FMETRIC:
    memcpy(w, &ev->v.f, 8);
    w += 8;
    break;
  case TL_EV_ASYNC_BEGIN:
  case TL_EV_ASYNC_END:
    w = varint_at(w, ev->v.async.id);
    w = varint_at(w, ev->v.async.parent);
    w = varint_at(w, ev->v.async.depth);
    break;
  default:
    break;
  }
  o->len = (size_t)(w - o->p);
  b->nevents++;
  return 0;
}

int tl_block_builder_finish(tl_block_builder *b, tl_wire_block_header *h,
                            const tl_clock_ref *ref, tl_bytes *out) {
  tl_bytes *pl = &b->payload;
  pl->len = 0;
  int rc = put_varint(pl, b->ncallsites);
  if (!rc)
    rc = tl_bytes_append(pl, b->callsites.p, b->callsites.len);
  if (!rc)
    rc = tl_bytes_append(pl, b->events.p, b->events.len);
  if (rc)
    return rc;
  if (pl->len > TL_WIRE_MAX_PAYLOAD)
    return TL_ETOOBIG;
  size_t raw = pl->len;
  int bound = LZ4_compressBound((int)raw);
  size_t start = out->len;
  if ((rc = tl_bytes_reserve(out, TL_WIRE_BLOCK_HEADER_SIZE + (size_t)bound)))
    return rc;
  uint8_t *hp = out->p + start;
  uint8_t *dst = hp + TL_WIRE_BLOCK_HEADER_SIZE;
  int csize =
      LZ4_compress_default((const char *)pl->p, (char *)dst, (int)raw, bound);
  h->flags = TL_WIRE_BLOCK_LZ4;
  if (csize <= 0 || (size_t)csize >= raw) { /* incompressible: store raw */
    memcpy(dst, pl->p, raw);
    csize = (int)raw;
    h->flags = 0;
  }
  h->version = TL_WIRE_VERSION;
  h->nb_objects = b->nevents;
  h->payload_raw_size = (uint32_t)raw;
  h->payload_size = (uint32_t)csize;
  h->payload_crc = tl_crc32c(0, dst, (size_t)csize);
  if (b->nevents) {
    if (h->begin_ticks > b->min_ticks)
      h->begin_ticks = b->min_ticks;
    if (h->end_ticks < b->max_ticks)
      h->end_ticks = b->max_ticks;
  }
  if (h->end_ticks < h->begin_ticks)
    h->end_ticks = h->begin_ticks;
  h->begin_time = tl_ticks_to_wall(h->begin_ticks, ref->start_ticks,
                                   ref->start_time, ref->tsc_frequency);
  h->end_time = tl_ticks_to_wall(h->end_ticks, ref->start_ticks,
                                 ref->start_time, ref->tsc_frequency);
  tl_put_u32(hp, TL_WIRE_MAGIC_BLOCK);
  tl_put_u16(hp + 4, h->version);
  tl_put_u16(hp + 6, h->flags);
  memcpy(hp + 8, h->block_id, 16);
  memcpy(hp + 24, h->stream_id, 16);
  memcpy(hp + 40, h->process_id, 16);
  tl_put_u64(hp + 56, (uint64_t)h->begin_time);
  tl_put_u64(hp + 64, h->begin_ticks);
  tl_put_u64(hp + 72, (uint64_t)h->end_time);
  tl_put_u64(hp + 80, h->end_ticks);
  tl_put_u32(hp + 88, h->nb_objects);
  tl_put_u32(hp + 92, h->payload_raw_size);
  tl_put_u32(hp + 96, h->payload_size);
  tl_put_u32(hp + 100, h->payload_crc);
  tl_put_u32(hp + 104, tl_crc32c(0, hp, 104));
  out->len = start + TL_WIRE_BLOCK_HEADER_SIZE + (size_t)csize;
  return 0;
}

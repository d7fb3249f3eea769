/* flight_common.c - Any packing, command identification and the zero-copy
 * FlightData codec shared by the Flight SQL server and client. The wire
 * format is protobuf's: varint keys (field << 3 | wire type), varint
 * lengths before length-delimited fields. */
#include "flightsql/common/flight_common.h"

#include <stdlib.h>
#include <string.h>

#define PB_VARINT 0
#define PB_I64 1
#define PB_LEN 2
#define PB_I32 5

#define TL__FLIGHT_CMD_DESC(tag, lower)                                        \
  [TL_FLIGHT_CMD_##tag] = &arrow__flight__protocol__sql__##lower##__descriptor,
static const ProtobufCMessageDescriptor *const cmd_desc[TL_FLIGHT_CMD_COUNT] = {
    TL_FLIGHT_CMD_MAP(TL__FLIGHT_CMD_DESC)};
#undef TL__FLIGHT_CMD_DESC

const ProtobufCMessageDescriptor *tl_flight_cmd_descriptor(tl_flight_cmd c) {
  if ((int)c <= TL_FLIGHT_CMD_UNKNOWN || c >= TL_FLIGHT_CMD_COUNT)
    return NULL;
  return cmd_desc[c];
}

const char *tl_flight_cmd_name(tl_flight_cmd c) {
  const ProtobufCMessageDescriptor *d = tl_flight_cmd_descriptor(c);
  return d ? d->short_name : "unknown";
}

tl_flight_cmd tl_flight_cmd_of(const ProtobufCMessageDescriptor *d) {
  for (int c = 1; c < TL_FLIGHT_CMD_COUNT; c++)
    if (cmd_desc[c] == d)
      return (tl_flight_cmd)c;
  return TL_FLIGHT_CMD_UNKNOWN;
}

tl_flight_cmd tl_flight_cmd_from_type_url(const char *p, size_t n) {
  if (!p)
    return TL_FLIGHT_CMD_UNKNOWN;
  /* The Any rules: the type name is what follows the last '/'. */
  size_t start = 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] == '/')
      start = i + 1;
  const char *name = p + start;
  size_t len = n - start;
  for (int c = 1; c < TL_FLIGHT_CMD_COUNT; c++) {
    const char *full = cmd_desc[c]->name;
    if (strlen(full) == len && memcmp(full, name, len) == 0)
      return (tl_flight_cmd)c;
  }
  return TL_FLIGHT_CMD_UNKNOWN;
}

/* ---- wire primitives ----------------------------------------------------- */

int tl_flight_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v) {
  uint64_t r = 0;
  size_t i = *off;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (i >= n)
      return TL_ETRUNCATED;
    uint8_t b = p[i++];
    if (shift == 63 && b > 1)
      return TL_EMALFORMED;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *off = i;
      *v = r;
      return 0;
    }
  }
  return TL_EMALFORMED;
}

static size_t put_varint(uint8_t *out, uint64_t v) {
  size_t i = 0;
  while (v >= 0x80) {
    out[i++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[i++] = (uint8_t)v;
  return i;
}

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

size_t tl_flight_key_len(uint8_t *out, uint32_t field, uint64_t len) {
  size_t k = put_varint(out, ((uint64_t)field << 3) | PB_LEN);
  return k + put_varint(out + k, len);
}

/* Reads one field's key; for a LEN field, sets *val to its bytes; other
 * wire types are skipped. Returns 0 or a TL_E* code. */
/* The head of the field at w[0..wn) (a window of at most 20 bytes: a key
 * and a length, two varints), `left` bytes being left in the message: its
 * number and wire type, the bytes of its key (and length), and of its
 * value. The value must fit in what is left. */
static int field_head(const uint8_t *w, size_t wn, size_t left, uint32_t *field,
                      int *wt, size_t *head, size_t *vlen) {
  uint64_t key, len;
  size_t off = 0;
  int rc = tl_flight_varint(w, wn, &off, &key);
  if (rc)
    return rc;
  *wt = (int)(key & 7);
  uint64_t f = key >> 3;
  if (f == 0 || f > 536870911u)
    return TL_EMALFORMED;
  *field = (uint32_t)f;
  switch (*wt) {
  case PB_VARINT: {
    size_t k = off;
    rc = tl_flight_varint(w, wn, &k, &len);
    *head = off;
    *vlen = k - off;
    return rc;
  }
  case PB_I64:
  case PB_I32:
    *head = off;
    *vlen = *wt == PB_I64 ? 8 : 4;
    return *vlen > left - off ? TL_ETRUNCATED : 0;
  case PB_LEN:
    rc = tl_flight_varint(w, wn, &off, &len);
    if (rc)
      return rc;
    if (len > left - off)
      return TL_ETRUNCATED;
    *head = off;
    *vlen = (size_t)len;
    return 0;
  default: /* groups (3, 4) are not used by these protocols; 6, 7 invalid */
    return TL_EMALFORMED;
  }
}

/* Reads the field at p[*off, n), advancing *off past it; `val` is the
 * value of a length-delimited one. */
static int next_field(const uint8_t *p, size_t n, size_t *off, uint32_t *field,
                      int *wt, tl_slice *val) {
  size_t left = n - *off, head, vlen;
  int rc = field_head(p + *off, left < 20 ? left : 20, left, field, wt, &head,
                      &vlen);
  if (rc)
    return rc;
  if (*wt == PB_LEN)
    *val = (tl_slice){p + *off + head, vlen};
  *off += head + vlen;
  return 0;
}

/* Bytes a length-delimited field takes (0 when empty: proto3 omits it). */
static size_t field_size(uint32_t field, size_t len) {
  return len ? varint_size((uint64_t)field << 3) + varint_size(len) + len : 0;
}

/* ---- Any ----------------------------------------------------------------- */

int tl_flight_any_decode(const uint8_t *p, size_t n, tl_flight_any *out) {
  tl_flight_any a = {{NULL, 0}, {NULL, 0}};
  size_t off = 0;
  if (!p && n)
    return TL_EINVAL;
  if (n > TL_FLIGHT_MSG_MAX)
    return TL_EMALFORMED;
  while (off < n) {
    uint32_t field;
    int wt;
    tl_slice v = {NULL, 0};
    int rc = next_field(p, n, &off, &field, &wt, &v);
    if (rc)
      return rc;
    if (field == 1 || field == 2) {
      if (wt != PB_LEN)
        return TL_EMALFORMED;
      if (field == 1)
        a.type_url = v;
      else
        a.value = v;
    }
  }
  if (a.type_url.n > TL_FLIGHT_TYPE_URL_MAX)
    return TL_EMALFORMED;
  *out = a;
  return 0;
}

int tl_flight_msg_pack(const ProtobufCMessage *msg, tl_bytes *out) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  int rc = tl_bytes_reserve(out, n);
  if (rc)
    return rc;
  size_t w = protobuf_c_message_pack(msg, out->p + out->len);
  out->len += w;
  return 0;
}

int tl_flight_any_pack(const ProtobufCMessage *msg, tl_bytes *out) {
  const char *full = msg->descriptor->name;
  size_t plen = sizeof(TL_FLIGHT_TYPE_URL_PREFIX) - 1, flen = strlen(full);
  size_t vlen = protobuf_c_message_get_packed_size(msg);
  size_t ulen = plen + flen;
  size_t total = field_size(1, ulen) + field_size(2, vlen);
  int rc = tl_bytes_reserve(out, total);
  if (rc)
    return rc;
  uint8_t *w = out->p + out->len;
  w += tl_flight_key_len(w, 1, ulen);
  memcpy(w, TL_FLIGHT_TYPE_URL_PREFIX, plen);
  memcpy(w + plen, full, flen);
  w += ulen;
  if (vlen) {
    w += tl_flight_key_len(w, 2, vlen);
    w += protobuf_c_message_pack(msg, w);
  }
  out->len = (size_t)(w - out->p);
  return 0;
}

int tl_flight_any_unpack(const uint8_t *p, size_t n, tl_flight_cmd *kind,
                         ProtobufCMessage **msg, tl_flight_any *any) {
  tl_flight_any a;
  int rc = tl_flight_any_decode(p, n, &a);
  if (rc)
    return rc;
  if (any)
    *any = a;
  tl_flight_cmd c =
      tl_flight_cmd_from_type_url((const char *)a.type_url.p, a.type_url.n);
  if (c == TL_FLIGHT_CMD_UNKNOWN) {
    *kind = c;
    return TL_ENOTFOUND;
  }
  /* protobuf-c reads a NULL pointer for an empty message as "no bytes". */
  static const uint8_t none[1];
  ProtobufCMessage *m = protobuf_c_message_unpack(cmd_desc[c], NULL, a.value.n,
                                                  a.value.n ? a.value.p : none);
  if (!m)
    return TL_EMALFORMED;
  *kind = c;
  *msg = m;
  return 0;
}

int tl_flight_any_unpack_as(const uint8_t *p, size_t n, tl_flight_cmd want,
                            ProtobufCMessage **msg) {
  tl_flight_cmd kind = TL_FLIGHT_CMD_UNKNOWN;
  ProtobufCMessage *m = NULL;
  int rc = tl_flight_any_unpack(p, n, &kind, &m, NULL);
  if (rc == TL_ENOTFOUND)
    return TL_EINVAL;
  if (rc)
    return rc;
  if (kind != want) {
    protobuf_c_message_free_unpacked(m, NULL);
    return TL_EINVAL;
  }
  *msg = m;
  return 0;
}

/* ---- FlightData ---------------------------------------------------------- */

size_t tl_flight_data_prefix_size(const tl_flight_data_parts *parts) {
  size_t n = field_size(1, parts->descriptor.n) +
             field_size(2, parts->header.n) +
             field_size(3, parts->app_metadata.n);
  if (parts->body_len)
    n += varint_size((uint64_t)1000 << 3) + varint_size(parts->body_len);
  return n;
}

static uint8_t *put_field(uint8_t *w, uint32_t field, tl_slice s) {
  if (!s.n)
    return w;
  w += tl_flight_key_len(w, field, s.n);
  memcpy(w, s.p, s.n);
  return w + s.n;
}

int tl_flight_data_prefix(const tl_flight_data_parts *parts, uint8_t *buf,
                          size_t cap, size_t *n) {
  if (parts->descriptor.n > TL_FLIGHT_MSG_MAX ||
      parts->header.n > TL_FLIGHT_MSG_MAX ||
      parts->app_metadata.n > TL_FLIGHT_MSG_MAX ||
      parts->body_len > TL_FLIGHT_MSG_MAX)
    return TL_ETOOBIG;
  size_t need = tl_flight_data_prefix_size(parts);
  if (need > cap)
    return TL_ETOOBIG;
  uint8_t *w = buf;
  w = put_field(w, 1, parts->descriptor);
  w = put_field(w, 2, parts->header);
  w = put_field(w, 3, parts->app_metadata);
  if (parts->body_len)
    w += tl_flight_key_len(w, 1000, parts->body_len);
  *n = (size_t)(w - buf);
  return 0;
}

void tl_slices_copy(const tl_slice *part, size_t nparts, size_t off, size_t len,
                    uint8_t *dst) {
  for (size_t i = 0; i < nparts && len; i++) {
    if (off >= part[i].n) {
      off -= part[i].n;
      continue;
    }
    size_t take = part[i].n - off < len ? part[i].n - off : len;
    memcpy(dst, part[i].p + off, take);
    dst += take;
    len -= take;
    off = 0;
  }
}

size_t tl_slices_range(const tl_slice *part, size_t nparts, size_t off,
                       size_t len, tl_slice *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < nparts && len; i++) {
    if (off >= part[i].n) {
      off -= part[i].n;
      continue;
    }
    size_t take = part[i].n - off < len ? part[i].n - off : len;
    if (k < cap)
      out[k] = (tl_slice){part[i].p + off, take};
    k++;
    len -= take;
    off = 0;
  }
  return k;
}

int tl_flight_data_locate(const tl_slice *part, size_t nparts,
                          tl_flight_data_loc *loc) {
  tl_flight_data_loc d;
  memset(&d, 0, sizeof d);
  size_t n = 0, pos = 0;
  for (size_t i = 0; i < nparts; i++) {
    if (!part[i].p && part[i].n)
      return TL_EINVAL;
    n += part[i].n;
  }
  if (n > TL_FLIGHT_MSG_MAX)
    return TL_EMALFORMED;
  while (pos < n) {
    uint8_t win[20];
    size_t left = n - pos, wn = left < sizeof win ? left : sizeof win;
    size_t head, vlen;
    uint32_t field;
    int wt;
    tl_slices_copy(part, nparts, pos, wn, win);
    int rc = field_head(win, wn, left, &field, &wt, &head, &vlen);
    if (rc)
      return rc;
    if (field == 1 || field == 2 || field == 3 || field == 1000) {
      if (wt != PB_LEN)
        return TL_EMALFORMED;
      int k = field == 1000 ? TL_FD_BODY : (int)field - 1;
      d.off[k] = pos + head;
      d.len[k] = vlen;
      d.has_descriptor |= field == 1;
    }
    pos += head + vlen;
  }
  *loc = d;
  return 0;
}

int tl_flight_data_decode(const uint8_t *p, size_t n, tl_flight_data_view *v) {
  tl_slice one = {p, n};
  tl_flight_data_loc loc;
  int rc = tl_flight_data_locate(&one, n ? 1 : 0, &loc);
  if (rc)
    return rc;
  tl_slice *f[4] = {&v->descriptor, &v->header, &v->app_metadata, &v->body};
  memset(v, 0, sizeof *v);
  v->has_descriptor = loc.has_descriptor;
  for (int k = 0; k < 4; k++)
    if (loc.len[k])
      *f[k] = (tl_slice){p + loc.off[k], loc.len[k]};
  return 0;
}

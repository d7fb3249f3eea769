/* fuzz_flight.c - libFuzzer target for the Flight SQL decoding paths: the
 * input is read as a FlightData message by the zero-copy decoder (then
 * re-encoded by hand and decoded again: both views must agree), as an Any
 * holding a command, and by protobuf-c's unpack of every Flight and Flight
 * SQL message a server or client receives. Garbage must be refused, never
 * crash or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flightsql/common/flight_common.h"

static volatile uint64_t sink;

static void touch(tl_slice s) {
  for (size_t i = 0; i < s.n; i++)
    sink += s.p[i];
}

static bool same(tl_slice a, tl_slice b) {
  return a.n == b.n && (!a.n || !memcmp(a.p, b.p, a.n));
}

/* The same input cut into pieces (as gRPC hands a message over): the
 * decoder over pieces accepts and refuses what the contiguous one does,
 * and finds the same fields. The cuts come from the input's first bytes. */
static void flight_data_pieces(const uint8_t *data, size_t size, int rc,
                               const tl_flight_data_view *v) {
  tl_slice part[16];
  size_t n = 0, pos = 0;
  for (size_t k = 0; n < 15 && pos < size; k++) {
    size_t cut = k < size ? data[k] % 9 : 8; /* 0..8 bytes, empty ones too */
    if (cut > size - pos)
      cut = size - pos;
    part[n++] = (tl_slice){data + pos, cut};
    pos += cut;
  }
  part[n++] = (tl_slice){data + pos, size - pos};
  tl_flight_data_loc loc;
  int prc = tl_flight_data_locate(part, n, &loc);
  if ((prc != 0) != (rc != 0))
    __builtin_trap();
  if (prc)
    return;
  const tl_slice *f[4] = {&v->descriptor, &v->header, &v->app_metadata,
                          &v->body};
  uint8_t *tmp = malloc(size + 1);
  if (!tmp)
    return;
  for (int k = 0; k < 4; k++) {
    if (loc.len[k] != f[k]->n)
      __builtin_trap();
    tl_slices_copy(part, n, loc.off[k], loc.len[k], tmp);
    if (loc.len[k] && memcmp(tmp, f[k]->p, loc.len[k]))
      __builtin_trap();
    tl_slice got[17];
    size_t g = tl_slices_range(part, n, loc.off[k], loc.len[k], got, 17), t = 0;
    for (size_t i = 0; i < g && i < 17; i++) {
      if (memcmp(got[i].p, f[k]->p + t, got[i].n))
        __builtin_trap();
      t += got[i].n;
    }
    if (t != loc.len[k])
      __builtin_trap();
  }
  if (loc.has_descriptor != v->has_descriptor)
    __builtin_trap();
  free(tmp);
}

static void flight_data(const uint8_t *data, size_t size) {
  tl_flight_data_view v;
  int rc = tl_flight_data_decode(data, size, &v);
  flight_data_pieces(data, size, rc, &v);
  if (rc)
    return;
  touch(v.descriptor);
  touch(v.header);
  touch(v.app_metadata);
  touch(v.body);
  /* Re-encode (prefix + body) and decode again: same fields. */
  tl_flight_data_parts parts;
  memset(&parts, 0, sizeof parts);
  parts.descriptor = v.has_descriptor ? v.descriptor : (tl_slice){NULL, 0};
  parts.header = v.header;
  parts.app_metadata = v.app_metadata;
  parts.body_len = v.body.n;
  size_t cap = tl_flight_data_prefix_size(&parts), n = 0;
  uint8_t *buf = malloc(cap + v.body.n + 1);
  if (!buf)
    return;
  if (tl_flight_data_prefix(&parts, buf, cap, &n) || n != cap)
    __builtin_trap();
  if (v.body.n)
    memcpy(buf + n, v.body.p, v.body.n);
  tl_flight_data_view w;
  if (tl_flight_data_decode(buf, n + v.body.n, &w))
    __builtin_trap();
  if (!same(w.header, v.header) || !same(w.app_metadata, v.app_metadata) ||
      !same(w.body, v.body) || !same(w.descriptor, parts.descriptor))
    __builtin_trap();
  /* protobuf-c agrees on what it accepts. */
  Arrow__Flight__Protocol__FlightData *fd =
      arrow__flight__protocol__flight_data__unpack(NULL, n + v.body.n, buf);
  if (fd) {
    if (fd->data_body.len != v.body.n || fd->data_header.len != v.header.n)
      __builtin_trap();
    arrow__flight__protocol__flight_data__free_unpacked(fd, NULL);
  }
  free(buf);
}

static void any_command(const uint8_t *data, size_t size) {
  tl_flight_any a;
  if (!tl_flight_any_decode(data, size, &a)) {
    touch(a.type_url);
    touch(a.value);
    sink +=
        tl_flight_cmd_from_type_url((const char *)a.type_url.p, a.type_url.n);
  }
  tl_flight_cmd kind;
  ProtobufCMessage *m = NULL;
  if (!tl_flight_any_unpack(data, size, &kind, &m, NULL)) {
    if (m->descriptor != tl_flight_cmd_descriptor(kind))
      __builtin_trap();
    /* Packs back without trouble. */
    tl_bytes b;
    tl_bytes_init(&b, TL_FLIGHT_MSG_MAX);
    if (tl_flight_any_pack(m, &b))
      __builtin_trap();
    tl_bytes_free(&b);
    protobuf_c_message_free_unpacked(m, NULL);
  }
}

/* The Flight messages either side unpacks with protobuf-c. */
static const ProtobufCMessageDescriptor *const flight_msgs[] = {
    &arrow__flight__protocol__handshake_request__descriptor,
    &arrow__flight__protocol__handshake_response__descriptor,
    &arrow__flight__protocol__flight_descriptor__descriptor,
    &arrow__flight__protocol__flight_info__descriptor,
    &arrow__flight__protocol__poll_info__descriptor,
    &arrow__flight__protocol__ticket__descriptor,
    &arrow__flight__protocol__action__descriptor,
    &arrow__flight__protocol__result__descriptor,
    &arrow__flight__protocol__put_result__descriptor,
    &arrow__flight__protocol__criteria__descriptor,
    &arrow__flight__protocol__cancel_flight_info_request__descriptor,
    &arrow__flight__protocol__set_session_options_request__descriptor,
    &arrow__flight__protocol__close_session_request__descriptor,
    &tl__wellknown__any__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  flight_data(data, size);
  any_command(data, size);
  for (size_t i = 0; i < sizeof flight_msgs / sizeof flight_msgs[0]; i++) {
    ProtobufCMessage *m =
        protobuf_c_message_unpack(flight_msgs[i], NULL, size, data);
    if (m)
      protobuf_c_message_free_unpacked(m, NULL);
  }
  for (int c = 1; c < TL_FLIGHT_CMD_COUNT; c++) {
    ProtobufCMessage *m = protobuf_c_message_unpack(
        tl_flight_cmd_descriptor((tl_flight_cmd)c), NULL, size, data);
    if (m)
      protobuf_c_message_free_unpacked(m, NULL);
  }
  return 0;
}

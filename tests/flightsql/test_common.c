/* test_common.c - the Flight SQL helpers shared by server and client: Any
 * packing and command identification, and the hand-written FlightData
 * codec checked against protobuf-c's generated one in both directions. */
#include "test.h"

#include "flightsql/common/flight_common.h"

TL_TEST_MAIN()

TEST(any_pack_unpack_round_trip) {
  Arrow__Flight__Protocol__Sql__CommandStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY__INIT;
  q.query = "SELECT 1";
  q._transaction_id_case =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY___TRANSACTION_ID_TRANSACTION_ID;
  q.transaction_id.data = (uint8_t *)"tx";
  q.transaction_id.len = 2;
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_flight_any_pack(&q.base, &b), 0);

  /* The Any decodes with the generated code too, with the spec's URL. */
  Tl__Wellknown__Any *any = tl__wellknown__any__unpack(NULL, b.len, b.p);
  CHECK(any);
  CHECK_STR(any->type_url, "type.googleapis.com/"
                           "arrow.flight.protocol.sql.CommandStatementQuery");
  tl__wellknown__any__free_unpacked(any, NULL);

  tl_flight_cmd kind = TL_FLIGHT_CMD_UNKNOWN;
  ProtobufCMessage *m = NULL;
  tl_flight_any view;
  CHECK_EQ(tl_flight_any_unpack(b.p, b.len, &kind, &m, &view), 0);
  CHECK_EQ(kind, TL_FLIGHT_CMD_STATEMENT_QUERY);
  Arrow__Flight__Protocol__Sql__CommandStatementQuery *r =
      (Arrow__Flight__Protocol__Sql__CommandStatementQuery *)m;
  CHECK_STR(r->query, "SELECT 1");
  CHECK_EQ(
      r->_transaction_id_case,
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY___TRANSACTION_ID_TRANSACTION_ID);
  CHECK_EQ(r->transaction_id.len, 2);
  CHECK(!memcmp(r->transaction_id.data, "tx", 2));
  protobuf_c_message_free_unpacked(m, NULL);

  /* unpack_as refuses another kind. */
  CHECK_EQ(tl_flight_any_unpack_as(b.p, b.len, TL_FLIGHT_CMD_GET_TABLES, &m),
           TL_EINVAL);
  CHECK_EQ(
      tl_flight_any_unpack_as(b.p, b.len, TL_FLIGHT_CMD_STATEMENT_QUERY, &m),
      0);
  protobuf_c_message_free_unpacked(m, NULL);
  tl_bytes_free(&b);
}

TEST(optional_fields_keep_presence) {
  /* An empty string set is not the same as unset (proto3 optional). */
  Arrow__Flight__Protocol__Sql__CommandGetTables t =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES__INIT;
  t._catalog_case =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES___CATALOG_CATALOG;
  t.catalog = "";
  t.include_schema = 1;
  tl_bytes b;
  tl_bytes_init(&b, 1 << 20);
  CHECK_EQ(tl_flight_any_pack(&t.base, &b), 0);
  ProtobufCMessage *m = NULL;
  CHECK_EQ(tl_flight_any_unpack_as(b.p, b.len, TL_FLIGHT_CMD_GET_TABLES, &m),
           0);
  Arrow__Flight__Protocol__Sql__CommandGetTables *r =
      (Arrow__Flight__Protocol__Sql__CommandGetTables *)m;
  CHECK_EQ(r->_catalog_case,
           ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES___CATALOG_CATALOG);
  CHECK_STR(r->catalog, "");
  CHECK_EQ(r->_db_schema_filter_pattern_case, 0);
  CHECK(r->include_schema);
  protobuf_c_message_free_unpacked(m, NULL);
  tl_bytes_free(&b);
}

TEST(every_command_packs_and_is_identified) {
  for (int c = 1; c < TL_FLIGHT_CMD_COUNT; c++) {
    const ProtobufCMessageDescriptor *d = tl_flight_cmd_descriptor(c);
    CHECK(d);
    CHECK_EQ(tl_flight_cmd_of(d), c);
    /* An empty message of each kind packs and comes back as that kind. */
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    CHECK(m);
    d->message_init(m);
    tl_bytes b;
    tl_bytes_init(&b, 1 << 20);
    CHECK_EQ(tl_flight_any_pack(m, &b), 0);
    free(m);
    tl_flight_cmd kind = TL_FLIGHT_CMD_UNKNOWN;
    ProtobufCMessage *u = NULL;
    CHECK_EQ(tl_flight_any_unpack(b.p, b.len, &kind, &u, NULL), 0);
    CHECK_EQ(kind, c);
    CHECK(u->descriptor == d);
    protobuf_c_message_free_unpacked(u, NULL);
    tl_bytes_free(&b);
    char url[256];
    snprintf(url, sizeof url, "type.googleapis.com/%s", d->name);
    CHECK_EQ(tl_flight_cmd_from_type_url(url, strlen(url)), c);
  }
  CHECK(tl_flight_cmd_descriptor(TL_FLIGHT_CMD_UNKNOWN) == NULL);
  CHECK(tl_flight_cmd_descriptor(TL_FLIGHT_CMD_COUNT) == NULL);
  CHECK_STR(tl_flight_cmd_name(TL_FLIGHT_CMD_GET_TABLES), "CommandGetTables");
  CHECK_EQ(tl_flight_cmd_from_type_url("arrow.flight.protocol.sql."
                                       "CommandGetCatalogs",
                                       44),
           TL_FLIGHT_CMD_GET_CATALOGS);
}

TEST(unknown_type_urls_are_not_commands) {
  static const char *const urls[] = {
      "",
      "type.googleapis.com/",
      "type.googleapis.com/arrow.flight.protocol.sql.CommandGetTable",
      "type.googleapis.com/arrow.flight.protocol.sql.CommandGetTablesX",
      "type.googleapis.com/arrow.flight.protocol.FlightData",
      "type.googleapis.com/arrow.flight.protocol.sql.CommandGetTables/",
      "CommandGetTables"};
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
    CHECK_EQ(tl_flight_cmd_from_type_url(urls[i], strlen(urls[i])),
             TL_FLIGHT_CMD_UNKNOWN);
  /* A well-formed Any of an unknown type: TL_ENOTFOUND, Any still given. */
  Tl__Wellknown__Any a = TL__WELLKNOWN__ANY__INIT;
  a.type_url = "type.googleapis.com/foo.Bar";
  a.value.data = (uint8_t *)"\x08\x01";
  a.value.len = 2;
  uint8_t buf[128];
  size_t n = tl__wellknown__any__pack(&a, buf);
  tl_flight_cmd kind = TL_FLIGHT_CMD_STATEMENT_QUERY;
  ProtobufCMessage *m = NULL;
  tl_flight_any view;
  CHECK_EQ(tl_flight_any_unpack(buf, n, &kind, &m, &view), TL_ENOTFOUND);
  CHECK_EQ(kind, TL_FLIGHT_CMD_UNKNOWN);
  CHECK(m == NULL);
  CHECK_EQ(view.type_url.n, strlen(a.type_url));
  CHECK_EQ(view.value.n, 2);
  CHECK_EQ(tl_flight_any_unpack_as(buf, n, TL_FLIGHT_CMD_STATEMENT_QUERY, &m),
           TL_EINVAL);
}

/* Builds a FlightData with the hand encoder: prefix then body. */
static size_t encode(const tl_flight_data_parts *parts, const uint8_t *body,
                     uint8_t *out, size_t cap) {
  size_t n = 0;
  CHECK_EQ(tl_flight_data_prefix(parts, out, cap, &n), 0);
  CHECK_EQ(n, tl_flight_data_prefix_size(parts));
  CHECK(n + parts->body_len <= cap);
  if (parts->body_len)
    memcpy(out + n, body, parts->body_len);
  return n + parts->body_len;
}

TEST(flight_data_hand_encoding_decodes_with_protobuf_c) {
  /* Sizes around the varint boundaries of the lengths. */
  static const size_t body_sizes[] = {0, 1, 127, 128, 16383, 16384, 300000};
  static const size_t header_sizes[] = {0, 1, 127, 128, 200};
  uint8_t *body = malloc(300000), *out = malloc(400000);
  uint8_t header[200];
  CHECK(body && out);
  for (size_t i = 0; i < 300000; i++)
    body[i] = (uint8_t)(i * 7 + 3);
  for (size_t i = 0; i < sizeof header; i++)
    header[i] = (uint8_t)(255 - i);
  for (size_t h = 0; h < sizeof header_sizes / sizeof header_sizes[0]; h++) {
    for (size_t b = 0; b < sizeof body_sizes / sizeof body_sizes[0]; b++) {
      tl_flight_data_parts parts;
      memset(&parts, 0, sizeof parts);
      parts.header.p = header;
      parts.header.n = header_sizes[h];
      parts.body_len = body_sizes[b];
      size_t n = encode(&parts, body, out, 400000);
      Arrow__Flight__Protocol__FlightData *fd =
          arrow__flight__protocol__flight_data__unpack(NULL, n, out);
      CHECK(fd);
      CHECK(fd->flight_descriptor == NULL);
      CHECK_EQ(fd->data_header.len, header_sizes[h]);
      CHECK(!header_sizes[h] ||
            !memcmp(fd->data_header.data, header, header_sizes[h]));
      CHECK_EQ(fd->data_body.len, body_sizes[b]);
      CHECK(!body_sizes[b] || !memcmp(fd->data_body.data, body, body_sizes[b]));
      CHECK_EQ(fd->app_metadata.len, 0);
      /* Same bytes as protobuf-c's own encoder. */
      size_t pn = arrow__flight__protocol__flight_data__get_packed_size(fd);
      CHECK_EQ(pn, n);
      uint8_t *packed = malloc(pn ? pn : 1);
      arrow__flight__protocol__flight_data__pack(fd, packed);
      CHECK(!memcmp(packed, out, n));
      free(packed);
      arrow__flight__protocol__flight_data__free_unpacked(fd, NULL);
    }
  }
  free(body);
  free(out);
}

TEST(flight_data_with_descriptor_and_metadata) {
  Arrow__Flight__Protocol__FlightDescriptor d =
      ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = (uint8_t *)"command";
  d.cmd.len = 7;
  uint8_t dbuf[64];
  size_t dn = arrow__flight__protocol__flight_descriptor__pack(&d, dbuf);
  tl_flight_data_parts parts;
  memset(&parts, 0, sizeof parts);
  parts.descriptor.p = dbuf;
  parts.descriptor.n = dn;
  parts.header.p = (const uint8_t *)"HEAD";
  parts.header.n = 4;
  parts.app_metadata.p = (const uint8_t *)"meta";
  parts.app_metadata.n = 4;
  parts.body_len = 5;
  uint8_t out[256];
  size_t n = encode(&parts, (const uint8_t *)"BODY!", out, sizeof out);

  Arrow__Flight__Protocol__FlightData *fd =
      arrow__flight__protocol__flight_data__unpack(NULL, n, out);
  CHECK(fd && fd->flight_descriptor);
  CHECK_EQ(fd->flight_descriptor->type,
           ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD);
  CHECK_EQ(fd->flight_descriptor->cmd.len, 7);
  CHECK_EQ(fd->app_metadata.len, 4);
  CHECK_EQ(fd->data_body.len, 5);
  arrow__flight__protocol__flight_data__free_unpacked(fd, NULL);

  /* The zero-copy decoder points into the buffer. */
  tl_flight_data_view v;
  CHECK_EQ(tl_flight_data_decode(out, n, &v), 0);
  CHECK(v.has_descriptor);
  CHECK_EQ(v.descriptor.n, dn);
  CHECK(v.descriptor.p > out && v.descriptor.p < out + n);
  CHECK(!memcmp(v.header.p, "HEAD", 4));
  CHECK(!memcmp(v.app_metadata.p, "meta", 4));
  CHECK_EQ(v.body.n, 5);
  CHECK(v.body.p == out + n - 5);

  /* The prefix refuses a buffer that is too small. */
  size_t w = 0;
  CHECK_EQ(tl_flight_data_prefix(&parts, out,
                                 tl_flight_data_prefix_size(&parts) - 1, &w),
           TL_ETOOBIG);
}

TEST(flight_data_decoder_reads_protobuf_c_output) {
  /* Fields in protobuf-c's order plus an unknown field the decoder skips. */
  Arrow__Flight__Protocol__FlightData fd =
      ARROW__FLIGHT__PROTOCOL__FLIGHT_DATA__INIT;
  fd.data_header.data = (uint8_t *)"hdr";
  fd.data_header.len = 3;
  fd.data_body.data = (uint8_t *)"0123456789";
  fd.data_body.len = 10;
  uint8_t buf[128];
  size_t n = arrow__flight__protocol__flight_data__pack(&fd, buf);
  /* Unknown fields of every wire type: varint 5, fixed64 6, fixed32 7,
   * bytes 8. */
  static const uint8_t extra[] = {0x28, 0x96, 0x01, 0x31, 1, 2,    3,
                                  4,    5,    6,    7,    8, 0x3d, 1,
                                  2,    3,    4,    0x42, 2, 'x',  'y'};
  memcpy(buf + n, extra, sizeof extra);
  n += sizeof extra;
  tl_flight_data_view v;
  CHECK_EQ(tl_flight_data_decode(buf, n, &v), 0);
  CHECK(!v.has_descriptor);
  CHECK_EQ(v.header.n, 3);
  CHECK(!memcmp(v.header.p, "hdr", 3));
  CHECK_EQ(v.body.n, 10);
  CHECK(!memcmp(v.body.p, "0123456789", 10));
  CHECK_EQ(v.app_metadata.n, 0);
  /* An empty message is a valid, empty FlightData. */
  CHECK_EQ(tl_flight_data_decode(buf, 0, &v), 0);
  CHECK_EQ(v.header.n + v.body.n, 0);
}

/* A FlightData cut into pieces at every pair of places (gRPC hands large
 * messages over as slices): the fields are found where the contiguous
 * decoder finds them, a header or body spanning pieces included, and a
 * truncated message is refused. */
TEST(flight_data_located_across_pieces) {
  Arrow__Flight__Protocol__FlightData fd =
      ARROW__FLIGHT__PROTOCOL__FLIGHT_DATA__INIT;
  fd.data_header.data = (uint8_t *)"header-bytes";
  fd.data_header.len = 12;
  fd.app_metadata.data = (uint8_t *)"meta";
  fd.app_metadata.len = 4;
  fd.data_body.data = (uint8_t *)"0123456789abcdef";
  fd.data_body.len = 16;
  uint8_t buf[128], got[64];
  size_t n = arrow__flight__protocol__flight_data__pack(&fd, buf);
  tl_flight_data_view v;
  CHECK_EQ(tl_flight_data_decode(buf, n, &v), 0);
  for (size_t a = 0; a <= n; a++) {
    for (size_t b = a; b <= n; b++) {
      tl_slice part[3] = {{buf, a}, {buf + a, b - a}, {buf + b, n - b}};
      tl_flight_data_loc loc;
      CHECK_EQ(tl_flight_data_locate(part, 3, &loc), 0);
      CHECK_EQ(loc.len[TL_FD_HEADER], 12);
      CHECK_EQ(loc.len[TL_FD_APP_METADATA], 4);
      CHECK_EQ(loc.len[TL_FD_BODY], 16);
      CHECK_EQ(loc.off[TL_FD_BODY], (size_t)(v.body.p - buf));
      tl_slices_copy(part, 3, loc.off[TL_FD_HEADER], 12, got);
      CHECK(!memcmp(got, "header-bytes", 12));
      tl_slice body[3];
      size_t k = tl_slices_range(part, 3, loc.off[TL_FD_BODY], 16, body, 3);
      size_t t = 0;
      for (size_t i = 0; i < k; i++) {
        memcpy(got + t, body[i].p, body[i].n);
        t += body[i].n;
      }
      CHECK_EQ(t, 16);
      CHECK(!memcmp(got, "0123456789abcdef", 16));
      /* Without its last byte, the message is truncated. */
      tl_slice cut[3] = {{buf, a}, {buf + a, b - a}, {buf + b, n - b}};
      if (cut[2].n)
        cut[2].n--;
      else if (cut[1].n)
        cut[1].n--;
      else
        cut[0].n--;
      CHECK_EQ(tl_flight_data_locate(cut, 3, &loc), TL_ETRUNCATED);
    }
  }
}

TEST(malformed_input_rejected) {
  tl_flight_data_view v;
  tl_flight_any a;
  /* Every strict prefix of a valid message that cuts a field is refused. */
  uint8_t out[256];
  tl_flight_data_parts parts;
  memset(&parts, 0, sizeof parts);
  parts.header.p = (const uint8_t *)"HEADER";
  parts.header.n = 6;
  parts.body_len = 4;
  size_t n = encode(&parts, (const uint8_t *)"BODY", out, sizeof out);
  for (size_t cut = 1; cut < n; cut++) {
    int rc = tl_flight_data_decode(out, cut, &v);
    /* Cuts that fall between fields leave a valid shorter message. */
    if (cut == 8)
      CHECK_EQ(rc, 0);
    else
      CHECK_EQ(rc, TL_ETRUNCATED);
  }
  /* A length beyond the end. */
  static const uint8_t too_long[] = {0x12, 0x10, 'a', 'b'};
  CHECK_EQ(tl_flight_data_decode(too_long, sizeof too_long, &v), TL_ETRUNCATED);
  /* A huge varint length (2^63) must not wrap around. */
  static const uint8_t huge[] = {0x12, 0x80, 0x80, 0x80, 0x80, 0x80,
                                 0x80, 0x80, 0x80, 0x80, 0x01, 'a'};
  CHECK(tl_flight_data_decode(huge, sizeof huge, &v) != 0);
  /* An 11-byte varint. */
  static const uint8_t long_varint[] = {0x28, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK_EQ(tl_flight_data_decode(long_varint, sizeof long_varint, &v),
           TL_EMALFORMED);
  /* Known field with the wrong wire type (data_header as a varint). */
  static const uint8_t wrong_type[] = {0x10, 0x01};
  CHECK_EQ(tl_flight_data_decode(wrong_type, sizeof wrong_type, &v),
           TL_EMALFORMED);
  /* Field number 0, groups, wire types 6 and 7. */
  static const uint8_t field0[] = {0x02, 0x00};
  static const uint8_t group[] = {0x0b, 0x0c};
  static const uint8_t wt6[] = {0x0e};
  CHECK_EQ(tl_flight_data_decode(field0, sizeof field0, &v), TL_EMALFORMED);
  CHECK_EQ(tl_flight_data_decode(group, sizeof group, &v), TL_EMALFORMED);
  CHECK_EQ(tl_flight_data_decode(wt6, sizeof wt6, &v), TL_EMALFORMED);
  /* Truncated fixed-width fields. */
  static const uint8_t short64[] = {0x31, 1, 2, 3};
  static const uint8_t short32[] = {0x3d, 1};
  CHECK_EQ(tl_flight_data_decode(short64, sizeof short64, &v), TL_ETRUNCATED);
  CHECK_EQ(tl_flight_data_decode(short32, sizeof short32, &v), TL_ETRUNCATED);

  /* Any: truncated, wrong wire type, a type_url over the cap. */
  CHECK_EQ(tl_flight_any_decode(too_long, sizeof too_long, &a), TL_ETRUNCATED);
  static const uint8_t url_varint[] = {0x08, 0x01};
  CHECK_EQ(tl_flight_any_decode(url_varint, sizeof url_varint, &a),
           TL_EMALFORMED);
  uint8_t big[400];
  big[0] = 0x0a;
  big[1] = 0x80 | (300 & 0x7f);
  big[2] = 300 >> 7;
  memset(big + 3, 'a', 300);
  CHECK_EQ(tl_flight_any_decode(big, 303, &a), TL_EMALFORMED);
  tl_flight_cmd kind;
  ProtobufCMessage *m = NULL;
  CHECK_EQ(tl_flight_any_unpack(big, 303, &kind, &m, NULL), TL_EMALFORMED);

  /* A known type_url whose value is not that message. */
  Tl__Wellknown__Any any = TL__WELLKNOWN__ANY__INIT;
  any.type_url =
      "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery";
  any.value.data = (uint8_t *)"\x0a\x05"
                              "ab"; /* string longer than the rest */
  any.value.len = 4;
  uint8_t buf[128];
  size_t an = tl__wellknown__any__pack(&any, buf);
  CHECK_EQ(tl_flight_any_unpack(buf, an, &kind, &m, NULL), TL_EMALFORMED);
}

TEST(varint_and_key_encoding) {
  uint8_t k[TL_FLIGHT_KEY_MAX];
  /* Field 1000, length 0x7f: key 0xc2 0x3e, length 0x7f. */
  CHECK_EQ(tl_flight_key_len(k, 1000, 127), 3);
  CHECK_EQ(k[0], 0xc2);
  CHECK_EQ(k[1], 0x3e);
  CHECK_EQ(k[2], 0x7f);
  CHECK_EQ(tl_flight_key_len(k, 2, UINT64_MAX), 11);
  size_t off = 1;
  uint64_t v = 0;
  CHECK_EQ(tl_flight_varint(k, 11, &off, &v), 0);
  CHECK_U64(v, UINT64_MAX);
  CHECK_EQ(off, 11);
}

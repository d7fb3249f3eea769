/* flight_common.h - Flight and Flight SQL helpers shared by the server and
 * the client: packing commands into an Any and naming them by type_url,
 * and the hand-written FlightData codec that lets a record batch body go on
 * the wire, and come off it, without a copy. Pure functions over bytes: no
 * gRPC here (see grpc_util.h), only the protobuf-c generated types. */
#ifndef TL_FLIGHT_COMMON_H
#define TL_FLIGHT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flight.pb-c.h"
#include "flight_sql.pb-c.h"
#include "tl_wellknown.pb-c.h"

#include "common/common.h"

/* Prefix of every Any type_url; the full name of the message follows. */
#define TL_FLIGHT_TYPE_URL_PREFIX "type.googleapis.com/"

/* Caps on what a decoder accepts: an Any's type_url and a whole message. */
#define TL_FLIGHT_TYPE_URL_MAX 256
#define TL_FLIGHT_MSG_MAX ((size_t)1 << 30)

/* Every Flight SQL message that travels packed in an Any: commands (in
 * FlightDescriptor.cmd), tickets, action bodies and action / DoPut results.
 * The X-macro gives the enum tag and the protobuf-c descriptor. */
#define TL_FLIGHT_CMD_MAP(XX)                                                  \
  XX(GET_SQL_INFO, command_get_sql_info)                                       \
  XX(GET_XDBC_TYPE_INFO, command_get_xdbc_type_info)                           \
  XX(GET_CATALOGS, command_get_catalogs)                                       \
  XX(GET_DB_SCHEMAS, command_get_db_schemas)                                   \
  XX(GET_TABLES, command_get_tables)                                           \
  XX(GET_TABLE_TYPES, command_get_table_types)                                 \
  XX(GET_PRIMARY_KEYS, command_get_primary_keys)                               \
  XX(GET_EXPORTED_KEYS, command_get_exported_keys)                             \
  XX(GET_IMPORTED_KEYS, command_get_imported_keys)                             \
  XX(GET_CROSS_REFERENCE, command_get_cross_reference)                         \
  XX(STATEMENT_QUERY, command_statement_query)                                 \
  XX(STATEMENT_SUBSTRAIT_PLAN, command_statement_substrait_plan)               \
  XX(PREPARED_STATEMENT_QUERY, command_prepared_statement_query)               \
  XX(STATEMENT_UPDATE, command_statement_update)                               \
  XX(PREPARED_STATEMENT_UPDATE, command_prepared_statement_update)             \
  XX(STATEMENT_INGEST, command_statement_ingest)                               \
  XX(TICKET_STATEMENT_QUERY, ticket_statement_query)                           \
  XX(CREATE_PREPARED_STATEMENT_REQUEST,                                        \
     action_create_prepared_statement_request)                                 \
  XX(CREATE_PREPARED_SUBSTRAIT_PLAN_REQUEST,                                   \
     action_create_prepared_substrait_plan_request)                            \
  XX(CREATE_PREPARED_STATEMENT_RESULT,                                         \
     action_create_prepared_statement_result)                                  \
  XX(CLOSE_PREPARED_STATEMENT_REQUEST,                                         \
     action_close_prepared_statement_request)                                  \
  XX(BEGIN_TRANSACTION_REQUEST, action_begin_transaction_request)              \
  XX(BEGIN_SAVEPOINT_REQUEST, action_begin_savepoint_request)                  \
  XX(BEGIN_TRANSACTION_RESULT, action_begin_transaction_result)                \
  XX(BEGIN_SAVEPOINT_RESULT, action_begin_savepoint_result)                    \
  XX(END_TRANSACTION_REQUEST, action_end_transaction_request)                  \
  XX(END_SAVEPOINT_REQUEST, action_end_savepoint_request)                      \
  XX(CANCEL_QUERY_REQUEST, action_cancel_query_request)                        \
  XX(CANCEL_QUERY_RESULT, action_cancel_query_result)                          \
  XX(DO_PUT_UPDATE_RESULT, do_put_update_result)                               \
  XX(DO_PUT_PREPARED_STATEMENT_RESULT, do_put_prepared_statement_result)

typedef enum tl_flight_cmd {
  TL_FLIGHT_CMD_UNKNOWN = 0, /* not a Flight SQL message we know */
#define TL__FLIGHT_CMD_ENUM(tag, lower) TL_FLIGHT_CMD_##tag,
  TL_FLIGHT_CMD_MAP(TL__FLIGHT_CMD_ENUM)
#undef TL__FLIGHT_CMD_ENUM
      TL_FLIGHT_CMD_COUNT
} tl_flight_cmd;

/* The protobuf-c descriptor of a command (NULL for UNKNOWN or out of
 * range). Its `name` is the full name that follows the type_url prefix
 * ("arrow.flight.protocol.sql.CommandGetTables"). */
const ProtobufCMessageDescriptor *tl_flight_cmd_descriptor(tl_flight_cmd c);
/* The message's short name ("CommandStatementQuery"), "unknown" otherwise. */
const char *tl_flight_cmd_name(tl_flight_cmd c);
/* The command a message descriptor stands for, or TL_FLIGHT_CMD_UNKNOWN. */
tl_flight_cmd tl_flight_cmd_of(const ProtobufCMessageDescriptor *d);
/* Identifies a type_url (p, n): the prefix up to and including the last
 * '/' is ignored as the Any rules say, the rest must be the full name of a
 * Flight SQL message. Returns TL_FLIGHT_CMD_UNKNOWN otherwise. */
tl_flight_cmd tl_flight_cmd_from_type_url(const char *p, size_t n);

/* A decoded Any: both ranges point into the buffer it was decoded from. */
typedef struct tl_flight_any {
  tl_slice type_url;
  tl_slice value;
} tl_flight_any;

/* Decodes an Any from (p, n) without copying or allocating. Unknown fields
 * are skipped. Returns 0, TL_ETRUNCATED or TL_EMALFORMED (bad wire data,
 * type_url longer than TL_FLIGHT_TYPE_URL_MAX). Thread-safe. */
int tl_flight_any_decode(const uint8_t *p, size_t n, tl_flight_any *out);

/* Packs `msg` into an Any whose type_url is TL_FLIGHT_TYPE_URL_PREFIX plus
 * the message's full name, and appends the serialized Any to `out`
 * (borrowed; its cap applies). Works for any protobuf-c message. Returns
 * 0, TL_ENOMEM or TL_ETOOBIG. */
int tl_flight_any_pack(const ProtobufCMessage *msg, tl_bytes *out);

/* Decodes the Any in (p, n), identifies the command and unpacks it with
 * protobuf-c. On success *kind is set and *msg is an owned message (free
 * it with protobuf_c_message_free_unpacked(*msg, NULL)); cast it to the
 * generated type named by *kind. Returns 0; TL_ENOTFOUND when the Any is
 * well formed but names no Flight SQL message (*kind is UNKNOWN and the
 * decoded Any is in *any when `any` is not NULL); TL_ETRUNCATED or
 * TL_EMALFORMED for bad bytes; TL_ENOMEM. */
int tl_flight_any_unpack(const uint8_t *p, size_t n, tl_flight_cmd *kind,
                         ProtobufCMessage **msg, tl_flight_any *any);

/* Like tl_flight_any_unpack but only accepts command `want`: any other
 * kind gives TL_EINVAL. */
int tl_flight_any_unpack_as(const uint8_t *p, size_t n, tl_flight_cmd want,
                            ProtobufCMessage **msg);

/* Serializes any protobuf-c message and appends it to `out`. Returns 0,
 * TL_ENOMEM or TL_ETOOBIG. */
int tl_flight_msg_pack(const ProtobufCMessage *msg, tl_bytes *out);

/* ---- FlightData ---------------------------------------------------------
 * A FlightData message is the concatenation of its fields, each a key and a
 * length, then the bytes. data_body (field 1000) comes last, so a message
 * is "prefix" + body: the prefix holds the keys and lengths plus the small
 * fields, and the body can be a separate slice that is never copied. */

/* The parts of a FlightData message. Ranges are borrowed; a NULL/0 range
 * is left out of the message (proto3 omits empty bytes). `descriptor` is
 * a serialized FlightDescriptor (first DoPut message only). */
typedef struct tl_flight_data_parts {
  tl_slice descriptor;
  tl_slice header; /* the IPC flatbuffer Message */
  tl_slice app_metadata;
  size_t body_len; /* the body itself is sent after the prefix */
} tl_flight_data_parts;

/* Largest key + length encoding of one field (2-byte key, 10-byte len). */
#define TL_FLIGHT_KEY_MAX 12

/* Size of the prefix for `parts`, i.e. of everything but the body. */
size_t tl_flight_data_prefix_size(const tl_flight_data_parts *parts);

/* Writes the prefix of a FlightData message into buf[0, cap): fields 1, 2
 * and 3 (keys, lengths, bytes) then the key and length of field 1000 when
 * body_len > 0. The whole message is buf[0, *n) followed by the body's
 * body_len bytes. Returns 0, or TL_ETOOBIG when cap is too small (use
 * tl_flight_data_prefix_size) or a length exceeds TL_FLIGHT_MSG_MAX. */
int tl_flight_data_prefix(const tl_flight_data_parts *parts, uint8_t *buf,
                          size_t cap, size_t *n);

/* Writes the key and length of a length-delimited field `field` into
 * out[0, TL_FLIGHT_KEY_MAX) and returns the number of bytes written. */
size_t tl_flight_key_len(uint8_t *out, uint32_t field, uint64_t len);

/* A decoded FlightData: ranges point into the decoded buffer. */
typedef struct tl_flight_data_view {
  bool has_descriptor;
  tl_slice descriptor; /* serialized FlightDescriptor */
  tl_slice header;
  tl_slice app_metadata;
  tl_slice body;
} tl_flight_data_view;

/* Decodes a FlightData message from the contiguous (p, n) without copying:
 * every length is checked against what remains, unknown fields are
 * skipped, a repeated field keeps its last occurrence. Returns 0,
 * TL_ETRUNCATED or TL_EMALFORMED. Thread-safe. */
int tl_flight_data_decode(const uint8_t *p, size_t n, tl_flight_data_view *v);

/* Where the fields of a FlightData held in pieces (the slices gRPC
 * received it in) are: byte offsets and lengths in the whole message, a
 * length 0 for an absent field. Same checks as tl_flight_data_decode
 * (which is this over one piece). Returns 0, TL_EINVAL, TL_ETRUNCATED or
 * TL_EMALFORMED. */
enum { TL_FD_DESCRIPTOR, TL_FD_HEADER, TL_FD_APP_METADATA, TL_FD_BODY };
typedef struct tl_flight_data_loc {
  bool has_descriptor;
  size_t off[4], len[4]; /* indexed by TL_FD_* */
} tl_flight_data_loc;
int tl_flight_data_locate(const tl_slice *part, size_t nparts,
                          tl_flight_data_loc *loc);

/* Bytes [off, off + len) of a message held in pieces, which must hold
 * them: copied into dst, or listed as the pieces they span into out[] (at
 * most `cap` listed; returns how many pieces they span). */
void tl_slices_copy(const tl_slice *part, size_t nparts, size_t off, size_t len,
                    uint8_t *dst);
size_t tl_slices_range(const tl_slice *part, size_t nparts, size_t off,
                       size_t len, tl_slice *out, size_t cap);

/* Reads one base-128 varint from p[*off, n), advancing *off. Returns 0,
 * TL_ETRUNCATED or TL_EMALFORMED (more than 10 bytes / 64 bits). */
int tl_flight_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v);

#endif

/* client.h - a synchronous Arrow Flight SQL client over the gRPC core C API:
 * statements, prepared statements with bound parameters, and the metadata
 * commands, results delivered as Arrow C Data Interface batches. One call
 * runs at a time per client; tl_fc_cancel may come from any thread. No
 * gRPC types here. */
#ifndef TL_FLIGHT_CLIENT_H
#define TL_FLIGHT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arrow/arrow.h"
#include "flightsql/common/flight_common.h"

typedef struct tl_fc tl_fc;

/* The largest message the client accepts (gRPC's usual default). */
#define TL_FC_MAX_RECV (4u << 20)

typedef struct tl_fc_opts {
  /* grpc://host:port (plaintext) or grpc+tls://host:port; also accepted:
   * grpc+tcp:// (plaintext). Copied. */
  const char *url;
  /* PEM file of root certificates for grpc+tls (NULL: gRPC's defaults).
   * Read during tl_fc_connect. */
  const char *ca_file;
  /* A bearer token sent as "authorization: Bearer <token>" (copied). */
  const char *token;
  /* When set, tl_fc_connect runs the Handshake with HTTP Basic
   * credentials and keeps the bearer token the server answers. Copied. */
  const char *user, *password;
  /* Deadline of each operation (all its calls), in ms; 0: none. */
  int64_t timeout_ms;
  /* Largest message accepted; 0: TL_FC_MAX_RECV. */
  size_t max_recv;
} tl_fc_opts;

/* Opens a channel (connections are made lazily by gRPC) and, with
 * o->user set, authenticates with the Handshake call. On failure *out is
 * untouched and the reason is in err. Returns 0, TL_EINVAL (bad URL),
 * TL_ENOTFOUND / TL_EIO (CA file), TL_ENOMEM, or a handshake error (see
 * the call errors below). */
int tl_fc_connect(tl_fc **out, const tl_fc_opts *o, char *err, size_t errcap);
/* Closes the channel; accepts NULL. Not concurrent with a call. */
void tl_fc_close(tl_fc *c);

/* Runs the Handshake with Basic credentials (borrowed); on success the
 * client sends the bearer token from the server's "authorization" answer
 * on every later call. */
int tl_fc_handshake(tl_fc *c, const char *user, const char *password);
/* Sets (copied) or clears (NULL) the bearer token. Returns 0 or TL_ENOMEM. */
int tl_fc_set_token(tl_fc *c, const char *token);
/* The current bearer token (borrowed; NULL when none). */
const char *tl_fc_token(const tl_fc *c);

/* Call headers: query_range_begin / query_range_end (RFC 3339 strings,
 * copied; NULL clears) and limit (< 0 clears). Sent on every later call. */
int tl_fc_set_range(tl_fc *c, const char *begin, const char *end);
void tl_fc_set_limit(tl_fc *c, int64_t limit);
/* Changes the per-operation deadline (ms; 0: none). */
void tl_fc_set_timeout(tl_fc *c, int64_t timeout_ms);

/* Cancels the call in progress, if any, and makes the rest of the current
 * operation fail with TL_ECANCELED. Thread-safe; async-signal-unsafe. */
void tl_fc_cancel(tl_fc *c);

/* After an operation failed: the gRPC status code of the failing call
 * (e.g. 16 UNAUTHENTICATED, 3 INVALID_ARGUMENT, 12 UNIMPLEMENTED), or 0
 * when the failure was the client's own (bad reply, callback error), and
 * the message "<STATUS_NAME>: <server message>" (or the client's reason).
 * Both stay until the next operation. */
int tl_fc_status(const tl_fc *c);
const char *tl_fc_errmsg(const tl_fc *c);

/* Bytes of messages received since the client was opened (thread-safe,
 * for progress displays). */
uint64_t tl_fc_bytes_received(const tl_fc *c);

/* Where results go. The schema and batches are borrowed for the call; a
 * non-zero return from a callback stops the operation (the call is
 * cancelled) and becomes its return code. Either callback may be NULL. */
typedef struct tl_fc_sink {
  int (*on_schema)(void *ctx, const struct ArrowSchema *schema);
  int (*on_batch)(void *ctx, const struct ArrowSchema *schema,
                  const struct ArrowArray *batch);
  void *ctx;
} tl_fc_sink;

/* Call errors, returned by every operation: TL_EUNAUTHORIZED
 * (UNAUTHENTICATED, PERMISSION_DENIED), TL_EINVAL (INVALID_ARGUMENT,
 * FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED), TL_ENOTFOUND,
 * TL_ECONFLICT (ALREADY_EXISTS), TL_ETOOBIG (RESOURCE_EXHAUSTED, e.g. a
 * message over max_recv), TL_EUNAVAILABLE (UNAVAILABLE, DEADLINE_EXCEEDED),
 * TL_ECANCELED, TL_EIO (other statuses), TL_EMALFORMED (a reply the client
 * cannot decode), TL_ENOMEM; details via tl_fc_status / tl_fc_errmsg. */

/* Runs a SQL statement: GetFlightInfo(CommandStatementQuery) then DoGet of
 * every endpoint, in order. `sql` is borrowed. */
int tl_fc_execute(tl_fc *c, const char *sql, const tl_fc_sink *sink);

/* Generic: GetFlightInfo for the Flight SQL command `cmd` (packed in an
 * Any as FlightDescriptor.cmd), then DoGet of every endpoint. */
int tl_fc_command(tl_fc *c, const ProtobufCMessage *cmd,
                  const tl_fc_sink *sink);

/* GetFlightInfo only: *info is an owned message (free with
 * arrow__flight__protocol__flight_info__free_unpacked(*info, NULL)). */
int tl_fc_get_flight_info(tl_fc *c, const ProtobufCMessage *cmd,
                          Arrow__Flight__Protocol__FlightInfo **info);
/* DoGet of one ticket (borrowed bytes). */
int tl_fc_do_get(tl_fc *c, const uint8_t *ticket, size_t n,
                 const tl_fc_sink *sink);

/* Metadata commands. String filters are borrowed, NULL for "not set". */
int tl_fc_get_tables(tl_fc *c, const char *catalog, const char *schema_pattern,
                     const char *table_pattern, bool include_schema,
                     const tl_fc_sink *sink);
int tl_fc_get_catalogs(tl_fc *c, const tl_fc_sink *sink);
int tl_fc_get_db_schemas(tl_fc *c, const char *catalog,
                         const char *schema_pattern, const tl_fc_sink *sink);
int tl_fc_get_table_types(tl_fc *c, const tl_fc_sink *sink);
/* `ids` (borrowed) of n SqlInfo values; n == 0 asks for all. */
int tl_fc_get_sql_info(tl_fc *c, const uint32_t *ids, size_t n,
                       const tl_fc_sink *sink);

/* DoAction: calls `on_result` with each Result.body (borrowed for the
 * call; may be NULL). */
int tl_fc_do_action(tl_fc *c, const char *type, const uint8_t *body,
                    size_t body_n,
                    int (*on_result)(void *ctx, const uint8_t *p, size_t n),
                    void *ctx);

/* ---- prepared statements ------------------------------------------------ */

typedef struct tl_fc_prepared tl_fc_prepared;

/* CreatePreparedStatement. *out is owned (tl_fc_prepared_close). */
int tl_fc_prepare(tl_fc *c, const char *sql, tl_fc_prepared **out);
/* The server's opaque handle, and the IPC-encapsulated dataset and
 * parameter schemas it sent (borrowed; empty when not sent). */
tl_slice tl_fc_prepared_handle(const tl_fc_prepared *p);
tl_slice tl_fc_prepared_dataset_schema(const tl_fc_prepared *p);
tl_slice tl_fc_prepared_parameter_schema(const tl_fc_prepared *p);
/* Binds one parameter set (a batch of `schema`, both borrowed; one row per
 * execution) with DoPut of a CommandPreparedStatementQuery descriptor.
 * When the server answers with a DoPutPreparedStatementResult holding a
 * handle, later calls use that handle. */
int tl_fc_prepared_bind(tl_fc *c, tl_fc_prepared *p,
                        const struct ArrowSchema *schema,
                        const struct ArrowArray *params);
/* GetFlightInfo(CommandPreparedStatementQuery) then DoGet. */
int tl_fc_prepared_execute(tl_fc *c, tl_fc_prepared *p, const tl_fc_sink *sink);
/* ClosePreparedStatement on the server (when c is not NULL), then frees
 * `p` whatever the outcome. Accepts p NULL. Returns the action's result. */
int tl_fc_prepared_close(tl_fc *c, tl_fc_prepared *p);

#endif

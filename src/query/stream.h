/* stream.h - a statement of a query session, executed as a stream of Arrow
 * record batches (C Data Interface), for the Flight SQL service. Like
 * lake.h, the DuckDB details stay inside src/query/. */
#ifndef TL_STREAM_H
#define TL_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "arrow/arrow.h"
#include "lake.h"

typedef struct tl_query tl_query;

/* A session runs one statement at a time (one DuckDB connection): preparing
 * or executing another statement of the session, or tl_session_print or
 * tl_session_tables, ends a stream in progress, whose next tl_query_next
 * then fails with TL_EINVAL. The Flight SQL service needs one session per
 * concurrent stream. Different sessions and their queries may be used from
 * different threads at once; a session and its queries are used by one
 * thread at a time, except for tl_query_interrupt. */

/* Prepares (parses, binds, plans) one read-only statement in session `s`
 * (borrowed; it must outlive the query): the session's read-only filter and
 * view_instance() rewrite apply, as for tl_session_print. Returns 0, or
 * TL_EINVAL with DuckDB's message (or the refusal) in err. */
int tl_query_prepare(tl_query **out, tl_session *s, const char *sql, char *err,
                     size_t errcap);
/* Accepts NULL; ends a stream in progress. No tl_query_interrupt may run
 * or follow. */
void tl_query_close(tl_query *q);

/* The result's schema and the parameters' schema, as root struct ("+s")
 * schemas the caller releases. Field types are DuckDB's own Arrow export,
 * except that timestamps without a zone (TIMESTAMP_NS, ...) are declared
 * with the zone "+00:00" ("tsn:+00:00"): tracelake's times are UTC. Strings
 * are Utf8 ("u"; never Utf8View or large, DuckDB's default settings, which
 * the lake locks).
 *
 * Result: after tl_query_execute, the schema of the arrays tl_query_next
 * returns (binding may have changed the types); before, the prepared
 * statement's, and no fields at all when DuckDB cannot tell the columns
 * before the parameters are bound (e.g. SELECT ? + 1).
 * Parameters: one field per distinct `?`/`$n`/`$name` in order, named as
 * DuckDB names them ("1", "2"... or the name), typed by DuckDB from the
 * context, or null ("n") when it cannot tell (SELECT ? + 1).
 * Returns 0 or a TL_E* code with err set. */
int tl_query_schema(tl_query *q, struct ArrowSchema *out, char *err,
                    size_t errcap);
int tl_query_parameter_schema(tl_query *q, struct ArrowSchema *out, char *err,
                              size_t errcap);
int tl_query_nparams(const tl_query *q);

/* Binds the parameters from row `row` of a record batch (both borrowed)
 * whose columns are the parameters in order (Flight SQL DoPut of a
 * prepared statement); the array's and the root's offsets and validity
 * bitmaps apply. Supported Arrow types: null, bool, int8-64, uint8-64,
 * float32/64, utf8 and binary (plain, large, view), date32/64, timestamps
 * of any unit (bound as UTC wall time, the zone ignored, as tracelake's
 * zone-less timestamps hold), decimal32/64/128 up to 38 digits, and
 * dictionaries of those. DuckDB casts each value to the parameter's type
 * when the query runs (a failed cast is then an execution error). Returns
 * 0 or TL_EINVAL (wrong column count, unsupported type) with err set. */
int tl_query_bind(tl_query *q, const struct ArrowSchema *schema,
                  const struct ArrowArray *batch, int64_t row, char *err,
                  size_t errcap);

/* Starts execution as a stream (ending the previous one of this query, so
 * a prepared statement runs again after new bindings) and runs it until
 * the first rows can be fetched: most of the work of a blocking query
 * (aggregates, sorts) happens here. `should_stop` (may be NULL) is polled
 * between execution tasks; when it returns true the work is interrupted and
 * TL_ECANCELED returned. `limit` >= 0 caps the rows tl_query_next returns.
 * Returns 0, TL_EINVAL (an execution error, DuckDB's message in err) or
 * TL_ECANCELED. */
int tl_query_execute(tl_query *q, int64_t limit, bool (*should_stop)(void *ctx),
                     void *ctx, char *err, size_t errcap);

/* The next chunk of the result as an Arrow root (struct) array of the
 * result schema; the caller releases it. Under a limit, the last chunk's
 * root length is cut (its children may be longer, as the C Data Interface
 * allows). Returns 1 (a chunk), 0 (end of result, or not executed),
 * TL_EINVAL (execution error, DuckDB's message in err; or another
 * statement of the session ended the stream) or TL_ECANCELED
 * (interrupted). Chunks may be small (DuckDB's vectors after a filter);
 * the caller coalesces them. */
int tl_query_next(tl_query *q, struct ArrowArray *out, char *err,
                  size_t errcap);

/* Interrupts execution in progress from another thread (cancellation,
 * client gone), at any time until tl_query_close. Thread-safe. It is for
 * good: the query's calls (tl_query_execute and tl_query_next, this one
 * and later ones) then fail with TL_ECANCELED; close it. */
void tl_query_interrupt(tl_query *q);

/* The tables and views a session offers (Flight SQL GetTables): the
 * session's temp views and tables except internal ones (named "_..."),
 * with type "VIEW" or "TABLE" and the schema of their rows (as
 * tl_query_schema's; borrowed for the call), in name order. The callback
 * returns 0 to go on; another value stops the listing and is returned.
 * Returns 0 or a TL_E* code with err set. */
typedef int (*tl_table_fn)(void *ctx, const char *name, const char *type,
                           const struct ArrowSchema *schema);
int tl_session_tables(tl_session *s, tl_table_fn fn, void *ctx, char *err,
                      size_t errcap);

/* SQL keywords and function names of the engine (GetSqlInfo), each a list
 * of NUL-terminated names ending with an empty string; static after the
 * first successful call, thread-safe. Functions are a curated list per
 * kind, kept to those the engine has; an unknown kind gives an empty list.
 */
const char *tl_sql_keywords(void);
const char *tl_sql_functions(tl_lake *l, int kind /* 0 numeric, 1 string,
                                                     2 datetime, 3 system */);

#endif

/* qlog.h - the self-observability of every query the Flight SQL service
 * runs: phase durations as metrics (unit ticks), one async span tree per
 * query, and a query log line that the `query_log` view reads back. See
 * docs/query-observability.md. No gRPC here. */
#ifndef TL_QLOG_H
#define TL_QLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "tracelake/tracelake.h"

/* The phases of a query, each a child span of the query's root span. */
enum {
  TL_QPH_CONTEXT = 0,   /* make_session_context: the DuckDB session, views */
  TL_QPH_PLANNING = 1,  /* flight_sql_query_planning: parse, bind, optimize */
  TL_QPH_EXECUTION = 2, /* flight_sql_query_execution: until rows can flow */
  TL_QPH_STREAM = 3,    /* flight_sql_stream_results: until fully sent */
  TL_QPH_COUNT = 4
};

/* How a query ended. */
enum {
  TL_QST_OK = 0,
  TL_QST_ERROR = 1,        /* planning, execution or stream error */
  TL_QST_CANCELLED = 2,    /* CancelFlightInfo, deadline, server stopping */
  TL_QST_DISCONNECTED = 3, /* the client cancelled its call or went away */
};

/* One query, from the arrival of its first request (GetFlightInfo, or
 * DoGet when the ticket's query was not prepared by this server) until its
 * stream is drained or it fails. Plain data: it can be copied between
 * threads, as a query begun by GetFlightInfo ends in a DoGet. */
typedef struct tl_qrec {
  bool active;          /* begun and not finished */
  char id[37];          /* the query id (UUID), in errors and the log */
  uint64_t arrival;     /* ticks */
  int64_t arrival_wall; /* UTC ns */
  uint64_t phase_begin[TL_QPH_COUNT], phase_ticks[TL_QPH_COUNT];
  uint64_t ready;       /* ticks when the stream was ready; 0: never */
  uint64_t first_batch; /* ticks when the first record batch went; 0: none */
  int64_t rows;
  uint64_t bytes, batches;
  tl_async_span root, phase[TL_QPH_COUNT];
  /* What the log shows about the request. */
  char user[64];
  char client[96];
  const char *sql;                       /* borrowed until tl_qrec_finish */
  int64_t range_begin, range_end, limit; /* INT64_MIN/MAX, -1: none */
  bool prepared;                         /* a prepared statement's execution */
} tl_qrec;

/* Starts the record and its root span (`arrival` in ticks, `wall` in UTC
 * ns: when the request arrived). Copies user and client. */
void tl_qrec_begin(tl_qrec *q, const char *id, uint64_t arrival, int64_t wall,
                   const char *user, const char *client);
/* Begins / ends a phase: its child span and its duration metric
 * (context_init_duration, query_planning_duration,
 * query_execution_duration). Ending the execution phase marks the stream
 * ready (query_setup_duration). */
void tl_qrec_phase_begin(tl_qrec *q, int phase);
void tl_qrec_phase_end(tl_qrec *q, int phase);
/* Notes a record batch sent (rows and bytes of its messages). */
void tl_qrec_batch(tl_qrec *q, int64_t rows, uint64_t bytes);
/* Ends the query: open phases end, then the metrics of the outcome
 * (query_duration_total and query_completed_successfully, or
 * query_duration_with_error), query_time_to_first_batch, query_rows_sent,
 * query_bytes_sent, the query log line and the root span. `error` may be
 * NULL. Does nothing for a record that is not active. */
void tl_qrec_finish(tl_qrec *q, int status, const char *error);

/* The SQL with its literals replaced by '?', comments dropped and
 * whitespace folded, into out[0, cap) (truncated, NUL-terminated): the
 * same statement with other values has the same fingerprint. */
void tl_sql_fingerprint(const char *sql, char *out, size_t cap);

#endif

/* qlog.c - per-query self-telemetry of the Flight SQL service: the phase
 * metrics (ticks), the async span tree (begun and ended on whichever
 * threads serve the query's calls) and the query log line, a JSON object
 * that the `query_log` view parses. Recording goes through libtracelake
 * like any other program's; with self-telemetry off, every call here is
 * a counted drop and nothing else. */
#define TL_TARGET "tracelake::query"
#include "qlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"

/* Longest SQL, fingerprint and error kept in a log line (a log message
 * holds at most 8 KiB). */
#define LOG_SQL_MAX 3000
#define LOG_FP_MAX 2000
#define LOG_ERR_MAX 1000

void tl_qrec_begin(tl_qrec *q, const char *id, uint64_t arrival, int64_t wall,
                   const char *user, const char *client) {
  memset(q, 0, sizeof *q);
  q->active = true;
  snprintf(q->id, sizeof q->id, "%s", id);
  q->arrival = arrival;
  q->arrival_wall = wall;
  snprintf(q->user, sizeof q->user, "%s", user ? user : "");
  snprintf(q->client, sizeof q->client, "%s", client ? client : "");
  q->range_begin = INT64_MIN;
  q->range_end = INT64_MAX;
  q->limit = -1;
  q->root = TL_ASYNC_BEGIN("flight_sql_execute_query", TL_ASYNC_ROOT);
}

void tl_qrec_phase_begin(tl_qrec *q, int phase) {
  if (!q->active || q->phase_begin[phase])
    return;
  switch (phase) {
  case TL_QPH_CONTEXT:
    q->phase[phase] = TL_ASYNC_BEGIN("make_session_context", q->root);
    break;
  case TL_QPH_PLANNING:
    q->phase[phase] = TL_ASYNC_BEGIN("flight_sql_query_planning", q->root);
    break;
  case TL_QPH_EXECUTION:
    q->phase[phase] = TL_ASYNC_BEGIN("flight_sql_query_execution", q->root);
    break;
  default:
    q->phase[phase] = TL_ASYNC_BEGIN("flight_sql_stream_results", q->root);
  }
  q->phase_begin[phase] = tl_ticks();
}

/* Ends a phase's span; returns its duration, 0 if it was not open. */
static uint64_t phase_close(tl_qrec *q, int phase, uint64_t now) {
  if (!q->active || !q->phase_begin[phase] || q->phase_ticks[phase])
    return 0;
  uint64_t d = now - q->phase_begin[phase];
  q->phase_ticks[phase] = d ? d : 1; /* ended, even if within one tick */
  TL_ASYNC_END(q->phase[phase]);
  return q->phase_ticks[phase];
}

void tl_qrec_phase_end(tl_qrec *q, int phase) {
  uint64_t now = tl_ticks();
  uint64_t d = phase_close(q, phase, now);
  if (!d)
    return;
  switch (phase) {
  case TL_QPH_CONTEXT:
    TL_IMETRIC("context_init_duration", "ticks", d);
    break;
  case TL_QPH_PLANNING:
    TL_IMETRIC("query_planning_duration", "ticks", d);
    break;
  case TL_QPH_EXECUTION:
    TL_IMETRIC("query_execution_duration", "ticks", d);
    q->ready = now;
    TL_IMETRIC("query_setup_duration", "ticks", now - q->arrival);
    break;
  default:
    break;
  }
}

void tl_qrec_batch(tl_qrec *q, int64_t rows, uint64_t bytes) {
  if (!q->active)
    return;
  if (!q->first_batch)
    q->first_batch = tl_ticks();
  q->rows += rows;
  q->bytes += bytes;
  q->batches++;
}

static const char *status_name(int st) {
  switch (st) {
  case TL_QST_OK:
    return "ok";
  case TL_QST_CANCELLED:
    return "cancelled";
  case TL_QST_DISCONNECTED:
    return "disconnected";
  default:
    return "error";
  }
}

static int64_t ticks_ns(uint64_t ticks, uint64_t hz) {
  if (!hz)
    return 0;
  return (int64_t)((unsigned __int128)ticks * 1000000000u / hz);
}

/* The query log line: one JSON object per query. */
static void log_line(const tl_qrec *q, int status, const char *error,
                     uint64_t end) {
  uint64_t hz = tl_ticks_per_second();
  if (!hz)
    return; /* no self-telemetry */
  tl_bytes b;
  tl_bytes_init(&b, 8192);
  char tmp[256], fp[LOG_FP_MAX + 1];
  int64_t total = ticks_ns(end - q->arrival, hz);
  snprintf(tmp, sizeof tmp,
           "{\"query_id\":\"%s\",\"root_span_id\":%" PRIu64
           ",\"begin_ns\":%" PRId64 ",\"end_ns\":%" PRId64 ",\"user\":",
           q->id, q->root.id, q->arrival_wall, q->arrival_wall + total);
  tl_bytes_append(&b, tmp, strlen(tmp));
  tl_bytes_append_json_str(&b, q->user, strlen(q->user));
  tl_bytes_append(&b, ",\"client\":", 10);
  tl_bytes_append_json_str(&b, q->client, strlen(q->client));
  const char *sql = q->sql ? q->sql : "";
  size_t n = strlen(sql);
  tl_bytes_append(&b, ",\"sql\":", 7);
  tl_bytes_append_json_str(&b, sql, n > LOG_SQL_MAX ? LOG_SQL_MAX : n);
  tl_sql_fingerprint(sql, fp, sizeof fp);
  tl_bytes_append(&b, ",\"fingerprint\":", 15);
  tl_bytes_append_json_str(&b, fp, strlen(fp));
  tl_bytes_append(&b, ",\"range_begin\":", 15);
  if (q->range_begin != INT64_MIN)
    snprintf(tmp, sizeof tmp, "%" PRId64, q->range_begin);
  else
    snprintf(tmp, sizeof tmp, "null");
  tl_bytes_append(&b, tmp, strlen(tmp));
  tl_bytes_append(&b, ",\"range_end\":", 13);
  if (q->range_end != INT64_MAX)
    snprintf(tmp, sizeof tmp, "%" PRId64, q->range_end);
  else
    snprintf(tmp, sizeof tmp, "null");
  tl_bytes_append(&b, tmp, strlen(tmp));
  snprintf(tmp, sizeof tmp,
           ",\"limit\":%" PRId64 ",\"prepared\":%s,\"context_ns\":%" PRId64
           ",\"planning_ns\":%" PRId64 ",\"execution_ns\":%" PRId64,
           q->limit, q->prepared ? "true" : "false",
           ticks_ns(q->phase_ticks[TL_QPH_CONTEXT], hz),
           ticks_ns(q->phase_ticks[TL_QPH_PLANNING], hz),
           ticks_ns(q->phase_ticks[TL_QPH_EXECUTION], hz));
  tl_bytes_append(&b, tmp, strlen(tmp));
  snprintf(tmp, sizeof tmp,
           ",\"setup_ns\":%" PRId64 ",\"total_ns\":%" PRId64
           ",\"first_batch_ns\":%" PRId64 ",\"rows\":%" PRId64
           ",\"bytes\":%" PRIu64 ",\"batches\":%" PRIu64 ",\"status\":\"%s\"",
           q->ready ? ticks_ns(q->ready - q->arrival, hz) : -1, total,
           q->first_batch ? ticks_ns(q->first_batch - q->arrival, hz) : -1,
           q->rows, q->bytes, q->batches, status_name(status));
  tl_bytes_append(&b, tmp, strlen(tmp));
  tl_bytes_append(&b, ",\"error\":", 9);
  if (error) {
    n = strlen(error);
    tl_bytes_append_json_str(&b, error, n > LOG_ERR_MAX ? LOG_ERR_MAX : n);
  } else {
    tl_bytes_append(&b, "null", 4);
  }
  if (tl_bytes_append(&b, "}", 1) == 0)
    TL_INFO("%.*s", (int)b.len, (const char *)b.p);
  tl_bytes_free(&b);
}

void tl_qrec_finish(tl_qrec *q, int status, const char *error) {
  if (!q->active)
    return;
  /* A phase still open failed or was cut short: its span ends here, but
   * only completed phases have duration metrics (the stream phase has
   * none of its own: the total covers it). */
  uint64_t end = tl_ticks();
  for (int ph = 0; ph < TL_QPH_COUNT; ph++)
    phase_close(q, ph, end);
  if (status == TL_QST_OK) {
    TL_IMETRIC("query_duration_total", "ticks", end - q->arrival);
    TL_IMETRIC("query_completed_successfully", "count", 1);
  } else {
    TL_IMETRIC("query_duration_with_error", "ticks", end - q->arrival);
  }
  if (q->first_batch)
    TL_IMETRIC("query_time_to_first_batch", "ticks",
               q->first_batch - q->arrival);
  TL_IMETRIC("query_rows_sent", "count", q->rows);
  TL_IMETRIC("query_bytes_sent", "bytes", q->bytes);
  log_line(q, status, error, end);
  TL_ASYNC_END(q->root);
  q->active = false;
}

/* ---- fingerprints -----------------------------------------------------------
 */

static bool ident_char(unsigned char c) {
  return c == '_' || c >= 0x80 || (c >= '0' && c <= '9') ||
         (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

void tl_sql_fingerprint(const char *sql, char *out, size_t cap) {
  size_t o = 0;
  bool space = false;
#define PUT(ch)                                                                \
  do {                                                                         \
    if (o + 1 < cap)                                                           \
      out[o++] = (ch);                                                         \
  } while (0)
  const unsigned char *p = (const unsigned char *)sql;
  while (*p) {
    unsigned char c = *p;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = o > 0;
      p++;
      continue;
    }
    if (c == '-' && p[1] == '-') { /* a comment to the end of the line */
      while (*p && *p != '\n')
        p++;
      space = o > 0;
      continue;
    }
    if (c == '/' && p[1] == '*') {
      p += 2;
      while (*p && !(p[0] == '*' && p[1] == '/'))
        p++;
      p += *p ? 2 : 0;
      space = o > 0;
      continue;
    }
    if (space)
      PUT(' ');
    space = false;
    if (c == '\'') { /* a string literal, '' escapes a quote */
      p++;
      while (*p && !(p[0] == '\'' && p[1] != '\''))
        p += (p[0] == '\'' ? 2 : 1);
      p += *p ? 1 : 0;
      PUT('?');
    } else if (c == '"') { /* a quoted identifier: kept */
      PUT('"');
      p++;
      while (*p && !(p[0] == '"' && p[1] != '"')) {
        PUT((char)*p);
        p++;
      }
      if (*p) {
        PUT('"');
        p++;
      }
    } else if ((c >= '0' && c <= '9') ||
               (c == '.' && p[1] >= '0' && p[1] <= '9')) {
      /* A number (with decimals or an exponent), unless part of a name. */
      while (ident_char(*p) || *p == '.' ||
             ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
        p++;
      PUT('?');
    } else if (ident_char(c)) {
      for (; ident_char(*p); p++)
        PUT((char)*p);
    } else {
      PUT((char)c);
      p++;
    }
  }
#undef PUT
  out[o < cap ? o : cap - 1] = 0;
}

/* qlog.c - per-query self-telemetry of the Flight SQL service: the phase
 * metrics (ticks), the async span tree (begun and ended on whichever
 * threads serve the query's calls) and the query log line, a JSON object
 * that the `query_log` view parses. Recording goes through libtracelake
 * like any other program's; with self-telemetry off, every call here is
 * a counted drop and nothing else. */
#define TL_TARGET "tracelake::query"
#include "qlog.h"

#include <string.h>

#include "common/common.h"

/* Bytes of the SQL, fingerprint and error in a log line, escaped and
 * quoted (a log message holds at most 8 KiB; the rest of the line takes
 * less than 1.5 KiB). */
#define LOG_SQL_MAX 3000
#define LOG_FP_MAX 2000
#define LOG_ERR_MAX 1000

/* Copies a C string into out[cap], cut to fit (NULL as ""). */
static void copy_str(char *out, size_t cap, const char *s) {
  size_t n = s ? strnlen(s, cap - 1) : 0;
  memcpy(out, s ? s : "", n);
  out[n] = 0;
}

void tl_qrec_begin(tl_qrec *q, const char *id, uint64_t arrival, int64_t wall,
                   const char *user, const char *client) {
  memset(q, 0, sizeof *q);
  q->active = true;
  copy_str(q->id, sizeof q->id, id);
  q->arrival = arrival;
  q->arrival_wall = wall;
  copy_str(q->user, sizeof q->user, user);
  copy_str(q->client, sizeof q->client, client);
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

/* The query log line is built in a fixed buffer, without printf, and
 * recorded verbatim. Every string has a budget of output bytes (escapes
 * included), so the line always fits in a log message and stays valid JSON
 * and UTF-8: a long value is cut, never the line. */
enum { QLOG_LINE = 8192 };
typedef struct line {
  char p[QLOG_LINE];
  size_t n;
} line;

static void put(line *l, const char *s, size_t n) {
  if (n > QLOG_LINE - l->n)
    n = QLOG_LINE - l->n;
  memcpy(l->p + l->n, s, n);
  l->n += n;
}

/* Appends `,"key":`. */
static void put_key(line *l, const char *key) {
  put(l, ",\"", 2);
  put(l, key, strlen(key));
  put(l, "\":", 2);
}

static void put_int(line *l, const char *key, uint64_t mag, bool neg) {
  char d[21];
  size_t i = sizeof d;
  do
    d[--i] = (char)('0' + mag % 10);
  while ((mag /= 10));
  if (neg)
    d[--i] = '-';
  put_key(l, key);
  put(l, d + i, sizeof d - i);
}

static void put_u64(line *l, const char *key, uint64_t v) {
  put_int(l, key, v, false);
}

static void put_i64(line *l, const char *key, int64_t v) {
  put_int(l, key, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

/* A bound of the query range: null when it is `none` (unbounded). */
static void put_bound(line *l, const char *key, int64_t v, int64_t none) {
  if (v != none) {
    put_i64(l, key, v);
    return;
  }
  put_key(l, key);
  put(l, "null", 4);
}

/* Appends `,"key":` then the string as JSON, in at most `budget` bytes with
 * its quotes (cut at a character boundary), or null. */
static void put_str(line *l, const char *key, const char *v, size_t budget) {
  static const char hex[] = "0123456789abcdef";
  if (key)
    put_key(l, key);
  if (!v) {
    put(l, "null", 4);
    return;
  }
  put(l, "\"", 1);
  size_t room = budget - 2, i = 0, run = 0;
  for (; v[i]; i++) {
    unsigned char ch = (unsigned char)v[i];
    size_t w = ch == '"' || ch == '\\' ? 2 : ch < 0x20 ? 6 : 1;
    if (w > room)
      break;
    room -= w;
    if (w == 1)
      continue;
    put(l, v + run, i - run);
    run = i + 1;
    if (w == 2) {
      char e[2] = {'\\', (char)ch};
      put(l, e, 2);
    } else {
      char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
      put(l, e, 6);
    }
  }
  size_t end = i;
  if (v[i]) /* cut: not inside a UTF-8 sequence */
    while (end > run && ((unsigned char)v[end] & 0xC0) == 0x80)
      end--;
  put(l, v + run, end - run);
  put(l, "\"", 1);
}

static void log_line(const tl_qrec *q, int status, const char *error,
                     uint64_t end) {
  uint64_t hz = tl_ticks_per_second();
  if (!hz)
    return; /* no self-telemetry */
  line l;   /* 8 KiB of the worker's stack, not cleared */
  l.n = 0;
  char fp[LOG_FP_MAX + 1];
  int64_t total = ticks_ns(end - q->arrival, hz);
  put(&l, "{\"query_id\":", 12);
  put_str(&l, NULL, q->id, sizeof q->id + 2);
  put_u64(&l, "root_span_id", q->root.id);
  put_i64(&l, "begin_ns", q->arrival_wall);
  put_i64(&l, "end_ns", q->arrival_wall + total);
  put_str(&l, "user", q->user, 200);
  put_str(&l, "client", q->client, 300);
  const char *sql = q->sql ? q->sql : "";
  put_str(&l, "sql", sql, LOG_SQL_MAX);
  tl_sql_fingerprint(sql, fp, sizeof fp);
  put_str(&l, "fingerprint", fp, LOG_FP_MAX);
  put_bound(&l, "range_begin", q->range_begin, INT64_MIN);
  put_bound(&l, "range_end", q->range_end, INT64_MAX);
  put_i64(&l, "limit", q->limit);
  put(&l, ",\"prepared\":", 12);
  put(&l, q->prepared ? "true" : "false", q->prepared ? 4 : 5);
  put_i64(&l, "context_ns", ticks_ns(q->phase_ticks[TL_QPH_CONTEXT], hz));
  put_i64(&l, "planning_ns", ticks_ns(q->phase_ticks[TL_QPH_PLANNING], hz));
  put_i64(&l, "execution_ns", ticks_ns(q->phase_ticks[TL_QPH_EXECUTION], hz));
  put_i64(&l, "setup_ns", q->ready ? ticks_ns(q->ready - q->arrival, hz) : -1);
  put_i64(&l, "total_ns", total);
  put_i64(&l, "first_batch_ns",
          q->first_batch ? ticks_ns(q->first_batch - q->arrival, hz) : -1);
  put_i64(&l, "rows", q->rows);
  put_u64(&l, "bytes", q->bytes);
  put_u64(&l, "batches", q->batches);
  put_str(&l, "status", status_name(status), 16);
  put_str(&l, "error", error, LOG_ERR_MAX);
  put(&l, "}", 1);
  TL_LOG_STR(TL_LEVEL_INFO, l.p, l.n);
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

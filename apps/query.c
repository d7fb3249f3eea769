/* query.c - `tracelake query`: runs SQL on a tracelake Flight SQL server
 * (or lists its tables) and prints the result as a table, CSV or JSON
 * lines, like `tracelake sql` does in process. Ctrl-C cancels the query on
 * the server; a progress line shows on a terminal when it takes a while. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apps.h"
#include "common/common.h"
#include "flightsql/client/client.h"

#define ME "tracelake query"
#define DEFAULT_SERVER "grpc://127.0.0.1:50051"

enum { FMT_TABLE, FMT_CSV, FMT_JSON };

static void usage(FILE *o) {
  fprintf(
      o,
      "usage: tracelake query [options] \"SQL\"\n"
      "       tracelake query [options] --tables\n"
      "       tracelake query [options] --slow [--since AGE]\n\n"
      "Runs one query on a tracelake Flight SQL server and prints the\n"
      "result (or, with --tables, the tables the server offers).\n\n"
      "  --server URL      grpc://host:port or grpc+tls://host:port\n"
      "                    (default " DEFAULT_SERVER ")\n"
      "  --ca FILE         PEM root certificates for grpc+tls\n"
      "                    (default: the system's)\n"
      "  --token T         bearer token (default: $TRACELAKE_TOKEN)\n"
      "  --user NAME       authenticate with a Handshake as NAME...\n"
      "  --password KEY    ...and KEY (default: $TRACELAKE_PASSWORD)\n"
      "  --begin TIME      only data at or after TIME\n"
      "  --end TIME        only data before TIME; TIME is RFC 3339\n"
      "                    (2026-11-26T12:00:00Z) or an age (90m, 1d)\n"
      "  --limit N         at most N rows\n"
      "  --timeout SEC     give up after SEC seconds (default: none)\n"
      "  --format F        table (default), csv or json (one object a line)\n"
      "  --tables          list tables instead of running SQL\n"
      "  --slow            the server's slowest queries (from its query_log)\n"
      "                    with their phase breakdown, slowest first\n"
      "  --since AGE       with --slow: queries of the last AGE (default "
      "1h)\n\n"
      "Exit status: 0 done, 1 the query or the connection failed, 2 bad\n"
      "usage, 130 interrupted.\n");
}

/* ---- output ---------------------------------------------------------------
 */

typedef struct printer {
  int format;
  FILE *o;
  int64_t ncols;
  char **names;
  bool *numeric, *boolean;
  size_t *width;
  /* table: every cell kept until the end to size the columns */
  tl_strs cells; /* row-major, NULL for null */
  atomic_uint_fast64_t rows;
  tl_bytes text;
  bool failed; /* out of memory */
} printer;

/* A JSON number as is; anything else (nan, inf) as a string. */
static bool json_number(const char *v) {
  const char *p = v + (*v == '-');
  if (*p < '0' || *p > '9')
    return false;
  for (; *p; p++)
    if (!strchr("0123456789.eE+-", *p))
      return false;
  return true;
}

static int on_schema(void *ctx, const struct ArrowSchema *schema) {
  printer *pr = ctx;
  if (pr->names)
    return 0;
  int64_t n = schema->n_children;
  pr->names = calloc(n ? (size_t)n : 1, sizeof *pr->names);
  pr->numeric = calloc(n ? (size_t)n : 1, sizeof *pr->numeric);
  pr->boolean = calloc(n ? (size_t)n : 1, sizeof *pr->boolean);
  pr->width = calloc(n ? (size_t)n : 1, sizeof *pr->width);
  if (!pr->names || !pr->numeric || !pr->boolean || !pr->width)
    return TL_ENOMEM;
  pr->ncols = n;
  for (int64_t c = 0; c < n; c++) {
    const struct ArrowSchema *col = schema->children[c];
    pr->names[c] = strdup(col->name ? col->name : "");
    if (!pr->names[c])
      return TL_ENOMEM;
    pr->numeric[c] = tl_arrow_is_numeric(col);
    pr->boolean[c] = col->format && !strcmp(col->format, "b");
    pr->width[c] = strlen(pr->names[c]);
  }
  if (pr->format == FMT_CSV) {
    for (int64_t c = 0; c < n; c++) {
      if (c)
        fputc(',', pr->o);
      tl_fput_csv_field(pr->o, pr->names[c]);
    }
    fputc('\n', pr->o);
  }
  return 0;
}

static int keep_cell(printer *pr, const char *v) {
  return tl_strs_add(&pr->cells, v);
}

static int on_batch(void *ctx, const struct ArrowSchema *schema,
                    const struct ArrowArray *batch) {
  printer *pr = ctx;
  if (!pr->names) {
    int rc = on_schema(ctx, schema);
    if (rc)
      return rc;
  }
  for (int64_t r = 0; r < batch->length; r++) {
    if (pr->format == FMT_JSON)
      fputc('{', pr->o);
    for (int64_t c = 0; c < pr->ncols; c++) {
      bool is_null = false;
      pr->text.len = 0;
      int rc = tl_arrow_value_text(schema, batch, c, r, &pr->text, &is_null);
      if (!rc)
        rc = tl_bytes_append(&pr->text, "", 1);
      if (rc)
        return rc;
      const char *v = is_null ? NULL : (const char *)pr->text.p;
      if (pr->format == FMT_CSV) {
        if (c)
          fputc(',', pr->o);
        if (v)
          tl_fput_csv_field(pr->o, v);
      } else if (pr->format == FMT_JSON) {
        if (c)
          fputc(',', pr->o);
        tl_fput_json_str(pr->o, pr->names[c]);
        fputc(':', pr->o);
        if (!v)
          fputs("null", pr->o);
        else if ((pr->numeric[c] && json_number(v)) ||
                 (pr->boolean[c] &&
                  (!strcmp(v, "true") || !strcmp(v, "false"))))
          fputs(v, pr->o);
        else
          tl_fput_json_str(pr->o, v);
      } else {
        size_t len = v ? strlen(v) : 4;
        if (len > pr->width[c])
          pr->width[c] = len;
        if ((rc = keep_cell(pr, v)))
          return rc;
      }
    }
    if (pr->format == FMT_CSV)
      fputc('\n', pr->o);
    else if (pr->format == FMT_JSON)
      fputs("}\n", pr->o);
    atomic_fetch_add(&pr->rows, 1);
  }
  return 0;
}

/* The table, as `tracelake sql` prints it. */
static void print_table(printer *pr) {
  FILE *o = pr->o;
  uint64_t nrows = atomic_load(&pr->rows);
  for (int64_t c = 0; c < pr->ncols; c++)
    fprintf(o, "%s%-*s", c ? " | " : "", (int)pr->width[c], pr->names[c]);
  fputc('\n', o);
  for (int64_t c = 0; c < pr->ncols; c++) {
    fputs(c ? "-+-" : "", o);
    for (size_t k = 0; k < pr->width[c]; k++)
      fputc('-', o);
  }
  fputc('\n', o);
  for (uint64_t i = 0; i < nrows && pr->ncols; i++) {
    for (int64_t c = 0; c < pr->ncols; c++) {
      const char *v = pr->cells.v[i * (uint64_t)pr->ncols + (uint64_t)c];
      if (pr->numeric[c])
        fprintf(o, "%s%*s", c ? " | " : "", (int)pr->width[c], v ? v : "NULL");
      else
        fprintf(o, "%s%-*s", c ? " | " : "", (int)pr->width[c], v ? v : "NULL");
    }
    fputc('\n', o);
  }
  fprintf(o, "(%llu row%s)\n", (unsigned long long)nrows,
          nrows == 1 ? "" : "s");
}

static void printer_free(printer *pr) {
  tl_strs_free(&pr->cells);
  for (int64_t c = 0; pr->names && c < pr->ncols; c++)
    free(pr->names[c]);
  free(pr->names);
  free(pr->numeric);
  free(pr->boolean);
  free(pr->width);
  tl_bytes_free(&pr->text);
}

/* ---- progress and Ctrl-C --------------------------------------------------
 */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static tl_fc *g_client; /* the client to cancel, under g_mu */
static atomic_int g_interrupted;

/* Waits for SIGINT/SIGTERM (blocked in every other thread) and cancels
 * the query; a second signal, or one before the client exists, ends the
 * process at once. */
static void *signal_thread(void *arg) {
  sigset_t *set = arg;
  for (;;) {
    int sig = 0;
    if (sigwait(set, &sig))
      continue;
    pthread_mutex_lock(&g_mu);
    bool first = !atomic_exchange(&g_interrupted, 1);
    if (first && g_client)
      tl_fc_cancel(g_client);
    bool have = g_client != NULL;
    pthread_mutex_unlock(&g_mu);
    if (!first || !have) {
      fprintf(stderr, "\n" ME ": interrupted\n");
      _exit(130);
    }
  }
  return NULL;
}

typedef struct progress {
  printer *pr;
  tl_fc *c;
  atomic_int done;
  bool shown;
} progress;

static void *progress_thread(void *arg) {
  progress *p = arg;
  uint64_t start = tl_mono_ns();
  while (!atomic_load(&p->done)) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (atomic_load(&p->done) || tl_mono_ns() - start < 1000000000ull)
      continue;
    fprintf(stderr, "\r%llu rows, %.1f MB",
            (unsigned long long)atomic_load(&p->pr->rows),
            (double)tl_fc_bytes_received(p->c) / 1e6);
    fflush(stderr);
    p->shown = true;
  }
  return NULL;
}

/* ---- the command ----------------------------------------------------------
 */

static int parse_time(const char *s, char out[40]) {
  int64_t ns, age;
  if (tl_rfc3339_parse(s, &ns)) {
    if (tl_app_parse_age(s, &age))
      return -1;
    ns = tl_wall_ns() - age;
  }
  tl_rfc3339_format(ns, out);
  return 0;
}

static int parse_int(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (errno || end == s || *end || x < 0)
    return -1;
  *v = x;
  return 0;
}

int tl_app_query(int argc, char **argv) {
  const char *sql = NULL;
  tl_fc_opts o;
  memset(&o, 0, sizeof o);
  o.url = DEFAULT_SERVER;
  char begin[40] = "", end[40] = "";
  int64_t limit = -1, timeout_s = 0;
  int format = FMT_TABLE;
  bool tables = false, slow = false;
  char slow_sql[1024];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--tables")) {
      tables = true;
      continue;
    }
    if (!strcmp(a, "--slow")) {
      slow = true;
      continue;
    }
    if (a[0] != '-' || !a[1]) {
      if (sql) {
        fprintf(stderr, ME ": one query at a time (quote it)\n");
        return 2;
      }
      sql = a;
      continue;
    }
    if (!v) {
      fprintf(stderr, ME ": %s needs a value (try --help)\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--server"))
      o.url = v;
    else if (!strcmp(a, "--ca"))
      o.ca_file = v;
    else if (!strcmp(a, "--token"))
      o.token = v;
    else if (!strcmp(a, "--user"))
      o.user = v;
    else if (!strcmp(a, "--password"))
      o.password = v;
    else if (!strcmp(a, "--since")) {
      int64_t age;
      if (tl_app_parse_age(v, &age)) {
        fprintf(stderr, ME ": --since wants an age (90m, 1h, 2d)\n");
        return 2;
      }
      tl_rfc3339_format(tl_wall_ns() - age, begin);
    } else if (!strcmp(a, "--begin") || !strcmp(a, "--end")) {
      if (parse_time(v, a[2] == 'b' ? begin : end)) {
        fprintf(stderr,
                ME ": %s: '%s' is neither RFC 3339 (2026-11-26T12:00:00Z) "
                   "nor an age (90m)\n",
                a, v);
        return 2;
      }
    } else if (!strcmp(a, "--limit")) {
      if (parse_int(v, &limit)) {
        fprintf(stderr, ME ": --limit wants a number of rows\n");
        return 2;
      }
    } else if (!strcmp(a, "--timeout")) {
      if (parse_int(v, &timeout_s) || timeout_s > INT64_MAX / 1000) {
        fprintf(stderr, ME ": --timeout wants a number of seconds\n");
        return 2;
      }
    } else if (!strcmp(a, "--format")) {
      if (!strcmp(v, "table"))
        format = FMT_TABLE;
      else if (!strcmp(v, "csv"))
        format = FMT_CSV;
      else if (!strcmp(v, "json"))
        format = FMT_JSON;
      else {
        fprintf(stderr, ME ": --format is table, csv or json\n");
        return 2;
      }
    } else {
      fprintf(stderr, ME ": unknown option %s (try --help)\n", a);
      return 2;
    }
  }
  if (slow) {
    /* The slowest queries of the window, with where their time went. The
     * window (--since, default 1h) bounds the scan like any range. */
    if (sql || tables) {
      fprintf(stderr, ME ": --slow takes no SQL and no --tables\n");
      return 2;
    }
    if (!begin[0])
      tl_rfc3339_format(tl_wall_ns() - (int64_t)3600 * 1000000000, begin);
    snprintf(slow_sql, sizeof slow_sql,
             "SELECT begin_time, status, round(total_ns / 1e6, 3) AS "
             "total_ms, round(setup_ns / 1e6, 3) AS setup_ms, "
             "round(context_ns / 1e6, 3) AS context_ms, round(planning_ns / "
             "1e6, 3) AS planning_ms, round(execution_ns / 1e6, 3) AS "
             "execution_ms, round((total_ns - coalesce(setup_ns, total_ns)) "
             "/ 1e6, 3) AS stream_ms, \"rows\", \"user\", "
             "left(fingerprint, 60) AS query FROM query_log "
             "ORDER BY total_ns DESC LIMIT %lld",
             (long long)(limit >= 0 ? limit : 20));
    sql = slow_sql;
  }
  if (tables == (sql != NULL)) {
    if (tables)
      fprintf(stderr, ME ": --tables takes no SQL\n");
    else
      usage(stderr);
    return 2;
  }
  if (!o.token && !o.user) {
    const char *t = getenv("TRACELAKE_TOKEN");
    if (t && *t)
      o.token = t;
  }
  if (o.user && !o.password)
    o.password = getenv("TRACELAKE_PASSWORD");
  if (o.password && !o.user) {
    fprintf(stderr, ME ": --password needs --user\n");
    return 2;
  }
  o.timeout_ms = timeout_s * 1000;

  /* Signals go to one thread, which cancels the call; every thread made
   * from here on (gRPC's too) inherits the mask. */
  static sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_t sig_th;
  if (!pthread_create(&sig_th, NULL, signal_thread, &set))
    pthread_detach(sig_th);

  char err[1024] = "";
  tl_fc *c = NULL;
  int rc = tl_fc_connect(&c, &o, err, sizeof err);
  if (rc) {
    fprintf(stderr, ME ": %s\n", err);
    return atomic_load(&g_interrupted) ? 130 : 1;
  }
  pthread_mutex_lock(&g_mu);
  g_client = c;
  if (atomic_load(&g_interrupted))
    tl_fc_cancel(c);
  pthread_mutex_unlock(&g_mu);
  if (tl_fc_set_range(c, begin[0] ? begin : NULL, end[0] ? end : NULL)) {
    fprintf(stderr, ME ": out of memory\n");
    rc = TL_ENOMEM;
    goto out;
  }
  tl_fc_set_limit(c, limit);

  printer pr;
  memset(&pr, 0, sizeof pr);
  pr.format = format;
  pr.o = stdout;
  atomic_init(&pr.rows, 0);
  tl_bytes_init(&pr.text, 64u << 20);
  tl_fc_sink sink = {on_schema, on_batch, &pr};

  /* Progress only where it cannot mix with rows on the same terminal. */
  progress pg = {&pr, c, 0, false};
  pthread_t pg_th;
  bool pg_on = isatty(STDERR_FILENO) &&
               (format == FMT_TABLE || !isatty(STDOUT_FILENO)) &&
               !pthread_create(&pg_th, NULL, progress_thread, &pg);

  if (tables)
    rc = tl_fc_get_tables(c, NULL, NULL, NULL, false, &sink);
  else
    rc = tl_fc_execute(c, sql, &sink);

  if (pg_on) {
    atomic_store(&pg.done, 1);
    pthread_join(pg_th, NULL);
    if (pg.shown)
      fputs("\r\033[K", stderr);
  }
  if (!rc && format == FMT_TABLE)
    print_table(&pr);
  fflush(stdout);
  if (rc == TL_ECANCELED && atomic_load(&g_interrupted))
    fprintf(stderr, ME ": interrupted\n");
  else if (rc)
    fprintf(stderr, ME ": %s\n",
            tl_fc_errmsg(c)[0] ? tl_fc_errmsg(c) : tl_strerror(rc));
  printer_free(&pr);
out:
  pthread_mutex_lock(&g_mu);
  g_client = NULL;
  pthread_mutex_unlock(&g_mu);
  tl_fc_close(c);
  if (rc == TL_ECANCELED && atomic_load(&g_interrupted))
    return 130;
  return rc ? 1 : 0;
}

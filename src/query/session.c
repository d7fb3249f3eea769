/* session.c - query sessions: a DuckDB connection whose views cover the
 * partitions overlapping the session's time range, and a statement filter
 * that lets only read-only queries through. */
#define TL_TARGET "tracelake::session"
#include "tracelake/tracelake.h"
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lake_impl.h"

struct tl_session {
  tl_lake *l;
  duckdb_connection c;
  int64_t begin, end;
  uint64_t files;
  _Atomic uint64_t statements; /* see tl__session_bump */
};

/* ---- Loading catalog rows --------------------------------------------- */

static void append_uuid(duckdb_appender a, const uint8_t id[16]) {
  char t[37];
  tl_uuid_format(id, t);
  duckdb_append_varchar_length(a, t, 36);
}

static void append_text(duckdb_appender a, const char *s) {
  if (s)
    duckdb_append_varchar(a, s);
  else
    duckdb_append_null(a);
}

static void append_ts(duckdb_appender a, int64_t ns) {
  duckdb_timestamp_ns ts = {ns};
  duckdb_value v = duckdb_create_timestamp_ns(ts);
  duckdb_append_value(a, v);
  duckdb_destroy_value(&v);
}

static int load_process(void *ctx, const tl_catalog_process_row *r) {
  duckdb_appender a = ctx;
  append_uuid(a, r->process_id);
  append_text(a, r->exe);
  append_text(a, r->username);
  append_text(a, r->realname);
  append_text(a, r->computer);
  append_text(a, r->distro);
  append_text(a, r->cpu_brand);
  duckdb_append_int64(a, (int64_t)r->tsc_frequency);
  append_ts(a, r->start_time);
  duckdb_append_int64(a, (int64_t)r->start_ticks);
  append_ts(a, r->insert_time);
  if (r->has_parent)
    append_uuid(a, r->parent_process_id);
  else
    duckdb_append_null(a);
  append_text(a, r->properties);
  append_ts(a, r->last_update_time);
  return duckdb_appender_end_row(a) == DuckDBError ? TL_EIO : 0;
}

static int load_stream(void *ctx, const tl_catalog_stream_row *r) {
  duckdb_appender a = ctx;
  append_uuid(a, r->stream_id);
  append_uuid(a, r->process_id);
  append_text(a, r->tags);
  append_text(a, r->properties);
  append_ts(a, r->insert_time);
  append_ts(a, r->last_update_time);
  return duckdb_appender_end_row(a) == DuckDBError ? TL_EIO : 0;
}

static int load_block(void *ctx, const tl_catalog_block *b) {
  duckdb_appender a = ctx;
  append_uuid(a, b->block_id);
  append_uuid(a, b->stream_id);
  append_uuid(a, b->process_id);
  append_ts(a, b->begin_time);
  duckdb_append_int64(a, (int64_t)b->begin_ticks);
  append_ts(a, b->end_time);
  duckdb_append_int64(a, (int64_t)b->end_ticks);
  duckdb_append_int32(a, (int32_t)b->nb_objects);
  duckdb_append_int64(a, (int64_t)b->payload_size);
  append_ts(a, b->insert_time);
  return duckdb_appender_end_row(a) == DuckDBError ? TL_EIO : 0;
}

/* Creates temp table `table` and fills it through `load`. */
static int load_table(tl_session *s, const char *table, const char *columns,
                      int (*load)(tl_session *s, duckdb_appender a), char *err,
                      size_t errcap) {
  TL_SPAN_FN();
  char sql[2048];
  snprintf(sql, sizeof sql, "CREATE TEMP TABLE %s (%s)", table, columns);
  int rc = tl__duck_exec(s->c, sql, err, errcap);
  if (rc)
    return rc;
  duckdb_appender a;
  if (duckdb_appender_create(s->c, NULL, table, &a) == DuckDBError)
    return tl__lake_fail(err, errcap, "duckdb: cannot append to %s", table);
  rc = load(s, a);
  if (rc)
    tl__lake_fail(err, errcap, "loading %s: %s", table,
                  tl_catalog_errmsg(s->l->cat));
  if (duckdb_appender_close(a) == DuckDBError && !rc)
    rc = tl__lake_fail(err, errcap, "duckdb: %s", duckdb_appender_error(a));
  duckdb_appender_destroy(&a);
  return rc;
}

static int load_processes(tl_session *s, duckdb_appender a) {
  return tl_catalog_foreach_process(s->l->cat, load_process, a);
}

static int load_streams(tl_session *s, duckdb_appender a) {
  return tl_catalog_foreach_stream(s->l->cat, load_stream, a);
}

static int load_blocks(tl_session *s, duckdb_appender a) {
  return tl_catalog_foreach_block_in(s->l->cat, s->begin, s->end, load_block,
                                     a);
}

/* ---- Partition views ---------------------------------------------------- */

typedef struct file_list {
  tl_bytes sql; /* "['a.parquet', 'b.parquet']" */
  uint64_t n;
  const char *data;
} file_list;

static int add_file(void *ctx, const tl_partition *p) {
  file_list *f = ctx;
  char q[4400];
  /* Paths are ours (uuid names under the data dir): no quote inside. */
  int n =
      snprintf(q, sizeof q, "%s'%s/%s'", f->n ? ", " : "", f->data, p->file);
  f->n++;
  return tl_bytes_append(&f->sql, q, (size_t)n);
}

/* A TIMESTAMP_NS literal for UTC nanoseconds. */
static void ts_literal(int64_t ns, char *out, size_t cap) {
  char t[40];
  tl_rfc3339_format(ns, t);
  t[strlen(t) - 1] = 0; /* DuckDB's TIMESTAMP_NS is UTC without a zone */
  snprintf(out, cap, "TIMESTAMP_NS '%s'", t);
}

/* The session's time filter on column `col`, or an empty string. */
static void range_filter(const tl_session *s, const char *col, char *out,
                         size_t cap) {
  char b[64], e[64];
  ts_literal(s->begin, b, sizeof b);
  ts_literal(s->end, e, sizeof e);
  if (s->begin != INT64_MIN && s->end != INT64_MAX)
    snprintf(out, cap, "WHERE %s >= %s AND %s < %s", col, b, col, e);
  else if (s->begin != INT64_MIN)
    snprintf(out, cap, "WHERE %s >= %s", col, b);
  else if (s->end != INT64_MAX)
    snprintf(out, cap, "WHERE %s < %s", col, e);
  else
    out[0] = 0;
}

/* The partitions of a global view, by format (see TL_PARTITION_V2). */
typedef struct global_files {
  file_list cur, old;
} global_files;

static int add_global_file(void *ctx, const tl_partition *p) {
  global_files *g = ctx;
  return add_file(tl__partition_v2(p->file) ? &g->cur : &g->old, p);
}

static int append_str(tl_bytes *b, const char *s) {
  return tl_bytes_append(b, s, strlen(s));
}

static int append_scan(tl_bytes *b, const file_list *f) {
  int rc = append_str(b, "read_parquet([");
  if (!rc)
    rc = tl_bytes_append(b, f->sql.p, f->sql.len);
  return rc ? rc : append_str(b, "])");
}

/* A global view: one Parquet scan of the partitions overlapping the
 * session's range, with every column the view shows stored in them (the
 * process columns too: no join), and a filter on time for the rows at the
 * edges. Partitions of the older format are read beside (UNION ALL BY
 * NAME: their process columns are NULL). */
static int create_view(tl_session *s, const tl_view_def *v, char *err,
                       size_t errcap) {
  TL_SPAN_FN();
  global_files g;
  memset(&g, 0, sizeof g);
  tl_bytes_init(&g.cur.sql, (size_t)64 << 20);
  tl_bytes_init(&g.old.sql, (size_t)64 << 20);
  g.cur.data = g.old.data = s->l->data;
  tl_bytes sql;
  tl_bytes_init(&sql, (size_t)160 << 20);
  char head[1024], empty[128], filter[256];
  int rc = tl_catalog_list_partitions(s->l->cat, v->name, TL_INSTANCE_GLOBAL,
                                      s->begin, s->end, add_global_file, &g);
  if (rc) {
    rc =
        tl__lake_fail(err, errcap, "catalog: %s", tl_catalog_errmsg(s->l->cat));
    goto out;
  }
  s->files += g.cur.n + g.old.n;
  snprintf(empty, sizeof empty, "_empty_%s", v->name);
  if (g.cur.n == 0) { /* the shape of a partition, for what is missing */
    char create[2048];
    snprintf(create, sizeof create, "CREATE TEMP TABLE %s (%s)", empty,
             v->columns);
    if ((rc = tl__duck_exec(s->c, create, err, errcap)))
      goto out;
  }
  range_filter(s, "time", filter, sizeof filter);
  snprintf(head, sizeof head,
           "CREATE TEMP VIEW %s AS SELECT process_id, stream_id, block_id, "
           "insert_time, exe, username, computer, time, target, %s, "
           "[]::STRUCT(key VARCHAR, value VARCHAR)[] AS properties, "
           "process_properties FROM ",
           v->name,
           v == &tl__views[TL_VIEW_LOG_ENTRIES] ? "level, msg"
                                                : "name, unit, value");
  rc = append_str(&sql, head);
  if (!rc && g.old.n)
    rc = append_str(&sql, "(SELECT * FROM ");
  if (!rc)
    rc = g.cur.n ? append_scan(&sql, &g.cur) : append_str(&sql, empty);
  if (!rc && g.old.n) {
    rc = append_str(&sql, " UNION ALL BY NAME SELECT * FROM ");
    if (!rc)
      rc = append_scan(&sql, &g.old);
    if (!rc)
      rc = append_str(&sql, ")");
  }
  if (!rc)
    rc = append_str(&sql, " ");
  if (!rc)
    rc = tl_bytes_append(&sql, filter, strlen(filter) + 1); /* with NUL */
  if (rc) {
    rc = tl__lake_fail(err, errcap, "out of memory");
    goto out;
  }
  rc = tl__duck_exec(s->c, (const char *)sql.p, err, errcap);
out:
  tl_bytes_free(&sql);
  tl_bytes_free(&g.cur.sql);
  tl_bytes_free(&g.old.sql);
  return rc;
}

/* A per-instance view (thread_spans of a stream, async_events of a
 * process): materialized just in time, then a temp view over its partitions
 * overlapping the session's range. */
static int create_instance_view(tl_session *s, int view, const char *instance,
                                const char *name, char *err, size_t errcap) {
  TL_SPAN_FN();
  const tl_view_def *v = &tl__views[view];
  int rc = tl__lake_materialize_view(s->l, view, instance, tl_wall_ns(), false,
                                     NULL, err, errcap);
  if (rc)
    return rc;
  file_list f;
  memset(&f, 0, sizeof f);
  tl_bytes_init(&f.sql, (size_t)64 << 20);
  f.data = s->l->data;
  rc = tl_catalog_list_partitions(s->l->cat, v->name, instance, s->begin,
                                  s->end, add_file, &f);
  if (rc) {
    tl_bytes_free(&f.sql);
    return tl__lake_fail(err, errcap, "catalog: %s",
                         tl_catalog_errmsg(s->l->cat));
  }
  s->files += f.n;
  size_t need = f.sql.len + 4096;
  char *sql = malloc(need);
  if (!sql) {
    tl_bytes_free(&f.sql);
    return tl__lake_fail(err, errcap, "out of memory");
  }
  char filter[256] = "", src[256];
  if (view == TL_VIEW_THREAD_SPANS) { /* spans overlapping the range */
    char b[64], e[64];
    ts_literal(s->begin, b, sizeof b);
    ts_literal(s->end, e, sizeof e);
    if (s->begin != INT64_MIN && s->end != INT64_MAX)
      snprintf(filter, sizeof filter, "WHERE \"begin\" < %s AND \"end\" >= %s",
               e, b);
    else if (s->end != INT64_MAX)
      snprintf(filter, sizeof filter, "WHERE \"begin\" < %s", e);
    else if (s->begin != INT64_MIN)
      snprintf(filter, sizeof filter, "WHERE \"end\" >= %s", b);
  } else {
    range_filter(s, "time", filter, sizeof filter);
  }
  if (f.n == 0) {
    snprintf(src, sizeof src, "_empty_%s", name);
    snprintf(sql, need, "CREATE TEMP TABLE %s (%s)", src, v->columns);
    if ((rc = tl__duck_exec(s->c, sql, err, errcap)))
      goto out;
  }
  snprintf(sql, need, "CREATE TEMP VIEW %s AS SELECT * FROM %s%.*s%s %s", name,
           f.n ? "read_parquet([" : src, (int)f.sql.len,
           f.n ? (const char *)f.sql.p : "", f.n ? "])" : "", filter);
  rc = tl__duck_exec(s->c, sql, err, errcap);
out:
  free(sql);
  tl_bytes_free(&f.sql);
  return rc;
}

/* Skips a quoted string or identifier starting at p[0] (the quote). */
static const char *skip_quoted(const char *p) {
  char q = *p++;
  while (*p) {
    if (*p == q) {
      if (p[1] == q) {
        p += 2;
        continue;
      }
      return p + 1;
    }
    p++;
  }
  return p;
}

static const char *skip_space(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* Reads a string literal into out ('' inside is a quote); returns what
 * follows it and the spaces after, or NULL. */
static const char *read_literal(const char *p, char *out, size_t cap) {
  p = skip_space(p);
  if (*p != '\'')
    return NULL;
  size_t n = 0;
  for (p++; *p; p++) {
    if (*p == '\'') {
      if (p[1] != '\'')
        break;
      p++;
    }
    if (n + 1 < cap)
      out[n++] = *p;
  }
  if (*p != '\'')
    return NULL;
  out[n] = 0;
  return skip_space(p + 1);
}

static bool ident_char(char c) {
  return isalnum((unsigned char)c) || c == '_';
}

/* Replaces each view_instance('view', 'id') of the query with a relation
 * holding that instance, creating the session view first. */
static int rewrite_instances(tl_session *s, const char *sql, tl_bytes *out,
                             char *err, size_t errcap) {
  static const char fn[] = "view_instance";
  const size_t fnlen = sizeof fn - 1;
  const char *p = sql, *copied = sql;
  while (*p) {
    if (*p == '\'' || *p == '"') {
      p = skip_quoted(p);
      continue;
    }
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n')
        p++;
      continue;
    }
    if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      p = e ? e + 2 : p + strlen(p);
      continue;
    }
    if ((p > sql && ident_char(p[-1])) || strncasecmp(p, fn, fnlen) ||
        ident_char(p[fnlen])) {
      p++;
      continue;
    }
    const char *q = skip_space(p + fnlen);
    if (*q != '(') {
      p = q;
      continue;
    }
    char view[64], inst[128];
    q = read_literal(q + 1, view, sizeof view);
    q = q && *q == ',' ? read_literal(q + 1, inst, sizeof inst) : NULL;
    if (!q || *q != ')')
      return tl__lake_fail(err, errcap,
                           "view_instance takes two string literals: "
                           "view_instance('thread_spans', '<stream id>') or "
                           "view_instance('async_events' | 'log_entries' | "
                           "'measures', '<process id>')");
    uint8_t id[16];
    if (tl_uuid_parse(inst, id))
      return tl__lake_fail(err, errcap,
                           "view_instance: '%s' is not a stream or process id",
                           inst);
    char canon[37], name[192];
    tl_uuid_format(id, canon);
    int rc = 0;
    if (!strcmp(view, "thread_spans") || !strcmp(view, "async_events")) {
      size_t k = (size_t)snprintf(name, sizeof name, "vi_%s_", view);
      for (const char *c = canon; *c && k + 1 < sizeof name; c++)
        name[k++] = *c == '-' ? '_' : *c;
      name[k] = 0;
      char probe[300];
      snprintf(probe, sizeof probe,
               "SELECT 1 FROM duckdb_views() WHERE view_name = '%s'", name);
      duckdb_result r;
      bool exists = duckdb_query(s->c, probe, &r) == DuckDBSuccess &&
                    duckdb_row_count(&r) > 0;
      duckdb_destroy_result(&r);
      int v = view[0] == 't' ? TL_VIEW_THREAD_SPANS : TL_VIEW_ASYNC_EVENTS;
      if (!exists)
        rc = create_instance_view(s, v, canon, name, err, errcap);
    } else if (!strcmp(view, "log_entries") || !strcmp(view, "measures")) {
      snprintf(name, sizeof name, "(SELECT * FROM %s WHERE process_id = '%s')",
               view, canon);
    } else {
      return tl__lake_fail(err, errcap,
                           "view_instance: unknown view '%s' (thread_spans, "
                           "async_events, log_entries, measures)",
                           view);
    }
    if (rc)
      return rc;
    if (tl_bytes_append(out, copied, (size_t)(p - copied)) ||
        tl_bytes_append(out, name, strlen(name)))
      return tl__lake_fail(err, errcap, "query too long");
    p = copied = q + 1;
  }
  if (tl_bytes_append(out, copied, strlen(copied) + 1))
    return tl__lake_fail(err, errcap, "query too long");
  return 0;
}

/* The Flight SQL service's query log: one JSON log line per query (target
 * tracelake::query, see src/flightsql/qlog.c), as columns. */
static const char query_log_view[] =
    "CREATE TEMP VIEW query_log AS SELECT "
    "j->>'query_id' AS query_id, "
    "CAST(j->>'root_span_id' AS BIGINT) AS root_span_id, "
    "make_timestamp_ns(CAST(j->>'begin_ns' AS BIGINT)) AS begin_time, "
    "make_timestamp_ns(CAST(j->>'end_ns' AS BIGINT)) AS end_time, "
    "j->>'user' AS \"user\", j->>'client' AS client, j->>'sql' AS sql, "
    "j->>'fingerprint' AS fingerprint, "
    "make_timestamp_ns(CAST(j->>'range_begin' AS BIGINT)) AS range_begin, "
    "make_timestamp_ns(CAST(j->>'range_end' AS BIGINT)) AS range_end, "
    "NULLIF(CAST(j->>'limit' AS BIGINT), -1) AS row_limit, "
    "CAST(j->>'prepared' AS BOOLEAN) AS prepared, "
    "CAST(j->>'context_ns' AS BIGINT) AS context_ns, "
    "CAST(j->>'planning_ns' AS BIGINT) AS planning_ns, "
    "CAST(j->>'execution_ns' AS BIGINT) AS execution_ns, "
    "NULLIF(CAST(j->>'setup_ns' AS BIGINT), -1) AS setup_ns, "
    "CAST(j->>'total_ns' AS BIGINT) AS total_ns, "
    "NULLIF(CAST(j->>'first_batch_ns' AS BIGINT), -1) AS first_batch_ns, "
    "CAST(j->>'rows' AS BIGINT) AS \"rows\", "
    "CAST(j->>'bytes' AS BIGINT) AS bytes, "
    "CAST(j->>'batches' AS BIGINT) AS batches, "
    "j->>'status' AS status, j->>'error' AS error, process_id "
    "FROM (SELECT process_id, CAST(msg AS JSON) AS j FROM log_entries "
    "WHERE target = 'tracelake::query' AND starts_with(msg, '{'));";

/* What a statement may read, so that a session builds only that: a
 * `SELECT 1` needs no catalog work at all. The SQL text is searched for the
 * views' names anywhere (strings and comments included, so that table
 * functions naming a view by string are covered); statements that list the
 * catalog get everything. */
enum {
  NEED_PROCESSES = 1,
  NEED_STREAMS = 2,
  NEED_BLOCKS = 4,
  NEED_LOG_ENTRIES = 8,
  NEED_MEASURES = 16,
  NEED_QUERY_LOG = 32,
  NEED_ALL = 63
};

static bool mentions(const char *sql, const char *word) {
  size_t n = strlen(word);
  for (const char *p = sql; (p = strcasestr(p, word)); p += n) {
    bool before = p > sql && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
    bool after = isalnum((unsigned char)p[n]) || p[n] == '_';
    if (!before && !after)
      return true;
  }
  return false;
}

static unsigned views_needed(const char *sql) {
  if (!sql)
    return NEED_ALL;
  static const char *const catalog_words[] = {"information_schema",
                                              "pg_catalog",
                                              "sqlite_master",
                                              "show",
                                              "describe",
                                              "summarize",
                                              "pragma",
                                              "duckdb_tables",
                                              "duckdb_views",
                                              "duckdb_columns",
                                              "duckdb_dependencies",
                                              "duckdb_constraints",
                                              "query_table",
                                              "getvariable"};
  for (size_t i = 0; i < sizeof catalog_words / sizeof *catalog_words; i++)
    if (strcasestr(sql, catalog_words[i]))
      return NEED_ALL;
  unsigned need = 0;
  if (mentions(sql, "query_log"))
    need |= NEED_QUERY_LOG | NEED_LOG_ENTRIES;
  if (mentions(sql, "log_entries"))
    need |= NEED_LOG_ENTRIES;
  if (mentions(sql, "measures"))
    need |= NEED_MEASURES;
  if (mentions(sql, "processes"))
    need |= NEED_PROCESSES;
  if (mentions(sql, "streams"))
    need |= NEED_STREAMS;
  if (mentions(sql, "blocks"))
    need |= NEED_BLOCKS;
  /* log_entries and measures hold their process columns: they need no
   * processes view. */
  return need;
}

int tl_session_open(tl_session **out, tl_lake *l, int64_t begin, int64_t end,
                    char *err, size_t errcap) {
  return tl_session_open_for(out, l, begin, end, NULL, err, errcap);
}

int tl_session_open_for(tl_session **out, tl_lake *l, int64_t begin,
                        int64_t end, const char *sql_hint, char *err,
                        size_t errcap) {
  TL_SPAN_FN();
  err[0] = 0;
  unsigned need = views_needed(sql_hint);
  /* Read-your-writes: what was acknowledged before now is materialized,
   * for the global views the statement reads. */
  int64_t now = tl_wall_ns();
  int rc = 0;
  if (need & NEED_LOG_ENTRIES)
    rc = tl__lake_materialize_view(l, TL_VIEW_LOG_ENTRIES, TL_INSTANCE_GLOBAL,
                                   now, false, NULL, err, errcap);
  if (rc == 0 && (need & NEED_MEASURES))
    rc = tl__lake_materialize_view(l, TL_VIEW_MEASURES, TL_INSTANCE_GLOBAL, now,
                                   false, NULL, err, errcap);
  if (rc)
    return rc;
  tl_session *s = calloc(1, sizeof *s);
  if (!s)
    return tl__lake_fail(err, errcap, "out of memory");
  s->l = l;
  s->begin = begin;
  s->end = end;
  if (duckdb_connect(l->db, &s->c) == DuckDBError) {
    free(s);
    return tl__lake_fail(err, errcap, "duckdb: cannot connect");
  }
  /* The catalog's tables a statement may read: loaded into temp tables,
   * then shown as views (%s: their properties as a map). */
  static const struct {
    unsigned need;
    const char *table, *columns;
    int (*load)(tl_session *s, duckdb_appender a);
    const char *view;
  } tables[] = {
      {NEED_PROCESSES, "_processes",
       "process_id VARCHAR, exe VARCHAR, username VARCHAR, realname VARCHAR, "
       "computer VARCHAR, distro VARCHAR, cpu_brand VARCHAR, tsc_frequency "
       "BIGINT, start_time TIMESTAMP_NS, start_ticks BIGINT, insert_time "
       "TIMESTAMP_NS, parent_process_id VARCHAR, properties_json VARCHAR, "
       "last_update_time TIMESTAMP_NS",
       load_processes,
       "CREATE TEMP VIEW processes AS SELECT process_id, exe, username, "
       "realname, computer, distro, cpu_brand, tsc_frequency, start_time, "
       "start_ticks, insert_time, parent_process_id, %s AS properties, "
       "last_update_time FROM _processes;"},
      {NEED_STREAMS, "_streams",
       "stream_id VARCHAR, process_id VARCHAR, tags_json VARCHAR, "
       "properties_json VARCHAR, insert_time TIMESTAMP_NS, last_update_time "
       "TIMESTAMP_NS",
       load_streams,
       "CREATE TEMP VIEW streams AS SELECT stream_id, process_id, "
       "json_transform(tags_json, '[\"VARCHAR\"]') AS tags, %s AS "
       "properties, insert_time, last_update_time FROM _streams;"},
      {NEED_BLOCKS, "_blocks",
       "block_id VARCHAR, stream_id VARCHAR, process_id VARCHAR, begin_time "
       "TIMESTAMP_NS, begin_ticks BIGINT, end_time TIMESTAMP_NS, end_ticks "
       "BIGINT, nb_objects INTEGER, payload_size BIGINT, insert_time "
       "TIMESTAMP_NS",
       load_blocks, "CREATE TEMP VIEW blocks AS SELECT * FROM _blocks;"},
  };
  static const char *props = "map_entries(json_transform(properties_json, "
                             "'\"MAP(VARCHAR, VARCHAR)\"'))";
  char sql[4096];
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    if (!(need & tables[i].need))
      continue;
    rc = load_table(s, tables[i].table, tables[i].columns, tables[i].load, err,
                    errcap);
    if (rc == 0) {
      snprintf(sql, sizeof sql, tables[i].view, props); /* blocks: unused */
      rc = tl__duck_exec(s->c, sql, err, errcap);
    }
    if (rc)
      goto fail;
  }
  if ((need & NEED_LOG_ENTRIES) &&
      (rc = create_view(s, &tl__views[TL_VIEW_LOG_ENTRIES], err, errcap)))
    goto fail;
  if ((need & NEED_MEASURES) &&
      (rc = create_view(s, &tl__views[TL_VIEW_MEASURES], err, errcap)))
    goto fail;
  if ((need & NEED_QUERY_LOG) &&
      (rc = tl__duck_exec(s->c, query_log_view, err, errcap)))
    goto fail;
  *out = s;
  return 0;
fail:
  tl_session_close(s);
  return rc;
}

void tl_session_close(tl_session *s) {
  if (!s)
    return;
  duckdb_disconnect(&s->c);
  free(s);
}

uint64_t tl_session_files(const tl_session *s) {
  return s->files;
}

/* ---- Running a query ----------------------------------------------------- */

/* Types the C API cannot render as text by itself: lists, structs, maps,
 * and the like. */
static bool nested(duckdb_type t) {
  switch (t) {
  case DUCKDB_TYPE_LIST:
  case DUCKDB_TYPE_STRUCT:
  case DUCKDB_TYPE_MAP:
  case DUCKDB_TYPE_ARRAY:
  case DUCKDB_TYPE_UNION:
  case DUCKDB_TYPE_ENUM:
  case DUCKDB_TYPE_INVALID:
  /* duckdb_value_varchar gives NULL for these: DuckDB's cast prints them. */
  case DUCKDB_TYPE_TIMESTAMP_NS:
  case DUCKDB_TYPE_TIMESTAMP_MS:
  case DUCKDB_TYPE_TIMESTAMP_S:
  case DUCKDB_TYPE_TIMESTAMP_TZ:
  case DUCKDB_TYPE_TIME_TZ:
  case DUCKDB_TYPE_UHUGEINT:
  case DUCKDB_TYPE_BIT:
    return true;
  default:
    return false;
  }
}

static bool read_only(duckdb_statement_type t) {
  return t == DUCKDB_STATEMENT_TYPE_SELECT ||
         t == DUCKDB_STATEMENT_TYPE_EXPLAIN;
}

static bool numeric(duckdb_type t) {
  switch (t) {
  case DUCKDB_TYPE_TINYINT:
  case DUCKDB_TYPE_SMALLINT:
  case DUCKDB_TYPE_INTEGER:
  case DUCKDB_TYPE_BIGINT:
  case DUCKDB_TYPE_UTINYINT:
  case DUCKDB_TYPE_USMALLINT:
  case DUCKDB_TYPE_UINTEGER:
  case DUCKDB_TYPE_UBIGINT:
  case DUCKDB_TYPE_FLOAT:
  case DUCKDB_TYPE_DOUBLE:
  case DUCKDB_TYPE_HUGEINT:
  case DUCKDB_TYPE_DECIMAL:
    return true;
  default:
    return false;
  }
}

/* Prints a result; `types` are the query's own column types (the result
 * may hold them cast to text). */
static void print_result(duckdb_result *r, const duckdb_type *types, int format,
                         FILE *o) {
  idx_t ncols = duckdb_column_count(r), nrows = duckdb_row_count(r);
  char ***cells = calloc(nrows ? nrows : 1, sizeof *cells);
  size_t *w = calloc(ncols ? ncols : 1, sizeof *w);
  for (idx_t c = 0; c < ncols; c++)
    w[c] = strlen(duckdb_column_name(r, c));
  for (idx_t i = 0; i < nrows && cells; i++) {
    cells[i] = calloc(ncols ? ncols : 1, sizeof **cells);
    for (idx_t c = 0; c < ncols && cells[i]; c++) {
      cells[i][c] =
          duckdb_value_is_null(r, c, i) ? NULL : duckdb_value_varchar(r, c, i);
      size_t len = cells[i][c] ? strlen(cells[i][c]) : 4;
      if (len > w[c])
        w[c] = len;
    }
  }
  if (format == TL_FORMAT_CSV) {
    for (idx_t c = 0; c < ncols; c++)
      fprintf(o, "%s%s", c ? "," : "", duckdb_column_name(r, c));
    fputc('\n', o);
    for (idx_t i = 0; i < nrows; i++) {
      for (idx_t c = 0; c < ncols; c++) {
        if (c)
          fputc(',', o);
        const char *v = cells[i] ? cells[i][c] : NULL;
        if (v)
          tl_fput_csv_field(o, v);
      }
      fputc('\n', o);
    }
  } else if (format == TL_FORMAT_JSON) {
    for (idx_t i = 0; i < nrows; i++) {
      fputc('{', o);
      for (idx_t c = 0; c < ncols; c++) {
        if (c)
          fputc(',', o);
        tl_fput_json_str(o, duckdb_column_name(r, c));
        fputc(':', o);
        const char *v = cells[i] ? cells[i][c] : NULL;
        if (!v)
          fputs("null", o);
        else if (numeric(types[c]) || types[c] == DUCKDB_TYPE_BOOLEAN)
          fputs(v, o);
        else
          tl_fput_json_str(o, v);
      }
      fputs("}\n", o);
    }
  } else {
    for (idx_t c = 0; c < ncols; c++)
      fprintf(o, "%s%-*s", c ? " | " : "", (int)w[c], duckdb_column_name(r, c));
    fputc('\n', o);
    for (idx_t c = 0; c < ncols; c++) {
      fputs(c ? "-+-" : "", o);
      for (size_t k = 0; k < w[c]; k++)
        fputc('-', o);
    }
    fputc('\n', o);
    for (idx_t i = 0; i < nrows; i++) {
      for (idx_t c = 0; c < ncols; c++) {
        const char *v = cells[i] ? cells[i][c] : NULL;
        if (numeric(types[c]))
          fprintf(o, "%s%*s", c ? " | " : "", (int)w[c], v ? v : "NULL");
        else
          fprintf(o, "%s%-*s", c ? " | " : "", (int)w[c], v ? v : "NULL");
      }
      fputc('\n', o);
    }
    fprintf(o, "(%llu row%s)\n", (unsigned long long)nrows,
            nrows == 1 ? "" : "s");
  }
  for (idx_t i = 0; i < nrows && cells; i++) {
    for (idx_t c = 0; c < ncols && cells[i]; c++)
      duckdb_free(cells[i][c]);
    free(cells[i]);
  }
  free(cells);
  free(w);
}

duckdb_connection tl__session_conn(const tl_session *s) {
  return s->c;
}

uint64_t tl__session_bump(tl_session *s) {
  return atomic_fetch_add(&s->statements, 1) + 1;
}

uint64_t tl__session_statements(tl_session *s) {
  return atomic_load(&s->statements);
}

int tl__session_prepare(tl_session *s, const char *user_sql,
                        tl_bytes *rewritten, duckdb_prepared_statement *out,
                        char *err, size_t errcap) {
  duckdb_extracted_statements ex = NULL;
  duckdb_prepared_statement ps = NULL;
  int rc = TL_EINVAL;
  tl__session_bump(s);
  if (rewrite_instances(s, user_sql, rewritten, err, errcap))
    return TL_EINVAL;
  const char *sql = (const char *)rewritten->p;
  idx_t n = duckdb_extract_statements(s->c, sql, &ex);
  if (n == 0) {
    const char *e = duckdb_extract_statements_error(ex);
    snprintf(err, errcap, "%s", e && *e ? e : "empty query");
    goto out;
  }
  if (n > 1) {
    snprintf(err, errcap, "one statement at a time, got %llu",
             (unsigned long long)n);
    goto out;
  }
  if (duckdb_prepare_extracted_statement(s->c, ex, 0, &ps) == DuckDBError) {
    snprintf(err, errcap, "%s", duckdb_prepare_error(ps));
    goto out;
  }
  if (!read_only(duckdb_prepared_statement_type(ps))) {
    snprintf(err, errcap,
             "only read-only queries (SELECT, WITH, EXPLAIN) are allowed: "
             "tracelake's SQL surface is read-only");
    goto out;
  }
  *out = ps;
  ps = NULL;
  rc = 0;
out:
  duckdb_destroy_prepare(&ps);
  duckdb_destroy_extracted(&ex);
  return rc;
}

int tl_session_print(tl_session *s, const char *user_sql, int format, FILE *out,
                     char *err, size_t errcap) {
  duckdb_prepared_statement ps = NULL;
  int rc = TL_EINVAL;
  tl_bytes rewritten;
  tl_bytes_init(&rewritten, (size_t)16 << 20);
  if (tl__session_prepare(s, user_sql, &rewritten, &ps, err, errcap)) {
    tl_bytes_free(&rewritten);
    return TL_EINVAL;
  }
  const char *sql = (const char *)rewritten.p;
  idx_t ncols = duckdb_prepared_statement_column_count(ps);
  duckdb_type *types = calloc(ncols ? ncols : 1, sizeof *types);
  bool any_nested = false;
  for (idx_t i = 0; i < ncols && types; i++) {
    types[i] = duckdb_prepared_statement_column_type(ps, i);
    any_nested |= nested(types[i]);
  }
  if (!types) {
    snprintf(err, errcap, "out of memory");
    goto out;
  }
  /* Nested values are rendered by DuckDB itself, cast to text. */
  if (any_nested &&
      duckdb_prepared_statement_type(ps) == DUCKDB_STATEMENT_TYPE_SELECT) {
    size_t len = strlen(sql);
    while (len && (sql[len - 1] == ';' || sql[len - 1] == ' ' ||
                   sql[len - 1] == '\n' || sql[len - 1] == '\t'))
      len--;
    size_t need = len + 64;
    char *wrapped = malloc(need);
    duckdb_prepared_statement ws = NULL;
    if (wrapped) {
      snprintf(wrapped, need, "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM (%.*s)",
               (int)len, sql);
      /* The wrapper must still be one read-only statement, whatever the
       * query's text did to the parentheses. */
      if (duckdb_prepare(s->c, wrapped, &ws) == DuckDBSuccess &&
          duckdb_prepared_statement_type(ws) == DUCKDB_STATEMENT_TYPE_SELECT) {
        duckdb_destroy_prepare(&ps);
        ps = ws;
      } else {
        duckdb_destroy_prepare(&ws);
      }
      free(wrapped);
    }
  }
  duckdb_result r;
  if (duckdb_execute_prepared(ps, &r) == DuckDBError) {
    snprintf(err, errcap, "%s", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    free(types);
    goto out;
  }
  print_result(&r, types, format, out);
  duckdb_destroy_result(&r);
  free(types);
  rc = 0;
out:
  duckdb_destroy_prepare(&ps);
  tl_bytes_free(&rewritten);
  return rc;
}

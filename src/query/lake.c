/* lake.c - materialization of blocks into Parquet partitions, and the
 * locked-down DuckDB engine that writes and reads them.
 *
 * One in-memory DuckDB database per lake. It may read and write files only
 * under <data>/views/ (allowed_directories, external access disabled, the
 * configuration locked), so even SQL that slips past the statement filter
 * of session.c cannot touch other server files. */
#define TL_TARGET "tracelake::lake"
#include "tracelake/tracelake.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duckdb.h"
#include "lake_impl.h"

#define BATCH_BLOCKS 1000
#define MAX_BLOB ((size_t)TL_WIRE_MAX_PAYLOAD + 4096)

__attribute__((format(printf, 3, 4))) int
tl__lake_fail(char *err, size_t errcap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
  return TL_EIO;
}

int tl__duck_exec(duckdb_connection c, const char *sql, char *err,
                  size_t errcap) {
  duckdb_result r;
  int rc = 0;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    snprintf(err, errcap, "%s", duckdb_result_error(&r));
    rc = TL_EIO;
  }
  duckdb_destroy_result(&r);
  return rc;
}

int tl_lake_open(tl_lake **out, tl_catalog *cat, tl_store *store, char *err,
                 size_t errcap) {
  tl_lake *l = calloc(1, sizeof *l);
  if (!l)
    return tl__lake_fail(err, errcap, "out of memory");
  l->cat = cat;
  l->store = store;
  if (strlen(tl_store_root(store)) >= sizeof l->data - 64) {
    free(l);
    return tl__lake_fail(err, errcap, "data directory path too long");
  }
  snprintf(l->data, sizeof l->data, "%s", tl_store_root(store));
  snprintf(l->views, sizeof l->views, "%s/views", l->data);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s/.duckdb-tmp", l->views);
  int rc;
  if (tl_mkdirs(tmp)) {
    free(l);
    return tl__lake_fail(err, errcap, "cannot create %s", tmp);
  }
  pthread_mutex_init(&l->mu, NULL);
  duckdb_config cfg;
  duckdb_create_config(&cfg);
  duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
  duckdb_set_config(cfg, "autoload_known_extensions", "false");
  char *open_err = NULL;
  if (duckdb_open_ext(NULL, &l->db, cfg, &open_err) == DuckDBError) {
    tl__lake_fail(err, errcap, "duckdb: %s", open_err ? open_err : "?");
    duckdb_free(open_err);
    duckdb_destroy_config(&cfg);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return TL_EIO;
  }
  duckdb_destroy_config(&cfg);
  /* Lock the engine down before anyone can send it SQL: files only under
   * views/, no extensions, no way back. */
  duckdb_connection c;
  duckdb_connect(l->db, &c);
  char sql[9000];
  snprintf(sql, sizeof sql,
           "SET temp_directory='%s';"
           "SET GLOBAL TimeZone='UTC';"
           "SET allowed_directories=['%s/'];"
           "SET enable_external_access=false;"
           "SET lock_configuration=true;",
           tmp, l->views);
  rc = tl__duck_exec(c, sql, err, errcap);
  duckdb_disconnect(&c);
  if (rc) {
    tl_lake_close(l);
    return rc;
  }
  *out = l;
  return 0;
}

void tl_lake_close(tl_lake *l) {
  if (!l)
    return;
  duckdb_close(&l->db);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* ---- Column writer --------------------------------------------------------
 * Rows go into DuckDB data chunks (2048 rows), appended to a temp table. */

typedef struct writer {
  duckdb_appender app;
  duckdb_data_chunk chunk;
  duckdb_logical_type types[16];
  int ncols;
  idx_t row, cap;
  uint64_t rows;
} writer;

static int writer_open(writer *w, duckdb_connection c, const char *table,
                       const duckdb_type *types, int ncols) {
  memset(w, 0, sizeof *w);
  w->ncols = ncols;
  for (int i = 0; i < ncols; i++)
    w->types[i] = duckdb_create_logical_type(types[i]);
  w->chunk = duckdb_create_data_chunk(w->types, (idx_t)ncols);
  w->cap = duckdb_vector_size();
  return duckdb_appender_create(c, NULL, table, &w->app) == DuckDBError ? TL_EIO
                                                                        : 0;
}

static void *col(writer *w, int i) {
  return duckdb_vector_get_data(duckdb_data_chunk_get_vector(w->chunk, i));
}

/* Strings from the wire are UTF-8 by convention only; DuckDB insists. Bytes
 * that are not valid UTF-8 (and NULs) become '?'. */
static void put_str(writer *w, int i, const void *p, size_t n) {
  duckdb_vector v = duckdb_data_chunk_get_vector(w->chunk, i);
  if (tl_utf8_valid(p, n)) {
    duckdb_vector_assign_string_element_len(v, w->row, (const char *)p, n);
    return;
  }
  char *clean = malloc(n ? n : 1);
  if (!clean)
    return;
  const uint8_t *b = p;
  for (size_t k = 0; k < n;) {
    size_t len = (b[k] & 0xe0) == 0xc0   ? 2
                 : (b[k] & 0xf0) == 0xe0 ? 3
                 : (b[k] & 0xf8) == 0xf0 ? 4
                                         : 1;
    if (len <= n - k && tl_utf8_valid(b + k, len)) {
      memcpy(clean + k, b + k, len);
    } else {
      len = 1;
      clean[k] = '?';
    }
    k += len;
  }
  duckdb_vector_assign_string_element_len(v, w->row, clean, n);
  free(clean);
}

static void put_i64(writer *w, int i, int64_t v) {
  ((int64_t *)col(w, i))[w->row] = v;
}

static void put_i32(writer *w, int i, int32_t v) {
  ((int32_t *)col(w, i))[w->row] = v;
}

static void put_f64(writer *w, int i, double v) {
  ((double *)col(w, i))[w->row] = v;
}

static int flush_chunk(writer *w) {
  if (!w->row)
    return 0;
  duckdb_data_chunk_set_size(w->chunk, w->row);
  int rc =
      duckdb_append_data_chunk(w->app, w->chunk) == DuckDBError ? TL_EIO : 0;
  duckdb_data_chunk_reset(w->chunk);
  w->row = 0;
  return rc;
}

static int end_row(writer *w) {
  w->rows++;
  return ++w->row == w->cap ? flush_chunk(w) : 0;
}

static int writer_close(writer *w, char *err, size_t errcap) {
  int rc = flush_chunk(w);
  if (duckdb_appender_close(w->app) == DuckDBError)
    rc = TL_EIO;
  if (rc)
    tl__lake_fail(err, errcap, "duckdb: appending rows failed: %s",
                  duckdb_appender_error(w->app));
  duckdb_appender_destroy(&w->app);
  duckdb_destroy_data_chunk(&w->chunk);
  for (int i = 0; i < w->ncols; i++)
    duckdb_destroy_logical_type(&w->types[i]);
  return rc;
}

/* ---- Views ------------------------------------------------------------ */

/* Columns stored in a view's partitions (the session's views add process
 * columns by joining `processes`). */
const tl_view_def tl__views[TL_NVIEWS] = {
    {"log_entries",
     "log",
     TL_SCOPE_ALL,
     "time",
     "process_id VARCHAR, stream_id VARCHAR, block_id VARCHAR, "
     "insert_time TIMESTAMP_NS, time TIMESTAMP_NS, target VARCHAR, "
     "level INTEGER, msg VARCHAR",
     8,
     {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR,
      DUCKDB_TYPE_TIMESTAMP_NS, DUCKDB_TYPE_TIMESTAMP_NS, DUCKDB_TYPE_VARCHAR,
      DUCKDB_TYPE_INTEGER, DUCKDB_TYPE_VARCHAR}},
    {"measures",
     "metrics",
     TL_SCOPE_ALL,
     "time",
     "process_id VARCHAR, stream_id VARCHAR, block_id VARCHAR, "
     "insert_time TIMESTAMP_NS, time TIMESTAMP_NS, target VARCHAR, "
     "name VARCHAR, unit VARCHAR, value DOUBLE",
     9,
     {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR,
      DUCKDB_TYPE_TIMESTAMP_NS, DUCKDB_TYPE_TIMESTAMP_NS, DUCKDB_TYPE_VARCHAR,
      DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_DOUBLE}},
    {"async_events",
     "cpu",
     TL_SCOPE_PROCESS,
     "time",
     "stream_id VARCHAR, block_id VARCHAR, time TIMESTAMP_NS, "
     "event_type VARCHAR, span_id BIGINT, parent_span_id BIGINT, "
     "depth INTEGER, name VARCHAR, filename VARCHAR, target VARCHAR, "
     "line INTEGER",
     11,
     {DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_TIMESTAMP_NS,
      DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT,
      DUCKDB_TYPE_INTEGER, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR,
      DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_INTEGER}},
    {"thread_spans",
     "cpu",
     TL_SCOPE_STREAM,
     "\"begin\"",
     "id BIGINT, parent BIGINT, depth INTEGER, hash BIGINT, "
     "\"begin\" TIMESTAMP_NS, \"end\" TIMESTAMP_NS, duration BIGINT, "
     "name VARCHAR, target VARCHAR, filename VARCHAR, line INTEGER",
     11,
     {DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_INTEGER,
      DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_TIMESTAMP_NS, DUCKDB_TYPE_TIMESTAMP_NS,
      DUCKDB_TYPE_BIGINT, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR,
      DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_INTEGER}},
};

/* ---- Materialization ------------------------------------------------------
 */

typedef struct freq_entry {
  uint8_t id[16];
  uint64_t freq;
} freq_entry;

/* A thread span open in the block being decoded. */
typedef struct open_span {
  const tl_wire_callsite *cs;
  int64_t begin;
  int64_t id;
} open_span;

#define MAX_SPAN_DEPTH 256

typedef struct mat {
  tl_lake *l;
  const tl_view_def *v;
  int view;
  writer w;
  freq_entry *freqs;
  size_t nfreqs, capfreqs;
  /* the block being decoded */
  char pid[37], sid[37], bid[37];
  int64_t insert_time;
  const tl_wire_block_header *h;
  uint64_t freq;
  int64_t min_time, max_time;
  int rc;
  /* thread_spans: the open spans of the block, and span ids */
  open_span stack[MAX_SPAN_DEPTH];
  int depth;
  uint32_t remaining; /* events of the block not yet seen */
  uint64_t block_hash;
  uint32_t local;
} mat;

static int add_freq(void *ctx, const tl_catalog_process_row *r) {
  mat *m = ctx;
  if (m->nfreqs == m->capfreqs) {
    size_t cap = m->capfreqs ? m->capfreqs * 2 : 64;
    freq_entry *f = realloc(m->freqs, cap * sizeof *f);
    if (!f)
      return TL_ENOMEM;
    m->freqs = f;
    m->capfreqs = cap;
  }
  memcpy(m->freqs[m->nfreqs].id, r->process_id, 16);
  m->freqs[m->nfreqs++].freq = r->tsc_frequency ? r->tsc_frequency : 1;
  return 0;
}

static uint64_t freq_of(mat *m, const uint8_t pid[16]) {
  for (size_t i = 0; i < m->nfreqs; i++)
    if (!memcmp(m->freqs[i].id, pid, 16))
      return m->freqs[i].freq;
  return 0;
}

static int64_t event_time(const mat *m, uint64_t ticks) {
  const tl_wire_block_header *h = m->h;
  return h->begin_time + (int64_t)((__int128)(int64_t)(ticks - h->begin_ticks) *
                                   1000000000 / (__int128)m->freq);
}

static void see_time(mat *m, int64_t t) {
  if (t < m->min_time)
    m->min_time = t;
  if (t > m->max_time)
    m->max_time = t;
}

/* log_entries and measures rows. */
static int global_event(mat *m, const tl_wire_event *e) {
  writer *w = &m->w;
  bool is_log = e->type == TL_EV_LOG || e->type == TL_EV_LOGF;
  bool is_metric = e->type == TL_EV_IMETRIC || e->type == TL_EV_FMETRIC;
  if ((m->view == TL_VIEW_LOG_ENTRIES && !is_log) ||
      (m->view == TL_VIEW_MEASURES && !is_metric))
    return 0;
  int64_t t = event_time(m, e->ticks);
  see_time(m, t);
  put_str(w, 0, m->pid, 36);
  put_str(w, 1, m->sid, 36);
  put_str(w, 2, m->bid, 36);
  put_i64(w, 3, m->insert_time);
  put_i64(w, 4, t);
  put_str(w, 5, e->cs->target.p, e->cs->target.n);
  if (is_log) {
    put_i32(w, 6, e->cs->level);
    put_str(w, 7, e->v.msg.p, e->v.msg.n);
  } else {
    put_str(w, 6, e->cs->name.p, e->cs->name.n);
    bool ticks = e->type == TL_EV_IMETRIC && e->cs->unit.n == 5 &&
                 !memcmp(e->cs->unit.p, "ticks", 5);
    if (ticks) { /* durations in ticks are reported in seconds */
      put_str(w, 7, "seconds", 7);
      put_f64(w, 8, (double)e->v.u / (double)m->freq);
    } else {
      put_str(w, 7, e->cs->unit.p, e->cs->unit.n);
      put_f64(w, 8, e->type == TL_EV_IMETRIC ? (double)e->v.u : e->v.f);
    }
  }
  return end_row(w);
}

/* async_events rows: the begin and end events of async spans. */
static int async_event(mat *m, const tl_wire_event *e) {
  if (e->type != TL_EV_ASYNC_BEGIN && e->type != TL_EV_ASYNC_END)
    return 0;
  writer *w = &m->w;
  int64_t t = event_time(m, e->ticks);
  see_time(m, t);
  put_str(w, 0, m->sid, 36);
  put_str(w, 1, m->bid, 36);
  put_i64(w, 2, t);
  if (e->type == TL_EV_ASYNC_BEGIN)
    put_str(w, 3, "begin", 5);
  else
    put_str(w, 3, "end", 3);
  put_i64(w, 4, (int64_t)e->v.async.id);
  put_i64(w, 5, (int64_t)e->v.async.parent);
  put_i32(w, 6, (int32_t)e->v.async.depth);
  put_str(w, 7, e->cs->name.p, e->cs->name.n);
  put_str(w, 8, e->cs->file.p, e->cs->file.n);
  put_str(w, 9, e->cs->target.p, e->cs->target.n);
  put_i32(w, 10, (int32_t)e->cs->line);
  return end_row(w);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* A call site's identity across runs: name, target, file and line. */
static int64_t callsite_hash(const tl_wire_callsite *cs) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv1a(h, cs->name.p, cs->name.n);
  h = fnv1a(h, cs->target.p, cs->target.n);
  h = fnv1a(h, cs->file.p, cs->file.n);
  h = fnv1a(h, &cs->line, sizeof cs->line);
  return (int64_t)(h & INT64_MAX);
}

static int emit_span(mat *m, const tl_wire_callsite *cs, int64_t id,
                     int64_t parent, int depth, int64_t begin, int64_t end) {
  writer *w = &m->w;
  see_time(m, begin);
  see_time(m, end);
  put_i64(w, 0, id);
  put_i64(w, 1, parent);
  put_i32(w, 2, depth);
  put_i64(w, 3, callsite_hash(cs));
  put_i64(w, 4, begin);
  put_i64(w, 5, end);
  put_i64(w, 6, end - begin);
  put_str(w, 7, cs->name.p, cs->name.n);
  put_str(w, 8, cs->target.p, cs->target.n);
  put_str(w, 9, cs->file.p, cs->file.n);
  put_i32(w, 10, (int32_t)cs->line);
  return end_row(w);
}

/* Span ids: unique within a stream, from the block's id and the span's
 * position in it (ids stay stable however blocks are batched). */
static int64_t span_id(mat *m) {
  return (
      int64_t)((m->block_hash ^ (uint64_t)++m->local * 0x9E3779B97F4A7C15ull) &
               INT64_MAX);
}

/* thread_spans rows: begin/end pairs rebuilt with a stack. A span cut by
 * the block's edges is closed there: an end without its begin starts at the
 * block's beginning, a begin without its end ends at the block's end. */
static int span_event(mat *m, const tl_wire_event *e) {
  if (e->type != TL_EV_SPAN_BEGIN && e->type != TL_EV_SPAN_END)
    return 0;
  int64_t t = event_time(m, e->ticks);
  if (e->type == TL_EV_SPAN_BEGIN) {
    if (m->depth == MAX_SPAN_DEPTH)
      return 0; /* deeper than any real call tree: ignored */
    open_span *o = &m->stack[m->depth++];
    o->cs = e->cs;
    o->begin = t;
    o->id = span_id(m);
    return 0;
  }
  if (m->depth > 0 && m->stack[m->depth - 1].cs == e->cs) {
    open_span *o = &m->stack[--m->depth];
    int64_t parent = m->depth ? m->stack[m->depth - 1].id : 0;
    return emit_span(m, o->cs, o->id, parent, m->depth, o->begin, t);
  }
  /* Begun in an earlier block: it encloses everything still open here. */
  return emit_span(m, e->cs, span_id(m), 0, 0, m->h->begin_time, t);
}

static int close_open_spans(mat *m) {
  int rc = 0;
  while (m->depth > 0 && !rc) {
    open_span *o = &m->stack[--m->depth];
    int64_t parent = m->depth ? m->stack[m->depth - 1].id : 0;
    rc = emit_span(m, o->cs, o->id, parent, m->depth, o->begin, m->h->end_time);
  }
  return rc;
}

static int on_event(void *ctx, const tl_wire_event *e) {
  mat *m = ctx;
  switch (m->view) {
  case TL_VIEW_ASYNC_EVENTS:
    return async_event(m, e);
  case TL_VIEW_THREAD_SPANS: {
    int rc = span_event(m, e);
    /* After the block's last event, while its call sites are still alive. */
    if (!rc && --m->remaining == 0)
      rc = close_open_spans(m);
    return rc;
  }
  default:
    return global_event(m, e);
  }
}

static int on_header(void *ctx, const tl_wire_block_header *h) {
  mat *m = ctx;
  m->h = h;
  m->depth = 0;
  m->remaining = h->nb_objects;
  m->local = 0;
  m->block_hash = fnv1a(0xcbf29ce484222325ull, h->block_id, 16);
  return 0;
}

/* Materializes one batch of blocks of view `v`. *more tells whether a full
 * batch was found (call again). */
static int materialize_batch(tl_lake *l, int view, const char *instance,
                             int64_t max_insert_time, tl_materialize_stats *st,
                             bool *more, char *err, size_t errcap) {
  const tl_view_def *v = &tl__views[view];
  *more = false;
  tl_catalog_block *blocks = calloc(BATCH_BLOCKS, sizeof *blocks);
  if (!blocks)
    return tl__lake_fail(err, errcap, "out of memory");
  unsigned n = 0;
  int rc = tl_catalog_blocks_to_materialize(l->cat, v->name, instance, v->scope,
                                            v->stream_tag, max_insert_time,
                                            BATCH_BLOCKS, blocks, &n);
  if (rc) {
    free(blocks);
    return tl__lake_fail(err, errcap, "catalog: %s", tl_catalog_errmsg(l->cat));
  }
  if (n == 0) {
    free(blocks);
    return 0;
  }
  *more = n == BATCH_BLOCKS;

  mat m;
  memset(&m, 0, sizeof m);
  m.l = l;
  m.v = v;
  m.view = view;
  m.min_time = INT64_MAX;
  m.max_time = INT64_MIN;
  duckdb_connection c;
  duckdb_connect(l->db, &c);
  char sql[9000];
  snprintf(sql, sizeof sql, "CREATE OR REPLACE TEMP TABLE staging (%s)",
           v->columns);
  if ((rc = tl__duck_exec(c, sql, err, errcap)))
    goto out;
  if ((rc = tl_catalog_foreach_process(l->cat, add_freq, &m))) {
    tl__lake_fail(err, errcap, "catalog: %s", tl_catalog_errmsg(l->cat));
    goto out;
  }
  if ((rc = writer_open(&m.w, c, "staging", v->types, v->ncols))) {
    tl__lake_fail(err, errcap, "duckdb: cannot append to staging");
    goto out;
  }
  int64_t min_insert = INT64_MAX, max_insert = INT64_MIN;
  uint8_t(*ids)[16] = calloc(n, 16);
  unsigned nids = 0;
  for (unsigned i = 0; i < n && !rc && ids; i++) {
    tl_catalog_block *b = &blocks[i];
    char key[128];
    tl_store_block_key(b->process_id, b->stream_id, b->block_id, key);
    uint8_t *p = NULL;
    size_t len = 0;
    int grc = tl_store_get(l->store, key, MAX_BLOB, &p, &len);
    if (grc) { /* a retired block whose row lingers: skip it */
      if (grc == TL_ENOTFOUND)
        continue;
      rc = tl__lake_fail(err, errcap, "reading %s: %s", key, tl_strerror(grc));
      break;
    }
    m.freq = freq_of(&m, b->process_id);
    if (!m.freq)
      m.freq = 1000000000u;
    tl_uuid_format(b->process_id, m.pid);
    tl_uuid_format(b->stream_id, m.sid);
    tl_uuid_format(b->block_id, m.bid);
    m.insert_time = b->insert_time;
    tl_block_visitor vis = {&m, on_header, on_event};
    tl_wire_error werr = {0};
    int drc = tl_block_decode(p, len, &vis, &werr);
    free(p);
    if (drc) {
      rc = tl__lake_fail(err, errcap, "block %s: %s", m.bid, werr.reason);
      break;
    }
    memcpy(ids[nids++], b->block_id, 16);
    if (b->insert_time < min_insert)
      min_insert = b->insert_time;
    if (b->insert_time > max_insert)
      max_insert = b->insert_time;
  }
  if (!ids && !rc)
    rc = tl__lake_fail(err, errcap, "out of memory");
  char werr[512];
  int wrc = writer_close(&m.w, werr, sizeof werr);
  if (!rc && wrc)
    rc = tl__lake_fail(err, errcap, "%s", werr);
  if (rc || nids == 0) {
    /* Nothing readable in this batch (blobs missing: retired meanwhile):
     * stop here rather than be offered the same blocks again. */
    if (nids == 0)
      *more = false;
    free(ids);
    goto out;
  }

  /* One Parquet file per batch, under the day of its first event. */
  uint8_t fid[16];
  char fname[37];
  tl_uuid_v4(fid);
  tl_uuid_format(fid, fname);
  int64_t day = (m.min_time == INT64_MAX ? 0 : m.min_time) / 86400000000000;
  tl_partition part;
  memset(&part, 0, sizeof part);
  snprintf(part.view_name, sizeof part.view_name, "%s", v->name);
  snprintf(part.instance, sizeof part.instance, "%s", instance);
  snprintf(part.file, sizeof part.file, "views/%s/%s/%" PRId64 "/%s.parquet",
           v->name, instance, day, fname);
  char dir[4200], path[4400], tmp[4400];
  snprintf(dir, sizeof dir, "%s/views/%s/%s/%" PRId64, l->data, v->name,
           instance, day);
  snprintf(path, sizeof path, "%s/%s", l->data, part.file);
  snprintf(tmp, sizeof tmp, "%s/.tmp-%s.parquet", dir, fname);
  if (tl_mkdirs(dir)) {
    rc = tl__lake_fail(err, errcap, "cannot create %s", dir);
    free(ids);
    goto out;
  }
  snprintf(sql, sizeof sql,
           "COPY (SELECT * FROM staging ORDER BY %s) TO '%s' "
           "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
           v->order, tmp);
  if ((rc = tl__duck_exec(c, sql, err, errcap)) ||
      (rc = tl_publish_file(tmp, path))) {
    if (!err[0])
      tl__lake_fail(err, errcap, "cannot publish %s", path);
    unlink(tmp);
    free(ids);
    goto out;
  }
  struct stat sst;
  part.file_size = stat(path, &sst) ? 0 : (uint64_t)sst.st_size;
  part.nb_rows = m.w.rows;
  part.nb_blocks = nids;
  part.begin_time = m.min_time == INT64_MAX ? 0 : m.min_time;
  part.end_time = m.max_time == INT64_MIN ? 0 : m.max_time;
  part.min_insert_time = min_insert;
  part.max_insert_time = max_insert;
  part.created_time = tl_wall_ns();
  rc = tl_catalog_add_partition(l->cat, &part, (const uint8_t(*)[16])ids, nids);
  free(ids);
  if (rc == TL_ECONFLICT) { /* another materializer won these blocks */
    unlink(path);
    rc = 0;
    *more = true;
    goto out;
  }
  if (rc) {
    /* The partition may or may not be recorded (a lost connection): keep
     * the file, which is harmless if unreferenced. */
    tl__lake_fail(err, errcap, "catalog: %s", tl_catalog_errmsg(l->cat));
    goto out;
  }
  if (st) {
    st->blocks += nids;
    st->rows += part.nb_rows;
    st->partitions++;
    st->bytes += part.file_size;
  }
out:;
  char ignored[256];
  tl__duck_exec(c, "DROP TABLE IF EXISTS staging", ignored, sizeof ignored);
  duckdb_disconnect(&c);
  free(m.freqs);
  free(blocks);
  return rc;
}

int tl__lake_materialize_view(tl_lake *l, int view, const char *instance,
                              int64_t max_insert_time, tl_materialize_stats *st,
                              char *err, size_t errcap) {
  TL_SPAN_FN();
  int rc = 0;
  err[0] = 0;
  /* One materializer per process at a time; the catalog arbitrates between
   * servers. */
  pthread_mutex_lock(&l->mu);
  bool more = true;
  while (more && !rc && !atomic_load(&l->interrupted))
    rc = materialize_batch(l, view, instance, max_insert_time, st, &more, err,
                           errcap);
  pthread_mutex_unlock(&l->mu);
  return rc;
}

void tl_lake_interrupt(tl_lake *l) {
  atomic_store(&l->interrupted, true);
}

int tl_lake_materialize(tl_lake *l, int64_t max_insert_time,
                        tl_materialize_stats *st, char *err, size_t errcap) {
  TL_SPAN_FN();
  int rc = 0;
  for (int i = 0; i < TL_NVIEWS_GLOBAL && !rc; i++)
    rc = tl__lake_materialize_view(l, i, TL_INSTANCE_GLOBAL, max_insert_time,
                                   st, err, errcap);
  return rc;
}

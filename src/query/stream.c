/* stream.c - a statement of a query session run as a stream of Arrow record
 * batches: DuckDB's own Arrow export for schemas and chunks (with
 * tracelake's timestamp rule applied to schemas), parameters read from
 * Arrow memory, and cancellation from another thread. Also the catalog
 * answers of the Flight SQL service: tables, keywords, functions. */
#define TL_TARGET "tracelake::query"
#include "tracelake/tracelake.h"
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lake_impl.h"
#include "stream.h"

struct tl_query {
  tl_session *s;
  duckdb_connection c; /* the session's */
  duckdb_prepared_statement ps;
  duckdb_result result; /* streaming; valid while has_result */
  bool has_result;
  duckdb_arrow_options opts;  /* the result's, while has_result */
  struct ArrowSchema rschema; /* of the last execution (release != NULL) */
  int64_t limit, returned;
  uint64_t statement; /* the session's statement count of our execution */
  /* tl_query_interrupt calls duckdb_interrupt only while the owner thread is
   * inside DuckDB for this query (busy), so that it cannot hit another
   * statement of the session. */
  pthread_mutex_t mu;
  bool busy;
  _Atomic bool canceled; /* for good: tl_query_interrupt was called */
};

__attribute__((format(printf, 4, 5))) static int
fail(char *err, size_t errcap, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
  return rc;
}

/* ---- Schemas ---------------------------------------------------------------
 * Our schemas are deep copies of DuckDB's, each node, string and child
 * malloc'd and freed by schema_release. Copying (rather than editing
 * DuckDB's structs in place) leaves DuckDB's ownership untouched. */

static void schema_release(struct ArrowSchema *s) {
  if (!s || !s->release)
    return;
  for (int64_t i = 0; s->children && i < s->n_children; i++) {
    struct ArrowSchema *c = s->children[i];
    if (c && c->release)
      c->release(c);
    free(c);
  }
  free(s->children);
  if (s->dictionary) {
    if (s->dictionary->release)
      s->dictionary->release(s->dictionary);
    free(s->dictionary);
  }
  free((void *)s->format);
  free((void *)s->name);
  free((void *)s->metadata);
  s->release = NULL;
}

/* Bytes of C Data Interface metadata: int32 count, then count pairs of
 * (int32 length, bytes). */
static size_t metadata_len(const char *m) {
  int32_t n, len;
  memcpy(&n, m, 4);
  size_t at = 4;
  for (int32_t i = 0; i < 2 * n; i++) {
    memcpy(&len, m + at, 4);
    at += 4 + (size_t)len;
  }
  return at;
}

/* A timestamp without a zone ("tsn:") is UTC in tracelake: "tsn:+00:00". */
static char *format_copy(const char *f) {
  if (f[0] == 't' && f[1] == 's' && f[2] && f[3] == ':' && !f[4]) {
    char *z = malloc(sizeof "tsn:+00:00");
    if (z)
      snprintf(z, sizeof "tsn:+00:00", "ts%c:+00:00", f[2]);
    return z;
  }
  return strdup(f);
}

/* Deep copy of `src` into `dst` (named `name` when not NULL), applying the
 * zone rule at every level. On failure, dst is still releasable. */
static int schema_copy(const struct ArrowSchema *src, const char *name,
                       struct ArrowSchema *dst) {
  memset(dst, 0, sizeof *dst);
  dst->release = schema_release;
  dst->flags = src->flags;
  dst->format = format_copy(src->format);
  dst->name = strdup(name ? name : src->name ? src->name : "");
  if (!dst->format || !dst->name)
    return TL_ENOMEM;
  if (src->metadata) {
    size_t n = metadata_len(src->metadata);
    char *m = malloc(n);
    if (!m)
      return TL_ENOMEM;
    memcpy(m, src->metadata, n);
    dst->metadata = m;
  }
  if (src->n_children > 0) {
    dst->children = calloc((size_t)src->n_children, sizeof *dst->children);
    if (!dst->children)
      return TL_ENOMEM;
    dst->n_children = src->n_children;
    for (int64_t i = 0; i < src->n_children; i++) {
      dst->children[i] = malloc(sizeof **dst->children);
      if (!dst->children[i])
        return TL_ENOMEM;
      int rc = schema_copy(src->children[i], NULL, dst->children[i]);
      if (rc)
        return rc;
    }
  }
  if (src->dictionary) {
    dst->dictionary = malloc(sizeof *dst->dictionary);
    if (!dst->dictionary)
      return TL_ENOMEM;
    return schema_copy(src->dictionary, NULL, dst->dictionary);
  }
  return 0;
}

/* A type DuckDB cannot tell yet (a parameter, or a column that depends on
 * one, before binding). */
static bool unknown_type(duckdb_logical_type t) {
  if (!t)
    return true;
  duckdb_type id = duckdb_get_type_id(t);
  return id == DUCKDB_TYPE_INVALID || id == DUCKDB_TYPE_ANY ||
         id == DUCKDB_TYPE_SQLNULL;
}

/* One field of a root schema: DuckDB's export of `type`, or the null type
 * when it is unknown. */
static int make_field(duckdb_arrow_options o, duckdb_logical_type type,
                      const char *name, struct ArrowSchema *dst, char *err,
                      size_t errcap) {
  if (unknown_type(type)) {
    struct ArrowSchema null = {
        .format = "n", .name = name, .flags = ARROW_FLAG_NULLABLE};
    return schema_copy(&null, NULL, dst)
               ? fail(err, errcap, TL_ENOMEM, "out of memory")
               : 0;
  }
  struct ArrowSchema tmp;
  memset(&tmp, 0, sizeof tmp);
  duckdb_error_data e = duckdb_to_arrow_schema(o, &type, &name, 1, &tmp);
  int rc = 0;
  if (duckdb_error_data_has_error(e))
    rc = fail(err, errcap, TL_EINVAL, "column %s: %s", name,
              duckdb_error_data_message(e));
  else if (tmp.n_children != 1)
    rc = fail(err, errcap, TL_EINVAL, "column %s: unexpected Arrow export",
              name);
  else if (schema_copy(tmp.children[0], name, dst))
    rc = fail(err, errcap, TL_ENOMEM, "out of memory");
  duckdb_destroy_error_data(&e);
  if (tmp.release)
    tmp.release(&tmp);
  if (rc && !dst->release)
    dst->release = schema_release; /* dst untouched by a failed export */
  return rc;
}

/* The root ("+s", one field per column) of `n` columns. */
static int make_schema(duckdb_arrow_options o, idx_t n,
                       duckdb_logical_type *types, const char **names,
                       struct ArrowSchema *out, char *err, size_t errcap) {
  struct ArrowSchema root = {.format = "+s", .name = ""};
  struct ArrowSchema s;
  if (schema_copy(&root, NULL, &s))
    goto oom;
  if (n) {
    s.children = calloc(n, sizeof *s.children);
    if (!s.children)
      goto oom;
    s.n_children = (int64_t)n;
  }
  for (idx_t i = 0; i < n; i++) {
    s.children[i] = calloc(1, sizeof **s.children);
    if (!s.children[i])
      goto oom;
    int rc = make_field(o, types[i], names[i], s.children[i], err, errcap);
    if (rc) {
      schema_release(&s);
      return rc;
    }
  }
  *out = s;
  return 0;
oom:
  schema_release(&s);
  return fail(err, errcap, TL_ENOMEM, "out of memory");
}

/* ---- Preparing ---------------------------------------------------------- */

int tl_query_prepare(tl_query **out, tl_session *s, const char *sql, char *err,
                     size_t errcap) {
  TL_SPAN_FN();
  err[0] = 0;
  tl_query *q = calloc(1, sizeof *q);
  if (!q)
    return fail(err, errcap, TL_ENOMEM, "out of memory");
  tl_bytes rewritten;
  tl_bytes_init(&rewritten, (size_t)16 << 20);
  int rc = tl__session_prepare(s, sql, &rewritten, &q->ps, err, errcap);
  tl_bytes_free(&rewritten);
  if (rc) {
    free(q);
    return rc;
  }
  q->s = s;
  q->c = tl__session_conn(s);
  q->limit = -1;
  pthread_mutex_init(&q->mu, NULL);
  atomic_init(&q->canceled, false);
  *out = q;
  return 0;
}

/* Ends the current execution, if any. */
static void reset(tl_query *q) {
  if (q->has_result) {
    duckdb_destroy_arrow_options(&q->opts);
    duckdb_destroy_result(&q->result);
    q->has_result = false;
  }
}

void tl_query_close(tl_query *q) {
  if (!q)
    return;
  reset(q);
  schema_release(&q->rschema);
  duckdb_destroy_prepare(&q->ps);
  pthread_mutex_destroy(&q->mu);
  free(q);
}

int tl_query_nparams(const tl_query *q) {
  return (int)duckdb_nparams(q->ps);
}

/* The result schema of a prepared statement. When the result's shape
 * depends on parameters not bound yet, DuckDB reports a single column
 * "unknown" without a type: the schema then has no fields. */
static int prepared_schema(duckdb_connection c, duckdb_prepared_statement ps,
                           struct ArrowSchema *out, char *err, size_t errcap) {
  idx_t n = duckdb_prepared_statement_column_count(ps);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof *types);
  char **names = calloc(n ? n : 1, sizeof *names); /* DuckDB's, duckdb_free */
  int rc;
  if (!types || !names) {
    rc = fail(err, errcap, TL_ENOMEM, "out of memory");
    goto out;
  }
  bool known = true;
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_prepared_statement_column_logical_type(ps, i);
    names[i] = (char *)duckdb_prepared_statement_column_name(ps, i);
    known &= types[i] && duckdb_get_type_id(types[i]) != DUCKDB_TYPE_INVALID;
  }
  const char **cols = calloc(n ? n : 1, sizeof *cols);
  if (!cols) {
    rc = fail(err, errcap, TL_ENOMEM, "out of memory");
    goto out;
  }
  for (idx_t i = 0; i < n; i++)
    cols[i] = names[i] ? names[i] : "";
  duckdb_arrow_options o;
  duckdb_connection_get_arrow_options(c, &o);
  rc = make_schema(o, known ? n : 0, types, cols, out, err, errcap);
  duckdb_destroy_arrow_options(&o);
  free(cols);
out:
  for (idx_t i = 0; types && names && i < n; i++) {
    if (types[i])
      duckdb_destroy_logical_type(&types[i]);
    duckdb_free(names[i]);
  }
  free(types);
  free(names);
  return rc;
}

int tl_query_schema(tl_query *q, struct ArrowSchema *out, char *err,
                    size_t errcap) {
  err[0] = 0;
  if (!q->rschema.release)
    return prepared_schema(q->c, q->ps, out, err, errcap);
  if (schema_copy(&q->rschema, NULL, out)) {
    schema_release(out);
    return fail(err, errcap, TL_ENOMEM, "out of memory");
  }
  return 0;
}

int tl_query_parameter_schema(tl_query *q, struct ArrowSchema *out, char *err,
                              size_t errcap) {
  err[0] = 0;
  idx_t n = duckdb_nparams(q->ps);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof *types);
  char **names = calloc(n ? n : 1, sizeof *names);
  int rc;
  if (!types || !names) {
    rc = fail(err, errcap, TL_ENOMEM, "out of memory");
    goto out;
  }
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_param_logical_type(q->ps, i + 1);
    const char *name = duckdb_parameter_name(q->ps, i + 1);
    char pos[24];
    snprintf(pos, sizeof pos, "%llu", (unsigned long long)(i + 1));
    names[i] = strdup(name ? name : pos);
    duckdb_free((void *)name);
    if (!names[i]) {
      rc = fail(err, errcap, TL_ENOMEM, "out of memory");
      goto out;
    }
  }
  duckdb_arrow_options o;
  duckdb_connection_get_arrow_options(q->c, &o);
  rc = make_schema(o, n, types, (const char **)names, out, err, errcap);
  duckdb_destroy_arrow_options(&o);
out:
  for (idx_t i = 0; i < n; i++) {
    if (types && types[i])
      duckdb_destroy_logical_type(&types[i]);
    if (names)
      free(names[i]);
  }
  free(types);
  free(names);
  return rc;
}

/* ---- Binding parameters from Arrow memory ------------------------------ */

static bool bit_set(const void *bits, int64_t i) {
  return ((const uint8_t *)bits)[i >> 3] >> (i & 7) & 1;
}

/* Buffer k of an array, or NULL. */
static const void *buf(const struct ArrowArray *a, int64_t k) {
  return k < a->n_buffers && a->buffers ? a->buffers[k] : NULL;
}

/* Reads an integer of format f ("c", "s", "i", "l" and unsigned) at j. */
static bool read_int(const char *f, const void *p, int64_t j, int64_t *v,
                     bool *is_unsigned, uint64_t *u) {
  *is_unsigned = false;
  if (!f[0] || f[1])
    return false;
  switch (f[0]) {
  case 'c':
    *v = ((const int8_t *)p)[j];
    return true;
  case 's':
    *v = ((const int16_t *)p)[j];
    return true;
  case 'i':
    *v = ((const int32_t *)p)[j];
    return true;
  case 'l':
    *v = ((const int64_t *)p)[j];
    return true;
  case 'C':
    *v = ((const uint8_t *)p)[j];
    return true;
  case 'S':
    *v = ((const uint16_t *)p)[j];
    return true;
  case 'I':
    *v = ((const uint32_t *)p)[j];
    return true;
  case 'L':
    *u = ((const uint64_t *)p)[j];
    *is_unsigned = true;
    return true;
  default:
    return false;
  }
}

/* Value `i` (an index into this array, before its own offset) of column
 * (sc, a) as a DuckDB value in *out; `param` names it in errors. */
static int arrow_value(const struct ArrowSchema *sc, const struct ArrowArray *a,
                       int64_t i, int param, duckdb_value *out, char *err,
                       size_t errcap) {
  const char *f = sc->format;
  if (i < 0 || i >= a->length)
    return fail(err, errcap, TL_EINVAL,
                "parameter %d: row %" PRId64 " is out of its column (%" PRId64
                " values)",
                param, i, a->length);
  int64_t j = a->offset + i;
  if (!strcmp(f, "n")) {
    *out = duckdb_create_null_value();
    return 0;
  }
  if (buf(a, 0) && !bit_set(buf(a, 0), j)) {
    *out = duckdb_create_null_value();
    return 0;
  }
  const void *b1 = buf(a, 1), *b2 = buf(a, 2);
  if (!b1)
    return fail(err, errcap, TL_EINVAL,
                "parameter %d: a column of type '%s' without values", param, f);
  int64_t v = 0;
  uint64_t u = 0;
  bool is_unsigned;
  if (sc->dictionary) {
    if (!a->dictionary || !read_int(f, b1, j, &v, &is_unsigned, &u) ||
        is_unsigned)
      return fail(err, errcap, TL_EINVAL,
                  "parameter %d: a dictionary column with index type '%s'",
                  param, f);
    return arrow_value(sc->dictionary, a->dictionary, v, param, out, err,
                       errcap);
  }
  if (read_int(f, b1, j, &v, &is_unsigned, &u)) {
    *out = is_unsigned ? duckdb_create_uint64(u) : duckdb_create_int64(v);
  } else if (!strcmp(f, "b")) {
    *out = duckdb_create_bool(bit_set(b1, j));
  } else if (!strcmp(f, "f")) {
    *out = duckdb_create_float(((const float *)b1)[j]);
  } else if (!strcmp(f, "g")) {
    *out = duckdb_create_double(((const double *)b1)[j]);
  } else if (!strcmp(f, "u") || !strcmp(f, "z") || !strcmp(f, "U") ||
             !strcmp(f, "Z")) {
    int64_t o0, o1;
    if (f[0] == 'u' || f[0] == 'z') {
      o0 = ((const int32_t *)b1)[j];
      o1 = ((const int32_t *)b1)[j + 1];
    } else {
      o0 = ((const int64_t *)b1)[j];
      o1 = ((const int64_t *)b1)[j + 1];
    }
    if (o0 < 0 || o1 < o0 || (o1 > o0 && !b2))
      return fail(err, errcap, TL_EINVAL, "parameter %d: bad offsets", param);
    const char *p = b2 ? (const char *)b2 + o0 : "";
    *out = f[0] == 'u' || f[0] == 'U'
               ? duckdb_create_varchar_length(p, (idx_t)(o1 - o0))
               : duckdb_create_blob((const uint8_t *)p, (idx_t)(o1 - o0));
  } else if (!strcmp(f, "vu") || !strcmp(f, "vz")) {
    /* Views: int32 length, then the bytes inline (<= 12) or a 4-byte
     * prefix, a data buffer index and an offset into it. */
    const uint8_t *view = (const uint8_t *)b1 + 16 * j;
    int32_t len, bi, off;
    memcpy(&len, view, 4);
    const uint8_t *p = view + 4;
    if (len > 12) {
      memcpy(&bi, view + 8, 4);
      memcpy(&off, view + 12, 4);
      const void *data = bi >= 0 ? buf(a, 2 + (int64_t)bi) : NULL;
      if (!data || off < 0)
        return fail(err, errcap, TL_EINVAL, "parameter %d: bad string view",
                    param);
      p = (const uint8_t *)data + off;
    }
    if (len < 0)
      return fail(err, errcap, TL_EINVAL, "parameter %d: bad string view",
                  param);
    *out = f[1] == 'u'
               ? duckdb_create_varchar_length((const char *)p, (idx_t)len)
               : duckdb_create_blob(p, (idx_t)len);
  } else if (!strcmp(f, "tdD")) {
    *out = duckdb_create_date((duckdb_date){((const int32_t *)b1)[j]});
  } else if (!strcmp(f, "tdm")) {
    int64_t ms = ((const int64_t *)b1)[j];
    int64_t days = ms / 86400000 - (ms % 86400000 < 0);
    *out = duckdb_create_date((duckdb_date){(int32_t)days});
  } else if (f[0] == 't' && f[1] == 's' && f[2] && f[3] == ':') {
    /* Bound without a zone: the instant as UTC wall time, which is what
     * tracelake's zone-less timestamps hold. */
    int64_t t = ((const int64_t *)b1)[j];
    switch (f[2]) {
    case 's':
      *out = duckdb_create_timestamp_s((duckdb_timestamp_s){t});
      break;
    case 'm':
      *out = duckdb_create_timestamp_ms((duckdb_timestamp_ms){t});
      break;
    case 'u':
      *out = duckdb_create_timestamp((duckdb_timestamp){t});
      break;
    case 'n':
      *out = duckdb_create_timestamp_ns((duckdb_timestamp_ns){t});
      break;
    default:
      goto unsupported;
    }
  } else if (f[0] == 'd' && f[1] == ':') {
    int prec = 0, scale = 0, bits = 128;
    if (sscanf(f + 2, "%d,%d,%d", &prec, &scale, &bits) < 2 || prec < 1 ||
        prec > 38 || scale < 0 || scale > prec)
      goto unsupported;
    duckdb_hugeint h;
    if (bits == 128) {
      memcpy(&h.lower, (const uint8_t *)b1 + 16 * j, 8);
      memcpy(&h.upper, (const uint8_t *)b1 + 16 * j + 8, 8);
    } else if (bits == 64 || bits == 32) {
      int64_t x =
          bits == 64 ? ((const int64_t *)b1)[j] : ((const int32_t *)b1)[j];
      h.lower = (uint64_t)x;
      h.upper = x < 0 ? -1 : 0;
    } else {
      goto unsupported;
    }
    *out = duckdb_create_decimal(
        (duckdb_decimal){(uint8_t)prec, (uint8_t)scale, h});
  } else {
    goto unsupported;
  }
  if (!*out)
    return fail(err, errcap, TL_EINVAL,
                "parameter %d: DuckDB refused the value (invalid UTF-8?)",
                param);
  return 0;
unsupported:
  return fail(err, errcap, TL_EINVAL,
              "parameter %d has the Arrow type '%s', which cannot be bound "
              "(supported: null, bool, integers, float, double, utf8, "
              "binary, date, timestamp, decimal)",
              param, f);
}

int tl_query_bind(tl_query *q, const struct ArrowSchema *schema,
                  const struct ArrowArray *batch, int64_t row, char *err,
                  size_t errcap) {
  err[0] = 0;
  idx_t n = duckdb_nparams(q->ps);
  if (schema->n_children != batch->n_children)
    return fail(err, errcap, TL_EINVAL,
                "the batch's schema has %" PRId64 " columns, its data %" PRId64,
                schema->n_children, batch->n_children);
  if ((idx_t)batch->n_children != n)
    return fail(err, errcap, TL_EINVAL,
                "the statement has %llu parameter%s, the batch %" PRId64
                " column%s",
                (unsigned long long)n, n == 1 ? "" : "s", batch->n_children,
                batch->n_children == 1 ? "" : "s");
  if (row < 0 || row >= batch->length)
    return fail(err, errcap, TL_EINVAL,
                "row %" PRId64 " of a batch of %" PRId64 " rows", row,
                batch->length);
  /* A null root row (not expected in a record batch) binds nulls. */
  bool null_row = buf(batch, 0) && !bit_set(buf(batch, 0), batch->offset + row);
  for (idx_t i = 0; i < n; i++) {
    duckdb_value v = NULL;
    if (null_row) {
      v = duckdb_create_null_value();
    } else {
      int rc = arrow_value(schema->children[i], batch->children[i],
                           batch->offset + row, (int)i + 1, &v, err, errcap);
      if (rc)
        return rc;
    }
    duckdb_state st = duckdb_bind_value(q->ps, i + 1, v);
    duckdb_destroy_value(&v);
    if (st == DuckDBError)
      return fail(err, errcap, TL_EINVAL, "parameter %llu: %s",
                  (unsigned long long)i + 1, duckdb_prepare_error(q->ps));
  }
  return 0;
}

/* ---- Execution -------------------------------------------------------------
 * The owner thread marks itself busy around DuckDB calls that execute the
 * query; tl_query_interrupt interrupts the connection only then. Checking
 * `canceled` after becoming busy closes the window where an interrupt would
 * land just before the call. */

static bool enter(tl_query *q) {
  pthread_mutex_lock(&q->mu);
  q->busy = true;
  pthread_mutex_unlock(&q->mu);
  return !atomic_load(&q->canceled);
}

static void leave(tl_query *q) {
  pthread_mutex_lock(&q->mu);
  q->busy = false;
  pthread_mutex_unlock(&q->mu);
}

void tl_query_interrupt(tl_query *q) {
  atomic_store(&q->canceled, true);
  pthread_mutex_lock(&q->mu);
  if (q->busy)
    duckdb_interrupt(q->c);
  pthread_mutex_unlock(&q->mu);
}

static int canceled(char *err, size_t errcap) {
  return fail(err, errcap, TL_ECANCELED, "the query was canceled");
}

/* Saves the result's schema, so that tl_query_schema describes exactly the
 * arrays tl_query_next returns (binding may have changed the types). */
static int result_schema(tl_query *q, char *err, size_t errcap) {
  idx_t n = duckdb_column_count(&q->result);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof *types);
  const char **names = calloc(n ? n : 1, sizeof *names);
  int rc;
  if (!types || !names) {
    rc = fail(err, errcap, TL_ENOMEM, "out of memory");
    goto out;
  }
  for (idx_t i = 0; i < n; i++) {
    types[i] = duckdb_column_logical_type(&q->result, i);
    names[i] = duckdb_column_name(&q->result, i);
    if (!names[i])
      names[i] = "";
  }
  rc = make_schema(q->opts, n, types, names, &q->rschema, err, errcap);
out:
  for (idx_t i = 0; types && i < n; i++)
    if (types[i])
      duckdb_destroy_logical_type(&types[i]);
  free(types);
  free(names);
  return rc;
}

int tl_query_execute(tl_query *q, int64_t limit, bool (*should_stop)(void *ctx),
                     void *ctx, char *err, size_t errcap) {
  TL_SPAN_FN();
  err[0] = 0;
  reset(q);
  schema_release(&q->rschema);
  q->limit = limit;
  q->returned = 0;
  duckdb_pending_result p = NULL;
  int rc = 0;
  unsigned idle = 0;
  long wait_ns = 10000;
  if (!enter(q)) {
    rc = canceled(err, errcap);
    goto out;
  }
  if (duckdb_pending_prepared_streaming(q->ps, &p) == DuckDBError) {
    rc = atomic_load(&q->canceled)
             ? canceled(err, errcap)
             : fail(err, errcap, TL_EINVAL, "%s", duckdb_pending_error(p));
    goto out;
  }
  for (;;) {
    if (atomic_load(&q->canceled) || (should_stop && should_stop(ctx))) {
      duckdb_interrupt(q->c); /* stops DuckDB's own threads at once */
      rc = canceled(err, errcap);
      goto out;
    }
    duckdb_pending_state st = duckdb_pending_execute_task(p);
    if (st == DUCKDB_PENDING_RESULT_READY)
      break;
    if (st == DUCKDB_PENDING_ERROR) {
      rc = atomic_load(&q->canceled)
               ? canceled(err, errcap)
               : fail(err, errcap, TL_EINVAL, "%s", duckdb_pending_error(p));
      goto out;
    }
    if (st == DUCKDB_PENDING_NO_TASKS_AVAILABLE) {
      /* DuckDB's threads hold the work: a short query is ready in a few
       * microseconds, a long one should not have us spin; so yield at
       * first, then sleep longer and longer, up to 200 us. */
      if (++idle <= 64) {
        sched_yield();
      } else {
        struct timespec ts = {0, wait_ns};
        nanosleep(&ts, NULL);
        if (wait_ns < 200000)
          wait_ns *= 2;
      }
    }
  }
  if (duckdb_execute_pending(p, &q->result) == DuckDBError) {
    rc = atomic_load(&q->canceled) ? canceled(err, errcap)
                                   : fail(err, errcap, TL_EINVAL, "%s",
                                          duckdb_result_error(&q->result));
    duckdb_destroy_result(&q->result);
    goto out;
  }
  q->has_result = true;
  q->statement = tl__session_bump(q->s);
  q->opts = duckdb_result_get_arrow_options(&q->result);
  if ((rc = result_schema(q, err, errcap)))
    reset(q);
out:
  leave(q);
  duckdb_destroy_pending(&p);
  return rc;
}

int tl_query_next(tl_query *q, struct ArrowArray *out, char *err,
                  size_t errcap) {
  err[0] = 0;
  if (atomic_load(&q->canceled)) {
    reset(q);
    return canceled(err, errcap);
  }
  if (!q->has_result)
    return 0; /* ended, or never executed */
  if (q->limit >= 0 && q->returned >= q->limit) {
    reset(q);
    return 0;
  }
  /* DuckDB would just end the stream early, as if it were complete. */
  if (tl__session_statements(q->s) != q->statement) {
    reset(q);
    return fail(err, errcap, TL_EINVAL,
                "the result was closed by another statement of the session "
                "(one statement at a time per session)");
  }
  int rc = 0;
  duckdb_data_chunk chunk = NULL;
  while (!chunk) {
    if (!enter(q)) {
      leave(q);
      reset(q);
      return canceled(err, errcap);
    }
    chunk = duckdb_fetch_chunk(q->result);
    leave(q);
    if (atomic_load(&q->canceled)) {
      rc = canceled(err, errcap);
      goto out;
    }
    if (!chunk) {
      const char *e = duckdb_result_error(&q->result);
      rc = e && *e ? fail(err, errcap, TL_EINVAL, "%s", e) : 0;
      goto out;
    }
    if (duckdb_data_chunk_get_size(chunk) == 0)
      duckdb_destroy_data_chunk(&chunk);
  }
  memset(out, 0, sizeof *out);
  duckdb_error_data e = duckdb_data_chunk_to_arrow(q->opts, chunk, out);
  if (duckdb_error_data_has_error(e)) {
    rc = fail(err, errcap, TL_EINVAL, "%s", duckdb_error_data_message(e));
    if (out->release)
      out->release(out);
    duckdb_destroy_error_data(&e);
    goto out;
  }
  duckdb_destroy_error_data(&e);
  /* The limit cuts the root only: children may be longer than their
   * parent (the C Data Interface allows it), and the root struct has no
   * nulls, so its null_count stays right. */
  if (q->limit >= 0 && out->length > q->limit - q->returned)
    out->length = q->limit - q->returned;
  q->returned += out->length;
  duckdb_destroy_data_chunk(&chunk);
  return 1;
out:
  duckdb_destroy_data_chunk(&chunk);
  reset(q);
  return rc;
}

/* ---- Tables, keywords, functions ----------------------------------------- */

int tl_session_tables(tl_session *s, tl_table_fn fn, void *ctx, char *err,
                      size_t errcap) {
  err[0] = 0;
  duckdb_connection c = tl__session_conn(s);
  duckdb_result r;
  tl__session_bump(s);
  if (duckdb_query(c,
                   "SELECT name, kind FROM (SELECT table_name AS name, "
                   "'TABLE' AS kind FROM duckdb_tables() WHERE database_name "
                   "= 'temp' UNION ALL SELECT view_name, 'VIEW' FROM "
                   "duckdb_views() WHERE database_name = 'temp' AND NOT "
                   "internal) WHERE NOT starts_with(name, '_') ORDER BY name",
                   &r) == DuckDBError) {
    int rc = fail(err, errcap, TL_EIO, "%s", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    return rc;
  }
  /* Copy the names out: the statements below replace the result. */
  idx_t n = duckdb_row_count(&r);
  char **names = calloc(n ? n : 1, sizeof *names);
  bool *views = calloc(n ? n : 1, sizeof *views);
  int rc = 0;
  for (idx_t i = 0; names && views && i < n; i++) {
    names[i] = duckdb_value_varchar(&r, 0, i);
    char *kind = duckdb_value_varchar(&r, 1, i);
    views[i] = kind && !strcmp(kind, "VIEW");
    duckdb_free(kind);
    if (!names[i])
      rc = fail(err, errcap, TL_ENOMEM, "out of memory");
  }
  duckdb_destroy_result(&r);
  if (!names || !views)
    rc = fail(err, errcap, TL_ENOMEM, "out of memory");
  for (idx_t i = 0; !rc && i < n; i++) {
    size_t len = strlen(names[i]);
    char *sql = malloc(2 * len + 32);
    if (!sql) {
      rc = fail(err, errcap, TL_ENOMEM, "out of memory");
      break;
    }
    size_t k = (size_t)sprintf(sql, "SELECT * FROM temp.main.\"");
    for (const char *p = names[i]; *p; p++) {
      if (*p == '"')
        sql[k++] = '"';
      sql[k++] = *p;
    }
    memcpy(sql + k, "\"", 2);
    duckdb_prepared_statement ps;
    if (duckdb_prepare(c, sql, &ps) == DuckDBError) {
      rc = fail(err, errcap, TL_EIO, "%s: %s", names[i],
                duckdb_prepare_error(ps));
    } else {
      struct ArrowSchema sc;
      rc = prepared_schema(c, ps, &sc, err, errcap);
      if (!rc) {
        rc = fn(ctx, names[i], views[i] ? "VIEW" : "TABLE", &sc);
        schema_release(&sc);
      }
    }
    duckdb_destroy_prepare(&ps);
    free(sql);
  }
  for (idx_t i = 0; names && i < n; i++)
    duckdb_free(names[i]);
  free(names);
  free(views);
  return rc;
}

/* A NUL-separated list of the first column of `sql`'s rows, ended by an
 * empty string (malloc'd), or NULL. */
static char *name_list(duckdb_connection c, const char *sql) {
  duckdb_result r;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    duckdb_destroy_result(&r);
    return NULL;
  }
  tl_bytes b;
  tl_bytes_init(&b, (size_t)1 << 20);
  bool ok = true;
  for (idx_t i = 0; ok && i < duckdb_row_count(&r); i++) {
    char *v = duckdb_value_varchar(&r, 0, i);
    if (v && *v)
      ok = !tl_bytes_append(&b, v, strlen(v) + 1);
    duckdb_free(v);
  }
  duckdb_destroy_result(&r);
  char *out = ok ? malloc(b.len + 1) : NULL;
  if (out) {
    if (b.len)
      memcpy(out, b.p, b.len);
    out[b.len] = 0;
  }
  tl_bytes_free(&b);
  return out;
}

static const char *keywords = "";
static pthread_once_t keywords_once = PTHREAD_ONCE_INIT;

/* Keywords need no data: a private in-memory engine answers, once. */
static void load_keywords(void) {
  duckdb_config cfg;
  duckdb_database db;
  duckdb_connection c;
  if (duckdb_create_config(&cfg) == DuckDBError)
    return;
  duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
  duckdb_set_config(cfg, "autoload_known_extensions", "false");
  duckdb_set_config(cfg, "enable_external_access", "false");
  char *open_err = NULL;
  if (duckdb_open_ext(NULL, &db, cfg, &open_err) == DuckDBSuccess) {
    if (duckdb_connect(db, &c) == DuckDBSuccess) {
      char *k = name_list(c, "SELECT keyword_name FROM duckdb_keywords() "
                             "ORDER BY 1");
      if (k)
        keywords = k; /* kept for the life of the process */
      duckdb_disconnect(&c);
    }
    duckdb_close(&db);
  }
  duckdb_free(open_err);
  duckdb_destroy_config(&cfg);
}

const char *tl_sql_keywords(void) {
  pthread_once(&keywords_once, load_keywords);
  return keywords;
}

/* Curated by kind (the Flight SQL info lists); what the engine lacks is
 * dropped. */
static const char *const function_kinds[4] = {
    /* numeric */
    "'abs', 'acos', 'asin', 'atan', 'atan2', 'bit_count', 'cbrt', 'ceil', "
    "'ceiling', 'cos', 'cot', 'degrees', 'even', 'exp', 'factorial', "
    "'floor', 'gcd', 'greatest', 'isinf', 'isnan', 'lcm', 'least', 'ln', "
    "'log', 'log10', 'log2', 'mod', 'pi', 'pow', 'power', 'radians', "
    "'random', 'round', 'sign', 'sin', 'sqrt', 'tan', 'trunc'",
    /* string */
    "'ascii', 'chr', 'concat', 'concat_ws', 'contains', 'ends_with', "
    "'format', 'instr', 'lcase', 'left', 'length', 'levenshtein', 'like', "
    "'lower', 'lpad', 'ltrim', 'md5', 'position', 'printf', "
    "'regexp_extract', 'regexp_matches', 'regexp_replace', 'repeat', "
    "'replace', 'reverse', 'right', 'rpad', 'rtrim', 'sha256', "
    "'split_part', 'starts_with', 'string_split', 'strpos', 'substr', "
    "'substring', 'translate', 'trim', 'ucase', 'upper'",
    /* datetime */
    "'age', 'current_date', 'current_time', 'current_timestamp', "
    "'date_add', 'date_diff', 'date_part', 'date_sub', 'date_trunc', "
    "'datediff', 'datepart', 'datetrunc', 'day', 'dayname', 'dayofweek', "
    "'dayofyear', 'epoch', 'epoch_ms', 'epoch_ns', 'epoch_us', 'hour', "
    "'last_day', 'make_date', 'make_time', 'make_timestamp', "
    "'make_timestamp_ns', 'minute', 'month', 'monthname', 'now', "
    "'quarter', 'second', 'strftime', 'strptime', 'time_bucket', "
    "'to_timestamp', 'today', 'week', 'year'",
    /* system */
    "'coalesce', 'current_database', 'current_schema', 'current_schemas', "
    "'current_setting', 'current_user', 'gen_random_uuid', 'hash', "
    "'ifnull', 'nullif', 'pg_typeof', 'session_user', 'typeof', 'user', "
    "'uuid', 'version'"};

static pthread_mutex_t functions_mu = PTHREAD_MUTEX_INITIALIZER;
static char *functions[4];

const char *tl_sql_functions(tl_lake *l, int kind) {
  if (kind < 0 || kind > 3)
    return "";
  pthread_mutex_lock(&functions_mu);
  if (!functions[kind]) {
    duckdb_connection c;
    if (duckdb_connect(l->db, &c) == DuckDBSuccess) {
      char sql[4096];
      snprintf(sql, sizeof sql,
               "SELECT DISTINCT function_name FROM duckdb_functions() WHERE "
               "function_name IN (%s) ORDER BY 1",
               function_kinds[kind]);
      functions[kind] = name_list(c, sql); /* kept for the process's life */
      duckdb_disconnect(&c);
    }
  }
  const char *r = functions[kind] ? functions[kind] : "";
  pthread_mutex_unlock(&functions_mu);
  return r;
}

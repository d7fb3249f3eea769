/* ipc_read.c - the Arrow IPC decoder: Schema, DictionaryBatch and
 * RecordBatch messages (metadata V4 and V5, uncompressed, little endian)
 * into C Data Interface arrays. Nothing read from the input is trusted: the
 * flatbuffer reader checks every offset, and each array is validated
 * (lengths, buffer sizes, offsets, type ids, dictionary indices) before it
 * is handed out. A batch's buffers live in the reader's own copy of the
 * body, each buffer 8-byte aligned, freed with the last array that uses
 * it; the body may arrive in pieces (as a transport received it), each
 * buffer then copied straight from them. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "arrow.h"

enum { METADATA_V4 = 3, METADATA_V5 = 4 };
#define MAX_ROWS INT32_MAX /* rows of one array, at every level */

typedef struct rdict {
  int64_t id;
  const tl__plan *value; /* the type of its values */
  struct ArrowArray arr; /* released when none was received yet */
} rdict;

struct tl_ipc_reader {
  struct ArrowSchema schema; /* released until the Schema message */
  tl__plan *plan;
  int ndicts;
  rdict *dicts;
  struct ArrowArray last;
  /* The last batch's body, reused for the next one when every array of
   * that batch is gone by then (the usual consumer releases a batch
   * before feeding the next): a fresh megabyte per batch is memory the
   * kernel faults in page by page, as often as not. */
  tl__body *spare;
};

static int bad(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errcap, const char *fmt, ...) {
  if (err && errcap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
  }
  return TL_EMALFORMED;
}

int tl_ipc_reader_new(tl_ipc_reader **out) {
  tl_ipc_reader *r = calloc(1, sizeof *r);
  if (!r)
    return TL_ENOMEM;
  *out = r;
  return 0;
}

void tl_ipc_reader_free(tl_ipc_reader *r) {
  if (!r)
    return;
  tl_arrow_array_release(&r->last);
  tl__body_unref(r->spare);
  for (int i = 0; i < r->ndicts; i++)
    tl_arrow_array_release(&r->dicts[i].arr);
  free(r->dicts);
  tl__plan_free(r->plan);
  tl_arrow_schema_release(&r->schema);
  free(r);
}

const struct ArrowSchema *tl_ipc_reader_schema(const tl_ipc_reader *r) {
  return r && r->schema.release ? &r->schema : NULL;
}

int tl_ipc_reader_take(tl_ipc_reader *r, struct ArrowArray *out) {
  if (!r->last.release)
    return TL_ENOTFOUND;
  *out = r->last;
  r->last.release = NULL;
  return 0;
}

/* ---- Schema -------------------------------------------------------------- */

/* Bytes a schema may take once decoded (names, metadata, formats): a
 * flatbuffer can point many fields at one long string. */
#define SCHEMA_BUDGET ((int64_t)16 << 20)

typedef struct sctx {
  int nfields;
  int64_t budget;    /* bytes left of SCHEMA_BUDGET */
  int64_t *dict_ids; /* of the dictionary fields, in pre-order */
  int ndicts, capdicts;
  char *err;
  size_t errcap;
} sctx;

#define SBAD(c, ...) bad((c)->err, (c)->errcap, __VA_ARGS__)
#define FB(c, call)                                                            \
  do {                                                                         \
    const char *why_ = (call);                                                 \
    if (why_)                                                                  \
      return SBAD(c, "%s", why_);                                              \
  } while (0)

/* custom_metadata ([KeyValue]) as a C Data Interface metadata string in
 * *out (malloc'd; NULL when there is none). */
static int read_metadata(sctx *c, const tl__fbt *t, int field, char **out) {
  tl__fbv v;
  *out = NULL;
  FB(c, tl__fbr_vec(t, field, 4, &v));
  if (!v.len)
    return 0;
  size_t size = 4;
  for (int pass = 0; pass < 2; pass++) {
    size_t at = 4;
    for (uint32_t i = 0; i < v.len; i++) {
      tl__fbt kv;
      const char *s[2];
      size_t n[2];
      FB(c, tl__fbr_vec_table(&v, i, &kv));
      FB(c, tl__fbr_string(&kv, 0, &s[0], &n[0]));
      FB(c, tl__fbr_string(&kv, 1, &s[1], &n[1]));
      if (!pass && (c->budget -= 16 + (int64_t)(n[0] + n[1])) < 0)
        return SBAD(c, "schema too large");
      for (int k = 0; k < 2; k++) {
        if (n[k] > INT32_MAX)
          return SBAD(c, "metadata too long");
        if (pass) {
          int32_t len = (int32_t)n[k];
          memcpy(*out + at, &len, 4);
          if (n[k])
            memcpy(*out + at + 4, s[k], n[k]);
        } else {
          size += 4 + n[k];
        }
        at += 4 + n[k];
      }
    }
    if (!pass) {
      if (!(*out = malloc(size)))
        return TL_ENOMEM;
      int32_t cnt = (int32_t)v.len;
      memcpy(*out, &cnt, 4);
    }
  }
  return 0;
}

static const char *const unit_chars = "smun";

/* The C Data Interface format of a Type table into `fmt` (cap bytes). */
static int type_format(sctx *c, uint8_t type_id, const tl__fbt *t,
                       int64_t nkids, char *fmt, size_t cap, int64_t *flags) {
  int16_t unit = 0;
  int32_t a = 0, b = 0, bits = 0;
  uint8_t flag = 0;
  switch (type_id) {
  case 1:
    snprintf(fmt, cap, "n");
    return 0;
  case 2: /* Int */
    FB(c, tl__fbr_scalar(t, 0, 4, &bits));
    FB(c, tl__fbr_scalar(t, 1, 1, &flag));
    if (bits != 8 && bits != 16 && bits != 32 && bits != 64)
      return SBAD(c, "Int of %d bits", bits);
    snprintf(fmt, cap, "%c",
             "cCsSiIlL"[2 * (bits == 8    ? 0
                             : bits == 16 ? 1
                             : bits == 32 ? 2
                                          : 3) +
                        (flag ? 0 : 1)]);
    return 0;
  case 3: /* FloatingPoint */
    FB(c, tl__fbr_scalar(t, 0, 2, &unit));
    if (unit < 0 || unit > 2)
      return SBAD(c, "FloatingPoint precision %d", unit);
    snprintf(fmt, cap, "%c", "efg"[unit]);
    return 0;
  case 4:
    snprintf(fmt, cap, "z");
    return 0;
  case 5:
    snprintf(fmt, cap, "u");
    return 0;
  case 6:
    snprintf(fmt, cap, "b");
    return 0;
  case 7: /* Decimal */
    bits = 128;
    FB(c, tl__fbr_scalar(t, 0, 4, &a));
    FB(c, tl__fbr_scalar(t, 1, 4, &b));
    FB(c, tl__fbr_scalar(t, 2, 4, &bits));
    if (a < 1 || (bits != 32 && bits != 64 && bits != 128 && bits != 256))
      return SBAD(c, "Decimal(%d, %d) of %d bits", a, b, bits);
    if (bits == 128)
      snprintf(fmt, cap, "d:%d,%d", a, b);
    else
      snprintf(fmt, cap, "d:%d,%d,%d", a, b, bits);
    return 0;
  case 8: /* Date */
    unit = 1;
    FB(c, tl__fbr_scalar(t, 0, 2, &unit));
    if (unit < 0 || unit > 1)
      return SBAD(c, "Date unit %d", unit);
    snprintf(fmt, cap, "td%c", unit ? 'm' : 'D');
    return 0;
  case 9: /* Time */
    unit = 1;
    bits = 32;
    FB(c, tl__fbr_scalar(t, 0, 2, &unit));
    FB(c, tl__fbr_scalar(t, 1, 4, &bits));
    if (unit < 0 || unit > 3 || bits != (unit < 2 ? 32 : 64))
      return SBAD(c, "Time unit %d with %d bits", unit, bits);
    snprintf(fmt, cap, "tt%c", unit_chars[unit]);
    return 0;
  case 10: { /* Timestamp */
    const char *tz;
    size_t tzlen;
    FB(c, tl__fbr_scalar(t, 0, 2, &unit));
    FB(c, tl__fbr_string(t, 1, &tz, &tzlen));
    if (unit < 0 || unit > 3)
      return SBAD(c, "Timestamp unit %d", unit);
    if (tz && (memchr(tz, 0, tzlen) || tzlen + 8 > cap))
      return SBAD(c, "bad Timestamp time zone");
    snprintf(fmt, cap, "ts%c:%.*s", unit_chars[unit], (int)tzlen, tz ? tz : "");
    return 0;
  }
  case 11: /* Interval */
    FB(c, tl__fbr_scalar(t, 0, 2, &unit));
    if (unit < 0 || unit > 2)
      return SBAD(c, "Interval unit %d", unit);
    snprintf(fmt, cap, "ti%c", "MDn"[unit]);
    return 0;
  case 12:
    snprintf(fmt, cap, "+l");
    return 0;
  case 13:
    snprintf(fmt, cap, "+s");
    return 0;
  case 14: { /* Union */
    tl__fbv ids;
    FB(c, tl__fbr_scalar(t, 0, 2, &unit));
    FB(c, tl__fbr_vec(t, 1, 4, &ids));
    if (unit < 0 || unit > 1)
      return SBAD(c, "Union mode %d", unit);
    if (nkids > TL__MAX_UNION || (ids.p && ids.len != nkids))
      return SBAD(c, "Union type ids do not match its children");
    size_t at = (size_t)snprintf(fmt, cap, "+u%c:", unit ? 'd' : 's');
    for (int64_t i = 0; i < nkids; i++) {
      int32_t id = (int32_t)i;
      if (ids.p)
        memcpy(&id, ids.p + ids.pos + 4 * (size_t)i, 4);
      if (id < 0 || id > 127)
        return SBAD(c, "Union type id %d", id);
      at += (size_t)snprintf(fmt + at, cap - at, "%s%d", i ? "," : "", id);
    }
    return 0;
  }
  case 15: /* FixedSizeBinary */
    FB(c, tl__fbr_scalar(t, 0, 4, &a));
    if (a < 0)
      return SBAD(c, "FixedSizeBinary width %d", a);
    snprintf(fmt, cap, "w:%d", a);
    return 0;
  case 16: /* FixedSizeList */
    FB(c, tl__fbr_scalar(t, 0, 4, &a));
    if (a < 0)
      return SBAD(c, "FixedSizeList size %d", a);
    snprintf(fmt, cap, "+w:%d", a);
    return 0;
  case 17: /* Map */
    FB(c, tl__fbr_scalar(t, 0, 1, &flag));
    if (flag)
      *flags |= ARROW_FLAG_MAP_KEYS_SORTED;
    snprintf(fmt, cap, "+m");
    return 0;
  case 18: /* Duration */
    unit = 1;
    FB(c, tl__fbr_scalar(t, 0, 2, &unit));
    if (unit < 0 || unit > 3)
      return SBAD(c, "Duration unit %d", unit);
    snprintf(fmt, cap, "tD%c", unit_chars[unit]);
    return 0;
  case 19:
    snprintf(fmt, cap, "Z");
    return 0;
  case 20:
    snprintf(fmt, cap, "U");
    return 0;
  case 21:
    snprintf(fmt, cap, "+L");
    return 0;
  }
  return SBAD(c, "unsupported type (Type union tag %d)", type_id);
}

static int parse_field(sctx *c, const tl__fbt *f, struct ArrowSchema *out,
                       int depth);

static int parse_kids(sctx *c, const tl__fbv *kids, struct ArrowSchema *s,
                      int depth) {
  for (uint32_t i = 0; i < kids->len; i++) {
    tl__fbt k;
    FB(c, tl__fbr_vec_table(kids, i, &k));
    int rc = parse_field(c, &k, s->children[i], depth + 1);
    if (rc)
      return rc;
  }
  return 0;
}

static int parse_field(sctx *c, const tl__fbt *f, struct ArrowSchema *out,
                       int depth) {
  if (depth > TL__MAX_DEPTH)
    return SBAD(c, "fields nested too deeply");
  if (++c->nfields > TL__MAX_FIELDS)
    return SBAD(c, "too many fields");
  const char *nm;
  size_t nlen;
  uint8_t nullable = 0, type_id = 0;
  tl__fbt type, dict;
  tl__fbv kids;
  FB(c, tl__fbr_string(f, 0, &nm, &nlen));
  FB(c, tl__fbr_scalar(f, 1, 1, &nullable));
  FB(c, tl__fbr_scalar(f, 2, 1, &type_id));
  FB(c, tl__fbr_table(f, 3, &type));
  FB(c, tl__fbr_table(f, 4, &dict));
  FB(c, tl__fbr_vec(f, 5, 4, &kids));
  if (kids.len > TL__MAX_FIELDS)
    return SBAD(c, "too many fields");
  /* Room for "+ud:" and 128 ids, or a time zone. */
  const char *tz = NULL;
  size_t tzlen = 0;
  if (type_id == 10)
    FB(c, tl__fbr_string(&type, 1, &tz, &tzlen));
  if ((c->budget -= 64 + (int64_t)(nlen + tzlen)) < 0)
    return SBAD(c, "schema too large");
  size_t cap = 16 + TL__MAX_UNION * 4 + tzlen;
  char *fmt = malloc(cap), *name = malloc(nlen + 1), *meta = NULL;
  char idx[2] = "i";
  int64_t flags = nullable ? ARROW_FLAG_NULLABLE : 0, vflags = 0;
  int rc = 0;
  if (!fmt || !name) {
    rc = TL_ENOMEM;
    goto done;
  }
  if (nlen)
    memcpy(name, nm, nlen);
  name[nlen] = 0;
  if ((rc = type_format(c, type_id, &type, kids.len, fmt, cap, &vflags)))
    goto done;
  if ((rc = read_metadata(c, f, 6, &meta)))
    goto done;
  if (dict.p) {
    int64_t id = 0;
    int16_t kind = 0;
    uint8_t ordered = 0;
    tl__fbt it;
    const char *why;
    if ((why = tl__fbr_scalar(&dict, 0, 8, &id)) ||
        (why = tl__fbr_table(&dict, 1, &it)) ||
        (why = tl__fbr_scalar(&dict, 2, 1, &ordered)) ||
        (why = tl__fbr_scalar(&dict, 3, 2, &kind))) {
      rc = SBAD(c, "%s", why);
      goto done;
    }
    if (kind != 0) {
      rc = SBAD(c, "dictionary kind %d", kind);
      goto done;
    }
    if (it.p) {
      char tmp[8];
      int64_t unused = 0;
      if ((rc = type_format(c, 2, &it, 0, tmp, sizeof tmp, &unused)))
        goto done;
      idx[0] = tmp[0];
    }
    for (int i = 0; i < c->ndicts; i++)
      if (c->dict_ids[i] == id) {
        rc = SBAD(c, "dictionary id %" PRId64 " used twice", id);
        goto done;
      }
    if (c->ndicts == c->capdicts) {
      int ncap = c->capdicts ? c->capdicts * 2 : 8;
      int64_t *p = realloc(c->dict_ids, (size_t)ncap * sizeof *p);
      if (!p) {
        rc = TL_ENOMEM;
        goto done;
      }
      c->dict_ids = p;
      c->capdicts = ncap;
    }
    c->dict_ids[c->ndicts++] = id;
    if (ordered)
      flags |= ARROW_FLAG_DICTIONARY_ORDERED;
    if ((rc = tl__schema_alloc(out, idx, name, meta, flags, 0, true)) ||
        (rc = tl__schema_alloc(out->dictionary, fmt, NULL, NULL,
                               vflags | ARROW_FLAG_NULLABLE, kids.len, false)))
      goto done;
    rc = parse_kids(c, &kids, out->dictionary, depth + 1);
  } else {
    if ((rc = tl__schema_alloc(out, fmt, name, meta, flags | vflags, kids.len,
                               false)))
      goto done;
    rc = parse_kids(c, &kids, out, depth);
  }
done:
  free(fmt);
  free(name);
  free(meta);
  return rc;
}

static void find_values(rdict *dicts, const tl__plan *p) {
  if (p->dict)
    dicts[p->dict_slot].value = p->dict;
  for (int64_t i = 0; i < p->nkids; i++)
    find_values(dicts, &p->kids[i]);
}

static int read_schema(tl_ipc_reader *r, const tl__fbt *st, char *err,
                       size_t errcap) {
  sctx c = {0};
  c.err = err;
  c.errcap = errcap;
  c.budget = SCHEMA_BUDGET;
  int16_t endian = 0;
  tl__fbv fields;
  char *meta = NULL;
  struct ArrowSchema s = {0};
  tl__plan *plan = NULL;
  int ndicts = 0;
  int rc = 0;
  const char *why;
  if ((why = tl__fbr_scalar(st, 0, 2, &endian)) ||
      (why = tl__fbr_vec(st, 1, 4, &fields))) {
    rc = bad(err, errcap, "%s", why);
    goto fail;
  }
  if (endian != 0) {
    rc = bad(err, errcap, "big-endian data is not supported");
    goto fail;
  }
  if (fields.len > TL__MAX_FIELDS) {
    rc = bad(err, errcap, "too many fields");
    goto fail;
  }
  if ((rc = read_metadata(&c, st, 2, &meta)) ||
      (rc = tl__schema_alloc(&s, "+s", "", meta, 0, fields.len, false)) ||
      (rc = parse_kids(&c, &fields, &s, 0)))
    goto fail;
  /* The plan points into the schema: move it to its place first. */
  r->schema = s;
  s.release = NULL;
  char why2[160];
  rc = tl__plan_new(&r->schema, &plan, &ndicts, why2, sizeof why2);
  if (rc == TL_EINVAL) {
    rc = bad(err, errcap, "%s", why2);
    goto fail;
  }
  if (rc)
    goto fail;
  if (ndicts != c.ndicts) {
    rc = bad(err, errcap, "dictionary fields do not match");
    goto fail;
  }
  if (ndicts && !(r->dicts = calloc((size_t)ndicts, sizeof *r->dicts))) {
    rc = TL_ENOMEM;
    goto fail;
  }
  for (int i = 0; i < ndicts; i++)
    r->dicts[i].id = c.dict_ids[i];
  find_values(r->dicts, plan);
  r->ndicts = ndicts;
  r->plan = plan;
  free(meta);
  free(c.dict_ids);
  return 0;
fail:
  tl__plan_free(plan);
  tl_arrow_schema_release(&s);
  tl_arrow_schema_release(&r->schema);
  free(r->dicts);
  r->dicts = NULL;
  free(meta);
  free(c.dict_ids);
  return rc;
}

/* ---- Record batches ------------------------------------------------------ */

typedef struct dctx {
  tl_ipc_reader *r;
  tl__fbv nodes, bufs;
  uint32_t ni, bi;
  const uint64_t *boff; /* each buffer's place in the copy */
  tl__body *body;
  bool v4;
  char *err;
  size_t errcap;
} dctx;

#define DBAD(d, ...) bad((d)->err, (d)->errcap, __VA_ARGS__)

static const int64_t zero_offsets[1];

static int next_node(dctx *d, const tl__plan *p, int64_t *len, int64_t *nulls) {
  if (d->ni >= d->nodes.len)
    return DBAD(d, "fewer field nodes than fields");
  const uint8_t *at = d->nodes.p + d->nodes.pos + 16 * (size_t)d->ni++;
  memcpy(len, at, 8);
  memcpy(nulls, at + 8, 8);
  if (*len < 0 || *len > MAX_ROWS || *nulls < 0 || *nulls > *len)
    return DBAD(d,
                "field \"%s\": length %" PRId64 " / null count %" PRId64
                " out of range",
                p->s->name ? p->s->name : "", *len, *nulls);
  return 0;
}

static int next_buf(dctx *d, const uint8_t **p, int64_t *len) {
  if (d->bi >= d->bufs.len)
    return DBAD(d, "fewer buffers than the fields need");
  const uint8_t *at = d->bufs.p + d->bufs.pos + 16 * (size_t)d->bi;
  memcpy(len, at + 8, 8);
  *p = d->body->p + d->boff[d->bi++];
  return 0;
}

static const char *fname(const tl__plan *p) {
  return p->s->name ? p->s->name : "";
}

/* Offsets: `len + 1` of them within the buffer, from >= 0, not
 * decreasing, the last at most `limit`. */
static int check_offsets(dctx *d, const tl__plan *p, const uint8_t *o,
                         int64_t olen, int ow, int64_t len, int64_t limit,
                         const void **out) {
  if (!len && olen < ow) {
    *out = zero_offsets;
    return 0;
  }
  if (olen / ow < len + 1)
    return DBAD(d, "field \"%s\": offsets buffer too short", fname(p));
  int64_t prev = 0;
  for (int64_t i = 0; i <= len; i++) {
    int64_t v;
    if (ow == 4) {
      int32_t x;
      memcpy(&x, o + 4 * i, 4);
      v = x;
    } else {
      memcpy(&v, o + 8 * i, 8);
    }
    if (v < prev)
      return DBAD(d, "field \"%s\": offsets decrease or are negative",
                  fname(p));
    prev = v;
  }
  if (prev > limit)
    return DBAD(
        d, "field \"%s\": offsets beyond the data (%" PRId64 " > %" PRId64 ")",
        fname(p), prev, limit);
  *out = o;
  return 0;
}

static int decode(dctx *d, const tl__plan *p, struct ArrowArray *out);

static int decode_kids(dctx *d, const tl__plan *p, struct ArrowArray *out,
                       int64_t min_len) {
  for (int64_t i = 0; i < p->nkids; i++) {
    int rc = decode(d, &p->kids[i], out->children[i]);
    if (rc)
      return rc;
    if (out->children[i]->length < min_len)
      return DBAD(d, "field \"%s\": child shorter than its parent",
                  fname(&p->kids[i]));
  }
  return 0;
}

/* Indices of a dictionary-encoded column within the dictionary. */
static int check_indices(dctx *d, const tl__plan *p, struct ArrowArray *out,
                         const rdict *rd) {
  const uint8_t *v = out->buffers[1], *valid = out->buffers[0];
  int w = p->t.width;
  for (int64_t i = 0; i < out->length; i++) {
    if (valid && !tl__bit(valid, i))
      continue;
    int64_t x = 0;
    uint64_t u = 0;
    memcpy(&u, v + i * w, (size_t)w);
    if (p->t.is_signed && w < 8 && (u >> (w * 8 - 1)) & 1)
      x = -1;
    else
      x = (int64_t)u;
    if (x < 0 || x >= rd->arr.length)
      return DBAD(d, "field \"%s\": dictionary index out of range", fname(p));
  }
  return 0;
}

static int decode(dctx *d, const tl__plan *p, struct ArrowArray *out) {
  int layout = p->t.layout;
  int64_t len = 0, nulls = 0, blen = 0, olen = 0;
  const uint8_t *b, *o;
  int rc = next_node(d, p, &len, &nulls);
  if (rc)
    return rc;
  rc = tl__array_alloc(out, tl__layout_nbuffers(layout), p->nkids,
                       p->dict != NULL, d->body);
  if (rc)
    return rc;
  out->length = len;
  if (layout == TL__L_NULL) {
    out->null_count = len;
    return 0;
  }
  if (layout == TL__L_SUNION || layout == TL__L_DUNION) {
    if (d->v4) { /* V4 unions had a validity bitmap */
      if ((rc = next_buf(d, &b, &blen)))
        return rc;
      if (nulls)
        return DBAD(d, "field \"%s\": nulls in a V4 union", fname(p));
    }
  } else {
    if ((rc = next_buf(d, &b, &blen)))
      return rc;
    if (nulls) {
      if (blen < (len + 7) / 8)
        return DBAD(d, "field \"%s\": validity bitmap too short", fname(p));
      if (len - tl__bits_count(b, 0, len) != nulls)
        return DBAD(d, "field \"%s\": null count does not match the bitmap",
                    fname(p));
      out->buffers[0] = b;
    }
    out->null_count = nulls;
  }
  switch (layout) {
  case TL__L_FIXED:
  case TL__L_BOOL: {
    if ((rc = next_buf(d, &b, &blen)))
      return rc;
    int64_t need = layout == TL__L_BOOL ? (len + 7) / 8 : len * p->t.width;
    if (blen < need)
      return DBAD(d, "field \"%s\": values buffer too short", fname(p));
    out->buffers[1] = b;
    if (p->dict) {
      const rdict *rd = &d->r->dicts[p->dict_slot];
      if (!rd->arr.release)
        return DBAD(d, "field \"%s\": dictionary %" PRId64 " not received",
                    fname(p), rd->id);
      if ((rc = check_indices(d, p, out, rd)))
        return rc;
      return tl__array_share(&rd->arr, out->dictionary);
    }
    return 0;
  }
  case TL__L_VAR32:
  case TL__L_VAR64: {
    int ow = layout == TL__L_VAR64 ? 8 : 4;
    if ((rc = next_buf(d, &o, &olen)) || (rc = next_buf(d, &b, &blen)))
      return rc;
    out->buffers[2] = b;
    return check_offsets(d, p, o, olen, ow, len, blen, &out->buffers[1]);
  }
  case TL__L_LIST32:
  case TL__L_LIST64: {
    int ow = layout == TL__L_LIST64 ? 8 : 4;
    if ((rc = next_buf(d, &o, &olen)) || (rc = decode_kids(d, p, out, 0)))
      return rc;
    return check_offsets(d, p, o, olen, ow, len, out->children[0]->length,
                         &out->buffers[1]);
  }
  case TL__L_FSL:
    return decode_kids(d, p, out, len * p->t.size);
  case TL__L_STRUCT:
    return decode_kids(d, p, out, len);
  case TL__L_SUNION:
  case TL__L_DUNION: {
    bool dense = layout == TL__L_DUNION;
    int map[256];
    for (int i = 0; i < 256; i++)
      map[i] = -1;
    for (int k = 0; k < p->t.nids; k++)
      map[(uint8_t)p->t.ids[k]] = k;
    if ((rc = next_buf(d, &b, &blen)))
      return rc;
    if (blen < len)
      return DBAD(d, "field \"%s\": union type ids too short", fname(p));
    out->buffers[0] = b;
    if (dense) {
      if ((rc = next_buf(d, &o, &olen)))
        return rc;
      if (olen / 4 < len)
        return DBAD(d, "field \"%s\": union offsets too short", fname(p));
      out->buffers[1] = o;
    }
    if ((rc = decode_kids(d, p, out, dense ? 0 : len)))
      return rc;
    for (int64_t i = 0; i < len; i++) {
      int k = map[b[i]];
      if (k < 0)
        return DBAD(d, "field \"%s\": undeclared union type id %d", fname(p),
                    (int8_t)b[i]);
      if (dense) {
        int32_t off;
        memcpy(&off, o + 4 * i, 4);
        if (off < 0 || off >= out->children[k]->length)
          return DBAD(d, "field \"%s\": union offset out of range", fname(p));
      }
    }
    return 0;
  }
  }
  return DBAD(d, "field \"%s\": unsupported layout", fname(p));
}

/* A message body: `n` pieces read as if concatenated, `len` bytes of them
 * in use (the message's bodyLength). */
typedef struct rbody {
  const tl_slice *part;
  size_t n;
  int64_t len;
} rbody;

/* Copies body bytes [off, off + len) (in range) to `dst`. `*at`/`*start`
 * remember the piece the last copy ended in and where it begins, since
 * buffers usually come in order. */
static void body_copy(const rbody *b, uint64_t off, uint8_t *dst, size_t len,
                      size_t *at, uint64_t *start) {
  size_t i = *at;
  uint64_t st = *start;
  if (off < st) {
    i = 0;
    st = 0;
  }
  while (i < b->n && off - st >= b->part[i].n) {
    st += b->part[i].n;
    i++;
  }
  while (len) {
    size_t in = (size_t)(off - st), take = b->part[i].n - in;
    if (take > len)
      take = len;
    if (take) /* an empty piece may be {NULL, 0} */
      memcpy(dst, b->part[i].p + in, take);
    dst += take;
    len -= take;
    off += take;
    if (in + take == b->part[i].n) {
      st += b->part[i].n;
      i++;
    }
  }
  *at = i;
  *start = st;
}

/* A body of at least `n` bytes for the arrays; uninitialized (the caller
 * fills every byte), freed by tl__body_unref. The reader's spare when
 * nobody else holds it and it is large enough (and not far too large). */
static tl__body *body_alloc(tl_ipc_reader *r, size_t n) {
  tl__body *b = r->spare;
  if (b && __atomic_load_n(&b->refs, __ATOMIC_ACQUIRE) == 1 && b->n >= n &&
      b->n / 4 <= n) {
    tl__body_ref(b);
    return b;
  }
  if (!(b = malloc(sizeof *b)))
    return NULL;
  if (!(b->p = malloc(n ? n : 1))) {
    free(b);
    return NULL;
  }
  b->refs = 1;
  b->n = n;
  /* Keep it for the next batch in place of the old spare. */
  tl__body_unref(r->spare);
  tl__body_ref(b);
  r->spare = b;
  return b;
}

/* Decodes a RecordBatch table: `root` gets the batch (a struct of the
 * schema's columns), or with `value` set the single column of a
 * dictionary's values. */
static int read_batch(tl_ipc_reader *r, const tl__fbt *rb, bool v4,
                      const rbody *body, const tl__plan *value,
                      struct ArrowArray *out, char *err, size_t errcap) {
  int64_t body_len = body->len;
  dctx d = {0};
  d.r = r;
  d.v4 = v4;
  d.err = err;
  d.errcap = errcap;
  int64_t length = 0;
  tl__fbt comp;
  const char *why;
  uint64_t *boff = NULL;
  struct ArrowArray a = {0};
  int rc = 0;
  if ((why = tl__fbr_scalar(rb, 0, 8, &length)) ||
      (why = tl__fbr_vec(rb, 1, 16, &d.nodes)) ||
      (why = tl__fbr_vec(rb, 2, 16, &d.bufs)) ||
      (why = tl__fbr_table(rb, 3, &comp)))
    return bad(err, errcap, "%s", why);
  if (comp.p)
    return bad(err, errcap, "compressed bodies are not supported");
  if (length < 0 || length > MAX_ROWS)
    return bad(err, errcap, "batch length %" PRId64 " out of range", length);
  /* Each buffer in the body, copied 8-byte aligned. */
  if (!(boff = malloc(((size_t)d.bufs.len + 1) * sizeof *boff)))
    return TL_ENOMEM;
  uint64_t total = 0, sum = 0;
  for (uint32_t i = 0; i < d.bufs.len; i++) {
    int64_t off, len;
    const uint8_t *at = d.bufs.p + d.bufs.pos + 16 * (size_t)i;
    memcpy(&off, at, 8);
    memcpy(&len, at + 8, 8);
    if (off < 0 || len < 0 || off > body_len || len > body_len - off) {
      rc = bad(err, errcap, "buffer %u out of the body", i);
      goto done;
    }
    sum += (uint64_t)len;
    if (sum > (uint64_t)body_len) {
      rc = bad(err, errcap, "buffers overlap or exceed the body");
      goto done;
    }
    boff[i] = total;
    total += ((uint64_t)len + 7) & ~(uint64_t)7;
  }
  if (!(d.body = body_alloc(r, (size_t)total))) {
    rc = TL_ENOMEM;
    goto done;
  }
  size_t at_part = 0;
  uint64_t at_start = 0;
  for (uint32_t i = 0; i < d.bufs.len; i++) {
    int64_t off, len;
    const uint8_t *at = d.bufs.p + d.bufs.pos + 16 * (size_t)i;
    memcpy(&off, at, 8);
    memcpy(&len, at + 8, 8);
    uint8_t *dst = d.body->p + boff[i];
    if (len)
      body_copy(body, (uint64_t)off, dst, (size_t)len, &at_part, &at_start);
    /* The padding is zeroed, as a writer would have it. */
    size_t pad = (size_t)((((uint64_t)len + 7) & ~(uint64_t)7) - (uint64_t)len);
    memset(dst + len, 0, pad);
  }
  d.boff = boff;
  if (value) {
    rc = decode(&d, value, &a);
    if (!rc && a.length != length)
      rc = bad(err, errcap, "dictionary length differs from its batch");
  } else {
    const tl__plan *p = r->plan;
    rc = tl__array_alloc(&a, 1, p->nkids, false, d.body);
    if (!rc)
      a.length = length;
    for (int64_t i = 0; i < p->nkids && !rc; i++) {
      rc = decode(&d, &p->kids[i], a.children[i]);
      if (!rc && a.children[i]->length != length)
        rc = bad(err, errcap,
                 "column \"%s\" has %" PRId64 " rows, the batch %" PRId64,
                 fname(&p->kids[i]), a.children[i]->length, length);
    }
  }
  if (!rc && (d.ni != d.nodes.len || d.bi != d.bufs.len))
    rc = bad(err, errcap, "more field nodes or buffers than fields");
done:
  if (rc)
    tl_arrow_array_release(&a);
  else
    *out = a;
  tl__body_unref(d.body);
  free(boff);
  return rc;
}

/* ---- Messages ------------------------------------------------------------ */

/* The Message table and its body length. */
static int read_message(const uint8_t *hdr, size_t hlen, tl__fbt *msg,
                        int16_t *version, uint8_t *type, tl__fbt *header,
                        int64_t *body_len, char *err, size_t errcap) {
  const char *why;
  *version = 0;
  *type = 0;
  *body_len = 0;
  if ((why = tl__fbr_root(hdr, hlen, msg)) ||
      (why = tl__fbr_scalar(msg, 0, 2, version)) ||
      (why = tl__fbr_scalar(msg, 1, 1, type)) ||
      (why = tl__fbr_table(msg, 2, header)) ||
      (why = tl__fbr_scalar(msg, 3, 8, body_len)))
    return bad(err, errcap, "message: %s", why);
  if (*version != METADATA_V4 && *version != METADATA_V5)
    return bad(err, errcap, "unsupported metadata version %d", *version);
  if (*body_len < 0)
    return bad(err, errcap, "negative body length");
  if (!header->p)
    return bad(err, errcap, "message without header");
  return 0;
}

int tl_ipc_reader_feed(tl_ipc_reader *r, const uint8_t *header,
                       size_t header_len, const uint8_t *body, size_t body_len,
                       int *kind, char *err, size_t errcap) {
  tl_slice one = {body, body_len};
  return tl_ipc_reader_feed_parts(r, header, header_len, &one, 1, kind, err,
                                  errcap);
}

int tl_ipc_reader_feed_parts(tl_ipc_reader *r, const uint8_t *header,
                             size_t header_len, const tl_slice *parts,
                             size_t nparts, int *kind, char *err,
                             size_t errcap) {
  size_t body_len = 0;
  for (size_t i = 0; i < nparts; i++) {
    if (parts[i].n > SIZE_MAX - body_len)
      return bad(err, errcap, "body pieces exceed the address space");
    body_len += parts[i].n;
  }
  tl__fbt msg, h;
  int16_t version;
  uint8_t type;
  int64_t blen;
  if (err && errcap)
    err[0] = 0;
  int rc = read_message(header, header_len, &msg, &version, &type, &h, &blen,
                        err, errcap);
  if (rc)
    return rc;
  if ((uint64_t)blen > body_len)
    return bad(err, errcap, "body of %zu bytes, the message says %" PRId64,
               body_len, blen);
  rbody body = {parts, nparts, blen};
  if (type != TL_IPC_SCHEMA && !r->plan)
    return bad(err, errcap, "the first message must be a Schema");
  switch (type) {
  case TL_IPC_SCHEMA:
    if (r->plan)
      return bad(err, errcap, "a second Schema message");
    rc = read_schema(r, &h, err, errcap);
    break;
  case TL_IPC_DICTIONARY: {
    int64_t id = 0;
    uint8_t delta = 0;
    tl__fbt data;
    const char *why;
    if ((why = tl__fbr_scalar(&h, 0, 8, &id)) ||
        (why = tl__fbr_table(&h, 1, &data)) ||
        (why = tl__fbr_scalar(&h, 2, 1, &delta)))
      return bad(err, errcap, "DictionaryBatch: %s", why);
    rdict *rd = NULL;
    for (int i = 0; i < r->ndicts; i++)
      if (r->dicts[i].id == id)
        rd = &r->dicts[i];
    if (!rd)
      return bad(err, errcap, "unknown dictionary id %" PRId64, id);
    if (delta)
      return bad(err, errcap, "delta dictionaries are not supported");
    if (!data.p)
      return bad(err, errcap, "DictionaryBatch without data");
    const tl__plan *value = rd->value;
    if (!value)
      return bad(err, errcap, "dictionary id %" PRId64 " has no field", id);
    struct ArrowArray a;
    rc = read_batch(r, &data, version == METADATA_V4, &body, value, &a, err,
                    errcap);
    if (!rc) {
      tl_arrow_array_release(&rd->arr);
      rd->arr = a;
    }
    break;
  }
  case TL_IPC_BATCH: {
    struct ArrowArray a;
    rc =
        read_batch(r, &h, version == METADATA_V4, &body, NULL, &a, err, errcap);
    if (!rc) {
      tl_arrow_array_release(&r->last);
      r->last = a;
    }
    break;
  }
  default:
    return bad(err, errcap, "unsupported message type %d", type);
  }
  if (!rc)
    *kind = type;
  else if (rc == TL_ENOMEM && err && errcap && !err[0])
    snprintf(err, errcap, "out of memory");
  return rc;
}

int tl_ipc_reader_feed_stream(tl_ipc_reader *r, const uint8_t *p, size_t n,
                              int (*on_batch)(void *ctx,
                                              const struct ArrowArray *a),
                              void *ctx, char *err, size_t errcap) {
  size_t at = 0;
  if (err && errcap)
    err[0] = 0;
  while (at < n) {
    size_t pre = 4;
    if (n - at < 4)
      return bad(err, errcap, "truncated message prefix at byte %zu", at);
    uint32_t v = tl_get_u32(p + at);
    if (v == 0xFFFFFFFFu) { /* continuation marker, then the length */
      if (n - at < 8)
        return bad(err, errcap, "truncated message prefix at byte %zu", at);
      v = tl_get_u32(p + at + 4);
      pre = 8;
    }
    int32_t len = (int32_t)v;
    if (len == 0)
      return 0; /* end of stream */
    if (len < 0 || (size_t)len > n - at - pre)
      return bad(err, errcap,
                 "message of %d bytes at byte %zu exceeds the "
                 "stream",
                 len, at);
    const uint8_t *hdr = p + at + pre;
    tl__fbt msg, h;
    int16_t version;
    uint8_t type;
    int64_t blen;
    int rc = read_message(hdr, (size_t)len, &msg, &version, &type, &h, &blen,
                          err, errcap);
    if (rc)
      return rc;
    size_t left = n - at - pre - (size_t)len;
    if ((uint64_t)blen > left)
      return bad(err, errcap,
                 "body of %" PRId64 " bytes at byte %zu exceeds "
                 "the stream",
                 blen, at);
    int kind = 0;
    rc = tl_ipc_reader_feed(r, hdr, (size_t)len, hdr + len, (size_t)blen, &kind,
                            err, errcap);
    if (rc)
      return rc;
    if (kind == TL_IPC_BATCH && on_batch) {
      struct ArrowArray a;
      tl_ipc_reader_take(r, &a);
      rc = on_batch(ctx, &a);
      tl_arrow_array_release(&a);
      if (rc)
        return rc;
    }
    at += pre + (size_t)len + (size_t)blen;
  }
  return 0;
}

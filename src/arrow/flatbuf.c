/* flatbuf.c - a minimal flatbuffer builder and a bounds-checked reader, for
 * the Arrow IPC metadata (Schema.fbs, Message.fbs). Written from the
 * flatbuffers binary format: little-endian scalars, tables that start with
 * an int32 offset back to their vtable (uint16 vtable size, uint16 table
 * size, uint16 field offsets), uint32 offsets forward to children, vectors
 * and strings prefixed with a uint32 count. */
#include <stdlib.h>

#include "arrow.h"

/* ---- Builder ------------------------------------------------------------ */

void tl__fbb_init(tl__fbb *b) {
  memset(b, 0, sizeof *b);
  b->minalign = 1;
}

void tl__fbb_free(tl__fbb *b) {
  free(b->buf);
  b->buf = NULL;
  b->cap = b->used = 0;
}

/* Room for `n` more bytes at the front; the data moves to the end of a
 * larger buffer. */
static bool grow(tl__fbb *b, size_t n) {
  if (b->oom)
    return false;
  if (b->cap - b->used >= n)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->used < n) {
    if (cap > SIZE_MAX / 2) {
      b->oom = true;
      return false;
    }
    cap *= 2;
  }
  uint8_t *p = malloc(cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  if (b->used)
    memcpy(p + cap - b->used, b->buf + b->cap - b->used, b->used);
  free(b->buf);
  b->buf = p;
  b->cap = cap;
  return true;
}

static void push(tl__fbb *b, const void *p, size_t n) {
  if (!grow(b, n))
    return;
  b->used += n;
  memcpy(b->buf + b->cap - b->used, p, n);
}

static void pad(tl__fbb *b, size_t n) {
  if (!n || !grow(b, n))
    return;
  b->used += n;
  memset(b->buf + b->cap - b->used, 0, n);
}

/* Pads so that after `extra` more bytes the front is `align`-aligned
 * (relative to the end, which the finished buffer keeps aligned). */
static void align_for(tl__fbb *b, size_t align, size_t extra) {
  if (align > b->minalign)
    b->minalign = align;
  pad(b, (align - ((b->used + extra) & (align - 1))) & (align - 1));
}

uint32_t tl__fbb_string(tl__fbb *b, const char *s, size_t n) {
  align_for(b, 4, n + 1);
  pad(b, 1); /* the NUL the format asks for */
  if (n)
    push(b, s, n);
  uint32_t len = (uint32_t)n;
  push(b, &len, 4);
  return (uint32_t)b->used;
}

uint32_t tl__fbb_vec(tl__fbb *b, const void *elems, size_t n, size_t esize,
                     size_t align) {
  align_for(b, align > 4 ? align : 4, n * esize);
  if (n)
    push(b, elems, n * esize);
  uint32_t len = (uint32_t)n;
  push(b, &len, 4);
  return (uint32_t)b->used;
}

uint32_t tl__fbb_vec_refs(tl__fbb *b, const uint32_t *refs, size_t n) {
  align_for(b, 4, n * 4);
  for (size_t i = n; i-- > 0;) {
    uint32_t v = (uint32_t)(b->used + 4 - refs[i]);
    push(b, &v, 4);
  }
  uint32_t len = (uint32_t)n;
  push(b, &len, 4);
  return (uint32_t)b->used;
}

void tl__fbb_start(tl__fbb *b) {
  memset(b->fields, 0, sizeof b->fields);
  b->nfields = 0;
  b->tstart = b->used;
}

static void mark(tl__fbb *b, int field) {
  if (field < 0 || field >= 16) {
    b->oom = true; /* a programming error; fails the message */
    return;
  }
  b->fields[field] = (uint32_t)b->used;
  if (field + 1 > b->nfields)
    b->nfields = field + 1;
}

void tl__fbb_scalar(tl__fbb *b, int field, const void *v, size_t size) {
  align_for(b, size, size);
  push(b, v, size);
  mark(b, field);
}

void tl__fbb_ref(tl__fbb *b, int field, uint32_t ref) {
  align_for(b, 4, 4);
  uint32_t v = (uint32_t)(b->used + 4 - ref);
  push(b, &v, 4);
  mark(b, field);
}

uint32_t tl__fbb_end(tl__fbb *b) {
  align_for(b, 4, 4);
  int32_t zero = 0;
  push(b, &zero, 4);
  size_t t = b->used;
  uint16_t vt[2 + 16];
  vt[0] = (uint16_t)(4 + 2 * b->nfields);
  vt[1] = (uint16_t)(t - b->tstart);
  for (int i = 0; i < b->nfields; i++)
    vt[2 + i] = b->fields[i] ? (uint16_t)(t - b->fields[i]) : 0;
  push(b, vt, vt[0]);
  if (b->oom)
    return 0;
  int32_t so = (int32_t)(b->used - t); /* the vtable comes first */
  memcpy(b->buf + b->cap - t, &so, 4);
  return (uint32_t)t;
}

int tl__fbb_finish(tl__fbb *b, uint32_t root, const uint8_t **p, size_t *n) {
  align_for(b, b->minalign > 8 ? b->minalign : 8, 4);
  uint32_t v = (uint32_t)(b->used + 4 - root);
  push(b, &v, 4);
  if (b->oom)
    return TL_ENOMEM;
  *p = b->buf + b->cap - b->used;
  *n = b->used;
  return 0;
}

/* ---- Reader ------------------------------------------------------------- */

static const char *table_at(const uint8_t *p, size_t n, size_t pos,
                            tl__fbt *t) {
  if (pos > n || n - pos < 4)
    return "flatbuffer table out of range";
  int32_t so;
  memcpy(&so, p + pos, 4);
  int64_t vt = (int64_t)pos - so;
  if (vt < 0 || (uint64_t)vt > n - 4)
    return "flatbuffer vtable out of range";
  uint16_t vtlen = tl_get_u16(p + vt), tlen = tl_get_u16(p + vt + 2);
  if (vtlen < 4 || (vtlen & 1) || (uint64_t)vtlen > n - (uint64_t)vt)
    return "flatbuffer vtable size invalid";
  if (tlen < 4 || tlen > n - pos)
    return "flatbuffer table size invalid";
  t->p = p;
  t->n = n;
  t->pos = pos;
  t->vt = (size_t)vt;
  t->vtlen = vtlen;
  t->tlen = tlen;
  return NULL;
}

const char *tl__fbr_root(const uint8_t *p, size_t n, tl__fbt *t) {
  if (n < 8)
    return "flatbuffer too short";
  return table_at(p, n, tl_get_u32(p), t);
}

/* The field's offset within the table, 0 if absent; `size` bytes must fit
 * inside the table. */
static const char *field_at(const tl__fbt *t, int field, size_t size,
                            size_t *off) {
  *off = 0;
  if (!t->p)
    return NULL;
  size_t slot = 4 + 2 * (size_t)field;
  if (slot + 2 > t->vtlen)
    return NULL;
  size_t o = tl_get_u16(t->p + t->vt + slot);
  if (!o)
    return NULL;
  if (o < 4 || o + size > t->tlen)
    return "flatbuffer field outside its table";
  *off = o;
  return NULL;
}

const char *tl__fbr_scalar(const tl__fbt *t, int field, size_t size,
                           void *out) {
  size_t o;
  const char *why = field_at(t, field, size, &o);
  if (!why && o)
    memcpy(out, t->p + t->pos + o, size);
  return why;
}

/* Follows the uoffset of a field to the position it points at. */
static const char *follow(const tl__fbt *t, int field, size_t *target) {
  size_t o;
  const char *why = field_at(t, field, 4, &o);
  *target = 0;
  if (why || !o)
    return why;
  size_t at = t->pos + o;
  uint64_t dst = (uint64_t)at + tl_get_u32(t->p + at);
  if (dst >= t->n)
    return "flatbuffer offset out of range";
  *target = (size_t)dst;
  return NULL;
}

const char *tl__fbr_table(const tl__fbt *t, int field, tl__fbt *out) {
  size_t at;
  memset(out, 0, sizeof *out);
  const char *why = follow(t, field, &at);
  if (why || !at)
    return why;
  return table_at(t->p, t->n, at, out);
}

static const char *vec_at(const uint8_t *p, size_t n, size_t at, size_t esize,
                          tl__fbv *out) {
  if (n - at < 4)
    return "flatbuffer vector out of range";
  uint32_t len = tl_get_u32(p + at);
  if ((uint64_t)len * esize > n - at - 4)
    return "flatbuffer vector longer than its buffer";
  out->p = p;
  out->n = n;
  out->pos = at + 4;
  out->len = len;
  return NULL;
}

const char *tl__fbr_vec(const tl__fbt *t, int field, size_t esize,
                        tl__fbv *out) {
  size_t at;
  memset(out, 0, sizeof *out);
  const char *why = follow(t, field, &at);
  if (why || !at)
    return why;
  return vec_at(t->p, t->n, at, esize, out);
}

const char *tl__fbr_string(const tl__fbt *t, int field, const char **s,
                           size_t *n) {
  tl__fbv v;
  *s = NULL;
  *n = 0;
  const char *why = tl__fbr_vec(t, field, 1, &v);
  if (why || !v.p)
    return why;
  *s = (const char *)v.p + v.pos;
  *n = v.len;
  return NULL;
}

const char *tl__fbr_vec_table(const tl__fbv *v, uint32_t i, tl__fbt *out) {
  memset(out, 0, sizeof *out);
  if (i >= v->len)
    return "flatbuffer vector index out of range";
  size_t at = v->pos + 4 * (size_t)i;
  uint64_t dst = (uint64_t)at + tl_get_u32(v->p + at);
  if (dst >= v->n)
    return "flatbuffer offset out of range";
  return table_at(v->p, v->n, (size_t)dst, out);
}

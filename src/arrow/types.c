/* types.c - what the builder, the IPC encoder and decoder and the text
 * rendering share: C Data Interface format strings parsed into types, the
 * checked schema plan, the release callbacks of the structs this module
 * makes, and bitmap helpers. */
#include <stdio.h>
#include <stdlib.h>

#include "arrow.h"

/* ---- Format strings ------------------------------------------------------ */

/* A non-negative decimal number up to INT32_MAX; *p moves past it. */
static bool parse_num(const char **p, int32_t *out, bool allow_neg) {
  const char *s = *p;
  bool neg = false;
  if (allow_neg && *s == '-') {
    neg = true;
    s++;
  }
  if (*s < '0' || *s > '9')
    return false;
  int64_t v = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (*s++ - '0');
    if (v > INT32_MAX)
      return false;
  }
  *out = (int32_t)(neg ? -v : v);
  *p = s;
  return true;
}

static int unit_of(char c) {
  switch (c) {
  case 's':
    return 0;
  case 'm':
    return 1;
  case 'u':
    return 2;
  case 'n':
    return 3;
  }
  return -1;
}

int tl__atype_parse(const char *f, tl__atype *t) {
  memset(t, 0, sizeof *t);
  t->tz = "";
  if (!f || !f[0])
    return TL_EINVAL;
  if (!f[1]) {
    static const char ints[] = "cCsSiIlL";
    const char *q = strchr(ints, f[0]);
    if (q) {
      int k = (int)(q - ints);
      t->id = TL__T_INT;
      t->layout = TL__L_FIXED;
      t->width = 1 << (k / 2);
      t->is_signed = !(k & 1);
      return 0;
    }
    t->layout = TL__L_FIXED;
    switch (f[0]) {
    case 'n':
      t->id = TL__T_NULL;
      t->layout = TL__L_NULL;
      return 0;
    case 'b':
      t->id = TL__T_BOOL;
      t->layout = TL__L_BOOL;
      return 0;
    case 'e':
    case 'f':
    case 'g':
      t->id = TL__T_FLOAT;
      t->width = f[0] == 'e' ? 2 : f[0] == 'f' ? 4 : 8;
      return 0;
    case 'z':
      t->id = TL__T_BINARY;
      t->layout = TL__L_VAR32;
      return 0;
    case 'Z':
      t->id = TL__T_LBINARY;
      t->layout = TL__L_VAR64;
      return 0;
    case 'u':
      t->id = TL__T_UTF8;
      t->layout = TL__L_VAR32;
      return 0;
    case 'U':
      t->id = TL__T_LUTF8;
      t->layout = TL__L_VAR64;
      return 0;
    }
    return TL_EINVAL;
  }
  const char *p = f + 2;
  switch (f[0]) {
  case 'd': { /* d:P,S[,bits] */
    int32_t bits = 128;
    if (f[1] != ':' || !parse_num(&p, &t->precision, false) || *p++ != ',' ||
        !parse_num(&p, &t->scale, true))
      return TL_EINVAL;
    if (*p == ',') {
      p++;
      if (!parse_num(&p, &bits, false))
        return TL_EINVAL;
    }
    if (*p || t->precision < 1 ||
        (bits != 32 && bits != 64 && bits != 128 && bits != 256))
      return TL_EINVAL;
    t->id = TL__T_DECIMAL;
    t->layout = TL__L_FIXED;
    t->width = bits / 8;
    return 0;
  }
  case 'w': /* w:N */
    if (f[1] != ':' || !parse_num(&p, &t->size, false) || *p)
      return TL_EINVAL;
    t->id = TL__T_FSB;
    t->layout = TL__L_FIXED;
    t->width = t->size;
    return 0;
  case 't':
    t->layout = TL__L_FIXED;
    if (f[1] == 'd' && !f[3] && (f[2] == 'D' || f[2] == 'm')) {
      t->id = f[2] == 'D' ? TL__T_DATE32 : TL__T_DATE64;
      t->unit = f[2] == 'D' ? 0 : 1;
      t->width = f[2] == 'D' ? 4 : 8;
      return 0;
    }
    if (f[1] == 't' && !f[3] && unit_of(f[2]) >= 0) {
      t->id = TL__T_TIME;
      t->unit = unit_of(f[2]);
      t->width = t->unit < 2 ? 4 : 8;
      return 0;
    }
    if (f[1] == 's' && unit_of(f[2]) >= 0 && f[3] == ':') {
      t->id = TL__T_TIMESTAMP;
      t->unit = unit_of(f[2]);
      t->width = 8;
      t->tz = f + 4;
      return 0;
    }
    if (f[1] == 'D' && !f[3] && unit_of(f[2]) >= 0) {
      t->id = TL__T_DURATION;
      t->unit = unit_of(f[2]);
      t->width = 8;
      return 0;
    }
    if (f[1] == 'i' && !f[3] && (f[2] == 'M' || f[2] == 'D' || f[2] == 'n')) {
      t->id = TL__T_INTERVAL;
      t->unit = f[2] == 'M' ? 0 : f[2] == 'D' ? 1 : 2;
      t->width = f[2] == 'M' ? 4 : f[2] == 'D' ? 8 : 16;
      return 0;
    }
    return TL_EINVAL;
  case '+':
    switch (f[1]) {
    case 'l':
    case 'L':
    case 's':
    case 'm':
      if (f[2])
        return TL_EINVAL;
      t->id = f[1] == 'l'   ? TL__T_LIST
              : f[1] == 'L' ? TL__T_LLIST
              : f[1] == 's' ? TL__T_STRUCT
                            : TL__T_MAP;
      t->layout = f[1] == 'L'   ? TL__L_LIST64
                  : f[1] == 's' ? TL__L_STRUCT
                                : TL__L_LIST32;
      return 0;
    case 'w':
      if (f[2] != ':')
        return TL_EINVAL;
      p = f + 3;
      if (!parse_num(&p, &t->size, false) || *p)
        return TL_EINVAL;
      t->id = TL__T_FSLIST;
      t->layout = TL__L_FSL;
      return 0;
    case 'u': /* +ud:I,J,... or +us:I,J,... */
      if ((f[2] != 'd' && f[2] != 's') || f[3] != ':')
        return TL_EINVAL;
      t->id = TL__T_UNION;
      t->layout = f[2] == 'd' ? TL__L_DUNION : TL__L_SUNION;
      p = f + 4;
      while (*p) {
        int32_t id;
        if (t->nids >= TL__MAX_UNION || !parse_num(&p, &id, false) ||
            id > 127 || (*p && *p != ','))
          return TL_EINVAL;
        for (int i = 0; i < t->nids; i++)
          if (t->ids[i] == id)
            return TL_EINVAL;
        t->ids[t->nids++] = (int8_t)id;
        if (*p == ',' && !*++p)
          return TL_EINVAL;
      }
      return 0;
    }
    return TL_EINVAL;
  }
  return TL_EINVAL;
}

int tl__layout_nbuffers(int layout) {
  switch (layout) {
  case TL__L_NULL:
    return 0;
  case TL__L_FIXED:
  case TL__L_BOOL:
  case TL__L_LIST32:
  case TL__L_LIST64:
  case TL__L_DUNION:
    return 2;
  case TL__L_VAR32:
  case TL__L_VAR64:
    return 3;
  default: /* FSL, STRUCT, SUNION */
    return 1;
  }
}

bool tl_arrow_is_numeric(const struct ArrowSchema *column) {
  if (!column || !column->format)
    return false;
  if (column->dictionary)
    column = column->dictionary;
  tl__atype t;
  if (tl__atype_parse(column->format, &t))
    return false;
  return t.id == TL__T_INT || t.id == TL__T_FLOAT || t.id == TL__T_DECIMAL ||
         t.id == TL__T_DURATION;
}

/* ---- Plans --------------------------------------------------------------- */

typedef struct plan_ctx {
  int nodes, ndicts;
  char *err;
  size_t errcap;
} plan_ctx;

static int plan_fail(plan_ctx *c, const struct ArrowSchema *s,
                     const char *why) {
  if (c->err && c->errcap)
    snprintf(c->err, c->errcap, "field %s%s%s: %s", s && s->name ? "\"" : "",
             s && s->name ? s->name : "?", s && s->name ? "\"" : "", why);
  return TL_EINVAL;
}

static void plan_clear(tl__plan *p) {
  if (p->dict) {
    plan_clear(p->dict);
    free(p->dict);
  }
  for (int64_t i = 0; i < p->nkids; i++)
    plan_clear(&p->kids[i]);
  free(p->kids);
}

static int plan_node(plan_ctx *c, const struct ArrowSchema *s, tl__plan *p,
                     int depth, bool in_dict);

/* The children of `s`, checked against what type `t` takes. */
static int plan_kids(plan_ctx *c, const struct ArrowSchema *s,
                     const tl__atype *t, tl__plan *p, int depth, bool in_dict) {
  int64_t n = s->n_children;
  if (n < 0 || (n && !s->children))
    return plan_fail(c, s, "bad children");
  switch (t->layout) {
  case TL__L_LIST32:
  case TL__L_LIST64:
  case TL__L_FSL:
    if (n != 1)
      return plan_fail(c, s, "a list takes one child");
    break;
  case TL__L_STRUCT:
    break;
  case TL__L_SUNION:
  case TL__L_DUNION:
    if (n != t->nids)
      return plan_fail(c, s, "union type ids do not match its children");
    break;
  default:
    if (n)
      return plan_fail(c, s, "children on a type without any");
  }
  if (t->id == TL__T_MAP) {
    const struct ArrowSchema *e = s->children[0];
    if (!e || !e->format || strcmp(e->format, "+s") || e->n_children != 2 ||
        e->dictionary)
      return plan_fail(c, s, "a map's child is a struct of key and value");
  }
  if (!n)
    return 0;
  p->kids = calloc((size_t)n, sizeof *p->kids);
  if (!p->kids)
    return TL_ENOMEM;
  p->nkids = n;
  for (int64_t i = 0; i < n; i++) {
    int rc = plan_node(c, s->children[i], &p->kids[i], depth + 1, in_dict);
    if (rc)
      return rc;
  }
  return 0;
}

static int plan_node(plan_ctx *c, const struct ArrowSchema *s, tl__plan *p,
                     int depth, bool in_dict) {
  p->dict_slot = -1;
  if (!s || !s->release || !s->format)
    return plan_fail(c, s, "missing or released schema");
  if (depth > TL__MAX_DEPTH)
    return plan_fail(c, s, "nested too deeply");
  if (++c->nodes > TL__MAX_FIELDS)
    return plan_fail(c, s, "too many fields");
  p->s = s;
  if (tl__atype_parse(s->format, &p->t))
    return plan_fail(c, s, "unsupported format");
  if (!s->dictionary)
    return plan_kids(c, s, &p->t, p, depth, in_dict);
  if (in_dict)
    return plan_fail(c, s, "dictionary inside a dictionary");
  if (p->t.id != TL__T_INT)
    return plan_fail(c, s, "dictionary indices must be integers");
  if (s->n_children)
    return plan_fail(c, s, "children on dictionary indices");
  p->dict_slot = c->ndicts++;
  p->dict = calloc(1, sizeof *p->dict);
  if (!p->dict)
    return TL_ENOMEM;
  return plan_node(c, s->dictionary, p->dict, depth + 1, true);
}

int tl__plan_new(const struct ArrowSchema *s, tl__plan **out, int *ndicts,
                 char *err, size_t errcap) {
  plan_ctx c = {0, 0, err, errcap};
  tl__plan *p = calloc(1, sizeof *p);
  if (!p)
    return TL_ENOMEM;
  int rc = plan_node(&c, s, p, 0, false);
  if (!rc && (p->t.id != TL__T_STRUCT || p->dict))
    rc = plan_fail(&c, s, "the root of a batch must be a struct (\"+s\")");
  if (rc) {
    if (rc == TL_ENOMEM && err && errcap)
      snprintf(err, errcap, "out of memory");
    tl__plan_free(p);
    return rc;
  }
  *out = p;
  if (ndicts)
    *ndicts = c.ndicts;
  return 0;
}

void tl__plan_free(tl__plan *p) {
  if (!p)
    return;
  plan_clear(p);
  free(p);
}

/* ---- Bodies and arrays --------------------------------------------------- */

tl__body *tl__body_new(size_t n) {
  tl__body *b = malloc(sizeof *b);
  if (!b)
    return NULL;
  b->p = calloc(1, n ? n : 1);
  if (!b->p) {
    free(b);
    return NULL;
  }
  b->refs = 1;
  b->n = n;
  return b;
}

void tl__body_ref(tl__body *b) {
  __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
}

void tl__body_unref(tl__body *b) {
  if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    free(b->p);
    free(b);
  }
}

typedef struct anode {
  tl__body *body;
  void *own[4];
  int nown;
  const void *bufs[4];
  struct ArrowArray *kids[];
} anode;

static void anode_release(struct ArrowArray *a) {
  anode *n = a->private_data;
  for (int64_t i = 0; i < a->n_children; i++) {
    struct ArrowArray *k = n->kids[i];
    if (k && k->release)
      k->release(k);
    free(k);
  }
  if (a->dictionary) {
    if (a->dictionary->release)
      a->dictionary->release(a->dictionary);
    free(a->dictionary);
  }
  for (int i = 0; i < n->nown; i++)
    free(n->own[i]);
  tl__body_unref(n->body);
  free(n);
  a->release = NULL;
}

int tl__array_alloc(struct ArrowArray *a, int64_t nbuf, int64_t nkids,
                    bool dict, tl__body *body) {
  memset(a, 0, sizeof *a);
  if (nbuf < 0 || nbuf > 4 || nkids < 0 || nkids > TL__MAX_FIELDS)
    return TL_EINVAL;
  anode *n = calloc(1, sizeof *n + (size_t)nkids * sizeof(n->kids[0]));
  if (!n)
    return TL_ENOMEM;
  a->private_data = n;
  a->release = anode_release;
  a->n_buffers = nbuf;
  a->buffers = n->bufs;
  if (nkids)
    a->children = n->kids;
  for (int64_t i = 0; i < nkids; i++) {
    if (!(n->kids[i] = calloc(1, sizeof(struct ArrowArray)))) {
      anode_release(a);
      memset(a, 0, sizeof *a);
      return TL_ENOMEM;
    }
    a->n_children = i + 1;
  }
  if (dict && !(a->dictionary = calloc(1, sizeof(struct ArrowArray)))) {
    anode_release(a);
    memset(a, 0, sizeof *a);
    return TL_ENOMEM;
  }
  if (body) {
    tl__body_ref(body);
    n->body = body;
  }
  return 0;
}

void tl__array_own(struct ArrowArray *a, void *p) {
  anode *n = a->private_data;
  if (n->nown < 4)
    n->own[n->nown++] = p;
  else
    free(p); /* never: at most 4 buffers */
}

int tl__array_share(const struct ArrowArray *src, struct ArrowArray *dst) {
  const anode *sn = src->private_data;
  int rc = tl__array_alloc(dst, src->n_buffers, src->n_children,
                           src->dictionary != NULL, sn->body);
  if (rc)
    return rc;
  dst->length = src->length;
  dst->null_count = src->null_count;
  dst->offset = src->offset;
  for (int64_t i = 0; i < src->n_buffers; i++)
    dst->buffers[i] = src->buffers[i];
  for (int64_t i = 0; i < src->n_children && !rc; i++)
    rc = tl__array_share(src->children[i], dst->children[i]);
  if (!rc && src->dictionary)
    rc = tl__array_share(src->dictionary, dst->dictionary);
  if (rc)
    dst->release(dst);
  return rc;
}

void tl_arrow_array_release(struct ArrowArray *a) {
  if (a && a->release)
    a->release(a);
}

/* ---- Schemas ------------------------------------------------------------- */

typedef struct snode {
  char *format, *name, *metadata;
  struct ArrowSchema *kids[];
} snode;

static void snode_release(struct ArrowSchema *s) {
  snode *n = s->private_data;
  for (int64_t i = 0; i < s->n_children; i++) {
    struct ArrowSchema *k = n->kids[i];
    if (k && k->release)
      k->release(k);
    free(k);
  }
  if (s->dictionary) {
    if (s->dictionary->release)
      s->dictionary->release(s->dictionary);
    free(s->dictionary);
  }
  free(n->format);
  free(n->name);
  free(n->metadata);
  free(n);
  s->release = NULL;
}

size_t tl__metadata_len(const char *m) {
  if (!m)
    return 0;
  int32_t n, len;
  size_t at = 4;
  memcpy(&n, m, 4);
  for (int32_t i = 0; i < n * 2; i++) {
    memcpy(&len, m + at, 4);
    at += 4 + (size_t)(len > 0 ? len : 0);
  }
  return at;
}

static char *dup_str(const char *s, bool *oom) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *oom = true;
  return d;
}

int tl__schema_alloc(struct ArrowSchema *s, const char *format,
                     const char *name, const char *metadata, int64_t flags,
                     int64_t nkids, bool dict) {
  memset(s, 0, sizeof *s);
  if (nkids < 0 || nkids > TL__MAX_FIELDS)
    return TL_EINVAL;
  snode *n = calloc(1, sizeof *n + (size_t)nkids * sizeof(n->kids[0]));
  if (!n)
    return TL_ENOMEM;
  bool oom = false;
  s->private_data = n;
  s->release = snode_release;
  s->format = n->format = dup_str(format ? format : "", &oom);
  s->name = n->name = dup_str(name, &oom);
  size_t ml = tl__metadata_len(metadata);
  if (ml) {
    if ((n->metadata = malloc(ml)))
      memcpy(n->metadata, metadata, ml);
    else
      oom = true;
  }
  s->metadata = n->metadata;
  s->flags = flags;
  if (nkids)
    s->children = n->kids;
  for (int64_t i = 0; i < nkids && !oom; i++) {
    if (!(n->kids[i] = calloc(1, sizeof(struct ArrowSchema))))
      oom = true;
    else
      s->n_children = i + 1;
  }
  if (dict && !oom && !(s->dictionary = calloc(1, sizeof *s->dictionary)))
    oom = true;
  if (oom) {
    snode_release(s);
    memset(s, 0, sizeof *s);
    return TL_ENOMEM;
  }
  return 0;
}

static int schema_copy(const struct ArrowSchema *src, struct ArrowSchema *dst,
                       int depth) {
  if (depth > TL__MAX_DEPTH * 4)
    return TL_EINVAL;
  int rc =
      tl__schema_alloc(dst, src->format, src->name, src->metadata, src->flags,
                       src->n_children, src->dictionary != NULL);
  for (int64_t i = 0; i < src->n_children && !rc; i++)
    rc = schema_copy(src->children[i], dst->children[i], depth + 1);
  if (!rc && src->dictionary)
    rc = schema_copy(src->dictionary, dst->dictionary, depth + 1);
  if (rc && dst->release)
    dst->release(dst);
  return rc;
}

int tl_arrow_schema_copy(const struct ArrowSchema *src,
                         struct ArrowSchema *dst) {
  struct ArrowSchema tmp;
  int rc = schema_copy(src, &tmp, 0);
  if (!rc)
    *dst = tmp;
  return rc;
}

void tl_arrow_schema_release(struct ArrowSchema *s) {
  if (s && s->release)
    s->release(s);
}

/* ---- Bitmaps ------------------------------------------------------------- */

void tl__bits_copy(uint8_t *dst, int64_t doff, const uint8_t *src, int64_t soff,
                   int64_t n) {
  if (n <= 0)
    return;
  if (!((doff | soff) & 7)) {
    size_t whole = (size_t)(n >> 3);
    memcpy(dst + (doff >> 3), src + (soff >> 3), whole);
    doff += (int64_t)whole * 8;
    soff += (int64_t)whole * 8;
    n -= (int64_t)whole * 8;
  } else {
    /* A byte at a time: each source byte spans two bytes at most, both
     * inside the n bits left, and so does each destination byte. */
    int sh = (int)(soff & 7), dh = (int)(doff & 7);
    while (n >= 8) {
      const uint8_t *s = src + (soff >> 3);
      unsigned v = s[0] >> sh;
      if (sh)
        v |= (unsigned)s[1] << (8 - sh);
      v &= 0xff;
      uint8_t *d = dst + (doff >> 3);
      d[0] |= (uint8_t)(v << dh);
      if (dh)
        d[1] |= (uint8_t)(v >> (8 - dh));
      soff += 8;
      doff += 8;
      n -= 8;
    }
  }
  for (; n > 0; n--, soff++, doff++)
    if (tl__bit(src, soff))
      dst[doff >> 3] |= (uint8_t)(1u << (doff & 7));
}

void tl__bits_set(uint8_t *dst, int64_t off, int64_t n) {
  for (; n > 0 && (off & 7); n--, off++)
    dst[off >> 3] |= (uint8_t)(1u << (off & 7));
  if (n >= 8) {
    memset(dst + (off >> 3), 0xff, (size_t)(n >> 3));
    off += n & ~(int64_t)7;
    n &= 7;
  }
  for (; n > 0; n--, off++)
    dst[off >> 3] |= (uint8_t)(1u << (off & 7));
}

int64_t tl__bits_count(const uint8_t *src, int64_t off, int64_t n) {
  int64_t c = 0;
  for (; n > 0 && (off & 7); n--, off++)
    c += tl__bit(src, off);
  const uint8_t *p = src + (off >> 3);
  for (; n >= 64; n -= 64, off += 64, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c += __builtin_popcountll(w);
  }
  for (; n >= 8; n -= 8, off += 8, p++)
    c += __builtin_popcount(*p);
  for (; n > 0; n--, off++)
    c += tl__bit(src, off);
  return c;
}

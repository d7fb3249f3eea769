/* builder.c - builds a small record batch column by column, for the replies
 * the server makes itself (Flight SQL metadata) and for tests. Every column
 * keeps growable buffers in the final Arrow layout; finishing hands them to
 * C Data Interface structs without copying. Misuse and allocation failures
 * are sticky on the root and reported by tl_ab_finish. */
#include <stdlib.h>

#include "arrow.h"

typedef struct abuf {
  uint8_t *p;
  size_t n, cap;
} abuf;

struct tl_ab {
  tl_ab *root, *parent;
  char *format, *name;
  bool nullable;
  bool auto_entries; /* a map whose "entries" struct the builder made */
  tl__atype t;
  int64_t len, nulls;
  tl_ab **kids;
  int64_t nkids, kcap;
  abuf valid, data, offs, vals;
  int err; /* root: the first error */
};

static void fail(tl_ab *c, int rc) {
  if (c && !c->root->err)
    c->root->err = rc;
}

static bool reserve(tl_ab *c, abuf *b, size_t extra) {
  if (b->cap - b->n >= extra)
    return true;
  size_t cap = b->cap ? b->cap : 64;
  while (cap - b->n < extra) {
    if (cap > SIZE_MAX / 4) {
      fail(c, TL_ENOMEM);
      return false;
    }
    cap *= 2;
  }
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    fail(c, TL_ENOMEM);
    return false;
  }
  /* Zeroed so that bitmaps can be or'ed into and padding is clean. */
  memset(p + b->cap, 0, cap - b->cap);
  b->p = p;
  b->cap = cap;
  return true;
}

static void put(tl_ab *c, abuf *b, const void *p, size_t n) {
  if (reserve(c, b, n)) {
    memcpy(b->p + b->n, p, n);
    b->n += n;
  }
}

/* Appends bit number `i` (the buffer tracks bytes; bits are or'ed in). */
static void put_bit(tl_ab *c, abuf *b, int64_t i, bool v) {
  size_t need = (size_t)(i >> 3) + 1;
  if (need > b->n) {
    if (!reserve(c, b, need - b->n))
      return;
    b->n = need;
  }
  if (v)
    b->p[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static void put_offset(tl_ab *c, int64_t v) {
  if (c->t.layout == TL__L_VAR64 || c->t.layout == TL__L_LIST64) {
    put(c, &c->offs, &v, 8);
  } else {
    int32_t o = (int32_t)v;
    put(c, &c->offs, &o, 4);
  }
}

static int64_t last_offset(const tl_ab *c) {
  if (!c->offs.n)
    return 0;
  if (c->t.layout == TL__L_VAR64 || c->t.layout == TL__L_LIST64) {
    int64_t v;
    memcpy(&v, c->offs.p + c->offs.n - 8, 8);
    return v;
  }
  int32_t v;
  memcpy(&v, c->offs.p + c->offs.n - 4, 4);
  return v;
}

/* One more row of `c` with its validity. */
static void row(tl_ab *c, bool valid) {
  if (c->t.layout != TL__L_NULL && c->t.layout != TL__L_SUNION &&
      c->t.layout != TL__L_DUNION)
    put_bit(c, &c->valid, c->len, valid);
  if (!valid)
    c->nulls++;
  c->len++;
}

static tl_ab *node_new(tl_ab *root, tl_ab *parent, const char *format,
                       const char *name, bool nullable) {
  tl_ab *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->root = root ? root : c;
  c->parent = parent;
  c->nullable = nullable;
  c->format = strdup(format);
  c->name = name ? strdup(name) : NULL;
  if (!c->format || (name && !c->name) || tl__atype_parse(format, &c->t)) {
    free(c->format);
    free(c->name);
    free(c);
    return NULL;
  }
  if (c->t.layout == TL__L_VAR32 || c->t.layout == TL__L_VAR64 ||
      c->t.layout == TL__L_LIST32 || c->t.layout == TL__L_LIST64)
    put_offset(c, 0);
  return c;
}

tl_ab *tl_ab_new(void) {
  return node_new(NULL, NULL, "+s", "", false);
}

static tl_ab *add_kid(tl_ab *parent, tl_ab *k) {
  if (parent->nkids == parent->kcap) {
    int64_t cap = parent->kcap ? parent->kcap * 2 : 4;
    tl_ab **p = realloc(parent->kids, (size_t)cap * sizeof *p);
    if (!p)
      return NULL;
    parent->kids = p;
    parent->kcap = cap;
  }
  parent->kids[parent->nkids++] = k;
  return k;
}

static void node_free(tl_ab *c) {
  if (!c)
    return;
  for (int64_t i = 0; i < c->nkids; i++)
    node_free(c->kids[i]);
  free(c->kids);
  free(c->format);
  free(c->name);
  free(c->valid.p);
  free(c->data.p);
  free(c->offs.p);
  free(c->vals.p);
  free(c);
}

tl_ab *tl_ab_child(tl_ab *parent, const char *format, const char *name,
                   bool nullable) {
  if (!parent || !format)
    return NULL;
  tl_ab *root = parent->root;
  tl__atype t;
  if (tl__atype_parse(format, &t)) {
    fail(parent, TL_EINVAL);
    return NULL;
  }
  if (parent->t.id == TL__T_MAP) {
    /* Key and value go to the entries struct, made here unless the caller
     * made it as the map's first child (a "+s"). */
    if (!parent->nkids && t.id != TL__T_STRUCT) {
      tl_ab *e = node_new(root, parent, "+s", "entries", false);
      if (!e || !add_kid(parent, e)) {
        node_free(e);
        fail(parent, TL_ENOMEM);
        return NULL;
      }
      parent->auto_entries = true;
    }
    if (parent->auto_entries)
      parent = parent->kids[0];
  }
  bool ok;
  switch (parent->t.layout) {
  case TL__L_STRUCT:
    ok = true;
    break;
  case TL__L_LIST32:
  case TL__L_LIST64:
  case TL__L_FSL:
    ok = parent->nkids == 0;
    break;
  case TL__L_SUNION:
  case TL__L_DUNION:
    ok = parent->nkids < parent->t.nids;
    break;
  default:
    ok = false;
  }
  if (!ok) {
    fail(parent, TL_EINVAL);
    return NULL;
  }
  tl_ab *k = node_new(root, parent, format, name, nullable);
  if (!k || !add_kid(parent, k)) {
    node_free(k);
    fail(parent, TL_ENOMEM);
    return NULL;
  }
  return k;
}

void tl_ab_null(tl_ab *c) {
  if (!c)
    return;
  switch (c->t.layout) {
  case TL__L_NULL:
    row(c, false);
    return;
  case TL__L_FIXED:
    if (reserve(c, &c->data, (size_t)c->t.width))
      c->data.n += (size_t)c->t.width; /* zeroed by reserve */
    row(c, false);
    return;
  case TL__L_BOOL:
    put_bit(c, &c->data, c->len, false);
    row(c, false);
    return;
  case TL__L_VAR32:
  case TL__L_VAR64:
  case TL__L_LIST32:
  case TL__L_LIST64:
    put_offset(c, last_offset(c));
    row(c, false);
    return;
  case TL__L_FSL:
    for (int32_t i = 0; i < c->t.size && c->nkids; i++)
      tl_ab_null(c->kids[0]);
    row(c, false);
    return;
  case TL__L_STRUCT:
    if (c == c->root) {
      fail(c, TL_EINVAL);
      return;
    }
    for (int64_t i = 0; i < c->nkids; i++)
      tl_ab_null(c->kids[i]);
    row(c, false);
    return;
  case TL__L_SUNION:
  case TL__L_DUNION:
    /* No validity of its own: a null of its first child. */
    if (!c->nkids || !c->t.nids) {
      fail(c, TL_EINVAL);
      return;
    }
    tl_ab_null(c->kids[0]); /* a sparse union fills the others */
    tl_ab_union_row(c, c->t.ids[0]);
    return;
  }
}

void tl_ab_int(tl_ab *c, int64_t v) {
  if (!c)
    return;
  int id = c->t.id;
  if (c->t.layout != TL__L_FIXED || id == TL__T_FLOAT || id == TL__T_FSB ||
      (id == TL__T_INTERVAL && c->t.unit != 0)) {
    fail(c, TL_EINVAL);
    return;
  }
  /* Little endian: the low bytes of v, sign-extended for wide decimals. */
  uint8_t b[32];
  memset(b, v < 0 && id == TL__T_DECIMAL ? 0xff : 0, sizeof b);
  memcpy(b, &v, 8);
  put(c, &c->data, b, (size_t)c->t.width);
  row(c, true);
}

void tl_ab_float(tl_ab *c, double v) {
  if (!c)
    return;
  if (c->t.id != TL__T_FLOAT || c->t.width == 2) {
    fail(c, TL_EINVAL);
    return;
  }
  if (c->t.width == 4) {
    float f = (float)v;
    put(c, &c->data, &f, 4);
  } else {
    put(c, &c->data, &v, 8);
  }
  row(c, true);
}

void tl_ab_bool(tl_ab *c, bool v) {
  if (!c)
    return;
  if (c->t.id != TL__T_BOOL) {
    fail(c, TL_EINVAL);
    return;
  }
  put_bit(c, &c->data, c->len, v);
  row(c, true);
}

void tl_ab_str(tl_ab *c, const char *s) {
  if (!s)
    tl_ab_null(c);
  else
    tl_ab_bin(c, s, strlen(s));
}

void tl_ab_bin(tl_ab *c, const void *p, size_t n) {
  if (!c)
    return;
  if (c->t.layout == TL__L_FIXED) { /* "w:N", or a value's raw bytes */
    if (n != (size_t)c->t.width) {
      fail(c, TL_EINVAL);
      return;
    }
    if (n)
      put(c, &c->data, p, n);
    row(c, true);
    return;
  }
  if (c->t.layout != TL__L_VAR32 && c->t.layout != TL__L_VAR64) {
    fail(c, TL_EINVAL);
    return;
  }
  if (c->t.layout == TL__L_VAR32 && c->vals.n + n > INT32_MAX) {
    fail(c, TL_ETOOBIG);
    return;
  }
  if (n)
    put(c, &c->vals, p, n);
  put_offset(c, (int64_t)c->vals.n);
  row(c, true);
}

void tl_ab_list_end(tl_ab *c) {
  if (!c)
    return;
  if (c->t.layout == TL__L_FSL) {
    row(c, true);
    return;
  }
  if (c->t.layout != TL__L_LIST32 && c->t.layout != TL__L_LIST64) {
    fail(c, TL_EINVAL);
    return;
  }
  int64_t n = 0;
  if (c->nkids) {
    tl_ab *k = c->kids[0];
    if (c->auto_entries) /* the entries' rows are the keys appended */
      k->len = k->nkids ? k->kids[0]->len : 0;
    n = k->len;
  }
  if (c->t.layout == TL__L_LIST32 && n > INT32_MAX) {
    fail(c, TL_ETOOBIG);
    return;
  }
  put_offset(c, n);
  row(c, true);
}

void tl_ab_struct_row(tl_ab *c) {
  if (!c)
    return;
  if (c->t.id != TL__T_STRUCT || c == c->root) {
    fail(c, TL_EINVAL);
    return;
  }
  row(c, true);
}

void tl_ab_union_row(tl_ab *c, int8_t type_id) {
  if (!c)
    return;
  int k = -1;
  for (int i = 0; i < c->t.nids; i++)
    if (c->t.ids[i] == type_id)
      k = i;
  if (c->t.id != TL__T_UNION || k < 0 || k >= c->nkids) {
    fail(c, TL_EINVAL);
    return;
  }
  tl_ab *kid = c->kids[k];
  if (c->t.layout == TL__L_DUNION) {
    if (kid->len < 1) {
      fail(c, TL_EINVAL);
      return;
    }
    int32_t off = (int32_t)(kid->len - 1);
    put(c, &c->offs, &off, 4);
  } else {
    /* Sparse: every child has a slot on every row. */
    if (kid->len != c->len + 1) {
      fail(c, TL_EINVAL);
      return;
    }
    for (int64_t i = 0; i < c->nkids; i++)
      if (i != k)
        tl_ab_null(c->kids[i]);
  }
  put(c, &c->data, &type_id, 1);
  row(c, true);
}

void tl_ab_row(tl_ab *root) {
  if (!root)
    return;
  if (root != root->root) {
    fail(root, TL_EINVAL);
    return;
  }
  root->len++;
}

/* ---- Finishing ----------------------------------------------------------- */

static int check(const tl_ab *c) {
  int64_t want = -1;
  switch (c->t.layout) {
  case TL__L_LIST32:
  case TL__L_LIST64:
    if (c->nkids != 1)
      return TL_EINVAL;
    want = last_offset(c);
    if (c->t.id == TL__T_MAP && c->kids[0]->nkids != 2)
      return TL_EINVAL;
    break;
  case TL__L_FSL:
    if (c->nkids != 1)
      return TL_EINVAL;
    want = c->len * c->t.size;
    break;
  case TL__L_STRUCT:
  case TL__L_SUNION:
    want = c->len;
    break;
  case TL__L_DUNION:
    break;
  default:
    if (c->nkids)
      return TL_EINVAL;
  }
  if (c->t.id == TL__T_UNION && c->nkids != c->t.nids)
    return TL_EINVAL;
  for (int64_t i = 0; i < c->nkids; i++) {
    if (want >= 0 && c->kids[i]->len != want)
      return TL_EINVAL;
    int rc = check(c->kids[i]);
    if (rc)
      return rc;
  }
  return 0;
}

/* Moves the node's buffers into the C structs; *c keeps what was not
 * taken (freed by node_free). */
static int export(tl_ab *c, struct ArrowSchema *s, struct ArrowArray *a) {
  int64_t flags = c->nullable ? ARROW_FLAG_NULLABLE : 0;
  int rc =
      tl__schema_alloc(s, c->format, c->name, NULL, flags, c->nkids, false);
  if (rc)
    return rc;
  int nbuf = tl__layout_nbuffers(c->t.layout);
  if ((rc = tl__array_alloc(a, nbuf, c->nkids, false, NULL))) {
    s->release(s);
    return rc;
  }
  a->length = c->len;
  a->null_count = c->t.layout == TL__L_NULL ? c->len : c->nulls;
  abuf *order[3] = {NULL, NULL, NULL};
  switch (c->t.layout) {
  case TL__L_FIXED:
  case TL__L_BOOL:
    order[0] = &c->valid;
    order[1] = &c->data;
    break;
  case TL__L_VAR32:
  case TL__L_VAR64:
    order[0] = &c->valid;
    order[1] = &c->offs;
    order[2] = &c->vals;
    break;
  case TL__L_LIST32:
  case TL__L_LIST64:
    order[0] = &c->valid;
    order[1] = &c->offs;
    break;
  case TL__L_FSL:
  case TL__L_STRUCT:
    order[0] = &c->valid;
    break;
  case TL__L_SUNION:
    order[0] = &c->data;
    break;
  case TL__L_DUNION:
    order[0] = &c->data;
    order[1] = &c->offs;
    break;
  }
  for (int i = 0; i < nbuf; i++) {
    abuf *b = order[i];
    if (!b || (b == &c->valid && !c->nulls))
      continue;
    a->buffers[i] = b->p;
    tl__array_own(a, b->p);
    b->p = NULL;
    b->n = b->cap = 0;
  }
  for (int64_t i = 0; i < c->nkids && !rc; i++)
    rc = export(c->kids[i], s->children[i], a->children[i]);
  if (rc) {
    s->release(s);
    a->release(a);
  }
  return rc;
}

int tl_ab_finish(tl_ab *root, struct ArrowSchema *schema,
                 struct ArrowArray *array) {
  if (!root)
    return TL_ENOMEM;
  if (root != root->root)
    return TL_EINVAL; /* not a root: nothing of it can be freed here */
  int rc = root->err;
  for (int64_t i = 0; !rc && i < root->nkids; i++)
    if (root->kids[i]->len != root->len)
      rc = TL_EINVAL;
  if (!rc)
    rc = check(root);
  struct ArrowSchema s;
  struct ArrowArray a;
  if (!rc)
    rc = export(root, &s, &a);
  if (!rc) {
    a.null_count = 0;
    *schema = s;
    *array = a;
  }
  node_free(root);
  return rc;
}

void tl_ab_free(tl_ab *root) {
  if (root)
    node_free(root->root);
}

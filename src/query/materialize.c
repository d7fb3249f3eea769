/* materialize.c - materialization of blocks into Parquet partitions.
 *
 * A batch of blocks becomes a partition in one DuckDB statement: `COPY
 * (SELECT * FROM tl_materialize()) TO ...`, where tl_materialize is a table
 * function of this file that reads and decodes the batch's blocks and fills
 * DuckDB's chunks directly (one block per chunk, so the block's ids and its
 * process's columns are constant vectors). No staging table, no sort: rows
 * go from the decoder to the Parquet writer. See docs/lakehouse.md,
 * "Materialization". */
#define TL_TARGET "tracelake::lake"
#include "tracelake/tracelake.h"
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
#define DAY_NS ((int64_t)86400 * 1000000000)

/* The table function that decodes a batch (registered with the lake). */
#define SCAN_FUNCTION "tl_materialize"

/* ---- Columns -------------------------------------------------------------
 */

/* Where the emitter takes a column's values from: a constant of the block
 * (its ids, insert time) or of its process (exe, ..., properties), or a
 * field of the decoded row. */
enum {
  SRC_PID = 1, /* the batch's ENUMs */
  SRC_SID,
  SRC_BID,
  SRC_SID_TEXT, /* VARCHAR */
  SRC_BID_TEXT,
  SRC_INSERT,
  SRC_EXE,
  SRC_USER,
  SRC_HOST,
  SRC_PPROPS,
  SRC_DURATION, /* i64[4] - i64[0] */
  SRC_F,
  SRC_I64 = 32, /* + index into row.i64 */
  SRC_I32 = 48, /* + index into row.i32 */
  SRC_STR = 64  /* + index into row.s */
};

/* The source of each column of tl__views, in the same order. A row's
 * fields: log_entries i64[0] time, s[0] target, i32[0] level, s[1] msg;
 * measures i64[0] time, s[0] target, s[1] name, s[2] unit, f value;
 * async_events i64[0] time, s[3] event type, i64[1] span, i64[2] parent,
 * i32[0] depth, s[1] name, s[2] file, s[0] target, i32[1] line;
 * thread_spans i64[1] id, i64[2] parent, i32[0] depth, i64[3] hash, i64[0]
 * begin, i64[4] end, s[1] name, s[0] target, s[2] file, i32[1] line. */
static const uint8_t SOURCES[TL_NVIEWS][16] = {
    {SRC_PID, SRC_SID, SRC_BID, SRC_INSERT, SRC_EXE, SRC_USER, SRC_HOST,
     SRC_I64 + 0, SRC_STR + 0, SRC_I32 + 0, SRC_STR + 1, SRC_PPROPS},
    {SRC_PID, SRC_SID, SRC_BID, SRC_INSERT, SRC_EXE, SRC_USER, SRC_HOST,
     SRC_I64 + 0, SRC_STR + 0, SRC_STR + 1, SRC_STR + 2, SRC_F, SRC_PPROPS},
    {SRC_SID_TEXT, SRC_BID_TEXT, SRC_I64 + 0, SRC_STR + 3, SRC_I64 + 1,
     SRC_I64 + 2, SRC_I32 + 0, SRC_STR + 1, SRC_STR + 2, SRC_STR + 0,
     SRC_I32 + 1},
    {SRC_I64 + 1, SRC_I64 + 2, SRC_I32 + 0, SRC_I64 + 3, SRC_I64 + 0,
     SRC_I64 + 4, SRC_DURATION, SRC_STR + 1, SRC_STR + 0, SRC_STR + 2,
     SRC_I32 + 1},
};

/* ---- Text helpers --------------------------------------------------------
 */

/* Text as DuckDB takes it: valid UTF-8 without NULs. Bytes that are not
 * become '?', in place. */
static void clean_utf8(char *s, size_t n) {
  const uint8_t *b = (const uint8_t *)s;
  for (size_t k = 0; k < n;) {
    size_t len = (b[k] & 0xe0) == 0xc0   ? 2
                 : (b[k] & 0xf0) == 0xe0 ? 3
                 : (b[k] & 0xf8) == 0xf0 ? 4
                                         : 1;
    if (len > n - k || !tl_utf8_valid(b + k, len)) {
      len = 1;
      s[k] = '?';
    }
    k += len;
  }
}

/* A NUL-terminated clean copy of s[0..n), or NULL (out of memory). */
static char *clean_copy(const char *s, size_t n) {
  char *c = malloc(n + 1);
  if (!c)
    return NULL;
  memcpy(c, s, n);
  c[n] = 0;
  if (!tl_utf8_valid((const uint8_t *)c, n))
    clean_utf8(c, n);
  return c;
}

/* Four hex digits at p; -1 if they are not. */
static long hex4(const char *p) {
  long v = 0;
  for (int k = 0; k < 4; k++) {
    char h = p[k];
    int d = h >= '0' && h <= '9'   ? h - '0'
            : h >= 'a' && h <= 'f' ? h - 'a' + 10
            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                   : -1;
    if (d < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

/* The catalog's process properties are a JSON object of strings, as
 * tl__catalog_props_json writes them. Reads the JSON string at *pp as clean
 * text (malloc'd) and moves *pp past it; NULL if malformed. */
static char *json_string(const char **pp) {
  const char *p = *pp;
  if (*p != '"')
    return NULL;
  size_t n = 0;
  char *o = malloc(strlen(p) + 1); /* decoded text is never longer */
  if (!o)
    return NULL;
  for (p++; *p && *p != '"'; p++) {
    if (*p != '\\') {
      o[n++] = *p;
      continue;
    }
    long cp;
    switch (*++p) {
    case '"':
    case '\\':
    case '/':
      o[n++] = *p;
      break;
    case 'b':
      o[n++] = '\b';
      break;
    case 'f':
      o[n++] = '\f';
      break;
    case 'n':
      o[n++] = '\n';
      break;
    case 'r':
      o[n++] = '\r';
      break;
    case 't':
      o[n++] = '\t';
      break;
    case 'u':
      if ((cp = hex4(p + 1)) < 0) {
        free(o);
        return NULL;
      }
      p += 4;
      /* Six escaped bytes become at most three; a surrogate, '?'. */
      if (cp >= 0xd800 && cp < 0xe000) {
        o[n++] = '?';
      } else if (cp < 0x80) {
        o[n++] = (char)cp;
      } else if (cp < 0x800) {
        o[n++] = (char)(0xc0 | cp >> 6);
        o[n++] = (char)(0x80 | (cp & 0x3f));
      } else {
        o[n++] = (char)(0xe0 | cp >> 12);
        o[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[n++] = (char)(0x80 | (cp & 0x3f));
      }
      break;
    default:
      free(o);
      return NULL;
    }
  }
  if (*p != '"') {
    free(o);
    return NULL;
  }
  *pp = p + 1;
  o[n] = 0;
  if (!tl_utf8_valid((const uint8_t *)o, n))
    clean_utf8(o, n);
  return o;
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* ---- Sets of text, as ENUM types -----------------------------------------
 * A batch's ids and process columns take few distinct values: the table
 * function hands them to DuckDB as ENUM values, which its Parquet writer
 * writes as dictionary-encoded text without hashing every row (the
 * dictionary is the ENUM's); read back, they are VARCHAR. */

typedef struct str_set {
  tl_strs s;
  duckdb_logical_type type; /* ENUM of s.v[0..s.n) once sealed; NULL if empty */
} str_set;

/* Adds a copy of p (clean, NUL-terminated). */
static int set_add(str_set *s, const char *p) {
  return tl_strs_add(&s->s, p);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts, removes duplicates and makes the ENUM type. */
static int set_seal(str_set *s) {
  tl_strs *l = &s->s;
  if (!l->n)
    return 0;
  qsort(l->v, l->n, sizeof *l->v, cmp_str);
  size_t k = 1;
  for (size_t i = 1; i < l->n; i++) {
    if (strcmp(l->v[i], l->v[k - 1]))
      l->v[k++] = l->v[i];
    else
      free(l->v[i]);
  }
  l->n = k;
  s->type = duckdb_create_enum_type((const char **)l->v, l->n);
  return s->type ? 0 : TL_ENOMEM;
}

/* The ENUM value of p (a member), or NULL. */
static duckdb_value set_value(const str_set *s, const char *p) {
  if (!p || !s->type)
    return NULL;
  char **hit = bsearch(&p, s->s.v, s->s.n, sizeof *s->s.v, cmp_str);
  return hit ? duckdb_create_enum_value(s->type, (uint64_t)(hit - s->s.v))
             : NULL;
}

static void set_free(str_set *s) {
  tl_strs_free(&s->s);
  if (s->type)
    duckdb_destroy_logical_type(&s->type);
}

/* ---- Processes of a batch ------------------------------------------------
 * What the rows of a block take from its process: the TSC frequency (event
 * times) and, for the global views, exe, username, computer and the
 * properties, as DuckDB values (NULL: SQL NULL) referenced by constant
 * vectors. */

typedef struct proc_info {
  uint8_t id[16];
  uint64_t freq;
  char *exe, *user, *host; /* clean text, or NULL */
  char **props;            /* key, value, key, value...; NULL: unreadable */
  size_t nprops;
  duckdb_value vexe, vuser, vhost, vprops;
} proc_info;

static void proc_free(proc_info *p) {
  free(p->exe);
  free(p->user);
  free(p->host);
  for (size_t i = 0; i < p->nprops * 2; i++)
    free(p->props[i]);
  free(p->props);
  duckdb_destroy_value(&p->vexe);
  duckdb_destroy_value(&p->vuser);
  duckdb_destroy_value(&p->vhost);
  duckdb_destroy_value(&p->vprops);
}

/* Parses the properties JSON into p->props (in the object's order, as
 * map_entries(json_transform(...)) gives them for the processes view).
 * Malformed JSON leaves p->props NULL: the column is then NULL. */
static int parse_props(proc_info *p, const char *json) {
  const char *s = json ? skip_ws(json) : "";
  if (*s++ != '{')
    return 0;
  size_t cap = 0;
  char **kv = NULL;
  size_t n = 0;
  s = skip_ws(s);
  bool ok = *s == '}';
  while (*s == '"') {
    if (tl_grow(&kv, &cap, 2 * n + 2, sizeof *kv, 8))
      break;
    char *k = json_string(&s), *v = NULL;
    s = skip_ws(s);
    if (k && *s == ':') {
      s = skip_ws(s + 1);
      v = json_string(&s);
    }
    if (!v) {
      free(k);
      break;
    }
    kv[2 * n] = k;
    kv[2 * n + 1] = v;
    n++;
    s = skip_ws(s);
    if (*s != ',') {
      ok = *s == '}';
      break;
    }
    s = skip_ws(s + 1);
  }
  if (!ok) {
    for (size_t i = 0; i < 2 * n; i++)
      free(kv[i]);
    free(kv);
    return 0;
  }
  if (!kv && !(kv = malloc(sizeof *kv))) /* an empty object: an empty list */
    return TL_ENOMEM;
  p->props = kv;
  p->nprops = n;
  return 0;
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, 16);
}

/* ---- A batch -------------------------------------------------------------
 * The blocks of one partition, shared by the table function's threads. */

enum {
  SET_PID,
  SET_SID,
  SET_BID,
  SET_EXE,
  SET_USER,
  SET_HOST,
  SET_KEY,
  SET_VALUE,
  NSETS
};

typedef struct tl_mat_job {
  tl_lake *l;
  const tl_view_def *v;
  int view;
  const tl_catalog_block *blocks;
  unsigned n;
  _Atomic unsigned next; /* the next block to decode */
  uint8_t *read;         /* per block: 1 once decoded (0: blob gone) */
  proc_info *procs;      /* the batch's processes, by id */
  size_t nprocs;
  str_set sets[NSETS];       /* global views: the ENUM columns */
  duckdb_logical_type props; /* the process_properties type */
  pthread_mutex_t mu;        /* what follows */
  uint64_t rows;
  int64_t min_time, max_time;
  bool failed;
  char err[512];
} tl_mat_job;

typedef struct proc_walk {
  tl_mat_job *j;
  uint8_t (*want)[16]; /* the batch's process ids, sorted, unique */
  size_t nwant;
} proc_walk;

static int add_proc(void *ctx, const tl_catalog_process_row *r) {
  proc_walk *w = ctx;
  tl_mat_job *j = w->j;
  if (!bsearch(r->process_id, w->want, w->nwant, 16, cmp_id) ||
      j->nprocs == w->nwant)
    return 0;
  proc_info *p = &j->procs[j->nprocs++];
  memset(p, 0, sizeof *p);
  memcpy(p->id, r->process_id, 16);
  p->freq = r->tsc_frequency ? r->tsc_frequency : 1;
  if (j->view >= TL_NVIEWS_GLOBAL)
    return 0;
  if ((r->exe && !(p->exe = clean_copy(r->exe, strlen(r->exe)))) ||
      (r->username &&
       !(p->user = clean_copy(r->username, strlen(r->username)))) ||
      (r->computer &&
       !(p->host = clean_copy(r->computer, strlen(r->computer)))) ||
      parse_props(p, r->properties))
    return TL_ENOMEM;
  int rc = 0;
  if (p->exe)
    rc = set_add(&j->sets[SET_EXE], p->exe);
  if (!rc && p->user)
    rc = set_add(&j->sets[SET_USER], p->user);
  if (!rc && p->host)
    rc = set_add(&j->sets[SET_HOST], p->host);
  for (size_t i = 0; i < p->nprops && !rc; i++)
    if (!(rc = set_add(&j->sets[SET_KEY], p->props[2 * i])))
      rc = set_add(&j->sets[SET_VALUE], p->props[2 * i + 1]);
  return rc;
}

/* A process's properties as a list of {key, value} structs of the
 * batch's ENUMs (VARCHAR when the batch has no property at all). */
static duckdb_value props_value(tl_mat_job *j, const proc_info *p) {
  if (!p->props)
    return NULL;
  duckdb_logical_type kv = duckdb_list_type_child_type(j->props);
  duckdb_value *items = calloc(p->nprops ? p->nprops : 1, sizeof *items);
  duckdb_value list = NULL;
  size_t made = 0;
  for (; items && made < p->nprops; made++) {
    duckdb_value m[2] = {
        set_value(&j->sets[SET_KEY], p->props[2 * made]),
        set_value(&j->sets[SET_VALUE], p->props[2 * made + 1])};
    items[made] = m[0] && m[1] ? duckdb_create_struct_value(kv, m) : NULL;
    duckdb_destroy_value(&m[0]);
    duckdb_destroy_value(&m[1]);
    if (!items[made])
      break;
  }
  if (items && made == p->nprops)
    list = duckdb_create_list_value(kv, items, p->nprops);
  for (size_t i = 0; items && i < made; i++)
    duckdb_destroy_value(&items[i]);
  free(items);
  duckdb_destroy_logical_type(&kv);
  return list;
}

/* Loads the processes of the batch's blocks and, for the global views,
 * makes the ENUM types of the batch and each process's values. */
static int load_procs(tl_mat_job *j) {
  proc_walk w = {j, calloc(j->n ? j->n : 1, 16), 0};
  j->procs = calloc(j->n ? j->n : 1, sizeof *j->procs);
  if (!w.want || !j->procs) {
    free(w.want);
    return TL_ENOMEM;
  }
  for (unsigned i = 0; i < j->n; i++)
    memcpy(w.want[i], j->blocks[i].process_id, 16);
  qsort(w.want, j->n, 16, cmp_id);
  for (size_t i = 0; i < j->n; i++)
    if (!w.nwant || memcmp(w.want[w.nwant - 1], w.want[i], 16))
      memcpy(w.want[w.nwant++], w.want[i], 16);
  int rc = tl_catalog_foreach_process(j->l->cat, add_proc, &w);
  free(w.want);
  if (rc)
    return rc;
  qsort(j->procs, j->nprocs, sizeof *j->procs, cmp_id);
  if (j->view >= TL_NVIEWS_GLOBAL)
    return 0;
  for (unsigned i = 0; i < j->n && !rc; i++) {
    char t[37];
    const tl_catalog_block *b = &j->blocks[i];
    tl_uuid_format(b->process_id, t);
    rc = set_add(&j->sets[SET_PID], t);
    tl_uuid_format(b->stream_id, t);
    if (!rc)
      rc = set_add(&j->sets[SET_SID], t);
    tl_uuid_format(b->block_id, t);
    if (!rc)
      rc = set_add(&j->sets[SET_BID], t);
  }
  for (int k = 0; k < NSETS && !rc; k++)
    rc = set_seal(&j->sets[k]);
  if (rc)
    return TL_ENOMEM;
  duckdb_logical_type str = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_logical_type m[2] = {
      j->sets[SET_KEY].type ? j->sets[SET_KEY].type : str,
      j->sets[SET_VALUE].type ? j->sets[SET_VALUE].type : str};
  const char *names[2] = {"key", "value"};
  duckdb_logical_type kv = duckdb_create_struct_type(m, names, 2);
  j->props = duckdb_create_list_type(kv);
  duckdb_destroy_logical_type(&kv);
  duckdb_destroy_logical_type(&str);
  for (size_t i = 0; i < j->nprocs; i++) {
    proc_info *p = &j->procs[i];
    p->vexe = set_value(&j->sets[SET_EXE], p->exe);
    p->vuser = set_value(&j->sets[SET_USER], p->user);
    p->vhost = set_value(&j->sets[SET_HOST], p->host);
    p->vprops = props_value(j, p);
  }
  return 0;
}

static const proc_info *proc_of(const tl_mat_job *j, const uint8_t id[16]) {
  return bsearch(id, j->procs, j->nprocs, sizeof *j->procs, cmp_id);
}

static void job_fail(tl_mat_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void job_fail(tl_mat_job *j, const char *fmt, ...) {
  pthread_mutex_lock(&j->mu);
  if (!j->failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof j->err, fmt, ap);
    va_end(ap);
    j->failed = true;
  }
  pthread_mutex_unlock(&j->mu);
}

/* ---- Decoding a block into rows ------------------------------------------
 * Each thread of the table function decodes one block at a time into rows
 * whose strings live in an arena (the decoder's buffers are gone after the
 * decode), then hands them out in chunks. */

typedef struct str_ref {
  uint32_t off, len;
} str_ref;

typedef struct row {
  int64_t i64[5];
  double f;
  int32_t i32[2];
  str_ref s[4];
} row;

/* A call site's strings, copied (and checked) once per block. */
typedef struct cs_entry {
  const tl_wire_callsite *cs;
  uint32_t gen;
  str_ref target, name, unit, file;
} cs_entry;
#define CS_SLOTS 1024
#define CS_PROBES 8

typedef struct open_span {
  const tl_wire_callsite *cs;
  int64_t begin;
  int64_t id;
} open_span;

#define MAX_SPAN_DEPTH 256

typedef struct scan_local {
  tl_mat_job *j;
  row *rows;
  size_t nrows, caprows, pos;
  char *arena;
  size_t alen, acap;
  bool oom;
  cs_entry cache[CS_SLOTS];
  uint32_t gen;
  /* the block being decoded and emitted */
  const tl_wire_block_header *h;
  uint64_t freq;
  const proc_info *proc;
  duckdb_value pid, sid, bid, sid_text, bid_text, insert_time;
  int64_t min_time, max_time;
  /* thread_spans: the open spans of the block, and span ids */
  open_span stack[MAX_SPAN_DEPTH];
  int depth;
  uint32_t remaining; /* events of the block not yet seen */
  uint64_t block_hash;
  uint32_t local;
} scan_local;

/* Copies n bytes into the arena as DuckDB text (invalid UTF-8 and NULs
 * become '?'). */
static str_ref arena_put(scan_local *lo, const uint8_t *p, size_t n) {
  str_ref r = {0, 0};
  if (n > UINT32_MAX / 2 || lo->alen + n > UINT32_MAX) {
    lo->oom = true;
    return r;
  }
  if (tl_grow(&lo->arena, &lo->acap, lo->alen + n, 1, (size_t)1 << 20)) {
    lo->oom = true;
    return r;
  }
  char *d = lo->arena + lo->alen;
  memcpy(d, p, n);
  /* Most text is ASCII: eight bytes at a time, no byte with the high bit
   * or zero, then the exact check from the first word that is not. */
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t w;
    memcpy(&w, p + k, 8);
    if ((w & 0x8080808080808080ull) ||
        ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
      break;
  }
  if (k < n && !tl_utf8_valid(p + k, n - k))
    clean_utf8(d + k, n - k);
  r.off = (uint32_t)lo->alen;
  r.len = (uint32_t)n;
  lo->alen += n;
  return r;
}

static str_ref put_slice(scan_local *lo, tl_slice s) {
  return arena_put(lo, s.p, s.n);
}

/* The cached strings of call site `cs` in this block: a small open-address
 * table keyed by the call site's address, reset by bumping `gen`. When the
 * probes find no room, the first slot is taken over (its call site will be
 * copied again if it comes back). */
static const cs_entry *callsite(scan_local *lo, const tl_wire_callsite *cs) {
  size_t h = (size_t)(((uintptr_t)cs >> 3) * 0x9E3779B97F4A7C15ull >> 54);
  cs_entry *e = &lo->cache[h % CS_SLOTS];
  for (int k = 0; k < CS_PROBES; k++) {
    cs_entry *c = &lo->cache[(h + (size_t)k) % CS_SLOTS];
    if (c->gen != lo->gen) {
      e = c;
      break;
    }
    if (c->cs == cs)
      return c;
  }
  e->cs = cs;
  e->gen = lo->gen;
  e->target = put_slice(lo, cs->target);
  e->name = put_slice(lo, cs->name);
  e->unit = put_slice(lo, cs->unit);
  e->file = put_slice(lo, cs->file);
  return e;
}

static row *new_row(scan_local *lo) {
  if (tl_grow(&lo->rows, &lo->caprows, lo->nrows + 1, sizeof *lo->rows, 4096)) {
    lo->oom = true;
    return NULL;
  }
  return &lo->rows[lo->nrows++];
}

static int64_t event_time(const scan_local *lo, uint64_t ticks) {
  const tl_wire_block_header *h = lo->h;
  return h->begin_time + (int64_t)((__int128)(int64_t)(ticks - h->begin_ticks) *
                                   1000000000 / (__int128)lo->freq);
}

static void see_time(scan_local *lo, int64_t t) {
  if (t < lo->min_time)
    lo->min_time = t;
  if (t > lo->max_time)
    lo->max_time = t;
}

/* log_entries and measures rows. */
static int global_event(scan_local *lo, const tl_wire_event *e) {
  bool is_log = e->type == TL_EV_LOG || e->type == TL_EV_LOGF;
  bool is_metric = e->type == TL_EV_IMETRIC || e->type == TL_EV_FMETRIC;
  if ((lo->j->view == TL_VIEW_LOG_ENTRIES && !is_log) ||
      (lo->j->view == TL_VIEW_MEASURES && !is_metric))
    return 0;
  const cs_entry *c = callsite(lo, e->cs);
  row *r = new_row(lo);
  if (!r)
    return TL_ENOMEM;
  int64_t t = event_time(lo, e->ticks);
  see_time(lo, t);
  r->i64[0] = t;
  r->s[0] = c->target;
  if (is_log) {
    r->i32[0] = e->cs->level;
    r->s[1] = put_slice(lo, e->v.msg);
    return 0;
  }
  r->s[1] = c->name;
  bool ticks = e->type == TL_EV_IMETRIC && e->cs->unit.n == 5 &&
               !memcmp(e->cs->unit.p, "ticks", 5);
  if (ticks) { /* durations in ticks are reported in seconds */
    r->s[2] = arena_put(lo, (const uint8_t *)"seconds", 7);
    r->f = (double)e->v.u / (double)lo->freq;
  } else {
    r->s[2] = c->unit;
    r->f = e->type == TL_EV_IMETRIC ? (double)e->v.u : e->v.f;
  }
  return 0;
}

/* async_events rows: the begin and end events of async spans. */
static int async_event(scan_local *lo, const tl_wire_event *e) {
  if (e->type != TL_EV_ASYNC_BEGIN && e->type != TL_EV_ASYNC_END)
    return 0;
  const cs_entry *c = callsite(lo, e->cs);
  row *r = new_row(lo);
  if (!r)
    return TL_ENOMEM;
  int64_t t = event_time(lo, e->ticks);
  see_time(lo, t);
  bool begin = e->type == TL_EV_ASYNC_BEGIN;
  r->i64[0] = t;
  r->s[3] =
      arena_put(lo, (const uint8_t *)(begin ? "begin" : "end"), begin ? 5 : 3);
  r->i64[1] = (int64_t)e->v.async.id;
  r->i64[2] = (int64_t)e->v.async.parent;
  r->i32[0] = (int32_t)e->v.async.depth;
  r->s[1] = c->name;
  r->s[2] = c->file;
  r->s[0] = c->target;
  r->i32[1] = (int32_t)e->cs->line;
  return 0;
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

static int emit_span(scan_local *lo, const tl_wire_callsite *cs, int64_t id,
                     int64_t parent, int depth, int64_t begin, int64_t end) {
  const cs_entry *c = callsite(lo, cs);
  row *r = new_row(lo);
  if (!r)
    return TL_ENOMEM;
  see_time(lo, begin);
  see_time(lo, end);
  r->i64[1] = id;
  r->i64[2] = parent;
  r->i32[0] = depth;
  r->i64[3] = callsite_hash(cs);
  r->i64[0] = begin;
  r->i64[4] = end;
  r->s[1] = c->name;
  r->s[0] = c->target;
  r->s[2] = c->file;
  r->i32[1] = (int32_t)cs->line;
  return 0;
}

/* Span ids: unique within a stream, from the block's id and the span's
 * position in it (ids stay stable however blocks are batched). */
static int64_t span_id(scan_local *lo) {
  return (int64_t)((lo->block_hash ^
                    (uint64_t)++lo->local * 0x9E3779B97F4A7C15ull) &
                   INT64_MAX);
}

/* thread_spans rows: begin/end pairs rebuilt with a stack. A span cut by
 * the block's edges is closed there: an end without its begin starts at the
 * block's beginning, a begin without its end ends at the block's end. */
static int span_event(scan_local *lo, const tl_wire_event *e) {
  if (e->type != TL_EV_SPAN_BEGIN && e->type != TL_EV_SPAN_END)
    return 0;
  int64_t t = event_time(lo, e->ticks);
  if (e->type == TL_EV_SPAN_BEGIN) {
    if (lo->depth == MAX_SPAN_DEPTH)
      return 0; /* deeper than any real call tree: ignored */
    open_span *o = &lo->stack[lo->depth++];
    o->cs = e->cs;
    o->begin = t;
    o->id = span_id(lo);
    return 0;
  }
  if (lo->depth > 0 && lo->stack[lo->depth - 1].cs == e->cs) {
    open_span *o = &lo->stack[--lo->depth];
    int64_t parent = lo->depth ? lo->stack[lo->depth - 1].id : 0;
    return emit_span(lo, o->cs, o->id, parent, lo->depth, o->begin, t);
  }
  /* Begun in an earlier block: it encloses everything still open here. */
  return emit_span(lo, e->cs, span_id(lo), 0, 0, lo->h->begin_time, t);
}

static int close_open_spans(scan_local *lo) {
  int rc = 0;
  while (lo->depth > 0 && !rc) {
    open_span *o = &lo->stack[--lo->depth];
    int64_t parent = lo->depth ? lo->stack[lo->depth - 1].id : 0;
    rc = emit_span(lo, o->cs, o->id, parent, lo->depth, o->begin,
                   lo->h->end_time);
  }
  return rc;
}

static int on_event(void *ctx, const tl_wire_event *e) {
  scan_local *lo = ctx;
  int rc;
  switch (lo->j->view) {
  case TL_VIEW_ASYNC_EVENTS:
    rc = async_event(lo, e);
    break;
  case TL_VIEW_THREAD_SPANS:
    rc = span_event(lo, e);
    /* After the block's last event, while its call sites are still alive. */
    if (!rc && --lo->remaining == 0)
      rc = close_open_spans(lo);
    break;
  default:
    rc = global_event(lo, e);
  }
  return rc ? rc : lo->oom ? TL_ENOMEM : 0;
}

static int on_header(void *ctx, const tl_wire_block_header *h) {
  scan_local *lo = ctx;
  lo->h = h;
  lo->depth = 0;
  lo->remaining = h->nb_objects;
  lo->local = 0;
  lo->block_hash = fnv1a(0xcbf29ce484222325ull, h->block_id, 16);
  return 0;
}

static duckdb_value uuid_text_value(const uint8_t id[16]) {
  char t[37];
  tl_uuid_format(id, t);
  return duckdb_create_varchar_length(t, 36);
}

static void block_values_free(scan_local *lo) {
  duckdb_destroy_value(&lo->pid);
  duckdb_destroy_value(&lo->sid);
  duckdb_destroy_value(&lo->bid);
  duckdb_destroy_value(&lo->sid_text);
  duckdb_destroy_value(&lo->bid_text);
  duckdb_destroy_value(&lo->insert_time);
}

/* Reads and decodes block i of the batch into lo's rows. A block whose
 * blob is gone (retired meanwhile) yields nothing. */
static int scan_block(scan_local *lo, unsigned i) {
  tl_mat_job *j = lo->j;
  const tl_catalog_block *b = &j->blocks[i];
  lo->nrows = lo->pos = lo->alen = 0;
  lo->gen++;
  block_values_free(lo);
  char key[128];
  tl_store_block_key(b->process_id, b->stream_id, b->block_id, key);
  uint8_t *p = NULL;
  size_t len = 0;
  int rc = tl_store_get(j->l->store, key, MAX_BLOB, &p, &len);
  if (rc == TL_ENOTFOUND) /* a retired block whose row lingers: skip it */
    return 0;
  if (rc) {
    job_fail(j, "reading %s: %s", key, tl_strerror(rc));
    return rc;
  }
  lo->proc = proc_of(j, b->process_id);
  lo->freq = lo->proc && lo->proc->freq ? lo->proc->freq : 1000000000u;
  if (j->view < TL_NVIEWS_GLOBAL) {
    duckdb_timestamp_ns ts = {b->insert_time};
    char t[37];
    tl_uuid_format(b->process_id, t);
    lo->pid = set_value(&j->sets[SET_PID], t);
    tl_uuid_format(b->stream_id, t);
    lo->sid = set_value(&j->sets[SET_SID], t);
    tl_uuid_format(b->block_id, t);
    lo->bid = set_value(&j->sets[SET_BID], t);
    lo->insert_time = duckdb_create_timestamp_ns(ts);
  } else if (j->view == TL_VIEW_ASYNC_EVENTS) {
    lo->sid_text = uuid_text_value(b->stream_id);
    lo->bid_text = uuid_text_value(b->block_id);
  }
  lo->min_time = INT64_MAX;
  lo->max_time = INT64_MIN;
  tl_block_visitor vis = {lo, on_header, on_event};
  tl_wire_error werr = {0};
  rc = tl_block_decode(p, len, &vis, &werr);
  free(p);
  if (rc) {
    char bid[37];
    tl_uuid_format(b->block_id, bid);
    if (lo->oom)
      job_fail(j, "block %s: out of memory", bid);
    else
      job_fail(j, "block %s: %s", bid, werr.reason);
    return rc;
  }
  j->read[i] = 1;
  pthread_mutex_lock(&j->mu);
  j->rows += lo->nrows;
  if (lo->min_time < j->min_time)
    j->min_time = lo->min_time;
  if (lo->max_time > j->max_time)
    j->max_time = lo->max_time;
  pthread_mutex_unlock(&j->mu);
  return 0;
}

/* ---- The table function ---------------------------------------------------
 * tl_materialize() yields the rows of the batch being materialized. Only
 * the connection that runs the batch's COPY may bind it: it is not part of
 * the SQL surface (a user's session gets an error). */

/* A string of the arena as DuckDB's string_t, without copying it: the
 * arena outlives the chunk (a thread's next call comes after the chunk went
 * through the pipeline, and the Parquet writer copies what it keeps). */
static duckdb_string_t str_at(const char *p, uint32_t n) {
  duckdb_string_t s;
  memset(&s, 0, sizeof s);
  s.value.inlined.length = n;
  if (n <= 12) {
    memcpy(s.value.inlined.inlined, p, n);
  } else {
    memcpy(s.value.pointer.prefix, p, 4);
    s.value.pointer.ptr = (char *)p;
  }
  return s;
}

/* A column constant over the chunk; NULL: SQL NULL. */
static void put_constant(duckdb_vector v, duckdb_value x, idx_t n,
                         bool is_list) {
  if (x) {
    duckdb_vector_reference_value(v, x);
    return;
  }
  duckdb_vector_ensure_validity_writable(v);
  uint64_t *valid = duckdb_vector_get_validity(v);
  if (is_list) { /* entries of NULL rows are still read */
    duckdb_list_entry *e = duckdb_vector_get_data(v);
    memset(e, 0, n * sizeof *e);
  }
  for (idx_t r = 0; r < n; r++)
    duckdb_validity_set_row_invalid(valid, r);
}

/* The value a constant source (SRC_PID .. SRC_PPROPS) takes for the block
 * being emitted: its ids and insert time, or its process's columns (NULL
 * when the process is unknown). */
static duckdb_value block_constant(const scan_local *lo, int s) {
  const proc_info *pr = lo->proc;
  switch (s) {
  case SRC_PID:
    return lo->pid;
  case SRC_SID:
    return lo->sid;
  case SRC_BID:
    return lo->bid;
  case SRC_SID_TEXT:
    return lo->sid_text;
  case SRC_BID_TEXT:
    return lo->bid_text;
  case SRC_INSERT:
    return lo->insert_time;
  case SRC_EXE:
    return pr ? pr->vexe : NULL;
  case SRC_USER:
    return pr ? pr->vuser : NULL;
  case SRC_HOST:
    return pr ? pr->vhost : NULL;
  default: /* SRC_PPROPS */
    return pr ? pr->vprops : NULL;
  }
}

static void emit(scan_local *lo, duckdb_data_chunk out, size_t n) {
  tl_mat_job *j = lo->j;
  const row *rows = lo->rows + lo->pos;
  const uint8_t *src = SOURCES[j->view];
  for (int c = 0; c < j->v->ncols; c++) {
    duckdb_vector v = duckdb_data_chunk_get_vector(out, (idx_t)c);
    int s = src[c];
    if (s <= SRC_PPROPS) {
      put_constant(v, block_constant(lo, s), n, s == SRC_PPROPS);
      continue;
    }
    void *d = s >= SRC_I64 ? duckdb_vector_get_data(v) : NULL;
    switch (s) {
    case SRC_DURATION: {
      int64_t *o = duckdb_vector_get_data(v);
      for (size_t r = 0; r < n; r++)
        o[r] = rows[r].i64[4] - rows[r].i64[0];
      break;
    }
    case SRC_F: {
      double *o = duckdb_vector_get_data(v);
      for (size_t r = 0; r < n; r++)
        o[r] = rows[r].f;
      break;
    }
    default:
      if (s >= SRC_STR) {
        duckdb_string_t *o = d;
        int k = s - SRC_STR;
        for (size_t r = 0; r < n; r++)
          o[r] = str_at(lo->arena + rows[r].s[k].off, rows[r].s[k].len);
      } else if (s >= SRC_I32) {
        int32_t *o = d;
        int k = s - SRC_I32;
        for (size_t r = 0; r < n; r++)
          o[r] = rows[r].i32[k];
      } else {
        int64_t *o = d;
        int k = s - SRC_I64;
        for (size_t r = 0; r < n; r++)
          o[r] = rows[r].i64[k];
      }
    }
  }
  duckdb_data_chunk_set_size(out, n);
}

static void scan_fn(duckdb_function_info info, duckdb_data_chunk out) {
  tl_mat_job *j = duckdb_function_get_bind_data(info);
  scan_local *lo = duckdb_function_get_local_init_data(info);
  while (lo->pos == lo->nrows) {
    unsigned i = atomic_fetch_add(&j->next, 1);
    if (i >= j->n) {
      duckdb_data_chunk_set_size(out, 0);
      return;
    }
    if (scan_block(lo, i)) {
      duckdb_function_set_error(info, j->err);
      return;
    }
  }
  /* One block per chunk: its constants are the chunk's. */
  size_t n = lo->nrows - lo->pos;
  if (n > duckdb_vector_size())
    n = duckdb_vector_size();
  emit(lo, out, n);
  lo->pos += n;
}

/* The type of a column whose values are the batch's ENUMs (borrowed), or
 * NULL: the view's own type. */
static duckdb_logical_type batch_type(const tl_mat_job *j, int src) {
  switch (src) {
  case SRC_PID:
    return j->sets[SET_PID].type;
  case SRC_SID:
    return j->sets[SET_SID].type;
  case SRC_BID:
    return j->sets[SET_BID].type;
  case SRC_EXE:
    return j->sets[SET_EXE].type;
  case SRC_USER:
    return j->sets[SET_USER].type;
  case SRC_HOST:
    return j->sets[SET_HOST].type;
  case SRC_PPROPS:
    return j->props;
  default:
    return NULL;
  }
}

static void scan_bind(duckdb_bind_info info) {
  const tl_fn_tag *tag = duckdb_bind_get_extra_info(info);
  tl_lake *l = tag->l;
  duckdb_client_context ctx = NULL;
  duckdb_table_function_get_client_context(info, &ctx);
  idx_t conn = duckdb_client_context_get_connection_id(ctx);
  duckdb_destroy_client_context(&ctx);
  pthread_mutex_lock(&l->job_mu);
  tl_mat_job *j =
      l->job && l->job_background == tag->background && l->job_conn == conn
          ? l->job
          : NULL;
  pthread_mutex_unlock(&l->job_mu);
  if (!j) {
    duckdb_bind_set_error(info, SCAN_FUNCTION "() is internal to the lake's "
                                              "materializer");
    return;
  }
  for (int c = 0; c < j->v->ncols; c++) {
    duckdb_logical_type t = batch_type(j, SOURCES[j->view][c]);
    duckdb_logical_type own =
        t ? NULL : duckdb_create_logical_type(j->v->cols[c].type);
    duckdb_bind_add_result_column(info, j->v->cols[c].name, t ? t : own);
    if (own)
      duckdb_destroy_logical_type(&own);
  }
  duckdb_bind_set_cardinality(info, (idx_t)j->n * 1000, false);
  duckdb_bind_set_bind_data(info, j, NULL);
}

static void scan_init(duckdb_init_info info) {
  tl_mat_job *j = duckdb_init_get_bind_data(info);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  idx_t t = cpus > 0 ? (idx_t)cpus : 1;
  duckdb_init_set_max_threads(info, t < j->n ? t : (j->n ? j->n : 1));
}

static void scan_local_free(void *p) {
  scan_local *lo = p;
  block_values_free(lo);
  free(lo->rows);
  free(lo->arena);
  free(lo);
}

static void scan_local_init(duckdb_init_info info) {
  scan_local *lo = calloc(1, sizeof *lo);
  if (!lo) {
    duckdb_init_set_error(info, "out of memory");
    return;
  }
  lo->j = duckdb_init_get_bind_data(info);
  duckdb_init_set_init_data(info, lo, scan_local_free);
}

int tl__materialize_register(const tl_fn_tag *t, duckdb_connection c) {
  duckdb_table_function f = duckdb_create_table_function();
  duckdb_table_function_set_name(f, SCAN_FUNCTION);
  duckdb_table_function_set_extra_info(f, (void *)t, NULL);
  duckdb_table_function_set_bind(f, scan_bind);
  duckdb_table_function_set_init(f, scan_init);
  duckdb_table_function_set_local_init(f, scan_local_init);
  duckdb_table_function_set_function(f, scan_fn);
  int rc = duckdb_register_table_function(c, f) == DuckDBError ? TL_EIO : 0;
  duckdb_destroy_table_function(&f);
  return rc;
}

/* ---- Materialization ------------------------------------------------------
 */

/* Blocks in the order of their first event (then insert time, then id), so
 * that rows, which are not sorted, are nearly in time order. */
static int by_begin_time(const void *a, const void *b) {
  const tl_catalog_block *x = a, *y = b;
  if (x->begin_time != y->begin_time)
    return x->begin_time < y->begin_time ? -1 : 1;
  if (x->insert_time != y->insert_time)
    return x->insert_time < y->insert_time ? -1 : 1;
  return memcmp(x->block_id, y->block_id, 16);
}

static int64_t day_of(int64_t t) {
  return t / DAY_NS;
}

/* Runs the batch's COPY into `tmp`: the rows of j's blocks, through the
 * table function, bound only on this connection. */
static int copy_batch(tl_lake *l, tl_mat_job *j, bool background,
                      const char *tmp, char *err, size_t errcap) {
  duckdb_connection c;
  if (duckdb_connect(background ? l->mdb : l->db, &c) == DuckDBError)
    return tl__lake_fail(err, errcap, "duckdb: cannot connect");
  duckdb_client_context ctx = NULL;
  duckdb_connection_get_client_context(c, &ctx);
  idx_t conn = duckdb_client_context_get_connection_id(ctx);
  duckdb_destroy_client_context(&ctx);
  char sql[9000];
  if (j->v->order)
    snprintf(sql, sizeof sql,
             "COPY (SELECT * FROM " SCAN_FUNCTION "() ORDER BY %s) TO '%s' "
             "(" TL_PARTITION_FORMAT ")",
             j->v->order, tmp);
  else
    snprintf(sql, sizeof sql,
             "COPY (SELECT * FROM " SCAN_FUNCTION "()) TO '%s' "
             "(" TL_PARTITION_FORMAT ")",
             tmp);
  pthread_mutex_lock(&l->job_mu);
  l->job = j;
  l->job_conn = conn;
  l->job_background = background;
  pthread_mutex_unlock(&l->job_mu);
  duckdb_result r;
  int rc = 0;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    /* Our own message when the function failed: DuckDB wraps it. */
    if (j->failed)
      tl__lake_fail(err, errcap, "%s", j->err);
    else
      tl__lake_fail(err, errcap, "%s", duckdb_result_error(&r));
    rc = TL_EIO;
  } else if ((uint64_t)duckdb_value_int64(&r, 0, 0) != j->rows) {
    rc = tl__lake_fail(err, errcap,
                       "COPY wrote %" PRId64 " rows, %" PRIu64 " decoded",
                       duckdb_value_int64(&r, 0, 0), j->rows);
  }
  duckdb_destroy_result(&r);
  pthread_mutex_lock(&l->job_mu);
  l->job = NULL;
  pthread_mutex_unlock(&l->job_mu);
  duckdb_disconnect(&c);
  return rc;
}

/* Materializes one batch of blocks of view `v` inserted in [from,
 * max_insert_time]. *more tells whether a full batch was found (call
 * again). */
static int materialize_batch(tl_lake *l, int view, const char *instance,
                             int64_t from, int64_t max_insert_time,
                             bool background, tl_materialize_stats *st,
                             bool *more, char *err, size_t errcap) {
  const tl_view_def *v = &tl__views[view];
  *more = false;
  tl_catalog_block *blocks = calloc(BATCH_BLOCKS, sizeof *blocks);
  if (!blocks)
    return tl__lake_fail(err, errcap, "out of memory");
  unsigned n = 0;
  int rc = tl_catalog_blocks_to_materialize(
      l->cat, v->name, instance, v->scope, v->stream_tag, from, max_insert_time,
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
  qsort(blocks, n, sizeof *blocks, by_begin_time);

  tl_mat_job j;
  memset(&j, 0, sizeof j);
  j.l = l;
  j.v = v;
  j.view = view;
  j.blocks = blocks;
  j.n = n;
  j.min_time = INT64_MAX;
  j.max_time = INT64_MIN;
  pthread_mutex_init(&j.mu, NULL);
  uint8_t(*ids)[16] = calloc(n, 16);
  j.read = calloc(n, 1);
  unsigned nids = 0;
  char dir[4200], path[4400], tmp[4400], fname[37];
  tmp[0] = 0;
  if (!ids || !j.read) {
    rc = tl__lake_fail(err, errcap, "out of memory");
    goto out;
  }
  if ((rc = load_procs(&j))) {
    tl__lake_fail(err, errcap, "catalog: %s",
                  rc == TL_ENOMEM ? "out of memory"
                                  : tl_catalog_errmsg(l->cat));
    goto out;
  }

  /* One Parquet file per batch, under the day of its first event: written
   * as a temp file in the day of the first block, moved if need be. */
  uint8_t fid[16];
  tl_uuid_v4(fid);
  tl_uuid_format(fid, fname);
  snprintf(dir, sizeof dir, "%s/views/%s/%s/%" PRId64, l->data, v->name,
           instance, day_of(blocks[0].begin_time));
  snprintf(tmp, sizeof tmp, "%s/.tmp-%s.parquet", dir, fname);
  if (tl_mkdirs(dir)) {
    rc = tl__lake_fail(err, errcap, "cannot create %s", dir);
    tmp[0] = 0;
    goto out;
  }
  if ((rc = copy_batch(l, &j, background, tmp, err, errcap)))
    goto out;
  int64_t min_insert = INT64_MAX, max_insert = INT64_MIN;
  for (unsigned i = 0; i < n; i++) {
    if (!j.read[i])
      continue;
    memcpy(ids[nids++], blocks[i].block_id, 16);
    if (blocks[i].insert_time < min_insert)
      min_insert = blocks[i].insert_time;
    if (blocks[i].insert_time > max_insert)
      max_insert = blocks[i].insert_time;
  }
  if (nids == 0) {
    /* Nothing readable in this batch (blobs missing: retired meanwhile):
     * stop here rather than be offered the same blocks again. */
    *more = false;
    goto out;
  }

  tl_partition part;
  memset(&part, 0, sizeof part);
  int64_t day = day_of(j.min_time == INT64_MAX ? 0 : j.min_time);
  snprintf(part.view_name, sizeof part.view_name, "%s", v->name);
  snprintf(part.instance, sizeof part.instance, "%s", instance);
  snprintf(part.file, sizeof part.file, "views/%s/%s/%" PRId64 "/%s%s", v->name,
           instance, day, fname,
           view < TL_NVIEWS_GLOBAL ? TL_PARTITION_V2 : ".parquet");
  snprintf(dir, sizeof dir, "%s/views/%s/%s/%" PRId64, l->data, v->name,
           instance, day);
  snprintf(path, sizeof path, "%s/%s", l->data, part.file);
  if (tl_mkdirs(dir) || tl_publish_file(tmp, path)) {
    rc = tl__lake_fail(err, errcap, "cannot publish %s", path);
    goto out;
  }
  tmp[0] = 0;
  struct stat sst;
  part.file_size = stat(path, &sst) ? 0 : (uint64_t)sst.st_size;
  part.nb_rows = j.rows;
  part.nb_blocks = nids;
  part.begin_time = j.min_time == INT64_MAX ? 0 : j.min_time;
  part.end_time = j.max_time == INT64_MIN ? 0 : j.max_time;
  part.min_insert_time = min_insert;
  part.max_insert_time = max_insert;
  part.created_time = tl_wall_ns();
  rc = tl_catalog_add_partition(l->cat, &part, (const uint8_t(*)[16])ids, nids);
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
out:
  if (tmp[0])
    unlink(tmp);
  for (size_t i = 0; i < j.nprocs; i++)
    proc_free(&j.procs[i]);
  free(j.procs);
  free(j.read);
  free(ids);
  for (int k = 0; k < NSETS; k++)
    set_free(&j.sets[k]);
  if (j.props)
    duckdb_destroy_logical_type(&j.props);
  pthread_mutex_destroy(&j.mu);
  free(blocks);
  return rc;
}

int tl__lake_materialize_view(tl_lake *l, int view, const char *instance,
                              int64_t max_insert_time, bool background,
                              tl_materialize_stats *st, char *err,
                              size_t errcap) {
  TL_SPAN_FN();
  int rc = 0;
  err[0] = 0;
  /* One materializer per process at a time; the catalog arbitrates between
   * servers. A session waiting here for what was acknowledged before it
   * opened is served by any materialization that started after it did:
   * under load, the sessions that queued behind one materialization are
   * then all served by the next one, instead of each running its own. */
  bool global = view < TL_NVIEWS_GLOBAL;
  pthread_mutex_lock(&l->mu);
  if (global && l->done_through[view] >= max_insert_time) {
    pthread_mutex_unlock(&l->mu);
    return 0;
  }
  /* What was inserted before the last complete materialization (less a
   * margin) is in partitions: the catalog need not walk it again, which
   * would cost every call time in proportion to every block ever stored.
   * A full scan now and then finds any block inserted late with an older
   * insert time (a server whose clock lags). */
  uint64_t started = tl_mono_ns();
  int64_t from = INT64_MIN;
  if (global && l->done_through[view] &&
      started - l->full_scan_at[view] < TL_FULL_SCAN_NS)
    from = l->done_through[view] - TL_SCAN_MARGIN_NS;
  bool more = true;
  while (more && !rc && !atomic_load(&l->interrupted))
    rc = materialize_batch(l, view, instance, from, max_insert_time, background,
                           st, &more, err, errcap);
  if (global && !rc && !more) {
    if (l->done_through[view] < max_insert_time)
      l->done_through[view] = max_insert_time;
    if (from == INT64_MIN)
      l->full_scan_at[view] = started;
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

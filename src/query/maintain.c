/* maintain.c - keeping the lake small and fresh: merging runs of small
 * partitions of the global views into larger ones, the trash that deletes
 * replaced files once no session can still be reading them, the sweep of
 * orphan files, and the maintenance thread of `tracelake serve`. See
 * docs/lakehouse.md, "Maintenance". */
#define TL_TARGET "tracelake::maintain"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lake_impl.h"
#include "tracelake/tracelake.h"

#define DAY_NS ((int64_t)86400 * 1000000000)
#define MAX_CANDIDATES 16384
#define MAX_TRASH_LIST ((size_t)64 << 20)
#define TRASH_DIR "views/.trash"
#define STOP_WALK 1 /* a positive code: the walk stopped on purpose */

/* ---- Files ------------------------------------------------------------- */

/* A partition file as the materializer names them: relative, under views/,
 * a .parquet, never leaving the data directory. Anything else in the
 * catalog is left alone (neither read nor deleted). */
static bool partition_file_ok(const char *f) {
  size_t n = strlen(f);
  return !strncmp(f, "views/", 6) && n > 14 && !strcmp(f + n - 8, ".parquet") &&
         !strstr(f, "..") && !strstr(f, "/.trash/");
}

/* Appends the SQL string literal of a + s, quotes doubled. */
static int append_literal(tl_bytes *b, const char *a, const char *s) {
  int rc = tl_bytes_append(b, "'", 1);
  for (int part = 0; part < 2; part++)
    for (const char *p = part ? s : a; !rc && *p; p++)
      rc = *p == '\'' ? tl_bytes_append(b, "''", 2) : tl_bytes_append(b, p, 1);
  return rc ? rc : tl_bytes_append(b, "'", 1);
}

/* ---- The trash ------------------------------------------------------------
 * A list per merge (or retirement batch): DATA/views/.trash/<due>-<uuid>.list
 * with one file (relative to DATA) a line. It survives restarts, and any
 * server sharing the data directory may purge it. */

int tl_trash_add(tl_store *store, int64_t due, const char *const *files,
                 size_t n) {
  if (!n)
    return 0;
  tl_bytes b;
  tl_bytes_init(&b, MAX_TRASH_LIST);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++)
    if (!(rc = tl_bytes_append(&b, files[i], strlen(files[i]))))
      rc = tl_bytes_append(&b, "\n", 1);
  if (!rc) {
    uint8_t id[16];
    char uuid[37], key[128];
    tl_uuid_v4(id);
    tl_uuid_format(id, uuid);
    snprintf(key, sizeof key, TRASH_DIR "/%020" PRId64 "-%s.list",
             due < 0 ? 0 : due, uuid);
    rc = tl_store_put(store, key, b.p, b.len);
  }
  tl_bytes_free(&b);
  return rc;
}

/* Deletes the files of one list; 0 when none is left. */
static int purge_list(tl_store *store, const char *key, uint64_t *deleted) {
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = tl_store_get(store, key, MAX_TRASH_LIST, &p, &n);
  if (rc == TL_ENOTFOUND) /* another purger took it */
    return 0;
  if (rc)
    return rc;
  const char *root = tl_store_root(store);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\n')
      continue;
    p[i] = 0;
    const char *f = (const char *)p + start;
    start = i + 1;
    if (!partition_file_ok(f))
      continue;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", root, f);
    if (!unlink(path)) {
      if (deleted)
        (*deleted)++;
    } else if (errno != ENOENT) {
      rc = TL_EIO;
    }
  }
  free(p);
  if (!rc)
    rc = tl_store_delete(store, key);
  return rc;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int tl_trash_purge(tl_store *store, int64_t now, uint64_t *deleted) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/" TRASH_DIR, tl_store_root(store));
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : TL_EIO;
  tl_strs due = {0};
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) && !rc) {
    /* <20 digits>-<uuid>.list; temp files of tl_store_put are swept by
     * tl_store_sweep_temp. */
    const char *name = e->d_name;
    size_t len = strlen(name);
    if (len < 26 || name[20] != '-' || strcmp(name + len - 5, ".list"))
      continue;
    char *end;
    long long t = strtoll(name, &end, 10);
    if (end != name + 20 || t > now)
      continue;
    rc = tl_strs_add(&due, name);
  }
  closedir(d);
  if (due.n)
    qsort(due.v, due.n, sizeof *due.v, cmp_names); /* oldest first */
  for (size_t i = 0; i < due.n; i++) {
    char key[512];
    snprintf(key, sizeof key, TRASH_DIR "/%s", due.v[i]);
    int lrc = purge_list(store, key, deleted);
    if (lrc && !rc)
      rc = lrc;
  }
  tl_strs_free(&due);
  return rc;
}

/* ---- Retention ------------------------------------------------------------
 * Blocks first, then partitions (docs/catalog.md: a partition retired before
 * its blocks would have them materialized again). */

typedef struct retire_ctx {
  tl_store *store;
  tl_retire_stats *st;
  tl_strs files; /* the partition files of the current batch */
} retire_ctx;

static void delete_blob(void *ctx, const tl_catalog_block *b) {
  retire_ctx *r = ctx;
  char key[128];
  tl_store_block_key(b->process_id, b->stream_id, b->block_id, key);
  if (tl_store_delete(r->store, key))
    r->st->undeleted++;
}

static void collect_file(void *ctx, const tl_partition *p) {
  retire_ctx *r = ctx;
  if (tl_strs_add(&r->files, p->file)) /* no row, the file stays */
    r->st->undeleted++;
}

/* The current batch's partition files: into the trash, or deleted now
 * rather than never when no list can be written. */
static void discard_files(retire_ctx *r, int64_t due) {
  if (r->files.n &&
      tl_trash_add(r->store, due, (const char *const *)r->files.v, r->files.n))
    for (size_t i = 0; i < r->files.n; i++)
      if (tl_store_delete(r->store, r->files.v[i]))
        r->st->undeleted++;
  tl_strs_free(&r->files);
}

int tl_retire(tl_catalog *cat, tl_store *store, int64_t cutoff, unsigned batch,
              int64_t due, tl_retire_stats *st,
              bool (*progress)(void *ctx, const tl_retire_stats *st), void *ctx,
              char *err, size_t errcap) {
  TL_SPAN_FN();
  err[0] = 0;
  if (batch < 1 || batch > 100000) {
    snprintf(err, errcap, "batch must be 1..100000");
    return TL_EINVAL;
  }
  retire_ctx r = {store, st, {0}};
  int rc;
  unsigned n;
  do {
    rc = tl_catalog_retire_batch(cat, cutoff, batch, delete_blob, &r, &n);
    st->blocks += n;
    if (n && progress && !progress(ctx, st))
      return 0; /* the partitions wait for all their blocks to go first */
  } while (!rc && n > 0);
  if (batch > TL_PARTITION_RETIRE_MAX)
    batch = TL_PARTITION_RETIRE_MAX;
  while (!rc) {
    rc = tl_catalog_retire_partitions(cat, cutoff, batch, collect_file, &r, &n);
    st->partitions += n;
    discard_files(&r, due);
    if (!n || (progress && !progress(ctx, st)))
      break;
  }
  if (rc)
    snprintf(err, errcap, "catalog: %s", tl_catalog_errmsg(cat));
  return rc;
}

/* ---- Orphan files ---------------------------------------------------------
 * A crash or a lost catalog reply can leave files under views/ that no
 * partition names: the temp file of a COPY that never finished, a file whose
 * partition was never recorded, the old files of a merge whose trash list
 * could not be written. A file is deleted when two sweeps in a row found it
 * so (and not in a trash list): whatever was in flight at the first one (a
 * file written, not yet recorded; a merge committed, its trash list not yet
 * written) has settled by the second. */

struct tl_orphan_sweep {
  char **v; /* paths relative to the data directory, sorted */
  size_t n;
};

static void names_sort(tl_strs *s) {
  if (s->n)
    qsort(s->v, s->n, sizeof *s->v, cmp_names);
}

static bool names_has(char *const *v, size_t n, const char *name) {
  return n && bsearch(&name, v, n, sizeof *v, cmp_names);
}

static int add_partition_file(void *ctx, const tl_partition *p) {
  return tl_strs_add(ctx, p->file);
}

/* Every file named by a trash list, due or not. */
static int collect_trash(tl_store *store, tl_strs *out) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/" TRASH_DIR, tl_store_root(store));
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : TL_EIO;
  int rc = 0;
  struct dirent *e;
  while (!rc && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 5, ".list"))
      continue;
    char key[512];
    snprintf(key, sizeof key, TRASH_DIR "/%s", e->d_name);
    uint8_t *p = NULL;
    size_t n = 0;
    int grc = tl_store_get(store, key, MAX_TRASH_LIST, &p, &n);
    if (grc == TL_ENOTFOUND) /* purged meanwhile */
      continue;
    if (grc) {
      rc = grc;
      break;
    }
    size_t start = 0;
    for (size_t i = 0; i < n && !rc; i++)
      if (p[i] == '\n') {
        p[i] = 0;
        rc = tl_strs_add(out, (const char *)p + start);
        start = i + 1;
      }
    free(p);
  }
  closedir(d);
  return rc;
}

/* The files of views/<view>/<instance>/<day>/ that the catalog does not
 * name (and that look like ours: *.parquet, not in the trash). */
static int instance_orphans(tl_lake *l, const char *view, const char *instance,
                            const tl_strs *trash, tl_strs *out) {
  tl_strs known = {0};
  int rc = tl_catalog_list_partitions(l->cat, view, instance, INT64_MIN,
                                      INT64_MAX, add_partition_file, &known);
  if (rc) {
    tl_strs_free(&known);
    return rc;
  }
  names_sort(&known);
  char dir[4400];
  snprintf(dir, sizeof dir, "%s/views/%s/%s", l->data, view, instance);
  DIR *days = opendir(dir);
  struct dirent *d;
  while (!rc && days && (d = readdir(days))) {
    if (d->d_name[0] == '.')
      continue;
    char daydir[4700];
    snprintf(daydir, sizeof daydir, "%s/%s", dir, d->d_name);
    DIR *files = opendir(daydir);
    struct dirent *f;
    while (!rc && files && (f = readdir(files))) {
      char rel[TL_PARTITION_FILE_MAX + 64];
      int n = snprintf(rel, sizeof rel, "views/%s/%s/%s/%s", view, instance,
                       d->d_name, f->d_name);
      if (n < 0 || (size_t)n >= sizeof rel || !partition_file_ok(rel) ||
          names_has(known.v, known.n, rel) ||
          names_has(trash->v, trash->n, rel))
        continue;
      rc = tl_strs_add(out, rel);
    }
    if (files)
      closedir(files);
  }
  if (days)
    closedir(days);
  tl_strs_free(&known);
  return rc;
}

int tl_lake_sweep(tl_lake *l, tl_orphan_sweep **sw, uint64_t *deleted,
                  char *err, size_t errcap) {
  err[0] = 0;
  tl_strs trash = {0}, now = {0};
  int rc = collect_trash(l->store, &trash);
  names_sort(&trash);
  for (int v = 0; v < TL_NVIEWS && !rc; v++) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/views/%s", l->data, tl__views[v].name);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (!rc && d && (e = readdir(d)))
      if (e->d_name[0] != '.' && strlen(e->d_name) < TL_PARTITION_INSTANCE_MAX)
        rc = instance_orphans(l, tl__views[v].name, e->d_name, &trash, &now);
    if (d)
      closedir(d);
  }
  if (rc) {
    tl__lake_fail(err, errcap, "orphan sweep: %s",
                  rc == TL_ENOMEM ? "out of memory"
                                  : tl_catalog_errmsg(l->cat));
    tl_strs_free(&trash);
    tl_strs_free(&now);
    return rc;
  }
  names_sort(&now);
  tl_orphan_sweep *prev = *sw;
  /* Orphans already seen go; the others are remembered (in order). */
  size_t kept = 0;
  for (size_t i = 0; i < now.n; i++) {
    if (!prev || !names_has(prev->v, prev->n, now.v[i])) {
      now.v[kept++] = now.v[i];
      continue;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", l->data, now.v[i]);
    int u = unlink(path);
    if (u == 0 || errno == ENOENT) {
      if (u == 0 && deleted)
        (*deleted)++;
      free(now.v[i]);
      continue;
    }
    if (!rc)
      rc = tl__lake_fail(err, errcap, "cannot delete %s", path);
    now.v[kept++] = now.v[i]; /* tried again next time */
  }
  now.n = kept;
  tl_strs_free(&trash);
  /* Remember this sweep's new orphans for the next one. */
  if (!prev && !(prev = calloc(1, sizeof *prev))) {
    tl_strs_free(&now);
    return tl__lake_fail(err, errcap, "out of memory");
  }
  for (size_t i = 0; i < prev->n; i++)
    free(prev->v[i]);
  free(prev->v);
  prev->v = now.v;
  prev->n = now.n;
  *sw = prev;
  return rc;
}

void tl_orphan_sweep_free(tl_orphan_sweep *sw) {
  if (!sw)
    return;
  for (size_t i = 0; i < sw->n; i++)
    free(sw->v[i]);
  free(sw->v);
  free(sw);
}

/* ---- Merging ----------------------------------------------------------- */

typedef struct candidates {
  tl_partition *p;
  size_t n, cap;
  uint64_t max_bytes, max_rows;
} candidates;

static int collect_small(void *ctx, const tl_partition *p) {
  candidates *c = ctx;
  if (p->file_size >= c->max_bytes || p->nb_rows >= c->max_rows ||
      !partition_file_ok(p->file))
    return 0;
  if (c->n == c->cap) {
    if (c->cap == MAX_CANDIDATES)
      return STOP_WALK; /* the rest next time */
    size_t cap = c->cap ? c->cap * 4 : 256;
    if (cap > MAX_CANDIDATES)
      cap = MAX_CANDIDATES;
    tl_partition *g = realloc(c->p, cap * sizeof *g);
    if (!g)
      return TL_ENOMEM;
    c->p = g;
    c->cap = cap;
  }
  c->p[c->n++] = *p;
  return 0;
}

/* The day directory of a partition, as lake.c computes it. */
static int64_t day_of(int64_t t) {
  return t / DAY_NS;
}

static int by_rows_desc(const void *a, const void *b) {
  const tl_partition *x = *(tl_partition *const *)a;
  const tl_partition *y = *(tl_partition *const *)b;
  if (x->nb_rows != y->nb_rows)
    return x->nb_rows > y->nb_rows ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Writes the rows of partitions m[0..k) as one Parquet file, records it in
 * place of them and trashes their files. */
static int merge_group(tl_lake *l, const tl_view_def *v, tl_partition **m,
                       size_t k, int64_t grace_ns, tl_merge_stats *st,
                       char *err, size_t errcap) {
  tl_partition part;
  memset(&part, 0, sizeof part);
  snprintf(part.view_name, sizeof part.view_name, "%s", v->name);
  snprintf(part.instance, sizeof part.instance, TL_INSTANCE_GLOBAL);
  part.begin_time = INT64_MAX;
  part.end_time = INT64_MIN;
  part.min_insert_time = INT64_MAX;
  part.max_insert_time = INT64_MIN;
  int64_t *ids = malloc(k * sizeof *ids);
  const char **old = malloc(k * sizeof *old);
  tl_bytes sql;
  tl_bytes_init(&sql, (size_t)16 << 20);
  int rc = 0;
  if (!ids || !old) {
    rc = tl__lake_fail(err, errcap, "out of memory");
    goto out;
  }
  /* Partitions of the older format (TL_PARTITION_V2) are read beside the
   * others, by name, against the shape of a current partition: the merged
   * file is always of the current format (their process columns NULL). */
  size_t nold = 0;
  for (size_t i = 0; i < k; i++)
    nold += !tl__partition_v2(m[i]->file);
  rc = tl_bytes_append(&sql, "COPY (SELECT * FROM (SELECT * FROM ", 35);
  for (int pass = 0; pass < 2 && !rc; pass++) {
    bool want_v2 = pass == 0;
    size_t count = want_v2 ? k - nold : nold;
    if (pass == 1 && !count)
      break;
    if (pass == 1)
      rc = tl_bytes_append(&sql, " UNION ALL BY NAME SELECT * FROM ", 33);
    if (!rc && !count) { /* only older partitions: the shape comes first */
      rc = tl_bytes_append(&sql, "shape", 5);
      continue;
    }
    if (!rc)
      rc = tl_bytes_append(&sql, "read_parquet([", 14);
    for (size_t i = 0, listed = 0; i < k && !rc; i++) {
      tl_partition *p = m[i];
      if (tl__partition_v2(p->file) != want_v2)
        continue;
      if (listed++)
        rc = tl_bytes_append(&sql, ", ", 2);
      if (!rc) {
        char prefix[2100];
        snprintf(prefix, sizeof prefix, "%s/", l->data);
        rc = append_literal(&sql, prefix, p->file);
      }
    }
    if (!rc)
      rc = tl_bytes_append(&sql, "])", 2);
  }
  for (size_t i = 0; i < k; i++) {
    tl_partition *p = m[i];
    ids[i] = p->id;
    old[i] = p->file;
    part.nb_rows += p->nb_rows;
    part.nb_blocks += p->nb_blocks;
    if (p->begin_time < part.begin_time)
      part.begin_time = p->begin_time;
    if (p->end_time > part.end_time)
      part.end_time = p->end_time;
    if (p->min_insert_time < part.min_insert_time)
      part.min_insert_time = p->min_insert_time;
    if (p->max_insert_time > part.max_insert_time)
      part.max_insert_time = p->max_insert_time;
  }
  uint8_t fid[16];
  char fname[37];
  tl_uuid_v4(fid);
  tl_uuid_format(fid, fname);
  int64_t day = day_of(part.begin_time);
  snprintf(part.file, sizeof part.file,
           "views/%s/" TL_INSTANCE_GLOBAL "/%" PRId64 "/%s" TL_PARTITION_V2,
           v->name, day, fname);
  char dir[4200], path[4400], tmp[4400];
  snprintf(dir, sizeof dir, "%s/views/%s/" TL_INSTANCE_GLOBAL "/%" PRId64,
           l->data, v->name, day);
  snprintf(path, sizeof path, "%s/%s", l->data, part.file);
  snprintf(tmp, sizeof tmp, "%s/.tmp-%s.parquet", dir, fname);
  static const char tail[] = ") ORDER BY time) TO ";
  if (!rc)
    rc = tl_bytes_append(&sql, tail, sizeof tail - 1);
  if (!rc)
    rc = append_literal(&sql, "", tmp);
  static const char opts[] = " (" TL_PARTITION_FORMAT ")";
  if (!rc)
    rc = tl_bytes_append(&sql, opts, sizeof opts); /* with the NUL */
  if (rc) {
    rc = tl__lake_fail(err, errcap, "merge: SQL too long (%zu files)", k);
    goto out;
  }
  if (tl_mkdirs(dir)) {
    rc = tl__lake_fail(err, errcap, "cannot create %s", dir);
    goto out;
  }

  /* DuckDB reads the small files and writes the merged one, sorted. */
  duckdb_connection c;
  if (duckdb_connect(l->mdb, &c) == DuckDBError) {
    rc = tl__lake_fail(err, errcap, "duckdb: cannot connect");
    goto out;
  }
  duckdb_result r;
  char shape[2048];
  snprintf(shape, sizeof shape, "CREATE TEMP TABLE shape (%s)", v->columns);
  if (nold && tl__duck_exec(c, shape, err, errcap)) {
    rc = TL_EIO;
    duckdb_disconnect(&c);
    goto out;
  }
  if (duckdb_query(c, (const char *)sql.p, &r) == DuckDBError) {
    rc = tl__lake_fail(err, errcap, "merge: %s", duckdb_result_error(&r));
  } else {
    /* COPY answers the number of rows written: all of them, or none. */
    int64_t written = duckdb_value_int64(&r, 0, 0);
    if ((uint64_t)written != part.nb_rows)
      rc = tl__lake_fail(err, errcap,
                         "merge of %zu %s partitions wrote %" PRId64
                         " rows, the catalog says %" PRIu64,
                         k, v->name, written, part.nb_rows);
  }
  duckdb_destroy_result(&r);
  duckdb_disconnect(&c);
  if (!rc && tl_publish_file(tmp, path))
    rc = tl__lake_fail(err, errcap, "cannot publish %s", path);
  if (rc) {
    unlink(tmp);
    goto out;
  }
  struct stat sst;
  part.file_size = stat(path, &sst) ? 0 : (uint64_t)sst.st_size;
  part.created_time = tl_wall_ns();

  /* A lost connection leaves the outcome unknown; the same call again is
   * safe (the file names the partition). */
  for (int attempt = 0;; attempt++) {
    rc = tl_catalog_replace_partitions(l->cat, ids, (unsigned)k, &part);
    if (rc != TL_EUNAVAILABLE || attempt == 2)
      break;
    usleep(200 * 1000);
  }
  if (rc == TL_ECONFLICT) { /* another compactor, or retention, came first */
    unlink(path);
    if (st)
      st->conflicts++;
    rc = 0;
    goto out;
  }
  if (rc) {
    tl__lake_fail(err, errcap, "catalog: %s", tl_catalog_errmsg(l->cat));
    /* Unknown outcome: keep the file, which may now be the partition (an
     * unreferenced file is only wasted space). Refused: delete it. */
    if (rc != TL_EUNAVAILABLE)
      unlink(path);
    goto out;
  }
  if (st) {
    st->merges++;
    st->replaced += k;
    st->rows += part.nb_rows;
    st->blocks += part.nb_blocks;
    st->bytes += part.file_size;
  }
  /* Sessions opened before the commit may still read the old files. */
  int trc = tl_trash_add(l->store, tl_wall_ns() + grace_ns, old, k);
  if (trc) {
    /* Rather than leak them forever: they would be left on disk with no
     * row pointing at them. */
    rc = tl__lake_fail(err, errcap,
                       "merged, but cannot trash the %zu old files: %s", k,
                       tl_strerror(trc));
  }
out:
  tl_bytes_free(&sql);
  free(ids);
  free(old);
  return rc;
}

/* Merges one run of candidates [0, k) (same day, under the limits
 * together), leaving out its largest members while one has more rows than
 * the others together can grow it to `fan_in` times its size: a row is then
 * rewritten only when the partition it is in grows that much, about
 * log_fan_in(limit / partition size) times in all. Rows, not bytes: a small
 * file's size is mostly fixed overhead. */
static int merge_run(tl_lake *l, const tl_view_def *v, tl_partition *run,
                     size_t k, unsigned fan_in, int64_t grace_ns,
                     tl_merge_stats *st, char *err, size_t errcap) {
  if (k < 2)
    return 0;
  tl_partition **m = malloc(k * sizeof *m);
  if (!m)
    return tl__lake_fail(err, errcap, "out of memory");
  uint64_t rest = 0;
  for (size_t i = 0; i < k; i++) {
    m[i] = &run[i];
    rest += run[i].nb_rows;
  }
  qsort(m, k, sizeof *m, by_rows_desc);
  size_t first = 0;
  for (; k - first >= 2; first++) {
    rest -= m[first]->nb_rows;
    if (rest >= (uint64_t)(fan_in - 1) * m[first]->nb_rows)
      break;
  }
  int rc = 0;
  if (k - first >= 2)
    rc = merge_group(l, v, m + first, k - first, grace_ns, st, err, errcap);
  free(m);
  return rc;
}

static int merge_view(tl_lake *l, const tl_view_def *v, const tl_merge_opts *o,
                      tl_merge_stats *st, char *err, size_t errcap) {
  candidates c;
  memset(&c, 0, sizeof c);
  c.max_bytes = o && o->max_bytes ? o->max_bytes : TL_MERGE_MAX_BYTES;
  c.max_rows = o && o->max_rows ? o->max_rows : TL_MERGE_MAX_ROWS;
  unsigned fan_in = o && o->fan_in >= 2 ? o->fan_in : TL_MERGE_FAN_IN;
  int64_t grace = o && o->grace_ns >= 0 ? o->grace_ns : TL_TRASH_GRACE_NS;
  int rc = tl_catalog_list_partitions(l->cat, v->name, TL_INSTANCE_GLOBAL,
                                      INT64_MIN, INT64_MAX, collect_small, &c);
  if (rc == STOP_WALK)
    rc = 0;
  if (rc) {
    free(c.p);
    return rc == TL_ENOMEM ? tl__lake_fail(err, errcap, "out of memory")
                           : tl__lake_fail(err, errcap, "catalog: %s",
                                           tl_catalog_errmsg(l->cat));
  }
  /* Runs: consecutive candidates (by begin_time) of one day whose totals
   * stay under the limits. A run that fails (say a file was removed by
   * hand) does not keep the later ones from merging: the first error is
   * returned at the end. */
  size_t i = 0;
  while (i < c.n) {
    if (o && o->cancel && *o->cancel)
      break;
    int64_t day = day_of(c.p[i].begin_time);
    uint64_t bytes = 0, rows = 0;
    size_t j = i;
    while (j < c.n && j - i < TL_PARTITION_MAX_REPLACE &&
           day_of(c.p[j].begin_time) == day &&
           bytes + c.p[j].file_size < c.max_bytes &&
           rows + c.p[j].nb_rows < c.max_rows) {
      bytes += c.p[j].file_size;
      rows += c.p[j].nb_rows;
      j++;
    }
    if (j == i) /* cannot happen (every candidate is under the limits) */
      j = i + 1;
    char run_err[1024];
    int rrc = merge_run(l, v, c.p + i, j - i, fan_in, grace, st, run_err,
                        sizeof run_err);
    if (rrc && !rc) {
      rc = rrc;
      snprintf(err, errcap, "%s", run_err);
    }
    i = j;
  }
  free(c.p);
  return rc;
}

int tl_lake_merge_with(tl_lake *l, const char *view, const tl_merge_opts *o,
                       tl_merge_stats *st, char *err, size_t errcap) {
  err[0] = 0;
  bool found = false;
  int rc = 0;
  for (int i = 0; i < TL_NVIEWS; i++) {
    const tl_view_def *v = &tl__views[i];
    if (v->scope != TL_SCOPE_ALL || (view && strcmp(view, v->name)))
      continue;
    found = true;
    char view_err[1024];
    int vrc = merge_view(l, v, o, st, view_err, sizeof view_err);
    if (vrc && !rc) { /* the first error; the other views still merge */
      rc = vrc;
      snprintf(err, errcap, "%s: %s", v->name, view_err);
    }
  }
  if (!found) {
    snprintf(err, errcap, "no global view named %s", view ? view : "?");
    return TL_EINVAL;
  }
  return rc;
}

int tl_lake_merge(tl_lake *l, const char *view, char *err, size_t errcap,
                  tl_materialize_stats *st) {
  tl_merge_stats ms;
  memset(&ms, 0, sizeof ms);
  int rc = tl_lake_merge_with(l, view, NULL, &ms, err, errcap);
  if (st) {
    st->blocks += ms.blocks;
    st->rows += ms.rows;
    st->partitions += ms.merges;
    st->bytes += ms.bytes;
  }
  return rc;
}

/* ---- The maintenance thread ---------------------------------------------- */

struct tl_maintainer {
  tl_lake *l;
  tl_maintainer_opts o;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Atomic bool stop;
  uint64_t last_warn; /* tl_mono_ns of the last warning */
  /* Materialization since the last report. */
  tl_materialize_stats mat;
  uint64_t mat_cycles, mat_ticks, deleted, orphans;
  tl_retire_stats retired;
  tl_orphan_sweep *sweep; /* the orphans the last sweep saw */
};

/* Materialization is reported every 10 s rather than every cycle: the
 * server's telemetry is itself materialized, so a report per cycle would
 * give an idle server a partition per cycle, forever. */
#define REPORT_NS ((uint64_t)10 * 1000000000)

/* Orphan files are looked for at start and every hour; one found twice in
 * a row (an hour apart, far longer than anything in flight or in the
 * trash's grace period) is deleted. */
#define SWEEP_NS ((uint64_t)3600 * 1000000000)

/* With a retention period, what fell out of it is retired at start and
 * every minute (an idle run costs two catalog queries). */
#define RETIRE_NS ((uint64_t)60 * 1000000000)
#define RETIRE_BATCH 1000

/* One warning per 10 s at most: a catalog that is down for an hour would
 * otherwise log a line per cycle. Every error is counted. */
static void warn(tl_maintainer *m, const char *what, const char *err) {
  TL_IMETRIC("maintain_errors", "count", 1);
  uint64_t now = tl_mono_ns();
  if (m->last_warn && now - m->last_warn < REPORT_NS)
    return;
  m->last_warn = now;
  TL_WARN("maintenance: %s: %s", what, err);
}

static void report(tl_maintainer *m) {
  if (m->mat_cycles) {
    TL_IMETRIC("maintain_materialize_cycles", "count", m->mat_cycles);
    TL_IMETRIC("maintain_materialize_duration", "ticks", m->mat_ticks);
    TL_IMETRIC("maintain_blocks_materialized", "count", m->mat.blocks);
    TL_IMETRIC("maintain_rows_materialized", "count", m->mat.rows);
    TL_IMETRIC("maintain_partitions_materialized", "count", m->mat.partitions);
    TL_IMETRIC("maintain_bytes_materialized", "bytes", m->mat.bytes);
  }
  if (m->deleted)
    TL_IMETRIC("maintain_files_deleted", "count", m->deleted);
  if (m->orphans)
    TL_IMETRIC("maintain_orphans_deleted", "count", m->orphans);
  if (m->retired.blocks || m->retired.partitions) {
    TL_IMETRIC("maintain_blocks_retired", "count", m->retired.blocks);
    TL_IMETRIC("maintain_partitions_retired", "count", m->retired.partitions);
  }
  memset(&m->retired, 0, sizeof m->retired);
  memset(&m->mat, 0, sizeof m->mat);
  m->mat_cycles = m->mat_ticks = m->deleted = m->orphans = 0;
}

static void materialize_step(tl_maintainer *m) {
  char err[1024];
  tl_materialize_stats st;
  memset(&st, 0, sizeof st);
  uint64_t t0 = tl_ticks();
  int rc = tl_lake_materialize(m->l, tl_wall_ns(), &st, err, sizeof err);
  uint64_t dt = tl_ticks() - t0;
  if (st.partitions) { /* the cycles that found work */
    m->mat_cycles++;
    m->mat_ticks += dt;
    m->mat.blocks += st.blocks;
    m->mat.rows += st.rows;
    m->mat.partitions += st.partitions;
    m->mat.bytes += st.bytes;
  }
  if (rc)
    warn(m, "materialize", err);
}

/* Merges run every few seconds at most: reported one by one. */
static void merge_step(tl_maintainer *m) {
  char err[1024];
  tl_merge_stats st;
  memset(&st, 0, sizeof st);
  uint64_t t0 = tl_ticks();
  int rc = tl_lake_merge_with(m->l, NULL, &m->o.merge, &st, err, sizeof err);
  uint64_t dt = tl_ticks() - t0;
  if (st.merges || st.conflicts) {
    TL_IMETRIC("maintain_merge_duration", "ticks", dt);
    TL_IMETRIC("maintain_merges", "count", st.merges);
    TL_IMETRIC("maintain_partitions_merged", "count", st.replaced);
    TL_IMETRIC("maintain_rows_merged", "count", st.rows);
    TL_IMETRIC("maintain_bytes_merged", "bytes", st.bytes);
    TL_IMETRIC("maintain_merge_conflicts", "count", st.conflicts);
  }
  if (rc)
    warn(m, "merge", err);
}

static void purge_step(tl_maintainer *m) {
  int rc = tl_trash_purge(m->l->store, tl_wall_ns(), &m->deleted);
  if (rc)
    warn(m, "purging the trash", tl_strerror(rc));
}

static bool retire_goes_on(void *ctx, const tl_retire_stats *st) {
  (void)st;
  return !atomic_load(&((tl_maintainer *)ctx)->stop);
}

static void retire_step(tl_maintainer *m) {
  char err[1024];
  int64_t now = tl_wall_ns();
  int64_t grace =
      m->o.merge.grace_ns >= 0 ? m->o.merge.grace_ns : TL_TRASH_GRACE_NS;
  tl_retire_stats st;
  memset(&st, 0, sizeof st);
  int rc =
      tl_retire(m->l->cat, m->l->store, now - m->o.retention_ns, RETIRE_BATCH,
                now + grace, &st, retire_goes_on, m, err, sizeof err);
  m->retired.blocks += st.blocks;
  m->retired.partitions += st.partitions;
  if (rc)
    warn(m, "retiring old data", err);
  else if (st.undeleted)
    warn(m, "retiring old data", "some files could not be deleted");
}

static void sweep_step(tl_maintainer *m) {
  char err[1024];
  if (tl_lake_sweep(m->l, &m->sweep, &m->orphans, err, sizeof err))
    warn(m, "sweeping orphan files", err);
}

static void *maintain_main(void *arg) {
  tl_maintainer *m = arg;
  pthread_setname_np(pthread_self(), "tl-maintain");
  /* Best effort: a failure leaves the process's priority. The maintenance
   * engine has one thread, so DuckDB runs this thread's statements on it:
   * they run at this priority too. */
  if (m->o.nice)
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), m->o.nice);
  const uint64_t ms = 1000000;
  uint64_t next_merge = tl_mono_ns() + m->o.merge_interval_ms * ms;
  uint64_t next_report = tl_mono_ns() + REPORT_NS;
  uint64_t next_sweep = tl_mono_ns(), next_retire = tl_mono_ns();
  while (!m->stop) {
    uint64_t start = tl_mono_ns();
    if (m->o.retention_ns && start >= next_retire) {
      retire_step(m); /* first: what it retires need not be materialized */
      next_retire = tl_mono_ns() + RETIRE_NS;
    }
    materialize_step(m);
    if (m->o.merge_interval_ms && !m->stop && tl_mono_ns() >= next_merge) {
      merge_step(m);
      next_merge = tl_mono_ns() + m->o.merge_interval_ms * ms;
    }
    if (!m->stop)
      purge_step(m);
    if (!m->stop && tl_mono_ns() >= next_sweep) {
      sweep_step(m);
      next_sweep = tl_mono_ns() + SWEEP_NS;
    }
    if (tl_mono_ns() >= next_report) {
      report(m);
      next_report = tl_mono_ns() + REPORT_NS;
    }
    /* A fixed rate: the next cycle starts `interval` after this one did
     * (at once when this one took longer). */
    uint64_t next = start + m->o.interval_ms * ms;
    pthread_mutex_lock(&m->mu);
    for (uint64_t now; !m->stop && (now = tl_mono_ns()) < next;) {
      struct timespec dl = tl_deadline_in(next - now);
      pthread_cond_timedwait(&m->cv, &m->mu, &dl);
    }
    pthread_mutex_unlock(&m->mu);
  }
  report(m); /* before the server's telemetry is flushed */
  return NULL;
}

int tl_maintainer_start(tl_maintainer **out, tl_lake *l,
                        const tl_maintainer_opts *o) {
  if (!o->interval_ms || o->nice < 0 || o->nice > 19 || o->retention_ns < 0)
    return TL_EINVAL;
  tl_maintainer *m = calloc(1, sizeof *m);
  if (!m)
    return TL_ENOMEM;
  m->l = l;
  m->o = *o;
  m->o.merge.cancel = &m->stop;
  pthread_mutex_init(&m->mu, NULL);
  tl_cond_init(&m->cv);
  if (pthread_create(&m->thread, NULL, maintain_main, m)) {
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
    return TL_ENOMEM;
  }
  *out = m;
  return 0;
}

void tl_maintainer_stop(tl_maintainer *m) {
  if (!m)
    return;
  pthread_mutex_lock(&m->mu);
  m->stop = true;
  pthread_cond_signal(&m->cv);
  pthread_mutex_unlock(&m->mu);
  tl_lake_interrupt(m->l); /* do not wait for a backlog to be materialized */
  pthread_join(m->thread, NULL);
  tl_orphan_sweep_free(m->sweep);
  pthread_cond_destroy(&m->cv);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

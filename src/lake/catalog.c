/* catalog.c - backend selection and the helpers both backends share. */
#define TL_TARGET "tracelake::catalog"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_impl.h"
#include "tracelake/tracelake.h"

static __thread char last_error[512];

int tl__catalog_fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return code;
}

const char *tl_catalog_errmsg(tl_catalog *c) {
  (void)c;
  return last_error[0] ? last_error : "no error";
}

int tl_catalog_open(tl_catalog **out, const char *spec, char *err,
                    size_t errcap) {
  if (!spec || !*spec) {
    snprintf(err, errcap, "empty catalog specification");
    return TL_EINVAL;
  }
  if (!strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11))
    return tl__catalog_pg_open(out, spec, err, errcap);
  return tl__catalog_sqlite_open(out, spec, err, errcap);
}

void tl_catalog_close(tl_catalog *c) {
  if (c)
    c->ops->close(c);
}

const char *tl_catalog_backend(const tl_catalog *c) {
  return c->ops->name;
}

int tl_catalog_schema_version(tl_catalog *c, int *version) {
  return c->ops->schema_version(c, version);
}

int tl_catalog_health(tl_catalog *c) {
  return c->ops->health(c);
}

int tl_catalog_insert_process(tl_catalog *c, const tl_wire_process *m,
                              tl_slice raw, int64_t insert_time,
                              bool *existed) {
  return c->ops->insert_process(c, m, raw, insert_time, existed);
}

int tl_catalog_insert_stream(tl_catalog *c, const tl_wire_stream *m,
                             tl_slice raw, int64_t insert_time, bool *existed) {
  return c->ops->insert_stream(c, m, raw, insert_time, existed);
}

int tl_catalog_stream_process(tl_catalog *c, const uint8_t stream_id[16],
                              uint8_t process_id[16]) {
  return c->ops->stream_process(c, stream_id, process_id);
}

int tl_catalog_insert_block(tl_catalog *c, const tl_catalog_block *b,
                            bool *existed, bool *same) {
  return c->ops->insert_block(c, b, existed, same);
}

int tl_catalog_insert_blocks(tl_catalog *c, const tl_catalog_block *b, size_t n,
                             size_t *conflicts) {
  *conflicts = 0;
  return n ? c->ops->insert_blocks(c, b, n, conflicts) : 0;
}

int tl_catalog_get_block(tl_catalog *c, const uint8_t block_id[16],
                         tl_catalog_block *out) {
  return c->ops->get_block(c, block_id, out);
}

int tl_catalog_counts_get(tl_catalog *c, tl_catalog_counts *out) {
  return c->ops->counts(c, out);
}

int tl_catalog_retire_batch(tl_catalog *c, int64_t cutoff, unsigned limit,
                            void (*on_block)(void *ctx,
                                             const tl_catalog_block *b),
                            void *ctx, unsigned *removed) {
  return c->ops->retire_batch(c, cutoff, limit, on_block, ctx, removed);
}

int tl_catalog_foreach_block(tl_catalog *c,
                             int (*fn)(void *ctx, const tl_catalog_block *b),
                             void *ctx) {
  return c->ops->foreach_block(c, fn, ctx);
}

int tl_catalog_foreach_block_in(tl_catalog *c, int64_t begin, int64_t end,
                                int (*fn)(void *ctx, const tl_catalog_block *b),
                                void *ctx) {
  if (end != INT64_MAX && begin >= end)
    return 0;
  return c->ops->foreach_block_in(c, begin, end == INT64_MAX ? end : end - 1,
                                  fn, ctx);
}

int tl_catalog_foreach_process(tl_catalog *c,
                               int (*fn)(void *ctx,
                                         const tl_catalog_process_row *r),
                               void *ctx) {
  return c->ops->foreach_process(c, fn, ctx);
}

int tl_catalog_foreach_stream(tl_catalog *c,
                              int (*fn)(void *ctx,
                                        const tl_catalog_stream_row *r),
                              void *ctx) {
  return c->ops->foreach_stream(c, fn, ctx);
}

/* ---- Partitions: argument checks shared by both backends ----------------- */

/* A NUL-terminated, non-empty name of at most cap - 1 bytes. */
static int check_name(const char *s, size_t cap, const char *what) {
  if (!s || !*s)
    return tl__catalog_fail(TL_EINVAL, "empty %s", what);
  if (strnlen(s, cap) >= cap)
    return tl__catalog_fail(TL_EINVAL, "%s longer than %zu bytes", what,
                            cap - 1);
  return 0;
}

/* The file is deleted under the data directory when its partition retires:
 * it must stay inside it. */
static int check_file(const char *f) {
  int rc = check_name(f, TL_PARTITION_FILE_MAX, "partition file");
  if (rc)
    return rc;
  if (f[0] == '/')
    return tl__catalog_fail(TL_EINVAL, "partition file %s is absolute", f);
  for (const char *part = f; part; part = strchr(part, '/')) {
    if (*part == '/')
      part++;
    if (!strncmp(part, "..", 2) && (part[2] == '/' || !part[2]))
      return tl__catalog_fail(TL_EINVAL,
                              "partition file %s leaves the data directory", f);
  }
  return 0;
}

static int check_partition(const tl_partition *p) {
  int rc = check_name(p->view_name, sizeof p->view_name, "view name");
  if (!rc)
    rc = check_name(p->instance, sizeof p->instance, "instance");
  if (!rc)
    rc = check_file(p->file);
  if (rc)
    return rc;
  if (p->begin_time > p->end_time)
    return tl__catalog_fail(TL_EINVAL, "partition %s: begin_time > end_time",
                            p->file);
  if (p->min_insert_time > p->max_insert_time)
    return tl__catalog_fail(
        TL_EINVAL, "partition %s: min_insert_time > max_insert_time", p->file);
  return 0;
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, 16);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int tl_catalog_blocks_to_materialize(tl_catalog *c, const char *view_name,
                                     const char *instance, int scope,
                                     const char *stream_tag,
                                     int64_t min_insert_time,
                                     int64_t max_insert_time, unsigned limit,
                                     tl_catalog_block *out, unsigned *n) {
  *n = 0;
  int rc = check_name(view_name, TL_PARTITION_VIEW_MAX, "view name");
  if (!rc)
    rc = check_name(instance, TL_PARTITION_INSTANCE_MAX, "instance");
  if (rc)
    return rc;
  if (!stream_tag)
    return tl__catalog_fail(TL_EINVAL, "no stream tag");
  if (scope != TL_SCOPE_ALL && scope != TL_SCOPE_PROCESS &&
      scope != TL_SCOPE_STREAM)
    return tl__catalog_fail(TL_EINVAL, "unknown scope %d", scope);
  if (scope != TL_SCOPE_ALL) {
    /* The instance names partition_blocks rows too: one spelling only. */
    uint8_t id[16];
    char canon[37];
    if (tl_uuid_parse(instance, id) ||
        (tl_uuid_format(id, canon), strcmp(canon, instance)))
      return tl__catalog_fail(TL_EINVAL, "instance %s is not a canonical %s id",
                              instance,
                              scope == TL_SCOPE_PROCESS ? "process" : "stream");
  }
  if (!limit)
    return 0;
  tl_bytes tag;
  tl_bytes_init(&tag, 1 << 20);
  rc = tl__catalog_json_string(tl_slice_str(stream_tag), &tag);
  if (rc)
    rc = tl__catalog_fail(rc, "stream tag too long");
  else
    rc = c->ops->blocks_to_materialize(c, view_name, instance, scope,
                                       (const char *)tag.p, min_insert_time,
                                       max_insert_time, limit, out, n);
  tl_bytes_free(&tag);
  return rc;
}

int tl_catalog_add_partition(tl_catalog *c, tl_partition *p,
                             const uint8_t (*block_ids)[16], unsigned nblocks) {
  int rc = check_partition(p);
  if (rc)
    return rc;
  if (nblocks > TL_PARTITION_MAX_BLOCKS)
    return tl__catalog_fail(TL_ETOOBIG, "%u blocks in one partition (max %u)",
                            nblocks, TL_PARTITION_MAX_BLOCKS);
  if (p->nb_blocks != nblocks)
    return tl__catalog_fail(TL_EINVAL,
                            "partition %s: nb_blocks %llu but %u block ids",
                            p->file, (unsigned long long)p->nb_blocks, nblocks);
  /* Sorted, so that concurrent materializers take the rows' locks in one
   * order (PostgreSQL): the loser waits, then conflicts, never deadlocks. */
  uint8_t(*ids)[16] = malloc((nblocks ? nblocks : 1) * sizeof *ids);
  if (!ids)
    return tl__catalog_fail(TL_ENOMEM, "out of memory");
  if (nblocks)
    memcpy(ids, block_ids, nblocks * sizeof *ids);
  qsort(ids, nblocks, sizeof *ids, cmp_id);
  for (unsigned i = 1; i < nblocks && !rc; i++)
    if (!memcmp(ids[i - 1], ids[i], 16)) {
      char text[37];
      tl_uuid_format(ids[i], text);
      rc = tl__catalog_fail(TL_EINVAL, "block %s given twice", text);
    }
  if (!rc)
    rc = c->ops->add_partition(c, p, (const uint8_t(*)[16])ids, nblocks);
  free(ids);
  return rc;
}

int tl_catalog_list_partitions(tl_catalog *c, const char *view_name,
                               const char *instance, int64_t begin, int64_t end,
                               int (*fn)(void *ctx, const tl_partition *p),
                               void *ctx) {
  TL_SPAN_FN(); /* the partition lookup of a query's views */
  int rc = check_name(view_name, TL_PARTITION_VIEW_MAX, "view name");
  if (!rc)
    rc = check_name(instance, TL_PARTITION_INSTANCE_MAX, "instance");
  if (rc || (end != INT64_MAX && begin >= end))
    return rc;
  return c->ops->list_partitions(c, view_name, instance, begin,
                                 end == INT64_MAX ? end : end - 1, fn, ctx);
}

int tl_catalog_replace_partitions(tl_catalog *c, const int64_t *old_ids,
                                  unsigned nold, tl_partition *p) {
  int rc = check_partition(p);
  if (rc)
    return rc;
  if (!nold)
    return tl__catalog_fail(TL_EINVAL, "no partition to replace");
  if (nold > TL_PARTITION_MAX_REPLACE)
    return tl__catalog_fail(TL_ETOOBIG, "%u partitions to replace (max %u)",
                            nold, TL_PARTITION_MAX_REPLACE);
  /* Sorted for the same reason as block ids: one lock order. */
  int64_t *ids = malloc(nold * sizeof *ids);
  if (!ids)
    return tl__catalog_fail(TL_ENOMEM, "out of memory");
  memcpy(ids, old_ids, nold * sizeof *ids);
  qsort(ids, nold, sizeof *ids, cmp_i64);
  for (unsigned i = 1; i < nold && !rc; i++)
    if (ids[i - 1] == ids[i])
      rc = tl__catalog_fail(TL_EINVAL, "partition %lld given twice",
                            (long long)ids[i]);
  if (!rc)
    rc = c->ops->replace_partitions(c, ids, nold, p);
  free(ids);
  return rc;
}

int tl_catalog_retire_partitions(tl_catalog *c, int64_t cutoff, unsigned limit,
                                 void (*on_partition)(void *ctx,
                                                      const tl_partition *p),
                                 void *ctx, unsigned *removed) {
  *removed = 0;
  if (limit > TL_PARTITION_RETIRE_MAX)
    limit = TL_PARTITION_RETIRE_MAX;
  return c->ops->retire_partitions(c, cutoff, limit, on_partition, ctx,
                                   removed);
}

bool tl__partition_same(const tl_partition *a, const tl_partition *b) {
  return !strcmp(a->view_name, b->view_name) &&
         !strcmp(a->instance, b->instance) && !strcmp(a->file, b->file) &&
         a->begin_time == b->begin_time && a->end_time == b->end_time &&
         a->min_insert_time == b->min_insert_time &&
         a->max_insert_time == b->max_insert_time &&
         a->file_size == b->file_size && a->nb_rows == b->nb_rows &&
         a->nb_blocks == b->nb_blocks && a->created_time == b->created_time;
}

int tl__partition_file_conflict(const tl_partition *p) {
  return tl__catalog_fail(TL_ECONFLICT,
                          "the partition file %s is recorded with other "
                          "fields",
                          p->file);
}

/* ---- JSON text ---------------------------------------------------------- */

static int json_str(tl_bytes *o, tl_slice s) {
  int rc = tl_bytes_append(o, "\"", 1);
  for (size_t i = 0; i < s.n && !rc; i++) {
    unsigned char ch = s.p[i];
    char esc[8];
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\';
      esc[1] = (char)ch;
      rc = tl_bytes_append(o, esc, 2);
    } else if (ch < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", ch);
      rc = tl_bytes_append(o, esc, 6);
    } else {
      rc = tl_bytes_append(o, &ch, 1);
    }
  }
  return rc ? rc : tl_bytes_append(o, "\"", 1);
}

int tl__catalog_props_json(const tl_kv *kv, uint32_t n, tl_bytes *out) {
  int rc = tl_bytes_append(out, "{", 1);
  for (uint32_t i = 0; i < n && !rc; i++) {
    if (i)
      rc = tl_bytes_append(out, ",", 1);
    if (!rc)
      rc = json_str(out, kv[i].key);
    if (!rc)
      rc = tl_bytes_append(out, ":", 1);
    if (!rc)
      rc = json_str(out, kv[i].value);
  }
  if (!rc)
    rc = tl_bytes_append(out, "}", 2); /* with the terminating NUL */
  return rc;
}

int tl__catalog_tags_json(const tl_slice *tags, uint32_t n, tl_bytes *out) {
  int rc = tl_bytes_append(out, "[", 1);
  for (uint32_t i = 0; i < n && !rc; i++) {
    if (i)
      rc = tl_bytes_append(out, ",", 1);
    if (!rc)
      rc = json_str(out, tags[i]);
  }
  if (!rc)
    rc = tl_bytes_append(out, "]", 2); /* with the terminating NUL */
  return rc;
}

int tl__catalog_json_string(tl_slice s, tl_bytes *out) {
  int rc = json_str(out, s);
  return rc ? rc : tl_bytes_append(out, "", 1);
}

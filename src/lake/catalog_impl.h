/* catalog_impl.h - what a catalog backend provides (catalog.c dispatches to
 * it) and helpers the backends share. Internal to src/lake/. */
#ifndef TL_CATALOG_IMPL_H
#define TL_CATALOG_IMPL_H

#include "catalog.h"

typedef struct tl_catalog_ops {
  const char *name;
  void (*close)(tl_catalog *c);
  int (*schema_version)(tl_catalog *c, int *version);
  int (*health)(tl_catalog *c);
  int (*insert_process)(tl_catalog *c, const tl_wire_process *m, tl_slice raw,
                        int64_t insert_time, bool *existed);
  int (*insert_stream)(tl_catalog *c, const tl_wire_stream *m, tl_slice raw,
                       int64_t insert_time, bool *existed);
  int (*stream_process)(tl_catalog *c, const uint8_t stream_id[16],
                        uint8_t process_id[16]);
  int (*insert_block)(tl_catalog *c, const tl_catalog_block *b, bool *existed,
                      bool *same);
  int (*insert_blocks)(tl_catalog *c, const tl_catalog_block *b, size_t n,
                       size_t *conflicts); /* n > 0 */
  int (*get_block)(tl_catalog *c, const uint8_t block_id[16],
                   tl_catalog_block *out);
  int (*counts)(tl_catalog *c, tl_catalog_counts *out);
  int (*retire_batch)(tl_catalog *c, int64_t cutoff, unsigned limit,
                      void (*on_block)(void *ctx, const tl_catalog_block *b),
                      void *ctx, unsigned *removed);
  int (*foreach_block)(tl_catalog *c,
                       int (*fn)(void *ctx, const tl_catalog_block *b),
                       void *ctx);
  /* The arguments below are checked by catalog.c before the call: names
   * fit and are non-empty, `instance` is a canonical UUID under a process
   * or stream scope, the partition's fields are sane, block ids are sorted
   * and distinct, old ids distinct, counts within their caps, and an empty
   * time range never reaches the backend (`end` is then the inclusive last
   * instant: INT64_MAX, or the caller's end - 1). */
  int (*foreach_block_in)(tl_catalog *c, int64_t begin, int64_t last,
                          int (*fn)(void *ctx, const tl_catalog_block *b),
                          void *ctx);
  int (*foreach_process)(tl_catalog *c,
                         int (*fn)(void *ctx, const tl_catalog_process_row *r),
                         void *ctx);
  int (*foreach_stream)(tl_catalog *c,
                        int (*fn)(void *ctx, const tl_catalog_stream_row *r),
                        void *ctx);
  /* `tag_json` is the tag as a JSON string, quotes included, exactly as
   * tl__catalog_tags_json writes it: both backends compare the tags' JSON
   * text element by element, never decoded, so that a tag holding \u0000
   * (which neither decodes faithfully) matches only itself. */
  int (*blocks_to_materialize)(tl_catalog *c, const char *view_name,
                               const char *instance, int scope,
                               const char *tag_json, int64_t min_insert_time,
                               int64_t max_insert_time, unsigned limit,
                               tl_catalog_block *out, unsigned *n);
  int (*add_partition)(tl_catalog *c, tl_partition *p,
                       const uint8_t (*block_ids)[16], unsigned nblocks);
  int (*list_partitions)(tl_catalog *c, const char *view_name,
                         const char *instance, int64_t begin, int64_t last,
                         int (*fn)(void *ctx, const tl_partition *p),
                         void *ctx);
  int (*replace_partitions)(tl_catalog *c, const int64_t *old_ids,
                            unsigned nold, tl_partition *p);
  int (*retire_partitions)(tl_catalog *c, int64_t cutoff, unsigned limit,
                           void (*on_partition)(void *ctx,
                                                const tl_partition *p),
                           void *ctx, unsigned *removed);
} tl_catalog_ops;

struct tl_catalog {
  const tl_catalog_ops *ops;
  void *impl;
};

int tl__catalog_sqlite_open(tl_catalog **out, const char *path, char *err,
                            size_t errcap);
int tl__catalog_pg_open(tl_catalog **out, const char *uri, char *err,
                        size_t errcap);

/* Records the calling thread's last error (shown by tl_catalog_errmsg) and
 * returns `code`. */
int tl__catalog_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Properties as a JSON object and tags as a JSON array (text columns). */
int tl__catalog_props_json(const tl_kv *kv, uint32_t n, tl_bytes *out);
int tl__catalog_tags_json(const tl_slice *tags, uint32_t n, tl_bytes *out);
/* One string as JSON (quotes included, NUL-terminated), exactly as
 * tl__catalog_tags_json writes each element. */
int tl__catalog_json_string(tl_slice s, tl_bytes *out);

/* Whether a stored partition row (`stored`, as read back) has the fields of
 * `p` (all but id): decides whether recording `p` again is a retry. */
bool tl__partition_same(const tl_partition *stored, const tl_partition *p);
/* The message for a file recorded with other fields; returns TL_ECONFLICT. */
int tl__partition_file_conflict(const tl_partition *p);

#endif

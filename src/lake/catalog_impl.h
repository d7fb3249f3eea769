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
  int (*get_block)(tl_catalog *c, const uint8_t block_id[16],
                   tl_catalog_block *out);
  int (*counts)(tl_catalog *c, tl_catalog_counts *out);
  int (*retire_batch)(tl_catalog *c, int64_t cutoff, unsigned limit,
                      void (*on_block)(void *ctx, const tl_catalog_block *b),
                      void *ctx, unsigned *removed);
  int (*foreach_block)(tl_catalog *c,
                       int (*fn)(void *ctx, const tl_catalog_block *b),
                       void *ctx);
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

#endif

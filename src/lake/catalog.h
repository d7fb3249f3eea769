/* catalog.h - the catalog: which processes, streams and blocks the lake
 * holds, in SQLite (default, one file) or PostgreSQL (shared by several
 * servers). One interface, two backends; the schema is in docs/catalog.md.
 *
 * A handle is safe to use from several threads at once: it keeps a small
 * pool of connections. Every function returns 0 or a negative TL_E* code;
 * tl_catalog_errmsg() gives the detail of the calling thread's last catalog
 * error (kept per thread, whichever handle it came from).
 */
#ifndef TL_CATALOG_H
#define TL_CATALOG_H

#include <stdbool.h>

#include "../wire/wire.h"

typedef struct tl_catalog tl_catalog;

/* The row of a block, as the ingestion service stores it. */
typedef struct tl_catalog_block {
  uint8_t block_id[16], stream_id[16], process_id[16];
  int64_t begin_time, end_time; /* UTC ns */
  uint64_t begin_ticks, end_ticks;
  uint32_t nb_objects;
  uint32_t payload_size; /* stored payload bytes */
  uint64_t blob_size;    /* bytes of the whole block message (the blob) */
  uint32_t blob_crc;     /* CRC32C of the block message, minus bytes
                            104..107 (its header CRC) */
  int64_t insert_time;   /* UTC ns, set by the server */
} tl_catalog_block;

/* Opens a catalog. `spec` is a PostgreSQL URI ("postgresql://..." or
 * "postgres://...") or a SQLite file path. Applies pending migrations (safe
 * when several servers start at once). `err` receives a message on failure.
 * Returns 0, TL_EUNAVAILABLE (cannot connect/open), TL_EIO, TL_ENOMEM. */
int tl_catalog_open(tl_catalog **out, const char *spec, char *err,
                    size_t errcap);
void tl_catalog_close(tl_catalog *c); /* accepts NULL */

/* "sqlite" or "postgresql". */
const char *tl_catalog_backend(const tl_catalog *c);
/* The current schema version (the highest migration applied). */
int tl_catalog_schema_version(tl_catalog *c, int *version);
/* Detail of the calling thread's last catalog failure (per thread). */
const char *tl_catalog_errmsg(tl_catalog *c);

/* 0 when the catalog answers a trivial query; TL_EUNAVAILABLE otherwise. */
int tl_catalog_health(tl_catalog *c);

/* Inserts a process (from its decoded message and its raw bytes). Same id
 * and same bytes again: 0 with *existed = true. Same id, other bytes:
 * TL_ECONFLICT. */
int tl_catalog_insert_process(tl_catalog *c, const tl_wire_process *m,
                              tl_slice raw, int64_t insert_time, bool *existed);
/* Inserts a stream; TL_ENOTFOUND when its process is unknown; duplicate and
 * conflict as for processes. */
int tl_catalog_insert_stream(tl_catalog *c, const tl_wire_stream *m,
                             tl_slice raw, int64_t insert_time, bool *existed);
/* Looks up a stream's process. TL_ENOTFOUND when the stream is unknown. */
int tl_catalog_stream_process(tl_catalog *c, const uint8_t stream_id[16],
                              uint8_t process_id[16]);

/* Inserts a block row, committed when this returns 0. When the block id
 * exists: *existed = true and *same tells whether blob size and CRC match
 * (the caller then compares bytes). */
int tl_catalog_insert_block(tl_catalog *c, const tl_catalog_block *b,
                            bool *existed, bool *same);
/* Reads a block row. TL_ENOTFOUND when unknown. */
int tl_catalog_get_block(tl_catalog *c, const uint8_t block_id[16],
                         tl_catalog_block *out);

typedef struct tl_catalog_counts {
  uint64_t processes, streams, blocks, events, bytes;
} tl_catalog_counts;
int tl_catalog_counts_get(tl_catalog *c, tl_catalog_counts *out);

/* Retention: removes at most `limit` blocks whose end_time is before
 * `cutoff` (UTC ns), oldest first, in one short transaction, and calls
 * `on_block` for each removed row after the commit (to delete its blob).
 * *removed gets the count; call again until it is 0. */
int tl_catalog_retire_batch(tl_catalog *c, int64_t cutoff, unsigned limit,
                            void (*on_block)(void *ctx,
                                             const tl_catalog_block *b),
                            void *ctx, unsigned *removed);

/* Visits every block row (for checks and tools), in insert order. */
int tl_catalog_foreach_block(tl_catalog *c,
                             int (*fn)(void *ctx, const tl_catalog_block *b),
                             void *ctx);

#endif

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
/* Inserts `n` block rows in one transaction (a group commit). Returns 0
 * when every row is committed or was already there with the same blob size
 * and CRC; *conflicts counts the rows whose id was there with another blob
 * (not inserted). On an error, any of the rows may or may not be committed
 * (PostgreSQL: none; SQLite: all but the failing one, unless the commit
 * itself failed): calling again with the same rows is safe. */
int tl_catalog_insert_blocks(tl_catalog *c, const tl_catalog_block *b, size_t n,
                             size_t *conflicts);
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
 * *removed gets the count; call again until it is 0. Their partition_blocks
 * rows stay (they go with their partition, tl_catalog_retire_partitions):
 * a block sent again after its retirement is not materialized twice while
 * its partition lives. */
int tl_catalog_retire_batch(tl_catalog *c, int64_t cutoff, unsigned limit,
                            void (*on_block)(void *ctx,
                                             const tl_catalog_block *b),
                            void *ctx, unsigned *removed);

/* Visits every block row (for checks and tools), in insert order. */
int tl_catalog_foreach_block(tl_catalog *c,
                             int (*fn)(void *ctx, const tl_catalog_block *b),
                             void *ctx);

/* Visits the blocks whose [begin_time, end_time] overlaps [begin, end) (for
 * the `blocks` SQL view), in insert order. `end` = INT64_MAX means no upper
 * bound; an empty range (begin >= end otherwise) visits nothing. A nonzero
 * return of `fn` stops the walk and is returned. The row passed to `fn` is
 * borrowed for the call. Do not call the catalog from inside `fn`. */
int tl_catalog_foreach_block_in(tl_catalog *c, int64_t begin, int64_t end,
                                int (*fn)(void *ctx, const tl_catalog_block *b),
                                void *ctx);

/* ---- Rows for the SQL views ------------------------------------------------
 * A process or stream row with its columns as text: `properties` is a JSON
 * object, `tags` a JSON array, as stored (docs/catalog.md). Every pointer is
 * borrowed: valid only during the callback. */
typedef struct tl_catalog_process_row {
  uint8_t process_id[16], parent_process_id[16]; /* parent zero when none */
  bool has_parent;
  const char *exe, *username, *realname, *computer, *distro, *cpu_brand,
      *properties;
  uint64_t tsc_frequency;
  int64_t start_time;
  uint64_t start_ticks;
  int64_t insert_time, last_update_time;
} tl_catalog_process_row;

typedef struct tl_catalog_stream_row {
  uint8_t stream_id[16], process_id[16];
  const char *tags, *properties;
  int64_t insert_time, last_update_time;
} tl_catalog_stream_row;

/* Visit every process (stream) row, ordered by insert_time then id. A
 * nonzero return of `fn` stops the walk and is returned. Do not call the
 * catalog from inside `fn`. */
int tl_catalog_foreach_process(tl_catalog *c,
                               int (*fn)(void *ctx,
                                         const tl_catalog_process_row *r),
                               void *ctx);
int tl_catalog_foreach_stream(tl_catalog *c,
                              int (*fn)(void *ctx,
                                        const tl_catalog_stream_row *r),
                              void *ctx);

/* ---- Partitions (the lakehouse) --------------------------------------------
 * The materializer decodes blocks into Parquet files, one per view instance
 * and time window (a *partition*), and records them here. partition_blocks
 * remembers which blocks each view instance holds, so that no block is
 * materialized twice into the same view instance. See docs/catalog.md. */

#define TL_PARTITION_VIEW_MAX 32           /* sizeof view_name, with the NUL */
#define TL_PARTITION_INSTANCE_MAX 64       /* sizeof instance, with the NUL */
#define TL_PARTITION_FILE_MAX 256          /* sizeof file, with the NUL */
#define TL_PARTITION_MAX_BLOCKS (1u << 20) /* source blocks per call */
#define TL_PARTITION_MAX_REPLACE 4096      /* partitions merged per call */
#define TL_PARTITION_RETIRE_MAX 10000      /* partitions retired per call */

/* The instance of the global views (all processes). */
#define TL_INSTANCE_GLOBAL "global"

typedef struct tl_partition {
  int64_t id;                               /* set by add and replace */
  char view_name[TL_PARTITION_VIEW_MAX];    /* e.g. "log_entries" */
  char instance[TL_PARTITION_INSTANCE_MAX]; /* "global", or a process or
                                               stream id (canonical UUID) */
  int64_t begin_time, end_time;             /* event time, UTC ns, inclusive */
  int64_t min_insert_time, max_insert_time; /* of its source blocks */
  char file[TL_PARTITION_FILE_MAX];         /* relative to the data dir */
  uint64_t file_size, nb_rows, nb_blocks;
  int64_t created_time; /* UTC ns */
} tl_partition;

/* Which blocks an instance of a view takes (see blocks_to_materialize). */
enum {
  TL_SCOPE_ALL = 0,     /* every process: the "global" instance */
  TL_SCOPE_PROCESS = 1, /* instance is a process id: that process's blocks */
  TL_SCOPE_STREAM = 2   /* instance is a stream id: that stream's blocks */
};

/* Lists the blocks still to materialize into view instance (`view_name`,
 * `instance`): blocks of streams whose tags contain `stream_tag` (an element
 * equal byte for byte), with `min_insert_time` <= insert_time <=
 * `max_insert_time` (INT64_MIN: no lower bound; a bound spares scanning
 * every block ever materialized, through the insert_time index), that no
 * partition of that view instance holds yet (partition_blocks), oldest
 * insert first (ties in insert order), at most `limit` of them into
 * out[0..*n). `scope` restricts the blocks: TL_SCOPE_ALL takes every
 * process's; TL_SCOPE_PROCESS and TL_SCOPE_STREAM take those of the process
 * or stream whose canonical id is `instance`. All strings are borrowed.
 * Returns 0, TL_EINVAL (unknown scope, a name too long or empty, an instance
 * that is not a canonical lowercase UUID under a process or stream scope),
 * TL_EUNAVAILABLE, TL_EIO. */
int tl_catalog_blocks_to_materialize(tl_catalog *c, const char *view_name,
                                     const char *instance, int scope,
                                     const char *stream_tag,
                                     int64_t min_insert_time,
                                     int64_t max_insert_time, unsigned limit,
                                     tl_catalog_block *out, unsigned *n);

/* Records partition `p` (its file already written) and its source blocks
 * `block_ids[0..nblocks)` (nblocks must equal p->nb_blocks) in one
 * transaction, and sets p->id. If any of the blocks is already recorded for
 * (p->view_name, p->instance) -- a concurrent materializer won -- nothing is
 * written and TL_ECONFLICT is returned (the caller deletes its file).
 *
 * `file` identifies a partition and makes the call safe to retry: when a
 * partition with the same file is already recorded with the same fields, the
 * call returns 0 and sets p->id to it (the earlier attempt committed but its
 * reply was lost); with other fields it returns TL_ECONFLICT. After
 * TL_EUNAVAILABLE the outcome is unknown: keep the file and call again.
 *
 * `p` and `block_ids` are borrowed. Returns 0, TL_ECONFLICT, TL_EINVAL (an
 * empty or unterminated name, an absolute file or one with a ".." part,
 * begin_time > end_time, min_insert_time > max_insert_time, a repeated block
 * id, nblocks != p->nb_blocks), TL_ETOOBIG (nblocks >
 * TL_PARTITION_MAX_BLOCKS), TL_EUNAVAILABLE, TL_EIO. */
int tl_catalog_add_partition(tl_catalog *c, tl_partition *p,
                             const uint8_t (*block_ids)[16], unsigned nblocks);

/* Calls `fn` for the partitions of (`view_name`, `instance`) whose event
 * time [begin_time, end_time] overlaps [begin, end), ordered by begin_time
 * (then id). begin = INT64_MIN and end = INT64_MAX leave a side unbounded;
 * an empty range visits nothing. A nonzero return of `fn` stops the walk
 * and is returned. `p` is borrowed for the call. Do not call the catalog
 * from inside `fn`. */
int tl_catalog_list_partitions(tl_catalog *c, const char *view_name,
                               const char *instance, int64_t begin, int64_t end,
                               int (*fn)(void *ctx, const tl_partition *p),
                               void *ctx);

/* Compaction: replaces the partitions `old_ids[0..nold)` with the merged
 * partition `p` (its file already written), atomically: p is recorded, the
 * old partitions' blocks move to it and the old rows go. p->view_name and
 * p->instance must be those of every old partition and p->nb_blocks the
 * number of their blocks. Sets p->id. TL_ECONFLICT, with nothing written,
 * when one of the old partitions is gone (retired, or merged by another
 * compactor). Retrying is safe as for add_partition (same file, same fields:
 * 0). The caller deletes the old partitions' files after it returns 0.
 * Returns 0, TL_ECONFLICT, TL_EINVAL (no or repeated ids, a partition of
 * another view instance, a wrong nb_blocks, bad fields as for
 * add_partition), TL_ETOOBIG (nold > TL_PARTITION_MAX_REPLACE),
 * TL_EUNAVAILABLE, TL_EIO. */
int tl_catalog_replace_partitions(tl_catalog *c, const int64_t *old_ids,
                                  unsigned nold, tl_partition *p);

/* Retention of partitions: removes at most `limit` (capped at
 * TL_PARTITION_RETIRE_MAX) partitions whose end_time is before `cutoff`,
 * oldest end first, with their partition_blocks rows, in one short
 * transaction, and calls `on_partition` (may be NULL; `p` borrowed for the
 * call) for each after the commit, to delete its file. *removed gets the
 * count; call again until it is 0. Safe with several retirers at once (each
 * partition is reported once). Retire the blocks of the same period first
 * (tl_catalog_retire_batch): a block whose partition is gone is offered by
 * blocks_to_materialize again. */
int tl_catalog_retire_partitions(tl_catalog *c, int64_t cutoff, unsigned limit,
                                 void (*on_partition)(void *ctx,
                                                      const tl_partition *p),
                                 void *ctx, unsigned *removed);

#endif

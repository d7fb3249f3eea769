/* lake.h - the lakehouse: blocks materialized as Parquet partitions per view,
 * and SQL sessions over them with DuckDB. The only module that includes
 * duckdb.h. See docs/lakehouse.md. */
#ifndef TL_LAKE_H
#define TL_LAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../lake/catalog.h"
#include "../lake/store.h"

typedef struct tl_lake tl_lake;

/* Opens the lake over a catalog and a store (both borrowed; they must outlive
 * the lake). Partitions go under <store root>/views/. Returns 0, or a TL_E*
 * code with `err` set. Thread-safe afterwards. */
int tl_lake_open(tl_lake **out, tl_catalog *cat, tl_store *store, char *err,
                 size_t errcap);

/* How much memory DuckDB may hold for queries and materialization (its
 * buffer manager: intermediate results, hash tables, caches; beyond it,
 * operators spill under views/.duckdb-tmp or fail with an out-of-memory
 * error for that query): three quarters for the engine that answers
 * queries, a quarter (at least 64 MiB, at most half) for the one-thread
 * engine that materializes and merges. 0 means the default,
 * tl_lake_default_memory(). */
typedef struct tl_lake_opts {
  uint64_t memory_limit;
} tl_lake_opts;
/* A quarter of physical memory, at least 256 MiB and at most 4 GiB. */
uint64_t tl_lake_default_memory(void);
int tl_lake_open_opts(tl_lake **out, tl_catalog *cat, tl_store *store,
                      const tl_lake_opts *o, char *err, size_t errcap);
void tl_lake_close(tl_lake *l); /* accepts NULL */

typedef struct tl_materialize_stats {
  uint64_t blocks, rows, partitions, bytes;
} tl_materialize_stats;

/* Materializes, for every global view, the blocks acknowledged up to
 * `max_insert_time` (UTC ns) that no partition holds yet, in the lake's
 * one-thread maintenance engine (the maintainer's call; sessions
 * materialize in the query engine). Safe to run from several threads and
 * servers at once (the catalog arbitrates). Adds to *st (may be NULL).
 * Returns 0 or a TL_E* code with `err` set. */
int tl_lake_materialize(tl_lake *l, int64_t max_insert_time,
                        tl_materialize_stats *st, char *err, size_t errcap);

/* Makes materialization in progress stop after its current batch (and
 * every later one return at once): for a server shutting down, so that a
 * backlog does not hold it. Thread-safe. */
void tl_lake_interrupt(tl_lake *l);

/* A query session: a DuckDB connection whose views cover only the
 * partitions overlapping [begin, end) (INT64_MIN/INT64_MAX: unbounded). The
 * session first materializes what was acknowledged before it opened, so a
 * query sees every block acknowledged before it started. */
typedef struct tl_session tl_session;
int tl_session_open(tl_session **out, tl_lake *l, int64_t begin, int64_t end,
                    char *err, size_t errcap);
/* Like tl_session_open, but builds only the views `sql` (borrowed, the
 * statement the session is for; NULL: every view) may read, and
 * materializes only the global views among them: a statement that reads no
 * view opens without any catalog work. Another statement on the session
 * may then not find a view it names. */
int tl_session_open_for(tl_session **out, tl_lake *l, int64_t begin,
                        int64_t end, const char *sql, char *err, size_t errcap);
void tl_session_close(tl_session *s); /* accepts NULL */

enum { TL_FORMAT_TABLE = 0, TL_FORMAT_CSV = 1, TL_FORMAT_JSON = 2 };

/* Runs one read-only statement (SELECT, WITH, VALUES, EXPLAIN... anything
 * else is refused) and prints its result to `out` in `format`. On failure,
 * `err` holds DuckDB's message. Returns 0, TL_EINVAL (refused or bad SQL). */
int tl_session_print(tl_session *s, const char *sql, int format, FILE *out,
                     char *err, size_t errcap);

/* How many partition files the session's views read (for tests). */
uint64_t tl_session_files(const tl_session *s);

/* ---- Maintenance (maintain.c) ----------------------------------------------
 * Materialization writes one small partition per batch; merging rewrites runs
 * of small partitions of a global view as one, so the number of files a query
 * opens stays bounded. A session lists its files when it opens and reads them
 * later, so replaced files are not deleted at once: they go to a trash
 * (lists under DATA/views/.trash/) and are deleted after a grace period. */

/* Defaults: a partition of at least 64 MiB or 1M rows is never merged, and a
 * merged partition stays under both; replaced files live 60 s more. */
#define TL_MERGE_MAX_BYTES ((uint64_t)64 << 20)
#define TL_MERGE_MAX_ROWS ((uint64_t)1000000)
#define TL_TRASH_GRACE_NS ((int64_t)60 * 1000000000)
/* A partition is merged again only into one at least this many times its
 * size: each row is rewritten about log_4(its final partition / the first)
 * times, and a day's window holds at most 3 partitions of each size. */
#define TL_MERGE_FAN_IN 4u

typedef struct tl_merge_opts {
  uint64_t max_bytes; /* 0: TL_MERGE_MAX_BYTES */
  uint64_t max_rows;  /* 0: TL_MERGE_MAX_ROWS */
  unsigned fan_in;    /* 0: TL_MERGE_FAN_IN; 2 doubles (log_2 rewrites) */
  /* Replaced files are deleted this long after the commit; < 0: the
   * default, TL_TRASH_GRACE_NS. */
  int64_t grace_ns;
  /* May be NULL; once it is true, the merge stops after the group in
   * progress. */
  const _Atomic bool *cancel;
} tl_merge_opts;

typedef struct tl_merge_stats {
  uint64_t merges;              /* merged partitions written and recorded */
  uint64_t replaced;            /* small partitions they replaced */
  uint64_t rows, blocks, bytes; /* of the merged partitions */
  /* Merges given up because another compactor (or retention) changed one
   * of their partitions first. */
  uint64_t conflicts;
} tl_merge_stats;

/* Merges small partitions of the global instance of `view` ("log_entries",
 * "measures"; NULL: every global view). Candidates are the partitions under
 * both limits of `o` (borrowed; NULL: defaults), in begin_time order, grouped
 * within a day (of begin_time, like the directories) while the group's total
 * stays under the limits; a group is merged when it holds at least two
 * partitions, leaving out its largest members while one has more rows than
 * the rest together (so each row is rewritten about log2(limit / partition
 * size) times at most). The merged file is written with DuckDB under the day's
 * directory (temp file, fsync, rename, fsync of the directory), recorded
 * with tl_catalog_replace_partitions, and the old files are put in the
 * trash; if another compactor won (TL_ECONFLICT), the new file is deleted
 * and the merge counted in `conflicts`. Safe to run from several threads
 * and servers at once. At most 16384 candidates per call. Adds to *st (may
 * be NULL). Returns 0, TL_EINVAL (unknown view), or TL_EIO/TL_EUNAVAILABLE
 * with `err` set. */
int tl_lake_merge_with(tl_lake *l, const char *view, const tl_merge_opts *o,
                       tl_merge_stats *st, char *err, size_t errcap);
/* tl_lake_merge_with with the default options; *st (may be NULL) gets
 * blocks moved, rows and bytes rewritten, and merged partitions written. */
int tl_lake_merge(tl_lake *l, const char *view, char *err, size_t errcap,
                  tl_materialize_stats *st);

/* Queues `files[0..n)` (paths relative to the store's root, under views/,
 * borrowed) for deletion at `due` (UTC ns): one list written durably as
 * DATA/views/.trash/<due>-<uuid>.list. Returns 0 or a TL_E* code of
 * tl_store_put. Thread-safe. */
int tl_trash_add(tl_store *store, int64_t due, const char *const *files,
                 size_t n);
/* Deletes the files of every trash list due at or before `now` (UTC ns),
 * then the list; adds the number of files removed to *deleted (may be NULL).
 * Safe with several purgers on the same directory. Returns 0, or TL_EIO
 * when a file could not be removed (its list is kept for the next call). */
int tl_trash_purge(tl_store *store, int64_t now, uint64_t *deleted);

/* Retention: retires what ended before `cutoff` (UTC ns), `batch`
 * (1..100000) catalog rows per transaction: first the blocks whose end time
 * is before it (their rows, then their blobs), then the partitions whose
 * last event is (their rows; their files into the trash, due at `due`, or
 * deleted at once when no trash list can be written). Safe while servers
 * ingest, materialize and query, and with several retirers at once.
 * `progress` (may be NULL) is called after each batch with the totals so
 * far; when it returns false, the call ends there (returning 0: what was
 * retired stays retired; partitions wait for a later call while blocks of
 * the period remain). Adds to *st. Returns 0, TL_EINVAL (batch), or a catalog
 * error with `err` set (what was retired before it stays retired). */
typedef struct tl_retire_stats {
  uint64_t blocks, partitions;
  uint64_t undeleted; /* blobs or files that could not be deleted */
} tl_retire_stats;
int tl_retire(tl_catalog *cat, tl_store *store, int64_t cutoff, unsigned batch,
              int64_t due, tl_retire_stats *st,
              bool (*progress)(void *ctx, const tl_retire_stats *st), void *ctx,
              char *err, size_t errcap);

/* Orphan files: partition files under DATA/views/ (temp files included)
 * that no partition of the catalog names and no trash list holds, left by a
 * crash or a lost catalog reply. Each call lists them and deletes those the
 * previous call on `*sw` listed too, so that a file is deleted only after
 * it stayed an orphan between two calls: call at intervals much longer than
 * a materialization or a merge and than the trash's grace period (the
 * maintainer: hourly). `*sw` starts NULL (the first call deletes nothing)
 * and is freed with tl_orphan_sweep_free. Adds the files deleted to
 * *deleted (may be NULL). Returns 0, or TL_E* with `err` set (a catalog
 * error deletes nothing). Not thread-safe on the same `*sw`. */
typedef struct tl_orphan_sweep tl_orphan_sweep;
int tl_lake_sweep(tl_lake *l, tl_orphan_sweep **sw, uint64_t *deleted,
                  char *err, size_t errcap);
void tl_orphan_sweep_free(tl_orphan_sweep *sw); /* accepts NULL */

/* The maintenance thread of `tracelake serve`: every `interval_ms`, it
 * materializes what was acknowledged, every `merge_interval_ms` (0: never)
 * merges the global views' small partitions, it purges the trash, every
 * hour it sweeps orphan files (tl_lake_sweep), and with a `retention_ns`
 * it retires what ended before now - retention_ns (tl_retire) at start and
 * every minute. It
 * reports its work with the process's own telemetry (counters maintain_*,
 * durations in ticks) and warns on errors; an error never stops it. */
typedef struct tl_maintainer tl_maintainer;
typedef struct tl_maintainer_opts {
  unsigned interval_ms;       /* > 0 */
  unsigned merge_interval_ms; /* 0: no merging */
  tl_merge_opts merge;        /* `cancel` is set by the maintainer */
  int nice; /* 0..19: the thread's nice value; 0 leaves the process's */
  int64_t retention_ns; /* > 0: keep what ended within it; 0: everything */
} tl_maintainer_opts;

/* Starts the thread over `l` (borrowed: it must outlive the maintainer);
 * `o` is copied. Returns 0, TL_EINVAL or TL_ENOMEM. */
int tl_maintainer_start(tl_maintainer **out, tl_lake *l,
                        const tl_maintainer_opts *o);
/* Stops the thread: a materialization in progress finishes, a merge stops
 * after its current group. Accepts NULL. */
void tl_maintainer_stop(tl_maintainer *m);

#endif

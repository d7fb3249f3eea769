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
void tl_lake_close(tl_lake *l); /* accepts NULL */

typedef struct tl_materialize_stats {
  uint64_t blocks, rows, partitions, bytes;
} tl_materialize_stats;

/* Materializes, for every global view, the blocks acknowledged up to
 * `max_insert_time` (UTC ns) that no partition holds yet. Safe to run from
 * several threads and servers at once (the catalog arbitrates). Adds to *st
 * (may be NULL). Returns 0 or a TL_E* code with `err` set. */
int tl_lake_materialize(tl_lake *l, int64_t max_insert_time,
                        tl_materialize_stats *st, char *err, size_t errcap);

/* A query session: a DuckDB connection whose views cover only the
 * partitions overlapping [begin, end) (INT64_MIN/INT64_MAX: unbounded). The
 * session first materializes what was acknowledged before it opened, so a
 * query sees every block acknowledged before it started. */
typedef struct tl_session tl_session;
int tl_session_open(tl_session **out, tl_lake *l, int64_t begin, int64_t end,
                    char *err, size_t errcap);
void tl_session_close(tl_session *s); /* accepts NULL */

enum { TL_FORMAT_TABLE = 0, TL_FORMAT_CSV = 1, TL_FORMAT_JSON = 2 };

/* Runs one read-only statement (SELECT, WITH, VALUES, EXPLAIN... anything
 * else is refused) and prints its result to `out` in `format`. On failure,
 * `err` holds DuckDB's message. Returns 0, TL_EINVAL (refused or bad SQL). */
int tl_session_print(tl_session *s, const char *sql, int format, FILE *out,
                     char *err, size_t errcap);

/* How many partition files the session's views read (for tests). */
uint64_t tl_session_files(const tl_session *s);

#endif

/* lake_impl.h - internals shared by lake.c and session.c. */
#ifndef TL_LAKE_IMPL_H
#define TL_LAKE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "duckdb.h"
#include "lake.h"

struct tl_mat_job;
struct tl_lake;

/* The extra info of the materializer's table function, registered in both
 * engines: which engine a registration belongs to. */
typedef struct tl_fn_tag {
  struct tl_lake *l;
  bool background; /* mdb */
} tl_fn_tag;

struct tl_lake {
  tl_catalog *cat;
  tl_store *store;
  char data[2048];    /* the data directory */
  char views[2100];   /* data/views: the only place DuckDB may touch */
  duckdb_database db; /* the queries, and what their sessions materialize */
  /* The maintainer's materialization and merges, in an engine of their own
   * with one thread and a quarter of the memory: that work stays on one
   * core and out of the queries' buffer pool (docs/lakehouse.md, "Two
   * engines"). */
  duckdb_database mdb;
  tl_fn_tag fn_tag[2]; /* [background] */
  pthread_mutex_t mu;  /* one materializer at a time in this process */
  /* Under mu: every block of a global view acknowledged up to this insert
   * time is in a partition (the max_insert_time of the last complete
   * materialization), so that sessions queued behind one materialization
   * do not each run another. */
  int64_t done_through[2];
  uint64_t full_scan_at[2]; /* tl_mono_ns of the last scan of every block */
  _Atomic bool interrupted; /* stop materializing: the server is stopping */
  /* The batch being materialized, for the table function that decodes it
   * (lake.c): set under job_mu for the duration of its COPY, and only the
   * connection running that COPY may bind the function. */
  pthread_mutex_t job_mu;
  struct tl_mat_job *job;
  idx_t job_conn;
  bool job_background; /* job_conn is a connection of mdb, not db */
};

/* A column of a view's partitions. DUCKDB_TYPE_LIST stands for the
 * properties type, STRUCT(key VARCHAR, value VARCHAR)[]. */
typedef struct tl_view_col {
  const char *name;
  duckdb_type type;
} tl_view_col;

/* A view materialized from blocks: its name, the tag of the streams it
 * reads, and the columns of its partitions. */
typedef struct tl_view_def {
  const char *name;
  const char *stream_tag;
  int scope; /* TL_SCOPE_*: global, per process or per stream */
  /* Rows of a partition are sorted by this column; NULL: rows are in the
   * order of their blocks (by begin_time) and of the events in a block,
   * which keeps row groups nearly sorted by time without the cost of a
   * sort. */
  const char *order;
  const char *columns; /* SQL column list of a partition */
  int ncols;
  tl_view_col cols[16];
} tl_view_def;

/* How partitions are written (materialization and merges): Parquet v2
 * pages (long text like `msg` as DELTA_LENGTH_BYTE_ARRAY, checked for UTF-8
 * a page at a time when read), not compressed. A full scan of `msg` (`LIKE
 * '%...%'`) then runs at about 1.2x a native DuckDB table, 1.45x with
 * lz4_raw and 2.5x with zstd, for files 2.4x (lz4_raw) and 3.6x (zstd) as
 * small: the partitions are a copy of the blocks made for scanning, which
 * trades disk for speed. Numbers and profiles: docs/performance.md,
 * "Lakehouse". */
#define TL_PARTITION_FORMAT                                                    \
  "FORMAT parquet, COMPRESSION uncompressed, ROW_GROUP_SIZE 122880, "          \
  "PARQUET_VERSION V2"

/* Partitions of the global views written by this code are named
 * <uuid>.v2.parquet: they hold the process columns (exe, username, computer,
 * process_properties). Older ones (<uuid>.parquet) do not; the views and
 * merges still read them (the process columns are NULL there). */
#define TL_PARTITION_V2 ".v2.parquet"
static inline bool tl__partition_v2(const char *file) {
  size_t n = strlen(file), k = sizeof TL_PARTITION_V2 - 1;
  return n >= k && !strcmp(file + n - k, TL_PARTITION_V2);
}

/* The global views first; then the per-instance views, materialized just in
 * time when a query names them with view_instance(). */
enum {
  TL_VIEW_LOG_ENTRIES = 0,
  TL_VIEW_MEASURES = 1,
  TL_NVIEWS_GLOBAL = 2,
  TL_VIEW_ASYNC_EVENTS = 2,
  TL_VIEW_THREAD_SPANS = 3,
  TL_NVIEWS = 4
};
_Static_assert(TL_NVIEWS_GLOBAL == 2, "tl_lake.done_through has one per view");

/* Materializing a global view lists the blocks inserted since its last
 * complete materialization less TL_SCAN_MARGIN_NS (a block's insert time
 * is stamped when its request arrives, and it is committed within the
 * request's deadline, 30 s), and every TL_FULL_SCAN_NS every block not yet
 * materialized. */
#define TL_SCAN_MARGIN_NS ((int64_t)300 * 1000000000)
#define TL_FULL_SCAN_NS ((uint64_t)600 * 1000000000)
extern const tl_view_def tl__views[TL_NVIEWS];

/* Registers the materializer's table function with one of the lake's
 * engines, `t` telling which (materialize.c; before the configuration is
 * locked). Returns 0 or TL_EIO. */
int tl__materialize_register(const tl_fn_tag *t, duckdb_connection c);

/* Materializes the blocks of one view instance acknowledged up to
 * max_insert_time (for the global views, instance is "global"), on the
 * maintainer's engine (`background`) or the queries' (a session waiting for
 * it gets all the threads). */
int tl__lake_materialize_view(tl_lake *l, int view, const char *instance,
                              int64_t max_insert_time, bool background,
                              tl_materialize_stats *st, char *err,
                              size_t errcap);

/* The DuckDB connection of a session (its temp views live there). */
duckdb_connection tl__session_conn(const tl_session *s);

/* DuckDB runs one statement at a time per connection: preparing or running
 * another one silently ends a stream in progress. So the statements of a
 * session are counted (tl__session_prepare bumps the count) and a stream
 * checks that the count is still the one it got when it started. Bump
 * returns the new count. */
uint64_t tl__session_bump(tl_session *s);
uint64_t tl__session_statements(tl_session *s);

/* What tl_session_print runs first: rewrites the view_instance() calls of
 * `user_sql` into `rewritten` (initialized by the caller, NUL-terminated
 * SQL), then prepares it as exactly one read-only statement. Returns 0 and
 * the statement in *out (the caller destroys it), or TL_EINVAL with DuckDB's
 * message or the refusal in err. */
int tl__session_prepare(tl_session *s, const char *user_sql,
                        tl_bytes *rewritten, duckdb_prepared_statement *out,
                        char *err, size_t errcap);

int tl__lake_fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs SQL on a connection; DuckDB's message in err on failure. */
int tl__duck_exec(duckdb_connection c, const char *sql, char *err,
                  size_t errcap);

#endif

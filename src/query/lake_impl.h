/* lake_impl.h - internals shared by lake.c and session.c. */
#ifndef TL_LAKE_IMPL_H
#define TL_LAKE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "duckdb.h"
#include "lake.h"

struct tl_lake {
  tl_catalog *cat;
  tl_store *store;
  char data[2048];  /* the data directory */
  char views[2100]; /* data/views: the only place DuckDB may touch */
  duckdb_database db;
  pthread_mutex_t mu; /* one materializer at a time in this process */
  _Atomic bool interrupted; /* stop materializing: the server is stopping */
};

/* A global view materialized from blocks: its name, the tag of the streams
 * it reads, and the columns of its partitions. */
typedef struct tl_view_def {
  const char *name;
  const char *stream_tag;
  int scope;           /* TL_SCOPE_*: global, per process or per stream */
  const char *order;   /* rows are sorted by this column in a partition */
  const char *columns; /* SQL column list */
  int ncols;
  duckdb_type types[16];
} tl_view_def;

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
extern const tl_view_def tl__views[TL_NVIEWS];

/* Materializes the blocks of one view instance acknowledged up to
 * max_insert_time (for the global views, instance is "global"). */
int tl__lake_materialize_view(tl_lake *l, int view, const char *instance,
                              int64_t max_insert_time, tl_materialize_stats *st,
                              char *err, size_t errcap);

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

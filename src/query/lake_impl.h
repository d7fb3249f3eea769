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

int tl__lake_fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs SQL on a connection; DuckDB's message in err on failure. */
int tl__duck_exec(duckdb_connection c, const char *sql, char *err,
                  size_t errcap);

#endif

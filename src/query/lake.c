/* lake.c - the lake's locked-down DuckDB engine and its views' partition
 * columns.
 *
 * One in-memory DuckDB database per lake. It may read and write files only
 * under <data>/views/ (allowed_directories, external access disabled, the
 * configuration locked), so even SQL that slips past the statement filter
 * of session.c cannot touch other server files. Materialization, which
 * writes the partitions, is in materialize.c. */
#define TL_TARGET "tracelake::lake"
#include "tracelake/tracelake.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duckdb.h"
#include "lake_impl.h"

__attribute__((format(printf, 3, 4))) int
tl__lake_fail(char *err, size_t errcap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
  return TL_EIO;
}

int tl__duck_exec(duckdb_connection c, const char *sql, char *err,
                  size_t errcap) {
  duckdb_result r;
  int rc = 0;
  if (duckdb_query(c, sql, &r) == DuckDBError) {
    snprintf(err, errcap, "%s", duckdb_result_error(&r));
    rc = TL_EIO;
  }
  duckdb_destroy_result(&r);
  return rc;
}

/* ---- Views ------------------------------------------------------------ */

/* The partitions' columns. Those of the global views include their
 * process's columns: the views read one Parquet scan, no join. */
#define C(n, t)                                                                \
  { n, DUCKDB_TYPE_##t }
const tl_view_def tl__views[TL_NVIEWS] = {
    {"log_entries",
     "log",
     TL_SCOPE_ALL,
     NULL,
     "process_id VARCHAR, stream_id VARCHAR, block_id VARCHAR, insert_time "
     "TIMESTAMP_NS, exe VARCHAR, username VARCHAR, computer VARCHAR, time "
     "TIMESTAMP_NS, target VARCHAR, level INTEGER, msg VARCHAR, "
     "process_properties STRUCT(key VARCHAR, value VARCHAR)[]",
     12,
     {C("process_id", VARCHAR), C("stream_id", VARCHAR), C("block_id", VARCHAR),
      C("insert_time", TIMESTAMP_NS), C("exe", VARCHAR), C("username", VARCHAR),
      C("computer", VARCHAR), C("time", TIMESTAMP_NS), C("target", VARCHAR),
      C("level", INTEGER), C("msg", VARCHAR), C("process_properties", LIST)}},
    {"measures",
     "metrics",
     TL_SCOPE_ALL,
     NULL,
     "process_id VARCHAR, stream_id VARCHAR, block_id VARCHAR, insert_time "
     "TIMESTAMP_NS, exe VARCHAR, username VARCHAR, computer VARCHAR, time "
     "TIMESTAMP_NS, target VARCHAR, name VARCHAR, unit VARCHAR, value "
     "DOUBLE, process_properties STRUCT(key VARCHAR, value VARCHAR)[]",
     13,
     {C("process_id", VARCHAR), C("stream_id", VARCHAR), C("block_id", VARCHAR),
      C("insert_time", TIMESTAMP_NS), C("exe", VARCHAR), C("username", VARCHAR),
      C("computer", VARCHAR), C("time", TIMESTAMP_NS), C("target", VARCHAR),
      C("name", VARCHAR), C("unit", VARCHAR), C("value", DOUBLE),
      C("process_properties", LIST)}},
    {"async_events",
     "cpu",
     TL_SCOPE_PROCESS,
     "time",
     "stream_id VARCHAR, block_id VARCHAR, time TIMESTAMP_NS, "
     "event_type VARCHAR, span_id BIGINT, parent_span_id BIGINT, "
     "depth INTEGER, name VARCHAR, filename VARCHAR, target VARCHAR, "
     "line INTEGER",
     11,
     {C("stream_id", VARCHAR), C("block_id", VARCHAR), C("time", TIMESTAMP_NS),
      C("event_type", VARCHAR), C("span_id", BIGINT),
      C("parent_span_id", BIGINT), C("depth", INTEGER), C("name", VARCHAR),
      C("filename", VARCHAR), C("target", VARCHAR), C("line", INTEGER)}},
    {"thread_spans",
     "cpu",
     TL_SCOPE_STREAM,
     "\"begin\"",
     "id BIGINT, parent BIGINT, depth INTEGER, hash BIGINT, "
     "\"begin\" TIMESTAMP_NS, \"end\" TIMESTAMP_NS, duration BIGINT, "
     "name VARCHAR, target VARCHAR, filename VARCHAR, line INTEGER",
     11,
     {C("id", BIGINT), C("parent", BIGINT), C("depth", INTEGER),
      C("hash", BIGINT), C("begin", TIMESTAMP_NS), C("end", TIMESTAMP_NS),
      C("duration", BIGINT), C("name", VARCHAR), C("target", VARCHAR),
      C("filename", VARCHAR), C("line", INTEGER)}},
};
#undef C

/* ---- Opening the lake -----------------------------------------------------
 */

uint64_t tl_lake_default_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  uint64_t m =
      pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 4 : 0;
  const uint64_t lo = (uint64_t)256 << 20, hi = (uint64_t)4 << 30;
  return m < lo ? lo : m > hi ? hi : m;
}

/* Opens one DuckDB engine of the lake (`threads` NULL: DuckDB's default)
 * and locks it down before anyone can send it SQL: files only under views/,
 * no extensions, no way back. Memory is bounded: DuckDB's default is 80% of
 * RAM, and its cache of Parquet data read (enable_external_file_cache)
 * would grow to it under a steady query load, since merges and new
 * telemetry keep adding files; the partitions are local files, which the
 * page cache keeps anyway. The materializer's table function is registered
 * in each, and binds only on the connection running its job. */
static int open_engine(tl_lake *l, bool background, const char *tmp_name,
                       uint64_t mem, const char *threads, char *err,
                       size_t errcap) {
  duckdb_database *db = background ? &l->mdb : &l->db;
  l->fn_tag[background] = (tl_fn_tag){l, background};
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s/%s", l->views, tmp_name);
  if (tl_mkdirs(tmp))
    return tl__lake_fail(err, errcap, "cannot create %s", tmp);
  duckdb_config cfg;
  duckdb_create_config(&cfg);
  duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
  duckdb_set_config(cfg, "autoload_known_extensions", "false");
  if (threads)
    duckdb_set_config(cfg, "threads", threads);
  char *open_err = NULL;
  if (duckdb_open_ext(NULL, db, cfg, &open_err) == DuckDBError) {
    tl__lake_fail(err, errcap, "duckdb: %s", open_err ? open_err : "?");
    duckdb_free(open_err);
    duckdb_destroy_config(&cfg);
    *db = NULL;
    return TL_EIO;
  }
  duckdb_destroy_config(&cfg);
  duckdb_connection c;
  duckdb_connect(*db, &c);
  char sql[9000];
  snprintf(sql, sizeof sql,
           "SET temp_directory='%s';"
           "SET memory_limit='%" PRIu64 "KiB';"
           "SET enable_external_file_cache=false;"
           "SET GLOBAL TimeZone='UTC';"
           "SET allowed_directories=['%s/'];"
           "SET enable_external_access=false;"
           "SET lock_configuration=true;",
           tmp, mem >> 10, l->views);
  int rc = tl__materialize_register(&l->fn_tag[background], c);
  if (rc)
    tl__lake_fail(err, errcap, "duckdb: cannot register the materializer");
  else
    rc = tl__duck_exec(c, sql, err, errcap);
  duckdb_disconnect(&c);
  return rc;
}

int tl_lake_open(tl_lake **out, tl_catalog *cat, tl_store *store, char *err,
                 size_t errcap) {
  return tl_lake_open_opts(out, cat, store, NULL, err, errcap);
}

int tl_lake_open_opts(tl_lake **out, tl_catalog *cat, tl_store *store,
                      const tl_lake_opts *o, char *err, size_t errcap) {
  uint64_t mem =
      o && o->memory_limit ? o->memory_limit : tl_lake_default_memory();
  tl_lake *l = calloc(1, sizeof *l);
  if (!l)
    return tl__lake_fail(err, errcap, "out of memory");
  l->cat = cat;
  l->store = store;
  if (strlen(tl_store_root(store)) >= sizeof l->data - 64) {
    free(l);
    return tl__lake_fail(err, errcap, "data directory path too long");
  }
  snprintf(l->data, sizeof l->data, "%s", tl_store_root(store));
  snprintf(l->views, sizeof l->views, "%s/views", l->data);
  pthread_mutex_init(&l->mu, NULL);
  pthread_mutex_init(&l->job_mu, NULL);
  /* A quarter of the memory for materialization and merges (at least
   * 64 MiB, at most half), the rest for queries. */
  uint64_t least = (uint64_t)64 << 20, mmem = mem / 4;
  if (mmem < least)
    mmem = least < mem / 2 ? least : mem / 2;
  int rc = open_engine(l, false, ".duckdb-tmp", mem - mmem, NULL, err, errcap);
  if (!rc)
    rc = open_engine(l, true, ".duckdb-tmp-maintain", mmem, "1", err, errcap);
  if (rc) {
    tl_lake_close(l);
    return rc;
  }
  *out = l;
  return 0;
}

void tl_lake_close(tl_lake *l) {
  if (!l)
    return;
  if (l->mdb)
    duckdb_close(&l->mdb);
  if (l->db)
    duckdb_close(&l->db);
  pthread_mutex_destroy(&l->job_mu);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

void tl_lake_interrupt(tl_lake *l) {
  atomic_store(&l->interrupted, true);
}

int tl_lake_materialize(tl_lake *l, int64_t max_insert_time,
                        tl_materialize_stats *st, char *err, size_t errcap) {
  TL_SPAN_FN();
  int rc = 0;
  for (int i = 0; i < TL_NVIEWS_GLOBAL && !rc; i++)
    rc = tl__lake_materialize_view(l, i, TL_INSTANCE_GLOBAL, max_insert_time,
                                   true, st, err, errcap);
  return rc;
}

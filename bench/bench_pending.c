/* bench_pending.c - what it costs the lake to look for blocks still to
 * materialize when there are none (the maintenance loop does it every
 * 500 ms for each global view, and so does every session over log_entries
 * or measures with something new to read), as the catalog grows.
 *
 * A SQLite catalog gets N blocks of one `log` stream, all recorded in a
 * partition of log_entries (bulk-inserted with SQL: this measures the
 * listing, not ingestion). Then tl_catalog_blocks_to_materialize is timed
 * two ways in the same run: from the first block (a full scan, what the
 * lake did before it kept a lower bound, and still does every 10 minutes)
 * and from the insert time of the last 1000 blocks (what the lake does
 * now: since its last complete materialization, less a margin). Prints a
 * table and RESULT lines; never fails on timing.
 *
 *   bench_pending [--dir DIR] [--blocks N,N,...] [--reps N] */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "lake/catalog.h"

#define INSERT_BASE 1000000000LL

static int fill(const char *path, long n) {
  sqlite3 *db = NULL;
  char *e = NULL, sql[2048];
  snprintf(
      sql, sizeof sql,
      "BEGIN;"
      "INSERT INTO processes VALUES ('p', 'exe', 'u', 'r', 'c', 'd', 'cpu', "
      "1, 0, 0, NULL, '{}', 0, 0, x'00');"
      "INSERT INTO streams VALUES ('s', 'p', '[\"log\"]', '{}', 0, 0, "
      "x'00');"
      "INSERT INTO partitions (view_name, instance, begin_time, end_time, "
      "min_insert_time, max_insert_time, file, file_size, nb_rows, "
      "nb_blocks, created_time) VALUES ('log_entries', 'global', 0, 1, 0, "
      "1, 'f', 1, 1, %ld, 0);"
      "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE "
      "i < %ld) INSERT INTO blocks SELECT printf('b%%09d', i), 's', 'p', i, "
      "i, i, i, 1, 1, 1, 1, %lld + i FROM r;"
      "INSERT INTO partition_blocks SELECT 'log_entries', 'global', "
      "block_id, 1 FROM blocks;"
      "COMMIT;",
      n, n, INSERT_BASE);
  int rc = sqlite3_open(path, &db) || sqlite3_exec(db, sql, NULL, NULL, &e);
  if (rc)
    fprintf(stderr, "bench_pending: %s\n", e ? e : sqlite3_errmsg(db));
  sqlite3_free(e);
  sqlite3_close(db);
  return rc ? -1 : 0;
}

/* p50 of `reps` listings from `from`, in ms; -1 on failure. */
static double list_ms(tl_catalog *c, int64_t from, int reps) {
  static tl_catalog_block out[1000];
  double v[64];
  for (int k = 0; k < reps; k++) {
    unsigned got = 0;
    uint64_t t0 = bench_mono_ns();
    int rc = tl_catalog_blocks_to_materialize(c, "log_entries", "global",
                                              TL_SCOPE_ALL, "log", from,
                                              INT64_MAX, 1000, out, &got);
    v[k] = (double)(bench_mono_ns() - t0) / 1e6;
    if (rc || got) {
      fprintf(stderr, "bench_pending: listing: rc %d, %u blocks\n", rc, got);
      return -1;
    }
  }
  for (int i = 1; i < reps; i++) /* insertion sort: a few values */
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return v[reps / 2];
}

int main(int argc, char **argv) {
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char sizes[256] = "10000,100000,1000000";
  int reps = 5;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf("usage: bench_pending [--dir DIR] [--blocks N,N,...] "
             "[--reps N]\n");
      return 0;
    }
    if (!v) {
      fprintf(stderr, "bench_pending: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--dir"))
      dir = v;
    else if (!strcmp(a, "--blocks"))
      snprintf(sizes, sizeof sizes, "%s", v);
    else if (!strcmp(a, "--reps") && atoi(v) > 0 && atoi(v) <= 64)
      reps = atoi(v);
    else {
      fprintf(stderr, "bench_pending: bad option %s %s\n", a, v);
      return 2;
    }
  }
  printf("#### Looking for blocks to materialize when there are none "
         "(SQLite catalog, p50 of %d)\n",
         reps);
  printf("  %12s %22s %26s\n", "blocks", "from the first (ms)",
         "from the last 1000 (ms)");
  int status = 0;
  char *save = NULL;
  for (char *t = strtok_r(sizes, ",", &save); t && !status;
       t = strtok_r(NULL, ",", &save)) {
    long n = atol(t);
    char work[512], spec[600], err[512];
    snprintf(work, sizeof work, "%s/tlbench-pending-XXXXXX", dir);
    if (n < 1000 || !mkdtemp(work)) {
      fprintf(stderr, "bench_pending: bad size %s or no work directory\n", t);
      return 1;
    }
    snprintf(spec, sizeof spec, "%s/catalog.db", work);
    tl_catalog *c = NULL;
    if (tl_catalog_open(&c, spec, err, sizeof err) || fill(spec, n)) {
      fprintf(stderr, "bench_pending: catalog: %s\n", err);
      status = 1;
    } else {
      double full = list_ms(c, INT64_MIN, reps);
      double since = list_ms(c, INSERT_BASE + n - 1000, reps);
      if (full < 0 || since < 0)
        status = 1;
      printf("  %12ld %22.2f %26.3f\n", n, full, since);
      bench_result("RESULT bench=pending blocks=%ld full_ms=%.3f "
                   "since_ms=%.4f",
                   n, full, since);
    }
    tl_catalog_close(c);
    bench_rm_rf(work);
  }
  return status;
}

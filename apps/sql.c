/* sql.c - `tracelake sql`: one SQL query over the lake, run in process, the
 * result printed as a table, CSV or JSON lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"
#include "query/lake.h"

static void usage(FILE *o) {
  fprintf(
      o,
      "usage: tracelake sql [options] \"SQL\"\n\n"
      "Runs one read-only query over the lake's views (log_entries,\n"
      "measures, processes, streams, blocks) and prints the result.\n\n"
      "  --data DIR        the lake (default ./tracelake-data)\n"
      "  --catalog SPEC    postgresql://... or a SQLite file\n"
      "                    (default DIR/catalog.db)\n"
      "  --begin TIME      only data at or after TIME\n"
      "  --end TIME        only data before TIME; TIME is RFC 3339\n"
      "                    (2026-11-26T12:00:00Z) or an age (90m, 1d)\n"
      "  --format F        table (default), csv or json (one object a line)\n");
}

/* RFC 3339, or an age meaning "that long before now". */
static int parse_time(const char *s, int64_t *ns) {
  if (!tl_rfc3339_parse(s, ns))
    return 0;
  int64_t age;
  if (!tl_app_parse_age(s, &age)) {
    *ns = tl_wall_ns() - age;
    return 0;
  }
  return -1;
}

int tl_app_sql(int argc, char **argv) {
  const char *data = "./tracelake-data", *catalog = NULL, *sql = NULL;
  int64_t begin = INT64_MIN, end = INT64_MAX;
  int format = TL_FORMAT_TABLE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (a[0] != '-' || !a[1]) {
      if (sql) {
        fprintf(stderr, "tracelake sql: one query at a time (quote it)\n");
        return 2;
      }
      sql = a;
      continue;
    }
    if (!v) {
      fprintf(stderr, "tracelake sql: %s needs a value (try --help)\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--data"))
      data = v;
    else if (!strcmp(a, "--catalog"))
      catalog = v;
    else if (!strcmp(a, "--begin") || !strcmp(a, "--end")) {
      if (parse_time(v, a[2] == 'b' ? &begin : &end)) {
        fprintf(stderr,
                "tracelake sql: %s: '%s' is neither RFC 3339 "
                "(2026-11-26T12:00:00Z) nor an age (90m)\n",
                a, v);
        return 2;
      }
    } else if (!strcmp(a, "--format")) {
      if (!strcmp(v, "table"))
        format = TL_FORMAT_TABLE;
      else if (!strcmp(v, "csv"))
        format = TL_FORMAT_CSV;
      else if (!strcmp(v, "json"))
        format = TL_FORMAT_JSON;
      else {
        fprintf(stderr, "tracelake sql: --format is table, csv or json\n");
        return 2;
      }
    } else {
      fprintf(stderr, "tracelake sql: unknown option %s (try --help)\n", a);
      return 2;
    }
  }
  if (!sql) {
    usage(stderr);
    return 2;
  }
  tl_catalog *cat;
  tl_store *store;
  if (tl_app_open_lake(data, catalog, &cat, &store))
    return 1;
  char err[1024] = "";
  tl_lake *lake = NULL;
  tl_session *s = NULL;
  int rc = tl_lake_open(&lake, cat, store, err, sizeof err);
  if (!rc)
    rc = tl_session_open(&s, lake, begin, end, err, sizeof err);
  if (!rc)
    rc = tl_session_print(s, sql, format, stdout, err, sizeof err);
  if (rc)
    fprintf(stderr, "tracelake sql: %s\n", err);
  tl_session_close(s);
  tl_lake_close(lake);
  tl_store_close(store);
  tl_catalog_close(cat);
  return rc ? 1 : 0;
}

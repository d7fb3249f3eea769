/* admin.c - `tracelake admin`: retention (retire old blocks and partitions
 * in bounded batches, safe while serving) and a summary of what the lake
 * holds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"
#include "lake/catalog.h"
#include "lake/store.h"
#include "query/lake.h"

static void usage(FILE *o) {
  fprintf(o,
          "usage: tracelake admin <command> [options]\n\n"
          "  retire --older-than AGE [--batch N] [--grace SEC]\n"
          "         delete blocks whose end time is older than AGE (30d,\n"
          "         12h, 90m, 45s), blobs and catalog rows, then the\n"
          "         partitions (Parquet files of the SQL views) whose last\n"
          "         event is, N per transaction (default 1000). Partition\n"
          "         files go to the trash and are deleted SEC seconds later\n"
          "         (default 60: queries in progress may read them) by this\n"
          "         command or by a running server\n"
          "  stats                                 count processes, streams,\n"
          "         blocks, events and bytes\n\n"
          "Both take --data DIR (default ./tracelake-data) and optionally\n"
          "--catalog SPEC (default DIR/catalog.db).\n");
}

int tl_app_parse_age(const char *s, int64_t *ns) {
  char *end;
  double v = strtod(s, &end);
  double mul;
  if (end == s || v < 0)
    return -1;
  switch (*end) {
  case 's':
    mul = 1e9;
    break;
  case 'm':
    mul = 60e9;
    break;
  case 'h':
    mul = 3600e9;
    break;
  case 'd':
    mul = 86400e9;
    break;
  default:
    return -1;
  }
  if (end[1])
    return -1;
  *ns = (int64_t)(v * mul);
  return 0;
}

/* Progress on stderr: one line, rewritten after each batch. */
static bool show_progress(void *ctx, const tl_retire_stats *st) {
  (void)ctx;
  fprintf(stderr, "\rretired %" PRIu64 " blocks, %" PRIu64 " partitions",
          st->blocks, st->partitions);
  return true;
}

int tl_app_admin(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1], *data = "./tracelake-data", *catalog = NULL,
             *age_arg = "";
  int64_t age = -1, grace = TL_TRASH_GRACE_NS;
  unsigned batch = 1000;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fprintf(stderr, "tracelake admin: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--data"))
      data = v;
    else if (!strcmp(a, "--catalog"))
      catalog = v;
    else if (!strcmp(a, "--older-than")) {
      age_arg = v;
      if (tl_app_parse_age(v, &age)) {
        fprintf(stderr, "tracelake admin: bad age %s (try 30d, 12h)\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--grace")) {
      char *end;
      unsigned long sec = strtoul(v, &end, 10);
      if (*end || end == v || sec > 86400) {
        fprintf(stderr, "tracelake admin: --grace must be 0..86400 s\n");
        return 2;
      }
      grace = (int64_t)sec * 1000000000;
    } else if (!strcmp(a, "--batch")) {
      batch = (unsigned)strtoul(v, NULL, 10);
      if (batch < 1 || batch > 100000) {
        fprintf(stderr, "tracelake admin: --batch must be 1..100000\n");
        return 2;
      }
    } else {
      fprintf(stderr, "tracelake admin: unknown option %s\n", a);
      return 2;
    }
  }
  if (strcmp(cmd, "retire") && strcmp(cmd, "stats")) {
    fprintf(stderr, "tracelake admin: unknown command %s\n", cmd);
    usage(stderr);
    return 2;
  }
  if (!strcmp(cmd, "retire") && age < 0) {
    fprintf(stderr, "tracelake admin retire: --older-than is required\n");
    return 2;
  }
  tl_catalog *cat;
  tl_store *store;
  if (tl_app_open_lake(data, catalog, &cat, &store))
    return 1;
  int rc = 0;
  if (!strcmp(cmd, "stats")) {
    tl_catalog_counts c;
    if ((rc = tl_catalog_counts_get(cat, &c)))
      fprintf(stderr, "tracelake admin: %s\n", tl_catalog_errmsg(cat));
    else
      printf("%" PRIu64 " processes, %" PRIu64 " streams, %" PRIu64
             " blocks, %" PRIu64 " events, %" PRIu64 " bytes (catalog %s)\n",
             c.processes, c.streams, c.blocks, c.events, c.bytes,
             tl_catalog_backend(cat));
  } else {
    int64_t now = tl_wall_ns();
    tl_retire_stats st;
    memset(&st, 0, sizeof st);
    char err[1024];
    uint64_t deleted = 0;
    rc = tl_retire(cat, store, now - age, batch, now + grace, &st,
                   show_progress, NULL, err, sizeof err);
    if (st.blocks || st.partitions)
      fputc('\n', stderr);
    if (rc)
      fprintf(stderr, "tracelake admin retire: %s\n", err);
    /* What is due now: with --grace 0 these partitions' files, and what
     * earlier merges and retirements left. */
    int prc = tl_trash_purge(store, tl_wall_ns(), &deleted);
    if (prc)
      fprintf(stderr, "tracelake admin retire: purging the trash: %s\n",
              tl_strerror(prc));
    printf("retired %" PRIu64 " blocks and %" PRIu64
           " partitions older than %s; %" PRIu64 " partition files deleted",
           st.blocks, st.partitions, age_arg, deleted);
    if (st.partitions && grace > 0)
      printf(" (this run's files in %" PRId64 " s)", grace / 1000000000);
    printf("%s\n", st.undeleted ? "; some files could not be deleted" : "");
  }
  tl_store_close(store);
  tl_catalog_close(cat);
  return rc ? 1 : 0;
}

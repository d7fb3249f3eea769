/* admin.c - `tracelake admin`: retention (retire old blocks in bounded
 * batches, safe while serving) and a summary of what the lake holds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"
#include "lake/catalog.h"
#include "lake/store.h"

static void usage(FILE *o) {
  fprintf(o,
          "usage: tracelake admin <command> [options]\n\n"
          "  retire --older-than AGE [--batch N]   delete blocks whose end\n"
          "         time is older than AGE (30d, 12h, 90m, 45s), blobs and\n"
          "         catalog rows, N per transaction (default 1000)\n"
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

typedef struct retire_ctx {
  tl_store *store;
  uint64_t blobs_failed;
} retire_ctx;

static void delete_blob(void *ctx, const tl_catalog_block *b) {
  retire_ctx *r = ctx;
  char key[128];
  tl_store_block_key(b->process_id, b->stream_id, b->block_id, key);
  if (tl_store_delete(r->store, key))
    r->blobs_failed++;
}

int tl_app_admin(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1], *data = "./tracelake-data", *catalog = NULL;
  int64_t age = -1;
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
      if (tl_app_parse_age(v, &age)) {
        fprintf(stderr, "tracelake admin: bad age %s (try 30d, 12h)\n", v);
        return 2;
      }
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
    int64_t cutoff = tl_wall_ns() - age;
    retire_ctx r = {store, 0};
    uint64_t total = 0;
    unsigned n;
    do {
      rc = tl_catalog_retire_batch(cat, cutoff, batch, delete_blob, &r, &n);
      total += n;
      if (n)
        fprintf(stderr, "\rretired %" PRIu64 " blocks", total);
    } while (!rc && n > 0);
    if (total)
      fputc('\n', stderr);
    if (rc)
      fprintf(stderr, "tracelake admin retire: %s\n", tl_catalog_errmsg(cat));
    printf("retired %" PRIu64 " blocks older than %s%s\n", total, argv[3],
           r.blobs_failed ? " (some blobs could not be deleted)" : "");
  }
  tl_store_close(store);
  tl_catalog_close(cat);
  return rc ? 1 : 0;
}

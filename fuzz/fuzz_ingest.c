/* fuzz_ingest.c - libFuzzer target for the ingestion path behind the HTTP
 * server: tl_ingest_handle on a real lake (SQLite catalog and blob store in
 * a temp directory, opened once). The first input byte picks the endpoint
 * (0 process, 1 stream, 2 block, 3 block after its process and stream),
 * the rest is the body. With 3 the target first stores a process and a
 * stream for the ids in the block's header, so that mutated blocks reach the
 * store and the catalog. The lake persists across inputs, so the duplicate
 * and conflict paths are reached too. Whatever the input, the
 * handler must not crash and must answer 200, 400, 404 or 409: anything
 * else (a 5xx) would make a sender retry a message forever.
 *
 * Fuzzing builds skip CRC checks (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION),
 * so mutated messages reach the structural checks and the storage. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

static tl_catalog *catalog;
static tl_store *store;
static tl_ingest *ingest;
static char dir[64];
static int verbose; /* TL_FUZZ_VERBOSE=1: print each answer */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void cleanup(void) {
  tl_ingest_close(ingest);
  tl_store_close(store);
  tl_catalog_close(catalog);
  if (dir[0])
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  snprintf(dir, sizeof dir, "/tmp/tl-fuzz-ingest-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    abort();
  }
  char spec[128], err[256];
  snprintf(spec, sizeof spec, "%s/catalog.db", dir);
  if (tl_catalog_open(&catalog, spec, err, sizeof err)) {
    fprintf(stderr, "fuzz_ingest: catalog: %s\n", err);
    abort();
  }
  if (tl_store_open(&store, dir) || tl_ingest_open(&ingest, catalog, store)) {
    fprintf(stderr, "fuzz_ingest: cannot open the store in %s\n", dir);
    abort();
  }
  atexit(cleanup);
  const char *v = getenv("TL_FUZZ_VERBOSE");
  verbose = v && *v == '1';
  return 0;
}

static void check(int kind, const tl_ingest_reply *r) {
  if (verbose)
    fprintf(stderr, "fuzz_ingest: endpoint %d: %d %s\n", kind, r->status,
            r->msg);
  if (r->status != 200 && r->status != 400 && r->status != 404 &&
      r->status != 409) {
    fprintf(stderr, "fuzz_ingest: endpoint %d answered %d: %s\n", kind,
            r->status, r->msg);
    __builtin_trap();
  }
  if (!memchr(r->msg, 0, sizeof r->msg) || !r->msg[0])
    __builtin_trap(); /* every answer says what happened */
}

/* Stores a process and a stream for the ids a block's header names. */
static void register_ids(const uint8_t *p, size_t n) {
  if (n < TL_WIRE_BLOCK_HEADER_SIZE)
    return;
  tl_wire_process pm;
  tl_wire_stream sm;
  memset(&pm, 0, sizeof pm);
  memset(&sm, 0, sizeof sm);
  memcpy(pm.process_id, p + 40, 16);
  pm.tsc_frequency = 1000000000u;
  pm.exe = tl_slice_str("fuzz");
  memcpy(sm.stream_id, p + 24, 16);
  memcpy(sm.process_id, p + 40, 16);
  tl_bytes b;
  tl_bytes_init(&b, 1 << 16);
  tl_ingest_reply r;
  if (!tl_process_encode(&pm, &b)) {
    tl_ingest_handle(ingest, TL_MSG_PROCESS, b.p, b.len, false, &r);
    check(TL_MSG_PROCESS, &r);
  }
  b.len = 0;
  if (!tl_stream_encode(&sm, &b)) {
    tl_ingest_handle(ingest, TL_MSG_STREAM, b.p, b.len, false, &r);
    check(TL_MSG_STREAM, &r);
  }
  tl_bytes_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  static const int kinds[4] = {TL_MSG_PROCESS, TL_MSG_STREAM, TL_MSG_BLOCK,
                               TL_MSG_BLOCK};
  int kind = kinds[data[0] % 4];
  if (data[0] % 4 == 3)
    register_ids(data + 1, size - 1);
  tl_ingest_reply r;
  memset(&r, 0, sizeof r);
  tl_ingest_handle(ingest, kind, data + 1, size - 1, false, &r);
  check(kind, &r);
  return 0;
}

/* serve.c - `tracelake serve`: the ingestion service on the embedded default
 * (SQLite catalog and blobs under --data) or on a shared PostgreSQL catalog
 * (--catalog postgresql://...), and the lake's maintenance thread
 * (materialization, merging, trash). The server records its own telemetry
 * with libtracelake, stored through the same ingestion path. */
#define TL_TARGET "tracelake::serve"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps.h"
#include "flightsql/server.h"
#include "ingest/http_server.h"
#include "query/lake.h"
#include "tracelake/tracelake.h"

/* The nice value of the threads that store and materialize in the
 * background (the telemetry flusher, the maintainer): when the CPUs are
 * busy, the threads serving requests go first. Measured with bench_flight's
 * phase 5c (docs/performance.md, "Flight SQL"). */
#define SERVE_BACKGROUND_NICE 10

static void usage(FILE *o) {
  fprintf(
      o, "usage: tracelake serve [options]\n\n"
         "Runs the ingestion service and the Flight SQL query service until\n"
         "SIGINT or SIGTERM.\n\n"
         "  --data DIR          where blobs (and the SQLite catalog) live\n"
         "                      (default ./tracelake-data)\n"
         "  --catalog SPEC      postgresql://user@host:port/db, or a SQLite\n"
         "                      file (default DIR/catalog.db)\n"
         "  --http HOST:PORT    listen address (default 127.0.0.1:9000;\n"
         "                      port 0 picks a free port, printed on start)\n"
         "  --api-keys FILE     require 'Authorization: Bearer <key>', keys\n"
         "                      from FILE ('name key' per line)\n"
         "  --max-body BYTES    request body limit (default 16m)\n"
         "  --http-threads N    worker threads (default 8)\n"
         "  --http-timeout SEC  drop idle or too slow connections (30)\n"
         "  --flight HOST:PORT  Flight SQL (gRPC) listen address (default\n"
         "                      127.0.0.1:50051; port 0 picks a free port;\n"
         "                      'off': no query service)\n"
         "  --tls-cert FILE, --tls-key FILE  serve Flight SQL over TLS\n"
         "  --flight-max-calls N  Flight SQL calls served at once; more\n"
         "                      wait for a free worker (default 256)\n"
         "  --flight-worker-idle SEC  a worker idle this long exits, down\n"
         "                      to 4 (default 30)\n"
         "  --query-memory BYTES  memory DuckDB may use for queries and\n"
         "                      materialization; beyond it they spill to disk\n"
         "                      or fail (default: a quarter of RAM, 256m..4g)\n"
         "  --no-self-telemetry  do not record the server's own telemetry\n"
         "                      (query metrics, spans, query_log)\n"
         "  --maintain-interval-ms MS  materialize what was acknowledged\n"
         "                      every MS ms (default 500; 0: never, then\n"
         "                      queries materialize what they lack)\n"
         "  --merge-interval-ms MS     merge small partitions every MS ms\n"
         "                      (default 10000; 0: never)\n"
         "  --retention AGE     delete the blocks and partitions that ended\n"
         "                      more than AGE ago (30d, 12h, 90m), checked\n"
         "                      at start and every minute (default: keep\n"
         "                      everything; needs the maintenance thread)\n");
}

int tl_app_parse_hostport(const char *s, char *host, size_t cap,
                          uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= cap)
    return -1;
  char *end;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (*end || end == colon + 1 || p > 65535)
    return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  if (!host[0])
    snprintf(host, cap, "127.0.0.1");
  *port = (uint16_t)p;
  return 0;
}

int tl_app_parse_bytes(const char *s, size_t *out) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  unsigned long long mul = 1;
  if (*end == 'k' || *end == 'K')
    mul = 1 << 10, end++;
  else if (*end == 'm' || *end == 'M')
    mul = 1 << 20, end++;
  else if (*end == 'g' || *end == 'G')
    mul = 1 << 30, end++;
  if (*end || end == s || v == 0)
    return -1;
  *out = (size_t)(v * mul);
  return 0;
}

int tl_app_open_lake(const char *data, const char *catalog_spec,
                     tl_catalog **cat, tl_store **store) {
  if (mkdir(data, 0755) && errno != EEXIST) {
    fprintf(stderr, "tracelake: cannot create %s: %s\n", data, strerror(errno));
    return 1;
  }
  char spec[4096], err[512];
  if (catalog_spec)
    snprintf(spec, sizeof spec, "%s", catalog_spec);
  else
    snprintf(spec, sizeof spec, "%s/catalog.db", data);
  int rc = tl_catalog_open(cat, spec, err, sizeof err);
  if (rc) {
    fprintf(stderr, "tracelake: catalog: %s\n", err);
    return 1;
  }
  if ((rc = tl_store_open(store, data))) {
    fprintf(stderr, "tracelake: object store %s: %s\n", data, tl_strerror(rc));
    tl_catalog_close(*cat);
    return 1;
  }
  return 0;
}

int tl_app_serve(int argc, char **argv) {
  const char *data = "./tracelake-data", *catalog = NULL, *keys_path = NULL;
  char host[256] = "127.0.0.1";
  tl_http_opts o = {0};
  o.port = 9000;
  const char *flight = "127.0.0.1:50051", *tls_cert = NULL, *tls_key = NULL;
  tl_maintainer_opts mo = {0};
  mo.interval_ms = 500;
  mo.merge_interval_ms = 10000;
  mo.merge.grace_ns = -1; /* the default */
  mo.nice = SERVE_BACKGROUND_NICE;
  bool self_telemetry = true;
  tl_lake_opts lo = {0};
  unsigned max_calls = 0, worker_idle_s = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--no-self-telemetry")) {
      self_telemetry = false;
      continue;
    }
    if (!v) {
      fprintf(stderr, "tracelake serve: %s needs a value (try --help)\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--data"))
      data = v;
    else if (!strcmp(a, "--catalog"))
      catalog = v;
    else if (!strcmp(a, "--api-keys"))
      keys_path = v;
    else if (!strcmp(a, "--flight"))
      flight = strcmp(v, "off") ? v : NULL;
    else if (!strcmp(a, "--tls-cert"))
      tls_cert = v;
    else if (!strcmp(a, "--tls-key"))
      tls_key = v;
    else if (!strcmp(a, "--http")) {
      if (tl_app_parse_hostport(v, host, sizeof host, &o.port)) {
        fprintf(stderr, "tracelake serve: --http wants HOST:PORT, got %s\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--max-body")) {
      if (tl_app_parse_bytes(v, &o.max_body)) {
        fprintf(stderr, "tracelake serve: bad --max-body %s\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--flight-max-calls") ||
               !strcmp(a, "--flight-worker-idle")) {
      char *end;
      unsigned long n = strtoul(v, &end, 10);
      if (*end || end == v || n < 1 || n > 100000) {
        fprintf(stderr, "tracelake serve: %s must be 1..100000\n", a);
        return 2;
      }
      if (!strcmp(a, "--flight-max-calls"))
        max_calls = (unsigned)n;
      else
        worker_idle_s = (unsigned)n;
    } else if (!strcmp(a, "--query-memory")) {
      size_t m;
      if (tl_app_parse_bytes(v, &m) || m < ((size_t)64 << 20)) {
        fprintf(stderr,
                "tracelake serve: bad --query-memory %s (at least 64m)\n", v);
        return 2;
      }
      lo.memory_limit = m;
    } else if (!strcmp(a, "--http-threads")) {
      o.threads = (unsigned)strtoul(v, NULL, 10);
      if (o.threads < 1 || o.threads > 256) {
        fprintf(stderr, "tracelake serve: --http-threads must be 1..256\n");
        return 2;
      }
    } else if (!strcmp(a, "--http-timeout")) {
      o.timeout_s = (unsigned)strtoul(v, NULL, 10);
      if (o.timeout_s < 1) {
        fprintf(stderr, "tracelake serve: --http-timeout must be >= 1\n");
        return 2;
      }
    } else if (!strcmp(a, "--retention")) {
      if (tl_app_parse_age(v, &mo.retention_ns) || mo.retention_ns <= 0) {
        fprintf(stderr,
                "tracelake serve: bad --retention %s (try 30d, 12h, 90m)\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--maintain-interval-ms") ||
               !strcmp(a, "--merge-interval-ms")) {
      char *end;
      unsigned long ms = strtoul(v, &end, 10);
      if (*end || end == v || ms > 86400000) {
        fprintf(stderr, "tracelake serve: %s must be 0..86400000\n", a);
        return 2;
      }
      if (!strcmp(a, "--maintain-interval-ms"))
        mo.interval_ms = (unsigned)ms;
      else
        mo.merge_interval_ms = (unsigned)ms;
    } else {
      fprintf(stderr, "tracelake serve: unknown option %s (try --help)\n", a);
      return 2;
    }
  }
  o.host = host;
  if (mo.retention_ns && !mo.interval_ms) {
    fprintf(stderr, "tracelake serve: --retention needs the maintenance "
                    "thread (--maintain-interval-ms above 0)\n");
    return 2;
  }
  if (!tls_cert != !tls_key) {
    fprintf(stderr, "tracelake serve: --tls-cert and --tls-key go together\n");
    return 2;
  }

  /* Signals go to sigwait below, not to whichever thread runs. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  tl_keyring *keys = NULL;
  char err[512];
  if (keys_path && tl_keyring_load(&keys, keys_path, err, sizeof err)) {
    fprintf(stderr, "tracelake serve: %s\n", err);
    return 1;
  }
  tl_catalog *cat = NULL;
  tl_store *store = NULL;
  if (tl_app_open_lake(data, catalog, &cat, &store)) {
    tl_keyring_free(keys);
    return 1;
  }
  tl_store_sweep_temp(store, 3600);
  tl_ingest *ig = NULL;
  tl_ingest_open(&ig, cat, store);
  /* The server's own telemetry goes straight into its own lake, through
   * the in-process sink. It starts before any thread of the server
   * (DuckDB's, HTTP, gRPC, maintenance), so none of their events is lost;
   * buffers are flushed every 500 ms so that a query shows in query_log
   * within a second (each flush of a thread's buffer is a block to store
   * and materialize: 200 ms cost 2.5 times as many). */
  int rc = 0;
  if (self_telemetry) {
    tl_config cfg = {0};
    cfg.flags = TL_CONFIG_NO_ENV;
    cfg.sink = tl_ingest_sink_grouped;
    cfg.sink_commit = tl_ingest_sink_commit;
    cfg.sink_ctx = ig;
    cfg.flush_period_ms = 500;
    cfg.flusher_nice = SERVE_BACKGROUND_NICE;
    cfg.properties = flight ? "service=tracelake-serve,role=ingest+query"
                            : "service=tracelake-serve,role=ingest";
    rc = tl_init(&cfg);
    if (rc)
      fprintf(stderr, "tracelake serve: self-telemetry disabled: %s\n",
              tl_strerror(rc));
  }
  /* The lake (DuckDB) serves the maintenance loop and the queries. */
  int status = 1;
  tl_lake *lake = NULL;
  tl_http_server *srv = NULL;
  tl_flight_server *fsrv = NULL;
  tl_maintainer *maint = NULL;
  if ((mo.interval_ms || flight) &&
      tl_lake_open_opts(&lake, cat, store, &lo, err, sizeof err)) {
    fprintf(stderr, "tracelake serve: lake: %s\n", err);
    goto out;
  }
  o.keys = keys;
  o.ingest = ig;
  if (tl_http_start(&srv, &o, err, sizeof err)) {
    fprintf(stderr, "tracelake serve: %s\n", err);
    goto out;
  }
  char flight_addr[300] = "";
  if (flight) {
    tl_flight_opts fo = {0};
    fo.listen = flight;
    fo.tls_cert = tls_cert;
    fo.tls_key = tls_key;
    fo.keys = keys;
    fo.lake = lake;
    fo.max_calls = max_calls;
    fo.worker_idle_ms = worker_idle_s * 1000;
    if (tl_flight_start(&fsrv, &fo, err, sizeof err)) {
      fprintf(stderr, "tracelake serve: %s\n", err);
      goto out;
    }
    char fhost[256];
    uint16_t fport;
    if (tl_app_parse_hostport(flight, fhost, sizeof fhost, &fport))
      snprintf(fhost, sizeof fhost, "%s", flight);
    snprintf(flight_addr, sizeof flight_addr, " and %s://%s:%d",
             tls_cert ? "grpc+tls" : "grpc", fhost, tl_flight_port(fsrv));
  }
  /* The maintenance thread inherits the blocked signals. Without it the
   * server still works: queries materialize what they lack. */
  if (mo.interval_ms && (rc = tl_maintainer_start(&maint, lake, &mo)))
    fprintf(stderr, "tracelake serve: no maintenance thread: %s\n",
            tl_strerror(rc));
  printf("tracelake: serving http://%s:%u%s (data %s, catalog %s%s)\n", host,
         tl_http_port(srv), flight_addr, data, tl_catalog_backend(cat),
         keys ? ", API keys required" : "");
  fflush(stdout);
  TL_INFO("serving");

  int sig = 0;
  sigwait(&sigs, &sig);
  printf("tracelake: %s received, finishing requests in progress\n",
         sig == SIGINT ? "SIGINT" : "SIGTERM");
  fflush(stdout);
  status = 0;
out:
  tl_http_stop(srv);
  tl_flight_stop(fsrv, 5000);
  /* Before the telemetry, the lake and the catalog it uses go. */
  tl_maintainer_stop(maint);
  if (status == 0)
    TL_INFO("stopped");
  tl_shutdown();
  tl_ingest_close(ig);
  tl_lake_close(lake);
  tl_store_close(store);
  tl_catalog_close(cat);
  tl_keyring_free(keys);
  if (status)
    return status;
  printf("tracelake: stopped\n");
  return 0;
}

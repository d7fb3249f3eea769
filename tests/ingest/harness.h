/* harness.h - what the ingestion tests share: the real `tracelake serve`
 * started as a child process on an ephemeral loopback port, on a SQLite or
 * PostgreSQL catalog, HTTP requests with libcurl and over raw sockets, valid
 * messages built with the wire encoder, and checks of what ended up on disk.
 * Every wait is bounded. */
#ifndef TL_TESTS_INGEST_HARNESS_H
#define TL_TESTS_INGEST_HARNESS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "lake/catalog.h"

/* ---- Time and scratch space --------------------------------------------- */

uint64_t th_now_ms(void);
void th_sleep_ms(unsigned ms);
/* A directory private to this test process, removed at exit. */
const char *th_tmpdir(void);
/* th_tmpdir()/name, in a static ring of buffers (valid for a while). */
const char *th_path(const char *name);
/* Writes a whole file; fails the test on error. */
void th_write_file(const char *path, const void *p, size_t n);
/* Reads a whole file into `out` (initialized here). 0, or -1 if absent. */
int th_read_file(const char *path, tl_bytes *out);

/* ---- The catalog ---------------------------------------------------------
 * The backend comes from TL_TEST_CATALOG. Unset or "sqlite": a lake's
 * catalog is the server's default, DATA/catalog.db. "pg": every lake (data
 * directory) gets a fresh database of its own on the PostgreSQL server of the
 * ctest fixture (its URI in TL_TEST_PG_DIR/uri), made on first use and
 * dropped at exit, so tests may run in parallel; every server started on
 * that lake, restarts included, gets `--catalog` with its URI. */

/* Whether the tests run against PostgreSQL. */
bool th_pg(void);
/* The catalog spec of the lake in `data` (valid until exit). */
const char *th_catalog_spec(const char *data);
/* PostgreSQL only: puts the lake's database on the server that `server_uri`
 * (the URI of any database there) names, instead of the fixture's. Call it
 * before anything else uses the lake. Returns the lake's catalog spec. */
const char *th_catalog_spec_on(const char *data, const char *server_uri);
/* Opens the lake's catalog, as its server does; fails the test on error.
 * Close it with tl_catalog_close. */
tl_catalog *th_catalog_open(const char *data);

/* A PostgreSQL server of this test's own (scripts/pg-test.sh, given by
 * TL_TEST_PG_SCRIPT), for tests that stop it. "start" makes it and returns
 * the URI of its database; "down" stops it and keeps its data, "up" starts
 * it again on the same port (both return NULL). It is removed at exit. */
const char *th_pg_private(const char *cmd);

/* ---- The server ---------------------------------------------------------- */

typedef struct th_server {
  pid_t pid;
  uint16_t port; /* 0 before the first start: ephemeral */
  char data[512];
  char log[600];
  char base[64];        /* "http://127.0.0.1:PORT" */
  uint16_t flight_port; /* Flight SQL (gRPC); 0 when off */
} th_server;

/* Runs `tracelake serve --data DATA --http 127.0.0.1:PORT EXTRA...` (EXTRA
 * is NULL-terminated, may be NULL), stdout and stderr to a log file, and
 * waits (at most 10 s) for its "serving" line. On PostgreSQL, a `--catalog`
 * in EXTRA is replaced by the lake's (th_catalog_spec). Returns 0, or -1
 * when the server exited first (its log is printed). */
int th_server_start(th_server *s, const char *data, const char *const *extra);
/* Sends `sig` and waits at most `timeout_ms` for the exit. Returns the exit
 * status, 128+signal when killed by a signal, or -1 on timeout (the server is
 * then killed). */
int th_server_stop(th_server *s, int sig, unsigned timeout_ms);
/* Whether the server's log contains `needle`. */
bool th_server_log_has(const th_server *s, const char *needle);

/* Runs a helper program (argv[0] is the path), stdout to `out_path`.
 * Returns its pid; it is killed at exit if still running. */
pid_t th_spawn(char *const argv[], const char *out_path);
/* Waits at most `timeout_ms`; returns the exit status, 128+signal, or -1. */
int th_wait(pid_t pid, unsigned timeout_ms);

/* ---- HTTP with libcurl --------------------------------------------------- */

typedef struct th_resp {
  int curl_rc; /* CURLcode; nonzero: no complete answer */
  long status;
  char body[1024]; /* trailing newline removed */
  size_t body_len;
} th_resp;

/* One request on this thread's connection (kept alive when the server
 * allows). `auth` is a whole header line or NULL. */
void th_http(const th_server *s, const char *method, const char *path,
             const void *p, size_t n, const char *auth, th_resp *r);
/* Closes this thread's connection (call before a thread ends). */
void th_http_done(void);
/* POST to /ingestion/insert_<kind> with the kind's message. */
void th_post(const th_server *s, int kind, const void *p, size_t n, th_resp *r);
/* Fails the test unless the answer has `status` and a body containing
 * `needle` (NULL: any body). */
#define TH_EXPECT(r, st, needle)                                               \
  th_expect(__FILE__, __LINE__, (r), (st), (needle))
void th_expect(const char *file, int line, const th_resp *r, long status,
               const char *needle);
/* GET /health status (0 on transport failure). */
long th_health(const th_server *s);

/* ---- Raw sockets --------------------------------------------------------- */

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
int th_connect(uint16_t port);
/* Sends everything; 0, or -1 when the peer is gone. */
int th_send_all(int fd, const void *p, size_t n);
/* Reads what arrives until the peer closes or `timeout_ms` passes. Returns
 * the bytes read (NUL-terminated in buf), -1 on reset. *closed tells whether
 * the peer closed. */
long th_recv_until(int fd, char *buf, size_t cap, unsigned timeout_ms,
                   bool *closed);
/* The status code of a raw HTTP response, or 0. */
int th_raw_status(const char *resp);

/* ---- Messages ------------------------------------------------------------ */

typedef struct th_ids {
  uint8_t process[16], stream[16], block[16];
} th_ids;

void th_ids_new(th_ids *ids);
/* Encodes a process / stream message (appended to out). */
void th_make_process(tl_bytes *out, const uint8_t pid[16], const char *exe);
void th_make_stream(tl_bytes *out, const uint8_t sid[16],
                    const uint8_t pid[16]);
/* A valid block of `nevents` events of every kind, its content varying with
 * `seed`; `text_bytes` adds that much incompressible log text (for large
 * blocks). */
void th_make_block(tl_bytes *out, const th_ids *ids, unsigned nevents,
                   uint32_t seed, size_t text_bytes);
/* Recomputes the CRCs of a message after a change. */
void th_reseal(uint8_t *p, size_t n);

/* ---- The lake on disk ---------------------------------------------------- */

/* DATA/blobs/<process>/<stream>/<block>. */
void th_blob_path(const char *data, const th_ids *ids, char *out, size_t cap);
/* Counts files under `dir` (recursively) whose name starts with `prefix`
 * and ends with `suffix` ("" matches any). */
unsigned th_count_files(const char *dir, const char *prefix,
                        const char *suffix);

#endif

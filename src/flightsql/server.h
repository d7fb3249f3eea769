/* server.h - the Flight SQL service of `tracelake serve`: Apache Arrow
 * Flight SQL over gRPC, answering SQL over the lake. See docs/flightsql.md. */
#ifndef TL_FLIGHT_SERVER_H
#define TL_FLIGHT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/keys.h"
#include "query/lake.h"

typedef struct tl_flight_server tl_flight_server;

typedef struct tl_flight_opts {
  const char *listen;   /* "host:port"; port 0 picks a free one */
  const char *tls_cert; /* PEM files; both or neither (NULL: plaintext) */
  const char *tls_key;
  /* Borrowed; NULL: no authentication. With keys, every call needs
   * `authorization: Bearer <key>` or a token from Handshake. */
  const tl_keyring *keys;
  tl_lake *lake;      /* borrowed; must outlive the server */
  unsigned max_calls; /* calls served at once; 0: 256 */
  /* A worker idle this long retires (down to 4 workers); 0: 30 s. */
  unsigned worker_idle_ms;
  size_t max_sql_bytes; /* 0: 1 MiB */
} tl_flight_opts;

/* Binds, starts the service's threads and returns. `o` is copied (the
 * pointers it holds are borrowed). Returns 0, TL_EINVAL (bad option, e.g.
 * unreadable TLS files), TL_EIO (cannot bind) or TL_ENOMEM, with err set. */
int tl_flight_start(tl_flight_server **out, const tl_flight_opts *o, char *err,
                    size_t errcap);
/* The port bound. */
int tl_flight_port(const tl_flight_server *s);
/* Stops accepting calls, lets calls in progress finish for up to
 * `grace_ms`, then cancels the rest (their DuckDB work is interrupted) and
 * frees everything. Accepts NULL. */
void tl_flight_stop(tl_flight_server *s, unsigned grace_ms);

#endif

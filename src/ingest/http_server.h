/* http_server.h - the ingestion HTTP service (libmicrohttpd):
 * POST /ingestion/insert_process|insert_stream|insert_block, GET /health. */
#ifndef TL_HTTP_SERVER_H
#define TL_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "keys.h"

typedef struct tl_http_server tl_http_server;

typedef struct tl_http_opts {
  const char *host;       /* IPv4 address to bind, e.g. "127.0.0.1" */
  uint16_t port;          /* 0: ephemeral */
  unsigned threads;       /* worker threads; default 8 */
  unsigned timeout_s;     /* idle/slow connection timeout; default 30 */
  size_t max_body;        /* bytes; default 16 MiB */
  size_t max_header;      /* bytes of request line + headers; default 16 KiB */
  const tl_keyring *keys; /* NULL: no authentication; borrowed */
  tl_ingest *ingest;      /* borrowed */
} tl_http_opts;

/* Starts serving. Returns 0, or TL_EINVAL/TL_ESYS with `err` set. */
int tl_http_start(tl_http_server **out, const tl_http_opts *o, char *err,
                  size_t errcap);
uint16_t tl_http_port(const tl_http_server *s);
/* Stops accepting, lets requests in progress finish, then stops. */
void tl_http_stop(tl_http_server *s); /* accepts NULL */

#endif

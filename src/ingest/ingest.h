/* ingest.h - what the ingestion endpoints do, independent of HTTP: validate
 * a message, store it durably (blob + catalog row), and say what happened as
 * an HTTP status with a message. Used by the HTTP server and by the server's
 * own in-process telemetry sink. */
#ifndef TL_INGEST_H
#define TL_INGEST_H

#include <stdbool.h>

#include "../lake/catalog.h"
#include "../lake/store.h"

typedef struct tl_ingest tl_ingest;

/* `catalog` and `store` are borrowed and must outlive the handle. */
int tl_ingest_open(tl_ingest **out, tl_catalog *catalog, tl_store *store);
void tl_ingest_close(tl_ingest *ig); /* accepts NULL */

typedef struct tl_ingest_reply {
  int status;    /* 200, 400, 404, 409, 503, ... */
  char msg[320]; /* one line for humans */
} tl_ingest_reply;

/* Handles one message posted to the endpoint for `kind` (TL_MSG_*). The
 * reply is 200 only once the message is durable (blob fsynced and renamed,
 * catalog row committed); re-sending an identical message is a 200 no-op;
 * the same id with other content is a 409. `record` says whether to record
 * the server's own metrics for this request (not for its own telemetry,
 * which would feed itself). Thread-safe. */
void tl_ingest_handle(tl_ingest *ig, int kind, const uint8_t *p, size_t n,
                      bool record, tl_ingest_reply *r);

/* 200 when catalog and store are usable, else 503 with the reason. */
void tl_ingest_health(tl_ingest *ig, tl_ingest_reply *r);

/* An in-process sink (tl_sink_fn) storing telemetry through
 * tl_ingest_handle, each block durable on its own; ctx is the tl_ingest. */
int tl_ingest_sink(void *ctx, int kind, const uint8_t *p, size_t n);
/* The same as a group commit, for the server's own telemetry: the blocks of
 * a flush round are written at once and become durable together when
 * tl_ingest_sink_commit (their tl_sink_commit_fn) has synced the store once
 * and committed their rows in one transaction. Both are called from the
 * library's flusher thread only (one tl_ingest per process's library). */
int tl_ingest_sink_grouped(void *ctx, int kind, const uint8_t *p, size_t n);
int tl_ingest_sink_commit(void *ctx);

#endif

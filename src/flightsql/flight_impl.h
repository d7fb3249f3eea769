/* flight_impl.h - internals of the Flight SQL service shared by server.c
 * (gRPC transport, auth, threads) and flightsql.c (the Flight SQL
 * commands). One call is served by one worker thread from its first
 * message to its status, with its own completion queue. */
#ifndef TL_FLIGHT_IMPL_H
#define TL_FLIGHT_IMPL_H

#include <grpc/grpc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "server.h"

typedef struct tl_fsql tl_fsql; /* flightsql.c's state */

typedef struct tl_fcall {
  tl_flight_server *srv;
  tl_fsql *fs;
  grpc_call *call;
  grpc_completion_queue *cq;
  grpc_call_details details;
  grpc_metadata_array md;
  /* When gRPC handed the call over (before it waited for a worker). */
  uint64_t arrival_ticks;
  int64_t arrival_wall; /* UTC ns */
  char method[64];      /* "DoGet", ... (the last path element) */
  char user[64];        /* the authenticated key's name, or "" */
  char peer[96];        /* "ipv4:127.0.0.1:40000" */
  /* Headers sent with the first outgoing message or the status. */
  grpc_metadata out_md[2];
  size_t n_out_md;
  bool sent_initial;
  /* The RECV_CLOSE_ON_SERVER op, issued when the call starts: it completes
   * when the client is gone (cancelled) or after our status. */
  int close_cancelled;
  bool closed;
  /* The message in flight (one at a time: backpressure). tl__call_send
   * returns once gRPC has it, so that the worker prepares the next one
   * meanwhile; its completion is noted whatever the worker waits for. */
  grpc_byte_buffer *sending;
  bool send_pending, send_failed;
  char send_tag;
  uint64_t gone_checked; /* tl_mono_ns of the last look at the queue */
  /* A request read only to be refused (see absorb_request in server.c). */
  grpc_byte_buffer *absorbed;
  char absorb_tag;
  bool finished; /* status sent */
} tl_fcall;

/* Receives one message into `msg` (reset first; at most `cap` bytes).
 * Returns 1 (a message), 0 (the client finished sending), TL_ECANCELED (the
 * call is gone) or TL_ETOOBIG. */
int tl__call_recv(tl_fcall *c, tl_bytes *msg, size_t cap);
/* Sends one message made of `head` (copied) followed by `body` (owned after
 * the call: freed with free(), NULL allowed). One message is in flight per
 * call: this first waits until the previous one was taken by gRPC
 * (backpressure), then starts this one and returns. Returns 0 or
 * TL_ECANCELED. */
int tl__call_send(tl_fcall *c, const uint8_t *head, size_t head_len,
                  uint8_t *body, size_t body_len);
/* Sends the final status (OK when `code` is GRPC_STATUS_OK; the message is
 * formatted) and waits until it went out. Returns 0 or TL_ECANCELED. */
int tl__call_finish(tl_fcall *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether the client went away (cancel, deadline, disconnect) or the
 * server is stopping; does not block, and looks at the call's queue at
 * most every 5 ms (a look costs microseconds). */
bool tl__call_gone(tl_fcall *c);
/* Whether the server is stopping; whether the call's deadline passed. */
bool tl__call_stopping(const tl_fcall *c);
bool tl__call_deadline_passed(const tl_fcall *c);
/* A request header's value (NUL-terminated copy into out), or false. */
bool tl__call_header(const tl_fcall *c, const char *key, char *out, size_t cap);

/* flightsql.c: the Flight methods. Each serves the call to its status. */
int tl__fsql_new(tl_fsql **out, tl_flight_server *srv, tl_lake *lake,
                 size_t max_sql_bytes);
void tl__fsql_free(tl_fsql *fs);
void tl__fsql_serve(tl_fcall *c); /* dispatches on c->method */
/* Reaps expired statements; called about once a second. */
void tl__fsql_tick(tl_fsql *fs, int64_t now_ns);

#endif

/* client.c - the Flight SQL client: each RPC is a gRPC core call driven
 * synchronously on its own pluck completion queue, one batch at a time
 * (send initial metadata, each message, close; receive one message at a
 * time; the status batch is started first and plucked last). Results are
 * fed to the Arrow IPC reader and handed to the caller's sink. */
#include "flightsql/client/client.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "flightsql/common/grpc_util.h"

#define SERVICE "/arrow.flight.protocol.FlightService/"
#define ERR_CAP 1024

struct tl_fc {
  grpc_channel *ch;
  char *token;
  char *range_begin, *range_end;
  int64_t limit;
  int64_t timeout_ms;
  size_t max_recv;
  gpr_timespec deadline; /* of the current operation */

  pthread_mutex_t mu; /* guards call and cancelled */
  grpc_call *call;    /* the call in progress, for tl_fc_cancel */
  bool cancelled;

  atomic_uint_fast64_t bytes_in;
  int status;
  char err[ERR_CAP];
};

struct tl_fc_prepared {
  tl_bytes handle, dataset_schema, parameter_schema;
};

/* ---- small helpers --------------------------------------------------------
 */

static char *dup_str(const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static void set_err(tl_fc *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(tl_fc *c, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  c->status = status;
}

static void base64(const uint8_t *p, size_t n, char *out) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? tab[v & 63] : '=';
  }
  out[o] = 0;
}

static int map_status(grpc_status_code s) {
  switch (s) {
  case GRPC_STATUS_OK:
    return 0;
  case GRPC_STATUS_UNAUTHENTICATED:
  case GRPC_STATUS_PERMISSION_DENIED:
    return TL_EUNAUTHORIZED;
  case GRPC_STATUS_INVALID_ARGUMENT:
  case GRPC_STATUS_FAILED_PRECONDITION:
  case GRPC_STATUS_OUT_OF_RANGE:
  case GRPC_STATUS_UNIMPLEMENTED:
    return TL_EINVAL;
  case GRPC_STATUS_NOT_FOUND:
    return TL_ENOTFOUND;
  case GRPC_STATUS_ALREADY_EXISTS:
    return TL_ECONFLICT;
  case GRPC_STATUS_RESOURCE_EXHAUSTED:
    return TL_ETOOBIG;
  case GRPC_STATUS_UNAVAILABLE:
  case GRPC_STATUS_DEADLINE_EXCEEDED:
    return TL_EUNAVAILABLE;
  case GRPC_STATUS_CANCELLED:
    return TL_ECANCELED;
  default:
    return TL_EIO;
  }
}

/* Starts an operation: clears the last error and a stale cancellation,
 * fixes the deadline shared by the operation's calls. */
static void op_begin(tl_fc *c) {
  c->err[0] = 0;
  c->status = 0;
  pthread_mutex_lock(&c->mu);
  c->cancelled = false;
  pthread_mutex_unlock(&c->mu);
  if (c->timeout_ms > 0)
    c->deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
  else
    c->deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
}

/* ---- one call -------------------------------------------------------------
 */

#define MAX_MD 4

typedef struct fcall {
  tl_fc *c;
  grpc_completion_queue *cq;
  grpc_call *call;
  grpc_metadata md[MAX_MD];
  size_t nmd;
  grpc_metadata_array init_md, trail_md;
  bool got_init_md;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;
  int local;                /* a client-side failure of a batch */
  int tag_send, tag_status; /* addresses used as tags */
} fcall;

static void add_md(fcall *f, const char *key, const char *value) {
  f->md[f->nmd].key = grpc_slice_from_static_string(key);
  f->md[f->nmd].value = grpc_slice_from_copied_string(value);
  f->nmd++;
}

/* Plucks the completion of the batch tagged `tag`. */
static bool pluck(fcall *f, void *tag) {
  grpc_event ev = grpc_completion_queue_pluck(
      f->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Creates the call, sends the initial metadata and starts the status
 * batch. `auth` overrides the authorization header (the Handshake). On
 * failure the call is cleaned up already. */
static int call_start(tl_fc *c, fcall *f, const char *method,
                      const char *auth) {
  memset(f, 0, sizeof *f);
  f->c = c;
  f->details = grpc_empty_slice();
  grpc_metadata_array_init(&f->init_md);
  grpc_metadata_array_init(&f->trail_md);
  f->cq = grpc_completion_queue_create_for_pluck(NULL);
  char path[128];
  snprintf(path, sizeof path, SERVICE "%s", method);
  grpc_slice method_slice = grpc_slice_from_copied_string(path);
  f->call =
      grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, f->cq,
                               method_slice, NULL, c->deadline, NULL);
  grpc_slice_unref(method_slice);
  if (!f->call) {
    grpc_completion_queue_shutdown(f->cq);
    grpc_completion_queue_destroy(f->cq);
    grpc_metadata_array_destroy(&f->init_md);
    grpc_metadata_array_destroy(&f->trail_md);
    set_err(c, 0, "cannot create a gRPC call");
    return TL_ENOMEM;
  }
  pthread_mutex_lock(&c->mu);
  c->call = f->call;
  if (c->cancelled)
    grpc_call_cancel(f->call, NULL);
  pthread_mutex_unlock(&c->mu);

  char buf[512];
  if (auth) {
    add_md(f, "authorization", auth);
  } else if (c->token) {
    char *v = malloc(strlen(c->token) + 8);
    if (v) {
      sprintf(v, "Bearer %s", c->token);
      add_md(f, "authorization", v);
      free(v);
    }
  }
  if (c->range_begin)
    add_md(f, "query_range_begin", c->range_begin);
  if (c->range_end)
    add_md(f, "query_range_end", c->range_end);
  if (c->limit >= 0) {
    snprintf(buf, sizeof buf, "%lld", (long long)c->limit);
    add_md(f, "limit", buf);
  }

  /* The status is asked for before anything is sent, so that an answer
   * that is a status alone (Trailers-Only, e.g. UNAUTHENTICATED) always
   * finds the op waiting. (A call still hung until its deadline now and
   * then when the server answered before reading the request and reset
   * the stream: the server now reads it first, see absorb_request in
   * server.c.) */
  grpc_op ops[1];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[0].data.recv_status_on_client.trailing_metadata = &f->trail_md;
  ops[0].data.recv_status_on_client.status = &f->status;
  ops[0].data.recv_status_on_client.status_details = &f->details;
  ops[0].data.recv_status_on_client.error_string = &f->error_string;
  grpc_call_error e =
      grpc_call_start_batch(f->call, ops, 1, &f->tag_status, NULL);
  if (e != GRPC_CALL_OK) {
    /* Cannot happen with a fresh call; make finish() see an error. */
    grpc_call_cancel(f->call, NULL);
    f->status = GRPC_STATUS_INTERNAL;
    f->tag_status = -1;
    return 0;
  }
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = f->nmd;
  ops[0].data.send_initial_metadata.metadata = f->md;
  if (grpc_call_start_batch(f->call, ops, 1, &f->tag_send, NULL) ==
      GRPC_CALL_OK)
    pluck(f, &f->tag_send); /* a failure shows in the status */
  return 0;
}

/* Records a client-side failure and cancels the call so its status
 * arrives; the operation then fails with `rc`. */
static void fail_local(fcall *f, int rc, const char *why) {
  if (!f->local) {
    f->local = rc;
    set_err(f->c, 0, "%s (%s)", why, tl_strerror(rc));
  }
  grpc_call_cancel(f->call, NULL);
}

/* Sends one message (owned bb, destroyed here), optionally closing the
 * sending side. Returns false when the call is over (see finish). */
static bool call_send(fcall *f, grpc_byte_buffer *bb, bool close) {
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (bb) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    n++;
  }
  if (close)
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  bool ok = false;
  if (!bb && !close) {
    fail_local(f, TL_ENOMEM, "out of memory");
  } else if (grpc_call_start_batch(f->call, ops, n, &f->tag_send, NULL) !=
             GRPC_CALL_OK) {
    fail_local(f, TL_EIO, "gRPC refused a send batch");
  } else {
    ok = pluck(f, &f->tag_send); /* false: the status says why */
  }
  if (bb)
    grpc_byte_buffer_destroy(bb);
  return ok;
}

/* Sends a protobuf-c message. */
static bool call_send_msg(fcall *f, const ProtobufCMessage *m, bool close) {
  tl_bytes b;
  tl_bytes_init(&b, TL_FLIGHT_MSG_MAX);
  int rc = tl_flight_msg_pack(m, &b);
  if (rc) {
    tl_bytes_free(&b);
    fail_local(f, rc, "cannot encode the request");
    return false;
  }
  bool ok = call_send(f, tl_grpc_bb_copy(b.p, b.len), close);
  tl_bytes_free(&b);
  return ok;
}

/* Receives the next message into *bb (owned by the caller). Returns false
 * at the end of the stream or when the call failed (finish tells which). */
static bool recv_bb(fcall *f, grpc_byte_buffer **bb) {
  grpc_op ops[2];
  size_t n = 0;
  *bb = NULL;
  memset(ops, 0, sizeof ops);
  if (!f->got_init_md) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &f->init_md;
    n++;
    f->got_init_md = true;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = bb;
  n++;
  if (grpc_call_start_batch(f->call, ops, n, &f->tag_send, NULL) !=
      GRPC_CALL_OK) {
    fail_local(f, TL_EIO, "gRPC refused a receive batch");
    return false;
  }
  if (!pluck(f, &f->tag_send) || !*bb) {
    if (*bb)
      grpc_byte_buffer_destroy(*bb);
    *bb = NULL;
    return false;
  }
  return true;
}

/* Receives the next message. Returns 1 with *out set (free it), 0 at the
 * end of the stream or when the call failed (finish tells which), or a
 * negative TL_E* code for a message over the cap. */
static int call_recv(fcall *f, tl_grpc_bytes *out) {
  grpc_byte_buffer *bb;
  if (!recv_bb(f, &bb))
    return 0;
  int rc = tl_grpc_bytes_read(bb, f->c->max_recv, out);
  grpc_byte_buffer_destroy(bb);
  if (rc) {
    set_err(f->c, 0, "a reply message could not be read (%s)", tl_strerror(rc));
    return rc;
  }
  atomic_fetch_add(&f->c->bytes_in, out->n);
  return 1;
}

/* call_recv for large messages: *out lists the pieces gRPC received the
 * message in, so that nothing is copied before the reader copies what it
 * keeps. */
static int call_recv_parts(fcall *f, tl_grpc_parts *out) {
  grpc_byte_buffer *bb;
  tl_grpc_parts_clear(out);
  if (!recv_bb(f, &bb))
    return 0;
  int rc = tl_grpc_parts_read(bb, f->c->max_recv, out);
  if (rc) {
    set_err(f->c, 0, "a reply message could not be read (%s)", tl_strerror(rc));
    return rc;
  }
  atomic_fetch_add(&f->c->bytes_in, out->len);
  return 1;
}

/* Ends the call: cancels it when `rc` (the caller's own outcome) is an
 * error, waits for the status, and turns a non-OK status into the
 * operation's error. Returns the final code. The metadata stays readable
 * until call_free. */
static int call_finish(fcall *f, int rc) {
  tl_fc *c = f->c;
  if (!rc)
    rc = f->local;
  if (rc)
    grpc_call_cancel(f->call, NULL);
  if (f->tag_status != -1)
    pluck(f, &f->tag_status);
  pthread_mutex_lock(&c->mu);
  bool cancelled = c->cancelled;
  c->call = NULL;
  pthread_mutex_unlock(&c->mu);

  if (cancelled) {
    set_err(c, GRPC_STATUS_CANCELLED, "CANCELLED: the query was cancelled");
    rc = TL_ECANCELED;
  } else if (f->status != GRPC_STATUS_OK && !rc) {
    size_t dn = GRPC_SLICE_LENGTH(f->details);
    const char *msg = (const char *)GRPC_SLICE_START_PTR(f->details);
    if (!dn && f->error_string) {
      msg = f->error_string;
      dn = strlen(msg);
    }
    set_err(c, (int)f->status, "%s: %.*s", tl_grpc_status_name(f->status),
            (int)dn, msg);
    rc = map_status(f->status);
  } else if (!rc && !c->err[0]) {
    c->status = 0;
  }
  return rc;
}

static void call_free(fcall *f) {
  grpc_call_unref(f->call);
  for (size_t i = 0; i < f->nmd; i++) {
    grpc_slice_unref(f->md[i].key);
    grpc_slice_unref(f->md[i].value);
  }
  grpc_slice_unref(f->details);
  if (f->error_string)
    gpr_free((void *)f->error_string);
  grpc_metadata_array_destroy(&f->init_md);
  grpc_metadata_array_destroy(&f->trail_md);
  grpc_completion_queue_shutdown(f->cq);
  grpc_completion_queue_destroy(f->cq);
}

/* finish + free, for calls whose metadata nobody reads. */
static int call_done(fcall *f, int rc) {
  rc = call_finish(f, rc);
  call_free(f);
  return rc;
}

/* ---- connect, handshake, settings ----------------------------------------
 */

static int parse_url(const char *url, bool *tls, const char **target) {
  static const struct {
    const char *scheme;
    bool tls;
  } schemes[] = {
      {"grpc://", false}, {"grpc+tcp://", false}, {"grpc+tls://", true}};
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    size_t n = strlen(schemes[i].scheme);
    if (!strncmp(url, schemes[i].scheme, n)) {
      *tls = schemes[i].tls;
      *target = url + n;
      /* host:port, nothing after: no path, no empty host or port. */
      const char *colon = strrchr(*target, ':');
      if (!colon || colon == *target || !colon[1] || strchr(*target, '/'))
        return TL_EINVAL;
      for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
          return TL_EINVAL;
      return 0;
    }
  }
  return TL_EINVAL;
}

int tl_fc_connect(tl_fc **out, const tl_fc_opts *o, char *err, size_t errcap) {
  bool tls = false;
  const char *target = NULL;
  char *pem = NULL;
  int rc;
  if (!o || !o->url || parse_url(o->url, &tls, &target)) {
    snprintf(err, errcap,
             "bad server URL '%s' (want grpc://host:port or "
             "grpc+tls://host:port)",
             o && o->url ? o->url : "");
    return TL_EINVAL;
  }
  if (tls && o->ca_file) {
    uint8_t *p;
    size_t n;
    rc = tl_read_file(o->ca_file, 1u << 20, &p, &n);
    if (rc) {
      snprintf(err, errcap, "cannot read CA file %s: %s", o->ca_file,
               tl_strerror(rc));
      return rc;
    }
    pem = malloc(n + 1);
    if (!pem) {
      free(p);
      snprintf(err, errcap, "out of memory");
      return TL_ENOMEM;
    }
    memcpy(pem, p, n);
    pem[n] = 0;
    free(p);
  }
  tl_fc *c = calloc(1, sizeof *c);
  if (!c) {
    free(pem);
    snprintf(err, errcap, "out of memory");
    return TL_ENOMEM;
  }
  pthread_mutex_init(&c->mu, NULL);
  c->limit = -1;
  c->timeout_ms = o->timeout_ms;
  c->max_recv = o->max_recv ? o->max_recv : TL_FC_MAX_RECV;
  atomic_init(&c->bytes_in, 0);
  grpc_init();

  grpc_arg args[2];
  memset(args, 0, sizeof args);
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer =
      c->max_recv > INT32_MAX ? INT32_MAX : (int)c->max_recv;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = -1;
  grpc_channel_args cargs = {2, args};
  grpc_channel_credentials *creds =
      tls ? grpc_ssl_credentials_create(pem, NULL, NULL, NULL)
          : grpc_insecure_credentials_create();
  free(pem);
  c->ch = creds ? grpc_channel_create(target, creds, &cargs) : NULL;
  if (creds)
    grpc_channel_credentials_release(creds);
  if (!c->ch) {
    snprintf(err, errcap, "cannot create a gRPC channel to %s", o->url);
    rc = TL_EINVAL;
    goto fail;
  }
  if (o->token && tl_fc_set_token(c, o->token)) {
    snprintf(err, errcap, "out of memory");
    rc = TL_ENOMEM;
    goto fail;
  }
  if (o->user) {
    rc = tl_fc_handshake(c, o->user, o->password ? o->password : "");
    if (rc) {
      snprintf(err, errcap, "%s", c->err);
      goto fail;
    }
  }
  *out = c;
  return 0;
fail:
  tl_fc_close(c);
  return rc;
}

void tl_fc_close(tl_fc *c) {
  if (!c)
    return;
  if (c->ch)
    grpc_channel_destroy(c->ch);
  free(c->token);
  free(c->range_begin);
  free(c->range_end);
  pthread_mutex_destroy(&c->mu);
  free(c);
  grpc_shutdown();
}

/* The token of an "authorization: Bearer <token>" header, if any. */
static char *find_bearer(const grpc_metadata_array *md) {
  for (size_t i = 0; i < md->count; i++) {
    if (!tl_grpc_slice_eq(md->metadata[i].key, "authorization"))
      continue;
    const char *v = (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
    size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
    if (n > 7 && !strncasecmp(v, "Bearer ", 7)) {
      char *t = malloc(n - 7 + 1);
      if (t) {
        memcpy(t, v + 7, n - 7);
        t[n - 7] = 0;
      }
      return t;
    }
  }
  return NULL;
}

int tl_fc_handshake(tl_fc *c, const char *user, const char *password) {
  op_begin(c);
  size_t un = strlen(user), pn = strlen(password);
  if (un + pn > 4096) {
    set_err(c, 0, "user name or password too long");
    return TL_EINVAL;
  }
  uint8_t *cred = malloc(un + pn + 2);
  char *auth = malloc(6 + 4 * ((un + pn + 1 + 2) / 3) + 1);
  if (!cred || !auth) {
    free(cred);
    free(auth);
    set_err(c, 0, "out of memory");
    return TL_ENOMEM;
  }
  memcpy(cred, user, un);
  cred[un] = ':';
  memcpy(cred + un + 1, password, pn);
  memcpy(auth, "Basic ", 6);
  base64(cred, un + pn + 1, auth + 6);
  free(cred);

  fcall f;
  int rc = call_start(c, &f, "Handshake", auth);
  free(auth);
  if (rc)
    return rc;
  Arrow__Flight__Protocol__HandshakeRequest req =
      ARROW__FLIGHT__PROTOCOL__HANDSHAKE_REQUEST__INIT;
  char *payload_token = NULL;
  if (call_send_msg(&f, &req.base, true)) {
    tl_grpc_bytes m;
    int got;
    while (!rc && (got = call_recv(&f, &m)) != 0) {
      if (got < 0) {
        rc = got;
        break;
      }
      Arrow__Flight__Protocol__HandshakeResponse *r =
          arrow__flight__protocol__handshake_response__unpack(NULL, m.n, m.p);
      if (r && r->payload.len && !payload_token &&
          tl_utf8_valid(r->payload.data, r->payload.len)) {
        payload_token = malloc(r->payload.len + 1);
        if (payload_token) {
          memcpy(payload_token, r->payload.data, r->payload.len);
          payload_token[r->payload.len] = 0;
        }
      }
      if (r)
        arrow__flight__protocol__handshake_response__free_unpacked(r, NULL);
      tl_grpc_bytes_free(&m);
    }
  }
  /* The end of the stream, or a failure, is settled by the status. */
  rc = call_finish(&f, rc);
  if (!rc) {
    char *t = find_bearer(&f.init_md);
    if (!t)
      t = find_bearer(&f.trail_md);
    if (!t) {
      t = payload_token;
      payload_token = NULL;
    }
    /* No token: the server does not need one for later calls. */
    if (t) {
      free(c->token);
      c->token = t;
    }
  }
  call_free(&f);
  free(payload_token);
  return rc;
}

int tl_fc_set_token(tl_fc *c, const char *token) {
  char *t = NULL;
  if (token && !(t = dup_str(token)))
    return TL_ENOMEM;
  free(c->token);
  c->token = t;
  return 0;
}

const char *tl_fc_token(const tl_fc *c) {
  return c->token;
}

int tl_fc_set_range(tl_fc *c, const char *begin, const char *end) {
  char *b = NULL, *e = NULL;
  if ((begin && !(b = dup_str(begin))) || (end && !(e = dup_str(end)))) {
    free(b);
    return TL_ENOMEM;
  }
  free(c->range_begin);
  free(c->range_end);
  c->range_begin = b;
  c->range_end = e;
  return 0;
}

void tl_fc_set_limit(tl_fc *c, int64_t limit) {
  c->limit = limit < 0 ? -1 : limit;
}

void tl_fc_set_timeout(tl_fc *c, int64_t timeout_ms) {
  c->timeout_ms = timeout_ms;
}

void tl_fc_cancel(tl_fc *c) {
  pthread_mutex_lock(&c->mu);
  c->cancelled = true;
  if (c->call)
    grpc_call_cancel(c->call, NULL);
  pthread_mutex_unlock(&c->mu);
}

int tl_fc_status(const tl_fc *c) {
  return c->status;
}

const char *tl_fc_errmsg(const tl_fc *c) {
  return c->err;
}

uint64_t tl_fc_bytes_received(const tl_fc *c) {
  return atomic_load(&((tl_fc *)c)->bytes_in);
}

/* ---- DoGet ----------------------------------------------------------------
 */

/* Receiving state of one operation: the IPC reader of the current stream
 * and whether the sink has seen the schema (once per operation). */
typedef struct getter {
  tl_fc *c;
  const tl_fc_sink *sink;
  bool schema_sent;
} getter;

/* A sink callback stopped the operation with `rc`. */
static int sink_failed(tl_fc *c, int rc) {
  if (!c->err[0])
    set_err(c, 0, "the result handler stopped (%s)", tl_strerror(rc));
  return rc;
}

/* ---- FlightData in pieces ------------------------------------------------
 * A large FlightData arrives as tens of slices. Its small fields are
 * gathered (rarely: they are usually within the first slice) and its body
 * is handed to the IPC reader as the list of pieces it spans. */

/* Reusable buffers of a DoGet: the message, a gathered header, the body's
 * pieces. Nothing is allocated per message once they have grown. */
typedef struct fd_scratch {
  tl_grpc_parts m;
  uint8_t *hdr;
  size_t hcap;
  tl_slice *body;
  size_t bcap;
} fd_scratch;

static void fd_scratch_free(fd_scratch *x) {
  tl_grpc_parts_free(&x->m);
  free(x->hdr);
  free(x->body);
}

/* The data_header and data_body of the message in x->m: the header
 * contiguous (*hdr points into the message or x->hdr), the body as
 * pieces of the message (x->body has room for one per piece). Returns 0,
 * TL_EMALFORMED/TL_ETRUNCATED or TL_ENOMEM. */
static int fd_split(fd_scratch *x, const uint8_t **hdr, size_t *hn,
                    const tl_slice **body, size_t *nbody) {
  const tl_grpc_parts *m = &x->m;
  tl_flight_data_loc loc;
  int rc = tl_flight_data_locate(m->part, m->n, &loc);
  if (rc)
    return rc;
  size_t ho = loc.off[TL_FD_HEADER];
  *hn = loc.len[TL_FD_HEADER];
  *hdr = NULL;
  tl_slice h;
  if (*hn && tl_slices_range(m->part, m->n, ho, *hn, &h, 1) == 1) {
    *hdr = h.p; /* within one piece: the usual case */
  } else if (*hn) {
    if (*hn > x->hcap) {
      uint8_t *nh = realloc(x->hdr, *hn);
      if (!nh)
        return TL_ENOMEM;
      x->hdr = nh;
      x->hcap = *hn;
    }
    tl_slices_copy(m->part, m->n, ho, *hn, x->hdr);
    *hdr = x->hdr;
  }
  *body = x->body;
  *nbody = tl_slices_range(m->part, m->n, loc.off[TL_FD_BODY],
                           loc.len[TL_FD_BODY], x->body, x->bcap);
  return 0;
}

/* Feeds one FlightData message (in x->m) to the reader and the sink. */
static int feed(getter *g, tl_ipc_reader *r, fd_scratch *x) {
  const uint8_t *hdr;
  const tl_slice *body;
  size_t hn, nbody;
  char err[512] = "";
  /* The body spans at most every piece. */
  if (x->m.n > x->bcap || !x->body) {
    size_t ncap = x->m.n > 64 ? x->m.n : 64;
    tl_slice *nb = realloc(x->body, ncap * sizeof *nb);
    if (!nb) {
      set_err(g->c, 0, "out of memory");
      return TL_ENOMEM;
    }
    x->body = nb;
    x->bcap = ncap;
  }
  int rc = fd_split(x, &hdr, &hn, &body, &nbody);
  if (rc == TL_ENOMEM) {
    set_err(g->c, 0, "out of memory");
    return rc;
  }
  if (rc) {
    set_err(g->c, 0, "a FlightData message is malformed (%s)", tl_strerror(rc));
    return TL_EMALFORMED;
  }
  if (!hn)
    return 0; /* app_metadata only */
  int kind = 0;
  rc =
      tl_ipc_reader_feed_parts(r, hdr, hn, body, nbody, &kind, err, sizeof err);
  if (rc) {
    set_err(g->c, 0, "bad Arrow IPC data from the server: %s",
            err[0] ? err : tl_strerror(rc));
    return rc;
  }
  const struct ArrowSchema *schema = tl_ipc_reader_schema(r);
  if (kind == TL_IPC_SCHEMA && !g->schema_sent) {
    g->schema_sent = true;
    if (g->sink && g->sink->on_schema &&
        (rc = g->sink->on_schema(g->sink->ctx, schema)))
      return sink_failed(g->c, rc);
  } else if (kind == TL_IPC_BATCH) {
    struct ArrowArray a;
    if (tl_ipc_reader_take(r, &a))
      return 0;
    if (g->sink && g->sink->on_batch)
      rc = g->sink->on_batch(g->sink->ctx, schema, &a);
    if (a.release)
      a.release(&a);
    return rc ? sink_failed(g->c, rc) : 0;
  }
  return 0;
}

static int do_get(getter *g, const uint8_t *ticket, size_t n) {
  tl_fc *c = g->c;
  tl_ipc_reader *r = NULL;
  fcall f;
  int rc = tl_ipc_reader_new(&r);
  if (rc) {
    set_err(c, 0, "out of memory");
    return rc;
  }
  rc = call_start(c, &f, "DoGet", NULL);
  if (rc) {
    tl_ipc_reader_free(r);
    return rc;
  }
  Arrow__Flight__Protocol__Ticket t = ARROW__FLIGHT__PROTOCOL__TICKET__INIT;
  t.ticket.data = (uint8_t *)ticket;
  t.ticket.len = n;
  fd_scratch x;
  memset(&x, 0, sizeof x);
  if (call_send_msg(&f, &t.base, true)) {
    int got;
    while (!rc && (got = call_recv_parts(&f, &x.m)) != 0) {
      if (got < 0) {
        rc = got;
        break;
      }
      rc = feed(g, r, &x);
    }
  }
  fd_scratch_free(&x);
  rc = call_done(&f, rc);
  /* A stream that ended without a schema still tells the sink nothing;
   * an empty result is a schema with no batch. */
  tl_ipc_reader_free(r);
  return rc;
}

int tl_fc_do_get(tl_fc *c, const uint8_t *ticket, size_t n,
                 const tl_fc_sink *sink) {
  getter g = {c, sink, false};
  op_begin(c);
  return do_get(&g, ticket, n);
}

/* ---- GetFlightInfo --------------------------------------------------------
 */

static int get_flight_info(tl_fc *c, const ProtobufCMessage *cmd,
                           Arrow__Flight__Protocol__FlightInfo **info) {
  tl_bytes any;
  tl_bytes_init(&any, TL_FLIGHT_MSG_MAX);
  int rc = tl_flight_any_pack(cmd, &any);
  if (rc) {
    tl_bytes_free(&any);
    set_err(c, 0, "cannot pack the command (%s)", tl_strerror(rc));
    return rc;
  }
  Arrow__Flight__Protocol__FlightDescriptor d =
      ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
  d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
  d.cmd.data = any.p;
  d.cmd.len = any.len;
  fcall f;
  rc = call_start(c, &f, "GetFlightInfo", NULL);
  if (rc) {
    tl_bytes_free(&any);
    return rc;
  }
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  if (call_send_msg(&f, &d.base, true)) {
    tl_grpc_bytes m;
    int got = call_recv(&f, &m);
    if (got < 0)
      rc = got;
    if (got == 1) {
      fi = arrow__flight__protocol__flight_info__unpack(NULL, m.n, m.p);
      if (!fi) {
        set_err(c, 0, "the server's FlightInfo is malformed");
        rc = TL_EMALFORMED;
      }
      tl_grpc_bytes_free(&m);
    }
  }
  tl_bytes_free(&any);
  rc = call_done(&f, rc);
  if (!rc && !fi) {
    set_err(c, 0, "the server sent no FlightInfo");
    rc = TL_EMALFORMED;
  }
  if (rc) {
    if (fi)
      arrow__flight__protocol__flight_info__free_unpacked(fi, NULL);
    return rc;
  }
  *info = fi;
  return 0;
}

int tl_fc_get_flight_info(tl_fc *c, const ProtobufCMessage *cmd,
                          Arrow__Flight__Protocol__FlightInfo **info) {
  op_begin(c);
  return get_flight_info(c, cmd, info);
}

/* GetFlightInfo then DoGet of every endpoint, within the current
 * operation. Endpoints with other locations are fetched here too: a
 * tracelake server hands out only its own. */
static int command(tl_fc *c, const ProtobufCMessage *cmd,
                   const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__FlightInfo *fi = NULL;
  int rc = get_flight_info(c, cmd, &fi);
  if (rc)
    return rc;
  getter g = {c, sink, false};
  for (size_t i = 0; i < fi->n_endpoint && !rc; i++) {
    const Arrow__Flight__Protocol__FlightEndpoint *e = fi->endpoint[i];
    if (!e->ticket) {
      set_err(c, 0, "an endpoint of the FlightInfo has no ticket");
      rc = TL_EMALFORMED;
      break;
    }
    rc = do_get(&g, e->ticket->ticket.data, e->ticket->ticket.len);
  }
  /* No endpoint or only empty streams: the schema still comes from the
   * FlightInfo, so the caller can print column names. */
  if (!rc && !g.schema_sent && fi->schema.len && sink && sink->on_schema) {
    tl_ipc_reader *r = NULL;
    char err[256] = "";
    rc = tl_ipc_reader_new(&r);
    if (!rc)
      rc = tl_ipc_reader_feed_stream(r, fi->schema.data, fi->schema.len, NULL,
                                     NULL, err, sizeof err);
    if (!rc && tl_ipc_reader_schema(r))
      rc = sink->on_schema(sink->ctx, tl_ipc_reader_schema(r));
    else if (rc)
      set_err(c, 0, "the FlightInfo's schema is malformed: %s", err);
    tl_ipc_reader_free(r);
  }
  arrow__flight__protocol__flight_info__free_unpacked(fi, NULL);
  return rc;
}

int tl_fc_command(tl_fc *c, const ProtobufCMessage *cmd,
                  const tl_fc_sink *sink) {
  op_begin(c);
  return command(c, cmd, sink);
}

int tl_fc_execute(tl_fc *c, const char *sql, const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__Sql__CommandStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_STATEMENT_QUERY__INIT;
  q.query = (char *)sql;
  return tl_fc_command(c, &q.base, sink);
}

int tl_fc_get_tables(tl_fc *c, const char *catalog, const char *schema_pattern,
                     const char *table_pattern, bool include_schema,
                     const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__Sql__CommandGetTables q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES__INIT;
  if (catalog) {
    q._catalog_case =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES___CATALOG_CATALOG;
    q.catalog = (char *)catalog;
  }
  if (schema_pattern) {
    q._db_schema_filter_pattern_case =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES___DB_SCHEMA_FILTER_PATTERN_DB_SCHEMA_FILTER_PATTERN;
    q.db_schema_filter_pattern = (char *)schema_pattern;
  }
  if (table_pattern) {
    q._table_name_filter_pattern_case =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLES___TABLE_NAME_FILTER_PATTERN_TABLE_NAME_FILTER_PATTERN;
    q.table_name_filter_pattern = (char *)table_pattern;
  }
  q.include_schema = include_schema;
  return tl_fc_command(c, &q.base, sink);
}

int tl_fc_get_catalogs(tl_fc *c, const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__Sql__CommandGetCatalogs q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_CATALOGS__INIT;
  return tl_fc_command(c, &q.base, sink);
}

int tl_fc_get_db_schemas(tl_fc *c, const char *catalog,
                         const char *schema_pattern, const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__Sql__CommandGetDbSchemas q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_DB_SCHEMAS__INIT;
  if (catalog) {
    q._catalog_case =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_DB_SCHEMAS___CATALOG_CATALOG;
    q.catalog = (char *)catalog;
  }
  if (schema_pattern) {
    q._db_schema_filter_pattern_case =
        ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_DB_SCHEMAS___DB_SCHEMA_FILTER_PATTERN_DB_SCHEMA_FILTER_PATTERN;
    q.db_schema_filter_pattern = (char *)schema_pattern;
  }
  return tl_fc_command(c, &q.base, sink);
}

int tl_fc_get_table_types(tl_fc *c, const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__Sql__CommandGetTableTypes q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_TABLE_TYPES__INIT;
  return tl_fc_command(c, &q.base, sink);
}

int tl_fc_get_sql_info(tl_fc *c, const uint32_t *ids, size_t n,
                       const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__Sql__CommandGetSqlInfo q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_GET_SQL_INFO__INIT;
  q.n_info = n;
  q.info = (uint32_t *)ids;
  return tl_fc_command(c, &q.base, sink);
}

/* ---- DoAction -------------------------------------------------------------
 */

static int do_action(tl_fc *c, const char *type, const uint8_t *body,
                     size_t body_n,
                     int (*on_result)(void *ctx, const uint8_t *p, size_t n),
                     void *ctx) {
  fcall f;
  int rc = call_start(c, &f, "DoAction", NULL);
  if (rc)
    return rc;
  Arrow__Flight__Protocol__Action a = ARROW__FLIGHT__PROTOCOL__ACTION__INIT;
  a.type = (char *)type;
  a.body.data = (uint8_t *)body;
  a.body.len = body_n;
  if (call_send_msg(&f, &a.base, true)) {
    tl_grpc_bytes m;
    int got;
    while (!rc && (got = call_recv(&f, &m)) != 0) {
      if (got < 0) {
        rc = got;
        break;
      }
      Arrow__Flight__Protocol__Result *r =
          arrow__flight__protocol__result__unpack(NULL, m.n, m.p);
      if (!r) {
        set_err(c, 0, "a DoAction Result is malformed");
        rc = TL_EMALFORMED;
      } else if (on_result) {
        rc = on_result(ctx, r->body.data, r->body.len);
      }
      if (r)
        arrow__flight__protocol__result__free_unpacked(r, NULL);
      tl_grpc_bytes_free(&m);
    }
  }
  return call_done(&f, rc);
}

int tl_fc_do_action(tl_fc *c, const char *type, const uint8_t *body,
                    size_t body_n,
                    int (*on_result)(void *ctx, const uint8_t *p, size_t n),
                    void *ctx) {
  op_begin(c);
  return do_action(c, type, body, body_n, on_result, ctx);
}

/* ---- prepared statements --------------------------------------------------
 */

typedef struct prep_ctx {
  tl_fc *c;
  tl_fc_prepared *p;
  bool got;
} prep_ctx;

static int set_bytes(tl_bytes *b, const uint8_t *p, size_t n) {
  b->len = 0;
  return tl_bytes_append(b, p, n);
}

static int on_prepared(void *ctx, const uint8_t *p, size_t n) {
  prep_ctx *x = ctx;
  ProtobufCMessage *m = NULL;
  int rc = tl_flight_any_unpack_as(
      p, n, TL_FLIGHT_CMD_CREATE_PREPARED_STATEMENT_RESULT, &m);
  if (rc) {
    set_err(x->c, 0,
            "the CreatePreparedStatement result is not an "
            "ActionCreatePreparedStatementResult");
    return TL_EMALFORMED;
  }
  Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementResult *r =
      (Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementResult *)m;
  rc = set_bytes(&x->p->handle, r->prepared_statement_handle.data,
                 r->prepared_statement_handle.len);
  if (!rc)
    rc = set_bytes(&x->p->dataset_schema, r->dataset_schema.data,
                   r->dataset_schema.len);
  if (!rc)
    rc = set_bytes(&x->p->parameter_schema, r->parameter_schema.data,
                   r->parameter_schema.len);
  protobuf_c_message_free_unpacked(m, NULL);
  if (rc)
    set_err(x->c, 0, "out of memory");
  x->got = true;
  return rc;
}

static void prepared_free(tl_fc_prepared *p) {
  if (!p)
    return;
  tl_bytes_free(&p->handle);
  tl_bytes_free(&p->dataset_schema);
  tl_bytes_free(&p->parameter_schema);
  free(p);
}

int tl_fc_prepare(tl_fc *c, const char *sql, tl_fc_prepared **out) {
  op_begin(c);
  tl_fc_prepared *p = calloc(1, sizeof *p);
  if (!p) {
    set_err(c, 0, "out of memory");
    return TL_ENOMEM;
  }
  tl_bytes_init(&p->handle, TL_FLIGHT_MSG_MAX);
  tl_bytes_init(&p->dataset_schema, TL_FLIGHT_MSG_MAX);
  tl_bytes_init(&p->parameter_schema, TL_FLIGHT_MSG_MAX);
  Arrow__Flight__Protocol__Sql__ActionCreatePreparedStatementRequest q =
      ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CREATE_PREPARED_STATEMENT_REQUEST__INIT;
  q.query = (char *)sql;
  tl_bytes body;
  tl_bytes_init(&body, TL_FLIGHT_MSG_MAX);
  int rc = tl_flight_any_pack(&q.base, &body);
  if (rc) {
    set_err(c, 0, "cannot pack the request (%s)", tl_strerror(rc));
  } else {
    prep_ctx x = {c, p, false};
    rc = do_action(c, "CreatePreparedStatement", body.p, body.len, on_prepared,
                   &x);
    if (!rc && !x.got) {
      set_err(c, 0, "CreatePreparedStatement returned no result");
      rc = TL_EMALFORMED;
    }
  }
  tl_bytes_free(&body);
  if (rc) {
    prepared_free(p);
    return rc;
  }
  *out = p;
  return 0;
}

tl_slice tl_fc_prepared_handle(const tl_fc_prepared *p) {
  tl_slice s = {p->handle.p, p->handle.len};
  return s;
}

tl_slice tl_fc_prepared_dataset_schema(const tl_fc_prepared *p) {
  tl_slice s = {p->dataset_schema.p, p->dataset_schema.len};
  return s;
}

tl_slice tl_fc_prepared_parameter_schema(const tl_fc_prepared *p) {
  tl_slice s = {p->parameter_schema.p, p->parameter_schema.len};
  return s;
}

/* DoPut sender: turns each IPC message from the writer into FlightData,
 * the first one carrying the descriptor. */
typedef struct putter {
  fcall *f;
  tl_slice descriptor;
  bool first;
  bool dead; /* the call ended early: stop sending */
} putter;

static int put_emit(void *ctx, const uint8_t *header, size_t header_len,
                    uint8_t *body, size_t body_len, bool *take_body) {
  putter *u = ctx;
  tl_flight_data_parts parts;
  memset(&parts, 0, sizeof parts);
  if (u->first)
    parts.descriptor = u->descriptor;
  u->first = false;
  parts.header.p = header;
  parts.header.n = header_len;
  parts.body_len = body_len;
  size_t cap = tl_flight_data_prefix_size(&parts), n = 0;
  uint8_t *pre = malloc(cap ? cap : 1);
  if (!pre)
    return TL_ENOMEM;
  int rc = tl_flight_data_prefix(&parts, pre, cap, &n);
  if (rc) {
    free(pre);
    return rc;
  }
  /* The body is handed to gRPC without a copy; it frees it when done. */
  *take_body = body_len > 0;
  grpc_byte_buffer *bb = tl_grpc_bb_prefix_body(pre, n, body, body_len,
                                                body_len ? free : NULL, body);
  free(pre);
  if (!call_send(u->f, bb, false)) {
    u->dead = true;
    return TL_EIO;
  }
  return 0;
}

/* Reads the DoPutPreparedStatementResult in a PutResult's app_metadata,
 * sent either as is or packed in an Any, and adopts its handle. */
static int adopt_put_result(tl_fc *c, tl_fc_prepared *p, const uint8_t *md,
                            size_t n) {
  if (!n)
    return 0;
  ProtobufCMessage *m = NULL;
  tl_flight_any any;
  const uint8_t *raw = md;
  size_t rawn = n;
  if (!tl_flight_any_decode(md, n, &any) &&
      tl_flight_cmd_from_type_url((const char *)any.type_url.p,
                                  any.type_url.n) ==
          TL_FLIGHT_CMD_DO_PUT_PREPARED_STATEMENT_RESULT) {
    raw = any.value.p;
    rawn = any.value.n;
  }
  static const uint8_t none[1];
  m = protobuf_c_message_unpack(
      &arrow__flight__protocol__sql__do_put_prepared_statement_result__descriptor,
      NULL, rawn, rawn ? raw : none);
  if (!m) {
    set_err(c, 0, "the DoPut result is not a DoPutPreparedStatementResult");
    return TL_EMALFORMED;
  }
  Arrow__Flight__Protocol__Sql__DoPutPreparedStatementResult *r =
      (Arrow__Flight__Protocol__Sql__DoPutPreparedStatementResult *)m;
  int rc = 0;
  if (r->_prepared_statement_handle_case ==
      ARROW__FLIGHT__PROTOCOL__SQL__DO_PUT_PREPARED_STATEMENT_RESULT___PREPARED_STATEMENT_HANDLE_PREPARED_STATEMENT_HANDLE)
    rc = set_bytes(&p->handle, r->prepared_statement_handle.data,
                   r->prepared_statement_handle.len);
  protobuf_c_message_free_unpacked(m, NULL);
  if (rc)
    set_err(c, 0, "out of memory");
  return rc;
}

int tl_fc_prepared_bind(tl_fc *c, tl_fc_prepared *p,
                        const struct ArrowSchema *schema,
                        const struct ArrowArray *params) {
  op_begin(c);
  char err[512] = "";
  tl_ipc_writer *w = NULL;
  int rc = tl_ipc_writer_new(&w, schema, err, sizeof err);
  if (rc) {
    set_err(c, 0, "cannot encode the parameters: %s", err);
    return rc;
  }
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_QUERY__INIT;
  q.prepared_statement_handle.data = p->handle.p;
  q.prepared_statement_handle.len = p->handle.len;
  tl_bytes any, desc;
  tl_bytes_init(&any, TL_FLIGHT_MSG_MAX);
  tl_bytes_init(&desc, TL_FLIGHT_MSG_MAX);
  rc = tl_flight_any_pack(&q.base, &any);
  if (!rc) {
    Arrow__Flight__Protocol__FlightDescriptor d =
        ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__INIT;
    d.type = ARROW__FLIGHT__PROTOCOL__FLIGHT_DESCRIPTOR__DESCRIPTOR_TYPE__CMD;
    d.cmd.data = any.p;
    d.cmd.len = any.len;
    rc = tl_flight_msg_pack(&d.base, &desc);
  }
  if (rc) {
    set_err(c, 0, "cannot pack the command (%s)", tl_strerror(rc));
    goto out;
  }
  fcall f;
  rc = call_start(c, &f, "DoPut", NULL);
  if (rc)
    goto out;
  putter u = {&f, {desc.p, desc.len}, true, false};
  rc = tl_ipc_writer_schema(w, put_emit, &u);
  if (!rc && params) {
    tl_ipc_slice sl = {params, 0, params->length};
    rc = tl_ipc_writer_batch(w, &sl, 1, put_emit, &u, err, sizeof err);
  }
  if (rc && !u.dead)
    set_err(c, 0, "cannot encode the parameters: %s",
            err[0] ? err : tl_strerror(rc));
  if (u.dead)
    rc = 0; /* the status says why */
  if (!rc && call_send(&f, NULL, true)) {
    tl_grpc_bytes m;
    int got;
    while (!rc && (got = call_recv(&f, &m)) != 0) {
      if (got < 0) {
        rc = got;
        break;
      }
      Arrow__Flight__Protocol__PutResult *r =
          arrow__flight__protocol__put_result__unpack(NULL, m.n, m.p);
      if (!r) {
        set_err(c, 0, "a PutResult is malformed");
        rc = TL_EMALFORMED;
      } else {
        rc = adopt_put_result(c, p, r->app_metadata.data, r->app_metadata.len);
        arrow__flight__protocol__put_result__free_unpacked(r, NULL);
      }
      tl_grpc_bytes_free(&m);
    }
  }
  rc = call_done(&f, rc);
out:
  tl_bytes_free(&any);
  tl_bytes_free(&desc);
  tl_ipc_writer_free(w);
  return rc;
}

int tl_fc_prepared_execute(tl_fc *c, tl_fc_prepared *p,
                           const tl_fc_sink *sink) {
  Arrow__Flight__Protocol__Sql__CommandPreparedStatementQuery q =
      ARROW__FLIGHT__PROTOCOL__SQL__COMMAND_PREPARED_STATEMENT_QUERY__INIT;
  q.prepared_statement_handle.data = p->handle.p;
  q.prepared_statement_handle.len = p->handle.len;
  return tl_fc_command(c, &q.base, sink);
}

int tl_fc_prepared_close(tl_fc *c, tl_fc_prepared *p) {
  int rc = 0;
  if (!p)
    return 0;
  if (c) {
    Arrow__Flight__Protocol__Sql__ActionClosePreparedStatementRequest q =
        ARROW__FLIGHT__PROTOCOL__SQL__ACTION_CLOSE_PREPARED_STATEMENT_REQUEST__INIT;
    q.prepared_statement_handle.data = p->handle.p;
    q.prepared_statement_handle.len = p->handle.len;
    tl_bytes body;
    tl_bytes_init(&body, TL_FLIGHT_MSG_MAX);
    op_begin(c);
    rc = tl_flight_any_pack(&q.base, &body);
    if (!rc)
      rc = do_action(c, "ClosePreparedStatement", body.p, body.len, NULL, NULL);
    tl_bytes_free(&body);
  }
  prepared_free(p);
  return rc;
}

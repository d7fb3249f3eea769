/* server.c - the gRPC side of the Flight SQL service: binding, a thread
 * that accepts calls, a pool of workers that serve one call each from
 * start to status over the call's own completion queue, authentication
 * (API keys, Handshake tokens), and an orderly stop. The Flight SQL
 * commands themselves are in flightsql.c. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/flight_common.h"
#include "flight_impl.h"
#include "tracelake/tracelake.h"

#define SERVICE "/arrow.flight.protocol.FlightService/"
#define PENDING_ACCEPTS 8 /* request_call slots outstanding at once */
#define TOKEN_TTL_NS ((int64_t)24 * 3600 * 1000000000)
#define MAX_TOKENS 4096

/* A slot waiting for the next call. */
typedef struct accept_slot {
  tl_fcall *call; /* filled in by gRPC when the tag completes */
} accept_slot;

typedef struct token {
  char value[33]; /* 32 hex digits */
  char user[64];
  int64_t expires;
} token;

typedef struct queued {
  struct queued *next;
  tl_fcall *call;
} queued;

/* A worker thread. Idle workers wait on their own condition variable in a
 * stack: a call goes to the most recently idle one, so that a light load
 * keeps to a few threads (each thread that records telemetry is a stream
 * whose buffer the flusher stores as a block), and the workers idle the
 * longest retire after worker_idle_ms, down to WORKERS_KEPT. */
typedef struct worker {
  tl_flight_server *srv;
  struct worker *next_idle; /* the idle stack, under mu */
  struct worker *next_all;  /* every worker not yet joined, under mu */
  pthread_t thread;
  pthread_cond_t cv;
  tl_fcall *call; /* handed over by dispatch, under mu */
  bool exited;    /* retired: to be joined */
} worker;

#define WORKERS_KEPT 4

struct tl_flight_server {
  grpc_server *grpc;
  grpc_completion_queue *notify; /* new calls and the shutdown tag */
  int port;
  const tl_keyring *keys;
  tl_fsql *fs;
  unsigned max_calls;
  unsigned worker_idle_ms;
  pthread_t acceptor;
  bool acceptor_started;
  accept_slot slots[PENDING_ACCEPTS];
  char shutdown_tag;

  pthread_mutex_t mu;
  pthread_cond_t idle_cv; /* a call finished */
  queued *head, *tail;    /* calls waiting for a worker (all max_calls busy) */
  worker *idle_top, *all;
  unsigned workers, active; /* live workers; those serving a call */
  unsigned exited;          /* retired workers on `all`, not yet joined */
  _Atomic bool stopping;

  pthread_mutex_t token_mu;
  token *tokens;
  size_t ntokens;
};

/* ---- calls ------------------------------------------------------------- */

/* Notes the completions that may come while the worker waits for another
 * one: the close op and the message in flight. */
static void note(tl_fcall *c, const grpc_event *ev) {
  if (ev->tag == &c->close_cancelled) {
    c->closed = true;
  } else if (ev->tag == &c->send_tag) {
    c->send_pending = false;
    c->send_failed |= !ev->success;
    grpc_byte_buffer_destroy(c->sending);
    c->sending = NULL;
  }
}

/* Waits for `tag` on the call's queue, noting other completions. */
static bool wait_tag(tl_fcall *c, void *tag) {
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      return false;
    note(c, &ev);
    if (ev.tag == tag)
      return tag == &c->send_tag ? !c->send_failed : ev.success != 0;
  }
}

/* Waits until the message in flight, if any, was taken. */
static bool send_drained(tl_fcall *c) {
  if (c->send_pending && !wait_tag(c, &c->send_tag))
    return false;
  return !c->send_failed;
}

bool tl__call_gone(tl_fcall *c) {
  uint64_t now = tl_mono_ns();
  if (!c->closed && now - c->gone_checked >= 5000000) {
    c->gone_checked = now;
    for (;;) {
      grpc_event ev = grpc_completion_queue_next(
          c->cq, gpr_time_0(GPR_CLOCK_MONOTONIC), NULL);
      if (ev.type != GRPC_OP_COMPLETE)
        break;
      note(c, &ev);
    }
  }
  /* Closed before our status means the client is gone. */
  return (c->closed && !c->finished) || c->send_failed ||
         atomic_load(&c->srv->stopping);
}

static void initial_md_op(tl_fcall *c, grpc_op *op) {
  memset(op, 0, sizeof *op);
  op->op = GRPC_OP_SEND_INITIAL_METADATA;
  op->data.send_initial_metadata.count = c->n_out_md;
  op->data.send_initial_metadata.metadata = c->out_md;
  c->sent_initial = true;
}

int tl__call_recv(tl_fcall *c, tl_bytes *msg, size_t cap) {
  msg->len = 0;
  grpc_byte_buffer *bb = NULL;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &bb;
  char tag;
  if (grpc_call_start_batch(c->call, &op, 1, &tag, NULL) != GRPC_CALL_OK ||
      !wait_tag(c, &tag)) {
    if (bb)
      grpc_byte_buffer_destroy(bb);
    return TL_ECANCELED;
  }
  if (!bb)
    return 0;
  int rc = 1;
  size_t n = grpc_byte_buffer_length(bb);
  if (n > cap) {
    rc = TL_ETOOBIG;
  } else if (tl_bytes_reserve(msg, n) != 0) {
    rc = TL_ENOMEM;
  } else {
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) {
      rc = TL_EMALFORMED; /* a compressed message we cannot read */
    } else {
      grpc_slice s;
      while (grpc_byte_buffer_reader_next(&r, &s)) {
        memcpy(msg->p + msg->len, GRPC_SLICE_START_PTR(s),
               GRPC_SLICE_LENGTH(s));
        msg->len += GRPC_SLICE_LENGTH(s);
        grpc_slice_unref(s);
      }
      grpc_byte_buffer_reader_destroy(&r);
    }
  }
  grpc_byte_buffer_destroy(bb);
  return rc;
}

int tl__call_send(tl_fcall *c, const uint8_t *head, size_t head_len,
                  uint8_t *body, size_t body_len) {
  if (!send_drained(c)) {
    free(body);
    return TL_ECANCELED;
  }
  grpc_slice parts[2];
  size_t n = 0;
  parts[n++] = grpc_slice_from_copied_buffer((const char *)head, head_len);
  if (body && body_len)
    parts[n++] = grpc_slice_new(body, body_len, free);
  else
    free(body);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(parts, n);
  for (size_t i = 0; i < n; i++)
    grpc_slice_unref(parts[i]);
  grpc_op ops[2];
  size_t nops = 0;
  if (!c->sent_initial)
    initial_md_op(c, &ops[nops++]);
  memset(&ops[nops], 0, sizeof ops[nops]);
  ops[nops].op = GRPC_OP_SEND_MESSAGE;
  ops[nops].data.send_message.send_message = bb;
  nops++;
  if (grpc_call_start_batch(c->call, ops, nops, &c->send_tag, NULL) !=
      GRPC_CALL_OK) {
    grpc_byte_buffer_destroy(bb);
    c->send_failed = true;
    return TL_ECANCELED;
  }
  c->sending = bb;
  c->send_pending = true;
  return 0;
}

int tl__call_finish(tl_fcall *c, grpc_status_code code, const char *fmt, ...) {
  if (c->finished)
    return 0;
  /* The last message is delivered before the status goes. */
  bool drained = send_drained(c);
  char text[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  grpc_slice details = grpc_slice_from_copied_string(text);
  grpc_op ops[2];
  size_t nops = 0;
  if (!c->sent_initial)
    initial_md_op(c, &ops[nops++]);
  memset(&ops[nops], 0, sizeof ops[nops]);
  ops[nops].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[nops].data.send_status_from_server.status = code;
  ops[nops].data.send_status_from_server.status_details =
      code == GRPC_STATUS_OK ? NULL : &details;
  nops++;
  char tag;
  c->finished = true;
  bool ok =
      grpc_call_start_batch(c->call, ops, nops, &tag, NULL) == GRPC_CALL_OK &&
      wait_tag(c, &tag);
  grpc_slice_unref(details);
  return ok && drained ? 0 : TL_ECANCELED;
}

bool tl__call_stopping(const tl_fcall *c) {
  return atomic_load(&c->srv->stopping);
}

bool tl__call_deadline_passed(const tl_fcall *c) {
  /* The client gives up at its own deadline, which it sent as a timeout:
   * its cancel can reach us a little before our copy of the deadline
   * passes. Within 100 ms of it counts as the deadline. */
  gpr_timespec d = c->details.deadline;
  gpr_timespec now = gpr_time_add(gpr_now(d.clock_type),
                                  gpr_time_from_millis(100, GPR_TIMESPAN));
  return gpr_time_cmp(now, d) >= 0;
}

bool tl__call_header(const tl_fcall *c, const char *key, char *out,
                     size_t cap) {
  size_t klen = strlen(key);
  for (size_t i = 0; i < c->md.count; i++) {
    const grpc_slice *k = &c->md.metadata[i].key;
    if (GRPC_SLICE_LENGTH(*k) != klen ||
        strncasecmp((const char *)GRPC_SLICE_START_PTR(*k), key, klen) != 0)
      continue;
    const grpc_slice *v = &c->md.metadata[i].value;
    size_t n = GRPC_SLICE_LENGTH(*v);
    if (n >= cap)
      n = cap - 1;
    memcpy(out, GRPC_SLICE_START_PTR(*v), n);
    out[n] = 0;
    return true;
  }
  return false;
}

static void set_out_header(tl_fcall *c, const char *key, const char *value) {
  if (c->n_out_md >= sizeof c->out_md / sizeof c->out_md[0])
    return;
  c->out_md[c->n_out_md].key = grpc_slice_from_copied_string(key);
  c->out_md[c->n_out_md].value = grpc_slice_from_copied_string(value);
  c->n_out_md++;
}

static tl_fcall *call_new(tl_flight_server *s) {
  tl_fcall *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->srv = s;
  c->fs = s->fs;
  c->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->md);
  return c;
}

static void call_free(tl_fcall *c) {
  if (c->call) {
    if (!c->finished && atomic_load(&c->srv->stopping))
      tl__call_finish(c, GRPC_STATUS_UNAVAILABLE, "the server is stopping");
    else if (!c->finished)
      tl__call_finish(c, GRPC_STATUS_INTERNAL, "the call was not answered");
    if (!c->closed)
      wait_tag(c, &c->close_cancelled);
    grpc_call_unref(c->call);
  }
  grpc_completion_queue_shutdown(c->cq);
  while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                    NULL)
             .type != GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(c->cq);
  if (c->absorbed)
    grpc_byte_buffer_destroy(c->absorbed);
  for (size_t i = 0; i < c->n_out_md; i++) {
    grpc_slice_unref(c->out_md[i].key);
    grpc_slice_unref(c->out_md[i].value);
  }
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->md);
  free(c);
}

/* ---- authentication ------------------------------------------------------ */

static const char *token_user(tl_flight_server *s, const char *value,
                              char *user, size_t cap) {
  int64_t now = (int64_t)tl_mono_ns();
  const char *found = NULL;
  pthread_mutex_lock(&s->token_mu);
  for (size_t i = 0; i < s->ntokens; i++) {
    if (s->tokens[i].expires > now && strcmp(s->tokens[i].value, value) == 0) {
      snprintf(user, cap, "%s", s->tokens[i].user);
      found = user;
      break;
    }
  }
  pthread_mutex_unlock(&s->token_mu);
  return found;
}

static int token_issue(tl_flight_server *s, const char *user, char out[33]) {
  uint8_t raw[16];
  tl_uuid_v4(raw);
  for (int i = 0; i < 16; i++)
    snprintf(out + 2 * i, 3, "%02x", raw[i]);
  int64_t now = (int64_t)tl_mono_ns();
  int rc = 0;
  pthread_mutex_lock(&s->token_mu);
  size_t w = 0; /* drop expired tokens */
  for (size_t i = 0; i < s->ntokens; i++)
    if (s->tokens[i].expires > now)
      s->tokens[w++] = s->tokens[i];
  s->ntokens = w;
  if (s->ntokens >= MAX_TOKENS) {
    rc = TL_ETOOBIG;
  } else {
    token *t = &s->tokens[s->ntokens++];
    snprintf(t->value, sizeof t->value, "%s", out);
    snprintf(t->user, sizeof t->user, "%s", user);
    t->expires = now + TOKEN_TTL_NS;
  }
  pthread_mutex_unlock(&s->token_mu);
  return rc;
}

/* Checks `authorization: Bearer <key or token>`; fills c->user. */
static bool authenticated(tl_fcall *c) {
  tl_flight_server *s = c->srv;
  if (!s->keys)
    return true;
  char h[512];
  if (!tl__call_header(c, "authorization", h, sizeof h) ||
      strncasecmp(h, "Bearer ", 7) != 0)
    return false;
  const char *name = tl_keyring_check(s->keys, h + 7);
  if (name) {
    snprintf(c->user, sizeof c->user, "%s", name);
    return true;
  }
  return token_user(s, h + 7, c->user, sizeof c->user) != NULL;
}

static int b64_value(int ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '+' || ch == '-')
    return 62;
  if (ch == '/' || ch == '_')
    return 63;
  return -1;
}

/* Decodes base64 (padding optional) into out; -1 if invalid or too long. */
static long b64_decode(const char *in, char *out, size_t cap) {
  size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  for (; *in && *in != '='; in++) {
    int v = b64_value((unsigned char)*in);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n + 1 >= cap)
        return -1;
      out[n++] = (char)((acc >> bits) & 0xff);
    }
  }
  out[n] = 0;
  return (long)n;
}

/* The BasicAuth some older clients send as the first HandshakeRequest's
 * payload instead of the Basic header. Leaves user and pass empty when
 * there is none or it is malformed. */
static void basic_from_request(const tl_bytes *m, char *user, char *pass,
                               size_t cap) {
  Arrow__Flight__Protocol__HandshakeRequest *rq =
      arrow__flight__protocol__handshake_request__unpack(NULL, m->len, m->p);
  if (!rq)
    return;
  Arrow__Flight__Protocol__BasicAuth *b =
      rq->payload.len ? arrow__flight__protocol__basic_auth__unpack(
                            NULL, rq->payload.len, rq->payload.data)
                      : NULL;
  if (b) {
    snprintf(user, cap, "%s", b->username);
    snprintf(pass, cap, "%s", b->password);
    arrow__flight__protocol__basic_auth__free_unpacked(b, NULL);
  }
  arrow__flight__protocol__handshake_request__free_unpacked(rq, NULL);
}

/* Handshake (a stream both ways): Basic name:key in the `authorization`
 * header, or a BasicAuth in the first request's payload. The reply carries
 * `authorization: Bearer <token>` and the token as payload. */
static void serve_handshake(tl_fcall *c) {
  tl_flight_server *s = c->srv;
  tl_bytes msg;
  tl_bytes_init(&msg, 1 << 20);
  int rc = tl__call_recv(c, &msg, 1 << 16);
  if (rc < 0) {
    tl__call_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                    "Handshake: the request could not be read");
    goto out;
  }
  char user[768] = "", pass[768] = "";
  char h[1024];
  if (tl__call_header(c, "authorization", h, sizeof h) &&
      strncasecmp(h, "Basic ", 6) == 0) {
    char plain[768];
    if (b64_decode(h + 6, plain, sizeof plain) < 0 || !strchr(plain, ':')) {
      tl__call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                      "Handshake: malformed Basic credentials");
      goto out;
    }
    char *colon = strchr(plain, ':');
    *colon = 0;
    snprintf(user, sizeof user, "%s", plain);
    snprintf(pass, sizeof pass, "%s", colon + 1);
  } else if (rc == 1) {
    basic_from_request(&msg, user, pass, sizeof user);
  }
  char tok[33] = "";
  if (s->keys) {
    const char *name = NULL;
    if (pass[0])
      name = tl_keyring_check(s->keys, pass);
    if (!name && authenticated(c))
      name = c->user; /* a bearer key or token on the Handshake itself */
    if (!name || (user[0] && strcmp(user, name) != 0 && name != c->user)) {
      tl__call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                      "Handshake: wrong name or key");
      goto out;
    }
    snprintf(c->user, sizeof c->user, "%s", name);
    if (token_issue(s, c->user, tok) != 0) {
      tl__call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                      "Handshake: too many live tokens");
      goto out;
    }
    char bearer[48];
    snprintf(bearer, sizeof bearer, "Bearer %s", tok);
    set_out_header(c, "authorization", bearer);
  }
  /* The token is also the response's payload. */
  Arrow__Flight__Protocol__HandshakeResponse resp =
      ARROW__FLIGHT__PROTOCOL__HANDSHAKE_RESPONSE__INIT;
  resp.payload.data = (uint8_t *)tok;
  resp.payload.len = strlen(tok);
  tl_bytes out;
  tl_bytes_init(&out, 4096);
  if (tl_flight_msg_pack(&resp.base, &out) == 0 &&
      tl__call_send(c, out.p, out.len, NULL, 0) == 0)
    tl__call_finish(c, GRPC_STATUS_OK, "%s", "");
  tl_bytes_free(&out);
out:
  tl_bytes_free(&msg);
}

/* ---- workers ------------------------------------------------------------- */

/* Reads the request (its first message, for up to a second) before a call
 * is refused unread. Answered with a status alone while the client is
 * still sending, the stream is also reset (RST_STREAM), and the C client
 * of gRPC 1.51 then sometimes never completes its status batch: the call
 * hung until its deadline (tests/flightsql/test_flight.c,
 * keys_are_required_when_configured, about one run in 40). A request that
 * was read first closes the stream in order. */
static void absorb_request(tl_fcall *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->absorbed;
  if (grpc_call_start_batch(c->call, &op, 1, &c->absorb_tag, NULL) !=
      GRPC_CALL_OK)
    return;
  gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                    gpr_time_from_millis(1000, GPR_TIMESPAN));
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(c->cq, until, NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      return; /* the op completes when the call ends (call_free) */
    note(c, &ev);
    if (ev.tag == &c->absorb_tag)
      return;
  }
}

static void serve(tl_fcall *c) {
  const grpc_slice *m = &c->details.method;
  size_t n = GRPC_SLICE_LENGTH(*m);
  const char *p = (const char *)GRPC_SLICE_START_PTR(*m);
  size_t plen = strlen(SERVICE);
  char *peer = grpc_call_get_peer(c->call);
  if (peer) {
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    gpr_free(peer);
  }
  /* Learn of a client that goes away while we work. */
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  if (grpc_call_start_batch(c->call, &op, 1, &c->close_cancelled, NULL) !=
      GRPC_CALL_OK) {
    c->closed = true;
    return;
  }
  if (n <= plen || memcmp(p, SERVICE, plen) != 0 ||
      n - plen >= sizeof c->method) {
    absorb_request(c);
    tl__call_finish(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method %.*s",
                    (int)(n > 200 ? 200 : n), p);
    return;
  }
  memcpy(c->method, p + plen, n - plen);
  c->method[n - plen] = 0;
  if (strcmp(c->method, "Handshake") == 0) {
    serve_handshake(c);
    return;
  }
  if (!authenticated(c)) {
    absorb_request(c);
    tl__call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                    "missing or wrong credentials: send `authorization: "
                    "Bearer <key>` or a token from Handshake");
    return;
  }
  tl__fsql_serve(c);
}

/* Waits, idle, until a call is handed over, the server stops or
 * worker_idle_ms pass. Called and returns with mu held; true if a call was
 * handed over. */
static bool wait_for_call(tl_flight_server *s, worker *w) {
  w->next_idle = s->idle_top;
  s->idle_top = w;
  struct timespec until = tl_deadline_in((uint64_t)s->worker_idle_ms * 1000000);
  while (!w->call && !atomic_load(&s->stopping))
    if (pthread_cond_timedwait(&w->cv, &s->mu, &until) == ETIMEDOUT)
      break;
  if (w->call)
    return true; /* dispatch took it off the stack */
  for (worker **p = &s->idle_top; *p; p = &(*p)->next_idle)
    if (*p == w) {
      *p = w->next_idle;
      break;
    }
  return false;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  tl_flight_server *s = w->srv;
  pthread_setname_np(pthread_self(), "tl-fsql-worker");
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (!w->call && s->head) {
      queued *q = s->head;
      s->head = q->next;
      if (!s->head)
        s->tail = NULL;
      w->call = q->call;
      free(q);
    }
    if (w->call) {
      tl_fcall *c = w->call;
      w->call = NULL;
      s->active++;
      pthread_mutex_unlock(&s->mu);
      serve(c);
      call_free(c);
      pthread_mutex_lock(&s->mu);
      s->active--;
      pthread_cond_broadcast(&s->idle_cv);
      continue;
    }
    if (atomic_load(&s->stopping))
      break;
    if (!wait_for_call(s, w) &&
        (atomic_load(&s->stopping) || s->workers > WORKERS_KEPT))
      break;
  }
  s->workers--;
  s->exited++;
  w->exited = true;
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void worker_free(worker *w) {
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cv);
  free(w);
}

/* Takes the retired workers off the list (with mu held), to be joined. */
static worker *take_exited(tl_flight_server *s) {
  worker *out = NULL;
  for (worker **p = &s->all; s->exited && *p;) {
    worker *w = *p;
    if (w->exited) {
      s->exited--;
      *p = w->next_all;
      w->next_all = out;
      out = w;
    } else {
      p = &w->next_all;
    }
  }
  return out;
}

/* Starts a worker for call `c` (with mu held). Returns false if it could
 * not. */
static bool start_worker(tl_flight_server *s, tl_fcall *c) {
  worker *w = calloc(1, sizeof *w);
  if (!w)
    return false;
  tl_cond_init(&w->cv);
  w->srv = s;
  w->call = c;
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
    pthread_cond_destroy(&w->cv);
    free(w);
    return false;
  }
  w->next_all = s->all;
  s->all = w;
  s->workers++;
  return true;
}

/* Hands a call to the most recently idle worker, or a new one; when
 * max_calls workers are busy, queues it for the first one done. */
static void dispatch(tl_flight_server *s, tl_fcall *c) {
  const char *refused = NULL;
  pthread_mutex_lock(&s->mu);
  worker *gone = take_exited(s);
  if (atomic_load(&s->stopping)) {
    refused = "the server is stopping";
  } else if (s->idle_top) {
    worker *w = s->idle_top;
    s->idle_top = w->next_idle;
    w->call = c;
    pthread_cond_signal(&w->cv);
  } else if (s->workers >= s->max_calls || !start_worker(s, c)) {
    queued *q = malloc(sizeof *q);
    if (q) {
      q->next = NULL;
      q->call = c;
      if (s->tail)
        s->tail->next = q;
      else
        s->head = q;
      s->tail = q;
    } else {
      refused = "out of memory";
    }
  }
  pthread_mutex_unlock(&s->mu);
  while (gone) {
    worker *next = gone->next_all;
    worker_free(gone);
    gone = next;
  }
  if (refused) {
    tl__call_finish(c,
                    atomic_load(&s->stopping) ? GRPC_STATUS_UNAVAILABLE
                                              : GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "%s", refused);
    call_free(c);
  }
}

static int request_slot(tl_flight_server *s, accept_slot *slot) {
  slot->call = call_new(s);
  if (!slot->call)
    return TL_ENOMEM;
  if (grpc_server_request_call(s->grpc, &slot->call->call, &slot->call->details,
                               &slot->call->md, slot->call->cq, s->notify,
                               slot) != GRPC_CALL_OK) {
    call_free(slot->call);
    slot->call = NULL;
    return TL_ESYS;
  }
  return 0;
}

static void *acceptor_main(void *arg) {
  tl_flight_server *s = arg;
  pthread_setname_np(pthread_self(), "tl-fsql-accept");
  int64_t last_tick = 0;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        s->notify,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(500, GPR_TIMESPAN)),
        NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    int64_t now = (int64_t)tl_mono_ns();
    if (now - last_tick > 1000000000) {
      tl__fsql_tick(s->fs, now);
      last_tick = now;
    }
    if (ev.type == GRPC_OP_COMPLETE && ev.tag == &s->shutdown_tag)
      break; /* every call is gone */
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    accept_slot *slot = ev.tag;
    tl_fcall *c = slot->call;
    slot->call = NULL;
    if (!ev.success || atomic_load(&s->stopping)) {
      call_free(c); /* the server is shutting down */
      continue;
    }
    c->arrival_ticks = tl_ticks();
    c->arrival_wall = tl_wall_ns();
    dispatch(s, c);
    request_slot(s, slot);
  }
  return NULL;
}

/* ---- start / stop -------------------------------------------------------- */

/* A PEM file as a C string (gRPC takes them NUL-terminated). */
static int read_pem(const char *path, char **out) {
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = tl_read_file(path, 1 << 20, &p, &n);
  if (rc)
    return rc;
  char *s = realloc(p, n + 1);
  if (!s) {
    free(p);
    return TL_ENOMEM;
  }
  s[n] = 0;
  *out = s;
  return 0;
}

static grpc_server_credentials *tls_creds(const tl_flight_opts *o, char *err,
                                          size_t errcap) {
  char *cert = NULL, *key = NULL;
  grpc_server_credentials *creds = NULL;
  if (read_pem(o->tls_cert, &cert) != 0 || read_pem(o->tls_key, &key) != 0) {
    snprintf(err, errcap, "cannot read the TLS certificate %s or key %s",
             o->tls_cert, o->tls_key);
    goto out;
  }
  grpc_ssl_pem_key_cert_pair pair = {key, cert};
  creds = grpc_ssl_server_credentials_create_ex(
      NULL, &pair, 1, GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
  if (!creds)
    snprintf(err, errcap, "bad TLS certificate %s or key %s", o->tls_cert,
             o->tls_key);
out:
  free(cert);
  free(key);
  return creds;
}

int tl_flight_start(tl_flight_server **out, const tl_flight_opts *o, char *err,
                    size_t errcap) {
  if (!o->listen || !o->lake || (!o->tls_cert != !o->tls_key)) {
    snprintf(err, errcap,
             "flight: need an address, a lake, and both or "
             "neither of the TLS certificate and key");
    return TL_EINVAL;
  }
  grpc_init();
  tl_flight_server *s = calloc(1, sizeof *s);
  if (!s) {
    grpc_shutdown();
    return TL_ENOMEM;
  }
  s->keys = o->keys;
  s->max_calls = o->max_calls ? o->max_calls : 256;
  s->worker_idle_ms = o->worker_idle_ms ? o->worker_idle_ms : 30000;
  pthread_mutex_init(&s->mu, NULL);
  tl_cond_init(&s->idle_cv);
  pthread_mutex_init(&s->token_mu, NULL);
  int rc = TL_ENOMEM;
  s->tokens = calloc(MAX_TOKENS, sizeof *s->tokens);
  if (!s->tokens)
    goto fail;
  rc = tl__fsql_new(&s->fs, s, o->lake,
                    o->max_sql_bytes ? o->max_sql_bytes : 1 << 20);
  if (rc != 0)
    goto fail;
  grpc_arg args[2];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = 16 << 20; /* DoPut batches of parameters */
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = 4 << 20;
  grpc_channel_args cargs = {2, args};
  s->grpc = grpc_server_create(&cargs, NULL);
  s->notify = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->grpc, s->notify, NULL);
  grpc_server_credentials *creds =
      o->tls_cert ? tls_creds(o, err, errcap)
                  : grpc_insecure_server_credentials_create();
  if (!creds) {
    rc = TL_EINVAL;
    goto fail;
  }
  s->port = grpc_server_add_http2_port(s->grpc, o->listen, creds);
  grpc_server_credentials_release(creds);
  if (s->port <= 0) {
    snprintf(err, errcap, "flight: cannot listen on %s", o->listen);
    rc = TL_EIO;
    goto fail;
  }
  grpc_server_start(s->grpc);
  for (int i = 0; i < PENDING_ACCEPTS; i++)
    if ((rc = request_slot(s, &s->slots[i])) != 0)
      goto fail_started;
  if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
    rc = TL_ESYS;
    goto fail_started;
  }
  s->acceptor_started = true;
  *out = s;
  return 0;
fail_started:
  snprintf(err, errcap, "flight: cannot start: %s", tl_strerror(rc));
  tl_flight_stop(s, 0);
  return rc;
fail:
  if (s->grpc) {
    grpc_server_shutdown_and_notify(s->grpc, s->notify, &s->shutdown_tag);
    grpc_server_cancel_all_calls(s->grpc);
    grpc_completion_queue_shutdown(s->notify);
    while (grpc_completion_queue_next(s->notify,
                                      gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
               .type != GRPC_QUEUE_SHUTDOWN)
      ;
    grpc_server_destroy(s->grpc);
    grpc_completion_queue_destroy(s->notify);
  }
  if (rc == TL_ENOMEM)
    snprintf(err, errcap, "flight: out of memory");
  tl__fsql_free(s->fs);
  free(s->tokens);
  free(s);
  grpc_shutdown();
  return rc;
}

int tl_flight_port(const tl_flight_server *s) {
  return s->port;
}

void tl_flight_stop(tl_flight_server *s, unsigned grace_ms) {
  if (!s)
    return;
  grpc_server_shutdown_and_notify(s->grpc, s->notify, &s->shutdown_tag);
  /* Calls in progress get `grace_ms` to finish. */
  uint64_t deadline = tl_mono_ns() + (uint64_t)grace_ms * 1000000;
  pthread_mutex_lock(&s->mu);
  while ((s->active > 0 || s->head) && tl_mono_ns() < deadline) {
    struct timespec ts = tl_deadline_in(50000000u);
    pthread_cond_timedwait(&s->idle_cv, &s->mu, &ts);
  }
  atomic_store(&s->stopping, true); /* their DuckDB work is interrupted */
  for (worker *w = s->all; w; w = w->next_all)
    pthread_cond_signal(&w->cv);
  worker *all = s->all;
  s->all = NULL; /* dispatch starts no worker once stopping */
  pthread_mutex_unlock(&s->mu);
  grpc_server_cancel_all_calls(s->grpc);
  while (all) {
    worker *next = all->next_all;
    worker_free(all);
    all = next;
  }
  /* The acceptor ends at the shutdown tag, which comes when the last call
   * is gone. */
  if (s->acceptor_started)
    pthread_join(s->acceptor, NULL);
  grpc_completion_queue_shutdown(s->notify);
  while (grpc_completion_queue_next(s->notify,
                                    gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
             .type != GRPC_QUEUE_SHUTDOWN)
    ;
  for (int i = 0; i < PENDING_ACCEPTS; i++)
    if (s->slots[i].call)
      call_free(s->slots[i].call);
  grpc_server_destroy(s->grpc);
  grpc_completion_queue_destroy(s->notify);
  tl__fsql_free(s->fs);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->idle_cv);
  pthread_mutex_destroy(&s->token_mu);
  free(s->tokens);
  free(s);
  grpc_shutdown();
}

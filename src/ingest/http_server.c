/* http_server.c - the ingestion HTTP service on libmicrohttpd. Each request
 * is checked as early as possible (route, method, credentials, declared
 * length) so that a bad request costs little; the body is collected up to
 * the limit, then handed to tl_ingest_handle, whose status and one-line
 * message become the response. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_server.h"

/* A connection, tracked so that a client sending too slowly (headers or
 * body) is cut off: libmicrohttpd's own timeout only catches silence. */
typedef struct tracked {
  int fd;
  uint64_t since; /* start of the connection or end of its last request */
  bool cut;
  struct tracked *prev, *next;
} tracked;

struct tl_http_server {
  struct MHD_Daemon *d;
  tl_http_opts o;
  uint16_t port;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  tracked *conns;  /* guarded by mu */
  unsigned active; /* requests between headers and response; guarded */
  bool stopping;   /* guarded */
  pthread_t reaper;
};

typedef struct request {
  int kind; /* TL_MSG_* */
  bool too_big;
  unsigned refuse; /* a status decided from the headers, sent after the body */
  char why[160];
  tl_bytes body;
} request;

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status,
                               const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status,
                               const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n > sizeof msg - 2)
    n = sizeof msg - 2;
  msg[n++] = '\n';
  struct MHD_Response *r =
      MHD_create_response_from_buffer((size_t)n, msg, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static int route(const char *url) {
  if (!strcmp(url, "/ingestion/insert_process"))
    return TL_MSG_PROCESS;
  if (!strcmp(url, "/ingestion/insert_stream"))
    return TL_MSG_STREAM;
  if (!strcmp(url, "/ingestion/insert_block"))
    return TL_MSG_BLOCK;
  return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  tl_http_server *s = cls;
  request *req = *con_cls;
  if (!req) {
    /* Headers are in: decide what can be decided without the body. */
    if (!strcmp(url, "/health")) {
      if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET /health");
      tl_ingest_reply r;
      tl_ingest_health(s->o.ingest, &r);
      return respond(c, (unsigned)r.status, "%s", r.msg);
    }
    int kind = route(url);
    if (!kind)
      return respond(c, MHD_HTTP_NOT_FOUND,
                     "no such endpoint %.200s (POST "
                     "/ingestion/insert_process|insert_stream|insert_block, "
                     "GET /health)",
                     url);
    if (strcmp(method, "POST"))
      return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST %.200s", url);
    /* A refusal decided from the headers is sent at once when the client
     * waits for it (Expect: 100-continue) or declares an absurd length;
     * otherwise after its body has been read and discarded, so that a client
     * already sending it gets the answer instead of a reset connection (and
     * does not retry a request that can never succeed). */
    unsigned refuse = 0;
    char why[160] = "";
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (s->o.keys) {
      const char *auth =
          MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
      if (!tl_keyring_check_bearer(s->o.keys, auth)) {
        refuse = MHD_HTTP_UNAUTHORIZED;
        snprintf(why, sizeof why, "%s",
                 auth ? "wrong API key"
                      : "missing API key: send 'Authorization: Bearer <key>'");
      }
    }
    if (!refuse && declared > s->o.max_body) {
      refuse = MHD_HTTP_CONTENT_TOO_LARGE;
      snprintf(why, sizeof why, "body of %s bytes exceeds the %zu-byte limit",
               cl, s->o.max_body);
    }
    const char *expect =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
    if (refuse && ((expect && !strcasecmp(expect, "100-continue")) ||
                   declared / 4 > s->o.max_body))
      return respond(c, refuse, "%s", why);
    req = calloc(1, sizeof *req);
    if (!req)
      return MHD_NO;
    req->kind = kind;
    req->refuse = refuse;
    req->too_big = refuse != 0; /* discard the body */
    snprintf(req->why, sizeof req->why, "%s", why);
    tl_bytes_init(&req->body, s->o.max_body);
    *con_cls = req;
    pthread_mutex_lock(&s->mu);
    s->active++;
    pthread_mutex_unlock(&s->mu);
    return MHD_YES;
  }
  if (*upload_size) {
    /* Over the limit: discard the rest (libmicrohttpd cannot answer before
     * the body ends; an endless body is cut by the request timeout). */
    if (!req->too_big && tl_bytes_append(&req->body, upload, *upload_size))
      req->too_big = true;
    *upload_size = 0;
    return MHD_YES;
  }
  if (req->refuse)
    return respond(c, req->refuse, "%s", req->why);
  if (req->too_big)
    return respond(c, MHD_HTTP_CONTENT_TOO_LARGE,
                   "body exceeds the %zu-byte limit", s->o.max_body);
  tl_ingest_reply r;
  tl_ingest_handle(s->o.ingest, req->kind, req->body.p, req->body.len, true,
                   &r);
  return respond(c, (unsigned)r.status, "%s", r.msg);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)toe;
  tl_http_server *s = cls;
  request *req = *con_cls;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  pthread_mutex_lock(&s->mu);
  if (ci && ci->socket_context) /* the next request's clock starts now */
    ((tracked *)ci->socket_context)->since = tl_mono_ns();
  if (req) {
    s->active--;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  if (req) {
    tl_bytes_free(&req->body);
    free(req);
    *con_cls = NULL;
  }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
                          enum MHD_ConnectionNotificationCode code) {
  tl_http_server *s = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    tracked *t = calloc(1, sizeof *t);
    if (!t || !ci) {
      free(t);
      return;
    }
    t->fd = ci->connect_fd;
    t->since = tl_mono_ns();
    pthread_mutex_lock(&s->mu);
    t->next = s->conns;
    if (s->conns)
      s->conns->prev = t;
    s->conns = t;
    pthread_mutex_unlock(&s->mu);
    *ctx = t;
  } else if (*ctx) { /* closed: before libmicrohttpd closes the socket */
    tracked *t = *ctx;
    pthread_mutex_lock(&s->mu);
    if (t->prev)
      t->prev->next = t->next;
    else
      s->conns = t->next;
    if (t->next)
      t->next->prev = t->prev;
    pthread_mutex_unlock(&s->mu);
    free(t);
    *ctx = NULL;
  }
}

/* Cuts off connections whose request has taken longer than the timeout
 * (a slowloris client trickling bytes): shutting the socket down makes
 * libmicrohttpd see the end of input and close it in its own thread. */
static void *reap_slow(void *arg) {
  tl_http_server *s = arg;
  uint64_t limit = (uint64_t)s->o.timeout_s * 1000000000u;
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    uint64_t now = tl_mono_ns();
    for (tracked *t = s->conns; t; t = t->next)
      if (!t->cut && now - t->since > limit) {
        shutdown(t->fd, SHUT_RDWR);
        t->cut = true;
      }
    struct timespec ts = tl_deadline_in(200000000u);
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int tl_http_start(tl_http_server **out, const tl_http_opts *o, char *err,
                  size_t errcap) {
  tl_http_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errcap, "out of memory");
    return TL_ENOMEM;
  }
  s->o = *o;
  if (!s->o.threads)
    s->o.threads = 8;
  if (!s->o.timeout_s)
    s->o.timeout_s = 30;
  if (!s->o.max_body)
    s->o.max_body = (size_t)16 << 20;
  if (!s->o.max_header)
    s->o.max_header = (size_t)16 << 10;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o->port);
  if (inet_pton(AF_INET, o->host ? o->host : "127.0.0.1", &addr.sin_addr) !=
      1) {
    snprintf(err, errcap, "not an IPv4 address: %s", o->host);
    free(s);
    return TL_EINVAL;
  }
  /* Before the daemon starts: its workers use them at once. */
  pthread_mutex_init(&s->mu, NULL);
  tl_cond_init(&s->cv);
  /* The connection memory limit bounds the request line and headers
   * (bodies are copied out as they arrive). */
  s->d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY, o->port, NULL,
      NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_THREAD_POOL_SIZE, s->o.threads, MHD_OPTION_CONNECTION_TIMEOUT,
      s->o.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      s->o.max_header + 64 * 1024, MHD_OPTION_CONNECTION_LIMIT, 1024u,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
  if (!s->d) {
    snprintf(err, errcap, "cannot listen on %s:%u (address in use?)",
             o->host ? o->host : "127.0.0.1", o->port);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return TL_ESYS;
  }
  if (pthread_create(&s->reaper, NULL, reap_slow, s)) {
    MHD_stop_daemon(s->d);
    snprintf(err, errcap, "cannot start a thread");
    free(s);
    return TL_ESYS;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : o->port;
  *out = s;
  return 0;
}

uint16_t tl_http_port(const tl_http_server *s) {
  return s->port;
}

void tl_http_stop(tl_http_server *s) {
  if (!s)
    return;
  /* Stop accepting, then wait (bounded) until every request in progress has
   * sent its response: stopping the daemon closes connections at once. */
  MHD_socket fd = MHD_quiesce_daemon(s->d);
  uint64_t deadline = tl_mono_ns() + (uint64_t)s->o.timeout_s * 1000000000u;
  pthread_mutex_lock(&s->mu);
  while (s->active && tl_mono_ns() < deadline) {
    struct timespec ts = tl_deadline_in(50000000u);
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  s->stopping = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->reaper, NULL);
  MHD_stop_daemon(s->d);
  if (fd != MHD_INVALID_SOCKET)
    close(fd);
  for (tracked *t = s->conns, *next; t; t = next) {
    next = t->next;
    free(t);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

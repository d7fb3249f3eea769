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
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_server.h"

struct tl_http_server {
  struct MHD_Daemon *d;
  tl_http_opts o;
  uint16_t port;
};

typedef struct request {
  int kind; /* TL_MSG_* */
  bool too_big;
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
    if (s->o.keys) {
      const char *auth =
          MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
      if (!tl_keyring_check_bearer(s->o.keys, auth))
        return respond(c, MHD_HTTP_UNAUTHORIZED,
                       auth ? "wrong API key"
                            : "missing API key: send "
                              "'Authorization: Bearer <key>'");
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->o.max_body)
      return respond(c, MHD_HTTP_CONTENT_TOO_LARGE,
                     "body of %s bytes exceeds the %zu-byte limit", cl,
                     s->o.max_body);
    req = calloc(1, sizeof *req);
    if (!req)
      return MHD_NO;
    req->kind = kind;
    tl_bytes_init(&req->body, s->o.max_body);
    *con_cls = req;
    return MHD_YES;
  }
  if (*upload_size) {
    if (!req->too_big && tl_bytes_append(&req->body, upload, *upload_size))
      req->too_big = true; /* keep reading, then refuse */
    *upload_size = 0;
    return MHD_YES;
  }
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
  (void)cls;
  (void)c;
  (void)toe;
  request *req = *con_cls;
  if (req) {
    tl_bytes_free(&req->body);
    free(req);
    *con_cls = NULL;
  }
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
  /* The connection memory limit bounds the request line and headers
   * (bodies are copied out as they arrive). */
  s->d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY, o->port, NULL,
      NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_THREAD_POOL_SIZE, s->o.threads, MHD_OPTION_CONNECTION_TIMEOUT,
      s->o.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      s->o.max_header + 64 * 1024, MHD_OPTION_CONNECTION_LIMIT, 1024u,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
  if (!s->d) {
    snprintf(err, errcap, "cannot listen on %s:%u (address in use?)",
             o->host ? o->host : "127.0.0.1", o->port);
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
  /* Stop accepting first; MHD_stop_daemon then waits for the workers, which
   * finish the request they are in. */
  MHD_socket fd = MHD_quiesce_daemon(s->d);
  MHD_stop_daemon(s->d);
  if (fd != MHD_INVALID_SOCKET)
    close(fd);
  free(s);
}

/* harness.c - the ingestion tests' shared helpers (harness.h) and the test
 * executable's main. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "test.h"
#include "wire/wire.h"

TL_TEST_MAIN()

/* ---- Time and scratch space --------------------------------------------- */

uint64_t th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void th_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
}

#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];
static char tmpdir[256];

static void forget_child(pid_t pid) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i] == pid)
      children[i] = 0;
}

static void remember_child(pid_t pid) {
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (!children[i]) {
      children[i] = pid;
      return;
    }
  FAILF("too many child processes");
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void drop_databases(void);
static void remove_private_pg(void);

/* A failed CHECK exits: children must not outlive the test, and the scratch
 * directory goes too (TL_KEEP_TMP=1 keeps it for a post-mortem), as do the
 * test's PostgreSQL databases and private server, once no server uses
 * them. */
static void cleanup(void) {
  th_http_done();
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i] > 0) {
      kill(children[i], SIGKILL);
      waitpid(children[i], NULL, 0);
      children[i] = 0;
    }
  drop_databases();
  remove_private_pg();
  if (tmpdir[0]) {
    const char *keep = getenv("TL_KEEP_TMP");
    if (keep && *keep == '1')
      fprintf(stderr, "kept %s\n", tmpdir);
    else
      nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
}

const char *th_tmpdir(void) {
  if (!tmpdir[0]) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tl-ingest-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
  }
  return tmpdir;
}

const char *th_path(const char *name) {
  static char ring[8][512];
  static unsigned next;
  char *p = ring[next++ % 8];
  snprintf(p, sizeof ring[0], "%s/%s", th_tmpdir(), name);
  return p;
}

void th_write_file(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  CHECK(fwrite(p, 1, n, f) == n);
  CHECK(fclose(f) == 0);
}

int th_read_file(const char *path, tl_bytes *out) {
  tl_bytes_init(out, (size_t)1 << 30);
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  char buf[65536];
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, f)) > 0)
    CHECK_EQ(tl_bytes_append(out, buf, k), 0);
  fclose(f);
  return 0;
}

/* ---- The catalog --------------------------------------------------------- */

#define MAX_LAKES 8

/* One lake's catalog; `name` is empty on SQLite. */
typedef struct lake_db {
  char data[512];
  char server[512]; /* PostgreSQL: a URI of the server, to create and drop */
  char name[64];
  char spec[1024];
} lake_db;

static lake_db lakes[MAX_LAKES];
static int nlakes;
static char private_dir[512];
static char private_uri[512];

bool th_pg(void) {
  const char *b = getenv("TL_TEST_CATALOG");
  return b && !strcmp(b, "pg");
}

static void read_line(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f)
    FAILF("cannot read %s (is the pg fixture running?)", path);
  if (!fgets(out, (int)cap, f))
    FAILF("%s is empty", path);
  fclose(f);
  out[strcspn(out, "\r\n")] = 0;
}

/* Runs one statement that returns no rows. Returns 0, or -1 with the error
 * in `err`. */
static int pg_exec(const char *uri, const char *sql, char *err, size_t cap) {
  int rc = -1;
  PGconn *db = PQconnectdb(uri);
  if (PQstatus(db) != CONNECTION_OK) {
    snprintf(err, cap, "connect %s: %s", uri, PQerrorMessage(db));
  } else {
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK)
      rc = 0;
    else
      snprintf(err, cap, "%s: %s", sql, PQerrorMessage(db));
    PQclear(r);
  }
  PQfinish(db);
  return rc;
}

/* `uri` with its database name (the last path part) replaced by `db`. */
static void uri_with_db(const char *uri, const char *db, char *out,
                        size_t cap) {
  const char *scheme = strstr(uri, "://");
  const char *slash = strrchr(uri, '/');
  if (!scheme || slash < scheme + 3 || strchr(slash, '?'))
    FAILF("not a postgresql://HOST/DB URI: %s", uri);
  snprintf(out, cap, "%.*s/%s", (int)(slash - uri), uri, db);
}

static lake_db *find_lake(const char *data) {
  for (int i = 0; i < nlakes; i++)
    if (!strcmp(lakes[i].data, data))
      return &lakes[i];
  return NULL;
}

const char *th_catalog_spec_on(const char *data, const char *server_uri) {
  th_tmpdir(); /* the cleanup that drops the database */
  if (find_lake(data))
    FAILF("the catalog of %s is already chosen", data);
  if (nlakes == MAX_LAKES)
    FAILF("too many lakes in one test");
  lake_db *l = &lakes[nlakes];
  snprintf(l->data, sizeof l->data, "%s", data);
  if (!server_uri) {
    snprintf(l->spec, sizeof l->spec, "%s/catalog.db", data);
    nlakes++;
    return l->spec;
  }
  /* The pid keeps parallel tests apart, the random part a rerun from the
   * leftovers of a killed one. */
  uint8_t rnd[16];
  tl_uuid_v4(rnd);
  char name[64];
  snprintf(name, sizeof name, "tl_ingest_%d_%d_%02x%02x%02x%02x", (int)getpid(),
           nlakes, rnd[0], rnd[1], rnd[2], rnd[3]);
  snprintf(l->name, sizeof l->name, "%s", name);
  snprintf(l->server, sizeof l->server, "%s", server_uri);
  uri_with_db(server_uri, name, l->spec, sizeof l->spec);
  char sql[128], err[1024];
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
  if (pg_exec(server_uri, sql, err, sizeof err))
    FAILF("%s", err);
  nlakes++;
  return l->spec;
}

const char *th_catalog_spec(const char *data) {
  lake_db *l = find_lake(data);
  if (l)
    return l->spec;
  if (!th_pg())
    return th_catalog_spec_on(data, NULL);
  const char *dir = getenv("TL_TEST_PG_DIR");
  if (!dir)
    FAILF("TL_TEST_CATALOG=pg needs TL_TEST_PG_DIR");
  char path[600], uri[512];
  snprintf(path, sizeof path, "%s/uri", dir);
  read_line(path, uri, sizeof uri);
  return th_catalog_spec_on(data, uri);
}

tl_catalog *th_catalog_open(const char *data) {
  const char *spec = th_catalog_spec(data);
  tl_catalog *cat = NULL;
  char err[512] = "";
  int rc = tl_catalog_open(&cat, spec, err, sizeof err);
  if (rc)
    FAILF("catalog %s: %s (%s)", spec, tl_errname(rc), err);
  return cat;
}

/* At exit, after the servers are gone; it must not fail (nor exit). */
static void drop_databases(void) {
  for (int i = 0; i < nlakes; i++) {
    if (!lakes[i].name[0])
      continue;
    char sql[128], err[1024];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             lakes[i].name);
    if (pg_exec(lakes[i].server, sql, err, sizeof err))
      fprintf(stderr, "could not drop the test database: %s\n", err);
  }
  nlakes = 0;
}

static int pg_script(const char *cmd) {
  const char *script = getenv("TL_TEST_PG_SCRIPT");
  if (!script) {
    fprintf(stderr, "TL_TEST_PG_SCRIPT is not set\n");
    return -1;
  }
  char line[1200];
  snprintf(line, sizeof line, "'%s' %s '%s'", script, cmd, private_dir);
  fflush(stderr);
  if (system(line) != 0) {
    fprintf(stderr, "%s failed\n", line);
    return -1;
  }
  return 0;
}

const char *th_pg_private(const char *cmd) {
  if (!strcmp(cmd, "start")) {
    CHECK(!private_dir[0]);
    snprintf(private_dir, sizeof private_dir, "%s", th_path("pg"));
    if (pg_script("start"))
      FAILF("cannot start a private PostgreSQL server");
    char path[600];
    snprintf(path, sizeof path, "%s/uri", private_dir);
    read_line(path, private_uri, sizeof private_uri);
    return private_uri;
  }
  CHECK(private_dir[0]);
  if (pg_script(cmd))
    FAILF("pg-test.sh %s failed", cmd);
  return NULL;
}

static void remove_private_pg(void) {
  if (private_dir[0]) {
    pg_script("stop");
    private_dir[0] = 0;
  }
}

/* ---- Processes ----------------------------------------------------------- */

int th_wait(pid_t pid, unsigned timeout_ms) {
  uint64_t end = th_now_ms() + timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      forget_child(pid);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (r < 0)
      return -1;
    if (th_now_ms() >= end)
      return -1;
    th_sleep_ms(5);
  }
}

pid_t th_spawn(char *const argv[], const char *out_path) {
  th_tmpdir();
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
      _exit(126);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    execv(argv[0], argv);
    _exit(127);
  }
  remember_child(pid);
  return pid;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) ? 0 : (long)st.st_size;
}

/* The log's content from `from` on. */
static void read_log(const char *path, long from, char *buf, size_t cap) {
  buf[0] = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return;
  fseek(f, from, SEEK_SET);
  size_t k = fread(buf, 1, cap - 1, f);
  buf[k] = 0;
  fclose(f);
}

int th_server_start(th_server *s, const char *data, const char *const *extra) {
  th_tmpdir();
  if (!s->log[0]) {
    static unsigned nlogs;
    char name[64];
    snprintf(name, sizeof name, "server-%u.log", nlogs++);
    snprintf(s->log, sizeof s->log, "%s", th_path(name));
  }
  snprintf(s->data, sizeof s->data, "%s", data);
  char listen[64];
  snprintf(listen, sizeof listen, "127.0.0.1:%u", s->port);
  const char *catalog = th_pg() ? th_catalog_spec(data) : NULL;
  char *argv[40];
  int argc = 0;
  argv[argc++] = (char *)TL_TRACELAKE_EXE;
  argv[argc++] = "serve";
  argv[argc++] = "--data";
  argv[argc++] = s->data;
  argv[argc++] = "--http";
  argv[argc++] = listen;
  /* Flight SQL on a free port (EXTRA or TL_TEST_SERVE_ARGS may say
   * otherwise: the last --flight wins). */
  argv[argc++] = "--flight";
  argv[argc++] = "127.0.0.1:0";
  if (catalog) {
    argv[argc++] = "--catalog";
    argv[argc++] = (char *)catalog;
  }
  for (int i = 0; extra && extra[i] && argc < 38; i++) {
    if (catalog && !strcmp(extra[i], "--catalog") && extra[i + 1]) {
      i++; /* the lake's PostgreSQL database instead */
      continue;
    }
    argv[argc++] = (char *)extra[i];
  }
  /* TL_TEST_SERVE_ARGS adds options to every server (CI's ThreadSanitizer
   * run turns the lake's maintenance off: DuckDB is not instrumented). */
  static char env_args[256];
  const char *more = getenv("TL_TEST_SERVE_ARGS");
  if (more) {
    snprintf(env_args, sizeof env_args, "%s", more);
    char *save = NULL;
    for (char *a = strtok_r(env_args, " ", &save); a && argc < 38;
         a = strtok_r(NULL, " ", &save))
      argv[argc++] = a;
  }
  argv[argc] = NULL;
  long from = file_size(s->log);
  s->pid = th_spawn(argv, s->log);
  uint64_t end = th_now_ms() + 10000;
  static char buf[1 << 16];
  while (th_now_ms() < end) {
    read_log(s->log, from, buf, sizeof buf);
    const char *at = strstr(buf, "serving http://127.0.0.1:");
    if (at && strchr(at, '\n')) {
      if (catalog && !strstr(at, "catalog postgresql"))
        FAILF("the server is not on its PostgreSQL catalog:\n%s", buf);
      s->port =
          (uint16_t)strtoul(at + strlen("serving http://127.0.0.1:"), NULL, 10);
      snprintf(s->base, sizeof s->base, "http://127.0.0.1:%u", s->port);
      const char *g = strstr(at, "://127.0.0.1:"); /* grpc or grpc+tls */
      g = g ? strstr(g + 1, "://127.0.0.1:") : NULL;
      const char *nl = strchr(at, '\n');
      s->flight_port =
          g && g < nl ? (uint16_t)strtoul(g + strlen("://127.0.0.1:"), NULL, 10)
                      : 0;
      return 0;
    }
    int st;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
      forget_child(s->pid);
      s->pid = 0;
      fprintf(stderr, "server exited at start:\n%s\n", buf);
      return -1;
    }
    th_sleep_ms(10);
  }
  read_log(s->log, from, buf, sizeof buf);
  FAILF("server did not start within 10 s:\n%s", buf);
}

int th_server_stop(th_server *s, int sig, unsigned timeout_ms) {
  if (s->pid <= 0)
    return -1;
  kill(s->pid, sig);
  int rc = th_wait(s->pid, timeout_ms);
  if (rc < 0) {
    kill(s->pid, SIGKILL);
    th_wait(s->pid, 5000);
  }
  s->pid = 0;
  /* A sanitizer report from the server fails the test, whatever the exit. */
  if (th_server_log_has(s, "Sanitizer") ||
      th_server_log_has(s, "runtime error:")) {
    static char buf[1 << 16];
    read_log(s->log, 0, buf, sizeof buf);
    FAILF("the server reported a sanitizer error:\n%s", buf);
  }
  return rc;
}

bool th_server_log_has(const th_server *s, const char *needle) {
  static char buf[1 << 18];
  read_log(s->log, 0, buf, sizeof buf);
  return strstr(buf, needle) != NULL;
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx) {
  th_resp *r = ctx;
  size_t n = size * nmemb;
  size_t room = sizeof r->body - 1 - r->body_len;
  size_t k = n < room ? n : room;
  memcpy(r->body + r->body_len, p, k);
  r->body_len += k;
  r->body[r->body_len] = 0;
  return n;
}

static __thread CURL *conn;

void th_http_done(void) {
  if (conn)
    curl_easy_cleanup(conn);
  conn = NULL;
}

static void curl_init_once(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

void th_http(const th_server *s, const char *method, const char *path,
             const void *p, size_t n, const char *auth, th_resp *r) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, curl_init_once);
  memset(r, 0, sizeof *r);
  if (!conn)
    CHECK((conn = curl_easy_init()) != NULL);
  CURL *c = conn;
  curl_easy_reset(c);
  char url[512];
  snprintf(url, sizeof url, "%s%s", s->base, path);
  struct curl_slist *h = NULL;
  h = curl_slist_append(h, "Expect:");
  h = curl_slist_append(h, "Content-Type: application/octet-stream");
  if (auth)
    h = curl_slist_append(h, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  if (!strcmp(method, "POST")) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, p ? (const char *)p : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
  } else if (!strcmp(method, "GET")) {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (!strcmp(method, "HEAD")) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  }
  r->curl_rc = (int)curl_easy_perform(c);
  if (!r->curl_rc)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  while (r->body_len && r->body[r->body_len - 1] == '\n')
    r->body[--r->body_len] = 0;
  curl_slist_free_all(h);
}

void th_post(const th_server *s, int kind, const void *p, size_t n,
             th_resp *r) {
  static const char *paths[4] = {"", "/ingestion/insert_process",
                                 "/ingestion/insert_stream",
                                 "/ingestion/insert_block"};
  th_http(s, "POST", paths[kind], p, n, NULL, r);
}

void th_expect(const char *file, int line, const th_resp *r, long status,
               const char *needle) {
  if (r->curl_rc || r->status != status ||
      (needle && !strstr(r->body, needle))) {
    fprintf(stderr, "%s:%d: expected %ld%s%s%s, got %ld \"%s\" (curl: %s)\n",
            file, line, status, needle ? " containing \"" : "",
            needle ? needle : "", needle ? "\"" : "", r->status, r->body,
            curl_easy_strerror((CURLcode)r->curl_rc));
    exit(1);
  }
}

long th_health(const th_server *s) {
  th_resp r;
  th_http(s, "GET", "/health", NULL, 0, NULL, &r);
  return r.curl_rc ? 0 : r.status;
}

/* ---- Raw sockets --------------------------------------------------------- */

int th_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    close(fd);
    return -1;
  }
  return fd;
}

int th_send_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

long th_recv_until(int fd, char *buf, size_t cap, unsigned timeout_ms,
                   bool *closed) {
  uint64_t end = th_now_ms() + timeout_ms;
  size_t got = 0;
  *closed = false;
  buf[0] = 0;
  for (;;) {
    uint64_t now = th_now_ms();
    if (now >= end)
      break;
    struct pollfd pfd = {fd, POLLIN, 0};
    int k = poll(&pfd, 1, (int)(end - now));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    char tmp[4096];
    ssize_t r = recv(fd, tmp, sizeof tmp, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      *closed = true;
      return got ? (long)got : -1;
    }
    if (r == 0) {
      *closed = true;
      break;
    }
    size_t keep = (size_t)r < cap - 1 - got ? (size_t)r : cap - 1 - got;
    memcpy(buf + got, tmp, keep);
    got += keep;
    buf[got] = 0;
  }
  return (long)got;
}

int th_raw_status(const char *resp) {
  if (strncmp(resp, "HTTP/1.", 7) || strlen(resp) < 12)
    return 0;
  return atoi(resp + 9);
}

/* ---- Messages ------------------------------------------------------------ */

void th_ids_new(th_ids *ids) {
  tl_uuid_v4(ids->process);
  tl_uuid_v4(ids->stream);
  tl_uuid_v4(ids->block);
}

void th_make_process(tl_bytes *out, const uint8_t pid[16], const char *exe) {
  tl_wire_process m;
  memset(&m, 0, sizeof m);
  memcpy(m.process_id, pid, 16);
  m.start_time = tl_wall_ns();
  m.start_ticks = 1000;
  m.tsc_frequency = 1000000000u;
  m.exe = tl_slice_str(exe);
  m.username = tl_slice_str("tester");
  m.realname = tl_slice_str("Test Er");
  m.computer = tl_slice_str("localhost");
  m.distro = tl_slice_str("test");
  m.cpu_brand = tl_slice_str("test cpu");
  m.nprops = 1;
  m.props[0] = (tl_kv){tl_slice_str("app"), tl_slice_str("ingest-test")};
  CHECK_EQ(tl_process_encode(&m, out), 0);
}

void th_make_stream(tl_bytes *out, const uint8_t sid[16],
                    const uint8_t pid[16]) {
  tl_wire_stream m;
  memset(&m, 0, sizeof m);
  memcpy(m.stream_id, sid, 16);
  memcpy(m.process_id, pid, 16);
  m.ntags = 1;
  m.tags[0] = tl_slice_str("cpu");
  m.nprops = 1;
  m.props[0] = (tl_kv){tl_slice_str("thread-name"), tl_slice_str("main")};
  CHECK_EQ(tl_stream_encode(&m, out), 0);
}

static const tl_callsite cs_all[] = {
    {TL_CS_LOG, TL_LEVEL_INFO, 0, 1, "static message", NULL, "t::a", "a.c"},
    {TL_CS_LOG, TL_LEVEL_WARN, 0, 2, "value %u", NULL, "t::a", "a.c"},
    {TL_CS_IMETRIC, 0, 0, 3, "bytes_in", "bytes", "t::a", "a.c"},
    {TL_CS_FMETRIC, 0, 0, 4, "load", "ratio", "t::a", "a.c"},
    {TL_CS_SPAN, 0, 0, 5, "work", NULL, "t::a", "a.c"},
    {TL_CS_ASYNC, 0, 0, 6, "job", NULL, "t::a", "a.c"},
};

static uint32_t xorshift(uint32_t *s) {
  uint32_t x = *s ? *s : 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

void th_make_block(tl_bytes *out, const th_ids *ids, unsigned nevents,
                   uint32_t seed, size_t text_bytes) {
  tl_block_builder bb;
  tl_block_builder_init(&bb);
  for (size_t i = 0; i < sizeof cs_all / sizeof cs_all[0]; i++)
    CHECK_EQ(tl_block_builder_callsite(&bb, &cs_all[i]), 0);
  static const int types[] = {
      TL_EV_LOG,        TL_EV_LOGF,     TL_EV_IMETRIC,     TL_EV_FMETRIC,
      TL_EV_SPAN_BEGIN, TL_EV_SPAN_END, TL_EV_ASYNC_BEGIN, TL_EV_ASYNC_END};
  static const uint32_t site[] = {0, 1, 2, 3, 4, 4, 5, 5};
  uint64_t ticks = 5000;
  uint32_t rnd = seed * 2654435761u + 1;
  char text[4096];
  for (unsigned i = 0; i < nevents; i++) {
    tl_wire_event e;
    memset(&e, 0, sizeof e);
    e.type = types[i % 8];
    e.ticks = ticks;
    ticks += 10 + xorshift(&rnd) % 100;
    int n = snprintf(text, sizeof text, "value %u", xorshift(&rnd));
    e.v.msg = (tl_slice){(const uint8_t *)text, (size_t)n};
    if (e.type == TL_EV_IMETRIC)
      e.v.u = seed + i;
    else if (e.type == TL_EV_FMETRIC)
      e.v.f = seed * 0.5 + i;
    else if (e.type >= TL_EV_ASYNC_BEGIN) {
      e.v.async.id = i / 8 + 1;
      e.v.async.depth = 0;
    }
    CHECK_EQ(tl_block_builder_event(&bb, site[i % 8], &e), 0);
  }
  /* Incompressible text, in log messages of up to 4000 bytes. */
  while (text_bytes > 0) {
    size_t n = text_bytes < 4000 ? text_bytes : 4000;
    for (size_t k = 0; k < n; k++)
      text[k] = (char)(' ' + xorshift(&rnd) % 94);
    tl_wire_event e;
    memset(&e, 0, sizeof e);
    e.type = TL_EV_LOGF;
    e.ticks = ticks++;
    e.v.msg = (tl_slice){(const uint8_t *)text, n};
    CHECK_EQ(tl_block_builder_event(&bb, 1, &e), 0);
    text_bytes -= n;
  }
  tl_wire_block_header h;
  memset(&h, 0, sizeof h);
  memcpy(h.block_id, ids->block, 16);
  memcpy(h.stream_id, ids->stream, 16);
  memcpy(h.process_id, ids->process, 16);
  h.begin_ticks = UINT64_MAX;
  h.end_ticks = 0;
  tl_clock_ref ref = {1000, tl_wall_ns(), 1000000000u};
  CHECK_EQ(tl_block_builder_finish(&bb, &h, &ref, out), 0);
  tl_block_builder_free(&bb);
}

void th_reseal(uint8_t *p, size_t n) {
  if (n >= TL_WIRE_BLOCK_HEADER_SIZE && tl_get_u32(p) == TL_WIRE_MAGIC_BLOCK) {
    size_t pl = tl_get_u32(p + 96);
    if (pl > n - TL_WIRE_BLOCK_HEADER_SIZE)
      pl = n - TL_WIRE_BLOCK_HEADER_SIZE;
    tl_put_u32(p + 100, tl_crc32c(0, p + TL_WIRE_BLOCK_HEADER_SIZE, pl));
    tl_put_u32(p + 104, tl_crc32c(0, p, 104));
  } else if (n >= 12) {
    tl_put_u32(p + n - 4, tl_crc32c(0, p, n - 4));
  }
}

/* ---- The lake on disk ---------------------------------------------------- */

void th_blob_path(const char *data, const th_ids *ids, char *out, size_t cap) {
  char p[37], s[37], b[37];
  tl_uuid_format(ids->process, p);
  tl_uuid_format(ids->stream, s);
  tl_uuid_format(ids->block, b);
  snprintf(out, cap, "%s/blobs/%s/%s/%s", data, p, s, b);
}

static const char *count_prefix, *count_suffix;
static unsigned count_n;

static int count_entry(const char *path, const struct stat *st, int flag,
                       struct FTW *ftw) {
  (void)st;
  const char *name = path + ftw->base;
  size_t n = strlen(name), k = strlen(count_suffix);
  if (flag == FTW_F && !strncmp(name, count_prefix, strlen(count_prefix)) &&
      n >= k && !strcmp(name + n - k, count_suffix))
    count_n++;
  return 0;
}

unsigned th_count_files(const char *dir, const char *prefix,
                        const char *suffix) {
  count_prefix = prefix;
  count_suffix = suffix;
  count_n = 0;
  nftw(dir, count_entry, 16, FTW_PHYS);
  return count_n;
}

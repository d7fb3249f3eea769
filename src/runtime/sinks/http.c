/* http.c - the HTTP sink: a sender thread POSTs each message to the ingestion
 * service, and what cannot be delivered in time is spilled to a spool
 * directory and resent, in order, once the service answers again. Spill
 * directories left behind by dead processes are resent as well. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../runtime.h"
#include "spool.h"

/* Ordering: a process message must reach the server before its streams and
 * a stream before its blocks. A message lives either in the memory queue or
 * in our spill directory, and everything in memory is older than every
 * spilled file: the flusher appends to the directory as soon as one file
 * exists there (or the queue is full), and the sender spills the queue in
 * front of the existing files (tl_spool_write_front). The sender serves
 * memory first, then the files in name order, and lets new messages into
 * memory again only once it has seen the directory empty under the lock. */

#define QUEUE_CAP ((size_t)16 << 20) /* bytes held in memory */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define MAX_ATTEMPTS 5             /* per message, before spilling */
#define MAX_RETRY_NS 3000000000ull /* per message, before spilling */
#define CONNECT_TIMEOUT_MS 2000L
#define REQUEST_TIMEOUT_MS 10000L
#define DRAIN_MS_DEFAULT 5000u
#define SCAN_PERIOD_NS 5000000000ull /* between scans for orphans */
#define ORPHAN_MIN_AGE_S 1
#define FRONT_ROOM (1ull << 40) /* files spilled in front, ever */
#define MAX_FILE ((size_t)TL_WIRE_MAX_PAYLOAD * 2 + 4096)

typedef struct msg {
  struct msg *next;
  int kind;
  size_t n;
  uint8_t data[];
} msg;

typedef struct http_sink {
  tl_sink base;
  char *urls[4]; /* indexed by TL_MSG_* */
  char *auth;    /* "Authorization: Bearer ...", or NULL */
  char *root;    /* the spill root, shared with other processes */
  char *own_dir; /* root/<our process id> */
  char own_name[37];
  uint8_t pid[16];
  unsigned drain_ms;
  pthread_t thread;
  /* The sender's transfers run in this multi handle, so that close can
   * interrupt a transfer waiting on a silent server (curl_multi_wakeup). */
  CURLM *multi;
  /* Monotonic time after which a transfer in progress gives up; 0 = never.
   * Set by close while a transfer may be running, hence atomic. */
  _Atomic uint64_t abort_at;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Guarded by mu. */
  msg *head, *tail; /* the memory queue; the head may be in flight */
  size_t queued;    /* bytes in the queue */
  tl_spool *spool;  /* opened on first spill */
  bool spilled;     /* our spill directory may hold files */
  bool closing;
  uint64_t deadline; /* when closing: monotonic time to give up */
} http_sink;

/* What the sender thread owns: the connection, the retry state, its view of
 * the spill directories. */
typedef struct sender {
  http_sink *s;
  CURL *curl;
  struct curl_slist *headers;
  long backoff_ms;
  uint64_t next_try;  /* nothing is sent before this time */
  bool down;          /* the server failed us; probing at next_try */
  int attempts;       /* failed attempts of the memory queue's head */
  uint64_t first_try; /* when the head's first attempt started */
  char **files;       /* a listing of our spill directory, being resent */
  size_t nfiles, ifile;
  char *orphan_dir; /* a dead process's spill directory, locked */
  int orphan_fd;
  char **ofiles;
  size_t nofiles, iofile;
  uint64_t next_scan;
} sender;

enum { POST_OK, POST_REJECTED, POST_RETRY };
enum { W_EXIT, W_MEM, W_FILE, W_ORPHAN, W_SCAN };

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- Counters ------------------------------------------------------------ */

static void count(_Atomic uint64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* A block that will never reach the server: its events are dropped. */
static void count_failed(int kind, const uint8_t *p, size_t n) {
  if (kind != TL_MSG_BLOCK)
    return;
  tl_wire_block_header h;
  tl_wire_error err;
  count(&tl__counters.blocks_failed, 1);
  if (p && !tl_block_header_decode(p, n, &h, &err))
    count(&tl__counters.retired_dropped[TL_DROP_SINK], h.nb_objects);
}

/* ---- Spilling (mu held) -------------------------------------------------- */

static int spool_ready(http_sink *s) {
  if (s->spool)
    return 0;
  int rc = tl_spool_open(&s->spool, s->root, s->pid, false);
  if (!rc)
    tl_spool_reserve_front(s->spool, FRONT_ROOM);
  return rc;
}

/* Appends a message behind everything queued or spilled so far. */
static int spill_append(http_sink *s, int kind, const uint8_t *p, size_t n) {
  int rc = spool_ready(s);
  if (!rc)
    rc = tl_spool_write(s->spool, kind, p, n);
  if (rc)
    return rc;
  s->spilled = true;
  if (kind == TL_MSG_BLOCK)
    count(&tl__counters.blocks_spilled, 1);
  pthread_cond_signal(&s->cv);
  return 0;
}

static void forget_files(sender *st) {
  tl_spool_list_free(st->files, st->nfiles);
  st->files = NULL;
  st->nfiles = st->ifile = 0;
}

/* Moves the memory queue in front of the spilled files, newest first, so
 * that the names sort in queue order. Stops at the first failure: what stays
 * in memory is then still older than every file. The list is reversed in
 * place, so this needs no memory (it runs when things go wrong). */
static void spill_queue(sender *st) {
  http_sink *s = st->s;
  if (!s->head || spool_ready(s))
    return;
  msg *rev = NULL;
  for (msg *m = s->head; m;) {
    msg *next = m->next;
    m->next = rev;
    rev = m;
    m = next;
  }
  while (rev && !tl_spool_write_front(s->spool, rev->kind, rev->data, rev->n)) {
    msg *next = rev->next;
    if (rev->kind == TL_MSG_BLOCK)
      count(&tl__counters.blocks_spilled, 1);
    s->queued -= rev->n;
    s->spilled = true;
    free(rev);
    rev = next;
  }
  s->head = NULL;
  s->tail = rev;
  while (rev) {
    msg *next = rev->next;
    rev->next = s->head;
    s->head = rev;
    rev = next;
  }
  /* Files now exist before any listing taken earlier. */
  forget_files(st);
}

/* ---- The sink interface (flusher thread) --------------------------------- */

static int http_send(tl_sink *base, int kind, const uint8_t *p, size_t n) {
  http_sink *s = (http_sink *)base;
  msg *m = malloc(sizeof *m + n);
  if (m) {
    m->next = NULL;
    m->kind = kind;
    m->n = n;
    memcpy(m->data, p, n);
  }
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  /* An oversized message is taken when the queue is empty: it has to go
   * somewhere, and memory stays bounded by one message plus the cap. */
  if (m && !s->spilled && !s->closing &&
      (s->queued == 0 || s->queued + n <= QUEUE_CAP)) {
    if (s->tail)
      s->tail->next = m;
    else
      s->head = m;
    s->tail = m;
    s->queued += n;
    m = NULL;
    pthread_cond_signal(&s->cv);
  } else {
    rc = spill_append(s, kind, p, n);
  }
  pthread_mutex_unlock(&s->mu);
  free(m);
  return rc;
}

/* ---- HTTP (sender thread) ------------------------------------------------ */

static size_t discard_body(char *p, size_t size, size_t nmemb, void *ctx) {
  (void)p;
  (void)ctx;
  return size * nmemb;
}

static void curl_setup(sender *st) {
  http_sink *s = st->s;
  if (curl_init_rc != CURLE_OK || !(st->curl = curl_easy_init()))
    return;
  struct curl_slist *h = NULL, *t;
  const char *lines[] = {"Content-Type: application/octet-stream",
                         /* No "100 Continue" round trip before bodies. */
                         "Expect:", s->auth};
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
    if (!lines[i])
      continue;
    if (!(t = curl_slist_append(h, lines[i]))) {
      curl_slist_free_all(h);
      curl_easy_cleanup(st->curl);
      st->curl = NULL;
      return;
    }
    h = t;
  }
  st->headers = h;
  CURL *c = st->curl;
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  /* A URL from the environment must not make us read files or the like. */
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
}

/* Runs the prepared transfer to completion, or until the drain time is over
 * (close wakes the poll up). */
static CURLcode perform(sender *st) {
  CURLM *multi = st->s->multi;
  if (curl_multi_add_handle(multi, st->curl) != CURLM_OK)
    return CURLE_FAILED_INIT;
  CURLcode res = CURLE_FAILED_INIT;
  for (;;) {
    int running = 0, left;
    if (curl_multi_perform(multi, &running) != CURLM_OK)
      break;
    CURLMsg *m;
    bool done = false;
    while ((m = curl_multi_info_read(multi, &left)))
      if (m->msg == CURLMSG_DONE) {
        res = m->data.result;
        done = true;
      }
    if (done || !running)
      break;
    int wait_ms = 1000;
    uint64_t at = atomic_load_explicit(&st->s->abort_at, memory_order_relaxed);
    if (at) {
      uint64_t now = tl_mono_ns();
      if (now >= at) {
        res = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      if ((at - now) / 1000000 + 1 < (uint64_t)wait_ms)
        wait_ms = (int)((at - now) / 1000000 + 1);
    }
    if (curl_multi_poll(multi, NULL, 0, wait_ms, NULL) != CURLM_OK)
      break;
  }
  curl_multi_remove_handle(multi, st->curl);
  return res;
}

/* POSTs one message. 2xx is delivered; other 4xx answers (but 408 and 429)
 * mean the server will never take this message; anything else may pass
 * later. */
static int post(sender *st, int kind, const uint8_t *p, size_t n) {
  http_sink *s = st->s;
  if (kind < TL_MSG_PROCESS || kind > TL_MSG_BLOCK)
    return POST_REJECTED;
  if (!st->curl)
    return POST_RETRY;
  CURL *c = st->curl;
  curl_easy_setopt(c, CURLOPT_URL, s->urls[kind]);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)p);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
  if (perform(st) != CURLE_OK)
    return POST_RETRY;
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300)
    return POST_OK;
  if (code >= 400 && code < 500 && code != 408 && code != 429)
    return POST_REJECTED;
  return POST_RETRY;
}

/* ---- Retry state (sender thread) ----------------------------------------- */

static void schedule_retry(sender *st) {
  st->next_try = tl_mono_ns() + (uint64_t)st->backoff_ms * 1000000u;
  st->backoff_ms *= 2;
  if (st->backoff_ms > BACKOFF_MAX_MS)
    st->backoff_ms = BACKOFF_MAX_MS;
}

/* The server answered (a 2xx or a refusal): it is up. */
static void server_up(sender *st) {
  st->down = false;
  st->attempts = 0;
  st->backoff_ms = BACKOFF_MIN_MS;
  st->next_try = 0;
}

static void server_down(sender *st) {
  st->down = true;
  st->attempts = 0;
  schedule_retry(st);
}

/* ---- Serving the memory queue -------------------------------------------- */

static void pop_head(http_sink *s, msg *m) {
  pthread_mutex_lock(&s->mu);
  s->head = m->next;
  if (!s->head)
    s->tail = NULL;
  s->queued -= m->n;
  pthread_mutex_unlock(&s->mu);
  free(m);
}

static void do_mem(sender *st, msg *m) {
  http_sink *s = st->s;
  uint64_t start = tl_mono_ns();
  int r = post(st, m->kind, m->data, m->n);
  if (r != POST_RETRY) {
    if (r == POST_REJECTED)
      count_failed(m->kind, m->data, m->n);
    server_up(st);
    pop_head(s, m);
    return;
  }
  /* The time budget counts from the first attempt's start, so that a server
   * that hangs until the request times out is given up on quickly. */
  if (st->attempts++ == 0)
    st->first_try = start;
  if (!st->down && st->attempts < MAX_ATTEMPTS &&
      tl_mono_ns() - st->first_try < MAX_RETRY_NS) {
    schedule_retry(st);
    return;
  }
  /* The server looks down: memory is for a short hiccup, the disk for an
   * outage (and for a crash during it). */
  pthread_mutex_lock(&s->mu);
  spill_queue(st);
  pthread_mutex_unlock(&s->mu);
  server_down(st);
}

/* ---- Resending our spilled files ----------------------------------------- */

/* Lists a spool directory; a directory that does not exist is empty. */
static int list_dir(const char *dir, char ***names, size_t *n) {
  int rc = tl_spool_list(dir, names, n);
  if (rc == TL_EIO && access(dir, F_OK) && errno == ENOENT)
    rc = 0;
  return rc;
}

/* Reads a spilled file: 0 and the bytes, 1 to skip it (gone or unreadable,
 * after counting it), or -1 to try again later. */
static int read_file(const char *path, int kind, uint8_t **p, size_t *n) {
  int rc = tl_read_file(path, MAX_FILE, p, n);
  if (!rc)
    return 0;
  if (rc == TL_ENOMEM)
    return -1;
  if (rc != TL_ENOTFOUND)
    count_failed(kind, NULL, 0);
  return 1;
}

static void do_file(sender *st) {
  http_sink *s = st->s;
  if (st->ifile >= st->nfiles) {
    forget_files(st);
    if (list_dir(s->own_dir, &st->files, &st->nfiles)) {
      schedule_retry(st);
      return;
    }
    if (!st->nfiles) {
      /* Looks drained: confirm under the lock, since the flusher may have
       * just written a file, then go back to the memory queue. */
      pthread_mutex_lock(&s->mu);
      if (!list_dir(s->own_dir, &st->files, &st->nfiles) && !st->nfiles) {
        s->spilled = false;
        st->next_scan = 0; /* a good moment to look for orphans */
      }
      pthread_mutex_unlock(&s->mu);
      return;
    }
  }
  const char *path = st->files[st->ifile];
  int kind = tl_spool_kind_of(path);
  uint8_t *p = NULL;
  size_t n = 0;
  int rd = read_file(path, kind, &p, &n);
  if (rd < 0) {
    schedule_retry(st);
    return;
  }
  int r = rd ? POST_REJECTED : post(st, kind, p, n);
  if (r == POST_RETRY) {
    free(p);
    server_down(st);
    return;
  }
  if (!rd) {
    if (r == POST_OK && kind == TL_MSG_BLOCK)
      count(&tl__counters.blocks_resent, 1);
    else if (r == POST_REJECTED)
      count_failed(kind, p, n);
    server_up(st);
  }
  free(p);
  pthread_mutex_lock(&s->mu);
  tl_spool_remove(s->spool, path);
  pthread_mutex_unlock(&s->mu);
  st->ifile++;
}

/* ---- Orphans: spill directories of dead processes ------------------------ */

/* Takes a directory whose owner is gone: its lock can be taken, and is not
 * brand new (a live process creates the lock file just before locking it). */
static bool claim_orphan(sender *st, const char *name) {
  char dir[4096], lock[4200];
  if ((size_t)snprintf(dir, sizeof dir, "%s/%s", st->s->root, name) >=
      sizeof dir)
    return false;
  snprintf(lock, sizeof lock, "%s/.lock", dir);
  int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return false;
  struct stat a, b;
  /* After the lock is ours, the path must still name the same file: a
   * previous claimant removes the lock file once the directory is empty. */
  if (fstat(fd, &a) || !S_ISREG(a.st_mode) ||
      time(NULL) - a.st_mtime < ORPHAN_MIN_AGE_S ||
      flock(fd, LOCK_EX | LOCK_NB) || stat(lock, &b) || a.st_ino != b.st_ino ||
      a.st_dev != b.st_dev || !(st->orphan_dir = strdup(dir))) {
    close(fd);
    return false;
  }
  st->orphan_fd = fd;
  return true;
}

static void scan_orphans(sender *st) {
  http_sink *s = st->s;
  st->next_scan = tl_mono_ns() + SCAN_PERIOD_NS;
  DIR *d = opendir(s->root);
  if (!d)
    return;
  struct dirent *e;
  uint8_t id[16];
  while ((e = readdir(d)))
    if (strlen(e->d_name) == 36 && !tl_uuid_parse(e->d_name, id) &&
        strcmp(e->d_name, s->own_name) && claim_orphan(st, e->d_name))
      break;
  closedir(d);
}

/* Lets go of the orphan; removes its directory when it was emptied (the
 * lock file last, so that nobody claims an empty directory). */
static void release_orphan(sender *st, bool emptied) {
  if (emptied) {
    DIR *d = opendir(st->orphan_dir);
    struct dirent *e;
    char path[4200];
    while (d && (e = readdir(d)))
      if (!strncmp(e->d_name, ".tmp-", 5)) {
        snprintf(path, sizeof path, "%s/%s", st->orphan_dir, e->d_name);
        unlink(path);
      }
    if (d)
      closedir(d);
    snprintf(path, sizeof path, "%s/.lock", st->orphan_dir);
    unlink(path);
    rmdir(st->orphan_dir);
  }
  close(st->orphan_fd);
  st->orphan_fd = -1;
  free(st->orphan_dir);
  st->orphan_dir = NULL;
  tl_spool_list_free(st->ofiles, st->nofiles);
  st->ofiles = NULL;
  st->nofiles = st->iofile = 0;
}

/* Resends one file of the orphan. Its messages are another process's: they
 * do not enter this process's statistics. */
static void do_orphan(sender *st) {
  if (st->iofile >= st->nofiles) {
    tl_spool_list_free(st->ofiles, st->nofiles);
    st->ofiles = NULL;
    st->iofile = 0;
    int rc = list_dir(st->orphan_dir, &st->ofiles, &st->nofiles);
    if (rc || !st->nofiles) {
      release_orphan(st, !rc);
      if (!rc)
        st->next_scan = 0; /* there may be more */
      return;
    }
  }
  const char *path = st->ofiles[st->iofile];
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = tl_read_file(path, MAX_FILE, &p, &n);
  if (rc == TL_ENOMEM) {
    schedule_retry(st);
    return;
  }
  int r = rc ? POST_REJECTED : post(st, tl_spool_kind_of(path), p, n);
  free(p);
  if (r == POST_RETRY) {
    server_down(st);
    return;
  }
  if (!rc)
    server_up(st);
  unlink(path);
  st->iofile++;
}

/* ---- The sender thread --------------------------------------------------- */

static void wait_until(http_sink *s, uint64_t t) {
  if (t == UINT64_MAX) {
    pthread_cond_wait(&s->cv, &s->mu);
    return;
  }
  struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
  pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* Waits for something to do. Our own messages come first (memory, then
 * spilled files), orphans only when we are idle and not closing. */
static int next_work(sender *st, msg **m) {
  http_sink *s = st->s;
  int w;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    uint64_t now = tl_mono_ns(), wake;
    bool own = s->head || s->spilled;
    if (s->closing && (!own || now >= s->deadline)) {
      w = W_EXIT;
      break;
    }
    if (now < st->next_try) {
      wake = st->next_try;
    } else if (s->head) {
      *m = s->head;
      w = W_MEM;
      break;
    } else if (s->spilled) {
      w = W_FILE;
      break;
    } else if (st->orphan_dir) {
      w = W_ORPHAN;
      break;
    } else if (now >= st->next_scan) {
      w = W_SCAN;
      break;
    } else {
      wake = st->next_scan;
    }
    if (s->closing && wake > s->deadline)
      wake = s->deadline;
    wait_until(s, wake);
  }
  pthread_mutex_unlock(&s->mu);
  return w;
}

/* Spills what is still in memory so that nothing is lost; counts what could
 * not be spilled either. */
static void finish(sender *st) {
  http_sink *s = st->s;
  pthread_mutex_lock(&s->mu);
  spill_queue(st);
  while (s->head) {
    msg *m = s->head;
    s->head = m->next;
    count_failed(m->kind, m->data, m->n);
    free(m);
  }
  s->tail = NULL;
  s->queued = 0;
  pthread_mutex_unlock(&s->mu);
  if (st->orphan_dir)
    release_orphan(st, false);
  forget_files(st);
  if (st->curl)
    curl_easy_cleanup(st->curl);
  curl_slist_free_all(st->headers);
}

static void *sender_main(void *arg) {
  sender st;
  memset(&st, 0, sizeof st);
  st.s = arg;
  st.backoff_ms = BACKOFF_MIN_MS;
  st.orphan_fd = -1;
  curl_setup(&st);
  for (;;) {
    msg *m = NULL;
    int w = next_work(&st, &m);
    if (w == W_EXIT)
      break;
    switch (w) {
    case W_MEM:
      do_mem(&st, m);
      break;
    case W_FILE:
      do_file(&st);
      break;
    case W_ORPHAN:
      do_orphan(&st);
      break;
    case W_SCAN:
      scan_orphans(&st);
      break;
    }
  }
  finish(&st);
  return NULL;
}

/* ---- Open and close ------------------------------------------------------ */

static void sink_free(http_sink *s) {
  for (int k = 0; k < 4; k++)
    free(s->urls[k]);
  free(s->auth);
  free(s->root);
  free(s->own_dir);
  free(s);
}

static void http_close(tl_sink *base) {
  http_sink *s = (http_sink *)base;
  pthread_mutex_lock(&s->mu);
  s->closing = true;
  s->deadline = tl_mono_ns() + (uint64_t)s->drain_ms * 1000000u;
  atomic_store_explicit(&s->abort_at, s->deadline, memory_order_relaxed);
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  curl_multi_wakeup(s->multi);
  pthread_join(s->thread, NULL);
  curl_multi_cleanup(s->multi);
  tl_spool_close(s->spool);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  sink_free(s);
}

static char *str_printf(const char *fmt, const char *a, const char *b) {
  int n = snprintf(NULL, 0, fmt, a, b);
  char *p = n < 0 ? NULL : malloc((size_t)n + 1);
  if (p)
    snprintf(p, (size_t)n + 1, fmt, a, b);
  return p;
}

int tl__sink_http_open(tl_sink **out, const char *url, const char *api_key,
                       const char *spill_dir, const uint8_t pid[16],
                       unsigned drain_ms) {
  static const char *paths[4] = {NULL, "process", "stream", "block"};
  /* A line break in the key would smuggle headers into every request. */
  if (!url || !*url || !spill_dir || !*spill_dir ||
      (api_key && api_key[strcspn(api_key, "\r\n")]))
    return TL_EINVAL;
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_rc != CURLE_OK)
    return TL_ESYS;
  int rc = TL_ENOMEM;
  http_sink *s = calloc(1, sizeof *s);
  if (!s)
    return TL_ENOMEM;
  char *base = strdup(url);
  if (!base)
    goto fail_sink;
  for (size_t n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
    base[n - 1] = 0;
  for (int k = TL_MSG_PROCESS; k <= TL_MSG_BLOCK; k++)
    if (!(s->urls[k] = str_printf("%s/ingestion/insert_%s", base, paths[k])))
      goto fail_base;
  tl_uuid_format(pid, s->own_name);
  memcpy(s->pid, pid, 16);
  if ((api_key &&
       !(s->auth = str_printf("Authorization: %s%s", "Bearer ", api_key))) ||
      !(s->root = strdup(spill_dir)) ||
      !(s->own_dir = str_printf("%s/%s", spill_dir, s->own_name)))
    goto fail_base;
  if (!(s->multi = curl_multi_init()))
    goto fail_base;
  s->drain_ms = drain_ms;
  s->base.send = http_send;
  s->base.close = http_close;

  rc = TL_ESYS;
  if (tl_cond_init(&s->cv))
    goto fail_base;
  if (pthread_mutex_init(&s->mu, NULL))
    goto fail_cond;
  /* The sender takes no signals: they belong to the application's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int trc = pthread_create(&s->thread, NULL, sender_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (trc)
    goto fail_mutex;
  free(base);
  *out = &s->base;
  return 0;

fail_mutex:
  pthread_mutex_destroy(&s->mu);
fail_cond:
  pthread_cond_destroy(&s->cv);
fail_base:
  free(base);
  curl_multi_cleanup(s->multi);
fail_sink:
  sink_free(s);
  return rc;
}

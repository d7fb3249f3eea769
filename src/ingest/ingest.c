/* ingest.c - validation and durable storage of posted messages (ingest.h).
 *
 * A block is acknowledged only when both halves are durable, blob first:
 * the blob is written once (create-if-absent), then its catalog row is
 * committed. A crash between the two leaves an unreferenced blob that no
 * reader sees (readers go through the catalog); the client, which got no
 * 200, sends the block again, finds the identical blob and commits the row.
 */
#define TL_TARGET "tracelake::ingest"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "tracelake/tracelake.h"

#define MAX_BLOB ((size_t)TL_WIRE_MAX_PAYLOAD + 4096)

/* The in-process sink's group of blocks (only the flusher thread touches
 * it): blobs written without fsync, rows kept for tl_ingest_sink_commit. */
typedef struct group {
  tl_catalog_block *rows;
  size_t n, cap;
} group;

struct tl_ingest {
  tl_catalog *catalog;
  tl_store *store;
  group g;
};

int tl_ingest_open(tl_ingest **out, tl_catalog *catalog, tl_store *store) {
  tl_ingest *ig = calloc(1, sizeof *ig);
  if (!ig)
    return TL_ENOMEM;
  ig->catalog = catalog;
  ig->store = store;
  *out = ig;
  return 0;
}

void tl_ingest_close(tl_ingest *ig) {
  if (ig)
    free(ig->g.rows);
  free(ig);
}

static int group_add(group *g, const tl_catalog_block *row) {
  if (tl_grow(&g->rows, &g->cap, g->n + 1, sizeof *g->rows, 64))
    return TL_ENOMEM;
  g->rows[g->n++] = *row;
  return 0;
}

__attribute__((format(printf, 3, 4))) static void
reply(tl_ingest_reply *r, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  r->status = status;
}

/* Maps a catalog or store failure to a status: unavailable is 503 (retry),
 * anything else 500. */
static void reply_failure(tl_ingest_reply *r, int rc, const char *what,
                          const char *detail) {
  if (rc == TL_EINVAL)
    reply(r, 400, "%s refused: %s", what, detail);
  else
    reply(r,
          rc == TL_EUNAVAILABLE || rc == TL_EIO || rc == TL_ENOMEM ? 503 : 500,
          "%s failed, retry later: %s", what, detail);
}

/* Names the first property key or value that is not valid UTF-8 text. */
static const char *bad_props(const tl_kv *kv, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (!tl_utf8_valid(kv[i].key.p, kv[i].key.n) ||
        !tl_utf8_valid(kv[i].value.p, kv[i].value.n))
      return "properties";
  return NULL;
}

/* The catalog stores these fields as text: refuse what is not UTF-8. */
static const char *bad_process_text(const tl_wire_process *m) {
  const tl_slice *f[] = {&m->exe,      &m->username, &m->realname,
                         &m->computer, &m->distro,   &m->cpu_brand};
  static const char *names[] = {"exe",      "username", "realname",
                                "computer", "distro",   "cpu_brand"};
  for (int i = 0; i < 6; i++)
    if (!tl_utf8_valid(f[i]->p, f[i]->n))
      return names[i];
  return bad_props(m->props, m->nprops);
}

static const char *kind_name(int kind) {
  return kind == TL_MSG_PROCESS  ? "process"
         : kind == TL_MSG_STREAM ? "stream"
         : kind == TL_MSG_BLOCK  ? "block"
                                 : "unknown";
}

static void handle_process(tl_ingest *ig, const uint8_t *p, size_t n,
                           tl_ingest_reply *r) {
  tl_wire_process m;
  tl_wire_error err = {0};
  if (tl_process_decode(p, n, &m, &err)) {
    reply(r, 400, "malformed process message: %s", err.reason);
    return;
  }
  const char *bad = bad_process_text(&m);
  if (bad) {
    reply(r, 400, "malformed process message: %s is not UTF-8 text", bad);
    return;
  }
  bool existed;
  tl_slice raw = {p, n};
  int rc =
      tl_catalog_insert_process(ig->catalog, &m, raw, tl_wall_ns(), &existed);
  char id[37];
  tl_uuid_format(m.process_id, id);
  if (rc == TL_ECONFLICT)
    reply(r, 409, "process %s already exists with different content", id);
  else if (rc)
    reply_failure(r, rc, "storing the process", tl_catalog_errmsg(ig->catalog));
  else
    reply(r, 200, "%s process %s", existed ? "already stored" : "stored", id);
}

static void handle_stream(tl_ingest *ig, const uint8_t *p, size_t n,
                          tl_ingest_reply *r) {
  tl_wire_stream m;
  tl_wire_error err = {0};
  if (tl_stream_decode(p, n, &m, &err)) {
    reply(r, 400, "malformed stream message: %s", err.reason);
    return;
  }
  const char *bad = bad_props(m.props, m.nprops);
  for (uint32_t i = 0; i < m.ntags && !bad; i++)
    if (!tl_utf8_valid(m.tags[i].p, m.tags[i].n))
      bad = "tags";
  if (bad) {
    reply(r, 400, "malformed stream message: %s is not UTF-8 text", bad);
    return;
  }
  bool existed;
  tl_slice raw = {p, n};
  int rc =
      tl_catalog_insert_stream(ig->catalog, &m, raw, tl_wall_ns(), &existed);
  char id[37], pid[37];
  tl_uuid_format(m.stream_id, id);
  tl_uuid_format(m.process_id, pid);
  if (rc == TL_ENOTFOUND)
    reply(r, 404, "stream %s names unknown process %s: send the process first",
          id, pid);
  else if (rc == TL_ECONFLICT)
    reply(r, 409, "stream %s already exists with different content", id);
  else if (rc)
    reply_failure(r, rc, "storing the stream", tl_catalog_errmsg(ig->catalog));
  else
    reply(r, 200, "%s stream %s", existed ? "already stored" : "stored", id);
}

/* An identical blob already stored under this key? 0 same, 1 different,
 * negative on read failure. */
static int compare_blob(tl_ingest *ig, const char *key, const uint8_t *p,
                        size_t n) {
  uint8_t *old = NULL;
  size_t on = 0;
  int rc = tl_store_get(ig->store, key, MAX_BLOB, &old, &on);
  if (rc == TL_ETOOBIG)
    return 1;
  if (rc)
    return rc;
  int differs = on != n || memcmp(old, p, n) != 0;
  free(old);
  return differs;
}

/* Stores a block: blob, then its row. With a group `g` (the in-process
 * sink), the blob is not synced and the row is kept in `g`: both are made
 * durable by tl_ingest_sink_commit. */
static void handle_block(tl_ingest *ig, const uint8_t *p, size_t n, group *g,
                         tl_ingest_reply *r) {
  tl_wire_error err = {0};
  if (tl_block_decode(p, n, NULL, &err)) {
    reply(r, 400, "malformed block: %s", err.reason);
    return;
  }
  tl_wire_block_header h;
  tl_block_header_decode(p, n, &h, &err);
  char bid[37], sid[37], pid[37];
  tl_uuid_format(h.block_id, bid);
  tl_uuid_format(h.stream_id, sid);
  tl_uuid_format(h.process_id, pid);

  uint8_t owner[16];
  int rc = tl_catalog_stream_process(ig->catalog, h.stream_id, owner);
  if (rc == TL_ENOTFOUND) {
    reply(r, 404, "block %s names unknown stream %s: send the stream first",
          bid, sid);
    return;
  }
  if (rc) {
    reply_failure(r, rc, "looking up the stream",
                  tl_catalog_errmsg(ig->catalog));
    return;
  }
  if (memcmp(owner, h.process_id, 16)) {
    char oid[37];
    tl_uuid_format(owner, oid);
    reply(r, 409, "block %s names process %s but stream %s belongs to %s", bid,
          pid, sid, oid);
    return;
  }

  tl_catalog_block row = {0};
  memcpy(row.block_id, h.block_id, 16);
  memcpy(row.stream_id, h.stream_id, 16);
  memcpy(row.process_id, h.process_id, 16);
  row.begin_time = h.begin_time;
  row.end_time = h.end_time;
  row.begin_ticks = h.begin_ticks;
  row.end_ticks = h.end_ticks;
  row.nb_objects = h.nb_objects;
  row.payload_size = h.payload_size;
  row.blob_size = n;
  row.blob_crc = tl_block_content_crc(p, n);
  row.insert_time = tl_wall_ns();

  /* A known block id: compare with its row before touching the store, so a
   * conflicting re-send (even naming another stream) writes nothing. */
  tl_catalog_block old;
  rc = tl_catalog_get_block(ig->catalog, h.block_id, &old);
  if (rc == 0) {
    char key[128];
    tl_store_block_key(old.process_id, old.stream_id, old.block_id, key);
    int cmp = old.blob_size != row.blob_size || old.blob_crc != row.blob_crc
                  ? 1
                  : compare_blob(ig, key, p, n);
    if (cmp < 0)
      reply_failure(r, cmp, "reading the stored block", "object store error");
    else if (cmp)
      reply(r, 409, "block %s already exists with different content", bid);
    else
      reply(r, 200, "already stored block %s (%u events)", bid, h.nb_objects);
    return;
  }
  if (rc != TL_ENOTFOUND) {
    reply_failure(r, rc, "looking up the block",
                  tl_catalog_errmsg(ig->catalog));
    return;
  }

  char key[128];
  tl_store_block_key(h.process_id, h.stream_id, h.block_id, key);
  bool existed = false;
  rc = g ? tl_store_put_new_unsynced(ig->store, key, p, n, &existed)
         : tl_store_put_new(ig->store, key, p, n, &existed);
  if (rc) {
    reply_failure(r, rc, "writing the block", "object store error");
    return;
  }
  if (existed) {
    /* Left by an attempt that crashed before its commit, or by a
     * concurrent request for the same block. */
    int cmp = compare_blob(ig, key, p, n);
    if (cmp < 0) {
      reply_failure(r, cmp, "reading the stored block", "object store error");
      return;
    }
    if (cmp) {
      reply(r, 409, "block %s already exists with different content", bid);
      return;
    }
  }
  if (g) {
    if (group_add(g, &row))
      reply(r, 503, "out of memory");
    else
      reply(r, 200, "accepted block %s (%u events)", bid, h.nb_objects);
    return;
  }
  bool row_existed, same;
  rc = tl_catalog_insert_block(ig->catalog, &row, &row_existed, &same);
  if (rc) {
    reply_failure(r, rc, "committing the block",
                  tl_catalog_errmsg(ig->catalog));
  } else if (row_existed && !same) {
    /* Lost a race with a conflicting block of the same id stored under
     * another stream: our blob is referenced by no row. */
    if (!existed)
      tl_store_delete(ig->store, key);
    reply(r, 409, "block %s already exists with different content", bid);
  } else {
    reply(r, 200, "%s block %s (%u events)",
          row_existed ? "already stored" : "stored", bid, h.nb_objects);
  }
}

/* The server's own request metrics: one call site per endpoint and figure,
 * since names must be literals. */
static void record_request(int kind, size_t n, uint64_t ticks, int status) {
  switch (kind) {
  case TL_MSG_PROCESS:
    TL_IMETRIC("ingest_process_requests", "count", 1);
    TL_IMETRIC("ingest_process_duration", "ticks", ticks);
    TL_IMETRIC("ingest_process_bytes", "bytes", n);
    break;
  case TL_MSG_STREAM:
    TL_IMETRIC("ingest_stream_requests", "count", 1);
    TL_IMETRIC("ingest_stream_duration", "ticks", ticks);
    TL_IMETRIC("ingest_stream_bytes", "bytes", n);
    break;
  default:
    TL_IMETRIC("ingest_block_requests", "count", 1);
    TL_IMETRIC("ingest_block_duration", "ticks", ticks);
    TL_IMETRIC("ingest_block_bytes", "bytes", n);
  }
  if (status >= 500)
    TL_IMETRIC("ingest_errors_5xx", "count", 1);
  else if (status >= 400)
    TL_IMETRIC("ingest_errors_4xx", "count", 1);
}

/* Checks the message's kind and stores it; blocks into `g` when not NULL
 * (the grouped in-process sink). */
static void dispatch(tl_ingest *ig, int kind, const uint8_t *p, size_t n,
                     group *g, tl_ingest_reply *r) {
  int got = tl_wire_kind(p, n);
  if (got < 0)
    reply(r, 400, "malformed %s: not a tracelake message (bad magic)",
          kind_name(kind));
  else if (got != kind)
    reply(r, 400, "expected a %s message, got a %s message", kind_name(kind),
          kind_name(got));
  else if (kind == TL_MSG_PROCESS)
    handle_process(ig, p, n, r);
  else if (kind == TL_MSG_STREAM)
    handle_stream(ig, p, n, r);
  else
    handle_block(ig, p, n, g, r);
}

void tl_ingest_handle(tl_ingest *ig, int kind, const uint8_t *p, size_t n,
                      bool record, tl_ingest_reply *r) {
  uint64_t t0 = tl_ticks();
  dispatch(ig, kind, p, n, NULL, r);
  if (!record)
    return;
  record_request(kind, n, tl_ticks() - t0, r->status);
  if (r->status >= 400)
    TL_WARN("insert_%s: %d %s", kind_name(kind), r->status, r->msg);
}

void tl_ingest_health(tl_ingest *ig, tl_ingest_reply *r) {
  if (tl_catalog_health(ig->catalog))
    reply(r, 503, "catalog unavailable: %s", tl_catalog_errmsg(ig->catalog));
  else if (tl_store_health(ig->store))
    reply(r, 503, "object store unavailable: %s is not writable",
          tl_store_root(ig->store));
  else
    reply(r, 200, "ok");
}

int tl_ingest_sink(void *ctx, int kind, const uint8_t *p, size_t n) {
  tl_ingest_reply r;
  dispatch(ctx, kind, p, n, NULL, &r);
  return r.status == 200 ? 0 : TL_EUNAVAILABLE;
}

int tl_ingest_sink_grouped(void *ctx, int kind, const uint8_t *p, size_t n) {
  tl_ingest *ig = ctx;
  tl_ingest_reply r;
  dispatch(ig, kind, p, n, &ig->g, &r);
  return r.status == 200 ? 0 : TL_EUNAVAILABLE;
}

int tl_ingest_sink_commit(void *ctx) {
  tl_ingest *ig = ctx;
  group *g = &ig->g;
  if (!g->n)
    return 0;
  /* On failure the blobs stay: a row may have been committed, and an
   * unreferenced blob is what a crash leaves anyway (no reader sees it). */
  size_t conflicts = 0;
  int rc = tl_store_sync(ig->store);
  if (!rc)
    rc = tl_catalog_insert_blocks(ig->catalog, g->rows, g->n, &conflicts);
  if (!rc && conflicts)
    rc = TL_ECONFLICT;
  g->n = 0;
  return rc;
}

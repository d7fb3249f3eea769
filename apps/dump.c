/* dump.c - `tracelake dump`: decodes wire messages from a file or a spool
 * directory and prints one JSON object per message and per event, or a
 * summary. Corrupt input gets the decoder's reason and a non-zero exit. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "apps.h"
#include "runtime/sinks/spool.h"
#include "wire/wire.h"

#define MAX_FILE (TL_WIRE_MAX_PAYLOAD + (size_t)(1 << 20))

/* What the dump remembers across files: processes (for their clocks) and
 * streams (for their tags), plus the summary counters. */
typedef struct known_process {
  uint8_t id[16];
  tl_clock_ref clock;
} known_process;

typedef struct known_stream {
  uint8_t id[16];
  char tag[16];
  uint64_t events;
} known_stream;

typedef struct dump_ctx {
  FILE *out;
  bool summary;
  known_process *procs;
  size_t nprocs;
  known_stream *streams;
  size_t nstreams;
  uint64_t files, processes, blocks, bad;
  uint64_t by_type[8];
  /* per block */
  const tl_wire_block_header *h;
  char stream_text[37];
  const char *stream_tag;
  const known_process *proc;
} dump_ctx;

static const char *type_name(int t) {
  static const char *names[8] = {"log",          "log",        "metric_int",
                                 "metric_float", "span_begin", "span_end",
                                 "async_begin",  "async_end"};
  return names[t & 7];
}

static const char *level_name(int l) {
  static const char *names[7] = {"?",    "fatal", "error", "warn",
                                 "info", "debug", "trace"};
  return l >= 1 && l <= 6 ? names[l] : "?";
}

static void json_str(FILE *o, tl_slice s) {
  fputc('"', o);
  for (size_t i = 0; i < s.n; i++) {
    unsigned char c = s.p[i];
    if (c == '"' || c == '\\')
      fprintf(o, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", o);
    else if (c == '\t')
      fputs("\\t", o);
    else if (c == '\r')
      fputs("\\r", o);
    else if (c < 0x20)
      fprintf(o, "\\u%04x", c);
    else
      fputc(c, o);
  }
  fputc('"', o);
}

static void json_props(FILE *o, uint32_t n, const tl_kv *kv) {
  fputc('{', o);
  for (uint32_t i = 0; i < n; i++) {
    if (i)
      fputc(',', o);
    json_str(o, kv[i].key);
    fputc(':', o);
    json_str(o, kv[i].value);
  }
  fputc('}', o);
}

static known_stream *find_stream(dump_ctx *d, const uint8_t id[16]) {
  for (size_t i = 0; i < d->nstreams; i++)
    if (!memcmp(d->streams[i].id, id, 16))
      return &d->streams[i];
  return NULL;
}

static const known_process *find_process(dump_ctx *d, const uint8_t id[16]) {
  for (size_t i = 0; i < d->nprocs; i++)
    if (!memcmp(d->procs[i].id, id, 16))
      return &d->procs[i];
  return NULL;
}

static int64_t event_time(const dump_ctx *d, uint64_t ticks) {
  if (d->proc)
    return tl_ticks_to_wall(ticks, d->proc->clock.start_ticks,
                            d->proc->clock.start_time,
                            d->proc->clock.tsc_frequency);
  /* No process message seen: interpolate within the block's range. */
  const tl_wire_block_header *h = d->h;
  if (h->end_ticks == h->begin_ticks)
    return h->begin_time;
  return h->begin_time + (int64_t)((__int128)(ticks - h->begin_ticks) *
                                   (h->end_time - h->begin_time) /
                                   (__int128)(h->end_ticks - h->begin_ticks));
}

static int on_event(void *ctx, const tl_wire_event *ev) {
  dump_ctx *d = ctx;
  d->by_type[ev->type & 7]++;
  if (d->summary)
    return 0;
  FILE *o = d->out;
  const tl_wire_callsite *cs = ev->cs;
  fprintf(o,
          "{\"stream\":\"%s\",\"stream_tag\":\"%s\",\"kind\":\"%s\","
          "\"time\":%" PRId64 ",\"ticks\":%" PRIu64,
          d->stream_text, d->stream_tag, type_name(ev->type),
          event_time(d, ev->ticks), ev->ticks);
  fputs(",\"target\":", o);
  json_str(o, cs->target);
  switch (ev->type) {
  case TL_EV_LOG:
  case TL_EV_LOGF:
    fprintf(o, ",\"level\":\"%s\",\"msg\":", level_name(cs->level));
    json_str(o, ev->v.msg);
    break;
  case TL_EV_IMETRIC:
  case TL_EV_FMETRIC:
    fputs(",\"name\":", o);
    json_str(o, cs->name);
    fputs(",\"unit\":", o);
    json_str(o, cs->unit);
    if (ev->type == TL_EV_IMETRIC)
      fprintf(o, ",\"value\":%" PRIu64, ev->v.u);
    else
      fprintf(o, ",\"value\":%.17g", ev->v.f);
    break;
  case TL_EV_SPAN_BEGIN:
  case TL_EV_SPAN_END:
    fputs(",\"name\":", o);
    json_str(o, cs->name);
    break;
  default:
    fputs(",\"name\":", o);
    json_str(o, cs->name);
    fprintf(o,
            ",\"span_id\":%" PRIu64 ",\"parent_span_id\":%" PRIu64
            ",\"depth\":%u",
            ev->v.async.id, ev->v.async.parent, ev->v.async.depth);
  }
  fprintf(o, ",\"file\":");
  json_str(o, cs->file);
  fprintf(o, ",\"line\":%u}\n", cs->line);
  return 0;
}

static int dump_process(dump_ctx *d, const uint8_t *p, size_t n,
                        tl_wire_error *err) {
  tl_wire_process m;
  int rc = tl_process_decode(p, n, &m, err);
  if (rc)
    return rc;
  d->processes++;
  if (!find_process(d, m.process_id)) {
    known_process *np = realloc(d->procs, (d->nprocs + 1) * sizeof *np);
    if (!np)
      return TL_ENOMEM;
    d->procs = np;
    memcpy(np[d->nprocs].id, m.process_id, 16);
    np[d->nprocs].clock =
        (tl_clock_ref){m.start_ticks, m.start_time, m.tsc_frequency};
    d->nprocs++;
  }
  if (d->summary)
    return 0;
  char id[37], parent[37];
  tl_uuid_format(m.process_id, id);
  tl_uuid_format(m.parent_process_id, parent);
  FILE *o = d->out;
  fprintf(o,
          "{\"kind\":\"process\",\"process_id\":\"%s\","
          "\"parent_process_id\":\"%s\",\"start_time\":%" PRId64
          ",\"start_ticks\":%" PRIu64 ",\"tsc_frequency\":%" PRIu64,
          id, parent, m.start_time, m.start_ticks, m.tsc_frequency);
  const char *keys[] = {"exe",      "username", "realname",
                        "computer", "distro",   "cpu_brand"};
  const tl_slice *vals[] = {&m.exe,      &m.username, &m.realname,
                            &m.computer, &m.distro,   &m.cpu_brand};
  for (int i = 0; i < 6; i++) {
    fprintf(o, ",\"%s\":", keys[i]);
    json_str(o, *vals[i]);
  }
  fputs(",\"properties\":", o);
  json_props(o, m.nprops, m.props);
  fputs("}\n", o);
  return 0;
}

static int dump_stream(dump_ctx *d, const uint8_t *p, size_t n,
                       tl_wire_error *err) {
  tl_wire_stream m;
  int rc = tl_stream_decode(p, n, &m, err);
  if (rc)
    return rc;
  if (!find_stream(d, m.stream_id)) {
    known_stream *ns = realloc(d->streams, (d->nstreams + 1) * sizeof *ns);
    if (!ns)
      return TL_ENOMEM;
    d->streams = ns;
    known_stream *s = &ns[d->nstreams++];
    memset(s, 0, sizeof *s);
    memcpy(s->id, m.stream_id, 16);
    if (m.ntags)
      snprintf(s->tag, sizeof s->tag, "%.*s", (int)m.tags[0].n,
               (const char *)m.tags[0].p);
  }
  if (d->summary)
    return 0;
  char id[37], pid[37];
  tl_uuid_format(m.stream_id, id);
  tl_uuid_format(m.process_id, pid);
  FILE *o = d->out;
  fprintf(o,
          "{\"kind\":\"stream\",\"stream_id\":\"%s\",\"process_id\":\"%s\","
          "\"tags\":[",
          id, pid);
  for (uint32_t i = 0; i < m.ntags; i++) {
    if (i)
      fputc(',', o);
    json_str(o, m.tags[i]);
  }
  fputs("],\"properties\":", o);
  json_props(o, m.nprops, m.props);
  fputs("}\n", o);
  return 0;
}

static int on_header(void *ctx, const tl_wire_block_header *h) {
  dump_ctx *d = ctx;
  d->h = h;
  tl_uuid_format(h->stream_id, d->stream_text);
  known_stream *s = find_stream(d, h->stream_id);
  d->stream_tag = s && s->tag[0] ? s->tag : "?";
  d->proc = find_process(d, h->process_id);
  if (s)
    s->events += h->nb_objects;
  return 0;
}

static int dump_block(dump_ctx *d, const uint8_t *p, size_t n,
                      tl_wire_error *err) {
  /* Validate first so that a corrupt block prints no partial events. */
  int rc = tl_block_decode(p, n, NULL, err);
  if (rc)
    return rc;
  tl_block_visitor v = {d, on_header, on_event};
  rc = tl_block_decode(p, n, &v, err);
  if (!rc)
    d->blocks++;
  return rc;
}

static int dump_file(dump_ctx *d, const char *path) {
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = tl_read_file(path, MAX_FILE, &p, &n);
  if (rc) {
    fprintf(stderr, "tracelake dump: %s: cannot read: %s\n", path,
            rc == TL_ETOOBIG ? "file too large" : strerror(errno));
    d->bad++;
    return rc;
  }
  d->files++;
  tl_wire_error err = {0};
  switch (tl_wire_kind(p, n)) {
  case TL_MSG_PROCESS:
    rc = dump_process(d, p, n, &err);
    break;
  case TL_MSG_STREAM:
    rc = dump_stream(d, p, n, &err);
    break;
  case TL_MSG_BLOCK:
    rc = dump_block(d, p, n, &err);
    break;
  default:
    rc = TL_EMALFORMED;
    snprintf(err.reason, sizeof err.reason,
             "not a tracelake message (no known magic in the first 4 bytes)");
  }
  if (rc) {
    fprintf(stderr, "tracelake dump: %s: %s\n", path,
            err.reason[0] ? err.reason : tl_strerror(rc));
    d->bad++;
  }
  free(p);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Dumps a directory: its message files in order, then its subdirectories
 * (a spool root holds one directory per process). */
static int dump_dir(dump_ctx *d, const char *dir, int depth) {
  if (depth > 4)
    return 0;
  DIR *dh = opendir(dir);
  if (!dh) {
    fprintf(stderr, "tracelake dump: %s: %s\n", dir, strerror(errno));
    d->bad++;
    return TL_EIO;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(dh))) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn)
        break;
      names = nn;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    if (!(names[n] = malloc(len)))
      break;
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(dh);
  if (n)
    qsort(names, n, sizeof *names, cmp_str);
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < n; i++) {
      struct stat st;
      if (stat(names[i], &st))
        continue;
      if (pass == 0 && S_ISREG(st.st_mode))
        dump_file(d, names[i]);
      else if (pass == 1 && S_ISDIR(st.st_mode))
        dump_dir(d, names[i], depth + 1);
    }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return 0;
}

int tl_app_dump_path(const char *path, FILE *out, bool summary) {
  dump_ctx d;
  memset(&d, 0, sizeof d);
  d.out = out;
  d.summary = summary;
  struct stat st;
  if (stat(path, &st)) {
    fprintf(stderr, "tracelake dump: %s: %s\n", path, strerror(errno));
    return 1;
  }
  if (S_ISDIR(st.st_mode))
    dump_dir(&d, path, 0);
  else
    dump_file(&d, path);
  if (summary) {
    uint64_t events = 0;
    for (int i = 0; i < 8; i++)
      events += d.by_type[i];
    fprintf(out,
            "%" PRIu64 " files: %" PRIu64 " processes, %zu streams, %" PRIu64
            " blocks, %" PRIu64 " events\n",
            d.files, d.processes, d.nstreams, d.blocks, events);
    fprintf(
        out,
        "  logs %" PRIu64 " (formatted %" PRIu64 "), metrics %" PRIu64
        " int + %" PRIu64 " float, thread spans %" PRIu64 " begin / %" PRIu64
        " end, async spans %" PRIu64 " begin / %" PRIu64 " end\n",
        d.by_type[0] + d.by_type[1], d.by_type[1], d.by_type[2], d.by_type[3],
        d.by_type[4], d.by_type[5], d.by_type[6], d.by_type[7]);
    for (size_t i = 0; i < d.nstreams; i++) {
      char id[37];
      tl_uuid_format(d.streams[i].id, id);
      fprintf(out, "  stream %s %-7s %" PRIu64 " events\n", id,
              d.streams[i].tag, d.streams[i].events);
    }
    if (d.bad)
      fprintf(out, "  %" PRIu64 " files could not be decoded (see above)\n",
              d.bad);
  }
  free(d.procs);
  free(d.streams);
  return d.bad ? 1 : 0;
}

int tl_app_dump(int argc, char **argv) {
  bool summary = false;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--summary"))
      summary = true;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: tracelake dump [--summary] PATH\n\n"
             "Decodes a block file or a spool directory and prints one JSON\n"
             "object per process, stream and event (--summary: counts).\n"
             "Exits 1 if any file is corrupt, with the reason on stderr.\n");
      return 0;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "tracelake dump: unknown option %s\n", argv[i]);
      return 2;
    } else if (!path)
      path = argv[i];
    else {
      fprintf(stderr, "tracelake dump: one PATH only\n");
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "usage: tracelake dump [--summary] PATH\n");
    return 2;
  }
  return tl_app_dump_path(path, stdout, summary);
}

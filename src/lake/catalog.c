/* catalog.c - backend selection and the helpers both backends share. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "catalog_impl.h"

static __thread char last_error[512];

int tl__catalog_fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return code;
}

const char *tl_catalog_errmsg(tl_catalog *c) {
  (void)c;
  return last_error[0] ? last_error : "no error";
}

int tl_catalog_open(tl_catalog **out, const char *spec, char *err,
                    size_t errcap) {
  if (!spec || !*spec) {
    snprintf(err, errcap, "empty catalog specification");
    return TL_EINVAL;
  }
  if (!strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11))
    return tl__catalog_pg_open(out, spec, err, errcap);
  return tl__catalog_sqlite_open(out, spec, err, errcap);
}

void tl_catalog_close(tl_catalog *c) {
  if (c)
    c->ops->close(c);
}

const char *tl_catalog_backend(const tl_catalog *c) {
  return c->ops->name;
}

int tl_catalog_schema_version(tl_catalog *c, int *version) {
  return c->ops->schema_version(c, version);
}

int tl_catalog_health(tl_catalog *c) {
  return c->ops->health(c);
}

int tl_catalog_insert_process(tl_catalog *c, const tl_wire_process *m,
                              tl_slice raw, int64_t insert_time,
                              bool *existed) {
  return c->ops->insert_process(c, m, raw, insert_time, existed);
}

int tl_catalog_insert_stream(tl_catalog *c, const tl_wire_stream *m,
                             tl_slice raw, int64_t insert_time, bool *existed) {
  return c->ops->insert_stream(c, m, raw, insert_time, existed);
}

int tl_catalog_stream_process(tl_catalog *c, const uint8_t stream_id[16],
                              uint8_t process_id[16]) {
  return c->ops->stream_process(c, stream_id, process_id);
}

int tl_catalog_insert_block(tl_catalog *c, const tl_catalog_block *b,
                            bool *existed, bool *same) {
  return c->ops->insert_block(c, b, existed, same);
}

int tl_catalog_get_block(tl_catalog *c, const uint8_t block_id[16],
                         tl_catalog_block *out) {
  return c->ops->get_block(c, block_id, out);
}

int tl_catalog_counts_get(tl_catalog *c, tl_catalog_counts *out) {
  return c->ops->counts(c, out);
}

int tl_catalog_retire_batch(tl_catalog *c, int64_t cutoff, unsigned limit,
                            void (*on_block)(void *ctx,
                                             const tl_catalog_block *b),
                            void *ctx, unsigned *removed) {
  return c->ops->retire_batch(c, cutoff, limit, on_block, ctx, removed);
}

int tl_catalog_foreach_block(tl_catalog *c,
                             int (*fn)(void *ctx, const tl_catalog_block *b),
                             void *ctx) {
  return c->ops->foreach_block(c, fn, ctx);
}

static int json_str(tl_bytes *o, tl_slice s) {
  int rc = tl_bytes_append(o, "\"", 1);
  for (size_t i = 0; i < s.n && !rc; i++) {
    unsigned char ch = s.p[i];
    char esc[8];
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\';
      esc[1] = (char)ch;
      rc = tl_bytes_append(o, esc, 2);
    } else if (ch < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", ch);
      rc = tl_bytes_append(o, esc, 6);
    } else {
      rc = tl_bytes_append(o, &ch, 1);
    }
  }
  return rc ? rc : tl_bytes_append(o, "\"", 1);
}

int tl__catalog_props_json(const tl_kv *kv, uint32_t n, tl_bytes *out) {
  int rc = tl_bytes_append(out, "{", 1);
  for (uint32_t i = 0; i < n && !rc; i++) {
    if (i)
      rc = tl_bytes_append(out, ",", 1);
    if (!rc)
      rc = json_str(out, kv[i].key);
    if (!rc)
      rc = tl_bytes_append(out, ":", 1);
    if (!rc)
      rc = json_str(out, kv[i].value);
  }
  if (!rc)
    rc = tl_bytes_append(out, "}", 2); /* with the terminating NUL */
  return rc;
}

int tl__catalog_tags_json(const tl_slice *tags, uint32_t n, tl_bytes *out) {
  int rc = tl_bytes_append(out, "[", 1);
  for (uint32_t i = 0; i < n && !rc; i++) {
    if (i)
      rc = tl_bytes_append(out, ",", 1);
    if (!rc)
      rc = json_str(out, tags[i]);
  }
  if (!rc)
    rc = tl_bytes_append(out, "]", 2); /* with the terminating NUL */
  return rc;
}

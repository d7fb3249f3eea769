/* bytes.c - growable byte buffers with a hard cap. */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

void tl_bytes_init(tl_bytes *b, size_t max) {
  b->p = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void tl_bytes_free(tl_bytes *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

int tl_bytes_reserve(tl_bytes *b, size_t extra) {
  if (extra > b->max || b->len > b->max - extra)
    return TL_ETOOBIG;
  size_t need = b->len + extra;
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  if (cap > b->max)
    cap = b->max;
  uint8_t *p = realloc(b->p, cap);
  if (!p)
    return TL_ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

int tl_bytes_append(tl_bytes *b, const void *p, size_t n) {
  int rc = tl_bytes_reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

void tl_fput_json_str(FILE *o, const char *v) {
  fputc('"', o);
  for (const char *c = v; *c; c++) {
    if (*c == '"' || *c == '\\')
      fprintf(o, "\\%c", *c);
    else if ((unsigned char)*c < 0x20)
      fprintf(o, "\\u%04x", (unsigned char)*c);
    else
      fputc(*c, o);
  }
  fputc('"', o);
}

void tl_fput_csv_field(FILE *o, const char *v) {
  if (!strpbrk(v, ",\"\r\n")) {
    fputs(v, o);
    return;
  }
  fputc('"', o);
  for (const char *c = v; *c; c++) {
    if (*c == '"')
      fputc('"', o);
    fputc(*c, o);
  }
  fputc('"', o);
}

/* strs.c - a growable array of owned C strings. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

int tl_strs_add(tl_strs *l, const char *s) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **v = realloc(l->v, cap * sizeof *v);
    if (!v)
      return TL_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  char *d = NULL;
  if (s && !(d = strdup(s)))
    return TL_ENOMEM;
  l->v[l->n++] = d;
  return 0;
}

void tl_strs_free(tl_strs *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

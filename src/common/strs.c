/* strs.c - growable arrays: any element type, and owned C strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int tl_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first) {
  if (need <= *cap)
    return 0;
  size_t c = *cap ? *cap : first;
  while (c < need) {
    if (c > SIZE_MAX / 2)
      return TL_ENOMEM;
    c *= 2;
  }
  if (size && c > SIZE_MAX / size)
    return TL_ENOMEM;
  void *old;
  memcpy(&old, pp, sizeof old);
  void *p = realloc(old, c * size);
  if (!p)
    return TL_ENOMEM;
  memcpy(pp, &p, sizeof p);
  *cap = c;
  return 0;
}

int tl_strs_add(tl_strs *l, const char *s) {
  if (tl_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, 16))
    return TL_ENOMEM;
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

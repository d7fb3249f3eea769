/* keys.c - API key files and constant-time checks (keys.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/common.h"
#include "keys.h"

#define MAX_KEYS 1024

typedef struct entry {
  char *name;
  char *key;
  size_t keylen;
} entry;

struct tl_keyring {
  entry *v;
  size_t n;
};

void tl_keyring_free(tl_keyring *k) {
  if (!k)
    return;
  for (size_t i = 0; i < k->n; i++) {
    free(k->v[i].name);
    free(k->v[i].key);
  }
  free(k->v);
  free(k);
}

size_t tl_keyring_count(const tl_keyring *k) {
  return k ? k->n : 0;
}

int tl_keyring_load(tl_keyring **out, const char *path, char *err,
                    size_t errcap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errcap, "cannot read API keys file %s", path);
    return TL_EIO;
  }
  tl_keyring *k = calloc(1, sizeof *k);
  if (!k || !(k->v = calloc(MAX_KEYS, sizeof *k->v))) {
    free(k);
    fclose(f);
    snprintf(err, errcap, "out of memory");
    return TL_ENOMEM;
  }
  char line[1024];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *save = NULL;
    char *name = strtok_r(line, " \t\r\n", &save);
    if (!name || name[0] == '#')
      continue;
    char *key = strtok_r(NULL, " \t\r\n", &save);
    char *extra = key ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    if (!key || extra || strlen(key) < 8) {
      snprintf(err, errcap,
               "%s:%d: expected 'name key' (a key of at least 8 characters)",
               path, lineno);
      rc = TL_EMALFORMED;
      break;
    }
    if (k->n == MAX_KEYS) {
      snprintf(err, errcap, "%s: more than %d keys", path, MAX_KEYS);
      rc = TL_ETOOBIG;
      break;
    }
    entry *e = &k->v[k->n++];
    e->name = strdup(name);
    e->key = strdup(key);
    e->keylen = strlen(key);
    if (!e->name || !e->key) {
      rc = TL_ENOMEM;
      break;
    }
  }
  fclose(f);
  if (!rc && k->n == 0) {
    snprintf(err, errcap, "%s holds no keys", path);
    rc = TL_EMALFORMED;
  }
  if (rc) {
    tl_keyring_free(k);
    return rc;
  }
  *out = k;
  return 0;
}

/* Compares without an early exit, so timing does not reveal a prefix. */
static int same(const char *a, size_t an, const char *b, size_t bn) {
  unsigned char d = an != bn;
  size_t n = an < bn ? an : bn;
  for (size_t i = 0; i < n; i++)
    d |= (unsigned char)(a[i] ^ b[i]);
  return d == 0;
}

const char *tl_keyring_check(const tl_keyring *k, const char *key) {
  if (!k || !key)
    return NULL;
  size_t n = strlen(key);
  const char *found = NULL;
  for (size_t i = 0; i < k->n; i++)
    if (same(k->v[i].key, k->v[i].keylen, key, n))
      found = k->v[i].name;
  return found;
}

const char *tl_keyring_check_bearer(const tl_keyring *k, const char *header) {
  if (!header || strncasecmp(header, "Bearer ", 7))
    return NULL;
  header += 7;
  while (*header == ' ')
    header++;
  return tl_keyring_check(k, header);
}

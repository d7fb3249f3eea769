/* keys.h - API keys: a file of "name key" lines; a request's bearer token is
 * checked against every key in constant time. */
#ifndef TL_KEYS_H
#define TL_KEYS_H

#include <stddef.h>

typedef struct tl_keyring tl_keyring;

/* Loads `path`. Blank lines and lines starting with '#' are skipped. Returns
 * 0, TL_EIO (unreadable, with `err` set) or TL_EMALFORMED (a bad line). */
int tl_keyring_load(tl_keyring **out, const char *path, char *err,
                    size_t errcap);
void tl_keyring_free(tl_keyring *k); /* accepts NULL */
size_t tl_keyring_count(const tl_keyring *k);
/* Checks an "Authorization" header value ("Bearer <key>"). Returns the key's
 * name, or NULL when missing or wrong. */
const char *tl_keyring_check_bearer(const tl_keyring *k, const char *header);
/* Checks a key itself. */
const char *tl_keyring_check(const tl_keyring *k, const char *key);

#endif

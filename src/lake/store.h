/* store.h - the object store: immutable blobs under a local directory,
 * written so that a reader sees a whole blob or none, and a blob is on disk
 * (file and directory entry synced) before tl_store_put returns. Keys are
 * relative paths such as "blobs/<process>/<stream>/<block>". */
#ifndef TL_STORE_H
#define TL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tl_store tl_store;

/* Opens (creating if needed) the store rooted at `root` (copied). */
int tl_store_open(tl_store **out, const char *root);
void tl_store_close(tl_store *s); /* accepts NULL */
const char *tl_store_root(const tl_store *s);

/* Writes a blob durably: temp file, fsync, rename, fsync of the directory.
 * An existing blob of the same key is replaced atomically. Thread-safe. */
int tl_store_put(tl_store *s, const char *key, const uint8_t *p, size_t n);
/* Writes a blob durably, once: like tl_store_put, but an existing blob is
 * never replaced (the final link is atomic create-if-absent). *existed tells
 * that a blob was already there; its bytes were left untouched. */
int tl_store_put_new(tl_store *s, const char *key, const uint8_t *p, size_t n,
                     bool *existed);
/* Like tl_store_put_new, without fsync: the blob is whole to readers at
 * once, durable only after the next tl_store_sync returns 0 (a group
 * commit: many blobs, one sync). */
int tl_store_put_new_unsynced(tl_store *s, const char *key, const uint8_t *p,
                              size_t n, bool *existed);
/* Makes every blob written so far durable, file contents and directory
 * entries (syncfs of the store's file system). TL_EIO on failure. */
int tl_store_sync(tl_store *s);
/* Reads a whole blob (at most `max` bytes) into a malloc'd buffer.
 * TL_ENOTFOUND if absent, TL_ETOOBIG if larger than max. */
int tl_store_get(tl_store *s, const char *key, size_t max, uint8_t **p,
                 size_t *n);
/* Removes a blob; absent is not an error. Empty parent directories stay. */
int tl_store_delete(tl_store *s, const char *key);
/* 0 when the root is a writable directory; TL_EUNAVAILABLE otherwise. */
int tl_store_health(tl_store *s);
/* Removes temp files older than `min_age_s` left by a crash. */
int tl_store_sweep_temp(tl_store *s, unsigned min_age_s);

/* The key of a block's blob: "blobs/<process>/<stream>/<block>". */
void tl_store_block_key(const uint8_t process_id[16],
                        const uint8_t stream_id[16], const uint8_t block_id[16],
                        char out[128]);

#endif

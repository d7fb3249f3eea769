/* spool.h - a spool directory: messages as files, written atomically, named
 * so that sorting the names gives the order they were produced in.
 *
 * Layout: ROOT/<process-uuid>/<16-digit seq>-<process|stream|block>.tl, plus
 * ROOT/<process-uuid>/.lock, held (flock) while the writing process lives.
 * A file appears only complete (write to a dot-prefixed temp name, rename).
 */
#ifndef TL_SPOOL_H
#define TL_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tl_spool tl_spool;

/* Creates ROOT/<pid>/ (and ROOT) if needed and takes its lock. `root` is
 * copied. Returns 0, TL_EIO or TL_ENOMEM. */
int tl_spool_open(tl_spool **out, const char *root, const uint8_t pid[16],
                  bool fsync_files);
/* Writes one message as the next file. Returns 0 or TL_EIO. */
int tl_spool_write(tl_spool *sp, int kind, const uint8_t *p, size_t n);
/* Leaves room for `n` files written with tl_spool_write_front: the files of
 * later tl_spool_write calls are numbered after them. Call it before the
 * first write; it does nothing if `n` is absurdly large. */
void tl_spool_reserve_front(tl_spool *sp, uint64_t n);
/* Writes one message as a file that sorts before every file this spool has
 * written so far: a sink that spills messages older than those it already
 * spilled writes them newest first with this. Returns 0, TL_EIO, or
 * TL_ETOOBIG once the reserved room is used up. */
int tl_spool_write_front(tl_spool *sp, int kind, const uint8_t *p, size_t n);
/* The directory this spool writes into (ROOT/<pid>). Borrowed. */
const char *tl_spool_dir(const tl_spool *sp);
/* Number of files written and not yet removed by tl_spool_remove. */
uint64_t tl_spool_pending(const tl_spool *sp);
/* Removes a file of this spool after it was delivered elsewhere. */
int tl_spool_remove(tl_spool *sp, const char *path);
/* Releases the lock; removes the directory if it is empty. Accepts NULL. */
void tl_spool_close(tl_spool *sp);

/* Lists the message files of one spool directory in production order.
 * `*names` is an array of malloc'd full paths; free with tl_spool_list_free.
 * Returns 0, TL_EIO or TL_ENOMEM. */
int tl_spool_list(const char *dir, char ***names, size_t *n);
void tl_spool_list_free(char **names, size_t n);
/* Returns the message kind from a file name (TL_MSG_*), or 0. */
int tl_spool_kind_of(const char *path);

#endif

/* store.c - the local-directory object store (see store.h). A blob is written
 * to a temp file beside its final name, fsynced, renamed into place, and the
 * directory fsynced, so that after tl_store_put returns the blob survives a
 * crash, and a reader never sees a partial blob. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/common.h"
#include "store.h"

#define TEMP_PREFIX ".tmp-"

struct tl_store {
  char *root;
};

static int mkdirs(char *path, size_t upto) {
  /* Creates every directory of path[0..upto), fsyncing each new one's
   * parent so that the new entry itself is durable. */
  for (size_t i = 1; i <= upto; i++) {
    if (path[i] != '/' && path[i] != 0)
      continue;
    char save = path[i];
    path[i] = 0;
    if (mkdir(path, 0755) == 0) {
      char *slash = strrchr(path, '/');
      if (slash && slash != path) {
        *slash = 0;
        int d = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) {
          fsync(d);
          close(d);
        }
        *slash = '/';
      }
    } else if (errno != EEXIST) {
      path[i] = save;
      return TL_EIO;
    }
    path[i] = save;
    if (save == 0)
      break;
  }
  return 0;
}

int tl_store_open(tl_store **out, const char *root) {
  tl_store *s = calloc(1, sizeof *s);
  if (!s || !(s->root = strdup(root))) {
    free(s);
    return TL_ENOMEM;
  }
  size_t n = strlen(s->root);
  while (n > 1 && s->root[n - 1] == '/')
    s->root[--n] = 0;
  char *tmp = strdup(s->root);
  int rc = tmp ? mkdirs(tmp, strlen(tmp)) : TL_ENOMEM;
  free(tmp);
  if (rc) {
    tl_store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

void tl_store_close(tl_store *s) {
  if (!s)
    return;
  free(s->root);
  free(s);
}

const char *tl_store_root(const tl_store *s) {
  return s->root;
}

/* Rejects keys that could escape the root. */
static int check_key(const char *key) {
  if (!key[0] || key[0] == '/' || strstr(key, "..") || strlen(key) > 1024)
    return TL_EINVAL;
  return 0;
}

/* Writes `p` to a temp file beside `key`, fsyncs it, then moves it into
 * place: with rename (replace) or link (create-if-absent, *existed set when
 * the name was taken). Fsyncs the directory after a change. Without `sync`,
 * no fsync: tl_store_sync makes it durable later. */
static int put(tl_store *s, const char *key, const uint8_t *p, size_t n,
               bool replace, bool sync, bool *existed) {
  int rc = check_key(key);
  if (rc)
    return rc;
  size_t len = strlen(s->root) + strlen(key) + 64;
  char *path = malloc(len), *tmp = malloc(len);
  if (!path || !tmp) {
    free(path);
    free(tmp);
    return TL_ENOMEM;
  }
  snprintf(path, len, "%s/%s", s->root, key);
  char *slash = strrchr(path, '/');
  size_t dirlen = (size_t)(slash - path);
  if ((rc = mkdirs(path, dirlen)))
    goto out;
  /* A unique temp name in the same directory (rename stays atomic). */
  static _Atomic unsigned long seq;
  snprintf(tmp, len, "%.*s/" TEMP_PREFIX "%d-%lu", (int)dirlen, path,
           (int)getpid(), (unsigned long)++seq);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = errno == ENOSPC ? TL_EUNAVAILABLE : TL_EIO;
    goto out;
  }
  rc = tl_write_all(fd, p, n);
  if (!rc && sync && fsync(fd))
    rc = TL_EIO;
  if (close(fd) && !rc)
    rc = TL_EIO;
  if (!rc) {
    if (replace) {
      if (rename(tmp, path))
        rc = TL_EIO;
    } else if (link(tmp, path)) {
      if (errno == EEXIST)
        *existed = true;
      else
        rc = TL_EIO;
    }
  }
  if (rc || !replace)
    unlink(tmp);
  if (rc || (existed && *existed) || !sync)
    goto out;
  path[dirlen] = 0;
  int d = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0 || fsync(d))
    rc = TL_EIO;
  if (d >= 0)
    close(d);
out:
  free(path);
  free(tmp);
  return rc;
}

int tl_store_put(tl_store *s, const char *key, const uint8_t *p, size_t n) {
  return put(s, key, p, n, true, true, NULL);
}

int tl_store_put_new(tl_store *s, const char *key, const uint8_t *p, size_t n,
                     bool *existed) {
  *existed = false;
  return put(s, key, p, n, false, true, existed);
}

int tl_store_put_new_unsynced(tl_store *s, const char *key, const uint8_t *p,
                              size_t n, bool *existed) {
  *existed = false;
  return put(s, key, p, n, false, false, existed);
}

int tl_store_sync(tl_store *s) {
  int d = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0)
    return TL_EIO;
  int rc = syncfs(d) ? TL_EIO : 0;
  close(d);
  return rc;
}

/* The file of a key, refusing keys that could leave the root. */
static int key_path(const tl_store *s, const char *key, char *out, size_t cap) {
  int rc = check_key(key);
  if (rc)
    return rc;
  if ((size_t)snprintf(out, cap, "%s/%s", s->root, key) >= cap)
    return TL_EINVAL;
  return 0;
}

int tl_store_get(tl_store *s, const char *key, size_t max, uint8_t **p,
                 size_t *n) {
  char path[4096];
  int rc = key_path(s, key, path, sizeof path);
  return rc ? rc : tl_read_file(path, max, p, n);
}

int tl_store_delete(tl_store *s, const char *key) {
  char path[4096];
  int rc = key_path(s, key, path, sizeof path);
  if (rc)
    return rc;
  if (unlink(path) && errno != ENOENT)
    return TL_EIO;
  return 0;
}

int tl_store_health(tl_store *s) {
  char probe[4096];
  snprintf(probe, sizeof probe, "%s/" TEMP_PREFIX "health-%d", s->root,
           (int)getpid());
  int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return TL_EUNAVAILABLE;
  int ok = write(fd, "ok", 2) == 2;
  close(fd);
  unlink(probe);
  return ok ? 0 : TL_EUNAVAILABLE;
}

static int sweep_dir(const char *dir, time_t cutoff, int depth) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int removed = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st))
      continue;
    if (S_ISDIR(st.st_mode) && depth < 4)
      removed += sweep_dir(path, cutoff, depth + 1);
    else if (S_ISREG(st.st_mode) &&
             !strncmp(e->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) &&
             st.st_mtime < cutoff && !unlink(path))
      removed++;
  }
  closedir(d);
  return removed;
}

int tl_store_sweep_temp(tl_store *s, unsigned min_age_s) {
  return sweep_dir(s->root, time(NULL) - (time_t)min_age_s, 0);
}

void tl_store_block_key(const uint8_t process_id[16],
                        const uint8_t stream_id[16], const uint8_t block_id[16],
                        char out[128]) {
  char p[37], s[37], b[37];
  tl_uuid_format(process_id, p);
  tl_uuid_format(stream_id, s);
  tl_uuid_format(block_id, b);
  snprintf(out, 128, "blobs/%s/%s/%s", p, s, b);
}

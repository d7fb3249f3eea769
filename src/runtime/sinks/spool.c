/* spool.c - spool directories (see spool.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/common.h"
#include "spool.h"

struct tl_spool {
  char *dir;
  int lock_fd;
  bool fsync_files;
  uint64_t seq;   /* the last number used by tl_spool_write */
  uint64_t front; /* the next number for tl_spool_write_front, descending */
  uint64_t floor; /* tl_spool_write_front must stay above this number */
  uint64_t pending;
};

static const char *kind_name(int kind) {
  return kind == TL_MSG_PROCESS  ? "process"
         : kind == TL_MSG_STREAM ? "stream"
                                 : "block";
}

int tl_spool_open(tl_spool **out, const char *root, const uint8_t pid[16],
                  bool fsync_files) {
  char id[37], path[4096];
  tl_uuid_format(pid, id);
  if ((size_t)snprintf(path, sizeof path, "%s/%s", root, id) >= sizeof path)
    return TL_EINVAL;
  int rc = tl_mkdirs(path);
  if (rc)
    return rc;
  tl_spool *sp = calloc(1, sizeof *sp);
  if (!sp || !(sp->dir = strdup(path))) {
    free(sp);
    return TL_ENOMEM;
  }
  char lock[4200];
  snprintf(lock, sizeof lock, "%s/.lock", path);
  sp->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (sp->lock_fd >= 0)
    flock(sp->lock_fd, LOCK_EX | LOCK_NB);
  sp->fsync_files = fsync_files;
  *out = sp;
  return 0;
}

const char *tl_spool_dir(const tl_spool *sp) {
  return sp->dir;
}
uint64_t tl_spool_pending(const tl_spool *sp) {
  return sp->pending;
}

/* Writes one message as file number `seq`. */
static int write_seq(tl_spool *sp, uint64_t seq, int kind, const uint8_t *p,
                     size_t n) {
  char tmp[4200], path[4200];
  snprintf(tmp, sizeof tmp, "%s/.tmp-%016llu", sp->dir,
           (unsigned long long)seq);
  snprintf(path, sizeof path, "%s/%016llu-%s.tl", sp->dir,
           (unsigned long long)seq, kind_name(kind));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return TL_EIO;
  int rc = tl_write_all(fd, p, n);
  if (!rc && sp->fsync_files && fsync(fd))
    rc = TL_EIO;
  if (close(fd) && !rc)
    rc = TL_EIO;
  if (!rc && rename(tmp, path))
    rc = TL_EIO;
  if (rc)
    unlink(tmp);
  else
    sp->pending++;
  return rc;
}

int tl_spool_write(tl_spool *sp, int kind, const uint8_t *p, size_t n) {
  return write_seq(sp, ++sp->seq, kind, p, n);
}

void tl_spool_reserve_front(tl_spool *sp, uint64_t n) {
  if (sp->seq > UINT64_MAX / 2 || n > UINT64_MAX / 4)
    return;
  sp->floor = sp->seq;
  sp->seq += n;
  sp->front = sp->seq;
}

int tl_spool_write_front(tl_spool *sp, int kind, const uint8_t *p, size_t n) {
  if (sp->front <= sp->floor)
    return TL_ETOOBIG;
  int rc = write_seq(sp, sp->front, kind, p, n);
  sp->front--;
  return rc;
}

int tl_spool_remove(tl_spool *sp, const char *path) {
  if (unlink(path) && errno != ENOENT)
    return TL_EIO;
  if (sp && sp->pending)
    sp->pending--;
  return 0;
}

void tl_spool_close(tl_spool *sp) {
  if (!sp)
    return;
  if (sp->lock_fd >= 0) {
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/.lock", sp->dir);
    size_t n = 0;
    char **names = NULL;
    /* Leave nothing behind when everything was delivered elsewhere. */
    if (!tl_spool_list(sp->dir, &names, &n) && n == 0) {
      unlink(lock);
      rmdir(sp->dir);
    }
    tl_spool_list_free(names, n);
    close(sp->lock_fd);
  }
  free(sp->dir);
  free(sp);
}

int tl_spool_kind_of(const char *path) {
  size_t n = strlen(path);
  if (n > 11 && !strcmp(path + n - 11, "-process.tl"))
    return TL_MSG_PROCESS;
  if (n > 10 && !strcmp(path + n - 10, "-stream.tl"))
    return TL_MSG_STREAM;
  if (n > 9 && !strcmp(path + n - 9, "-block.tl"))
    return TL_MSG_BLOCK;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int tl_spool_list(const char *dir, char ***names, size_t *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return TL_EIO;
  size_t cap = 0, len = 0;
  char **v = NULL;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !tl_spool_kind_of(e->d_name))
      continue;
    if (tl_grow(&v, &cap, len + 1, sizeof *v, 64)) {
      rc = TL_ENOMEM;
      break;
    }
    size_t plen = strlen(dir) + strlen(e->d_name) + 2;
    if (!(v[len] = malloc(plen))) {
      rc = TL_ENOMEM;
      break;
    }
    snprintf(v[len++], plen, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (rc) {
    tl_spool_list_free(v, len);
    return rc;
  }
  if (len)
    qsort(v, len, sizeof *v, cmp_str);
  *names = v;
  *n = len;
  return 0;
}

void tl_spool_list_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

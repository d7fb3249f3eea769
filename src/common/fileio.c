/* fileio.c - whole-file reads and complete writes, retried on EINTR and
 * short counts; shared by the spool, the object store and the tools. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

int tl_write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return errno == ENOSPC ? TL_EUNAVAILABLE : TL_EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int tl_read_file(const char *path, size_t max, uint8_t **p, size_t *n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? TL_ENOTFOUND : TL_EIO;
  struct stat st;
  int rc = 0;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    rc = TL_EIO;
    goto out;
  }
  if ((uint64_t)st.st_size > max) {
    rc = TL_ETOOBIG;
    goto out;
  }
  size_t size = (size_t)st.st_size, got = 0;
  if (!(buf = malloc(size ? size : 1))) {
    rc = TL_ENOMEM;
    goto out;
  }
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got != size) { /* shrank while we read: not what we stat'ed */
    free(buf);
    rc = TL_EIO;
    goto out;
  }
  *p = buf;
  *n = size;
out:
  close(fd);
  return rc;
}

int tl_mkdirs(const char *path) {
  char buf[4400];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf)
    return TL_EINVAL;
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0755) && errno != EEXIST)
        return TL_EIO;
      *p = '/';
    }
  if (mkdir(buf, 0755) && errno != EEXIST)
    return TL_EIO;
  return 0;
}

int tl_publish_file(const char *tmp, const char *path) {
  int fd = open(tmp, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return TL_EIO;
  int bad = fsync(fd);
  close(fd);
  if (bad || rename(tmp, path))
    return TL_EIO;
  char dir[4400];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = 0;
  int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0)
    return TL_EIO;
  bad = fsync(d);
  close(d);
  return bad ? TL_EIO : 0;
}

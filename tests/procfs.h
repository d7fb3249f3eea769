/* procfs.h - what tests read of a process's threads in /proc. */
#ifndef TL_TESTS_PROCFS_H
#define TL_TESTS_PROCFS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The nice value (field 19 of /proc/PID/task/TID/stat) of process `pid`'s
 * first thread named `name` (pid 0: this process); -100 if it has none. */
static inline int test_thread_nice(int pid, const char *name) {
  char dir[64];
  if (pid)
    snprintf(dir, sizeof dir, "/proc/%d/task", pid);
  else
    snprintf(dir, sizeof dir, "/proc/self/task");
  DIR *d = opendir(dir);
  if (!d)
    return -100;
  int nice = -100;
  size_t len = strlen(name);
  for (struct dirent *e; nice == -100 && (e = readdir(d));) {
    if (e->d_name[0] == '.')
      continue;
    char path[400], buf[1024] = "";
    snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    int match = fgets(buf, sizeof buf, f) && !strncmp(buf, name, len) &&
                buf[len] == '\n';
    fclose(f);
    snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
    if (!match || !(f = fopen(path, "r")))
      continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    /* Fields count from the ")" that ends the name (field 2). */
    const char *p = strrchr(buf, ')');
    int field = 2;
    for (p = p ? p + 1 : buf + n; *p && field < 19; p++)
      if (*p == ' ')
        field++;
    if (*p)
      nice = atoi(p);
  }
  closedir(d);
  return nice;
}

#endif

/* procinfo.c - what a process message says about this process: ids, user,
 * host, distribution, CPU, clock, properties. Gathered once, at tl_init. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

#define PARENT_ENV "TRACELAKE_PARENT_PROCESS_ID"

static char *read_exe(void) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return strdup("");
  buf[n] = 0;
  return strdup(buf);
}

static char *read_distro(void) {
  FILE *f = fopen("/etc/os-release", "r");
  char line[512];
  char *r = NULL;
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "PRETTY_NAME=", 12))
      continue;
    char *v = line + 12, *e = v + strlen(v);
    while (e > v && (e[-1] == '\n' || e[-1] == '"'))
      *--e = 0;
    if (*v == '"')
      v++;
    r = strdup(v);
    break;
  }
  if (f)
    fclose(f);
  return r ? r : strdup("");
}

static char *read_cpu_brand(void) {
#if defined(__x86_64__)
  unsigned regs[12];
  unsigned a, b, c, d;
  __asm__ volatile("cpuid"
                   : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
                   : "a"(0x80000000u));
  if (a >= 0x80000004u) {
    for (unsigned i = 0; i < 3; i++) {
      __asm__ volatile("cpuid"
                       : "=a"(regs[i * 4]), "=b"(regs[i * 4 + 1]),
                         "=c"(regs[i * 4 + 2]), "=d"(regs[i * 4 + 3])
                       : "a"(0x80000002u + i), "c"(0));
    }
    char s[49];
    memcpy(s, regs, 48);
    s[48] = 0;
    char *p = s;
    while (*p == ' ')
      p++;
    char *e = p + strlen(p);
    while (e > p && e[-1] == ' ')
      *--e = 0;
    return strdup(p);
  }
#endif
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  char *r = NULL;
  while (f && fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!colon || strncmp(line, "model name", 10))
      continue;
    char *v = colon + 1;
    while (*v == ' ')
      v++;
    v[strcspn(v, "\n")] = 0;
    r = strdup(v);
    break;
  }
  if (f)
    fclose(f);
  return r ? r : strdup("");
}

/* Splits "k=v,k2=v2" (both sources, config first) into the message's
 * properties. The copy in pi->prop_buf is cut in place. */
static int parse_props(tl_procinfo *pi, const char *a, const char *b) {
  size_t na = a ? strlen(a) : 0, nb = b ? strlen(b) : 0;
  char *buf = malloc(na + nb + 2);
  if (!buf)
    return TL_ENOMEM;
  memcpy(buf, a ? a : "", na);
  buf[na] = ',';
  memcpy(buf + na + 1, b ? b : "", nb);
  buf[na + nb + 1] = 0;
  pi->prop_buf = buf;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok)
      return TL_EINVAL;
    *eq = 0;
    if (pi->msg.nprops == TL_WIRE_MAX_PROPS)
      return TL_ETOOBIG;
    tl_kv *kv = &pi->msg.props[pi->msg.nprops++];
    kv->key = tl_slice_str(tok);
    kv->value = tl_slice_str(eq + 1);
  }
  return 0;
}

int tl__procinfo_collect(tl_procinfo *pi, const char *exe_override,
                         const char *props_cfg, const char *props_env,
                         uint64_t tsc_frequency) {
  memset(pi, 0, sizeof *pi);
  tl_wire_process *m = &pi->msg;
  tl_uuid_v4(m->process_id);
  const char *parent = getenv(PARENT_ENV);
  if (parent)
    tl_uuid_parse(parent, m->parent_process_id); /* ignored if malformed */
  char text[37];
  tl_uuid_format(m->process_id, text);
  setenv(PARENT_ENV, text, 1); /* children started from now on inherit it */

  m->start_ticks = tl_ticks();
  m->start_time = tl_wall_ns();
  m->tsc_frequency = tsc_frequency ? tsc_frequency : 1000000000u;

  struct passwd pw, *pwp = NULL;
  char pwbuf[4096];
  getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwp);
  const char *user = pwp ? pw.pw_name : getenv("USER");
  char real[256] = "";
  if (pwp && pw.pw_gecos) {
    snprintf(real, sizeof real, "%s", pw.pw_gecos);
    real[strcspn(real, ",")] = 0;
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);

  pi->strs[0] = exe_override ? strdup(exe_override) : read_exe();
  pi->strs[1] = strdup(user ? user : "");
  pi->strs[2] = strdup(real);
  pi->strs[3] = strdup(host);
  pi->strs[4] = read_distro();
  pi->strs[5] = read_cpu_brand();
  for (int i = 0; i < 6; i++)
    if (!pi->strs[i]) {
      tl__procinfo_free(pi);
      return TL_ENOMEM;
    }
  m->exe = tl_slice_str(pi->strs[0]);
  m->username = tl_slice_str(pi->strs[1]);
  m->realname = tl_slice_str(pi->strs[2]);
  m->computer = tl_slice_str(pi->strs[3]);
  m->distro = tl_slice_str(pi->strs[4]);
  m->cpu_brand = tl_slice_str(pi->strs[5]);
  int rc = parse_props(pi, props_cfg, props_env);
  if (rc)
    tl__procinfo_free(pi);
  return rc;
}

void tl__procinfo_free(tl_procinfo *pi) {
  for (int i = 0; i < 6; i++)
    free(pi->strs[i]);
  free(pi->prop_buf);
  memset(pi, 0, sizeof *pi);
}

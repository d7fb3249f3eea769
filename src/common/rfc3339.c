/* rfc3339.c - RFC 3339 timestamps (2026-11-26T12:00:00.5Z, with an offset
 * or Z) to and from UTC nanoseconds. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

static int digits(const char **s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*s)[i];
    if (c < '0' || c > '9')
      return -1;
    v = v * 10 + (c - '0');
  }
  *s += n;
  *out = v;
  return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int tl_rfc3339_parse(const char *s, int64_t *ns) {
  int y, mo, d, h, mi, sec;
  if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
      digits(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' '))
    return TL_EINVAL;
  s++;
  if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' ||
      digits(&s, 2, &sec))
    return TL_EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return TL_EINVAL;
  int64_t frac = 0;
  if (*s == '.') {
    s++;
    int n = 0;
    while (*s >= '0' && *s <= '9') {
      if (n < 9) {
        frac = frac * 10 + (*s - '0');
        n++;
      }
      s++;
    }
    if (n == 0)
      return TL_EINVAL;
    while (n++ < 9)
      frac *= 10;
  }
  int64_t offset = 0;
  if (*s == 'Z' || *s == 'z') {
    s++;
  } else if (*s == '+' || *s == '-') {
    int sign = *s++ == '-' ? -1 : 1, oh, om;
    if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om) || oh > 23 ||
        om > 59)
      return TL_EINVAL;
    offset = sign * (oh * 3600 + om * 60);
  } else {
    return TL_EINVAL;
  }
  if (*s)
    return TL_EINVAL;
  int64_t secs =
      days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
  if (secs > INT64_MAX / 1000000000 - 1 || secs < INT64_MIN / 1000000000 + 1)
    return TL_EINVAL;
  *ns = secs * 1000000000 + frac;
  return 0;
}

void tl_rfc3339_format(int64_t ns, char out[40]) {
  time_t secs = (time_t)(ns / 1000000000);
  int64_t frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    secs--;
  }
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 40 - n, ".%09dZ", (int)frac);
}

/* text.c - one Arrow value as text, for the client's table, CSV and JSON
 * output: numbers in the C locale (doubles in the shortest form that reads
 * back exactly), times in RFC 3339 UTC with the unit's digits, decimals
 * exact, binary as hex, nested values as JSON-like text. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "arrow.h"

static int put(tl_bytes *out, const char *s, size_t n) {
  return tl_bytes_append(out, s, n);
}

static int puts_(tl_bytes *out, const char *s) {
  return put(out, s, strlen(s));
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* a = *q * b + *r with 0 <= *r < b (b > 0), without overflow. */
static void divmod(int64_t a, int64_t b, int64_t *q, int64_t *r) {
  *q = a / b;
  *r = a % b;
  if (*r < 0) {
    *r += b;
    *q -= 1;
  }
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days). */
static void civil(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static const int64_t unit_div[4] = {1, 1000, 1000000, 1000000000};
static const int unit_digits[4] = {0, 3, 6, 9};

static int fmt_date(char *b, size_t cap, int64_t days) {
  int64_t y;
  int m, d;
  civil(days, &y, &m, &d);
  return snprintf(b, cap, "%04" PRId64 "-%02d-%02d", y, m, d);
}

/* `v` in `unit` since the epoch as RFC 3339 UTC (any int64 value). */
static int fmt_timestamp(char *b, size_t cap, int64_t v, int unit) {
  int64_t secs, frac, days, sod;
  divmod(v, unit_div[unit], &secs, &frac);
  divmod(secs, 86400, &days, &sod);
  int n = fmt_date(b, cap, days);
  n += snprintf(b + n, cap - (size_t)n, "T%02d:%02d:%02d", (int)(sod / 3600),
                (int)(sod / 60 % 60), (int)(sod % 60));
  if (unit)
    n += snprintf(b + n, cap - (size_t)n, ".%0*" PRId64, unit_digits[unit],
                  frac);
  n += snprintf(b + n, cap - (size_t)n, "Z");
  return n;
}

static int fmt_time(char *b, size_t cap, int64_t v, int unit) {
  int64_t secs, frac, h, rem;
  divmod(v, unit_div[unit], &secs, &frac);
  divmod(secs, 3600, &h, &rem);
  int n = snprintf(b, cap, "%02" PRId64 ":%02d:%02d", h, (int)(rem / 60),
                   (int)(rem % 60));
  if (unit)
    n += snprintf(b + n, cap - (size_t)n, ".%0*" PRId64, unit_digits[unit],
                  frac);
  return n;
}

/* Seconds and nanoseconds as "[-]S[.fff]" without trailing zeros. */
static int fmt_secs(char *b, size_t cap, int64_t ns) {
  uint64_t a = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;
  int n = snprintf(b, cap, "%s%" PRIu64, ns < 0 ? "-" : "", a / 1000000000u);
  uint64_t frac = a % 1000000000u;
  if (frac) {
    int digits = 9;
    while (frac % 10 == 0) {
      frac /= 10;
      digits--;
    }
    n += snprintf(b + n, cap - (size_t)n, ".%0*" PRIu64, digits, frac);
  }
  return n;
}

/* Doubles: the shortest of 15, 16 or 17 digits that reads back exactly,
 * with a '.' whatever the locale. */
static int fmt_double(char *b, size_t cap, double v, bool single) {
  if (isnan(v))
    return snprintf(b, cap, "nan");
  if (isinf(v))
    return snprintf(b, cap, v < 0 ? "-inf" : "inf");
  int n = 0;
  for (int prec = single ? 6 : 15; prec <= (single ? 9 : 17); prec++) {
    n = snprintf(b, cap, "%.*g", prec, v);
    double back = strtod(b, NULL);
    if (single ? (float)back == (float)v : back == v)
      break;
  }
  for (int i = 0; i < n; i++)
    if (b[i] == ',')
      b[i] = '.';
  return n;
}

static float half_to_float(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v;
  if (e == 0)
    v = ldexpf((float)m, -24);
  else if (e == 31)
    v = m ? NAN : INFINITY;
  else
    v = ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000) ? -v : v;
}

/* A two's complement integer of `w` bytes (4 to 32) with `scale`. */
static int fmt_decimal(tl_bytes *out, const uint8_t *p, int w, int32_t scale) {
  uint32_t limb[8] = {0};
  int nl = w / 4;
  memcpy(limb, p, (size_t)w);
  bool neg = (limb[nl - 1] >> 31) & 1;
  if (neg) { /* negate: invert and add one */
    uint64_t carry = 1;
    for (int i = 0; i < nl; i++) {
      uint64_t s = (uint64_t)(uint32_t)~limb[i] + carry;
      limb[i] = (uint32_t)s;
      carry = s >> 32;
    }
  }
  char digits[96];
  int nd = 0;
  for (;;) { /* nine digits at a time, least significant first */
    uint64_t rem = 0;
    bool zero = true;
    for (int i = nl - 1; i >= 0; i--) {
      uint64_t cur = (rem << 32) | limb[i];
      limb[i] = (uint32_t)(cur / 1000000000u);
      rem = cur % 1000000000u;
      if (limb[i])
        zero = false;
    }
    for (int k = 0; k < 9; k++) {
      digits[nd++] = (char)('0' + rem % 10);
      rem /= 10;
    }
    if (zero)
      break;
  }
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  char s[200];
  int n = 0;
  if (neg)
    s[n++] = '-';
  if (scale > 0) {
    int intd = nd > scale ? nd - scale : 0;
    if (!intd)
      s[n++] = '0';
    for (int i = nd - 1; i >= nd - intd; i--)
      s[n++] = digits[i];
    if (scale > 150)
      return TL_EINVAL;
    s[n++] = '.';
    for (int i = scale - 1; i >= 0; i--)
      s[n++] = i < nd ? digits[i] : '0';
  } else {
    for (int i = nd - 1; i >= 0; i--)
      s[n++] = digits[i];
    if (scale < 0 && !(nd == 1 && digits[0] == '0')) {
      if (scale < -100)
        return TL_EINVAL;
      for (int i = 0; i < -scale; i++)
        s[n++] = '0';
    }
  }
  return put(out, s, (size_t)n);
}

static int put_json_string(tl_bytes *out, const uint8_t *p, size_t n) {
  int rc = put(out, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    uint8_t c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    rc = put(out, (const char *)p + run, i - run);
    char esc[8];
    switch (c) {
    case '"':
      memcpy(esc, "\\\"", 3);
      break;
    case '\\':
      memcpy(esc, "\\\\", 3);
      break;
    case '\n':
      memcpy(esc, "\\n", 3);
      break;
    case '\r':
      memcpy(esc, "\\r", 3);
      break;
    case '\t':
      memcpy(esc, "\\t", 3);
      break;
    default:
      snprintf(esc, sizeof esc, "\\u%04x", c);
    }
    if (!rc)
      rc = puts_(out, esc);
    run = i + 1;
  }
  if (!rc)
    rc = put(out, (const char *)p + run, n - run);
  if (!rc)
    rc = put(out, "\"", 1);
  return rc;
}

static int put_hex(tl_bytes *out, const uint8_t *p, size_t n, bool quoted) {
  static const char hex[] = "0123456789abcdef";
  int rc = quoted ? put(out, "\"", 1) : 0;
  char buf[128];
  size_t k = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    buf[k++] = hex[p[i] >> 4];
    buf[k++] = hex[p[i] & 15];
    if (k == sizeof buf) {
      rc = put(out, buf, k);
      k = 0;
    }
  }
  if (!rc && k)
    rc = put(out, buf, k);
  if (!rc && quoted)
    rc = put(out, "\"", 1);
  return rc;
}

/* Buffer `i` of a union (type ids 0, offsets 1), tolerating an empty
 * validity slot in front. */
static const void *union_buf(const struct ArrowArray *a, int layout, int i) {
  if (a->n_buffers == tl__layout_nbuffers(layout) + 1)
    i++;
  return i < a->n_buffers ? a->buffers[i] : NULL;
}

static int64_t get_int(const uint8_t *p, int w, bool is_signed) {
  switch (w) {
  case 1:
    return is_signed ? (int64_t)(int8_t)p[0] : (int64_t)p[0];
  case 2: {
    uint16_t v = tl_get_u16(p);
    return is_signed ? (int64_t)(int16_t)v : (int64_t)v;
  }
  case 4: {
    uint32_t v = tl_get_u32(p);
    return is_signed ? (int64_t)(int32_t)v : (int64_t)v;
  }
  }
  return (int64_t)tl_get_u64(p);
}

static int64_t get_offset(const struct ArrowArray *a, int layout, int64_t p) {
  if (layout == TL__L_VAR64 || layout == TL__L_LIST64)
    return (int64_t)tl_get_u64((const uint8_t *)a->buffers[1] + p * 8);
  return (int32_t)tl_get_u32((const uint8_t *)a->buffers[1] + p * 4);
}

/* Whether logical row `i` of `a` is null (a union's null is its selected
 * child's, a dictionary's may be its value's). */
static bool is_null(const struct ArrowSchema *s, const struct ArrowArray *a,
                    int64_t i, int depth) {
  tl__atype t;
  if (depth > TL__MAX_DEPTH || tl__atype_parse(s->format, &t))
    return true;
  int64_t p = a->offset + i;
  if (t.layout == TL__L_NULL)
    return true;
  if (t.layout == TL__L_SUNION || t.layout == TL__L_DUNION) {
    const int8_t *ids = union_buf(a, t.layout, 0);
    int k = -1;
    for (int j = 0; j < t.nids; j++)
      if (t.ids[j] == ids[p])
        k = j;
    if (k < 0 || k >= a->n_children)
      return true;
    int64_t ci = p;
    if (t.layout == TL__L_DUNION)
      ci = (int32_t)tl_get_u32((const uint8_t *)union_buf(a, t.layout, 1) +
                               p * 4);
    return is_null(s->children[k], a->children[k], ci, depth + 1);
  }
  if (a->null_count != 0 && a->n_buffers > 0 && a->buffers[0] &&
      !tl__bit(a->buffers[0], p))
    return true;
  if (s->dictionary && a->dictionary) {
    int64_t idx = get_int((const uint8_t *)a->buffers[1] + p * t.width, t.width,
                          t.is_signed);
    return is_null(s->dictionary, a->dictionary, idx, depth + 1);
  }
  return false;
}

static int render(const struct ArrowSchema *s, const struct ArrowArray *a,
                  int64_t i, tl_bytes *out, bool top, int depth);

/* A nested value: "null" or the value. */
static int render_item(const struct ArrowSchema *s, const struct ArrowArray *a,
                       int64_t i, tl_bytes *out, int depth) {
  if (is_null(s, a, i, depth))
    return puts_(out, "null");
  return render(s, a, i, out, false, depth);
}

static int render(const struct ArrowSchema *s, const struct ArrowArray *a,
                  int64_t i, tl_bytes *out, bool top, int depth) {
  tl__atype t;
  if (depth > TL__MAX_DEPTH || tl__atype_parse(s->format, &t))
    return TL_EINVAL;
  int64_t p = a->offset + i;
  const uint8_t *v = a->n_buffers > 1 ? a->buffers[1] : NULL;
  char b[96];
  int n = 0, rc = 0;
  if (s->dictionary && a->dictionary) {
    int64_t idx = get_int(v + p * t.width, t.width, t.is_signed);
    return render(s->dictionary, a->dictionary, idx, out, top, depth + 1);
  }
  bool quote = !top; /* text-like values are quoted inside nested ones */
  switch (t.id) {
  case TL__T_NULL:
    return top ? 0 : puts_(out, "null");
  case TL__T_BOOL:
    return puts_(out, tl__bit(v, p) ? "true" : "false");
  case TL__T_INT: {
    int64_t x = get_int(v + p * t.width, t.width, t.is_signed);
    if (!t.is_signed && t.width == 8)
      n = snprintf(b, sizeof b, "%" PRIu64, (uint64_t)x);
    else
      n = snprintf(b, sizeof b, "%" PRId64, x);
    return put(out, b, (size_t)n);
  }
  case TL__T_FLOAT:
    if (t.width == 2)
      n = fmt_double(b, sizeof b, half_to_float(tl_get_u16(v + p * 2)), true);
    else if (t.width == 4) {
      float f;
      memcpy(&f, v + p * 4, 4);
      n = fmt_double(b, sizeof b, f, true);
    } else {
      double d;
      memcpy(&d, v + p * 8, 8);
      n = fmt_double(b, sizeof b, d, false);
    }
    return put(out, b, (size_t)n);
  case TL__T_DECIMAL:
    return fmt_decimal(out, v + p * t.width, t.width, t.scale);
  case TL__T_UTF8:
  case TL__T_LUTF8:
  case TL__T_BINARY:
  case TL__T_LBINARY: {
    int64_t o0 = get_offset(a, t.layout, p),
            o1 = get_offset(a, t.layout, p + 1);
    size_t len = (size_t)(o1 - o0);
    /* Only empty values: the data buffer may be NULL. */
    const uint8_t *d =
        len ? (const uint8_t *)a->buffers[2] + o0 : (const uint8_t *)"";
    if (t.id == TL__T_BINARY || t.id == TL__T_LBINARY)
      return put_hex(out, d, len, quote);
    return quote ? put_json_string(out, d, len)
                 : put(out, (const char *)d, len);
  }
  case TL__T_FSB:
    return put_hex(out, v + p * t.width, (size_t)t.width, quote);
  case TL__T_DATE32:
  case TL__T_DATE64: {
    int64_t x = get_int(v + p * t.width, t.width, true);
    n = fmt_date(b, sizeof b, t.unit ? floor_div(x, 86400000) : x);
    break;
  }
  case TL__T_TIME:
    n = fmt_time(b, sizeof b, get_int(v + p * t.width, t.width, true), t.unit);
    break;
  case TL__T_TIMESTAMP:
    n = fmt_timestamp(b, sizeof b, get_int(v + p * 8, 8, true), t.unit);
    break;
  case TL__T_DURATION:
    n = snprintf(b, sizeof b, "%" PRId64, get_int(v + p * 8, 8, true));
    return put(out, b, (size_t)n);
  case TL__T_INTERVAL: {
    const uint8_t *x = v + p * t.width;
    int32_t months = 0, days = 0;
    int64_t ns = 0;
    if (t.unit == 0) {
      months = (int32_t)tl_get_u32(x);
    } else if (t.unit == 1) {
      days = (int32_t)tl_get_u32(x);
      ns = (int64_t)(int32_t)tl_get_u32(x + 4) * 1000000;
    } else {
      months = (int32_t)tl_get_u32(x);
      days = (int32_t)tl_get_u32(x + 4);
      ns = (int64_t)tl_get_u64(x + 8);
    }
    n = snprintf(b, sizeof b, "P");
    if (months)
      n += snprintf(b + n, sizeof b - (size_t)n, "%" PRId32 "M", months);
    if (days)
      n += snprintf(b + n, sizeof b - (size_t)n, "%" PRId32 "D", days);
    if (ns || (!months && !days)) {
      n += snprintf(b + n, sizeof b - (size_t)n, "T");
      n += fmt_secs(b + n, sizeof b - (size_t)n, ns);
      n += snprintf(b + n, sizeof b - (size_t)n, "S");
    }
    break;
  }
  case TL__T_LIST:
  case TL__T_LLIST:
  case TL__T_FSLIST: {
    int64_t from, to;
    if (t.id == TL__T_FSLIST) {
      from = p * t.size;
      to = from + t.size;
    } else {
      from = get_offset(a, t.layout, p);
      to = get_offset(a, t.layout, p + 1);
    }
    rc = puts_(out, "[");
    for (int64_t j = from; j < to && !rc; j++) {
      if (j > from)
        rc = puts_(out, ", ");
      if (!rc)
        rc = render_item(s->children[0], a->children[0], j, out, depth + 1);
    }
    return rc ? rc : puts_(out, "]");
  }
  case TL__T_STRUCT:
    rc = puts_(out, "{");
    for (int64_t k = 0; k < s->n_children && !rc; k++) {
      const char *name = s->children[k]->name ? s->children[k]->name : "";
      if (k)
        rc = puts_(out, ", ");
      if (!rc)
        rc = put_json_string(out, (const uint8_t *)name, strlen(name));
      if (!rc)
        rc = puts_(out, ": ");
      if (!rc)
        rc = render_item(s->children[k], a->children[k], p, out, depth + 1);
    }
    return rc ? rc : puts_(out, "}");
  case TL__T_MAP: {
    const struct ArrowSchema *es = s->children[0];
    const struct ArrowArray *ea = a->children[0];
    int64_t from = get_offset(a, t.layout, p),
            to = get_offset(a, t.layout, p + 1);
    rc = puts_(out, "{");
    for (int64_t j = from; j < to && !rc; j++) {
      int64_t e = ea->offset + j;
      if (j > from)
        rc = puts_(out, ", ");
      if (!rc)
        rc = render_item(es->children[0], ea->children[0], e, out, depth + 2);
      if (!rc)
        rc = puts_(out, ": ");
      if (!rc)
        rc = render_item(es->children[1], ea->children[1], e, out, depth + 2);
    }
    return rc ? rc : puts_(out, "}");
  }
  case TL__T_UNION: {
    const int8_t *ids = union_buf(a, t.layout, 0);
    int k = -1;
    for (int j = 0; j < t.nids; j++)
      if (t.ids[j] == ids[p])
        k = j;
    if (k < 0 || k >= a->n_children)
      return TL_EINVAL;
    int64_t ci = p;
    if (t.layout == TL__L_DUNION)
      ci = (int32_t)tl_get_u32((const uint8_t *)union_buf(a, t.layout, 1) +
                               p * 4);
    if (is_null(s->children[k], a->children[k], ci, depth + 1))
      return top ? 0 : puts_(out, "null");
    return render(s->children[k], a->children[k], ci, out, top, depth + 1);
  }
  default:
    return TL_EINVAL;
  }
  /* Dates, times, timestamps, intervals. */
  if (quote)
    return put_json_string(out, (const uint8_t *)b, (size_t)n);
  return put(out, b, (size_t)n);
}

int tl_arrow_value_text(const struct ArrowSchema *schema,
                        const struct ArrowArray *array, int64_t col,
                        int64_t row, tl_bytes *out, bool *is_null_out) {
  *is_null_out = false;
  if (!schema || !array || !array->release || col < 0 ||
      col >= schema->n_children || col >= array->n_children || row < 0 ||
      row >= array->length)
    return TL_EINVAL;
  const struct ArrowSchema *s = schema->children[col];
  const struct ArrowArray *a = array->children[col];
  int64_t i = array->offset + row;
  if (is_null(s, a, i, 0)) {
    *is_null_out = true;
    return 0;
  }
  size_t len0 = out->len;
  int rc = render(s, a, i, out, true, 0);
  if (rc)
    out->len = len0;
  return rc;
}

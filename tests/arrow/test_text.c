/* test_text.c - Arrow values as text: numbers in the C locale, times in
 * RFC 3339 UTC with the unit's digits, exact decimals, hex binary and
 * JSON-like nested values. */
#include <locale.h>

#include "helpers.h"

TL_TEST_MAIN()

/* One column of format `fmt` with one value given as raw bytes. */
static const char *one(const char *fmt, const void *value, size_t n) {
  tl_ab *r = tl_ab_new();
  tl_ab *c = tl_ab_child(r, fmt, "c", true);
  tl_ab_bin(c, value, n);
  tl_ab_row(r);
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  const char *t = cell(&s, &a, 0, 0);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
  return t;
}

static const char *one_int(const char *fmt, int64_t v) {
  tl_ab *r = tl_ab_new();
  tl_ab *c = tl_ab_child(r, fmt, "c", true);
  tl_ab_int(c, v);
  tl_ab_row(r);
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  const char *t = cell(&s, &a, 0, 0);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
  return t;
}

static const char *one_float(const char *fmt, double v) {
  tl_ab *r = tl_ab_new();
  tl_ab *c = tl_ab_child(r, fmt, "c", true);
  tl_ab_float(c, v);
  tl_ab_row(r);
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  const char *t = cell(&s, &a, 0, 0);
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
  return t;
}

TEST(timestamps_rfc3339_with_unit_digits) {
  CHECK_STR(one_int("tsn:", 1795700664123456789LL),
            "2026-11-26T13:44:24.123456789Z");
  CHECK_STR(one_int("tsu:+02:00", 1795700664123456LL),
            "2026-11-26T13:44:24.123456Z");
  CHECK_STR(one_int("tsm:UTC", 1795700664123LL), "2026-11-26T13:44:24.123Z");
  CHECK_STR(one_int("tss:", 1795700664LL), "2026-11-26T13:44:24Z");
  CHECK_STR(one_int("tsn:", -1), "1969-12-31T23:59:59.999999999Z");
  CHECK_STR(one_int("tss:", 0), "1970-01-01T00:00:00Z");
  CHECK_STR(one_int("tsn:", INT64_MIN), "1677-09-21T00:12:43.145224192Z");
}

TEST(dates_and_times) {
  CHECK_STR(one_int("tdD", 20783), "2026-11-26");
  CHECK_STR(one_int("tdD", -25509), "1900-02-28");
  CHECK_STR(one_int("tdD", 0), "1970-01-01");
  CHECK_STR(one_int("tdm", 20783LL * 86400000), "2026-11-26");
  CHECK_STR(one_int("ttu", 3723000001LL), "01:02:03.000001");
  CHECK_STR(one_int("tts", 86399), "23:59:59");
  CHECK_STR(one_int("ttm", 1), "00:00:00.001");
  CHECK_STR(one_int("ttn", 5), "00:00:00.000000005");
  CHECK_STR(one_int("tDm", -1500), "-1500");
}

TEST(intervals_iso8601) {
  uint8_t mdn[16];
  int32_t m = 1, d = 2;
  int64_t ns = 1500000000;
  memcpy(mdn, &m, 4);
  memcpy(mdn + 4, &d, 4);
  memcpy(mdn + 8, &ns, 8);
  CHECK_STR(one("tin", mdn, 16), "P1M2DT1.5S");
  memset(mdn, 0, 16);
  CHECK_STR(one("tin", mdn, 16), "PT0S");
  ns = -1;
  memcpy(mdn + 8, &ns, 8);
  CHECK_STR(one("tin", mdn, 16), "PT-0.000000001S");
  CHECK_STR(one_int("tiM", 14), "P14M");
  int32_t dt[2] = {3, 250};
  CHECK_STR(one("tiD", dt, 8), "P3DT0.25S");
}

TEST(decimals_exact) {
  CHECK_STR(one_int("d:10,2", 12345), "123.45");
  CHECK_STR(one_int("d:10,3", -5), "-0.005");
  CHECK_STR(one_int("d:10,2", 0), "0.00");
  CHECK_STR(one_int("d:10,0", -42), "-42");
  CHECK_STR(one_int("d:5,-2", 12), "1200");
  CHECK_STR(one_int("d:18,4,64", INT64_MIN), "-922337203685477.5808");
  CHECK_STR(one_int("d:9,1,32", -7), "-0.7");
  CHECK_STR(one_int("d:76,5,256", -1), "-0.00001");
  /* 10^38 - 1 needs the whole 128 bits. */
  uint8_t v[16];
  uint64_t lo = 0x098a223fffffffffULL, hi = 0x4b3b4ca85a86c47aULL;
  memcpy(v, &lo, 8);
  memcpy(v + 8, &hi, 8);
  CHECK_STR(one("d:38,0", v, 16), "99999999999999999999999999999999999999");
  CHECK_STR(one("d:38,38", v, 16), "0.99999999999999999999999999999999999999");
  /* -2^127 */
  memset(v, 0, 16);
  v[15] = 0x80;
  CHECK_STR(one("d:38,1", v, 16), "-17014118346046923173168730371588410572.8");
}

TEST(numbers_in_c_locale) {
  CHECK_STR(one_float("g", 0.1), "0.1");
  CHECK_STR(one_float("g", 1.0 / 3), "0.3333333333333333");
  CHECK_STR(one_float("g", 1e300), "1e+300");
  CHECK_STR(one_float("g", -0.0), "-0");
  CHECK_STR(one_float("g", 123456789012.5), "123456789012.5");
  CHECK_STR(one_float("f", 0.1), "0.1");
  CHECK_STR(one_float("f", 16777216.0), "16777216");
  CHECK_STR(one_float("g", 0.0 / 0.0), "nan");
  CHECK_STR(one_float("g", -1.0 / 0.0), "-inf");
  uint16_t h = 0x3C00;
  CHECK_STR(one("e", &h, 2), "1");
  h = 0xC100;
  CHECK_STR(one("e", &h, 2), "-2.5");
  CHECK_STR(one_int("L", -1), "18446744073709551615");
  CHECK_STR(one_int("l", INT64_MIN), "-9223372036854775808");
  CHECK_STR(one_int("C", 255), "255");
  CHECK_STR(one_int("c", -128), "-128");
  CHECK_STR(one_int("S", 65535), "65535");
  CHECK_STR(one_int("I", 4294967295LL), "4294967295");
  /* A locale with a decimal comma changes nothing. */
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8") ||
      setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
    CHECK_STR(one_float("g", 2.5), "2.5");
    setlocale(LC_NUMERIC, "C");
  }
}

TEST(text_binary_and_bool) {
  CHECK_STR(one("u", "h\xc3\xa9llo \"x\"", 10), "h\xc3\xa9llo \"x\"");
  CHECK_STR(one("z", "\x00\xff\x10", 3), "00ff10");
  CHECK_STR(one("Z", "", 0), "");
  CHECK_STR(one("w:2", "\xab\xcd", 2), "abcd");
  tl_ab *r = tl_ab_new();
  tl_ab *c = tl_ab_child(r, "b", "c", true);
  tl_ab_bool(c, true);
  tl_ab_row(r);
  tl_ab_bool(c, false);
  tl_ab_row(r);
  tl_ab_null(c);
  tl_ab_row(r);
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  CHECK_STR(cell(&s, &a, 0, 0), "true");
  CHECK_STR(cell(&s, &a, 0, 1), "false");
  CHECK_STR(cell(&s, &a, 0, 2), "NULL");
  CHECK_STR(cell(&s, &a, 0, 3), "ERR -1"); /* out of range */
  CHECK_STR(cell(&s, &a, 1, 0), "ERR -1");
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(nested_values_json_like) {
  tl_ab *r = tl_ab_new();
  tl_ab *l = tl_ab_child(r, "+l", "l", true);
  tl_ab *li = tl_ab_child(l, "i", "item", true);
  tl_ab *ls = tl_ab_child(r, "+l", "ls", true);
  tl_ab *lsi = tl_ab_child(ls, "u", "item", true);
  tl_ab *st = tl_ab_child(r, "+s", "st", true);
  tl_ab *stk = tl_ab_child(st, "l", "k", true);
  tl_ab *sts = tl_ab_child(st, "tsm:", "t", true);
  tl_ab *stb = tl_ab_child(st, "z", "b", true);
  tl_ab *m = tl_ab_child(r, "+m", "m", true);
  tl_ab *mk = tl_ab_child(m, "u", "key", false);
  tl_ab *mv = tl_ab_child(m, "g", "value", true);
  tl_ab_int(li, 1);
  tl_ab_null(li);
  tl_ab_int(li, 2);
  tl_ab_list_end(l);
  tl_ab_str(lsi, "a\"b\\c\n");
  tl_ab_str(lsi, "\x01");
  tl_ab_list_end(ls);
  tl_ab_int(stk, 7);
  tl_ab_int(sts, 86400000);
  tl_ab_bin(stb, "\x0a", 1);
  tl_ab_struct_row(st);
  tl_ab_str(mk, "x");
  tl_ab_float(mv, 0.5);
  tl_ab_str(mk, "y");
  tl_ab_null(mv);
  tl_ab_list_end(m);
  tl_ab_row(r);
  tl_ab_list_end(l);
  tl_ab_null(ls);
  tl_ab_int(stk, 8);
  tl_ab_null(sts);
  tl_ab_null(stb);
  tl_ab_struct_row(st);
  tl_ab_list_end(m);
  tl_ab_row(r);
  struct ArrowSchema s;
  struct ArrowArray a;
  CHECK_EQ(tl_ab_finish(r, &s, &a), 0);
  CHECK_STR(cell(&s, &a, 0, 0), "[1, null, 2]");
  CHECK_STR(cell(&s, &a, 1, 0), "[\"a\\\"b\\\\c\\n\", \"\\u0001\"]");
  CHECK_STR(cell(&s, &a, 2, 0),
            "{\"k\": 7, \"t\": \"1970-01-02T00:00:00.000Z\", \"b\": \"0a\"}");
  CHECK_STR(cell(&s, &a, 3, 0), "{\"x\": 0.5, \"y\": null}");
  CHECK_STR(cell(&s, &a, 0, 1), "[]");
  CHECK_STR(cell(&s, &a, 1, 1), "NULL");
  CHECK_STR(cell(&s, &a, 2, 1), "{\"k\": 8, \"t\": null, \"b\": null}");
  CHECK_STR(cell(&s, &a, 3, 1), "{}");
  CHECK(!tl_arrow_is_numeric(s.children[0]));
  tl_arrow_array_release(&a);
  tl_arrow_schema_release(&s);
}

TEST(numeric_columns) {
  static const char *const yes[] = {"c", "L", "g", "e", "d:5,2", "tDn"};
  static const char *const no[] = {"u", "b", "tsn:", "tdD", "+l", "z", "n"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
    struct ArrowSchema s = mk_schema(yes[i], "x", 0, 0, NULL);
    CHECK(tl_arrow_is_numeric(&s));
  }
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
    struct ArrowSchema s = mk_schema(no[i], "x", 0, 0, NULL);
    CHECK(!tl_arrow_is_numeric(&s));
  }
  struct ArrowSchema v = mk_schema("d:38,2", NULL, 0, 0, NULL);
  struct ArrowSchema d = mk_schema("i", "x", 0, 0, NULL);
  d.dictionary = &v;
  CHECK(tl_arrow_is_numeric(&d));
}

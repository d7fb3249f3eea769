/* sample.c - sample tables built with tl_ab, for the tests and for the
 * seed corpus of the IPC fuzzer: one column of every supported type with
 * nulls at every level, and the shapes of the Flight SQL metadata replies. */
#include <stdio.h>
#include <string.h>

#include "sample.h"

static void I(tl_ab *c, bool null, int64_t v) {
  if (null)
    tl_ab_null(c);
  else
    tl_ab_int(c, v);
}

int sample_all_types(struct ArrowSchema *s, struct ArrowArray *a, int rows,
                     int seed) {
  static const char *const ints[] = {"c", "C", "s", "S", "i", "I", "l", "L"};
  static const char *const temporal[] = {
      "tdD",        "tdm",     "tts",  "ttm",
      "ttu",        "ttn",     "tss:", "tsm:Europe/Paris",
      "tsu:+00:00", "tsn:UTC", "tDs",  "tDm",
      "tDu",        "tDn",     "tiM"};
  static const uint16_t halves[] = {0x3C00, 0xC000, 0x3555, 0x7C00, 0x0001};
  tl_ab *r = tl_ab_new();
  tl_ab *cn = tl_ab_child(r, "n", "null", true);
  tl_ab *cb = tl_ab_child(r, "b", "bool", true);
  tl_ab *ci[8], *ct[15];
  char name[32];
  for (int i = 0; i < 8; i++) {
    snprintf(name, sizeof name, "int_%s", ints[i]);
    ci[i] = tl_ab_child(r, ints[i], name, true);
  }
  tl_ab *ce = tl_ab_child(r, "e", "f16", true);
  tl_ab *cf = tl_ab_child(r, "f", "f32", true);
  tl_ab *cg = tl_ab_child(r, "g", "f64", true);
  tl_ab *cu = tl_ab_child(r, "u", "utf8", true);
  tl_ab *cU = tl_ab_child(r, "U", "large_utf8", true);
  tl_ab *cz = tl_ab_child(r, "z", "binary", true);
  tl_ab *cZ = tl_ab_child(r, "Z", "large_binary", true);
  tl_ab *cw = tl_ab_child(r, "w:3", "fsb3", true);
  for (int i = 0; i < 15; i++) {
    snprintf(name, sizeof name, "t_%d", i);
    ct[i] = tl_ab_child(r, temporal[i], name, true);
  }
  tl_ab *ciD = tl_ab_child(r, "tiD", "interval_dt", true);
  tl_ab *cin = tl_ab_child(r, "tin", "interval_mdn", true);
  tl_ab *cd = tl_ab_child(r, "d:38,10", "dec", true);
  tl_ab *cdn = tl_ab_child(r, "d:5,-2", "dec_neg_scale", true);
  tl_ab *cd256 = tl_ab_child(r, "d:76,5,256", "dec256", true);
  tl_ab *cl = tl_ab_child(r, "+l", "list", true);
  tl_ab *cli = tl_ab_child(cl, "i", "item", true);
  tl_ab *cL = tl_ab_child(r, "+L", "large_list", true);
  tl_ab *cLi = tl_ab_child(cL, "u", "item", true);
  tl_ab *cfl = tl_ab_child(r, "+w:2", "fixed_list", true);
  tl_ab *cfli = tl_ab_child(cfl, "s", "item", true);
  tl_ab *cs = tl_ab_child(r, "+s", "struct", true);
  tl_ab *csx = tl_ab_child(cs, "l", "x", true);
  tl_ab *csy = tl_ab_child(cs, "u", "y", true);
  tl_ab *cm = tl_ab_child(r, "+m", "map", true);
  tl_ab *cmk = tl_ab_child(cm, "u", "key", false);
  tl_ab *cmv = tl_ab_child(cm, "l", "value", true);
  tl_ab *cdu = tl_ab_child(r, "+ud:0,1", "dense_union", true);
  tl_ab *cdui = tl_ab_child(cdu, "i", "i", true);
  tl_ab *cdus = tl_ab_child(cdu, "u", "s", true);
  tl_ab *csu = tl_ab_child(r, "+us:3,7", "sparse_union", true);
  tl_ab *csub = tl_ab_child(csu, "b", "b", true);
  tl_ab *csud = tl_ab_child(csu, "g", "d", true);

  for (int row = 0; row < rows; row++) {
    int k = row + seed;
    bool null = k % 4 == 1;
    char text[64];
    tl_ab_null(cn);
    if (null)
      tl_ab_null(cb);
    else
      tl_ab_bool(cb, k % 3 == 0);
    for (int i = 0; i < 8; i++)
      I(ci[i], null, i & 1 ? k * 37 : k * 37 - 50);
    if (null)
      tl_ab_null(ce);
    else
      tl_ab_bin(ce, &halves[k % 5], 2);
    if (null)
      tl_ab_null(cf);
    else
      tl_ab_float(cf, k * 0.25f - 1);
    if (null)
      tl_ab_null(cg);
    else
      tl_ab_float(cg, k / 3.0 - 2);
    snprintf(text, sizeof text, "text \"%d\"\n\xc3\xa9", k);
    tl_ab_str(cu, null ? NULL : text);
    tl_ab_str(cU, null ? NULL : text + (k % 3));
    if (null) {
      tl_ab_null(cz);
      tl_ab_null(cZ);
      tl_ab_null(cw);
    } else {
      uint8_t bin[3] = {(uint8_t)k, (uint8_t)(k + 1), 0xff};
      tl_ab_bin(cz, bin, (size_t)(k % 4));
      tl_ab_bin(cZ, bin, 3);
      tl_ab_bin(cw, bin, 3);
    }
    int64_t big = (int64_t)k * 1795700664123LL + 999;
    for (int i = 0; i < 15; i++) {
      int64_t v = i == 0 ? k * 1000 - 3 : i <= 2 ? big / 100000 : big;
      if (i == 2 || i == 3)
        v = (k * 3671) % 86400; /* time32 */
      if (i == 4 || i == 5)
        v = (int64_t)((k * 3671) % 86400) * 1000000 + k;
      if (i == 14)
        v = k - 3;
      I(ct[i], null, v);
    }
    if (null) {
      tl_ab_null(ciD);
      tl_ab_null(cin);
    } else {
      int32_t dt[2] = {k, k * 1500};
      tl_ab_bin(ciD, dt, 8);
      uint8_t mdn[16];
      int32_t m = k, d = -k;
      int64_t ns = (int64_t)k * 1500000000 + 7;
      memcpy(mdn, &m, 4);
      memcpy(mdn + 4, &d, 4);
      memcpy(mdn + 8, &ns, 8);
      tl_ab_bin(cin, mdn, 16);
    }
    I(cd, null, (int64_t)(k - 5) * 12345678901LL);
    I(cdn, null, k * 7 - 20);
    I(cd256, null, -(int64_t)k * 1000003);
    if (null) {
      tl_ab_null(cl);
      tl_ab_null(cL);
      tl_ab_null(cfl);
      tl_ab_null(cs);
      tl_ab_null(cm);
      tl_ab_null(cdu);
      tl_ab_null(csu);
    } else {
      for (int j = 0; j < k % 3; j++)
        I(cli, j == 1 && k % 5 == 0, k * 10 + j);
      tl_ab_list_end(cl);
      for (int j = 0; j < (k + 1) % 3; j++) {
        snprintf(text, sizeof text, "item %d.%d", k, j);
        tl_ab_str(cLi, text);
      }
      tl_ab_list_end(cL);
      I(cfli, false, k);
      I(cfli, k % 3 == 0, -k);
      tl_ab_list_end(cfl);
      tl_ab_int(csx, k);
      snprintf(text, sizeof text, "y%d", k);
      tl_ab_str(csy, k % 3 == 2 ? NULL : text);
      tl_ab_struct_row(cs);
      for (int j = 0; j < k % 3; j++) {
        snprintf(text, sizeof text, "k%d", j);
        tl_ab_str(cmk, text);
        I(cmv, j == 1, j * 100 + k);
      }
      tl_ab_list_end(cm);
      if (k % 2) {
        tl_ab_int(cdui, k);
        tl_ab_union_row(cdu, 0);
        tl_ab_bool(csub, k % 3 == 0);
        tl_ab_union_row(csu, 3);
      } else {
        tl_ab_str(cdus, "s");
        tl_ab_union_row(cdu, 1);
        tl_ab_float(csud, k + 0.5);
        tl_ab_union_row(csu, 7);
      }
    }
    tl_ab_row(r);
  }
  return tl_ab_finish(r, s, a);
}

int sample_sql_info(struct ArrowSchema *s, struct ArrowArray *a) {
  tl_ab *r = tl_ab_new();
  tl_ab *name = tl_ab_child(r, "I", "info_name", false);
  tl_ab *v = tl_ab_child(r, "+ud:0,1,2,3,4,5", "value", false);
  tl_ab *str = tl_ab_child(v, "u", "string_value", false);
  tl_ab *bol = tl_ab_child(v, "b", "bool_value", false);
  tl_ab *big = tl_ab_child(v, "l", "bigint_value", false);
  tl_ab *msk = tl_ab_child(v, "i", "int32_bitmask", false);
  tl_ab *lst = tl_ab_child(v, "+l", "string_list", false);
  tl_ab *lsti = tl_ab_child(lst, "u", "item", true);
  tl_ab *map = tl_ab_child(v, "+m", "int32_to_int32_list_map", false);
  tl_ab *key = tl_ab_child(map, "i", "key", false);
  tl_ab *val = tl_ab_child(map, "+l", "value", true);
  tl_ab *vali = tl_ab_child(val, "i", "item", true);

  tl_ab_int(name, 0); /* FLIGHT_SQL_SERVER_NAME */
  tl_ab_str(str, "tracelake");
  tl_ab_union_row(v, 0);
  tl_ab_row(r);
  tl_ab_int(name, 1); /* FLIGHT_SQL_SERVER_VERSION */
  tl_ab_str(str, "0.1.0");
  tl_ab_union_row(v, 0);
  tl_ab_row(r);
  tl_ab_int(name, 3); /* FLIGHT_SQL_SERVER_READ_ONLY */
  tl_ab_bool(bol, true);
  tl_ab_union_row(v, 1);
  tl_ab_row(r);
  tl_ab_int(name, 507); /* SQL_MAX_COLUMNS_IN_TABLE-like bigint */
  tl_ab_int(big, 4096);
  tl_ab_union_row(v, 2);
  tl_ab_row(r);
  tl_ab_int(name, 504); /* an int32 bitmask */
  tl_ab_int(msk, 0x5);
  tl_ab_union_row(v, 3);
  tl_ab_row(r);
  tl_ab_int(name, 508); /* keywords */
  tl_ab_str(lsti, "SELECT");
  tl_ab_str(lsti, "FROM");
  tl_ab_list_end(lst);
  tl_ab_union_row(v, 4);
  tl_ab_row(r);
  tl_ab_int(name, 517); /* SQL_SUPPORTS_CONVERT */
  tl_ab_int(key, 1);
  tl_ab_int(vali, 2);
  tl_ab_int(vali, 3);
  tl_ab_list_end(val);
  tl_ab_int(key, 4);
  tl_ab_list_end(val);
  tl_ab_int(key, 5);
  tl_ab_null(val);
  tl_ab_list_end(map);
  tl_ab_union_row(v, 5);
  tl_ab_row(r);
  tl_ab_int(name, 509); /* an empty list */
  tl_ab_list_end(lst);
  tl_ab_union_row(v, 4);
  tl_ab_row(r);
  return tl_ab_finish(r, s, a);
}

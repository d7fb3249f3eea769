/* uuid.c - random (v4) UUIDs and their canonical text form. */
#include <stdio.h>
#include <sys/random.h>

#include "common.h"

void tl_uuid_v4(uint8_t out[16]) {
  size_t got = 0;
  while (got < 16) {
    ssize_t r = getrandom(out + got, 16 - got, 0);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got < 16) { /* getrandom cannot fail for 16 bytes; be safe anyway */
    uint64_t a = tl_ticks() ^ (uint64_t)tl_wall_ns(), b = tl_mono_ns();
    a ^= (uint64_t)(uintptr_t)out * 0x9E3779B97F4A7C15ull;
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
  }
  out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
  out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

void tl_uuid_format(const uint8_t id[16], char out[37]) {
  static const char hex[] = "0123456789abcdef";
  char *o = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *o++ = '-';
    *o++ = hex[id[i] >> 4];
    *o++ = hex[id[i] & 15];
  }
  *o = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int tl_uuid_parse(const char *s, uint8_t out[16]) {
  uint8_t id[16];
  int n = 0;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return TL_EMALFORMED;
      continue;
    }
    int hi = hexval(s[i]), lo = hi < 0 ? -1 : hexval(s[i + 1]);
    if (hi < 0 || lo < 0)
      return TL_EMALFORMED;
    id[n++] = (uint8_t)(hi << 4 | lo);
    i++;
  }
  if (s[36] != 0)
    return TL_EMALFORMED;
  memcpy(out, id, 16);
  return 0;
}

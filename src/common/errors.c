/* errors.c - text for the TL_E* codes, generated from TL_ERRNO_MAP. */
#include "tracelake/tracelake.h"

const char *tl_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define TL__ERR_STR(name, value, msg)                                          \
  case value:                                                                  \
    return msg;
    TL_ERRNO_MAP(TL__ERR_STR)
#undef TL__ERR_STR
  }
  return "unknown error";
}

const char *tl_errname(int err) {
  switch (err) {
  case 0:
    return "TL_OK";
#define TL__ERR_NAME(name, value, msg)                                         \
  case value:                                                                  \
    return "TL_E" #name;
    TL_ERRNO_MAP(TL__ERR_NAME)
#undef TL__ERR_NAME
  }
  return "TL_EUNKNOWN";
}

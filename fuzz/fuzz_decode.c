/* fuzz_decode.c - libFuzzer target for every wire decoder: the input is
 * decoded as a process, a stream and a block message, with a visitor that
 * touches every decoded byte so that sanitizers see any out-of-bounds
 * slice. Decoders must reject garbage with a reason, never crash. */
#include <stdint.h>
#include <string.h>

#include "wire/wire.h"

static volatile uint64_t sink;

static void touch(tl_slice s) {
  for (size_t i = 0; i < s.n; i++)
    sink += s.p[i];
}

static int on_event(void *ctx, const tl_wire_event *ev) {
  (void)ctx;
  touch(ev->cs->name);
  touch(ev->cs->unit);
  touch(ev->cs->target);
  touch(ev->cs->file);
  if (ev->type == TL_EV_LOG || ev->type == TL_EV_LOGF)
    touch(ev->v.msg);
  sink += ev->ticks;
  return 0;
}

static void check_reason(int rc, const tl_wire_error *err) {
  if (rc != 0 && err->reason[0] == 0 && rc != TL_ENOMEM)
    __builtin_trap(); /* every rejection must say why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tl_wire_error err;
  tl_wire_process pm;
  tl_wire_stream sm;
  memset(&err, 0, sizeof err);
  int rc = tl_process_decode(data, size, &pm, &err);
  check_reason(rc, &err);
  if (!rc) {
    touch(pm.exe);
    touch(pm.cpu_brand);
    for (uint32_t i = 0; i < pm.nprops; i++)
      touch(pm.props[i].value);
  }
  memset(&err, 0, sizeof err);
  rc = tl_stream_decode(data, size, &sm, &err);
  check_reason(rc, &err);
  if (!rc)
    for (uint32_t i = 0; i < sm.ntags; i++)
      touch(sm.tags[i]);
  memset(&err, 0, sizeof err);
  tl_block_visitor v = {NULL, NULL, on_event};
  rc = tl_block_decode(data, size, &v, &err);
  check_reason(rc, &err);
  return 0;
}

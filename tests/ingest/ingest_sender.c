/* ingest_sender.c - a steady load for the crash test: two threads record
 * logs and metrics at a fixed pace for SECONDS with libtracelake's HTTP sink
 * (short flush period, so blocks go out all the time), then it shuts down,
 * waiting up to DRAIN_MS for the server, and prints its process id and what
 * it recorded and delivered. Exits 0 only when nothing was dropped or lost.
 *
 * usage: ingest_sender URL SPILL_DIR SECONDS DRAIN_MS */
#define TL_TARGET "tests::ingest_sender"
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/common.h"
#include "tracelake/tracelake.h"

static uint64_t end_ns;

static void *worker(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg, i = 0;
  while (tl_mono_ns() < end_ns) {
    for (int k = 0; k < 10; k++, i++) {
      TL_INFO("worker %u event %u", id, i);
      TL_IMETRIC("sender_counter", "count", i);
    }
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: ingest_sender URL SPILL_DIR SECONDS DRAIN_MS\n");
    return 2;
  }
  tl_config cfg = {0};
  cfg.flags = TL_CONFIG_NO_ENV;
  cfg.url = argv[1];
  cfg.spool_dir = argv[2];
  cfg.flush_period_ms = 100;
  cfg.http_drain_ms = (unsigned)strtoul(argv[4], NULL, 10);
  cfg.properties = "app=ingest-sender";
  int rc = tl_init(&cfg);
  if (rc) {
    fprintf(stderr, "tl_init: %s\n", tl_strerror(rc));
    return 1;
  }
  uint8_t pid[16];
  char text[37];
  tl_process_id(pid);
  tl_uuid_format(pid, text);
  printf("process %s\n", text);
  fflush(stdout);

  end_ns = tl_mono_ns() + (uint64_t)(atof(argv[3]) * 1e9);
  pthread_t t[2];
  for (uintptr_t i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, worker, (void *)i);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  tl_shutdown();

  tl_stats st;
  tl_stats_get(&st);
  uint64_t dropped = 0;
  for (int r = 0; r < TL_DROP__COUNT; r++)
    dropped += st.dropped[r];
  printf("recorded %" PRIu64 " events (%" PRIu64 " dropped) in %" PRIu64
         " blocks, %" PRIu64 " failed, %" PRIu64 " spilled, %" PRIu64
         " resent\n",
         st.events_recorded, dropped, st.blocks, st.blocks_failed,
         st.blocks_spilled, st.blocks_resent);
  return dropped || st.blocks_failed ? 1 : 0;
}

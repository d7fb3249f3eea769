/* collector.h - an in-process sink for tests: validates every message it
 * receives (order: process, then a stream, then that stream's blocks),
 * decodes the blocks and keeps counts, and optionally the events. */
#ifndef TL_TEST_COLLECTOR_H
#define TL_TEST_COLLECTOR_H

#include <pthread.h>
#include <stdbool.h>

#include "wire/wire.h"

typedef struct coll_stream {
  uint8_t id[16];
  char tag[16];
  char thread_id[16];
  char thread_name[32];
  uint64_t events;
} coll_stream;

typedef struct coll_event {
  int type;
  int stream; /* index into streams */
  int level;
  uint64_t ticks;
  uint64_t u; /* IMETRIC value, async span id, or a log message's length */
  double f;
  uint64_t parent;
  uint32_t depth;
  char name[48]; /* call-site name (format for logs) */
  char msg[96];
  char target[48];
} coll_event;

typedef struct collector {
  pthread_mutex_t mu;
  bool keep;         /* keep events (small tests only) */
  unsigned delay_us; /* slow sink: sleep per block */
  uint64_t processes, blocks, events, by_type[8];
  uint64_t errors; /* decode failures or ordering violations */
  char last_error[200];
  tl_wire_process process; /* slices are invalid: ids and numbers only */
  coll_stream streams[512];
  int nstreams;
  coll_event *ev;
  size_t nev, cap;
  uint64_t named_events; /* events whose call-site name starts with prefix */
  const char *count_prefix;
} collector;

void collector_init(collector *c, bool keep);
void collector_free(collector *c);
/* The tl_sink_fn to put in tl_config.sink, with ctx = the collector. */
int collector_sink(void *ctx, int kind, const uint8_t *p, size_t n);
/* Snapshot counters under the lock. */
uint64_t collector_events(collector *c);
const coll_stream *collector_stream(collector *c, int idx);

#endif

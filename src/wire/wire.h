/* wire.h - the tracelake wire format: process, stream and block messages.
 *
 * Pure functions over byte buffers: no I/O, no threads, no globals. The format
 * is specified in docs/wire-format.md; every length read from the wire is
 * checked against what remains before it is used, and each message carries a
 * CRC32C. Decoded strings are slices borrowed from the input (or, for block
 * payloads, from the decoder's decompression buffer) and live until the
 * decode call returns (blocks) or as long as the input (process, stream).
 */
#ifndef TL_WIRE_H
#define TL_WIRE_H

#include "../common/common.h"

#define TL_WIRE_VERSION 1
#define TL_WIRE_MAGIC_PROCESS 0x52504c54u /* "TLPR" little-endian */
#define TL_WIRE_MAGIC_STREAM 0x54534c54u  /* "TLST" */
#define TL_WIRE_MAGIC_BLOCK 0x4b424c54u   /* "TLBK" */

#define TL_WIRE_MAX_STRING (64u * 1024)
#define TL_WIRE_MAX_PROPS 64
#define TL_WIRE_MAX_TAGS 16
#define TL_WIRE_MAX_PAYLOAD (64u * 1024 * 1024)
#define TL_WIRE_MAX_CALLSITES 65536
#define TL_WIRE_BLOCK_HEADER_SIZE 108

/* Block event types (low 3 bits of an event's tag). */
enum {
  TL_EV_LOG = 0,  /* static message: the call site's name */
  TL_EV_LOGF = 1, /* formatted message follows */
  TL_EV_IMETRIC = 2,
  TL_EV_FMETRIC = 3,
  TL_EV_SPAN_BEGIN = 4,
  TL_EV_SPAN_END = 5,
  TL_EV_ASYNC_BEGIN = 6,
  TL_EV_ASYNC_END = 7
};

typedef struct tl_kv {
  tl_slice key;
  tl_slice value;
} tl_kv;

typedef struct tl_wire_process {
  uint8_t process_id[16];
  uint8_t parent_process_id[16]; /* all zero: none */
  int64_t start_time;            /* UTC ns */
  uint64_t start_ticks;
  uint64_t tsc_frequency; /* ticks per second, never 0 */
  tl_slice exe, username, realname, computer, distro, cpu_brand;
  uint32_t nprops;
  tl_kv props[TL_WIRE_MAX_PROPS];
} tl_wire_process;

typedef struct tl_wire_stream {
  uint8_t stream_id[16];
  uint8_t process_id[16];
  uint32_t ntags;
  tl_slice tags[TL_WIRE_MAX_TAGS];
  uint32_t nprops;
  tl_kv props[TL_WIRE_MAX_PROPS];
} tl_wire_stream;

typedef struct tl_wire_block_header {
  uint16_t version;
  uint16_t flags; /* TL_WIRE_BLOCK_LZ4 */
  uint8_t block_id[16];
  uint8_t stream_id[16];
  uint8_t process_id[16];
  int64_t begin_time, end_time; /* UTC ns */
  uint64_t begin_ticks, end_ticks;
  uint32_t nb_objects;
  uint32_t payload_raw_size;
  uint32_t payload_size;
  uint32_t payload_crc;
} tl_wire_block_header;
#define TL_WIRE_BLOCK_LZ4 0x1u

typedef struct tl_wire_callsite {
  uint8_t kind; /* TL_CS_* */
  uint8_t level;
  uint32_t line;
  tl_slice name, unit, target, file;
} tl_wire_callsite;

typedef struct tl_wire_event {
  int type; /* TL_EV_* */
  const tl_wire_callsite *cs;
  uint64_t ticks;
  union {
    uint64_t u;   /* IMETRIC */
    double f;     /* FMETRIC */
    tl_slice msg; /* LOG (the call site's name) and LOGF */
    struct {
      uint64_t id, parent;
      uint32_t depth;
    } async;
  } v;
} tl_wire_event;

/* Why a decode failed: a code and a sentence for humans. */
typedef struct tl_wire_error {
  int code;
  size_t offset;
  char reason[160];
} tl_wire_error;

/* ---- Decoding --------------------------------------------------------- */

/* Returns the message kind (TL_MSG_*) from the magic, or TL_EMALFORMED. */
int tl_wire_kind(const uint8_t *p, size_t n);

int tl_process_decode(const uint8_t *p, size_t n, tl_wire_process *out,
                      tl_wire_error *err);
int tl_stream_decode(const uint8_t *p, size_t n, tl_wire_stream *out,
                     tl_wire_error *err);
/* Checks the block header and its CRC only (not the payload). */
int tl_block_header_decode(const uint8_t *p, size_t n,
                           tl_wire_block_header *out, tl_wire_error *err);

/* A block visitor. Callbacks may be NULL; a nonzero return stops the decode
 * and is returned by tl_block_decode. Events may be visited before a later
 * part of the block is found malformed: decode once without callbacks to
 * validate first when that matters. */
typedef struct tl_block_visitor {
  void *ctx;
  int (*on_header)(void *ctx, const tl_wire_block_header *h);
  int (*on_event)(void *ctx, const tl_wire_event *ev);
} tl_block_visitor;

/* Decodes and validates a whole block: header, CRCs, decompression, call-site
 * table, every event (count, call-site index and kind). `v` may be NULL. */
int tl_block_decode(const uint8_t *p, size_t n, const tl_block_visitor *v,
                    tl_wire_error *err);

/* The CRC32C identifying a block message's content (the catalog's
 * blob_crc): every byte except the header CRC field (bytes 104..107). A CRC
 * over data followed by its own CRC is a constant, so the field is left out.
 * `n` must be at least TL_WIRE_BLOCK_HEADER_SIZE. */
uint32_t tl_block_content_crc(const uint8_t *p, size_t n);

/* ---- Encoding --------------------------------------------------------- */

int tl_process_encode(const tl_wire_process *m, tl_bytes *out);
int tl_stream_encode(const tl_wire_stream *m, tl_bytes *out);

/* Builds a block's payload: call sites first, then events. The caller maps
 * its call sites to dense indexes (0, 1, 2, ... in the order added). */
typedef struct tl_block_builder {
  tl_bytes callsites; /* encoded call-site table entries */
  tl_bytes events;    /* encoded events */
  tl_bytes payload;   /* scratch for finish */
  uint32_t ncallsites;
  uint32_t nevents;
  uint64_t min_ticks, max_ticks;
  uint64_t prev_ticks;
} tl_block_builder;

/* Relates ticks to wall time for a process (from its process message). */
typedef struct tl_clock_ref {
  uint64_t start_ticks;
  int64_t start_time;
  uint64_t tsc_frequency;
} tl_clock_ref;

void tl_block_builder_init(tl_block_builder *b);
void tl_block_builder_free(tl_block_builder *b);
void tl_block_builder_reset(tl_block_builder *b);
/* Appends a call site; `target` NULL derives one from `file`. */
int tl_block_builder_callsite(tl_block_builder *b, const tl_callsite *cs);
/* Appends an event of type `ev->type` referencing call site `cs_index`. */
int tl_block_builder_event(tl_block_builder *b, uint32_t cs_index,
                           const tl_wire_event *ev);
/* Compresses the payload and writes header + payload to `out` (appended).
 * `h` supplies the ids and a tick range; the range is widened to cover every
 * event, then begin/end times are computed from `ref`. Counts, sizes, flags
 * and CRCs are filled in. */
int tl_block_builder_finish(tl_block_builder *b, tl_wire_block_header *h,
                            const tl_clock_ref *ref, tl_bytes *out);

/* Derives a target from a source path: "src/runtime/flush.c" gives
 * "runtime::flush" (the last directory and the file stem). Writes at most
 * `cap` bytes (NUL included). Returns the length. */
size_t tl_target_from_file(const char *file, char *out, size_t cap);

#endif

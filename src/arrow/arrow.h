/* arrow.h - Arrow columnar data without an Arrow library: the C Data
 * Interface structs (from the Arrow specification), a builder for small
 * tables made in C (Flight SQL metadata replies), and an IPC encoder and
 * decoder of our own (flatbuffer Schema, DictionaryBatch and RecordBatch
 * messages, format version V5, 8-byte aligned bodies, little endian).
 * No dependency but libc; neither DuckDB nor gRPC is included here. */
#ifndef TL_ARROW_H
#define TL_ARROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h" /* tl_bytes */

/* ---- The C Data Interface (Arrow specification, ABI-stable) ------------- */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4
struct ArrowSchema {
  const char *format;
  const char *name;
  const char *metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema **children;
  struct ArrowSchema *dictionary;
  void (*release)(struct ArrowSchema *);
  void *private_data;
};
struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void **buffers;
  struct ArrowArray **children;
  struct ArrowArray *dictionary;
  void (*release)(struct ArrowArray *);
  void *private_data;
};
#endif

/* Releases if set (accepts already-released structs). */
void tl_arrow_schema_release(struct ArrowSchema *s);
void tl_arrow_array_release(struct ArrowArray *a);

/* ---- Builder ------------------------------------------------------------
 * Builds one record batch (a struct array at the root) column by column;
 * used for replies the server makes itself (metadata commands) and in tests.
 * Formats are C Data Interface format strings ("l", "i", "u", "z", "b",
 * "+l", "+s", "+ud:0,1,...", "+m", "tsn:+00:00", ...). A nested column gets
 * its children with tl_ab_child. Append rows to leaf columns; for "+l"/"+m"
 * call tl_ab_list_end after appending the row's child values; for "+s" call
 * tl_ab_struct_row after appending each child; for dense unions
 * tl_ab_union_row(type_id) after appending to that child.
 *
 * Details: a "+m" column makes its "entries" struct itself, and
 * tl_ab_child on the map adds the key then the value to it (append a row's
 * keys and values, then tl_ab_list_end); a map whose first child is a "+s"
 * takes that as its entries instead (then call tl_ab_struct_row on it per
 * entry). tl_ab_null works on every type: on "+s" and "+w:N" it also
 * appends nulls to the children, on a union it appends a null to its first
 * child. For sparse unions ("+us:...") tl_ab_union_row appends nulls to the
 * other children. Misuse (a value of the wrong kind, an undeclared type id)
 * makes tl_ab_finish fail with TL_EINVAL; every call accepts NULL. Not a
 * builder for dictionary-encoded columns or float16 ("e": raw bytes only).
 * Not thread-safe. */
typedef struct tl_ab tl_ab;
tl_ab *tl_ab_new(void); /* the root: a record batch (format "+s") */
/* Adds a column (or a child of a nested column); returns it, owned by
 * `parent` (`format` and `name` are copied). NULL on allocation failure or
 * an unsupported format (the builder then fails at finish). */
tl_ab *tl_ab_child(tl_ab *parent, const char *format, const char *name,
                   bool nullable);
void tl_ab_null(tl_ab *c);
/* Any int format; also dates, times, timestamps, durations, "tiM" (the
 * count of the unit) and decimals (the unscaled value). */
void tl_ab_int(tl_ab *c, int64_t v);
void tl_ab_float(tl_ab *c, double v);    /* "f", "g" */
void tl_ab_bool(tl_ab *c, bool v);       /* "b" */
void tl_ab_str(tl_ab *c, const char *s); /* "u", "z" (NULL: a null) */
/* "z", "u", "Z", "U"; "w:N" with n == N; any other fixed-width format
 * with the value's raw little-endian bytes (n == its width: "tin",
 * "d:38,10", "e"...). `p` is copied. */
void tl_ab_bin(tl_ab *c, const void *p, size_t n);
void tl_ab_list_end(tl_ab *c);   /* "+l", "+L", "+m", "+w:N": closes a row */
void tl_ab_struct_row(tl_ab *c); /* "+s" (not the root) */
void tl_ab_union_row(tl_ab *c, int8_t type_id); /* "+ud:...", "+us:..." */
void tl_ab_row(tl_ab *root);                    /* the root: one more row */
/* Moves the result into *schema and *array (released by their release
 * callbacks) and frees the builder, also on failure. Returns 0, TL_ENOMEM,
 * TL_ETOOBIG (over 2 GiB in a 32-bit offsets column) or TL_EINVAL (columns
 * of different lengths, misuse). The arrays own their buffers and have
 * offset 0; children moved out by a consumer stay valid. */
int tl_ab_finish(tl_ab *root, struct ArrowSchema *schema,
                 struct ArrowArray *array);
void tl_ab_free(tl_ab *root); /* without finishing; accepts NULL */

/* Deep copy of a schema (with its own release); `src` is borrowed. 0 or
 * TL_ENOMEM. */
int tl_arrow_schema_copy(const struct ArrowSchema *src,
                         struct ArrowSchema *dst);

/* ---- IPC encoder --------------------------------------------------------
 * A Flight DoGet stream carries each IPC message as FlightData: the
 * flatbuffer Message (data_header) and the body (data_body). The writer
 * keeps what the stream needs across messages (dictionaries sent). */
typedef struct tl_ipc_writer tl_ipc_writer;

/* Emits one message; `header` is the flatbuffer Message, `body` its body
 * (may be empty). Both are valid only during the call unless the callee
 * takes ownership of `body` by setting *take_body (it must then free() it).
 * Returns 0 or a TL_E* code, which stops the writer and is returned. */
typedef int (*tl_ipc_emit_fn)(void *ctx, const uint8_t *header,
                              size_t header_len, uint8_t *body, size_t body_len,
                              bool *take_body);

/* `schema` is borrowed and must outlive the writer. Timestamps are written
 * as declared (unit and zone). Dictionary-encoded fields get the ids 0, 1,
 * ... in pre-order. Not supported: views ("vu", "vz", "+vl"), run-end
 * encoded ("+r"), dictionaries inside dictionaries, more than 64 levels or
 * 65536 fields. Returns 0, TL_ENOMEM or TL_EINVAL (a type the encoder does
 * not support, named in err). A writer is used by one thread at a time. */
int tl_ipc_writer_new(tl_ipc_writer **out, const struct ArrowSchema *schema,
                      char *err, size_t errcap);
void tl_ipc_writer_free(tl_ipc_writer *w);
/* The Schema message. */
int tl_ipc_writer_schema(tl_ipc_writer *w, tl_ipc_emit_fn emit, void *ctx);

/* Rows [offset, offset+length) of a root (struct) array. */
typedef struct tl_ipc_slice {
  const struct ArrowArray *array;
  int64_t offset, length;
} tl_ipc_slice;

/* One RecordBatch made of the concatenation of `n` slices (all of the
 * writer's schema), preceded by DictionaryBatch messages when a dictionary
 * column's dictionary changed. Arrays are borrowed for the call; their
 * `offset` is honoured at every level. A dictionary "changed" when its
 * encoded bytes differ from the last one sent (replacement, isDelta false);
 * when slices of one call have different dictionaries the batch is split,
 * with the dictionary messages in between. Zero slices make an empty batch
 * (and the dictionaries never sent yet are sent empty first). Validity
 * buffers are left out (length 0) where a column has no nulls. Returns 0,
 * TL_ENOMEM, TL_EINVAL (a slice out of range, an array that does not match
 * the schema, over 2 GiB of values in a 32-bit offsets column: split the
 * batch), or the callback's code. */
int tl_ipc_writer_batch(tl_ipc_writer *w, const tl_ipc_slice *slices, size_t n,
                        tl_ipc_emit_fn emit, void *ctx, char *err,
                        size_t errcap);

/* Body bytes rows [offset, offset+length) of `array` would take in a record
 * batch (8-byte padded buffers; dictionaries not counted), for sizing
 * batches before encoding. UINT64_MAX if the schema or array cannot be
 * encoded. */
uint64_t tl_ipc_body_size(const struct ArrowSchema *schema,
                          const struct ArrowArray *array, int64_t offset,
                          int64_t length);

/* An encapsulated IPC stream in memory (continuation marker, metadata
 * length, Message padded to 8, body; end-of-stream marker at the end):
 * the Schema message alone (for GetTables' table_schema and
 * dataset_schema/parameter_schema of prepared statements), or a whole
 * stream of one batch (its dictionaries first). Appends to `out` (nothing
 * on failure); TL_ETOOBIG past its cap. */
int tl_ipc_schema_bytes(const struct ArrowSchema *schema, tl_bytes *out,
                        char *err, size_t errcap);
int tl_ipc_stream_bytes(const struct ArrowSchema *schema,
                        const struct ArrowArray *array, tl_bytes *out,
                        char *err, size_t errcap);

/* ---- IPC decoder --------------------------------------------------------
 * Checks every offset and length against the message and body it was
 * given: malformed input is TL_EMALFORMED with the reason in err, never a
 * crash (fuzzed). Reads metadata V4 and V5, little endian, uncompressed;
 * unsupported features (compression, delta dictionaries, views, run-end
 * encoding, big endian, Tensor messages) are TL_EMALFORMED too, with the
 * reason. Limits: 64 levels, 65536 fields, 16 MiB of decoded schema text,
 * INT32_MAX rows per array. UTF-8 is not validated. Batches are imported
 * as C Data Interface arrays (offset 0) whose buffers point into the
 * reader's own copy of the body (each buffer 8-byte aligned); they own it
 * and may outlive the reader. A dictionary-encoded column's array has its
 * own `dictionary` struct. A reader is used by one thread at a time. */
typedef struct tl_ipc_reader tl_ipc_reader;
enum { TL_IPC_SCHEMA = 1, TL_IPC_DICTIONARY = 2, TL_IPC_BATCH = 3 };
int tl_ipc_reader_new(tl_ipc_reader **out);
void tl_ipc_reader_free(tl_ipc_reader *r);
/* Feeds one message (borrowed: header and body are copied as needed).
 * *kind tells what it was; after a TL_IPC_BATCH, tl_ipc_reader_take gives
 * the batch (an untaken one is dropped by the next). The first message
 * must be a Schema and only one is allowed; a DictionaryBatch replaces the
 * dictionary of its id. `body_len` may exceed the message's bodyLength. */
int tl_ipc_reader_feed(tl_ipc_reader *r, const uint8_t *header,
                       size_t header_len, const uint8_t *body, size_t body_len,
                       int *kind, char *err, size_t errcap);
/* tl_ipc_reader_feed with the body in `nparts` pieces (borrowed, read as
 * if concatenated; e.g. the slices a transport received it in), so that
 * it need not be made contiguous first: each buffer is copied once, from
 * the pieces to its aligned place in the reader's copy. */
int tl_ipc_reader_feed_parts(tl_ipc_reader *r, const uint8_t *header,
                             size_t header_len, const tl_slice *parts,
                             size_t nparts, int *kind, char *err,
                             size_t errcap);
/* Feeds an encapsulated stream (tl_ipc_stream_bytes's format; also the
 * pre-1.0 one without continuation markers), calling `on_batch` for every
 * batch (may be NULL; `a` is released after the call: move it to keep it).
 * Stops at the end-of-stream marker, or at the end of `p` if it falls
 * between messages. A non-zero return of on_batch stops and is returned. */
int tl_ipc_reader_feed_stream(tl_ipc_reader *r, const uint8_t *p, size_t n,
                              int (*on_batch)(void *ctx,
                                              const struct ArrowArray *a),
                              void *ctx, char *err, size_t errcap);
/* The stream's schema (borrowed; NULL before the Schema message). */
const struct ArrowSchema *tl_ipc_reader_schema(const tl_ipc_reader *r);
/* Moves the last batch out (the caller releases it). TL_ENOTFOUND if none. */
int tl_ipc_reader_take(tl_ipc_reader *r, struct ArrowArray *out);

/* ---- Values as text ----------------------------------------------------
 * Row `row` of column `col` of a root array, as text appended to `out`
 * (nulls: sets *is_null and appends nothing): numbers in C locale,
 * timestamps RFC 3339 in UTC with the unit's digits, dates YYYY-MM-DD,
 * binary as hex, decimals exact, nested values as JSON-like text. For the
 * client's table/csv/json output.
 *
 * Details: doubles in the shortest of %.15g/%.16g/%.17g that reads back
 * ("nan", "inf", "-inf"); date64 as its date; times HH:MM:SS with the
 * unit's digits; durations as the count of their unit; intervals in ISO
 * 8601 ("P1M2DT1.5S", "PT0S"); dictionary columns as their values; unions
 * as the selected child's value. Inside nested values, text, binary and
 * times are JSON strings and nulls are null: [1, null], {"k": "v"}, and
 * maps {key: value}. Returns 0, TL_EINVAL (no such column or row, an
 * unsupported format) or TL_ETOOBIG (out's cap); out is unchanged on
 * failure. */
int tl_arrow_value_text(const struct ArrowSchema *schema,
                        const struct ArrowArray *array, int64_t col,
                        int64_t row, tl_bytes *out, bool *is_null);
/* Whether a column's values are numbers (right-aligned, unquoted in JSON). */
bool tl_arrow_is_numeric(const struct ArrowSchema *column);

/* ---- Internal to src/arrow/ ---------------------------------------------
 * Shared by the files of this folder only (tl__ names); other modules use
 * the API above. */

/* Physical layouts (Columnar.rst, "Buffer Listing for Each Layout"). */
enum {
  TL__L_NULL,   /* no buffers */
  TL__L_FIXED,  /* validity, values of `width` bytes */
  TL__L_BOOL,   /* validity, values as bits */
  TL__L_VAR32,  /* validity, int32 offsets, bytes */
  TL__L_VAR64,  /* validity, int64 offsets, bytes */
  TL__L_LIST32, /* validity, int32 offsets; one child */
  TL__L_LIST64, /* validity, int64 offsets; one child */
  TL__L_FSL,    /* validity; one child of `size` items a row */
  TL__L_STRUCT, /* validity; children */
  TL__L_SUNION, /* int8 type ids; children */
  TL__L_DUNION  /* int8 type ids, int32 offsets; children */
};
/* Logical types. */
enum {
  TL__T_NULL = 1,
  TL__T_BOOL,
  TL__T_INT,
  TL__T_FLOAT,
  TL__T_BINARY,
  TL__T_LBINARY,
  TL__T_UTF8,
  TL__T_LUTF8,
  TL__T_FSB,
  TL__T_DATE32,
  TL__T_DATE64,
  TL__T_TIME,
  TL__T_TIMESTAMP,
  TL__T_DURATION,
  TL__T_INTERVAL,
  TL__T_DECIMAL,
  TL__T_LIST,
  TL__T_LLIST,
  TL__T_FSLIST,
  TL__T_STRUCT,
  TL__T_MAP,
  TL__T_UNION
};
#define TL__MAX_DEPTH 64     /* nesting levels of a schema */
#define TL__MAX_FIELDS 65536 /* fields of a schema, all levels */
#define TL__MAX_UNION 128    /* children of a union (type ids 0..127) */

/* A parsed C Data Interface format string. */
typedef struct tl__atype {
  int id;         /* TL__T_* */
  int layout;     /* TL__L_* */
  int width;      /* bytes per value of TL__L_FIXED */
  bool is_signed; /* TL__T_INT */
  int unit;       /* time units 0..3 = s, ms, us, ns; interval 0 months,
                     1 days+ms, 2 months+days+ns; date 0 days, 1 ms */
  int32_t precision, scale; /* decimal (width: 4, 8, 16 or 32 bytes) */
  int32_t size;             /* "w:N" bytes, "+w:N" items */
  const char *tz; /* timestamp zone, into the format string ("" none) */
  int nids;       /* union: type id of each child */
  int8_t ids[TL__MAX_UNION];
} tl__atype;
/* 0, or TL_EINVAL for a format this module does not handle (views,
 * run-end encoded, malformed strings). `t->tz` points into `format`. */
int tl__atype_parse(const char *format, tl__atype *t);
/* Buffers a C Data Interface array of this layout has. */
int tl__layout_nbuffers(int layout);

/* A schema checked once and walked many times: each field's parsed type,
 * its children and, for a dictionary-encoded field, the value type. */
typedef struct tl__plan {
  const struct ArrowSchema *s;
  tl__atype t;           /* storage type (a dictionary field: its indices) */
  struct tl__plan *dict; /* dictionary value type, or NULL */
  struct tl__plan *kids;
  int64_t nkids;
  int dict_slot; /* dictionary fields numbered in pre-order, or -1 */
} tl__plan;
/* `s` is borrowed and must outlive the plan. The root must be "+s".
 * Returns 0, TL_ENOMEM or TL_EINVAL (reason in err). */
int tl__plan_new(const struct ArrowSchema *s, tl__plan **out, int *ndicts,
                 char *err, size_t errcap);
void tl__plan_free(tl__plan *p);

/* A reference-counted block of memory that arrays point into (an IPC body);
 * freed with its last reference, from any thread. */
typedef struct tl__body {
  long refs;
  size_t n;
  uint8_t *p;
} tl__body;
tl__body *tl__body_new(size_t n); /* zeroed; NULL on allocation failure */
void tl__body_ref(tl__body *b);
void tl__body_unref(tl__body *b); /* accepts NULL */

/* Sets up `a` as an array made by this module: `nbuf` buffer slots (at most
 * 4, all NULL), `nkids` zeroed child structs, a zeroed dictionary struct if
 * `dict`, a reference to `body` (may be NULL), and a release callback that
 * frees all that (children first, as the C Data Interface asks; a child
 * moved out by the consumer stays valid). 0 or TL_ENOMEM. */
int tl__array_alloc(struct ArrowArray *a, int64_t nbuf, int64_t nkids,
                    bool dict, tl__body *body);
/* Hands malloc'd memory `p` to the array: freed at its release (up to 4). */
void tl__array_own(struct ArrowArray *a, void *p);
/* Copies the struct tree of an array made by tl__array_alloc into `dst`,
 * sharing its buffers (each node takes a reference on its body). */
int tl__array_share(const struct ArrowArray *src, struct ArrowArray *dst);
/* Sets up `s` with copies of the strings (metadata in the C Data Interface
 * encoding; NULL for none), `nkids` zeroed child structs and a zeroed
 * dictionary struct if `dict`. 0 or TL_ENOMEM. */
int tl__schema_alloc(struct ArrowSchema *s, const char *format,
                     const char *name, const char *metadata, int64_t flags,
                     int64_t nkids, bool dict);
/* Bytes of a C Data Interface metadata string (0 for NULL). */
size_t tl__metadata_len(const char *m);

/* Bitmaps, least significant bit first. `dst` of tl__bits_copy must be
 * zeroed where it is written (bits are or'ed in). */
void tl__bits_copy(uint8_t *dst, int64_t doff, const uint8_t *src, int64_t soff,
                   int64_t n);
void tl__bits_set(uint8_t *dst, int64_t off, int64_t n);
int64_t tl__bits_count(const uint8_t *src, int64_t off, int64_t n);
static inline bool tl__bit(const void *p, int64_t i) {
  return (((const uint8_t *)p)[i >> 3] >> (i & 7)) & 1;
}

/* Flatbuffers, just what Schema.fbs and Message.fbs need. The builder
 * writes back to front: children are finished before the tables that point
 * to them, and a reference is the object's distance from the buffer end.
 * Allocation failures are sticky and reported by tl__fbb_finish. */
typedef struct tl__fbb {
  uint8_t *buf; /* the data is buf[cap - used, cap) */
  size_t cap, used, minalign;
  uint32_t fields[16]; /* table in progress: field positions, 0 absent */
  int nfields;
  size_t tstart;
  bool oom;
} tl__fbb;
void tl__fbb_init(tl__fbb *b);
void tl__fbb_free(tl__fbb *b);
uint32_t tl__fbb_string(tl__fbb *b, const char *s, size_t n);
/* A vector of scalars or structs, `elems` already little endian. */
uint32_t tl__fbb_vec(tl__fbb *b, const void *elems, size_t n, size_t esize,
                     size_t align);
/* A vector of tables or strings. */
uint32_t tl__fbb_vec_refs(tl__fbb *b, const uint32_t *refs, size_t n);
void tl__fbb_start(tl__fbb *b);
void tl__fbb_scalar(tl__fbb *b, int field, const void *v, size_t size);
void tl__fbb_ref(tl__fbb *b, int field, uint32_t ref);
uint32_t tl__fbb_end(tl__fbb *b);
/* The finished buffer (owned by `b`). 0 or TL_ENOMEM. */
int tl__fbb_finish(tl__fbb *b, uint32_t root, const uint8_t **p, size_t *n);

/* The reader checks every offset against the buffer. Its getters return
 * NULL, or a static reason when the buffer is malformed. An absent table
 * has p == NULL: its fields read as defaults. */
typedef struct tl__fbt {
  const uint8_t *p; /* the whole buffer, NULL for an absent table */
  size_t n, pos, vt;
  uint16_t vtlen, tlen;
} tl__fbt;
typedef struct tl__fbv {
  const uint8_t *p; /* the whole buffer */
  size_t n, pos;    /* elements start at pos */
  uint32_t len;
} tl__fbv;
const char *tl__fbr_root(const uint8_t *p, size_t n, tl__fbt *t);
/* Copies a scalar of `size` bytes into `out` when present (out unchanged
 * otherwise, so callers preset the default). */
const char *tl__fbr_scalar(const tl__fbt *t, int field, size_t size, void *out);
const char *tl__fbr_table(const tl__fbt *t, int field, tl__fbt *out);
const char *tl__fbr_vec(const tl__fbt *t, int field, size_t esize,
                        tl__fbv *out); /* absent: len 0 */
const char *tl__fbr_string(const tl__fbt *t, int field, const char **s,
                           size_t *n); /* absent: *s NULL */
const char *tl__fbr_vec_table(const tl__fbv *v, uint32_t i, tl__fbt *out);

#endif

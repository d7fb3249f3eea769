/* meta.h - the replies of the Flight SQL metadata commands, with the exact
 * schemas of the Flight SQL specification (FlightSql.proto's comments are
 * the contract: column names, types, nullability, order). Each builds the
 * whole reply as one record batch: *schema and *batch get owned structs
 * (release them). With `batch` NULL only the schema is made (for
 * GetFlightInfo and GetSchema). Patterns are SQL LIKE patterns ('%', '_',
 * backslash escapes) or NULL for all. Returns 0, TL_ENOMEM, or a TL_E*
 * code with err set. No gRPC or protobuf here: the command's fields come
 * as plain C values. */
#ifndef TL_META_H
#define TL_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arrow/arrow.h"
#include "query/stream.h"

/* The one catalog and schema tracelake shows. */
#define TL_META_CATALOG "tracelake"
#define TL_META_SCHEMA "main"

/* Whether `s` matches the SQL LIKE `pattern`: '%' any run of characters,
 * '_' one (UTF-8) character, a backslash makes the next character literal
 * (SQL_SEARCH_STRING_ESCAPE); anything else matches itself, with case.
 * A NULL pattern matches everything. */
bool tl_meta_like(const char *s, const char *pattern);

/* GetCatalogs: the one catalog. */
int tl_meta_catalogs(struct ArrowSchema *schema, struct ArrowArray *batch);
/* GetDbSchemas: `catalog` matches exactly (NULL: any; "" finds nothing, as
 * tracelake has no schema without a catalog). */
int tl_meta_db_schemas(const char *catalog, const char *schema_pattern,
                       struct ArrowSchema *schema, struct ArrowArray *batch);
/* GetTables: the tables of session `s` (borrowed; may be NULL when batch
 * is NULL), sorted by name then type. `catalog` as for GetDbSchemas;
 * `types` (borrowed) filters on table_type, compared without regard to
 * case (NULL/0: all). Without include_schema the reply has the four
 * columns catalog_name .. table_type; with it a fifth, table_schema, holds
 * each table's schema as IPC bytes (tl_ipc_schema_bytes). Errors of
 * tl_session_tables are returned with err set. */
int tl_meta_tables(tl_session *s, const char *catalog,
                   const char *schema_pattern, const char *table_pattern,
                   const char *const *types, size_t ntypes, bool include_schema,
                   struct ArrowSchema *schema, struct ArrowArray *batch,
                   char *err, size_t errcap);
/* GetTableTypes: "TABLE", "VIEW". */
int tl_meta_table_types(struct ArrowSchema *schema, struct ArrowArray *batch);

/* GetPrimaryKeys, GetExportedKeys / GetImportedKeys, GetCrossReference:
 * tracelake's views have no keys: the reply is empty, with the right
 * schema. GetPrimaryKeys' key_sequence comes before key_name, as in the
 * reference implementations (FlightSql.proto's comment lists them the
 * other way round). TL_EINVAL for an unknown kind. */
enum { TL_META_PRIMARY_KEYS = 0, TL_META_FOREIGN_KEYS = 1 };
int tl_meta_keys(int kind, struct ArrowSchema *schema,
                 struct ArrowArray *batch);

/* GetSqlInfo: `ids[0..n)` (n == 0: every id of the specification, in
 * ascending order), in the order asked, unknown ids left out. `l`
 * (borrowed) gives the engine's functions; with `l` NULL the function lists
 * are empty. `server` (borrowed; strings NULL: "") names the server, its
 * version and the Arrow format version. Values use the union member the
 * specification gives for each id (int32 ordinals and bitmasks in
 * int32_bitmask, limits in bigint_value); the Substrait versions are null
 * strings. */
typedef struct tl_meta_server {
  const char *name, *version, *arrow_version;
} tl_meta_server;
int tl_meta_sql_info(tl_lake *l, const tl_meta_server *server,
                     const uint32_t *ids, size_t n, struct ArrowSchema *schema,
                     struct ArrowArray *batch);

/* GetXdbcTypeInfo: the engine's main types (XdbcDataType codes in
 * data_type), sorted by data_type then type_name; only those whose
 * data_type is `data_type` when has_type. */
int tl_meta_xdbc_type_info(bool has_type, int32_t data_type,
                           struct ArrowSchema *schema,
                           struct ArrowArray *batch);

#endif

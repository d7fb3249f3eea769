/* meta.c - the replies of the Flight SQL metadata commands (GetCatalogs,
 * GetDbSchemas, GetTables, GetTableTypes, the key commands, GetSqlInfo and
 * GetXdbcTypeInfo), each built as one Arrow record batch with the schema the
 * Flight SQL specification gives for it. The values describe tracelake: a
 * read-only SQL service over DuckDB with one catalog and one schema. */
#include "flightsql/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Enumerations of FlightSql.proto ------------------------------------
 * Numbers as the specification defines them; names are the spec's. */

/* SqlInfo: the ids of GetSqlInfo. */
enum {
  FLIGHT_SQL_SERVER_NAME = 0,
  FLIGHT_SQL_SERVER_VERSION = 1,
  FLIGHT_SQL_SERVER_ARROW_VERSION = 2,
  FLIGHT_SQL_SERVER_READ_ONLY = 3,
  FLIGHT_SQL_SERVER_SQL = 4,
  FLIGHT_SQL_SERVER_SUBSTRAIT = 5,
  FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION = 6,
  FLIGHT_SQL_SERVER_SUBSTRAIT_MAX_VERSION = 7,
  FLIGHT_SQL_SERVER_TRANSACTION = 8,
  FLIGHT_SQL_SERVER_CANCEL = 9,
  FLIGHT_SQL_SERVER_BULK_INGESTION = 10,
  FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED = 11,
  FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT = 100,
  FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT = 101,
  SQL_DDL_CATALOG = 500,
  SQL_DDL_SCHEMA = 501,
  SQL_DDL_TABLE = 502,
  SQL_IDENTIFIER_CASE = 503,
  SQL_IDENTIFIER_QUOTE_CHAR = 504,
  SQL_QUOTED_IDENTIFIER_CASE = 505,
  SQL_ALL_TABLES_ARE_SELECTABLE = 506,
  SQL_NULL_ORDERING = 507,
  SQL_KEYWORDS = 508,
  SQL_NUMERIC_FUNCTIONS = 509,
  SQL_STRING_FUNCTIONS = 510,
  SQL_SYSTEM_FUNCTIONS = 511,
  SQL_DATETIME_FUNCTIONS = 512,
  SQL_SEARCH_STRING_ESCAPE = 513,
  SQL_EXTRA_NAME_CHARACTERS = 514,
  SQL_SUPPORTS_COLUMN_ALIASING = 515,
  SQL_NULL_PLUS_NULL_IS_NULL = 516,
  SQL_SUPPORTS_CONVERT = 517,
  SQL_SUPPORTS_TABLE_CORRELATION_NAMES = 518,
  SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES = 519,
  SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY = 520,
  SQL_SUPPORTS_ORDER_BY_UNRELATED = 521,
  SQL_SUPPORTED_GROUP_BY = 522,
  SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE = 523,
  SQL_SUPPORTS_NON_NULLABLE_COLUMNS = 524,
  SQL_SUPPORTED_GRAMMAR = 525,
  SQL_ANSI92_SUPPORTED_LEVEL = 526,
  SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY = 527,
  SQL_OUTER_JOINS_SUPPORT_LEVEL = 528,
  SQL_SCHEMA_TERM = 529,
  SQL_PROCEDURE_TERM = 530,
  SQL_CATALOG_TERM = 531,
  SQL_CATALOG_AT_START = 532,
  SQL_SCHEMAS_SUPPORTED_ACTIONS = 533,
  SQL_CATALOGS_SUPPORTED_ACTIONS = 534,
  SQL_SUPPORTED_POSITIONED_COMMANDS = 535,
  SQL_SELECT_FOR_UPDATE_SUPPORTED = 536,
  SQL_STORED_PROCEDURES_SUPPORTED = 537,
  SQL_SUPPORTED_SUBQUERIES = 538,
  SQL_CORRELATED_SUBQUERIES_SUPPORTED = 539,
  SQL_SUPPORTED_UNIONS = 540,
  SQL_MAX_BINARY_LITERAL_LENGTH = 541,
  SQL_MAX_CHAR_LITERAL_LENGTH = 542,
  SQL_MAX_COLUMN_NAME_LENGTH = 543,
  SQL_MAX_COLUMNS_IN_GROUP_BY = 544,
  SQL_MAX_COLUMNS_IN_INDEX = 545,
  SQL_MAX_COLUMNS_IN_ORDER_BY = 546,
  SQL_MAX_COLUMNS_IN_SELECT = 547,
  SQL_MAX_COLUMNS_IN_TABLE = 548,
  SQL_MAX_CONNECTIONS = 549,
  SQL_MAX_CURSOR_NAME_LENGTH = 550,
  SQL_MAX_INDEX_LENGTH = 551,
  SQL_DB_SCHEMA_NAME_LENGTH = 552,
  SQL_MAX_PROCEDURE_NAME_LENGTH = 553,
  SQL_MAX_CATALOG_NAME_LENGTH = 554,
  SQL_MAX_ROW_SIZE = 555,
  SQL_MAX_ROW_SIZE_INCLUDES_BLOBS = 556,
  SQL_MAX_STATEMENT_LENGTH = 557,
  SQL_MAX_STATEMENTS = 558,
  SQL_MAX_TABLE_NAME_LENGTH = 559,
  SQL_MAX_TABLES_IN_SELECT = 560,
  SQL_MAX_USERNAME_LENGTH = 561,
  SQL_DEFAULT_TRANSACTION_ISOLATION = 562,
  SQL_TRANSACTIONS_SUPPORTED = 563,
  SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS = 564,
  SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT = 565,
  SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED = 566,
  SQL_SUPPORTED_RESULT_SET_TYPES = 567,
  SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_UNSPECIFIED = 568,
  SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_FORWARD_ONLY = 569,
  SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_SENSITIVE = 570,
  SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_INSENSITIVE = 571,
  SQL_BATCH_UPDATES_SUPPORTED = 572,
  SQL_SAVEPOINTS_SUPPORTED = 573,
  SQL_NAMED_PARAMETERS_SUPPORTED = 574,
  SQL_LOCATORS_UPDATE_COPY = 575,
  SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED = 576,
};

/* SqlSupportedTransaction */
enum { SQL_SUPPORTED_TRANSACTION_NONE = 0 };
/* SqlSupportedCaseSensitivity */
enum { SQL_CASE_SENSITIVITY_CASE_INSENSITIVE = 1 };
/* SqlNullOrdering */
enum { SQL_NULLS_SORTED_AT_END = 3 };
/* SupportedSqlGrammar (bit numbers of the bitmask) */
enum {
  SQL_MINIMUM_GRAMMAR = 0,
  SQL_CORE_GRAMMAR = 1,
  SQL_EXTENDED_GRAMMAR = 2,
};
/* SupportedAnsi92SqlGrammarLevel (bit numbers) */
enum { ANSI92_ENTRY_SQL = 0, ANSI92_INTERMEDIATE_SQL = 1 };
/* SqlOuterJoinsSupportLevel */
enum { SQL_FULL_OUTER_JOINS = 2 };
/* SqlSupportedGroupBy (bit numbers) */
enum { SQL_GROUP_BY_UNRELATED = 0, SQL_GROUP_BY_BEYOND_SELECT = 1 };
/* SqlSupportedSubqueries (bit numbers) */
enum {
  SQL_SUBQUERIES_IN_COMPARISONS = 0,
  SQL_SUBQUERIES_IN_EXISTS = 1,
  SQL_SUBQUERIES_IN_INS = 2,
  SQL_SUBQUERIES_IN_QUANTIFIEDS = 3,
};
/* SqlSupportedUnions (bit numbers) */
enum { SQL_UNION = 0, SQL_UNION_ALL = 1 };
/* SqlTransactionIsolationLevel */
enum { SQL_TRANSACTION_NONE = 0 };
/* SqlSupportedResultSetType (bit numbers) */
enum { SQL_RESULT_SET_TYPE_FORWARD_ONLY = 1 };
/* SqlSupportedResultSetConcurrency (bit numbers) */
enum { SQL_RESULT_SET_CONCURRENCY_READ_ONLY = 1 };
/* SqlSupportsConvert */
enum {
  SQL_CONVERT_BIGINT = 0,
  SQL_CONVERT_BINARY = 1,
  SQL_CONVERT_BIT = 2,
  SQL_CONVERT_CHAR = 3,
  SQL_CONVERT_DATE = 4,
  SQL_CONVERT_DECIMAL = 5,
  SQL_CONVERT_FLOAT = 6,
  SQL_CONVERT_INTEGER = 7,
  SQL_CONVERT_INTERVAL_DAY_TIME = 8,
  SQL_CONVERT_INTERVAL_YEAR_MONTH = 9,
  SQL_CONVERT_LONGVARBINARY = 10,
  SQL_CONVERT_LONGVARCHAR = 11,
  SQL_CONVERT_NUMERIC = 12,
  SQL_CONVERT_REAL = 13,
  SQL_CONVERT_SMALLINT = 14,
  SQL_CONVERT_TIME = 15,
  SQL_CONVERT_TIMESTAMP = 16,
  SQL_CONVERT_TINYINT = 17,
  SQL_CONVERT_VARBINARY = 18,
  SQL_CONVERT_VARCHAR = 19,
  SQL_CONVERT_COUNT = 20
};
/* XdbcDataType */
enum {
  XDBC_DECIMAL = 3,
  XDBC_INTEGER = 4,
  XDBC_SMALLINT = 5,
  XDBC_REAL = 7,
  XDBC_DOUBLE = 8,
  XDBC_DATETIME = 9,
  XDBC_INTERVAL = 10,
  XDBC_VARCHAR = 12,
  XDBC_DATE = 91,
  XDBC_TIME = 92,
  XDBC_TIMESTAMP = 93,
  XDBC_VARBINARY = -3,
  XDBC_BIGINT = -5,
  XDBC_TINYINT = -6,
  XDBC_BIT = -7,
};
/* XdbcDatetimeSubcode */
enum {
  XDBC_SUBCODE_UNKNOWN = 0,
  XDBC_SUBCODE_DATE = 1,
  XDBC_SUBCODE_TIME = 2,
  XDBC_SUBCODE_TIMESTAMP = 3,
  XDBC_SUBCODE_TIMESTAMP_WITH_TIMEZONE = 5,
};
/* Nullable */
enum { NULLABILITY_NULLABLE = 1 };
/* Searchable */
enum { SEARCHABLE_BASIC = 2, SEARCHABLE_FULL = 3 };

#define MASK(bit) (1 << (bit))

/* ---- SQL LIKE patterns ----------------------------------------------- */

/* The next UTF-8 character of a non-empty string. */
static const char *next_char(const char *s) {
  s++;
  while (((unsigned char)*s & 0xC0) == 0x80)
    s++;
  return s;
}

bool tl_meta_like(const char *s, const char *pattern) {
  if (!pattern)
    return true;
  const char *p = pattern;
  /* Where the last '%' resumes the pattern and the text it was tried at:
   * on a mismatch, that '%' takes one more character. One such point is
   * enough because a later '%' can absorb whatever an earlier one would. */
  const char *star_p = NULL, *star_s = NULL;
  while (*s) {
    if (*p == '%') {
      while (*p == '%')
        p++;
      star_p = p;
      star_s = s;
      continue;
    }
    if (*p == '_') {
      p++;
      s = next_char(s);
      continue;
    }
    /* A backslash makes the next byte literal; one at the very end stands
     * for itself. Multi-byte characters match byte by byte. */
    const char *lit = (*p == '\\' && p[1]) ? p + 1 : p;
    if (*lit && *lit == *s) {
      p = lit + 1;
      s++;
      continue;
    }
    if (!star_p)
      return false;
    star_s = next_char(star_s);
    s = star_s;
    p = star_p;
  }
  while (*p == '%')
    p++;
  return *p == 0;
}

/* ---- Building ---------------------------------------------------------- */

typedef struct col_def {
  const char *format, *name;
  bool nullable;
} col_def;

/* Adds the columns `defs[0..n)` to `parent`, storing them in `out`.
 * Returns 0 or TL_ENOMEM. */
static int add_cols(tl_ab *parent, const col_def *defs, size_t n, tl_ab **out) {
  for (size_t i = 0; i < n; i++) {
    out[i] =
        tl_ab_child(parent, defs[i].format, defs[i].name, defs[i].nullable);
    if (!out[i])
      return TL_ENOMEM;
  }
  return 0;
}

/* Finishes the builder; without `batch`, only the schema is kept. */
static int finish(tl_ab *root, struct ArrowSchema *schema,
                  struct ArrowArray *batch) {
  struct ArrowArray unused;
  memset(&unused, 0, sizeof unused);
  int rc = tl_ab_finish(root, schema, batch ? batch : &unused);
  if (!rc && !batch)
    tl_arrow_array_release(&unused);
  return rc;
}

/* Starts a reply whose columns are all top-level `defs`. */
static int start(const col_def *defs, size_t n, tl_ab **root, tl_ab **cols) {
  *root = tl_ab_new();
  if (!*root)
    return TL_ENOMEM;
  int rc = add_cols(*root, defs, n, cols);
  if (rc) {
    tl_ab_free(*root);
    *root = NULL;
  }
  return rc;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- GetCatalogs, GetDbSchemas, GetTableTypes ---------------------------- */

static const col_def catalogs_cols[] = {{"u", "catalog_name", false}};

int tl_meta_catalogs(struct ArrowSchema *schema, struct ArrowArray *batch) {
  tl_ab *root, *c[COUNT(catalogs_cols)];
  int rc = start(catalogs_cols, COUNT(catalogs_cols), &root, c);
  if (rc)
    return rc;
  if (batch) {
    tl_ab_str(c[0], TL_META_CATALOG);
    tl_ab_row(root);
  }
  return finish(root, schema, batch);
}

static const col_def db_schemas_cols[] = {{"u", "catalog_name", true},
                                          {"u", "db_schema_name", false}};

/* Whether the command's catalog (exact; NULL: any) and schema pattern let
 * tracelake's one schema through. An empty catalog asks for schemas without
 * a catalog, of which there are none. */
static bool schema_matches(const char *catalog, const char *schema_pattern) {
  return (!catalog || !strcmp(catalog, TL_META_CATALOG)) &&
         tl_meta_like(TL_META_SCHEMA, schema_pattern);
}

int tl_meta_db_schemas(const char *catalog, const char *schema_pattern,
                       struct ArrowSchema *schema, struct ArrowArray *batch) {
  tl_ab *root, *c[COUNT(db_schemas_cols)];
  int rc = start(db_schemas_cols, COUNT(db_schemas_cols), &root, c);
  if (rc)
    return rc;
  if (batch && schema_matches(catalog, schema_pattern)) {
    tl_ab_str(c[0], TL_META_CATALOG);
    tl_ab_str(c[1], TL_META_SCHEMA);
    tl_ab_row(root);
  }
  return finish(root, schema, batch);
}

static const col_def table_types_cols[] = {{"u", "table_type", false}};

int tl_meta_table_types(struct ArrowSchema *schema, struct ArrowArray *batch) {
  static const char *const types[] = {"TABLE", "VIEW"}; /* sorted */
  tl_ab *root, *c[COUNT(table_types_cols)];
  int rc = start(table_types_cols, COUNT(table_types_cols), &root, c);
  if (rc)
    return rc;
  for (size_t i = 0; batch && i < COUNT(types); i++) {
    tl_ab_str(c[0], types[i]);
    tl_ab_row(root);
  }
  return finish(root, schema, batch);
}

/* ---- GetTables ----------------------------------------------------------- */

static const col_def tables_cols[] = {{"u", "catalog_name", true},
                                      {"u", "db_schema_name", true},
                                      {"u", "table_name", false},
                                      {"u", "table_type", false},
                                      {"z", "table_schema", false}};

/* An IPC-encoded table schema is small; this only bounds a runaway one. */
#define TABLE_SCHEMA_MAX ((size_t)16 << 20)

typedef struct table_row {
  char *name, *type;
  tl_bytes schema; /* empty without include_schema */
} table_row;

typedef struct table_list {
  table_row *rows;
  size_t n, cap;
  const char *pattern;
  const char *const *types;
  size_t ntypes;
  bool include_schema;
  char *err;
  size_t errcap;
} table_list;

static void table_rows_free(table_list *t) {
  for (size_t i = 0; i < t->n; i++) {
    free(t->rows[i].name);
    free(t->rows[i].type);
    tl_bytes_free(&t->rows[i].schema);
  }
  free(t->rows);
}

/* Table types compare without regard to case ("view" finds views): the
 * types are a closed set of keywords, not names. */
static bool type_wanted(const table_list *t, const char *type) {
  if (!t->types || !t->ntypes)
    return true;
  for (size_t i = 0; i < t->ntypes; i++)
    if (t->types[i] && !strcasecmp(t->types[i], type))
      return true;
  return false;
}

static int on_table(void *ctx, const char *name, const char *type,
                    const struct ArrowSchema *schema) {
  table_list *t = ctx;
  if (!tl_meta_like(name, t->pattern) || !type_wanted(t, type))
    return 0;
  if (tl_grow(&t->rows, &t->cap, t->n + 1, sizeof *t->rows, 16))
    return TL_ENOMEM;
  table_row *r = &t->rows[t->n];
  r->name = strdup(name);
  r->type = strdup(type);
  tl_bytes_init(&r->schema, TABLE_SCHEMA_MAX);
  t->n++; /* counted now so that table_rows_free frees it */
  if (!r->name || !r->type)
    return TL_ENOMEM;
  if (t->include_schema)
    return tl_ipc_schema_bytes(schema, &r->schema, t->err, t->errcap);
  return 0;
}

/* The specification's order: catalog, schema (one each here), table name,
 * then table type. */
static int table_row_cmp(const void *a, const void *b) {
  const table_row *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->type, y->type);
}

static void set_err(char *err, size_t errcap, const char *msg) {
  if (err && errcap)
    snprintf(err, errcap, "%s", msg);
}

int tl_meta_tables(tl_session *s, const char *catalog,
                   const char *schema_pattern, const char *table_pattern,
                   const char *const *types, size_t ntypes, bool include_schema,
                   struct ArrowSchema *schema, struct ArrowArray *batch,
                   char *err, size_t errcap) {
  if (batch && !s) {
    set_err(err, errcap, "GetTables needs a session");
    return TL_EINVAL;
  }
  size_t ncols = include_schema ? 5 : 4;
  table_list t = {.pattern = table_pattern,
                  .types = types,
                  .ntypes = ntypes,
                  .include_schema = include_schema,
                  .err = err,
                  .errcap = errcap};
  tl_ab *root, *c[COUNT(tables_cols)];
  int rc = start(tables_cols, ncols, &root, c);
  if (rc)
    goto fail;
  if (batch && schema_matches(catalog, schema_pattern)) {
    rc = tl_session_tables(s, on_table, &t, err, errcap);
    if (rc) {
      if (rc == TL_ENOMEM)
        set_err(err, errcap, "out of memory listing tables");
      goto fail;
    }
    if (t.n)
      qsort(t.rows, t.n, sizeof *t.rows, table_row_cmp);
    for (size_t i = 0; i < t.n; i++) {
      tl_ab_str(c[0], TL_META_CATALOG);
      tl_ab_str(c[1], TL_META_SCHEMA);
      tl_ab_str(c[2], t.rows[i].name);
      tl_ab_str(c[3], t.rows[i].type);
      if (include_schema)
        tl_ab_bin(c[4], t.rows[i].schema.p, t.rows[i].schema.len);
      tl_ab_row(root);
    }
  }
  rc = finish(root, schema, batch);
  root = NULL;
  if (rc)
    set_err(err, errcap, "cannot build the GetTables reply");
fail:
  tl_ab_free(root);
  table_rows_free(&t);
  return rc;
}

/* ---- GetPrimaryKeys, GetExportedKeys/ImportedKeys/CrossReference ------- */

/* FlightSql.proto's comment lists key_name before key_sequence, but every
 * reference implementation (C++, Java, Go) sends key_sequence first, and
 * clients compare schemas with theirs; we follow them. */
static const col_def primary_keys_cols[] = {
    {"u", "catalog_name", true},  {"u", "db_schema_name", true},
    {"u", "table_name", false},   {"u", "column_name", false},
    {"i", "key_sequence", false}, {"u", "key_name", true}};

static const col_def foreign_keys_cols[] = {
    {"u", "pk_catalog_name", true}, {"u", "pk_db_schema_name", true},
    {"u", "pk_table_name", false},  {"u", "pk_column_name", false},
    {"u", "fk_catalog_name", true}, {"u", "fk_db_schema_name", true},
    {"u", "fk_table_name", false},  {"u", "fk_column_name", false},
    {"i", "key_sequence", false},   {"u", "fk_key_name", true},
    {"u", "pk_key_name", true},     {"C", "update_rule", false},
    {"C", "delete_rule", false}};

int tl_meta_keys(int kind, struct ArrowSchema *schema,
                 struct ArrowArray *batch) {
  const col_def *defs;
  size_t n;
  if (kind == TL_META_PRIMARY_KEYS) {
    defs = primary_keys_cols;
    n = COUNT(primary_keys_cols);
  } else if (kind == TL_META_FOREIGN_KEYS) {
    defs = foreign_keys_cols;
    n = COUNT(foreign_keys_cols);
  } else {
    return TL_EINVAL;
  }
  tl_ab *root, *c[COUNT(foreign_keys_cols)];
  int rc = start(defs, n, &root, c);
  if (rc)
    return rc;
  return finish(root, schema, batch); /* no rows: views have no keys */
}

/* ---- GetSqlInfo ------------------------------------------------------------
 */

/* How an entry's value is made; the union member follows from it. */
enum {
  V_STR,      /* string_value `str` */
  V_NULL_STR, /* string_value null (the spec's "null if unsupported") */
  V_BOOL,     /* bool_value `num` */
  V_I64,      /* bigint_value `num` */
  V_I32,      /* int32_bitmask `num` (bitmasks and int32 ordinals) */
  V_SERVER,   /* string_value: field `num` of tl_meta_server */
  V_KEYWORDS, /* string_list: the engine's keywords, upper case */
  V_FUNCS,    /* string_list: tl_sql_functions kind `num` */
  V_CONVERT,  /* int32_to_int32_list_map: the CAST conversions */
};

/* Union members (type ids) of the value column. */
enum {
  U_STRING = 0,
  U_BOOL = 1,
  U_BIGINT = 2,
  U_INT32 = 3,
  U_STRING_LIST = 4,
  U_MAP = 5,
  U_COUNT = 6
};

typedef struct sql_info {
  uint32_t id;
  uint8_t kind;
  int64_t num;
  const char *str;
} sql_info;

#define I_STR(id, s)                                                           \
  { id, V_STR, 0, s }
#define I_BOOL(id, b)                                                          \
  { id, V_BOOL, b, NULL }
#define I_I64(id, v)                                                           \
  { id, V_I64, v, NULL }
#define I_I32(id, v)                                                           \
  { id, V_I32, v, NULL }

/* Every id of the specification, in ascending order (the order of the
 * reply when the command names none). A maximum of 0 means "no limit". */
static const sql_info sql_infos[] = {
    {FLIGHT_SQL_SERVER_NAME, V_SERVER, 0, NULL},
    {FLIGHT_SQL_SERVER_VERSION, V_SERVER, 1, NULL},
    {FLIGHT_SQL_SERVER_ARROW_VERSION, V_SERVER, 2, NULL},
    I_BOOL(FLIGHT_SQL_SERVER_READ_ONLY, true),
    I_BOOL(FLIGHT_SQL_SERVER_SQL, true),
    I_BOOL(FLIGHT_SQL_SERVER_SUBSTRAIT, false),
    {FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION, V_NULL_STR, 0, NULL},
    {FLIGHT_SQL_SERVER_SUBSTRAIT_MAX_VERSION, V_NULL_STR, 0, NULL},
    I_I32(FLIGHT_SQL_SERVER_TRANSACTION, SQL_SUPPORTED_TRANSACTION_NONE),
    I_BOOL(FLIGHT_SQL_SERVER_CANCEL, true),
    I_BOOL(FLIGHT_SQL_SERVER_BULK_INGESTION, false),
    I_BOOL(FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED, false),
    I_I32(FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT, 0),
    I_I32(FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT, 0),
    I_BOOL(SQL_DDL_CATALOG, false),
    I_BOOL(SQL_DDL_SCHEMA, false),
    I_BOOL(SQL_DDL_TABLE, false),
    /* DuckDB folds neither unquoted nor quoted identifiers and matches both
     * without regard to case ("X" finds column x). */
    I_I32(SQL_IDENTIFIER_CASE, SQL_CASE_SENSITIVITY_CASE_INSENSITIVE),
    I_STR(SQL_IDENTIFIER_QUOTE_CHAR, "\""),
    I_I32(SQL_QUOTED_IDENTIFIER_CASE, SQL_CASE_SENSITIVITY_CASE_INSENSITIVE),
    I_BOOL(SQL_ALL_TABLES_ARE_SELECTABLE, true),
    /* DuckDB's default_null_order is NULLS_LAST, ascending or descending. */
    I_I32(SQL_NULL_ORDERING, SQL_NULLS_SORTED_AT_END),
    {SQL_KEYWORDS, V_KEYWORDS, 0, NULL},
    {SQL_NUMERIC_FUNCTIONS, V_FUNCS, 0, NULL},
    {SQL_STRING_FUNCTIONS, V_FUNCS, 1, NULL},
    {SQL_SYSTEM_FUNCTIONS, V_FUNCS, 3, NULL},
    {SQL_DATETIME_FUNCTIONS, V_FUNCS, 2, NULL},
    I_STR(SQL_SEARCH_STRING_ESCAPE, "\\"), /* tl_meta_like's escape */
    I_STR(SQL_EXTRA_NAME_CHARACTERS, ""),
    I_BOOL(SQL_SUPPORTS_COLUMN_ALIASING, true),
    I_BOOL(SQL_NULL_PLUS_NULL_IS_NULL, true), /* NULL || 'a' is NULL */
    {SQL_SUPPORTS_CONVERT, V_CONVERT, 0, NULL},
    I_BOOL(SQL_SUPPORTS_TABLE_CORRELATION_NAMES, true),
    /* Aliases may repeat a table's name. */
    I_BOOL(SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES, false),
    I_BOOL(SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY, true),
    I_BOOL(SQL_SUPPORTS_ORDER_BY_UNRELATED, true),
    I_I32(SQL_SUPPORTED_GROUP_BY,
          MASK(SQL_GROUP_BY_UNRELATED) | MASK(SQL_GROUP_BY_BEYOND_SELECT)),
    I_BOOL(SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE, true),
    /* Read-only: no column can be defined at all. */
    I_BOOL(SQL_SUPPORTS_NON_NULLABLE_COLUMNS, false),
    I_I32(SQL_SUPPORTED_GRAMMAR, MASK(SQL_MINIMUM_GRAMMAR) |
                                     MASK(SQL_CORE_GRAMMAR) |
                                     MASK(SQL_EXTENDED_GRAMMAR)),
    I_I32(SQL_ANSI92_SUPPORTED_LEVEL,
          MASK(ANSI92_ENTRY_SQL) | MASK(ANSI92_INTERMEDIATE_SQL)),
    I_BOOL(SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY, false),
    I_I32(SQL_OUTER_JOINS_SUPPORT_LEVEL, SQL_FULL_OUTER_JOINS),
    I_STR(SQL_SCHEMA_TERM, "schema"),
    I_STR(SQL_PROCEDURE_TERM, "procedure"),
    I_STR(SQL_CATALOG_TERM, "catalog"),
    I_BOOL(SQL_CATALOG_AT_START, true), /* catalog.schema.table */
    I_I32(SQL_SCHEMAS_SUPPORTED_ACTIONS, 0),
    I_I32(SQL_CATALOGS_SUPPORTED_ACTIONS, 0),
    I_I32(SQL_SUPPORTED_POSITIONED_COMMANDS, 0),
    I_BOOL(SQL_SELECT_FOR_UPDATE_SUPPORTED, false),
    I_BOOL(SQL_STORED_PROCEDURES_SUPPORTED, false),
    I_I32(SQL_SUPPORTED_SUBQUERIES, MASK(SQL_SUBQUERIES_IN_COMPARISONS) |
                                        MASK(SQL_SUBQUERIES_IN_EXISTS) |
                                        MASK(SQL_SUBQUERIES_IN_INS) |
                                        MASK(SQL_SUBQUERIES_IN_QUANTIFIEDS)),
    I_BOOL(SQL_CORRELATED_SUBQUERIES_SUPPORTED, true),
    I_I32(SQL_SUPPORTED_UNIONS, MASK(SQL_UNION) | MASK(SQL_UNION_ALL)),
    I_I64(SQL_MAX_BINARY_LITERAL_LENGTH, 0),
    I_I64(SQL_MAX_CHAR_LITERAL_LENGTH, 0),
    I_I64(SQL_MAX_COLUMN_NAME_LENGTH, 0),
    I_I64(SQL_MAX_COLUMNS_IN_GROUP_BY, 0),
    I_I64(SQL_MAX_COLUMNS_IN_INDEX, 0),
    I_I64(SQL_MAX_COLUMNS_IN_ORDER_BY, 0),
    I_I64(SQL_MAX_COLUMNS_IN_SELECT, 0),
    I_I64(SQL_MAX_COLUMNS_IN_TABLE, 0),
    I_I64(SQL_MAX_CONNECTIONS, 0),
    I_I64(SQL_MAX_CURSOR_NAME_LENGTH, 0),
    I_I64(SQL_MAX_INDEX_LENGTH, 0),
    I_I64(SQL_DB_SCHEMA_NAME_LENGTH, 0),
    I_I64(SQL_MAX_PROCEDURE_NAME_LENGTH, 0),
    I_I64(SQL_MAX_CATALOG_NAME_LENGTH, 0),
    I_I64(SQL_MAX_ROW_SIZE, 0),
    I_BOOL(SQL_MAX_ROW_SIZE_INCLUDES_BLOBS, false),
    I_I64(SQL_MAX_STATEMENT_LENGTH, 0),
    I_I64(SQL_MAX_STATEMENTS, 0),
    I_I64(SQL_MAX_TABLE_NAME_LENGTH, 0),
    I_I64(SQL_MAX_TABLES_IN_SELECT, 0),
    I_I64(SQL_MAX_USERNAME_LENGTH, 0),
    /* No transactions: each statement reads its own snapshot. */
    I_I32(SQL_DEFAULT_TRANSACTION_ISOLATION, SQL_TRANSACTION_NONE),
    I_BOOL(SQL_TRANSACTIONS_SUPPORTED, false),
    I_I32(SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS,
          MASK(SQL_TRANSACTION_NONE)),
    I_BOOL(SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT, false),
    I_BOOL(SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED, false),
    /* Results are streams read once, front to back. */
    I_I32(SQL_SUPPORTED_RESULT_SET_TYPES,
          MASK(SQL_RESULT_SET_TYPE_FORWARD_ONLY)),
    I_I32(SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_UNSPECIFIED, 0),
    I_I32(SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_FORWARD_ONLY,
          MASK(SQL_RESULT_SET_CONCURRENCY_READ_ONLY)),
    I_I32(SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_SENSITIVE, 0),
    I_I32(SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_INSENSITIVE, 0),
    I_BOOL(SQL_BATCH_UPDATES_SUPPORTED, false),
    I_BOOL(SQL_SAVEPOINTS_SUPPORTED, false),
    I_BOOL(SQL_NAMED_PARAMETERS_SUPPORTED, false),
    I_BOOL(SQL_LOCATORS_UPDATE_COPY, false),
    I_BOOL(SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED, false),
};

/* What DuckDB's CAST accepts, as bitmasks of SqlSupportsConvert values per
 * source type: numbers (BOOLEAN included) convert among themselves, text
 * parses into anything, and everything prints as text. */
#define CONV_NUM                                                               \
  (MASK(SQL_CONVERT_BIGINT) | MASK(SQL_CONVERT_BIT) |                          \
   MASK(SQL_CONVERT_DECIMAL) | MASK(SQL_CONVERT_FLOAT) |                       \
   MASK(SQL_CONVERT_INTEGER) | MASK(SQL_CONVERT_NUMERIC) |                     \
   MASK(SQL_CONVERT_REAL) | MASK(SQL_CONVERT_SMALLINT) |                       \
   MASK(SQL_CONVERT_TINYINT))
#define CONV_TEXT                                                              \
  (MASK(SQL_CONVERT_CHAR) | MASK(SQL_CONVERT_LONGVARCHAR) |                    \
   MASK(SQL_CONVERT_VARCHAR))
#define CONV_BIN                                                               \
  (MASK(SQL_CONVERT_BINARY) | MASK(SQL_CONVERT_LONGVARBINARY) |                \
   MASK(SQL_CONVERT_VARBINARY))
#define CONV_INTERVAL                                                          \
  (MASK(SQL_CONVERT_INTERVAL_DAY_TIME) | MASK(SQL_CONVERT_INTERVAL_YEAR_MONTH))
#define CONV_ANY                                                               \
  (CONV_NUM | CONV_TEXT | CONV_BIN | CONV_INTERVAL | MASK(SQL_CONVERT_DATE) |  \
   MASK(SQL_CONVERT_TIME) | MASK(SQL_CONVERT_TIMESTAMP))

static const uint32_t convert_to[SQL_CONVERT_COUNT] = {
    [SQL_CONVERT_BIGINT] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_BINARY] = CONV_BIN | CONV_TEXT,
    [SQL_CONVERT_BIT] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_CHAR] = CONV_ANY,
    [SQL_CONVERT_DATE] =
        MASK(SQL_CONVERT_DATE) | MASK(SQL_CONVERT_TIMESTAMP) | CONV_TEXT,
    [SQL_CONVERT_DECIMAL] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_FLOAT] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_INTEGER] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_INTERVAL_DAY_TIME] = CONV_INTERVAL | CONV_TEXT,
    [SQL_CONVERT_INTERVAL_YEAR_MONTH] = CONV_INTERVAL | CONV_TEXT,
    [SQL_CONVERT_LONGVARBINARY] = CONV_BIN | CONV_TEXT,
    [SQL_CONVERT_LONGVARCHAR] = CONV_ANY,
    [SQL_CONVERT_NUMERIC] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_REAL] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_SMALLINT] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_TIME] = MASK(SQL_CONVERT_TIME) | CONV_TEXT,
    [SQL_CONVERT_TIMESTAMP] = MASK(SQL_CONVERT_DATE) | MASK(SQL_CONVERT_TIME) |
                              MASK(SQL_CONVERT_TIMESTAMP) | CONV_TEXT,
    [SQL_CONVERT_TINYINT] = CONV_NUM | CONV_TEXT,
    [SQL_CONVERT_VARBINARY] = CONV_BIN | CONV_TEXT,
    [SQL_CONVERT_VARCHAR] = CONV_ANY,
};

/* The value column's members, in type id order. */
typedef struct info_cols {
  tl_ab *name, *value;
  tl_ab *member[U_COUNT];
  tl_ab *list_item;                   /* string_list's items */
  tl_ab *entries, *key, *to, *to_int; /* the map's entries */
} info_cols;

static const col_def info_members[U_COUNT] = {
    {"u", "string_value", false}, {"b", "bool_value", false},
    {"l", "bigint_value", false}, {"i", "int32_bitmask", false},
    {"+l", "string_list", false}, {"+m", "int32_to_int32_list_map", false},
};

/* The schema (the reference implementations' nesting: list items named
 * "item", map entries "entries" with "key" and "value"). */
static int info_schema(tl_ab *root, info_cols *c) {
  c->name = tl_ab_child(root, "I", "info_name", false);
  c->value = tl_ab_child(root, "+ud:0,1,2,3,4,5", "value", false);
  if (!c->name || !c->value)
    return TL_ENOMEM;
  int rc = add_cols(c->value, info_members, U_COUNT, c->member);
  if (rc)
    return rc;
  c->list_item = tl_ab_child(c->member[U_STRING_LIST], "u", "item", true);
  c->entries = tl_ab_child(c->member[U_MAP], "+s", "entries", false);
  if (!c->list_item || !c->entries)
    return TL_ENOMEM;
  c->key = tl_ab_child(c->entries, "i", "key", false);
  c->to = tl_ab_child(c->entries, "+l", "value", true);
  if (!c->key || !c->to)
    return TL_ENOMEM;
  c->to_int = tl_ab_child(c->to, "i", "item", true);
  return c->to_int ? 0 : TL_ENOMEM;
}

/* A NUL-separated list ending with an empty string (NULL: empty). With
 * `upper`, ASCII letters are upper-cased: DuckDB lists its keywords in
 * lower case, SQL writes them in upper case (they match either way). */
static void add_string_list(info_cols *c, const char *list, bool upper) {
  for (const char *p = list; p && *p; p += strlen(p) + 1) {
    char buf[64];
    size_t n = strlen(p);
    if (!upper || n >= sizeof buf) {
      tl_ab_str(c->list_item, p);
      continue;
    }
    for (size_t i = 0; i <= n; i++)
      buf[i] = p[i] >= 'a' && p[i] <= 'z' ? (char)(p[i] - 'a' + 'A') : p[i];
    tl_ab_str(c->list_item, buf);
  }
  tl_ab_list_end(c->member[U_STRING_LIST]);
  tl_ab_union_row(c->value, U_STRING_LIST);
}

static void add_convert_map(info_cols *c) {
  for (int from = 0; from < SQL_CONVERT_COUNT; from++) {
    if (!convert_to[from])
      continue;
    tl_ab_int(c->key, from);
    for (int to = 0; to < SQL_CONVERT_COUNT; to++)
      if (convert_to[from] & MASK(to))
        tl_ab_int(c->to_int, to);
    tl_ab_list_end(c->to);
    tl_ab_struct_row(c->entries);
  }
  tl_ab_list_end(c->member[U_MAP]);
  tl_ab_union_row(c->value, U_MAP);
}

static const char *server_field(const tl_meta_server *server, int64_t which) {
  const char *v = NULL;
  if (server)
    v = which == 0   ? server->name
        : which == 1 ? server->version
                     : server->arrow_version;
  return v ? v : "";
}

static void add_info(info_cols *c, const sql_info *e, tl_lake *l,
                     const tl_meta_server *server) {
  tl_ab_int(c->name, e->id);
  switch (e->kind) {
  case V_STR:
  case V_SERVER:
    tl_ab_str(c->member[U_STRING],
              e->kind == V_STR ? e->str : server_field(server, e->num));
    tl_ab_union_row(c->value, U_STRING);
    break;
  case V_NULL_STR:
    tl_ab_null(c->member[U_STRING]);
    tl_ab_union_row(c->value, U_STRING);
    break;
  case V_BOOL:
    tl_ab_bool(c->member[U_BOOL], e->num != 0);
    tl_ab_union_row(c->value, U_BOOL);
    break;
  case V_I64:
    tl_ab_int(c->member[U_BIGINT], e->num);
    tl_ab_union_row(c->value, U_BIGINT);
    break;
  case V_I32:
    tl_ab_int(c->member[U_INT32], e->num);
    tl_ab_union_row(c->value, U_INT32);
    break;
  case V_KEYWORDS:
    add_string_list(c, tl_sql_keywords(), true);
    break;
  case V_FUNCS:
    add_string_list(c, l ? tl_sql_functions(l, (int)e->num) : NULL, false);
    break;
  case V_CONVERT:
    add_convert_map(c);
    break;
  }
}

static const sql_info *find_info(uint32_t id) {
  size_t lo = 0, hi = COUNT(sql_infos);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sql_infos[mid].id == id)
      return &sql_infos[mid];
    if (sql_infos[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

int tl_meta_sql_info(tl_lake *l, const tl_meta_server *server,
                     const uint32_t *ids, size_t n, struct ArrowSchema *schema,
                     struct ArrowArray *batch) {
  tl_ab *root = tl_ab_new();
  if (!root)
    return TL_ENOMEM;
  info_cols c;
  memset(&c, 0, sizeof c);
  int rc = info_schema(root, &c);
  if (rc) {
    tl_ab_free(root);
    return rc;
  }
  if (batch && !n) {
    for (size_t i = 0; i < COUNT(sql_infos); i++) {
      add_info(&c, &sql_infos[i], l, server);
      tl_ab_row(root);
    }
  }
  for (size_t i = 0; batch && i < n; i++) {
    const sql_info *e = find_info(ids[i]);
    if (!e)
      continue; /* unknown ids are left out */
    add_info(&c, e, l, server);
    tl_ab_row(root);
  }
  return finish(root, schema, batch);
}

/* ---- GetXdbcTypeInfo ------------------------------------------------------
 */

static const col_def xdbc_cols[] = {
    {"u", "type_name", false},        {"i", "data_type", false},
    {"i", "column_size", true},       {"u", "literal_prefix", true},
    {"u", "literal_suffix", true},    {"+l", "create_params", true},
    {"i", "nullable", false},         {"b", "case_sensitive", false},
    {"i", "searchable", false},       {"b", "unsigned_attribute", true},
    {"b", "fixed_prec_scale", false}, {"b", "auto_increment", true},
    {"u", "local_type_name", true},   {"i", "minimum_scale", true},
    {"i", "maximum_scale", true},     {"i", "sql_data_type", false},
    {"i", "datetime_subcode", true},  {"i", "num_prec_radix", true},
    {"i", "interval_precision", true}};

enum {
  X_TYPE_NAME,
  X_DATA_TYPE,
  X_COLUMN_SIZE,
  X_LITERAL_PREFIX,
  X_LITERAL_SUFFIX,
  X_CREATE_PARAMS,
  X_NULLABLE,
  X_CASE_SENSITIVE,
  X_SEARCHABLE,
  X_UNSIGNED,
  X_FIXED_PREC_SCALE,
  X_AUTO_INCREMENT,
  X_LOCAL_TYPE_NAME,
  X_MINIMUM_SCALE,
  X_MAXIMUM_SCALE,
  X_SQL_DATA_TYPE,
  X_DATETIME_SUBCODE,
  X_NUM_PREC_RADIX,
  X_INTERVAL_PRECISION,
  X_COUNT
};

#define NONE INT32_MIN /* a null int32 in the table below */

/* One type of the engine. Booleans that may be null: -1 null, 0, 1. */
typedef struct xdbc_type {
  const char *name;
  int32_t data_type, column_size;
  const char *prefix, *suffix;
  const char *params; /* NUL-separated, ending with "" (NULL: null) */
  bool case_sensitive;
  int32_t searchable;
  int8_t is_unsigned, auto_increment;
  int32_t min_scale, max_scale, sql_data_type, subcode, radix,
      interval_precision;
} xdbc_type;

/* Exact numbers: size in decimal digits, scale 0. */
#define X_INT(n, t, size, uns)                                                 \
  {                                                                            \
    n, t, size, NULL, NULL, NULL, false, SEARCHABLE_BASIC, uns, 0, 0, 0, t,    \
        NONE, 10, NONE                                                         \
  }
/* Approximate numbers: size in bits of the mantissa. */
#define X_FLOAT(n, t, bits)                                                    \
  {                                                                            \
    n, t, bits, NULL, NULL, NULL, false, SEARCHABLE_BASIC, 0, 0, NONE, NONE,   \
        t, NONE, 2, NONE                                                       \
  }
/* Dates and times: size in characters of the text form, scale in digits of
 * the fraction of a second. */
#define X_TIME(n, t, size, prefix, scale, sub)                                 \
  {                                                                            \
    n, t, size, prefix, "'", NULL, false, SEARCHABLE_BASIC, -1, -1, scale,     \
        scale, XDBC_DATETIME, sub, NONE, NONE                                  \
  }

/* DuckDB's types that tracelake's views and queries produce. Text and blobs
 * have no declared limit: their size is the largest int32. */
static const xdbc_type xdbc_types[] = {
    {"BOOLEAN", XDBC_BIT, 1, NULL, NULL, NULL, false, SEARCHABLE_BASIC, -1, -1,
     NONE, NONE, XDBC_BIT, NONE, NONE, NONE},
    X_INT("TINYINT", XDBC_TINYINT, 3, 0),
    X_INT("UTINYINT", XDBC_TINYINT, 3, 1),
    X_INT("SMALLINT", XDBC_SMALLINT, 5, 0),
    X_INT("USMALLINT", XDBC_SMALLINT, 5, 1),
    X_INT("INTEGER", XDBC_INTEGER, 10, 0),
    X_INT("UINTEGER", XDBC_INTEGER, 10, 1),
    X_INT("BIGINT", XDBC_BIGINT, 19, 0),
    X_INT("UBIGINT", XDBC_BIGINT, 20, 1),
    {"DECIMAL", XDBC_DECIMAL, 38, NULL, NULL, "precision\0scale\0", false,
     SEARCHABLE_BASIC, 0, 0, 0, 38, XDBC_DECIMAL, NONE, 10, NONE},
    /* DuckDB's FLOAT is single precision: SQL's REAL. */
    X_FLOAT("FLOAT", XDBC_REAL, 24),
    X_FLOAT("DOUBLE", XDBC_DOUBLE, 53),
    {"VARCHAR", XDBC_VARCHAR, INT32_MAX, "'", "'", NULL, true, SEARCHABLE_FULL,
     -1, -1, NONE, NONE, XDBC_VARCHAR, NONE, NONE, NONE},
    {"BLOB", XDBC_VARBINARY, INT32_MAX, "'", "'::BLOB", NULL, false,
     SEARCHABLE_BASIC, -1, -1, NONE, NONE, XDBC_VARBINARY, NONE, NONE, NONE},
    X_TIME("DATE", XDBC_DATE, 10, "DATE '", NONE, XDBC_SUBCODE_DATE),
    X_TIME("TIME", XDBC_TIME, 15, "TIME '", 6, XDBC_SUBCODE_TIME),
    X_TIME("TIMESTAMP", XDBC_TIMESTAMP, 26, "TIMESTAMP '", 6,
           XDBC_SUBCODE_TIMESTAMP),
    X_TIME("TIMESTAMP_NS", XDBC_TIMESTAMP, 29, "TIMESTAMP_NS '", 9,
           XDBC_SUBCODE_TIMESTAMP),
    X_TIME("TIMESTAMP WITH TIME ZONE", XDBC_TIMESTAMP, 32, "TIMESTAMPTZ '", 6,
           XDBC_SUBCODE_TIMESTAMP_WITH_TIMEZONE),
    /* An INTERVAL holds months, days and microseconds at once, which no
     * single interval subcode names. Its leading field, a 32-bit count of
     * months, has up to 10 digits. */
    {"INTERVAL", XDBC_INTERVAL, NONE, "INTERVAL '", "'", NULL, false,
     SEARCHABLE_BASIC, -1, -1, NONE, NONE, XDBC_INTERVAL, XDBC_SUBCODE_UNKNOWN,
     NONE, 10},
};

static void put_i32(tl_ab *c, int32_t v) {
  if (v == NONE)
    tl_ab_null(c);
  else
    tl_ab_int(c, v);
}

static void put_tristate(tl_ab *c, int8_t v) {
  if (v < 0)
    tl_ab_null(c);
  else
    tl_ab_bool(c, v != 0);
}

/* The specification's order: data_type, then type_name. */
static int xdbc_cmp(const void *a, const void *b) {
  const xdbc_type *x = *(const xdbc_type *const *)a;
  const xdbc_type *y = *(const xdbc_type *const *)b;
  if (x->data_type != y->data_type)
    return x->data_type < y->data_type ? -1 : 1;
  return strcmp(x->name, y->name);
}

int tl_meta_xdbc_type_info(bool has_type, int32_t data_type,
                           struct ArrowSchema *schema,
                           struct ArrowArray *batch) {
  tl_ab *root, *c[X_COUNT];
  int rc = start(xdbc_cols, X_COUNT, &root, c);
  if (rc)
    return rc;
  tl_ab *param = tl_ab_child(c[X_CREATE_PARAMS], "u", "item", false);
  if (!param) {
    tl_ab_free(root);
    return TL_ENOMEM;
  }
  const xdbc_type *sorted[COUNT(xdbc_types)];
  size_t n = 0;
  for (size_t i = 0; batch && i < COUNT(xdbc_types); i++)
    if (!has_type || xdbc_types[i].data_type == data_type)
      sorted[n++] = &xdbc_types[i];
  if (n)
    qsort(sorted, n, sizeof *sorted, xdbc_cmp);
  for (size_t i = 0; i < n; i++) {
    const xdbc_type *t = sorted[i];
    tl_ab_str(c[X_TYPE_NAME], t->name);
    tl_ab_int(c[X_DATA_TYPE], t->data_type);
    put_i32(c[X_COLUMN_SIZE], t->column_size);
    tl_ab_str(c[X_LITERAL_PREFIX], t->prefix); /* NULL: a null */
    tl_ab_str(c[X_LITERAL_SUFFIX], t->suffix);
    if (t->params) {
      for (const char *p = t->params; *p; p += strlen(p) + 1)
        tl_ab_str(param, p);
      tl_ab_list_end(c[X_CREATE_PARAMS]);
    } else {
      tl_ab_null(c[X_CREATE_PARAMS]);
    }
    tl_ab_int(c[X_NULLABLE], NULLABILITY_NULLABLE);
    tl_ab_bool(c[X_CASE_SENSITIVE], t->case_sensitive);
    tl_ab_int(c[X_SEARCHABLE], t->searchable);
    put_tristate(c[X_UNSIGNED], t->is_unsigned);
    tl_ab_bool(c[X_FIXED_PREC_SCALE], false);
    put_tristate(c[X_AUTO_INCREMENT], t->auto_increment);
    tl_ab_null(c[X_LOCAL_TYPE_NAME]);
    put_i32(c[X_MINIMUM_SCALE], t->min_scale);
    put_i32(c[X_MAXIMUM_SCALE], t->max_scale);
    tl_ab_int(c[X_SQL_DATA_TYPE], t->sql_data_type);
    put_i32(c[X_DATETIME_SUBCODE], t->subcode);
    put_i32(c[X_NUM_PREC_RADIX], t->radix);
    put_i32(c[X_INTERVAL_PRECISION], t->interval_precision);
    tl_ab_row(root);
  }
  return finish(root, schema, batch);
}

# The Flight SQL metadata replies (src/flightsql/meta.c): schemas against
# FlightSql.proto, rows and filters on an empty lake, each reply through the
# IPC encoder and decoder. meta.c is compiled in directly so that the test
# needs neither gRPC nor the generated protocol code.
tl_test(test_meta
  SOURCES flightsql_meta/test_meta.c
          ${PROJECT_SOURCE_DIR}/src/flightsql/meta.c
  TESTS like_patterns
        catalogs_reply
        db_schemas_filter_by_catalog_and_pattern
        table_types_sorted
        tables_without_schema_have_four_columns
        tables_filters
        tables_with_schema_decode_to_the_views_columns
        keys_replies_are_empty_with_the_spec_schema
        sql_info_without_ids_lists_every_spec_id
        sql_info_with_ids_in_order_asked
        xdbc_type_info_rows_and_filter
  LIBS tl_query tl_arrow tl_server
  LABELS flightsql)

# The lakehouse end to end, on SQLite and on PostgreSQL (the `pg` fixture).
set(TL_QUERY_TESTS
  log_entries_exact_counts_and_values
  measures_units_and_values
  catalog_views
  empty_lake_and_empty_ranges
  read_your_writes
  time_range_prunes_partitions
  engine_refuses_server_files
  per_instance_views
  process_with_thousands_of_blocks
  concurrent_ingest_while_querying)
add_executable(test_query query/test_query.c)
target_link_libraries(test_query PRIVATE tl_query tl_server tracelake_static)
target_include_directories(test_query PRIVATE ${PROJECT_SOURCE_DIR}/tests)
foreach(t ${TL_QUERY_TESTS})
  add_test(NAME test_query.${t} COMMAND test_query ${t})
  set_tests_properties(test_query.${t} PROPERTIES TIMEOUT 300
    LABELS query ENVIRONMENT "TL_TEST_CATALOG=sqlite")
  if(TL_PG_AVAILABLE)
    add_test(NAME test_query.pg_${t} COMMAND test_query ${t})
    set_tests_properties(test_query.pg_${t} PROPERTIES TIMEOUT 300
      FIXTURES_REQUIRED pg LABELS "query;pg" ENVIRONMENT "${TL_PG_ENV}")
  endif()
endforeach()

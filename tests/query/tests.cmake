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
  concurrent_ingest_while_querying
  process_columns_are_stored_in_partitions
  partitions_of_the_older_format_still_read
  concurrent_sessions_see_what_was_acknowledged
  engine_memory_is_bounded)
add_executable(test_query query/test_query.c)
# DuckDB itself too: a test writes a partition as older code did.
target_link_libraries(test_query PRIVATE tl_query tl_server tracelake_static
                                         duckdb)
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

# The lake's maintenance (test_maintain.c): merging, the trash and its grace
# period, the maintenance loop of the real `tracelake serve`, retention of
# partitions, and the freshness figure. It reuses the ingestion tests'
# harness (servers, tools, a fresh PostgreSQL database per lake).
set(TL_MAINTAIN_TESTS
  merge_bounds_file_count_and_keeps_every_row_once
  merge_leaves_out_a_partition_larger_than_the_rest
  merge_fan_in_bounds_how_often_a_row_is_rewritten
  merged_files_outlive_sessions_for_the_grace_period
  merge_with_a_missing_file_fails_that_run_only
  concurrent_merges_keep_rows_and_leave_no_orphan_file
  sweep_deletes_orphans_found_twice
  retire_removes_old_partitions_files_and_rows
  retire_stops_between_batches_blocks_first
  serve_materializes_and_merges_without_queries
  serve_runs_its_background_threads_at_nice_10
  serve_retires_what_falls_out_of_its_retention
  serve_without_maintenance_materializes_nothing_by_itself
  freshness_figure)
add_executable(test_maintain query/test_maintain.c ingest/harness.c)
target_link_libraries(test_maintain PRIVATE tl_query tl_server
                                            tracelake_static)
target_include_directories(test_maintain PRIVATE ${PROJECT_SOURCE_DIR}/tests)
target_compile_definitions(test_maintain PRIVATE
  TL_TRACELAKE_EXE="$<TARGET_FILE:tracelake>")
add_dependencies(test_maintain tracelake)
foreach(t ${TL_MAINTAIN_TESTS})
  add_test(NAME test_maintain.${t} COMMAND test_maintain ${t})
  set_tests_properties(test_maintain.${t} PROPERTIES TIMEOUT 300
    LABELS query ENVIRONMENT "TL_TEST_CATALOG=sqlite")
  if(TL_PG_AVAILABLE)
    add_test(NAME test_maintain.pg_${t} COMMAND test_maintain ${t})
    set_tests_properties(test_maintain.pg_${t} PROPERTIES TIMEOUT 300
      FIXTURES_REQUIRED pg LABELS "query;pg" ENVIRONMENT "${TL_PG_ENV}")
  endif()
endforeach()

# Statements as streams of Arrow record batches (test_stream.c): schemas,
# every row through the C Data Interface, limits, parameters bound from
# Arrow, errors, refusals and cancellation, for the Flight SQL service.
set(TL_STREAM_TESTS
  log_entries_schema_is_utc_timestamps_and_utf8
  streams_every_row_of_a_multi_chunk_result
  limit_caps_rows
  parameters_bind_and_rebind
  parameter_schema_and_result_schema_after_binding
  errors_carry_duckdb_messages
  refused_statements
  interrupt_from_another_thread
  should_stop_cancels
  another_statement_of_the_session_ends_the_stream
  session_tables_lists_the_views
  view_instance_applies
  keywords_and_functions
  sessions_stream_in_parallel)
add_executable(test_stream query/test_stream.c)
target_link_libraries(test_stream PRIVATE tl_query tl_server tracelake_static)
target_include_directories(test_stream PRIVATE ${PROJECT_SOURCE_DIR}/tests)
foreach(t ${TL_STREAM_TESTS})
  add_test(NAME test_stream.${t} COMMAND test_stream ${t})
  set_tests_properties(test_stream.${t} PROPERTIES TIMEOUT 300
    LABELS query ENVIRONMENT "TL_TEST_CATALOG=sqlite")
  if(TL_PG_AVAILABLE)
    add_test(NAME test_stream.pg_${t} COMMAND test_stream ${t})
    set_tests_properties(test_stream.pg_${t} PROPERTIES TIMEOUT 300
      FIXTURES_REQUIRED pg LABELS "query;pg" ENVIRONMENT "${TL_PG_ENV}")
  endif()
endforeach()

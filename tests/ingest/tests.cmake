# The ingestion service end to end: the real `tracelake serve` started on an
# ephemeral loopback port and driven over HTTP (statuses and messages, API
# keys, limits, slow clients, garbage at volume, a kill -9 under load,
# graceful shutdown, unavailability). See tests/ingest/harness.h. Every test
# runs on a SQLite catalog (test_ingest.<test>) and, when a PostgreSQL server
# is installed, on a PostgreSQL one (test_ingest.pg_<test>).
add_executable(ingest_sender ingest/ingest_sender.c)
target_link_libraries(ingest_sender PRIVATE tracelake_static)
target_include_directories(ingest_sender PRIVATE ${PROJECT_SOURCE_DIR}/src)

set(TL_INGEST_TESTS
  # test_ingest_status.c
  valid_messages_stored_and_duplicates_acknowledged
  conflicting_content_is_409_and_stored_bytes_unchanged
  same_block_id_in_other_stream_is_409
  conflict_in_other_stream_leaves_no_blob
  same_block_id_with_other_header_is_409
  unknown_stream_or_process_is_404
  block_of_another_process_is_409
  malformed_bodies_are_400_with_the_reason
  methods_and_paths
  api_keys_required_except_for_health
  bad_api_keys_file_refused_at_start
  # test_ingest_limits.c
  declared_length_over_limit_is_413_unread
  chunked_body_over_limit_is_413
  oversized_headers_refused_and_server_keeps_serving
  slow_clients_dropped_while_others_served
  garbage_at_volume_gets_4xx_and_server_stays_healthy
  # test_ingest_durability.c
  kill_9_during_load_loses_nothing
  sigterm_waits_for_the_request_in_progress
  sigterm_during_upload_is_all_or_nothing
  store_unavailable_is_503_then_recovers
  catalog_locked_is_503_then_recovers)
tl_test(test_ingest
  SOURCES ingest/harness.c ingest/test_ingest_status.c
          ingest/test_ingest_limits.c ingest/test_ingest_durability.c
  LIBS tl_server
  LABELS ingest
  TESTS ${TL_INGEST_TESTS})
foreach(t ${TL_INGEST_TESTS})
  set_tests_properties(test_ingest.${t} PROPERTIES
                       ENVIRONMENT "TL_TEST_CATALOG=sqlite")
endforeach()
target_compile_definitions(test_ingest PRIVATE
  TL_TRACELAKE_EXE="$<TARGET_FILE:tracelake>"
  TL_INGEST_SENDER="$<TARGET_FILE:ingest_sender>")
add_dependencies(test_ingest tracelake ingest_sender)

# What the library spools, posted file by file with curl (a shell script).
add_test(NAME ingest.demo_spool_posted_with_curl
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ingest/test_demo_spool.sh
          $<TARGET_FILE:tracelake>)
set_tests_properties(ingest.demo_spool_posted_with_curl
  PROPERTIES LABELS ingest TIMEOUT 120 ENVIRONMENT "TL_TEST_CATALOG=sqlite")

# The same tests on a PostgreSQL catalog (where a test holds the catalog's
# lock, it takes a table lock instead of the SQLite file's), plus one that
# stops a PostgreSQL server of its own. They use the throwaway server of the
# ctest fixture `pg` (tests/CMakeLists.txt).
if(TL_PG_AVAILABLE)
  foreach(t ${TL_INGEST_TESTS} catalog_down_is_503_then_recovers)
    add_test(NAME test_ingest.pg_${t} COMMAND test_ingest ${t})
    set_tests_properties(test_ingest.pg_${t} PROPERTIES TIMEOUT 300
      FIXTURES_REQUIRED pg LABELS "ingest;pg"
      ENVIRONMENT "${TL_PG_ENV}")
  endforeach()
  add_test(NAME ingest.pg_demo_spool_posted_with_curl
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ingest/test_demo_spool.sh
            $<TARGET_FILE:tracelake>)
  set_tests_properties(ingest.pg_demo_spool_posted_with_curl PROPERTIES
    TIMEOUT 120 FIXTURES_REQUIRED pg LABELS "ingest;pg"
    ENVIRONMENT "${TL_PG_ENV}")
endif()

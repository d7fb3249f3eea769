# The catalog suite runs against both backends: the same test bodies, picked
# by TL_TEST_CATALOG. The PostgreSQL variants share one throwaway server, a
# ctest fixture started by scripts/pg-test.sh; each test makes its own
# database on it, so they may run in parallel.
set(TL_PG_BIN /usr/lib/postgresql/15/bin CACHE PATH
    "PostgreSQL server binaries for the catalog tests")

set(TL_CATALOG_TESTS
  migrations_create_schema_and_reopen_is_noop
  concurrent_open_of_fresh_catalog
  concurrent_open_from_processes
  round_trip_every_field
  unknown_ids_not_found
  insert_idempotent
  conflicts_name_the_object
  stream_of_unknown_process_not_found
  block_of_unknown_stream_refused
  counts
  retire_batch_bounded_oldest_first
  retire_batch_concurrent
  foreach_block_in_insert_order
  handle_shared_by_threads
  bad_block_does_not_fail_others
  health)

# Registered by hand below (one ctest per backend and test).
tl_test(test_catalog SOURCES lake/test_catalog.c LIBS tl_server LABELS lake)

foreach(t ${TL_CATALOG_TESTS})
  add_test(NAME test_catalog.sqlite_${t} COMMAND test_catalog ${t})
  set_tests_properties(test_catalog.sqlite_${t} PROPERTIES TIMEOUT 60
    LABELS "lake;sqlite" ENVIRONMENT "TL_TEST_CATALOG=sqlite")
endforeach()

if(EXISTS ${TL_PG_BIN}/initdb)
  set(TL_PG_DIR ${CMAKE_BINARY_DIR}/pg-test)
  set(TL_PG_SCRIPT ${PROJECT_SOURCE_DIR}/scripts/pg-test.sh)
  add_test(NAME lake.pg_start COMMAND ${TL_PG_SCRIPT} start ${TL_PG_DIR})
  add_test(NAME lake.pg_stop COMMAND ${TL_PG_SCRIPT} stop ${TL_PG_DIR})
  set_tests_properties(lake.pg_start PROPERTIES FIXTURES_SETUP pg TIMEOUT 120
    LABELS "lake;pg" ENVIRONMENT "PG_BIN=${TL_PG_BIN}")
  set_tests_properties(lake.pg_stop PROPERTIES FIXTURES_CLEANUP pg TIMEOUT 60
    LABELS "lake;pg" ENVIRONMENT "PG_BIN=${TL_PG_BIN}")
  foreach(t ${TL_CATALOG_TESTS} survives_server_restart)
    add_test(NAME test_catalog.pg_${t} COMMAND test_catalog ${t})
    set_tests_properties(test_catalog.pg_${t} PROPERTIES TIMEOUT 60
      FIXTURES_REQUIRED pg LABELS "lake;pg"
      ENVIRONMENT "TL_TEST_CATALOG=pg;TL_TEST_PG_DIR=${TL_PG_DIR};TL_TEST_PG_SCRIPT=${TL_PG_SCRIPT};PG_BIN=${TL_PG_BIN}")
  endforeach()
else()
  message(STATUS "No PostgreSQL server in ${TL_PG_BIN}: "
                 "PostgreSQL catalog tests are not registered")
endif()

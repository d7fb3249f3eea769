# The catalog suite runs against both backends: the same test bodies, picked
# by TL_TEST_CATALOG. The PostgreSQL variants use the `pg` fixture of
# tests/CMakeLists.txt.

set(TL_CATALOG_TESTS
  migrations_create_schema_and_reopen_is_noop
  concurrent_open_of_fresh_catalog
  concurrent_open_from_processes
  round_trip_every_field
  unknown_ids_not_found
  insert_idempotent
  insert_blocks_as_a_group
  conflicts_name_the_object
  stream_of_unknown_process_not_found
  block_of_unknown_stream_refused
  counts
  retire_batch_bounded_oldest_first
  retire_batch_concurrent
  foreach_block_in_insert_order
  handle_shared_by_threads
  bad_block_does_not_fail_others
  health
  migration_2_upgrades_v1_catalog
  blocks_to_materialize_filters
  add_partition_round_trip
  add_partition_rejects_bad_input
  add_partition_conflict_writes_nothing
  list_partitions_overlap
  replace_partitions_merges_atomically
  replace_partitions_concurrent
  retire_partitions_bounded
  retire_partitions_concurrent
  retire_batch_keeps_partition_blocks
  foreach_process_and_stream_rows
  foreach_block_in_range
  concurrent_materializers_one_wins)

# Registered by hand below (one ctest per backend and test).
tl_test(test_catalog SOURCES lake/test_catalog.c LIBS tl_server LABELS lake)

foreach(t ${TL_CATALOG_TESTS})
  add_test(NAME test_catalog.sqlite_${t} COMMAND test_catalog ${t})
  set_tests_properties(test_catalog.sqlite_${t} PROPERTIES TIMEOUT 60
    LABELS "lake;sqlite" ENVIRONMENT "TL_TEST_CATALOG=sqlite")
endforeach()

if(TL_PG_AVAILABLE)
  foreach(t ${TL_CATALOG_TESTS} survives_server_restart)
    add_test(NAME test_catalog.pg_${t} COMMAND test_catalog ${t})
    set_tests_properties(test_catalog.pg_${t} PROPERTIES TIMEOUT 60
      FIXTURES_REQUIRED pg LABELS "lake;pg" ENVIRONMENT "${TL_PG_ENV}")
  endforeach()
endif()

tl_test(test_arrow_ipc SOURCES arrow/test_ipc.c arrow/sample.c
  LIBS tl_arrow LABELS arrow
  TESTS every_type_round_trips_with_nulls batch_of_only_nulls_round_trips
        empty_batch_round_trips schema_only_stream_has_no_batch
        metadata_and_flags_round_trip offsets_honoured_at_root_and_child_levels
        batch_concatenates_slices_of_several_arrays
        slices_of_hand_made_offsets_concatenate
        dictionary_sent_once_then_replaced
        dictionary_change_within_one_call_splits_the_batch
        schema_message_known_bytes truncated_streams_rejected
        bad_batches_rejected bad_offsets_and_union_ids_rejected
        writer_rejects_what_it_cannot_encode shared_flatbuffer_tables_bounded
        feed_parts_matches_feed_for_any_split feed_parts_reads_buffers_in_any_order
        feed_parts_rejects_a_short_body)
tl_test(test_arrow_text SOURCES arrow/test_text.c
  LIBS tl_arrow LABELS arrow
  TESTS timestamps_rfc3339_with_unit_digits dates_and_times intervals_iso8601
        decimals_exact numbers_in_c_locale text_binary_and_bool
        nested_values_json_like numeric_columns)
tl_test(test_arrow_builder SOURCES arrow/test_builder.c arrow/sample.c
  LIBS tl_arrow LABELS arrow
  TESTS sql_info_dense_union_round_trips tables_with_table_schema_bytes
        xdbc_type_info_list_columns explicit_map_entries_and_sparse_union
        builder_refuses_misuse moved_child_outlives_its_parent)
# Writes the IPC fuzzer's seed corpus (fuzz/corpus-ipc/); not a test.
add_executable(arrow_ipc_seeds arrow/ipc_seeds.c arrow/sample.c)
target_link_libraries(arrow_ipc_seeds PRIVATE tl_arrow)
# An independent decoder: Apache Arrow for JavaScript reads every stream
# the encoder writes. It uses the interop tests' pinned npm packages
# (installed by their fixture), or TL_ARROWJS_DIR when given.
set(TL_ARROWJS_DIR "" CACHE PATH
    "A folder with node_modules/apache-arrow (default: tests/interop's)")
find_program(TL_NODE node)
find_program(TL_NPM npm)
if(TL_NODE AND (TL_ARROWJS_DIR OR TL_NPM))
  set(arrowjs_dir ${TL_ARROWJS_DIR})
  if(NOT arrowjs_dir)
    set(arrowjs_dir ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  endif()
  add_test(NAME arrow.arrowjs_reads_our_streams
    COMMAND sh -c "mkdir -p arrowjs-seeds && $<TARGET_FILE:arrow_ipc_seeds> arrowjs-seeds && ${TL_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/arrow/arrowjs_check.mjs arrowjs-seeds")
  set_tests_properties(arrow.arrowjs_reads_our_streams PROPERTIES
    LABELS "arrow;interop" TIMEOUT 120 ENVIRONMENT "ARROWJS_DIR=${arrowjs_dir}")
  if(NOT TL_ARROWJS_DIR)
    set_tests_properties(arrow.arrowjs_reads_our_streams PROPERTIES
      FIXTURES_REQUIRED interop_node_modules)
  endif()
endif()

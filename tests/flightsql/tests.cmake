# Flight SQL: the helpers shared by server and client (no server needed).
# The end-to-end client/server tests join this file once the server lands.
if(TL_HAVE_FLIGHT)
  tl_test(test_flight_common SOURCES flightsql/test_common.c LABELS flightsql
    LIBS tl_flightproto
    TESTS any_pack_unpack_round_trip optional_fields_keep_presence
          every_command_packs_and_is_identified
          unknown_type_urls_are_not_commands
          flight_data_hand_encoding_decodes_with_protobuf_c
          flight_data_with_descriptor_and_metadata
          flight_data_decoder_reads_protobuf_c_output
          flight_data_located_across_pieces
          malformed_input_rejected varint_and_key_encoding)
endif()

# The Flight SQL service end to end (test_flight.c): the real server on
# ephemeral ports, data recorded over HTTP, read back with the C client.
set(TL_FLIGHT_TESTS
  statement_returns_the_recorded_rows
  flight_info_has_the_real_schema_and_one_ticket
  large_result_arrives_whole_in_messages_under_4mib
  headers_bound_the_range_and_cap_rows
  prepared_statement_binds_parameters
  metadata_commands_answer_with_the_spec_schemas
  keys_are_required_when_configured
  tls_serves_flight_sql
  bad_requests_get_clear_errors_and_the_server_keeps_serving
  cancellation_and_deadlines_stop_the_work
  concurrent_clients_all_get_their_answers)
if(TL_HAVE_FLIGHT)
  add_executable(test_flight flightsql/test_flight.c ingest/harness.c)
  target_link_libraries(test_flight PRIVATE tl_flightclient tl_server
                                            tracelake_static)
  target_include_directories(test_flight PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(test_flight PRIVATE
    TL_TRACELAKE_EXE="$<TARGET_FILE:tracelake>")
  add_dependencies(test_flight tracelake)
  foreach(t ${TL_FLIGHT_TESTS})
    add_test(NAME test_flight.${t} COMMAND test_flight ${t})
    set_tests_properties(test_flight.${t} PROPERTIES TIMEOUT 300
      LABELS flightsql ENVIRONMENT "TL_TEST_CATALOG=sqlite")
  endforeach()
  if(TL_PG_AVAILABLE)
    foreach(t statement_returns_the_recorded_rows
              prepared_statement_binds_parameters)
      add_test(NAME test_flight.pg_${t} COMMAND test_flight ${t})
      set_tests_properties(test_flight.pg_${t} PROPERTIES TIMEOUT 300
        FIXTURES_REQUIRED pg LABELS "flightsql;pg" ENVIRONMENT "${TL_PG_ENV}")
    endforeach()
  endif()
endif()

# The query service observes itself (test_selfobs.c): a known mix of
# queries, then the server's own metrics, span trees and query log read
# back through Flight SQL.
if(TL_HAVE_FLIGHT)
  add_executable(test_selfobs flightsql/test_selfobs.c ingest/harness.c)
  target_link_libraries(test_selfobs PRIVATE tl_flightclient tl_server
                                             tracelake_static)
  target_include_directories(test_selfobs PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(test_selfobs PRIVATE
    TL_TRACELAKE_EXE="$<TARGET_FILE:tracelake>")
  add_dependencies(test_selfobs tracelake)
  foreach(t every_query_is_observed self_telemetry_can_be_turned_off
            querying_the_telemetry_does_not_cascade
            queries_in_turn_stay_on_few_workers
            workers_are_capped_and_retire
            long_sql_still_gets_its_query_log_row)
    add_test(NAME test_selfobs.${t} COMMAND test_selfobs ${t})
    set_tests_properties(test_selfobs.${t} PROPERTIES TIMEOUT 300
      LABELS flightsql ENVIRONMENT "TL_TEST_CATALOG=sqlite")
  endforeach()
  if(TL_PG_AVAILABLE)
    add_test(NAME test_selfobs.pg_every_query_is_observed
             COMMAND test_selfobs every_query_is_observed)
    set_tests_properties(test_selfobs.pg_every_query_is_observed PROPERTIES
      TIMEOUT 300 FIXTURES_REQUIRED pg LABELS "flightsql;pg"
      ENVIRONMENT "${TL_PG_ENV}")
  endif()
endif()

tl_test(test_runtime
  SOURCES runtime/test_runtime.c runtime/collector.c
  LABELS runtime
  TESTS eight_threads_exact_accounting
        eight_threads_exact_accounting_under_overload
        thread_started_before_init_records_after_init
        exiting_thread_hands_over_pending_events
        async_spans_across_threads async_span_ids_unique_across_threads
        flush_is_synchronous aged_buffers_flushed_by_period
        events_after_shutdown_are_counted init_rejects_bad_config
        level_filter_from_environment span_scopes_close_on_every_exit
        formatted_messages_and_truncation verbatim_messages
        streams_carry_tags_and_thread_properties process_info_and_properties
        child_process_names_its_parent spool_sink_writes_complete_files
        no_sink_counts_blocks_as_failed committing_sink_ends_each_round
        flusher_runs_at_the_nice_value_asked
        forked_child_counts_its_events_as_dropped)

tl_test(test_disabled
  SOURCES runtime/test_disabled.c runtime/collector.c
  LABELS runtime
  TESTS disabled_macros_record_nothing)
target_compile_definitions(test_disabled PRIVATE TL_DISABLE)

tl_test(test_wire SOURCES wire/test_wire.c LABELS wire
  TESTS crc32c_known_vector uuid_text_round_trip target_from_file
        process_round_trip stream_round_trip block_round_trip_every_kind
        block_incompressible_stored_raw truncated_messages_rejected
        corrupted_bytes_rejected bad_payload_with_valid_crc_rejected
        limits_enforced utf8_validation
        deadline_and_condition_variable_share_a_clock)

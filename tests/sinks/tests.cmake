# The HTTP sink against a real local HTTP server (libmicrohttpd).
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
tl_test(test_http_sink
  SOURCES sinks/test_http_sink.c
  LIBS PkgConfig::MHD
  LABELS runtime
  TESTS delivers_all outage_then_recovery server_down_at_shutdown_spills
        orphan_spill_resent rejects_are_counted
        queue_full_and_outage_keep_order hung_server_bounded_shutdown)

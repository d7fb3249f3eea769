# Command-line and packaging tests: shell scripts driving the real binaries.
add_test(NAME apps.dump_and_demo
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/apps/test_cli.sh $<TARGET_FILE:tracelake>)
set_tests_properties(apps.dump_and_demo PROPERTIES LABELS apps TIMEOUT 300)
# A user's program is built without sanitizers: only in plain builds.
if(TL_SANITIZE STREQUAL "")
  add_test(NAME apps.install_and_pkg_config
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/apps/test_install.sh
            ${PROJECT_BINARY_DIR} ${CMAKE_C_COMPILER})
  set_tests_properties(apps.install_and_pkg_config
    PROPERTIES LABELS apps TIMEOUT 300)
endif()

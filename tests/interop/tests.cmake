# Flight SQL interop: an independent client in Node.js (tests/interop, built
# on @grpc/grpc-js, @grpc/proto-loader and apache-arrow from npm, sharing no
# code with the server) against the real `tracelake serve` on ephemeral
# loopback ports. The fixture interop.node_modules installs the pinned npm
# packages (scripts/interop-deps.sh) once; each test file then runs under
# `node --test` with its own server. Without node and npm, nothing is
# registered.
find_program(TL_NODE node)
find_program(TL_NPM npm)
if(TL_NODE AND TL_NPM)
  set(TL_INTEROP_DIR ${CMAKE_CURRENT_SOURCE_DIR}/interop)
  add_test(NAME interop.node_modules
    COMMAND ${PROJECT_SOURCE_DIR}/scripts/interop-deps.sh)
  set_tests_properties(interop.node_modules PROPERTIES
    FIXTURES_SETUP interop_node_modules LABELS interop TIMEOUT 300)
  foreach(t statements types prepared metadata auth tls cancel errors)
    add_test(NAME interop.${t}
      COMMAND ${TL_NODE} --test ${TL_INTEROP_DIR}/${t}.test.js
      WORKING_DIRECTORY ${TL_INTEROP_DIR})
    set_tests_properties(interop.${t} PROPERTIES
      FIXTURES_REQUIRED interop_node_modules LABELS interop TIMEOUT 120
      ENVIRONMENT "TRACELAKE_BIN=$<TARGET_FILE:tracelake>")
  endforeach()
else()
  message(STATUS "No node or npm: the Flight SQL interop tests are not registered")
endif()

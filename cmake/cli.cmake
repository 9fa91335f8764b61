# SPDX-License-Identifier: MIT
# The command's `bench` runs the accuracy scenarios of bench/scenario.c.
target_link_libraries(usbtimesync_cli PRIVATE usbts_scenario)
target_include_directories(usbtimesync_cli PRIVATE ${CMAKE_SOURCE_DIR}/tools)

# Tests that drive the binary, and the example built against the installed
# library through pkg-config.
find_program(PYTHON3 python3)
if(PYTHON3)
  add_test(NAME cli_tool COMMAND ${PYTHON3} ${CMAKE_SOURCE_DIR}/tests/cli/test_cli.py $<TARGET_FILE:usbtimesync_cli>)
else()
  # Never silently: make check lists the SKIP line with what to install.
  add_test(NAME cli_tool COMMAND sh -c
           "echo 'SKIP: python3 is not installed (apt-get install python3): the command tests (cli_tool) did not run'; exit 77")
endif()
set_tests_properties(cli_tool PROPERTIES LABELS "cli" TIMEOUT 300 SKIP_RETURN_CODE 77)
if(NOT USBTS_SANITIZE)
  add_test(NAME cli_example_pkgconfig
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli/example.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli_example_pkgconfig PROPERTIES LABELS "cli" TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()

# make check lists the groups it could not run, with what to install.
if(NOT USBTS_SANITIZE)
  add_test(NAME check_lists_skips COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli/skips.sh ${CMAKE_SOURCE_DIR})
  set_tests_properties(check_lists_skips PROPERTIES LABELS "cli" TIMEOUT 300)
endif()

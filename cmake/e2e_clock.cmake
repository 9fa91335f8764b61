# SPDX-License-Identifier: MIT
# The timeline boot (label e2e): e2e_clock changes the guest's clocks (TAI
# offset, REALTIME steps) inside QEMU and checks the frame times follow.
# Plain build only, like e2e_qemu: the guest binary is static.
if(NOT USBTS_SANITIZE)
  add_executable(e2e_clock ${CMAKE_SOURCE_DIR}/tests/e2e/e2e_clock.c)
  target_link_libraries(e2e_clock PRIVATE usbtimesync_static)
  target_link_options(e2e_clock PRIVATE -static)
  add_test(NAME e2e_clock COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/run_clock.sh $<TARGET_FILE:e2e_clock>
                                  ${CMAKE_BINARY_DIR}/e2e-clock)
  set_tests_properties(e2e_clock PROPERTIES LABELS e2e TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()

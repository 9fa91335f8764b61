# SPDX-License-Identifier: MIT
# The daemon's QEMU boot (label e2e): the daemon, a client and the command,
# statically linked for the guest.  Plain build only, as cmake/e2e.cmake.
if(NOT USBTS_SANITIZE AND TARGET e2e_cli)
  add_executable(e2e_daemon ${USBTSD_SOURCES})
  target_include_directories(e2e_daemon PRIVATE ${CMAKE_SOURCE_DIR}/daemon)
  target_link_libraries(e2e_daemon PRIVATE usbtimesync_static)
  target_link_options(e2e_daemon PRIVATE -static)
  add_executable(e2e_daemon_guest ${CMAKE_SOURCE_DIR}/tests/e2e/daemon_guest.c)
  target_link_libraries(e2e_daemon_guest PRIVATE usbtimesync_static)
  target_link_options(e2e_daemon_guest PRIVATE -static)
  add_test(NAME e2e_daemon COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/run_daemon.sh $<TARGET_FILE:e2e_daemon>
                                   $<TARGET_FILE:e2e_daemon_guest> $<TARGET_FILE:e2e_cli>
                                   ${CMAKE_BINARY_DIR}/e2e-daemon)
  set_tests_properties(e2e_daemon PROPERTIES LABELS e2e TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()

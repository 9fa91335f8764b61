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
  # The guest runs the daemon with its unit's capability bounding set only.
  add_executable(e2e_capbset ${CMAKE_SOURCE_DIR}/tests/e2e/capbset.c)
  target_link_options(e2e_capbset PRIVATE -static)
  add_test(NAME e2e_daemon COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/run_daemon.sh $<TARGET_FILE:e2e_daemon>
                                   $<TARGET_FILE:e2e_daemon_guest> $<TARGET_FILE:e2e_cli>
                                   ${CMAKE_BINARY_DIR}/e2e-daemon $<TARGET_FILE:e2e_capbset>
                                   ${CMAKE_BINARY_DIR}/kmod/usbts_mfindex.ko)
  # Its second boot loads the module kmod_build builds (cmake/kmod.cmake).
  set_tests_properties(e2e_daemon PROPERTIES LABELS e2e TIMEOUT 420 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
                                             DEPENDS kmod_build)
endif()

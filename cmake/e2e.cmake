# SPDX-License-Identifier: MIT
# The end-to-end test (label e2e): a statically linked guest program run
# inside QEMU on Debian's kernel; tests/e2e/run.sh skips it (exit 77) with
# the reason where QEMU, busybox or the kernel is missing.  Plain build only:
# sanitizer runtimes do not link statically.
if(NOT USBTS_SANITIZE)
  add_executable(e2e_guest ${CMAKE_SOURCE_DIR}/tests/e2e/e2e_guest.c)
  target_link_libraries(e2e_guest PRIVATE usbtimesync_static)
  target_link_options(e2e_guest PRIVATE -static) # the guest has no libc of its own
  # The command too, so the guest can show `list` and `track` on a real controller.
  add_executable(e2e_cli ${USBTS_TOOL_SOURCES})
  target_link_libraries(e2e_cli PRIVATE usbts_scenario usbtimesync_static)
  target_include_directories(e2e_cli PRIVATE ${CMAKE_SOURCE_DIR}/tools)
  target_link_options(e2e_cli PRIVATE -static)
  add_test(NAME e2e_qemu COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/run.sh $<TARGET_FILE:e2e_guest>
                                 ${CMAKE_BINARY_DIR}/e2e $<TARGET_FILE:e2e_cli>)
  # TIMEOUT: two boots of at most 240 s each (lib.sh), a hang guard only.
  set_tests_properties(e2e_qemu PROPERTIES LABELS e2e TIMEOUT 600 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()

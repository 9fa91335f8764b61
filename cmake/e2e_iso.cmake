# SPDX-License-Identifier: MIT
# The isochronous end-to-end test (label e2e): QEMU's usb-audio on qemu-xhci;
# a statically linked guest streams through usbfs and compares each URB's
# inferred start with usbmon's record (tests/e2e/run_iso.sh).  Plain build
# only, like e2e_qemu.
if(NOT USBTS_SANITIZE)
  add_executable(iso_guest ${CMAKE_SOURCE_DIR}/tests/e2e/iso_guest.c)
  target_link_libraries(iso_guest PRIVATE usbtimesync_static)
  target_link_options(iso_guest PRIVATE -static)
  # The example too, so the guest shows it streaming from a real endpoint.
  add_executable(e2e_iso_stream ${CMAKE_SOURCE_DIR}/examples/iso_stream.c)
  target_link_libraries(e2e_iso_stream PRIVATE usbtimesync_static)
  target_link_options(e2e_iso_stream PRIVATE -static)
  add_test(NAME e2e_iso COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/run_iso.sh $<TARGET_FILE:iso_guest>
                                ${CMAKE_BINARY_DIR}/e2e-iso $<TARGET_FILE:e2e_iso_stream>)
  # TIMEOUT: one boot of at most 240 s (lib.sh), a hang guard only.
  set_tests_properties(e2e_iso PROPERTIES LABELS e2e TIMEOUT 360 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()

# SPDX-License-Identifier: MIT
# The kernel module (kmod/): built by tests/kmod/build.sh against installed
# kernel headers (W=1, no warning allowed).  Skipped (77, with the reason)
# where no headers are installed, so `make check` stays green there; CI
# installs Debian's headers for the kernel the QEMU test boots (setup.sh).
# `cmake --build build --target kmod` builds it by hand.
set(USBTS_KMOD_OUT ${CMAKE_BINARY_DIR}/kmod)
add_custom_target(kmod COMMAND ${CMAKE_SOURCE_DIR}/tests/kmod/build.sh ${CMAKE_SOURCE_DIR} ${USBTS_KMOD_OUT}
                  USES_TERMINAL)
add_test(NAME kmod_build COMMAND ${CMAKE_SOURCE_DIR}/tests/kmod/build.sh ${CMAKE_SOURCE_DIR} ${USBTS_KMOD_OUT})
set_tests_properties(kmod_build PROPERTIES LABELS "kmod;nosan" TIMEOUT 300 SKIP_RETURN_CODE 77)

# Its end-to-end boots (tests/e2e/run_kmod.sh): the module built above, loaded
# into the kernel the QEMU test boots, with e2e_guest, the command and
# kmod_guest (malformed requests, the module's read bracket) in the guest.
if(NOT USBTS_SANITIZE)
  add_executable(kmod_guest ${CMAKE_SOURCE_DIR}/tests/e2e/kmod_guest.c)
  target_link_options(kmod_guest PRIVATE -static)
  add_test(NAME e2e_kmod COMMAND ${CMAKE_SOURCE_DIR}/tests/e2e/run_kmod.sh $<TARGET_FILE:e2e_guest>
                                 $<TARGET_FILE:kmod_guest> $<TARGET_FILE:e2e_cli> ${USBTS_KMOD_OUT}/usbts_mfindex.ko
                                 ${CMAKE_BINARY_DIR}/e2e-kmod)
  set_tests_properties(e2e_kmod PROPERTIES LABELS e2e TIMEOUT 420 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
                                           DEPENDS kmod_build)
endif()

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

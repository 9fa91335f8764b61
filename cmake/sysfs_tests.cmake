# SPDX-License-Identifier: MIT
# The real-controller backend's tests run on the fixture trees in
# tests/fixtures/sysfs.
target_compile_definitions(test_sysfs PRIVATE USBTS_FIXTURES="${CMAKE_SOURCE_DIR}/tests/fixtures")

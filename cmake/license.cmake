# SPDX-License-Identifier: MIT
# Every source file names its license (SPEC §9).
add_test(NAME license_spdx COMMAND ${CMAKE_SOURCE_DIR}/tests/license/spdx.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(license_spdx PROPERTIES LABELS unit)

# SPDX-License-Identifier: MIT
# Racing threads with injected faults: under ThreadSanitizer too (make check-tsan).
set_tests_properties(test_stress PROPERTIES LABELS "unit;concurrency")

# valgrind memcheck over the conformance tests (plain build only: valgrind and
# the sanitizers do not mix).
if(NOT USBTS_SANITIZE)
  find_program(VALGRIND valgrind)
  if(VALGRIND)
    add_test(NAME memcheck_conformance
             COMMAND ${VALGRIND} --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
                     --quiet $<TARGET_FILE:test_conformance>)
  else()
    add_test(NAME memcheck_conformance COMMAND sh -c
             "echo 'SKIP: valgrind is not installed (apt-get install valgrind): memcheck_conformance did not run'; exit 77")
  endif()
  set_tests_properties(memcheck_conformance PROPERTIES LABELS "memcheck" TIMEOUT 600 SKIP_RETURN_CODE 77)
endif()

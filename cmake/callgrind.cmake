# SPDX-License-Identifier: MIT
# The query's instruction count under callgrind, kept under a ceiling
# (measured ~304 per query with a virtual clock; valgrind and sanitizers
# do not mix, so only in the plain build).
if(NOT USBTS_SANITIZE)
  add_executable(callgrind_query_loop ${CMAKE_SOURCE_DIR}/tests/callgrind/query_loop.c)
  target_link_libraries(callgrind_query_loop PRIVATE usbtimesync_static)
  add_test(NAME callgrind_query_ceiling
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/callgrind/ceiling.sh $<TARGET_FILE:callgrind_query_loop> 330)
  set_tests_properties(callgrind_query_ceiling PROPERTIES LABELS "callgrind" SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()

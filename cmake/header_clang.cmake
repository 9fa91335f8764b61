# SPDX-License-Identifier: MIT
# Windows code takes the addresses of members of the byte-packed structures and
# binds references to them; the tests that do so must build warning-free under
# -Werror with both compilers.  GCC builds them as ordinary tests (with
# -Waddress-of-packed-member spelled out); clang compiles them here when present.
set_source_files_properties(${CMAKE_SOURCE_DIR}/tests/test_packed_members.c ${CMAKE_SOURCE_DIR}/tests/test_header_cxx.cpp
                            ${CMAKE_SOURCE_DIR}/tests/test_header_c99.c
                            PROPERTIES COMPILE_OPTIONS "-Waddress-of-packed-member")
find_program(USBTS_CLANG clang)
find_program(USBTS_CLANGXX clang++)
set(USBTS_CLANG_FLAGS -fsyntax-only -Wall -Wextra -Werror -Waddress-of-packed-member -I${CMAKE_SOURCE_DIR}/include
                      -I${CMAKE_SOURCE_DIR}/tests)
foreach(t "c11;test_packed_members.c;${USBTS_CLANG}" "c99;test_header_c99.c;${USBTS_CLANG}"
          "c++11;test_header_cxx.cpp;${USBTS_CLANGXX}")
  list(GET t 0 std)
  list(GET t 1 file)
  list(GET t 2 compiler)
  string(REGEX REPLACE "\\.[a-z]+$" "" base ${file})
  if(USBTS_CLANG AND USBTS_CLANGXX)
    add_test(NAME clang_${base} COMMAND ${compiler} -std=${std} ${USBTS_CLANG_FLAGS} ${CMAKE_SOURCE_DIR}/tests/${file})
  else()
    add_test(NAME clang_${base}
             COMMAND sh -c "echo 'SKIP: clang is not installed (apt-get install clang): ${file} was checked with gcc only'; exit 77")
    set_tests_properties(clang_${base} PROPERTIES SKIP_RETURN_CODE 77)
  endif()
  set_tests_properties(clang_${base} PROPERTIES LABELS unit)
endforeach()

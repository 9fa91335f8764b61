# SPDX-License-Identifier: MIT
# libFuzzer targets, fuzz/fuzz_*.c: only with -DUSBTS_FUZZ=ON and clang
# (CC=clang cmake -S . -B build-fuzz -DUSBTS_FUZZ=ON; .ci/stage-fuzz and
# `make fuzz` do that).  The targets compile the library's sources themselves,
# with the fuzzer's coverage instrumentation and ASan+UBSan, rather than link
# the ordinary static library: coverage must reach into the library, and a
# gcc-built archive would carry none.
option(USBTS_FUZZ "Build the libFuzzer targets in fuzz/ (clang only)" OFF)
if(USBTS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "USBTS_FUZZ=ON needs clang and its runtime (libclang-rt-*-dev): configure with CC=clang")
  endif()
  if(USBTS_SANITIZE)
    message(FATAL_ERROR "USBTS_FUZZ=ON brings its own sanitizers: leave USBTS_SANITIZE empty")
  endif()
  set(USBTS_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                       -fno-omit-frame-pointer)
  add_library(usbts_fuzz_lib OBJECT ${USBTS_LIB_SOURCES})
  target_include_directories(usbts_fuzz_lib PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(usbts_fuzz_lib PUBLIC ${USBTS_FUZZ_FLAGS})

  file(GLOB USBTS_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
  set(USBTS_FUZZ_TARGETS "")
  foreach(src ${USBTS_FUZZ_SOURCES})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" corpus ${name})
    add_executable(${name} ${src} $<TARGET_OBJECTS:usbts_fuzz_lib>)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
    target_compile_options(${name} PRIVATE ${USBTS_FUZZ_FLAGS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE Threads::Threads m)
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    list(APPEND USBTS_FUZZ_TARGETS ${name})
    # Replaying the committed seeds is a quick regression test of its own.
    if(EXISTS ${CMAKE_SOURCE_DIR}/fuzz/corpus/${corpus})
      add_test(NAME ${name}_seeds COMMAND ${name} -runs=0 ${CMAKE_SOURCE_DIR}/fuzz/corpus/${corpus})
      set_tests_properties(${name}_seeds PROPERTIES LABELS fuzz TIMEOUT 300)
    endif()
  endforeach()
  add_custom_target(fuzz_targets DEPENDS ${USBTS_FUZZ_TARGETS})
endif()

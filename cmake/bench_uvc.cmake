# SPDX-License-Identifier: MIT
# bench/uvc: UVC start-of-exposure times, ours against the kernel driver's
# method, on the simulated camera (tests/uvc_camera.h); prints ratios, asserts
# nothing about them.
add_executable(bench_uvc ${CMAKE_SOURCE_DIR}/bench/uvc.c)
set_target_properties(bench_uvc PROPERTIES OUTPUT_NAME uvc RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
target_include_directories(bench_uvc PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/bench)
target_link_libraries(bench_uvc PRIVATE usbtimesync_static m)
add_test(NAME bench_uvc COMMAND bench_uvc 30)
set_tests_properties(bench_uvc PROPERTIES LABELS bench TIMEOUT 600)

# SPDX-License-Identifier: MIT
# What a query costs against clock_gettime, and what tracking costs (label
# bench: it prints ratios and fails only on functional facts, never on time).
add_executable(bench_latency ${CMAKE_SOURCE_DIR}/bench/latency.c)
set_target_properties(bench_latency PROPERTIES OUTPUT_NAME latency RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
target_link_libraries(bench_latency PRIVATE usbts_scenario)
add_test(NAME bench_latency COMMAND bench_latency 10)
set_tests_properties(bench_latency PROPERTIES LABELS bench TIMEOUT 300 RUN_SERIAL TRUE)

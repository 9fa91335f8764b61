# SPDX-License-Identifier: MIT
# usbtimesyncd, the daemon (daemon/): it links the library's static archive
# and reuses its backend, sources and tracker rather than a copy of them.
file(GLOB USBTSD_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/daemon/*.c)
add_executable(usbtimesyncd ${USBTSD_SOURCES})
target_include_directories(usbtimesyncd PRIVATE ${CMAKE_SOURCE_DIR}/daemon)
target_link_libraries(usbtimesyncd PRIVATE usbtimesync_static)
install(TARGETS usbtimesyncd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})

# The daemon's tests spawn it: they need its path and the fixture trees.
if(TARGET test_daemon)
  add_dependencies(test_daemon usbtimesyncd)
  target_compile_definitions(test_daemon PRIVATE USBTSD_PATH="$<TARGET_FILE:usbtimesyncd>"
                             USBTS_FIXTURES="${CMAKE_SOURCE_DIR}/tests/fixtures")
  set_tests_properties(test_daemon PROPERTIES LABELS "unit;daemon")
endif()

# The systemd unit, with the installed path of the daemon.
set(SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})
configure_file(${CMAKE_SOURCE_DIR}/daemon/usbtimesyncd.service ${CMAKE_BINARY_DIR}/usbtimesyncd.service @ONLY)
set(USBTS_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "Where the systemd unit is installed (under the prefix)")
install(FILES ${CMAKE_BINARY_DIR}/usbtimesyncd.service DESTINATION ${USBTS_SYSTEMD_UNIT_DIR})
install(FILES ${CMAKE_SOURCE_DIR}/docs/usbtimesyncd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)


# bench/daemon: a query through a mapped page against an in-process query and
# clock_gettime, and the daemon's CPU for 1 and 16 clients (label bench:
# prints ratios, fails only when something does not work).
add_executable(bench_daemon ${CMAKE_SOURCE_DIR}/bench/daemon.c ${CMAKE_SOURCE_DIR}/bench/benchutil.c)
set_target_properties(bench_daemon PROPERTIES OUTPUT_NAME daemon RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
target_include_directories(bench_daemon PRIVATE ${CMAKE_SOURCE_DIR}/bench)
target_link_libraries(bench_daemon PRIVATE usbtimesync_static)
target_compile_definitions(bench_daemon PRIVATE USBTSD_PATH="$<TARGET_FILE:usbtimesyncd>")
add_dependencies(bench_daemon usbtimesyncd)
add_test(NAME bench_daemon COMMAND bench_daemon 4)
set_tests_properties(bench_daemon PROPERTIES LABELS bench TIMEOUT 300 RUN_SERIAL TRUE)

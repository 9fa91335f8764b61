# SPDX-License-Identifier: MIT
# usbtimesyncd, the daemon (daemon/): it links the library's static archive
# and reuses its backend, sources and tracker rather than a copy of them.
file(GLOB USBTSD_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/daemon/*.c)
add_executable(usbtimesyncd ${USBTSD_SOURCES})
target_include_directories(usbtimesyncd PRIVATE ${CMAKE_SOURCE_DIR}/daemon)
target_link_libraries(usbtimesyncd PRIVATE usbtimesync_static)
install(TARGETS usbtimesyncd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})

# SPDX-License-Identifier: MIT
# The library's API man page goes with the headers.
install(FILES ${CMAKE_SOURCE_DIR}/docs/libusbtimesync.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)

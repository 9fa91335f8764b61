# SPDX-License-Identifier: MIT
# examples/uvc_timestamps.c against recorded metadata buffers of the simulated
# camera (no emulator offers a UVC camera): tests/uvc_record writes them in the
# kernel's block format with the truth, tests/cli/uvc_replay.sh compares.
add_executable(uvc_timestamps_example ${CMAKE_SOURCE_DIR}/examples/uvc_timestamps.c)
set_target_properties(uvc_timestamps_example PROPERTIES OUTPUT_NAME uvc_timestamps
                      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
target_link_libraries(uvc_timestamps_example PRIVATE usbtimesync)
add_executable(uvc_record ${CMAKE_SOURCE_DIR}/tests/uvc_record.c)
set_target_properties(uvc_record PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
target_include_directories(uvc_record PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(uvc_record PRIVATE usbtimesync_static m)
foreach(mode sound junk)
  set(arg "")
  if(mode STREQUAL junk)
    set(arg junk)
  endif()
  add_test(NAME uvc_example_replay_${mode}
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli/uvc_replay.sh $<TARGET_FILE:uvc_record>
                   $<TARGET_FILE:uvc_timestamps_example> ${arg})
  set_tests_properties(uvc_example_replay_${mode} PROPERTIES LABELS "unit;cli" TIMEOUT 300
                       ENVIRONMENT USBTS_NO_DAEMON=1)
endforeach()

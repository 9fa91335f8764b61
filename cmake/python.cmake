# SPDX-License-Identifier: MIT
# The Python binding (python/): its pytest suite against this build's shared
# library, on the simulated controller.  python/run_tests.sh skips it (exit
# 77, with a SKIP line naming what to install) where no python3 has pytest.
# Plain build only: an ASan-instrumented library cannot be loaded into an
# uninstrumented interpreter.
if(NOT USBTS_SANITIZE)
  add_test(NAME python_binding COMMAND sh ${CMAKE_SOURCE_DIR}/python/run_tests.sh $<TARGET_FILE_DIR:usbtimesync>)
  set_tests_properties(python_binding PROPERTIES LABELS "python" TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()

#!/bin/sh
# SPDX-License-Identifier: MIT
# The Python binding's pytest suite (ctest python_binding) against a build
# tree's library:
#
#   run_tests.sh LIBDIR
#
# Uses the first python3 on PATH that has pytest.  Where there is none it
# says so on a SKIP line (make check prints those) and exits 77, which ctest
# counts as skipped: never a silent pass.
lib=$1
here=$(cd "$(dirname "$0")" && pwd)
found_python=""
py=""
oldifs=$IFS
IFS=:
for d in $PATH; do
    [ -x "$d/python3" ] || continue
    found_python="$d/python3"
    if "$d/python3" -c "import pytest" >/dev/null 2>&1; then
        py="$d/python3"
        break
    fi
done
IFS=$oldifs
if [ -z "$found_python" ]; then
    echo "SKIP: python binding not tested: no python3 on PATH; apt-get install python3 python3-pytest python3-numpy"
    exit 77
fi
if [ -z "$py" ]; then
    echo "SKIP: python binding not tested: no python3 on PATH has pytest; apt-get install python3-pytest python3-numpy"
    exit 77
fi
"$py" -c "import numpy" >/dev/null 2>&1 ||
    echo "NOTE: numpy not installed for $py: the list paths are tested, the numpy ones skipped (apt-get install python3-numpy)"
echo "python binding: $("$py" --version 2>&1), pytest, library from $lib"
cd "$here" || exit 1
USBTIMESYNC_LIBRARY=$lib PYTHONPATH=$here PYTHONDONTWRITEBYTECODE=1 exec "$py" -m pytest -q -rs -p no:cacheprovider tests

#!/bin/sh
# SPDX-License-Identifier: MIT
# After a ctest run that failed: which tests failed, and why.  Reads the build
# directory's Testing/Temporary/LastTestsFailed.log (the names) and
# LastTest.log (every test's output), and prints one line per failing check
# the test reported ("FAIL file:line: ...", a sanitizer's report, a timeout),
# or the last lines of its output when it reported none.
#
#   ctest_failures.sh BUILD_DIR [TAG]      (TAG prefixes each line, e.g. asan)
#
# Used by `make check-load` after each run and by .ci/run when make check
# fails, so a failing run always names its tests and their failing lines.
set -u
dir=$1/Testing/Temporary
tag=${2:+[$2] }
failed=$(cat "$dir"/LastTestsFailed*.log 2>/dev/null | sed 's/^[0-9]*://' | sort -u)
if [ -z "$failed" ]; then
    echo "${tag}no failed tests recorded in $dir"
    exit 0
fi
for t in $failed; do
    # The test's own section of LastTest.log: from "N/M Testing: name" to
    # the "end time" line; the lines a failure leaves in it.
    awk -v t="$t" '
        $0 ~ "^[0-9]+/[0-9]+ Testing: " t "$" { on = 1; out = 0; n = 0; next }
        !on { next }
        /^Output:$/ { out = 1; getline; next }  # and the dashes under it
        /^<end of output>$/ { out = 0; next }
        $0 ~ "^\"" t "\" end time" { on = 0; next }
        /^Test time = / && !out { took = $4 " s" }
        /^Test (Failed|Passed|Not Run)|Timeout|Exception/ && !out { status = $0 }
        out && /(^|[^A-Za-z])FAIL|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: |Traceback|Error:|^SKIP: / {
            print $0; hits++
        }
        out { last[n++ % 5] = $0 }
        END {
            if (status != "") print "(ctest: " status " after " took ")"
            if (!hits) for (i = n - 5; i < n; i++) if (i >= 0) print "| " last[i % 5]
        }' "$dir"/LastTest*.log | sed "s/^/  $tag$t: /"
done

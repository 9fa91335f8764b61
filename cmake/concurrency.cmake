# SPDX-License-Identifier: MIT
# Tests that race threads: run under ThreadSanitizer too (make check-tsan).
set_tests_properties(test_concurrency PROPERTIES LABELS "unit;concurrency")

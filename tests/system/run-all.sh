#!/usr/bin/env bash
# Runs every system test (tests/system/test-*.sh) one after another and prints the totals.
# Each test builds and tears down its own cluster; a failing test does not stop the others.
set -uo pipefail
cd "$(dirname "$0")"
passed=0
failed=0
failed_tests=()
for t in test-*.sh; do
        [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]] && continue
        echo "=== $t"
        start=$SECONDS
        if out=$(bash "$t" 2>&1); then
                :
        else
                failed_tests+=("$t")
        fi
        echo "$out" | tail -n 200
        line=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -n 1)
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"${line:-x: 0 passed, 1 failed}")
        f=$(sed -E 's/.*passed, ([0-9]+) failed/\1/' <<<"${line:-x: 0 passed, 1 failed}")
        [[ " ${failed_tests[*]} " == *" $t "* ]] && [ "$f" = 0 ] && f=1
        passed=$((passed + p))
        failed=$((failed + f))
        echo "=== $t: $((SECONDS - start)) s"
done
[ ${#failed_tests[@]} -gt 0 ] && echo "failed: ${failed_tests[*]}"
echo "system: $passed passed, $failed failed"
[ "$failed" = 0 ]

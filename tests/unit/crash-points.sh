#!/bin/sh
# Fails when a crash point in the sources (crash_point("NAME") in SRC) is named by no file under
# TESTS: every crash point must be exercised by some test (VMATRIX_CRASH_AT=NAME).
src=${1:?usage: crash-points.sh SRC TESTS}
tests=${2:?usage: crash-points.sh SRC TESTS}
names=$(grep -rhoE 'crash_point\("[a-z0-9-]+"\)' "$src" | sed 's/.*("\(.*\)")/\1/' | sort -u)
[ -n "$names" ] || { echo "no crash points found in $src"; exit 1; }
missing=0
for name in $names; do
        if ! grep -rqF -- "$name" "$tests"; then
                echo "crash point $name is not used by any test under $tests"
                missing=$((missing + 1))
        fi
done
echo "$(echo "$names" | wc -w) crash points, $missing untested"
[ "$missing" -eq 0 ]

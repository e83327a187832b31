#!/bin/sh
# Runs libFuzzer harnesses for a bounded time each (`make fuzz`; docs/fuzzing.md).
#   tests/fuzz/run.sh BUILD SECONDS MERGE NAME...
# BUILD is a -Dfuzz=true build holding BUILD/tests/fuzz/fuzz-NAME. Each harness runs SECONDS on
# its corpus tests/fuzz/corpus/NAME/; what it finds goes under BUILD/fuzz-out/NAME/, never
# into the tree: new inputs in new/, crashes, leaks and timeouts in artifacts/, its output
# in log. With MERGE=1 the new inputs that add coverage are then merged, minimised, into the
# corpus in the tree. Exits 1 when a harness failed (its artifact is named), after running all.
set -u
build=$1 seconds=$2 merge=$3
shift 3
src=$(cd "$(dirname "$0")" && pwd)
failed=
for name in "$@"; do
        exe=$build/tests/fuzz/fuzz-$name
        out=$build/fuzz-out/$name
        corpus=$src/corpus/$name
        dict=
        [ -f "$src/$name.dict" ] && dict=-dict=$src/$name.dict
        mkdir -p "$out/new" "$out/artifacts"
        # -timeout: one input taking 10 s is a hang; -rss_limit_mb: so is 2 GB
        if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $dict \
                -artifact_prefix="$out/artifacts/" "$out/new" "$corpus" >"$out/log" 2>&1; then
                status=ok
        else
                status=FAILED
                failed="$failed $name"
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/log")
        cov=$(grep -o 'cov: [0-9]*' "$out/log" | tail -1)
        echo "fuzz-$name: $status, ${runs:-?} runs in $seconds s (${rate:-?}/s), $cov, corpus $(ls "$corpus" | wc -l) + $(ls "$out/new" | wc -l) new"
        if [ "$status" = FAILED ]; then
                grep -E 'ERROR|SUMMARY|fuzz invariant|runtime error' "$out/log" | head -5
                ls "$out/artifacts"
                continue
        fi
        if [ "$merge" = 1 ]; then
                before=$(ls "$corpus" | wc -l)
                # edges only (-use_counters=0): the corpus in the tree stays tens of files
                "$exe" -merge=1 -use_counters=0 $dict "$corpus" "$out/new" >"$out/merge.log" 2>&1 || { echo "fuzz-$name: merge failed ($out/merge.log)"; failed="$failed $name"; continue; }
                echo "fuzz-$name: merged $(($(ls "$corpus" | wc -l) - before)) inputs into $corpus"
        fi
done
if [ -n "$failed" ]; then
        echo "failed:$failed (see $build/fuzz-out/NAME/)"
        exit 1
fi

# Shared by the runners of the real-QEMU smoke programs (qemu-driver-smoke.sh,
# qemu-live-smoke.sh): skipping without the tools, a fresh work directory, running the program
# there, and making sure no QEMU it started survives, even when it fails or is interrupted.
# POSIX sh; source it from the runner. It sets here (the source tree) and build ($BUILD or
# $here/build).
#   smoke_need TOOL...        exit 77 (skip) unless every TOOL is on PATH
#   smoke_bin NAME            bin=$build/src/vmm/NAME, or exit 1 when it is not built
#   smoke_workdir PREFIX      work=/tmp/PREFIX-XXXXXX, removed at exit with any QEMU left in it
#   smoke_run ARG...          run $bin ARG..., exit with its status (1 if a QEMU was left)
# A runner may define smoke_cleanup_extra, run at exit after the QEMUs are gone; smoke_pid is
# then the test program's pid (empty when it never started).
# shellcheck shell=sh
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$here/build}
smoke_pid=
smoke_running= # smoke_pid until it was waited for: the only pid a signal is passed on to

smoke_need() {
        for tool in "$@"; do
                if ! command -v "$tool" >/dev/null 2>&1; then
                        echo "SKIP: $tool not found"
                        exit 77
                fi
        done
}

smoke_bin() {
        bin=$build/src/vmm/$1
        [ -x "$bin" ] || { echo "missing $bin: run ninja -C $build" >&2; exit 1; }
}

# kill, by pid, any QEMU left in our work directory (pidfile and cmdline must both match);
# 1 when there was one
smoke_leftovers() {
        found=0
        for pidfile in "$work"/*/qemu.pid; do
                [ -f "$pidfile" ] || continue
                qpid=$(cat "$pidfile" 2>/dev/null) || continue
                if [ -n "$qpid" ] && { tr '\0' ' ' < "/proc/$qpid/cmdline"; } 2>/dev/null | grep -qF "$work/"; then
                        echo "leftover QEMU pid $qpid ($pidfile): killing it" >&2
                        kill -9 "$qpid" 2>/dev/null
                        found=1
                fi
        done
        return $found
}

smoke_cleanup() {
        smoke_leftovers
        rm -rf "$work"
        if command -v smoke_cleanup_extra >/dev/null 2>&1; then
                smoke_cleanup_extra
        fi
}

smoke_workdir() {
        work=$(mktemp -d "/tmp/$1-XXXXXX")
        trap smoke_cleanup EXIT
        # the program runs in the background so that a signal ends the wait at once; pass it on
        # and let the program kill its VMs, then the EXIT trap cleans up
        trap '[ -z "$smoke_running" ] || { kill -TERM "$smoke_running" 2>/dev/null; wait "$smoke_running"; }; exit 130' INT TERM
}

smoke_run() {
        "$bin" "$@" &
        smoke_pid=$!
        smoke_running=$smoke_pid
        wait $smoke_pid
        rc=$?
        smoke_running=
        if ! smoke_leftovers; then
                echo "FAIL: QEMU processes were left running" >&2
                rc=1
        fi
        exit $rc
}

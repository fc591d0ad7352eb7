#!/usr/bin/env bash
# Replays every input under Fuzz/crashes/<harness>/ once through its harness (build them first
# with Fuzz/build.sh): each crashed or hung a harness when it was found, and must now run clean.
# Inputs named hdf5-* crash inside the system's libhdf5 itself; no harness can survive them in
# process, so they are skipped here: the distill executable reads every HDF5 file first in a
# child process and reports those files as damaged (Tests/DistillCLITests/HostileInputTests).
# Inputs whose name says FUZZ_BUILD_LIMIT-0 are replayed with that setting. Exits 1 when any fails.
set -uo pipefail
cd "$(dirname "$0")"
export SWIFT_BACKTRACE=enable=no
export LSAN_OPTIONS="suppressions=$PWD/lsan.supp"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
failed=0
count=0
for folder in crashes/*/; do
  harness="$(basename "$folder")"
  for input in "$folder"*; do
    name="$(basename "$input")"
    case "$name" in hdf5-*) continue ;; esac
    limit=""
    case "$name" in *FUZZ_BUILD_LIMIT-0*) limit=0 ;; esac
    count=$((count + 1))
    if FUZZ_BUILD_LIMIT="${limit:-${FUZZ_BUILD_LIMIT:-}}" timeout 120 ".build/debug/$harness" -timeout=20 \
      -rss_limit_mb=4096 "$input" > "$log" 2>&1; then
      echo "ok    $harness/$name"
    else
      echo "FAIL  $harness/$name"
      grep -E "ERROR|Fatal error|runtime failure|SUMMARY|precondition|deadly signal|timeout" "$log" | head -5
      failed=1
    fi
  done
done
echo "replayed $count crash inputs"
exit $failed

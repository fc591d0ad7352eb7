#!/usr/bin/env bash
# Replays crash, timeout and oom inputs and prints for each: the file, the failure message
# (Swift runtime, sanitizer or libFuzzer), the innermost named frame below the sanitizer and
# Swift runtime (often inside libhdf5 or libyaml), and the innermost frame in the project's own
# sources (Sources/, Fuzz/Sources/, Yams' checkout).
#
# Usage: Fuzz/triage.sh HARNESS FILE_OR_FOLDER...   (e.g. Fuzz/triage.sh FuzzCSV /tmp/fz/crashes/FuzzCSV)
# TRIAGE_TIMEOUT (default 10) is the -timeout in seconds for the replay.
set -uo pipefail
harness=$1
shift
targets=()
for target in "$@"; do targets+=("$(realpath "$target")"); done
cd "$(dirname "$0")"
export SWIFT_BACKTRACE=enable=no
export LSAN_OPTIONS=suppressions=$PWD/lsan.supp
root=$(cd .. && pwd)
for target in "${targets[@]}"; do
  if [ -d "$target" ]; then files=("$target"/*); else files=("$target"); fi
  for file in "${files[@]}"; do
    [ -f "$file" ] || continue
    log=$(timeout 300 ".build/debug/$harness" -rss_limit_mb=4096 -timeout="${TRIAGE_TIMEOUT:-10}" "$file" 2>&1)
    message=$(printf '%s\n' "$log" | grep -m1 -E "Fatal error|Precondition failed|ERROR: AddressSanitizer|ERROR: LeakSanitizer|ERROR: libFuzzer: (out-of-memory|timeout)|Swift runtime failure" | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in //' | cut -c1-220)
    frames=$(printf '%s\n' "$log" | grep -E "^ *#[0-9]+ 0x" | grep -vE "sanitizer|asan|fuzzer::|libswiftCore|libc.so|_assertionFailure|Swift runtime failure|compiler-rt|LLVMFuzzerTestOneInput|<unavailable>" | sed -E 's/\(BuildId[^)]*\)//; s/^ *#[0-9]+ 0x[0-9a-f]+ in //')
    first=$(printf '%s\n' "$frames" | head -1 | cut -c1-160)
    ours=$(printf '%s\n' "$frames" | grep -m1 -E "$root/|/Sources/" | sed -E "s#^([^ ]+) .*$root/#\1 #")
    name=$(printf '%s\n' "$ours" | awk '{print $1}' | swift demangle --simplified 2>/dev/null | cut -c1-140)
    where=$(printf '%s\n' "$ours" | awk '{print $2}')
    printf '%s\n  %s\n  first frame: %s\n  ours: %s (%s)\n' "$file" "${message:-no failure on replay}" "${first:-?}" "${name:-?}" "${where:-?}"
  done
done

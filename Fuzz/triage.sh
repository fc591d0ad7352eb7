#!/usr/bin/env bash
# Replays crash inputs and prints one line per input: the file, the failure message (Swift
# runtime or sanitizer) and the top stack frame in the project's sources (Sources/ or Fuzz/).
#
# Usage: Fuzz/triage.sh HARNESS FILE_OR_FOLDER...   (e.g. Fuzz/triage.sh FuzzCSV /tmp/fz/crashes/FuzzCSV)
set -uo pipefail
cd "$(dirname "$0")"
harness=$1
shift
export SWIFT_BACKTRACE=enable=no
root=$(cd .. && pwd)
for target in "$@"; do
  if [ -d "$target" ]; then files=("$target"/*); else files=("$target"); fi
  for file in "${files[@]}"; do
    [ -f "$file" ] || continue
    log=$(timeout 120 ".build/debug/$harness" -rss_limit_mb=4096 -timeout=30 "$file" 2>&1)
    message=$(printf '%s\n' "$log" | grep -m1 -E "Fatal error|Precondition failed|precondition|ERROR: AddressSanitizer|ERROR: libFuzzer: (out-of-memory|timeout)|SUMMARY|Assertion failed|Stack overflow|overflow|Illegal|round trip" | cut -c1-200)
    frame=$(printf '%s\n' "$log" | grep -E "^ *#[0-9]+ .* in .*(/Sources/|/Fuzz/Sources/)" | grep -v "LLVMFuzzerTestOneInput" | head -1 | sed -E "s#.* $root/##" | cut -c1-160)
    func=$(printf '%s\n' "$log" | grep -E "^ *#[0-9]+ .* in .*(/Sources/|/Fuzz/Sources/)" | head -1 | sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in ([^ ]+).*/\1/' | swift demangle --simplified 2>/dev/null | cut -c1-140)
    printf '%s\n  %s\n  at %s\n  in %s\n' "$file" "${message:-?}" "${frame:-?}" "${func:-?}"
  done
done

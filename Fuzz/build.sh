#!/usr/bin/env bash
# Builds the libFuzzer harnesses into Fuzz/.build/debug/ (FuzzRecipe, FuzzIDX, FuzzCSV,
# FuzzModelFile, FuzzArchitecture): debug configuration (assertions, preconditions and overflow
# checks on), every Swift module with AddressSanitizer and libFuzzer's coverage instrumentation, every C target
# (Yams' libyaml copy, CKernels, CDNNL) with the same through -Xcc. libopenblas, libdnnl, libhdf5 and zlib are
# the system's, uninstrumented. Exits non-zero when any harness fails to build.
#
# Usage: Fuzz/build.sh [extra swift build arguments, e.g. -j 1]
set -uo pipefail
cd "$(dirname "$0")"

harnesses=(FuzzRecipe FuzzIDX FuzzCSV FuzzModelFile FuzzArchitecture)
flags=(
  -c debug --package-path .
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
  -Xcc -fsanitize=fuzzer-no-link,address
)
failed=()
for harness in "${harnesses[@]}"; do
  echo "== building $harness"
  # ld.gold warns once per ASan helper symbol ("Cannot export local symbol"); harmless, dropped.
  swift build "${flags[@]}" --product "$harness" "$@" 2>&1 | { grep -v "Cannot export local symbol" || true; }
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then failed+=("$harness"); fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: failed to build: ${failed[*]}" >&2
  exit 1
fi
echo "built: $(for h in "${harnesses[@]}"; do printf '.build/debug/%s ' "$h"; done)"

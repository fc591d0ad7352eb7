#!/usr/bin/env bash
# Paired rounds of `distill bench` for two builds of distill (before and after a change), run
# alternately so that load which changes between rounds hits both alike:
#   scripts/bench-paired.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [-- extra bench options]
# e.g. scripts/bench-paired.sh /tmp/distill-before .build/release/distill 6 -- --threads 1 --quick
# Prints, per workload, the ratio after/before of samples/s in each round and its min/median/max
# (above 1: the change is faster). Needs python3 (standard library only).
set -euo pipefail
before="$1"; after="$2"; rounds="${3:-5}"
shift $(( $# >= 3 ? 3 : $# )); [ "${1:-}" = "--" ] && shift
extra=("$@")
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
for ((r = 1; r <= rounds; r++)); do
  # Alternate which build goes first, so neither always gets the warmer or quieter slot.
  if (( r % 2 )); then order=(before after); else order=(after before); fi
  for which in "${order[@]}"; do
    binary="$before"; [ "$which" = after ] && binary="$after"
    "$binary" bench --json "${extra[@]}" > "$work/$which-$r.json"
  done
  echo "round $r of $rounds done" >&2
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def load(which, r):
    with open(f"{work}/{which}-{r}.json") as f: return json.load(f)["results"]
names = list(load("before", 1).keys())
print(f"{'workload':<22} {'median before':>14} {'median after':>13}   ratio after/before: min / median / max, per round")
for name in names:
    b = [load("before", r)[name]["samples_per_s"] for r in range(1, rounds + 1)]
    a = [load("after", r)[name]["samples_per_s"] for r in range(1, rounds + 1)]
    ratios = [x / y for x, y in zip(a, b)]
    print(f"{name:<22} {statistics.median(b):>14.1f} {statistics.median(a):>13.1f}   "
          f"{min(ratios):.3f} / {statistics.median(ratios):.3f} / {max(ratios):.3f}   "
          + " ".join(f"{x:.3f}" for x in ratios))
PY

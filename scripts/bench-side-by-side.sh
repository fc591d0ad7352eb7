#!/usr/bin/env bash
# Runs PyTorch's reference benchmark and ours back to back on this machine, with the same
# thread count, and prints our figures with the PyTorch figure and the ratio beside each.
#
#   scripts/bench-side-by-side.sh [THREADS] [PYTHON] [PEERS_DIR]
#
# PYTHON must have torch (default /tmp/torchref/bin/python; set-up:
#   python3 -m venv /tmp/torchref && /tmp/torchref/bin/pip install torch numpy h5py).
# PEERS_DIR holds torch_bench.py (default ../shared/peers). Takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
python="${2:-/tmp/torchref/bin/python}"
peers="${3:-../shared/peers}"

[ -x "$python" ] || { echo "error: $python not found; see the set-up line at the top of this script" >&2; exit 1; }
[ -f "$peers/torch_bench.py" ] || { echo "error: $peers/torch_bench.py not found; pass the folder as the third argument" >&2; exit 1; }

swift build -c release --product distill >/dev/null
torch_json="$(mktemp)"
trap 'rm -f "$torch_json"' EXIT
date -u +"measured %Y-%m-%d %H:%M UTC on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$python" "$peers/torch_bench.py" --threads "$threads" --json > "$torch_json"
"$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print('PyTorch', d['meta']['torch'], 'threads', d['meta']['threads'])" "$torch_json"
.build/release/distill bench --threads "$threads" --peer "$torch_json"

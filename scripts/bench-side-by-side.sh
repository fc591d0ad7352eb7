#!/usr/bin/env bash
# Runs PyTorch's reference benchmark (scripts/torch_bench.py) and ours back to back on this
# machine, with the same thread count, and prints our figures with the PyTorch figure and the
# ratio beside each.
#
#   scripts/bench-side-by-side.sh [THREADS] [PYTHON]
#
# THREADS defaults to 2. PYTHON is a Python interpreter that has torch: the second argument,
# else $PYTHON, else python3. To set one up in a folder of your choice (here .venv-torch at the
# repository root, which git ignores):
#   python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy h5py
#   scripts/bench-side-by-side.sh 2 .venv-torch/bin/python
# Takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
python="${2:-${PYTHON:-python3}}"
torch_bench="scripts/torch_bench.py"

command -v "$python" >/dev/null 2>&1 || {
  echo "error: $python not found; see the set-up lines at the top of $0" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null || {
  echo "error: $python cannot import torch; see the set-up lines at the top of $0" >&2; exit 1; }

swift build -c release --product distill >/dev/null
torch_json="$(mktemp)"
trap 'rm -f "$torch_json"' EXIT
date -u +"measured %Y-%m-%d %H:%M UTC on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$python" "$torch_bench" --threads "$threads" --json > "$torch_json"
"$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print('PyTorch', d['meta']['torch'], 'threads', d['meta']['threads'])" "$torch_json"
.build/release/distill bench --threads "$threads" --peer "$torch_json"

#!/usr/bin/env bash
# Paired rounds against PyTorch's reference script: in each round PyTorch's torch_bench.py and
# `distill bench` run one after the other (the order alternating between rounds), with the same
# thread count, so load that changes between rounds hits both alike. Prints, per workload, our
# samples/s over PyTorch's in each round and their min / median / max, and the same for
# bf16-mixed against PyTorch's bfloat16 autocast and against our f32.
#
#   scripts/bench-vs-torch.sh THREADS ROUNDS PYTHON [-- extra distill bench options]
#   e.g. scripts/bench-vs-torch.sh 1 5 .venv-torch/bin/python -- --quick
#
# PYTHON must have torch (see scripts/bench-side-by-side.sh for the set-up); with --quick in the
# extra options both tools run their quick settings. Needs python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="$1"; rounds="$2"; python="$3"
shift 3; [ "${1:-}" = "--" ] && shift
extra=("$@")
torch_extra=()
for option in "${extra[@]}"; do [ "$option" = "--quick" ] && torch_extra+=(--quick); done
"$python" -c "import torch" 2>/dev/null || { echo "error: $python cannot import torch" >&2; exit 1; }
swift build -c release --product distill >/dev/null
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
ours=(.build/release/distill bench --json --threads "$threads"
      --only mlp_1200,mlp_800,kd_step,cnn,cnn_bn,infer_mlp_1200,infer_mlp_800 --precision f32,bf16-mixed "${extra[@]}")
for ((r = 1; r <= rounds; r++)); do
  if (( r % 2 )); then
    "$python" scripts/torch_bench.py --threads "$threads" --json "${torch_extra[@]}" > "$work/torch-$r.json"
    "${ours[@]}" > "$work/ours-$r.json"
  else
    "${ours[@]}" > "$work/ours-$r.json"
    "$python" scripts/torch_bench.py --threads "$threads" --json "${torch_extra[@]}" > "$work/torch-$r.json"
  fi
  echo "round $r of $rounds done" >&2
done
python3 - "$work" "$rounds" "$threads" <<'PY'
import json, statistics, sys
work, rounds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(who, r):
    with open(f"{work}/{who}-{r}.json") as f: return json.load(f)["results"]
def row(name, ours_key, peer, peer_key):
    ratios = []
    for r in range(1, rounds + 1):
        a, b = load("ours", r), load(peer, r)
        if ours_key in a and peer_key in b: ratios.append(a[ours_key]["samples_per_s"] / b[peer_key]["samples_per_s"])
    if not ratios: return
    ours_median = statistics.median(load("ours", r)[ours_key]["samples_per_s"] for r in range(1, rounds + 1))
    s = sorted(ratios)
    print(f"| {name} | {ours_median:,.0f} | {min(s):.2f} / {statistics.median(s):.2f} / {max(s):.2f} | {', '.join(f'{x:.2f}' for x in ratios)} |")
print(f"{threads} thread(s), {rounds} alternating rounds")
print("| workload | ours, median samples/s | ratio min / median / max | per round |")
print("| --- | ---: | --- | --- |")
for w in ["mlp_1200", "mlp_800", "kd_step", "cnn", "cnn_bn", "infer_mlp_1200", "infer_mlp_800"]:
    row(f"{w} / PyTorch", w, "torch", w)
row("mlp_1200 bf16-mixed / PyTorch bf16 autocast", "mlp_1200/bf16-mixed", "torch", "mlp_1200_bf16")
for w in ["mlp_1200", "mlp_800", "kd_step", "cnn", "cnn_bn"]:
    row(f"{w} bf16-mixed / our f32", f"{w}/bf16-mixed", "ours", w)
rss = [load("ours", r)[k]["peak_rss_mb"] for r in range(1, rounds + 1) for k in load("ours", r)]
trss = [load("torch", r)[k]["peak_rss_mb"] for r in range(1, rounds + 1) for k in load("torch", r)]
print(f"peak RSS: ours {max(rss):.0f} MB, PyTorch {max(trss):.0f} MB, ratio {max(rss) / max(trss):.2f}")
PY

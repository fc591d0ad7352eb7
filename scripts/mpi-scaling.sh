#!/usr/bin/env bash
# Data-parallel scaling on this machine (docs/DESIGN.md → "Data parallelism"; README →
# "Data-parallel training"), with the MPI build (.build-mpi/release/distill):
#   1. the all-reduce time against the message size, 2 ranks (`distill allreduce-bench`), to fit
#      the ring model's latency and bandwidth on loopback (scripts/mpi_scaling_model.py);
#   2. paired rounds of one training epoch, per workload: 1 rank × 2 threads, 2 ranks × 1 thread
#      with the gradient sums overlapping backward, and 2 ranks × 1 thread without overlap;
#      the MNIST 800-800 MLP student and the Fashion-MNIST CNN (the teacher of fashion-cnn-kd),
#      each alone (no teacher: the step is the model's own), batch 128, f32;
#   3. the fit and the projection table (scripts/mpi_scaling_model.py).
#
#   scripts/mpi-scaling.sh MNIST_DIR FASHION_MNIST_DIR [OUT] [ROUNDS]
#
# OUT defaults to runs/mpi-scaling, ROUNDS to 3. Each run's metrics.jsonl is kept; OUT/epochs.csv
# has one line per run (workload, config, round, epoch seconds, allreduce seconds, steps).
set -euo pipefail
mnist="$1"; fashion="$2"; out="${3:-runs/mpi-scaling}"; rounds="${4:-3}"
distill="${DISTILL:-.build-mpi/release/distill}"
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
mpirun --oversubscribe -np 2 "$distill" allreduce-bench > "$out/allreduce.csv"
cat "$out/allreduce.csv"

cat > "$out/mlp.yaml" <<RECIPE
name: scaling-mlp
seed: 1
data: {dataset: mnist, validation: 5000}
student:
  model: {mlp: {hidden: [800, 800]}}
  train: {epochs: 1, batch_size: 128, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}}
distillation: {method: none}
RECIPE
cat > "$out/cnn.yaml" <<RECIPE
name: scaling-cnn
seed: 1
data: {dataset: fashion-mnist, validation: 5000}
student:
  model: {cnn: {channels: [32, 64], hidden: [128], batch_norm: true, dropout: 0.3}}
  train: {epochs: 1, batch_size: 128, optimizer: {sgd: {lr: 0.05, momentum: 0.9}}}
distillation: {method: none}
RECIPE

echo "workload,config,round,epoch_seconds,allreduce_seconds,samples" > "$out/epochs.csv"
for round in $(seq 1 "$rounds"); do
  for workload in mlp cnn; do
    data=$([ "$workload" = mlp ] && echo "$mnist" || echo "$fashion")
    for config in 1x2 2x1 2x1-no-overlap; do
      run="$out/$workload-$config-r$round"
      rm -rf "$run"
      case $config in
        1x2) "$distill" train "$out/$workload.yaml" --data "$data" --out "$run" --threads 2 --quiet > /dev/null ;;
        2x1) mpirun --oversubscribe -np 2 "$distill" train "$out/$workload.yaml" --data "$data" --out "$run" \
               --threads 1 --quiet > /dev/null ;;
        2x1-no-overlap) mpirun --oversubscribe -np 2 "$distill" train "$out/$workload.yaml" --data "$data" \
               --out "$run" --threads 1 --quiet --no-overlap > /dev/null ;;
      esac
      python3 - "$run/metrics.jsonl" "$workload" "$config" "$round" >> "$out/epochs.csv" <<'PY'
import json, sys
line = json.loads(open(sys.argv[1]).readline())
print(f"{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{line['seconds']},{line['allreduce_seconds'] or 0},{line['samples']}")
PY
      tail -1 "$out/epochs.csv"
    done
  done
done
python3 scripts/mpi_scaling_model.py "$out"

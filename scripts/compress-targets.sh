#!/usr/bin/env bash
# The compression targets (README, "Compression"), measured on the distilled students of the
# methods table (recipes/methods/README.md): for each seed k, the KD students
# runs/methods/{mlp,cnn}-kd-seed<k>/student.h5 are loaded (student.init, 0 epochs) and
# compressed three ways, one run each:
#   int8        compress: [quantize]                                      (post-training)
#   sparse      compress: [prune 0.9, gradual, 10 epochs, lr × 0.2; quantize]
#   structured  compress: [prune structured 0.5, gradual, 5 epochs, lr × 0.2; quantize]
# each fine-tuning stage with KD from the methods table's teacher.
#
#   scripts/compress-targets.sh FASHION_MNIST_DIR [OUT] [SEEDS] [JOBS]
#
# OUT defaults to runs/compress, SEEDS to "1 2 3", JOBS (runs at a time, each --threads 1) to
# 2; STUDENTS (environment) to "mlp cnn", KINDS to "int8 sparse structured", DISTILL to
# .build/release/distill. Finished runs are skipped, so the script continues after an interruption (an interrupted
# run is started again: delete its folder or `distill resume` it). Then
#   distill compare OUT/* --out report/compress
# tabulates them.
set -euo pipefail
data="$1"; out="${2:-runs/compress}"; seeds="${3:-1 2 3}"; jobs="${4:-2}"
distill="${DISTILL:-.build/release/distill}"
mkdir -p "$out/recipes"
student_mlp='  model: {mlp: {hidden: [800, 800]}}
  train:
    epochs: 0
    batch_size: 128
    optimizer: {sgd: {lr: 0.05, momentum: 0.9, nesterov: true}}
    schedule: {cosine: {}}'
student_cnn='  model: {cnn: {channels: [16, 32], hidden: [64], batch_norm: true}}
  train:
    epochs: 0
    batch_size: 128
    optimizer: {sgd: {lr: 0.05, momentum: 0.9, nesterov: true}}
    schedule: {cosine: {}}
    augment: {flip: true}'
declare -A stages=(
  [int8]='  - quantize'
  [sparse]='  - prune: {amount: 0.9, epochs: 10, lr_factor: 0.2}
  - quantize'
  [structured]='  - prune: {structure: structured, amount: 0.5, epochs: 5, lr_factor: 0.2}
  - quantize'
)
runs=()
for k in $seeds; do
  for student in ${STUDENTS:-mlp cnn}; do
    init="runs/methods/$student-kd-seed$k/student.h5"
    [ -f "$init" ] || { echo "error: $init is missing: train the methods table's $student-kd recipe with --seed $k first" >&2; exit 1; }
    for kind in ${KINDS:-int8 sparse structured}; do
      name="$student-$kind"
      recipe="$out/recipes/$name-seed$k.yaml"
      body="student_$student"
      cat > "$recipe" <<YAML
# Made by scripts/compress-targets.sh: the methods table's $student-kd student (seed $k), compressed ($kind).
name: compress-$name
seed: $k
data: {dataset: fashion-mnist, validation: 5000}
teacher: {from: checkpoints/fashion-cnn-kd/teacher.h5}
student:
  init: $init
${!body}
distillation: {method: kd, temperature: 4, alpha: 0.9}
precision: f32
compress:
${stages[$kind]}
YAML
      [ -f "$out/$name-seed$k/summary.json" ] || runs+=("$recipe")
    done
  done
done
echo "${#runs[@]} runs to go, $jobs at a time" >&2
printf '%s\n' "${runs[@]}" | xargs -r -P "$jobs" -I{} sh -c '
  recipe="$1"; name=$(basename "$recipe" .yaml)
  "$0" train "$recipe" --data "$2" --threads 1 --quiet --force --out "$3/$name" > "$3/$name.log" 2>&1 \
    && echo "done $name" >&2 || echo "FAILED $name (see $3/$name.log)" >&2
' "$distill" {} "$data" "$out"

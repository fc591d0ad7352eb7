#!/usr/bin/env python3
"""The data-parallel scaling model (scripts/mpi-scaling.sh writes its inputs).

Reads OUT/allreduce.csv (distill allreduce-bench, 2 ranks) and OUT/epochs.csv (paired epochs),
fits the ring all-reduce model on loopback,

    t(S, N) = 2(N-1) * alpha + 2(N-1)/N * S / B        (S bytes, N ranks; one bucket)

and prints (and writes OUT/scaling.md): the fit and its residuals, the paired epochs (median,
min, max over the rounds; ratios per round), the measured all-reduce time per step against the
model, and the projection for 4-64 nodes at 10, 25 and 100 Gb/s. Plain Python 3, no packages.
"""
import csv, json, math, os, statistics, sys

out = sys.argv[1] if len(sys.argv) > 1 else "runs/mpi-scaling"
lines = []
def say(text=""):
    print(text)
    lines.append(text)

# --- 1. the fit (N = 2: t = 2 alpha + S / B), least squares on the medians -------------------
rows = list(csv.DictReader(open(os.path.join(out, "allreduce.csv"))))
# Fitted on the sizes gradient buckets have (up to 4 MiB, 1 MiB by default): larger messages
# leave the caches and run at memory speed, which the table shows beside the model.
fitted = [r for r in rows if float(r["bytes"]) <= 4 * 2 ** 20]
xs = [float(r["bytes"]) for r in fitted]
ys = [float(r["seconds_median"]) for r in fitted]
n = len(xs)
mx, my = sum(xs) / n, sum(ys) / n
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
bandwidth = 1 / slope
# The latency from the smallest message, less its bytes' share (the line's own intercept is
# within noise of 0 on shared memory).
alpha = max((ys[0] - xs[0] / bandwidth) / 2, 1e-7)
say("## Data-parallel scaling (scripts/mpi-scaling.sh)")
say()
say(f"All-reduce on loopback, 2 ranks, Open MPI shared memory (vader): fitted on 4 KiB - 4 MiB "
    f"(the bucket sizes), alpha = {alpha * 1e6:.2f} us per step of the ring, B = {bandwidth / 1e9:.2f} GB/s; "
    f"16 and 64 MiB messages leave the caches and run slower than the model.")
say()
say("| bytes | measured median (ms) | min (ms) | model (ms) | measured / model |")
say("| ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    s = float(r["bytes"])
    model = 2 * alpha + s / bandwidth
    say(f"| {int(s)} | {float(r['seconds_median']) * 1e3:.3f} | {float(r['seconds_min']) * 1e3:.3f} | "
        f"{model * 1e3:.3f} | {float(r['seconds_median']) / model:.2f} |")
say()

# --- 2. the paired epochs -----------------------------------------------------------------------
epochs = list(csv.DictReader(open(os.path.join(out, "epochs.csv"))))
def parameters(workload):
    for name in sorted(os.listdir(out)):
        path = os.path.join(out, name, "summary.json")
        if name.startswith(workload + "-") and os.path.exists(path):
            return json.load(open(path))["student"]["parameters"]
    return None

say("Paired epochs (one epoch of 55,000 samples, batch 128, f32, release build; 1 x 2 = one rank with "
    "2 threads, 2 x 1 = two ranks with 1 thread each; seconds are the epoch's training and validation):")
say()
say("| workload | parameters | 1 x 2 (s) | 2 x 1 (s) | 2 x 1, no overlap (s) | 1x2 / 2x1 per round | "
    "overlap gain per round | all-reduce per step (ms), in training | transport model |")
say("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |")
summary = {}
for workload in ["mlp", "cnn"]:
    by = {}
    for e in epochs:
        if e["workload"] == workload:
            by.setdefault(e["config"], {})[e["round"]] = e
    if not by:
        continue
    def med(config):
        v = [float(e["epoch_seconds"]) for e in by.get(config, {}).values()]
        return (statistics.median(v), min(v), max(v)) if v else (math.nan,) * 3
    rounds = sorted(set(by.get("1x2", {})) & set(by.get("2x1", {})))
    ratios = [float(by["1x2"][r]["epoch_seconds"]) / float(by["2x1"][r]["epoch_seconds"]) for r in rounds]
    gains = [float(by["2x1-no-overlap"][r]["epoch_seconds"]) / float(by["2x1"][r]["epoch_seconds"])
             for r in rounds if r in by.get("2x1-no-overlap", {})]
    samples = float(next(iter(by["2x1"].values()))["samples"])
    steps = math.ceil(samples / 128)
    per_step = statistics.median(float(e["allreduce_seconds"]) for e in by["2x1"].values()) / steps
    p = parameters(workload) or 0
    grad_bytes = 4 * p
    buckets = max(1, math.ceil(grad_bytes / 2 ** 20))
    model = buckets * 2 * alpha + grad_bytes / bandwidth
    a, b, c = med("1x2"), med("2x1"), med("2x1-no-overlap")
    fmt = lambda t: f"{t[0]:.1f} ({t[1]:.1f}-{t[2]:.1f})"
    say(f"| {workload} | {p:,} | {fmt(a)} | {fmt(b)} | {fmt(c)} | "
        f"{', '.join(f'{x:.2f}' for x in ratios)} | {', '.join(f'{x:.2f}' for x in gains)} | "
        f"{per_step * 1e3:.2f} | {model * 1e3:.2f} |")
    # Compute per sample on one node (this machine, its best configuration), for the projection.
    summary[workload] = dict(parameters=p, seconds_per_sample=min(a[0], b[0]) / samples)
say()
say("In training, rank 0's all-reduce time per step (`allreduce_seconds` / steps) includes waiting "
    "for the other rank to finish its backward pass; the transport model is the fitted loopback "
    "model for the step's buckets.")
say()

# --- 3. the projection -----------------------------------------------------------------------------
links = [(10, 25e-6), (25, 15e-6), (100, 5e-6)]
say("Projection (weak scaling, as DDP and Horovod are used: each node keeps a batch of 128, so N "
    "nodes take global batches of 128 N and an epoch of 55,000 samples has 55,000 / (128 N) steps; "
    "one rank per node, each node as fast as this 2-core machine's best configuration above; the "
    "ring all-reduce of the gradients in 1 MiB buckets over the link, at 80% of its line rate, with "
    "a per-message latency of 25 us at 10 Gb/s, 15 us at 25 Gb/s (TCP) and 5 us at 100 Gb/s "
    "(RDMA); no overlap with backward (what overlap buys is measured above), no stragglers, "
    "the data already on every node). Time per epoch (s) and scaling efficiency "
    "(one node's epoch / (N x the N-node epoch) = compute / (compute + all-reduce) per step):")
say()
header = "| workload | link | " + " | ".join(f"{n} nodes" for n in [4, 8, 16, 32, 64]) + " |"
say(header)
say("| --- | --- |" + " ---: |" * 5)
for workload, s in summary.items():
    step_compute = 128 * s["seconds_per_sample"]
    grad_bytes = 4 * s["parameters"]
    buckets = max(1, math.ceil(grad_bytes / 2 ** 20))
    for gbps, latency in links:
        cells = []
        for nodes in [4, 8, 16, 32, 64]:
            bw = gbps * 1e9 / 8 * 0.8
            comm = buckets * 2 * (nodes - 1) * latency + 2 * (nodes - 1) / nodes * grad_bytes / bw
            steps = 55000 / (128 * nodes)
            epoch = steps * (step_compute + comm)
            efficiency = step_compute / (step_compute + comm)
            cells.append(f"{epoch:.2f} s, {efficiency * 100:.0f}%")
        say(f"| {workload} | {gbps} Gb/s | " + " | ".join(cells) + " |")
say()
say(f"One node's epoch: " + ", ".join(
    f"{w} {55000 * s['seconds_per_sample']:.1f} s" for w, s in summary.items()) + ".")
open(os.path.join(out, "scaling.md"), "w").write("\n".join(lines) + "\n")

#!/usr/bin/env python3
"""Reference training/inference throughput of PyTorch on CPU, for side-by-side
comparison with swift-distill's benchmark on the same machine.

Set-up (once; the virtual environment may live in any folder you choose, e.g. .venv-torch at
the repository root, which git ignores):
                python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy h5py
Run:            .venv-torch/bin/python scripts/torch_bench.py [--threads 2] [--quick] [--json]
Side by side with `distill bench`: scripts/bench-side-by-side.sh (see its header).

Workloads (synthetic data of MNIST shape, SGD momentum 0.9, lr 0.01):
  mlp_1200   train  784-1200-1200-10 ReLU, batch 128   (Hinton 2015 teacher)
  mlp_800    train  784-800-800-10 ReLU, batch 128     (Hinton 2015 student)
  kd_step    train  frozen mlp_1200 forward (no grad) + mlp_800 forward/backward,
                    loss = a*T^2*KL(soft_t || soft_s) + (1-a)*CE, T=4, a=0.9
  cnn        train  conv(1->32,3,p1)+ReLU+maxpool2, conv(32->64,3,p1)+ReLU+maxpool2,
                    linear(3136->128)+ReLU, linear(128->10), batch 128
  cnn_bn     train  cnn with BatchNorm2d after each convolution
  mlp_1200_bf16  mlp_1200 under torch.autocast('cpu', bfloat16)
  infer_mlp_1200 / infer_mlp_800  inference, batch 1024
Each figure: median samples/s over repeats after warm-up; peak RSS of the process so far.
"""
import argparse, json, resource, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(hidden):
    layers, d = [], 784
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


def cnn(bn=False):
    layers = []
    for i, o in ((1, 32), (32, 64)):
        layers.append(nn.Conv2d(i, o, 3, padding=1))
        if bn:
            layers.append(nn.BatchNorm2d(o))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def kd_loss(s, t, y, T=4.0, a=0.9):
    soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
    return a * soft + (1 - a) * F.cross_entropy(s, y)


def timed(step, batch, steps, repeats):
    for _ in range(max(3, steps // 5)):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(batch * steps / (time.perf_counter() - t0))
    return statistics.median(rates), min(rates), max(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    steps, repeats = (20, 3) if args.quick else (50, 5)
    B = 128
    x = torch.randn(B, 784)
    ximg = x.view(B, 1, 28, 28)
    y = torch.randint(0, 10, (B,))
    results = {}

    def train_step_fn(model, inp, autocast=None):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        def step():
            opt.zero_grad(set_to_none=True)
            if autocast:
                with torch.autocast("cpu", dtype=autocast):
                    loss = F.cross_entropy(model(inp), y)
            else:
                loss = F.cross_entropy(model(inp), y)
            loss.backward()
            opt.step()
        return step

    def record(name, r):
        results[name] = {"samples_per_s": round(r[0], 1), "min": round(r[1], 1), "max": round(r[2], 1),
                         "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        if not args.json:
            print(f"{name:16s} {r[0]:10.1f} samples/s  (min {r[1]:.1f}, max {r[2]:.1f})  peak RSS {results[name]['peak_rss_mb']} MB", flush=True)

    record("mlp_1200", timed(train_step_fn(mlp([1200, 1200]), x), B, steps, repeats))
    record("mlp_800", timed(train_step_fn(mlp([800, 800]), x), B, steps, repeats))

    teacher, student = mlp([1200, 1200]).eval(), mlp([800, 800])
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    def kd_step():
        with torch.no_grad():
            t = teacher(x)
        opt.zero_grad(set_to_none=True)
        kd_loss(student(x), t, y).backward()
        opt.step()
    record("kd_step", timed(kd_step, B, steps, repeats))

    record("cnn", timed(train_step_fn(cnn(), ximg), B, max(5, steps // 4), repeats))
    record("cnn_bn", timed(train_step_fn(cnn(bn=True), ximg), B, max(5, steps // 4), repeats))
    record("mlp_1200_bf16", timed(train_step_fn(mlp([1200, 1200]), x, torch.bfloat16), B, steps, repeats))

    xb = torch.randn(1024, 784)
    for name, hidden in (("infer_mlp_1200", [1200, 1200]), ("infer_mlp_800", [800, 800])):
        m = mlp(hidden).eval()
        def infer():
            with torch.no_grad():
                m(xb)
        record(name, timed(infer, 1024, steps, repeats))

    meta = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=1))
    else:
        print(meta)


if __name__ == "__main__":
    main()

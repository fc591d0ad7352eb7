#!/usr/bin/env python3
r"""PyTorch peer of `distill train` for the MNIST and Fashion-MNIST tables in the README.

Trains a teacher, the student alone (baseline) and the student distilled from that teacher,
with the settings of our shipped recipes, written out here as command-line flags (this script
reads no YAML, so that it needs nothing but torch and numpy):

  data      IDX files (raw or .gz), pixels / 255, the last `--validation` samples of a seeded
            permutation held out (as our recipes' `validation: 5000`; not the same samples as
            ours: the peer is an independent implementation, not a replay)
  models    mlp:H1,H2[,dropout=P,input_dropout=Q]  -> Flatten, [Dropout(Q)], (Linear, ReLU,
                                                       [Dropout(P)]) per hidden, Linear
            cnn:C1,C2/H[,bn][,dropout=P]           -> per channel count: Conv3x3(pad 1), [BN],
                                                       ReLU, MaxPool2; Flatten; (Linear H,
                                                       ReLU, [Dropout(P)]); Linear
            (the layer lists our `mlp:` and `cnn:` shorthands expand to)
  training  SGD lr, momentum 0.9, Nesterov, cosine per epoch (lr_e = lr·(1 + cos(π e / E)) / 2),
            batch 128, a fresh seeded order per epoch; augmentation `jitter=K` (shift by up to K
            pixels, zeros shifted in) and `flip` (mirror with probability 1/2)
  KD        α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, y), teacher in eval mode on the
            same augmented batch

Reports last-epoch test errors, one JSON object per seed, and the mean ± sample std at the end.

Set-up (once; the virtual environment may live in any folder you choose, e.g. .venv-torch at
the repository root, which git ignores):
  python3 -m venv .venv-torch && .venv-torch/bin/pip install torch numpy
Example (the mnist-hinton / mnist-student-baseline recipes; --data names the MNIST IDX folder,
the one `distill train --data` takes):
  .venv-torch/bin/python scripts/torch_peer_kd.py --data PATH/TO/mnist \
      --teacher mlp:1200,1200,dropout=0.5,input_dropout=0.2 --teacher-augment jitter=2 \
      --student mlp:800,800 --epochs 30 --temperature 20 --alpha 0.9 --seeds 1,2,3
"""
import argparse, gzip, json, math, os, statistics, struct, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(folder, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
            dims = raw[3]
            shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise SystemExit(f"{folder}: no {stem}[.gz]; --data must name a folder of IDX files")


def load(folder, validation, seed):
    x = torch.from_numpy(read_idx(folder, "train-images-idx3-ubyte").astype(np.float32) / 255)
    y = torch.from_numpy(read_idx(folder, "train-labels-idx1-ubyte").astype(np.int64))
    tx = torch.from_numpy(read_idx(folder, "t10k-images-idx3-ubyte").astype(np.float32) / 255)
    ty = torch.from_numpy(read_idx(folder, "t10k-labels-idx1-ubyte").astype(np.int64))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train = order[: len(x) - validation]
    return x[train].unsqueeze(1), y[train], tx.unsqueeze(1), ty


def parse_model(text):
    kind, _, rest = text.partition(":")
    parts = rest.split(",")
    options = dict(p.split("=") if "=" in p else (p, "1") for p in parts if not p[0].isdigit() and "/" not in p)
    if kind == "mlp":
        hidden = [int(p) for p in parts if p.isdigit()]
        layers, width = [nn.Flatten()], 784
        if "input_dropout" in options:
            layers.append(nn.Dropout(float(options["input_dropout"])))
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if "dropout" in options:
                layers.append(nn.Dropout(float(options["dropout"])))
            width = h
        return nn.Sequential(*layers, nn.Linear(width, 10))
    if kind == "cnn":
        channels_part = next(p for p in parts if "/" in p)
        first, _, hidden = channels_part.partition("/")
        channels = [int(p) for p in parts[: parts.index(channels_part)] if p.isdigit()] + [int(first)]
        layers, c, side = [], 1, 28
        for out in channels:
            layers.append(nn.Conv2d(c, out, 3, padding=1))
            if "bn" in options:
                layers.append(nn.BatchNorm2d(out))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            c, side = out, side // 2
        layers += [nn.Flatten(), nn.Linear(c * side * side, int(hidden)), nn.ReLU()]
        if "dropout" in options:
            layers.append(nn.Dropout(float(options["dropout"])))
        return nn.Sequential(*layers, nn.Linear(int(hidden), 10))
    raise SystemExit(f"unknown model '{text}'")


def augment(x, spec, generator):
    if not spec:
        return x
    options = dict(p.split("=") if "=" in p else (p, "1") for p in spec.split(","))
    k = int(options.get("jitter", 0))
    if k:
        n = len(x)
        shifts = torch.randint(-k, k + 1, (n, 2), generator=generator)
        padded = F.pad(x, (k, k, k, k))
        rows = (torch.arange(28).view(1, 28) + k - shifts[:, :1]).view(n, 1, 28, 1).expand(n, 1, 28, 28 + 2 * k)
        x = padded.gather(2, rows)
        cols = (torch.arange(28).view(1, 28) + k - shifts[:, 1:]).view(n, 1, 1, 28).expand(n, 1, 28, 28)
        x = x.gather(3, cols)
    if "flip" in options:
        mirror = torch.rand(len(x), generator=generator) < 0.5
        x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(3), x)
    return x


def train(model, data, epochs, lr, seed, augment_spec, teacher=None, temperature=4.0, alpha=0.9):
    x, y = data
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    generator = torch.Generator().manual_seed(seed)
    if teacher is not None:
        teacher.eval()
    for epoch in range(epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr * (1 + math.cos(math.pi * epoch / epochs)) / 2
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 128):
            index = order[start:start + 128]
            inputs, labels = augment(x[index], augment_spec, generator), y[index]
            logits = model(inputs)
            loss = F.cross_entropy(logits, labels)
            if teacher is not None:
                with torch.no_grad():
                    soft_targets = F.softmax(teacher(inputs) / temperature, 1)
                soft = F.kl_div(F.log_softmax(logits / temperature, 1), soft_targets, reduction="batchmean")
                loss = alpha * temperature * temperature * soft + (1 - alpha) * loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model


def test_errors(model, x, y):
    model.eval()
    with torch.no_grad():
        return int((model(x).argmax(1) != y).sum())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--teacher", required=True)
    p.add_argument("--student", required=True)
    p.add_argument("--epochs", type=int, default=30, help="student epochs (and teacher's unless --teacher-epochs)")
    p.add_argument("--teacher-epochs", type=int)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--teacher-augment", default="")
    p.add_argument("--student-augment", default="", help="for the baseline and the distilled student alike")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--validation", type=int, default=5000)
    p.add_argument("--seeds", default="1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also append each seed's result to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        started = time.time()
        x, y, tx, ty = load(args.data, args.validation, seed)
        torch.manual_seed(seed)
        teacher = train(parse_model(args.teacher), (x, y), args.teacher_epochs or args.epochs, args.lr, seed + 100,
                        args.teacher_augment)
        torch.manual_seed(seed + 1000)
        baseline = train(parse_model(args.student), (x, y), args.epochs, args.lr, seed + 200, args.student_augment)
        torch.manual_seed(seed + 1000)  # the distilled student starts from the baseline's initial weights
        student = train(parse_model(args.student), (x, y), args.epochs, args.lr, seed + 200, args.student_augment,
                        teacher=teacher, temperature=args.temperature, alpha=args.alpha)
        result = {"seed": seed, "teacher_errors": test_errors(teacher, tx, ty),
                  "baseline_errors": test_errors(baseline, tx, ty), "kd_errors": test_errors(student, tx, ty),
                  "test_samples": len(ty), "seconds": round(time.time() - started, 1), "args": vars(args)}
        print(json.dumps(result), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(result) + "\n")
        results.append(result)
    for key in ("teacher_errors", "baseline_errors", "kd_errors"):
        values = [r[key] for r in results]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{key}: {statistics.mean(values):.1f} ± {spread:.1f}  {values}")


if __name__ == "__main__":
    main()

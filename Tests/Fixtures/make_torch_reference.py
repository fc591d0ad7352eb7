#!/usr/bin/env python3
"""Generate torch_reference.json: PyTorch reference values for the Swift tests.

Run by hand (never by the tests), with a Python that has torch installed:

    python3 Tests/Fixtures/make_torch_reference.py

Writes Tests/Fixtures/torch_reference.json next to this script. All tensors
are float32; values are written with 9 significant digits (enough to
round-trip float32 exactly). Tensors are stored as {"shape": [...],
"values": [...]} with values flattened row-major.
"""

import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_reference.json")


def fl(v):
    return float(f"{float(v):.9g}")


def tensor_json(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [fl(v) for v in t.reshape(-1).tolist()]}


def state_json(model):
    return {k: tensor_json(v) for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def make_model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                             nn.Linear(16, 10))
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    if kind == "cnn_bn":
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, stride=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.AvgPool2d(2),
                             nn.Conv2d(4, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.Flatten(), nn.Linear(32, 10))
    raise ValueError(kind)


def make_optimizer(spec, params):
    t = spec["type"]
    if t == "sgd":
        return torch.optim.SGD(params, lr=spec["lr"], momentum=spec["momentum"],
                               dampening=spec["dampening"], nesterov=spec["nesterov"],
                               weight_decay=spec["weight_decay"])
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[t]
    return cls(params, lr=spec["lr"], betas=tuple(spec["betas"]), eps=spec["eps"],
               weight_decay=spec["weight_decay"])


def sgd(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0):
    return {"type": "sgd", "lr": lr, "momentum": momentum, "dampening": 0.0,
            "nesterov": nesterov, "weight_decay": weight_decay}


def adam(kind="adam", lr=1e-2, weight_decay=0.0):
    return {"type": kind, "lr": lr, "betas": [0.9, 0.999], "eps": 1e-8,
            "weight_decay": weight_decay}


def ce(ls=0.0):
    return {"type": "ce", "label_smoothing": ls}


CASES = [
    ("mlp_sgd", "mlp", ce(), sgd(), 3),
    ("mlp_sgd_nesterov_wd", "mlp", ce(), sgd(nesterov=True, weight_decay=5e-4), 3),
    ("mlp_sgd_plain", "mlp", ce(), sgd(momentum=0.0), 1),
    ("mlp_adam", "mlp", ce(), adam("adam"), 3),
    ("mlp_adam_wd", "mlp", ce(), adam("adam", weight_decay=1e-2), 3),
    ("mlp_adamw", "mlp", ce(), adam("adamw", weight_decay=1e-2), 3),
    ("mlp_ce_label_smoothing", "mlp", ce(0.1), sgd(), 3),
    ("mlp_kd", "mlp", {"type": "kd", "temperature": 4.0, "alpha": 0.9}, sgd(), 3),
    ("cnn_sgd", "cnn", ce(), sgd(), 3),
    ("cnn_bn_sgd", "cnn_bn", ce(), sgd(), 3),
]


def run_case(name, kind, loss_spec, opt_spec, steps):
    torch.manual_seed(0)
    model = make_model(kind)
    model.train()
    if kind == "mlp":
        x = torch.randn(16, 64)
        n = 16
    else:
        x = torch.randn(8, 1, 8, 8)
        n = 8
    labels = torch.randint(0, 10, (n,))
    teacher = torch.randn(n, 10) * 3 if loss_spec["type"] == "kd" else None

    case = {"name": name, "model": kind, "train": True, "loss": loss_spec,
            "optimizer": opt_spec, "steps": steps, "input": tensor_json(x),
            "labels": labels.tolist()}
    if teacher is not None:
        case["teacher_logits"] = tensor_json(teacher)
    case["initial"] = state_json(model)

    opt = make_optimizer(opt_spec, model.parameters())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        s = model(x)
        if loss_spec["type"] == "ce":
            loss = F.cross_entropy(s, labels, label_smoothing=loss_spec["label_smoothing"])
        else:
            T, a = loss_spec["temperature"], loss_spec["alpha"]
            kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(teacher / T, 1),
                          reduction="batchmean")
            loss = a * T * T * kl + (1 - a) * F.cross_entropy(s, labels)
        loss.backward()
        opt.step()
        losses.append(fl(loss.item()))
    case["losses"] = losses
    case["final"] = state_json(model)
    return case


def schedule_lrs(make_sched, epochs=12, base_lr=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(fl(opt.param_groups[0]["lr"]))
        opt.step()
        sched.step()
    return lrs


def schedules():
    S = torch.optim.lr_scheduler
    return {
        "step": {"params": {"step_size": 3, "gamma": 0.1},
                 "lrs": schedule_lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.1))},
        "cosine": {"params": {"T_max": 10, "eta_min": 0.001},
                   "lrs": schedule_lrs(lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001))},
        "warmup_linear": {"params": {"start_factor": 0.1, "end_factor": 1.0, "total_iters": 4},
                          "lrs": schedule_lrs(lambda o: S.LinearLR(o, start_factor=0.1,
                                                                   end_factor=1.0, total_iters=4))},
    }


def functions():
    x = torch.linspace(-5, 5, 41, dtype=torch.float32)
    torch.manual_seed(0)
    rows = torch.randn(3, 5) * 3
    return {
        "x": tensor_json(x)["values"],
        "gelu": tensor_json(F.gelu(x))["values"],
        "tanh": tensor_json(torch.tanh(x))["values"],
        "sigmoid": tensor_json(torch.sigmoid(x))["values"],
        "softmax_rows": {"input": tensor_json(rows),
                         "softmax": tensor_json(F.softmax(rows, 1))["values"],
                         "log_softmax": tensor_json(F.log_softmax(rows, 1))["values"]},
    }


def main():
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    out = {"torch": torch.__version__,
           "cases": [run_case(*c) for c in CASES],
           "schedules": schedules(),
           "functions": functions()}
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate prune_reference.json: the masks torch.nn.utils.prune chooses, for PruningTests.

Run by hand (never by the tests), with a Python that has torch installed:

    python3 Tests/Fixtures/make_prune_reference.py

A Linear(6, 5) and a Linear(5, 3) with fixed random weights (rounded to float32), pruned
per layer with prune.l1_unstructured and over both with prune.global_unstructured
(L1Unstructured). The amounts are chosen so that amount × count falls on a half for one layer
(15 × 0.3 = 4.5), where PyTorch rounds half to even. Tensors are {"shape", "values"} flattened
row-major.
"""

import json
import os

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prune_reference.json")
torch.manual_seed(3)


def tj(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [float(f"{float(v):.9g}") for v in t.reshape(-1).tolist()]}


def layers():
    torch.manual_seed(3)
    a, b = nn.Linear(6, 5), nn.Linear(5, 3)
    return a, b


cases = []
a, b = layers()
weights = [tj(a.weight), tj(b.weight)]
for amount in [0.3, 0.5, 0.9]:
    a, b = layers()
    prune.l1_unstructured(a, "weight", amount=amount)
    prune.l1_unstructured(b, "weight", amount=amount)
    cases.append({"scope": "layer", "amount": amount, "masks": [tj(a.weight_mask), tj(b.weight_mask)]})
    a, b = layers()
    prune.global_unstructured([(a, "weight"), (b, "weight")], pruning_method=prune.L1Unstructured, amount=amount)
    cases.append({"scope": "global", "amount": amount, "masks": [tj(a.weight_mask), tj(b.weight_mask)]})

with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "weights": weights, "cases": cases}, f, indent=1)
    f.write("\n")
print("wrote", OUT)

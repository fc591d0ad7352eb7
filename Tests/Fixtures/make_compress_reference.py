#!/usr/bin/env python3
"""Generate compress_reference.json: structured pruning and SVD as PyTorch does them, for
StructuredCompressionTests.

Run by hand (never by the tests), with a Python that has torch installed:

    python3 Tests/Fixtures/make_compress_reference.py

- ln_structured: a Linear(7, 6) and a Conv2d(3, 5, 3) with fixed random weights, pruned with
  torch.nn.utils.prune.ln_structured(n=1, dim=0) at amounts whose amount × rows falls on a half
  (6 × 0.25 = 1.5, 5 × 0.5 = 2.5: PyTorch rounds half to even) and elsewhere. The masks, row by
  row (1 kept, 0 pruned).
- svd: a 9 × 5 and a 4 × 8 matrix, their singular values (torch.linalg.svdvals) and the rank-2
  truncation U[:, :2] diag(s[:2]) Vh[:2].
Tensors are {"shape", "values"} flattened row-major.
"""

import json
import os

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compress_reference.json")


def tj(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [float(f"{float(v):.9g}") for v in t.reshape(-1).tolist()]}


def rows(mask):
    return [int(m) for m in mask.reshape(mask.shape[0], -1)[:, 0].tolist()]


structured = []
for make in [lambda: nn.Linear(7, 6), lambda: nn.Conv2d(3, 5, 3)]:
    torch.manual_seed(5)
    weight = make().weight.detach().clone()
    for amount in [0.25, 0.5, 0.7]:
        torch.manual_seed(5)
        layer = make()
        prune.ln_structured(layer, "weight", amount=amount, n=1, dim=0)
        structured.append({"weight": tj(weight), "amount": amount, "kept_rows": rows(layer.weight_mask)})

svd = []
torch.manual_seed(7)
for shape in [(9, 5), (4, 8)]:
    a = torch.randn(*shape, dtype=torch.float64).to(torch.float32).to(torch.float64)
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    svd.append({"matrix": tj(a), "singular_values": tj(s), "rank2": tj(u[:, :2] @ torch.diag(s[:2]) @ vh[:2])})

with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "structured": structured, "svd": svd}, f, indent=1)
    f.write("\n")
print("wrote", OUT)

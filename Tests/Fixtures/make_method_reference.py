#!/usr/bin/env python3
"""Generate method_reference.json: each distillation method's loss and gradients in PyTorch,
for DistillationMethodReferenceTests.

Run by hand (never by the tests), with a Python that has torch installed:

    python3 Tests/Fixtures/make_method_reference.py

The losses below are transcriptions of the formulas of the reference implementations cited
beside each (mdistiller: mdistiller/distillers/*.py; DIST: hunto/image_classification_sota
lib/models/losses/dist_kd.py, the classification code of hunto/DIST_KD; logit
standardisation: sunshangquan/logit-standardization-KD), written out here in float64 so the
Swift float32 results are compared with an exact value. Inputs are fixed random tensors shaped
as the two small CNNs of the Swift test produce them (teacher stages [6,8,8], [8,4,4] and
penultimate [16]; student stages [4,8,8], [4,4,4] and penultimate [12]; 10 classes, 8 samples).
Tensors are {"shape": [...], "values": [...]} flattened row-major, 9 significant digits.
"""

import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "method_reference.json")
torch.manual_seed(12)
DT = torch.float64


def fl(v):
    return float(f"{float(v):.9g}")


def tj(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "values": [fl(v) for v in t.reshape(-1).tolist()]}


def rounded(shape, scale=1.0, positive=False):
    # Inputs rounded to float32 first, so both sides start from the same values.
    t = torch.randn(*shape) * scale
    if positive:
        t = t.abs()
    return t.to(torch.float32).to(DT)


N, K = 8, 10
inputs = {
    "student_logits": rounded([N, K], 2.0),
    "teacher_logits": rounded([N, K], 3.0),
    "teacher_stage0": rounded([N, 6, 8, 8], positive=True),
    "teacher_stage1": rounded([N, 8, 4, 4], positive=True),
    "student_stage0": rounded([N, 4, 8, 8], positive=True),
    "student_stage1": rounded([N, 4, 4, 4], positive=True),
    "teacher_penultimate": rounded([N, 16], positive=True),
    "student_penultimate": rounded([N, 12], positive=True),
}
labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])


def kl_sum(log_q, p):
    # F.kl_div(log_q, p, reduction="sum"): sum p (log p - log_q), 0 where p = 0.
    return F.kl_div(log_q, p, reduction="sum")


def standardize(z):
    return (z - z.mean(-1, keepdim=True)) / (1e-7 + z.std(-1, keepdim=True))


def kd(s, t, T, stand=False):
    if stand:
        s, t = standardize(s), standardize(t)
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="none").sum(1).mean() * T * T


def dkd(s, t, y, alpha, beta, T, stand=False):
    if stand:
        s, t = standardize(s), standardize(t)
    gt = torch.zeros_like(s).scatter_(1, y.unsqueeze(1), 1)
    other = 1 - gt
    ps, pt = F.softmax(s / T, 1), F.softmax(t / T, 1)
    cat = lambda p: torch.cat([(p * gt).sum(1, keepdim=True), (p * other).sum(1, keepdim=True)], 1)
    tckd = kl_sum(torch.log(cat(ps)), cat(pt)) * T * T / y.shape[0]
    nckd = kl_sum(F.log_softmax(s / T - 1000.0 * gt, 1), F.softmax(t / T - 1000.0 * gt, 1)) * T * T / y.shape[0]
    return alpha * tckd + beta * nckd


def pearson_relation(a, b, eps=1e-8):
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return 1 - ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)).mean()


def dist(s, t, beta, gamma, tau):
    ys, yt = (s / tau).softmax(1), (t / tau).softmax(1)
    return tau * tau * (beta * pearson_relation(ys, yt) + gamma * pearson_relation(ys.t(), yt.t()))


def pool_to_match(fs, ft):
    if fs.shape[2] > ft.shape[2]:
        fs = F.adaptive_avg_pool2d(fs, (ft.shape[2], ft.shape[2]))
    elif fs.shape[2] < ft.shape[2]:
        ft = F.adaptive_avg_pool2d(ft, (fs.shape[2], fs.shape[2]))
    return fs, ft


def at(gs, gt, p):
    att = lambda f: F.normalize(f.pow(p).mean(1).reshape(f.size(0), -1))
    total = 0
    for fs, ft in zip(gs, gt):
        fs, ft = pool_to_match(fs, ft)
        total = total + (att(fs) - att(ft)).pow(2).mean()
    return total


def nst(gs, gt):
    def poly(a, b):
        return (a.unsqueeze(1) * b.unsqueeze(2)).sum(-1).pow(2)

    total = 0
    for fs, ft in zip(gs, gt):
        fs, ft = pool_to_match(fs, ft)
        fs = F.normalize(fs.reshape(fs.shape[0], fs.shape[1], -1), dim=2)
        ft = F.normalize(ft.reshape(ft.shape[0], ft.shape[1], -1), dim=2)
        total = total + poly(ft, ft).mean().detach() + poly(fs, fs).mean() - 2 * poly(fs, ft).mean()
    return total


def pkt(fs, ft, eps=1e-7):
    def cond(f):
        f = f / (torch.sqrt((f ** 2).sum(1, keepdim=True)) + eps)
        sim = (f @ f.t() + 1.0) / 2.0
        return sim / sim.sum(1, keepdim=True)

    ps, pt = cond(fs), cond(ft)
    return torch.mean(pt * torch.log((pt + eps) / (ps + eps)))


def sp(fs, ft):
    n = fs.shape[0]
    gs = F.normalize(fs.reshape(n, -1) @ fs.reshape(n, -1).t())
    gt = F.normalize(ft.reshape(n, -1) @ ft.reshape(n, -1).t())
    return ((gt - gs) ** 2).sum() / (n * n)


def rkd(fs, ft, dw, aw, eps=1e-12):
    def pdist(e):
        sq = e.pow(2).sum(1)
        d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps).sqrt().clone()
        d[range(len(e)), range(len(e))] = 0
        return d

    s, t = fs.reshape(fs.shape[0], -1), ft.reshape(ft.shape[0], -1)
    with torch.no_grad():
        td = pdist(t)
        td = td / td[td > 0].mean()
    d = pdist(s)
    d = d / d[d > 0].mean()
    loss_d = F.smooth_l1_loss(d, td)
    with torch.no_grad():
        nt = F.normalize(t.unsqueeze(0) - t.unsqueeze(1), p=2, dim=2)
        ta = torch.bmm(nt, nt.transpose(1, 2)).reshape(-1)
    ns = F.normalize(s.unsqueeze(0) - s.unsqueeze(1), p=2, dim=2)
    sa = torch.bmm(ns, ns.transpose(1, 2)).reshape(-1)
    return dw * loss_d + aw * F.smooth_l1_loss(sa, ta)


def fitnets(fs, ft, weight, bias):
    # ConvReg for equal spatial sizes: 1x1 conv, batch norm (training, weight 1, bias 0), ReLU.
    x = F.conv2d(fs, weight, bias)
    x = F.batch_norm(x, None, None, torch.ones(x.shape[1], dtype=DT), torch.zeros(x.shape[1], dtype=DT), True)
    return F.mse_loss(F.relu(x), ft)


reg_w = rounded([8, 4, 1, 1], 0.5)
reg_b = rounded([8], 0.1)

cases = {
    # name: (function of the student inputs, which student inputs, epoch)
    "kd": lambda v: 0.9 * kd(v["student_logits"], inputs["teacher_logits"], 4.0),
    "kd_standardized": lambda v: 9.0 * kd(v["student_logits"], inputs["teacher_logits"], 2.0, stand=True),
    "dkd": lambda v: dkd(v["student_logits"], inputs["teacher_logits"], labels, 1.0, 8.0, 4.0) * min(5 / 20, 1.0),
    "dkd_standardized": lambda v: dkd(v["student_logits"], inputs["teacher_logits"], labels, 9.0, 72.0, 2.0, stand=True),
    "dist": lambda v: 2.0 * dist(v["student_logits"], inputs["teacher_logits"], 1.0, 1.0, 4.0),
    "at": lambda v: 1000.0 * at([v["student_stage0"], v["student_stage1"]],
                               [inputs["teacher_stage0"], inputs["teacher_stage1"]], 2),
    "nst": lambda v: 50.0 * nst([v["student_stage0"], v["student_stage1"]],
                               [inputs["teacher_stage0"], inputs["teacher_stage1"]]),
    "pkt": lambda v: 30000.0 * pkt(v["student_penultimate"], inputs["teacher_penultimate"]),
    "sp": lambda v: 3000.0 * sp(v["student_stage1"], inputs["teacher_stage1"]),
    "rkd": lambda v: rkd(v["student_penultimate"], inputs["teacher_penultimate"], 25.0, 50.0),
    "fitnets": lambda v: 100.0 * fitnets(v["student_stage1"], inputs["teacher_stage1"], v["reg_w"], v["reg_b"]),
}

# CRD (mdistiller CRD.py: Embed, ContrastMemory, ContrastLoss) on a memory of 20 samples,
# feat_dim 5, 6 negatives, with fixed contrast indices (the sample itself first).
CRD_N, CRD_D, CRD_K, CRD_T, CRD_M = 20, 5, 6, 0.07, 0.5
crd_labels = torch.tensor([i % 4 for i in range(CRD_N)])
crd_batch = torch.tensor([3, 17, 8, 0, 11, 5, 14, 9])
crd_contrast = torch.stack([
    torch.cat([i.view(1), torch.tensor([j for j in range(CRD_N) if crd_labels[j] != crd_labels[i]])[
        torch.randint(0, 15, (CRD_K,))]]) for i in crd_batch])
stdv = 1.0 / (CRD_D / 3) ** 0.5
crd_memory_s = (torch.rand(CRD_N, CRD_D) * 2 * stdv - stdv).to(torch.float32).to(DT)
crd_memory_t = (torch.rand(CRD_N, CRD_D) * 2 * stdv - stdv).to(torch.float32).to(DT)
crd_ws, crd_bs = rounded([CRD_D, 12], 0.3), rounded([CRD_D], 0.1)
crd_wt, crd_bt = rounded([CRD_D, 16], 0.3), rounded([CRD_D], 0.1)


def crd(v):
    def embed(x, w, b):
        y = x @ w.t() + b
        return y / y.pow(2).sum(1, keepdim=True).pow(0.5)

    def contrast_loss(x):
        m, pn, eps = x.size(1) - 1, 1 / float(CRD_N), 1e-7
        log_d1 = torch.div(x[:, 0], x[:, 0] + m * pn + eps).log()
        log_d0 = torch.div(torch.full_like(x[:, 1:], m * pn), x[:, 1:] + m * pn + eps).log()
        return -(log_d1.sum(0) + log_d0.reshape(-1, 1).sum(0)) / x.shape[0]

    v1 = embed(v["student_penultimate"], v["crd_ws"], v["crd_bs"])
    v2 = embed(inputs["teacher_penultimate"], v["crd_wt"], v["crd_bt"])
    w1 = crd_memory_s[crd_contrast.reshape(-1)].reshape(len(crd_batch), CRD_K + 1, CRD_D)
    w2 = crd_memory_t[crd_contrast.reshape(-1)].reshape(len(crd_batch), CRD_K + 1, CRD_D)
    out_v2 = torch.exp(torch.bmm(w1, v2.unsqueeze(2)).squeeze(2) / CRD_T)
    out_v1 = torch.exp(torch.bmm(w2, v1.unsqueeze(2)).squeeze(2) / CRD_T)
    # Z from the first batch, as float32 (mdistiller keeps it in a float32 buffer).
    z1 = float(torch.tensor(out_v1.mean().item() * CRD_N, dtype=torch.float32))
    z2 = float(torch.tensor(out_v2.mean().item() * CRD_N, dtype=torch.float32))
    crd.z = (z1, z2)
    with torch.no_grad():
        for memory, new in ((crd_memory_s, v1), (crd_memory_t, v2)):
            pos = memory[crd_batch] * CRD_M + new * (1 - CRD_M)
            crd.updated = getattr(crd, "updated", []) + [pos / pos.pow(2).sum(1, keepdim=True).pow(0.5)]
    return 0.8 * (contrast_loss(out_v1 / z1) + contrast_loss(out_v2 / z2))


cases["crd"] = crd

out = {"inputs": {k: tj(v) for k, v in inputs.items()}, "labels": labels.tolist(),
       "fitnets_regressor": {"weight": tj(reg_w), "bias": tj(reg_b)}, "cases": {}}
for name, fn in cases.items():
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items() if k.startswith("student")}
    leaves["reg_w"] = reg_w.clone().requires_grad_(True)
    leaves["reg_b"] = reg_b.clone().requires_grad_(True)
    for key, value in (("crd_ws", crd_ws), ("crd_bs", crd_bs), ("crd_wt", crd_wt), ("crd_bt", crd_bt)):
        leaves[key] = value.clone().requires_grad_(True)
    loss = fn(leaves)
    loss.backward()
    grads = {k: tj(v.grad) for k, v in leaves.items() if v.grad is not None}
    out["cases"][name] = {"loss": fl(loss.item()), "gradients": grads}

memory_s_after, memory_t_after = crd_memory_s.clone(), crd_memory_t.clone()
memory_s_after[crd_batch] = crd.updated[0]
memory_t_after[crd_batch] = crd.updated[1]
out["crd"] = {
    "labels": crd_labels.tolist(), "batch": crd_batch.tolist(), "contrast": crd_contrast.reshape(-1).tolist(),
    "memory_student": tj(crd_memory_s), "memory_teacher": tj(crd_memory_t),
    "embed_student_weight": tj(crd_ws), "embed_student_bias": tj(crd_bs),
    "embed_teacher_weight": tj(crd_wt), "embed_teacher_bias": tj(crd_bt),
    "z": [fl(crd.z[0]), fl(crd.z[1])],
    "memory_student_after": tj(memory_s_after), "memory_teacher_after": tj(memory_t_after),
}

with open(OUT, "w") as f:
    json.dump(out, f, indent=None, separators=(",", ":"))
    f.write("\n")
print("wrote", OUT, {k: v["loss"] for k, v in out["cases"].items()})

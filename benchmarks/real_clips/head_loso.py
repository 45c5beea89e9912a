"""Leave-one-subject-out: refit the last layer on FER2013 train features + real-clip frames of the other subjects."""

import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
D = np.load(sys.argv[1], allow_pickle=True).item()
classes = D["classes"]
C = len(classes)
W0 = torch.tensor(D["fc_w"])
b0 = torch.tensor(D["fc_b"])
trf, trl = D["train"]
tef, tel = D["test"]
trf = torch.tensor(trf).float()
tef = torch.tensor(tef).float()
trl = torch.tensor(trl).long()
tel = torch.tensor(tel).long()
clips = D["clips"]
subjects = sorted({s for _, s, _ in clips.values()})


def acc_test(W, b):
    lo = tef @ W.T + b
    p = F.softmax(lo, -1)
    return (p[:, 0].argmax(1) == tel).float().mean().item(), (p.mean(1).argmax(1) == tel).float().mean().item()


def clip_pred(W, b, f):
    p = F.softmax(torch.tensor(f[:, 0]).float() @ W.T + b, -1)
    return p.mean(0).argmax().item(), p.argmax(1).numpy()


def fit(real_x, real_y, w_real, lam, steps=150, use_train=True, ls=0.1, lr=0.05):
    W = W0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    opt = torch.optim.Adam([W, b], lr=lr)
    X = trf.reshape(-1, 512)
    Y = trl.repeat_interleave(2)
    for _ in range(steps):
        opt.zero_grad()
        loss = lam * ((W - W0) ** 2).sum() + lam * ((b - b0) ** 2).sum()
        if use_train:
            idx = torch.randint(0, len(X), (8192,))
            loss = loss + F.cross_entropy(X[idx] @ W.T + b, Y[idx], label_smoothing=ls)
        if len(real_y):
            loss = loss + w_real * F.cross_entropy(real_x @ W.T + b, real_y, label_smoothing=ls)
        loss.backward()
        opt.step()
    return W.detach(), b.detach()


def real_set(exclude):
    xs, ys = [], []
    for lab, s, ft in clips.values():
        if s == exclude:
            continue
        x = torch.tensor(ft).float().reshape(-1, 512)  # plain and flipped
        # weight every clip the same whatever its length: subsample to 60 frames x 2 views
        sel = torch.linspace(0, len(x) - 1, min(len(x), 120)).long()
        xs.append(x[sel])
        ys.append(torch.full((len(sel),), classes.index(lab)))
    return torch.cat(xs), torch.cat(ys)


torch.manual_seed(0)
print("shipped: PublicTest", acc_test(W0, b0))
ok = sum(clip_pred(W0, b0, ft)[0] == classes.index(lab) for lab, s, ft in clips.values())
print("shipped clips", ok)
for w_real, lam, use_train in [
    (0.0, 0.0, True),
    (0.3, 0.0, True),
    (1.0, 0.0, True),
    (3.0, 0.0, True),
    (1.0, 0.01, False),
    (1.0, 0.1, False),
]:
    torch.manual_seed(0)
    right, per = 0, {}
    fr, nf = 0, 0
    for s in subjects:
        W, b = fit(*real_set(s), w_real, lam, use_train=use_train)
        for lab, ss, ft in clips.values():
            if ss != s:
                continue
            p, pf = clip_pred(W, b, ft)
            right += p == classes.index(lab)
            per.setdefault(lab, [0, 0])
            per[lab][0] += p == classes.index(lab)
            per[lab][1] += 1
            fr += (pf == classes.index(lab)).sum()
            nf += len(pf)
    W, b = fit(*real_set(None), w_real, lam, use_train=use_train)
    print(
        f"w_real={w_real} lam={lam} train={use_train}: LOSO clips {right}/22 frames {fr / nf:.3f}",
        " ".join(f"{c[:3]}{a}/{n}" for c, (a, n) in per.items()),
        "| all-real head PublicTest",
        [round(a, 4) for a in acc_test(W, b)],
        flush=True,
    )

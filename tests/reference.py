"""An independent float64 NumPy reference of SPEC sections 3 and 5 on a tiny network:

    logits = relu(BN(x W1^T)) W2^T + b2        (BatchNorm in training mode, batch stats)

Forward and backward are written out by hand; nothing here uses MindSpore.
"""
import numpy as np

BN_EPS = 1e-5
NAMES = ("w1", "gamma", "beta", "w2", "b2")


def forward(p, x):
    z = x @ p["w1"].T
    if "gamma" not in p:  # the network without BatchNorm (helpers.NoBNNet)
        a = np.maximum(z, 0.0)
        logits = a @ p["w2"].T + p["b2"]
        return logits, dict(x=x, y=z, a=a, logits=logits)
    mu, var = z.mean(0), z.var(0)
    inv = 1.0 / np.sqrt(var + BN_EPS)
    xh = (z - mu) * inv
    y = p["gamma"] * xh + p["beta"]
    a = np.maximum(y, 0.0)
    logits = a @ p["w2"].T + p["b2"]
    return logits, dict(x=x, xh=xh, inv=inv, y=y, a=a, logits=logits, mu=mu, var=var)


def per_sample_loss(logits, label):
    m = logits.max(1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(1, keepdims=True)))[:, 0]
    return lse - logits[np.arange(len(label)), label]


def softmax(logits):
    prob = np.exp(logits - logits.max(1, keepdims=True))
    return prob / prob.sum(1, keepdims=True)


def backward(p, cache, label, coef, penalty_coef=None):
    """Gradient of sum_i coef_i * l_i (+ sum_i penalty_coef_i * d_i, d_i the IRMv1 term
    p_i . z_i - z_{i,y_i}) with respect to every parameter."""
    logits, n = cache["logits"], len(label)
    prob = softmax(logits)
    onehot = np.eye(logits.shape[1])[label]
    dlogits = coef[:, None] * (prob - onehot)
    if penalty_coef is not None:  # d d_i / d z_ik = p_ik (1 + z_ik - p_i . z_i) - [k = y_i]
        s = (prob * logits).sum(1, keepdims=True)
        dlogits += penalty_coef[:, None] * (prob * (1.0 + logits - s) - onehot)
    return backward_from_logits(p, cache, dlogits)


def backward_from_logits(p, cache, dlogits):
    n = len(dlogits)
    g = {"w2": dlogits.T @ cache["a"], "b2": dlogits.sum(0)}
    dy = (dlogits @ p["w2"]) * (cache["y"] > 0)
    if "gamma" not in p:
        g["w1"] = dy.T @ cache["x"]
        return g
    g["gamma"] = (dy * cache["xh"]).sum(0)
    g["beta"] = dy.sum(0)
    dxh = dy * p["gamma"]
    xh = cache["xh"]
    dz = cache["inv"] / n * (n * dxh - dxh.sum(0) - xh * (dxh * xh).sum(0))
    g["w1"] = dz.T @ cache["x"]
    return g


def group_stats(values, group, num_groups):
    counts = np.bincount(group, minlength=num_groups).astype(np.float64)
    sums = np.bincount(group, weights=values, minlength=num_groups)
    return sums / np.maximum(counts, 1.0), counts


def update_weights(w, group_loss, counts, eta, absent="zero"):
    new = w * np.exp(eta * group_loss)
    if absent == "zero":
        return new / new.sum()
    present = counts > 0
    out = w.copy()
    out[present] = new[present] * w[present].sum() / new[present].sum()
    return out


def _coef_weighted(w, group, counts):
    return w[group] / counts[group]


def _perturbed(p, g, rho, adaptive):
    if adaptive:
        norm = np.sqrt(sum(((np.abs(p[k]) * g[k]) ** 2).sum() for k in p))
        return {k: p[k] + rho * p[k] ** 2 * g[k] / (norm + 1e-12) for k in p}
    norm = np.sqrt(sum((g[k] ** 2).sum() for k in p))
    return {k: p[k] + rho * g[k] / (norm + 1e-12) for k in p}


def _hash32(x):
    """Wellons' lowbias32 on Python integers (SPEC 3b's draws; sharpdro/selection.py)."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def uniforms(seed, step, rank, k):
    key = _hash32(_hash32(seed) ^ step)
    return np.array([(_hash32(key ^ (rank * k + j)) >> 8) / 2.0 ** 24 for j in range(k)])


def pass2_subset(a, k, rule, seed, step, rank):
    """(indices, coefficients) of SPEC 3b's pass-2 subset of one slice with weights a_i."""
    total = a.sum()
    if rule == "sample":
        u = uniforms(seed, step, rank, k)
        index = np.minimum(np.searchsorted(np.cumsum(a), u * total, side="right"), len(a) - 1)
        return index, np.full(k, total / k)
    if rule == "uniform":
        u = uniforms(seed, step, rank, len(a))
        index = np.argsort(-u, kind="stable")[:k]
        return index, a[index] * len(a) / k
    index = np.argsort(-a, kind="stable")[:k]
    return index, a[index] * total / a[index].sum()


def _add_grads(grads):
    return {k: sum(g[k] for g in grads) for k in grads[0]}


def ood_score(logits, score):
    z = logits - logits.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    if score == "msp":
        return 1.0 - np.exp(log_p.max(1))
    if score == "energy":
        return -(logits.max(1) + np.log(np.exp(z).sum(1)))
    return -(np.exp(log_p) * log_p).sum(1)


def step(algorithm, state, x, label, group, num_groups, lr, momentum, wd, rho=0.05,
         eta=0.01, adaptive=False, absent="zero", eps_source="batch", score="msp", fraction=0.2,
         tilt=0.0, adjustment=0.0, group_counts=None, irm_lambda=100.0, vrex_lambda=10.0,
         anneal_steps=500, pass2_fraction=1.0, pass2_rule="top", seed=0,
         pass2_selected=False, ranks=1):
    """One step; ``state`` = dict(params, buf, w). Returns (new state, info).

    ``ranks``: the batch is that many equal slices, one per data-parallel rank; only the
    per-slice parts of a step read it (pass 2 on a subset, the agnostic selection); the
    network must then have no BatchNorm (its statistics would be per slice too)."""
    names = list(state["params"])
    slices = np.array_split(np.arange(len(label)), ranks)
    p, buf, w = state["params"], state["buf"], state["w"]
    penalty = irm_lambda if algorithm == "irm" else vrex_lambda
    n = len(label)
    logits, cache = forward(p, x)
    loss = per_sample_loss(logits, label)
    group_loss, counts = group_stats(loss, group, num_groups)
    # GroupDRO's adjustment: the weight update sees L_g + C / sqrt(n_g); the loss does not
    update_loss = group_loss + (adjustment / np.sqrt(np.asarray(group_counts, np.float64))
                                if adjustment else 0.0)
    g1 = backward(p, cache, label, np.full(n, 1.0 / n))
    info = {"loss": loss.mean(), "group_loss": group_loss, "counts": counts,
            "moving_mean": 0.1 * cache.get("mu", 0.0), "batch_var": cache.get("var")}
    if algorithm == "erm":
        grad = g1
    elif algorithm == "groupdro":
        w = update_weights(w, update_loss, counts, eta, absent)
        grad = backward(p, cache, label, _coef_weighted(w, group, counts))
    elif algorithm == "sam":
        q = _perturbed(p, g1, rho, adaptive)
        _, cache2 = forward(q, x)
        grad = backward(q, cache2, label, np.full(n, 1.0 / n))
    elif algorithm == "sharpdro":
        w = update_weights(w, update_loss, counts, eta, absent)
        eps_grad = g1
        if eps_source == "weighted":
            eps_grad = backward(p, cache, label, _coef_weighted(w, group, counts))
        q = _perturbed(p, eps_grad, rho, adaptive)
        if pass2_fraction < 1.0:  # SPEC 3b: each slice estimates its share of J from k images
            parts = []
            for rank, part in enumerate(slices):
                k = max(1, int(np.ceil(pass2_fraction * len(part) - 1e-9)))
                index, coef = pass2_subset(_coef_weighted(w, group, counts)[part], k,
                                           pass2_rule, seed, state.get("steps", 0), rank)
                _, cache2 = forward(q, x[part][index])
                parts.append(backward(q, cache2, label[part][index], coef))
                info.setdefault("pass2_index", []).append(part[index])
            g2 = _add_grads(parts)
        else:
            logits2, cache2 = forward(q, x)
            rise, _ = group_stats(per_sample_loss(logits2, label) - loss, group, num_groups)
            info["sharpness"] = (w * rise).sum()
            g2 = backward(q, cache2, label, _coef_weighted(w, group, counts))
        grad = {k: g1[k] + g2[k] for k in names}
    elif algorithm == "sharpdro_agnostic":  # the group column is not used
        q = _perturbed(p, g1, rho, adaptive)
        ranking = loss if score == "loss" else ood_score(logits, score)
        selected, weights = np.zeros(n), np.zeros(n)
        for part in slices:  # each rank selects the top fraction of its own slice
            k = max(1, int(round(fraction * len(part))))
            top = part[np.argsort(-ranking[part], kind="stable")[:k]]
            selected[top] = 1.0
            relative = ranking[top] / (ranking[top].mean() + 1e-12)
            tilted = np.exp(tilt * (relative - relative.max()))
            weights[top] = tilted / (tilted.sum() * ranks)  # this rank's share of J
        info["selected"] = selected
        if pass2_selected:  # pass 2 forwards the selected images only
            chosen = np.flatnonzero(selected)
            _, cache2 = forward(q, x[chosen])
            g2 = backward(q, cache2, label[chosen], weights[chosen])
        else:
            _, cache2 = forward(q, x)
            g2 = backward(q, cache2, label, weights)
        grad = {k_: g1[k_] + g2[k_] for k_ in names}
    elif algorithm in ("irm", "vrex"):
        # lambda_t: 1 until anneal_steps optimizer steps were taken, then lambda
        lam = penalty if state.get("steps", 0) >= anneal_steps else 1.0
        present = counts > 0
        size = present.sum()
        scale = 1.0 / (size * np.maximum(counts, 1.0) * max(lam, 1.0))  # per group
        if algorithm == "irm":
            d = (softmax(logits) * logits).sum(1) - logits[np.arange(n), label]
            d_mean, _ = group_stats(d, group, num_groups)
            info["penalty"] = (d_mean[present] ** 2).mean()
            grad = backward(p, cache, label, scale[group], lam * 2.0 * d_mean[group] * scale[group])
        else:
            centred = group_loss - group_loss[present].mean()
            info["penalty"] = (centred[present] ** 2).mean()
            grad = backward(p, cache, label, (1.0 + lam * 2.0 * centred[group]) * scale[group])
        info["objective"] = (group_loss[present].mean() + lam * info["penalty"]) / max(lam, 1.0)
    elif algorithm == "cvar":  # the mean of the k largest losses (the group is not read)
        k = int(np.ceil(fraction * n))
        selected = np.zeros(n)
        selected[np.argsort(-loss, kind="stable")[:k]] = 1.0 / k
        grad = backward(p, cache, label, selected)
    else:
        raise ValueError(algorithm)
    state = dict(state, steps=state.get("steps", 0) + 1)
    new_buf = {k: momentum * buf[k] + grad[k] + wd * p[k] for k in names}
    new_p = {k: p[k] - lr * new_buf[k] for k in names}
    return {"params": new_p, "buf": new_buf, "w": w, "steps": state["steps"]}, info

"""Deep Feature Reweighting (Kirichenko et al., ICLR 2023): keep a trained feature extractor,
refit only the last layer, by L1-regularised logistic regression on group-balanced draws.

NumPy only; no files. ``benchmarks/dfr.py`` runs it on a run folder.

The recipe (DFR^Tr_Val of the paper, with the training images in the pool as well):
the fit pool is the training images plus one half of the validation set (seeded, stratified
by group); the other half picks the L1 strength by its worst-group accuracy; the final head
averages the weights of ``draws`` fits, each on a group-balanced draw from the pool (every
group as many images as the smallest has). Features are standardised by the pool's mean and
standard deviation, which the returned head folds back in: it takes the raw features.
"""
from dataclasses import dataclass, field

import numpy as np

# the inverse L1 strengths of the DFR paper's search (scikit-learn's C)
C_GRID = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)


def split_halves(groups, seed):
    """(fit half, selection half) index arrays of a validation set: each group's images in
    a seeded order, the first half (rounded down) to selection, the rest to fitting."""
    rng = np.random.default_rng(seed)
    fit, select = [], []
    for g in np.unique(groups):
        idx = rng.permutation(np.flatnonzero(groups == g))
        select.append(idx[:len(idx) // 2])
        fit.append(idx[len(idx) // 2:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(select))


def balanced_draw(groups, rng):
    """Indices of a group-balanced subset: every group as many images as the smallest."""
    present = np.unique(groups)
    n = min(int((groups == g).sum()) for g in present)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(groups == g), n, replace=False)
                                   for g in present]))


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_logistic_l1(x, y, num_classes, inverse_strength, iterations=500):
    """Multinomial logistic regression, mean cross-entropy + ||W||_1 / (C n) (scikit-learn's
    objective divided by C n; the intercept is not penalised), by FISTA (accelerated
    proximal gradient). Returns (W: classes x features, b: classes)."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    onehot = np.eye(num_classes)[np.asarray(y, np.int64)]
    l1 = 1.0 / (inverse_strength * n)
    # the gradient's Lipschitz constant: softmax curvature <= 1/2, times ||[x 1]||^2 / n
    lipschitz = 0.5 * (np.linalg.norm(x, 2) ** 2 + n) / n
    step = 1.0 / lipschitz
    w, b = np.zeros((num_classes, d)), np.zeros(num_classes)
    w_prev, b_prev, t = w, b, 1.0
    for _ in range(iterations):
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        mix = (t - 1.0) / t_next
        vw, vb = w + mix * (w - w_prev), b + mix * (b - b_prev)
        residual = (_softmax(x @ vw.T + vb) - onehot) / n
        gw, gb = residual.T @ x, residual.sum(0)
        w_prev, b_prev, t = w, b, t_next
        w = vw - step * gw
        w = np.sign(w) * np.maximum(np.abs(w) - step * l1, 0.0)  # the L1 proximal step
        b = vb - step * gb
    return w, b


def group_accuracies(logits, labels, groups):
    """{group: accuracy} of the groups present."""
    correct = np.asarray(logits).argmax(1) == np.asarray(labels)
    return {int(g): float(correct[groups == g].mean()) for g in np.unique(groups)}


@dataclass
class DFRResult:
    weight: np.ndarray      # classes x features, for the raw (unstandardised) features
    bias: np.ndarray
    picked: float           # the inverse L1 strength chosen
    scores: dict = field(default_factory=dict)  # C -> worst-group accuracy on the selection half
    draw_size: int = 0      # images per draw (groups x the smallest group's count)


def dfr_fit(fit, select, num_classes, seed, grid=C_GRID, draws=10, iterations=500):
    """``fit``, ``select``: (features, labels, groups) of the pool and the selection half.
    Every group must be in both. Returns a :class:`DFRResult`."""
    fx, fy, fg = (np.asarray(a) for a in fit)
    sx, sy, sg = (np.asarray(a) for a in select)
    missing = sorted(set(np.unique(sg).tolist()) - set(np.unique(fg).tolist()))
    if missing:
        raise ValueError(f"groups {missing} have no image to fit the head on")
    mean, std = fx.mean(0), fx.std(0) + 1e-8
    zf, zs = (fx - mean) / std, (sx - mean) / std
    rng = np.random.default_rng(seed)
    scores = {}
    for c in grid:
        idx = balanced_draw(fg, rng)
        w, b = fit_logistic_l1(zf[idx], fy[idx], num_classes, c, iterations)
        scores[float(c)] = min(group_accuracies(zs @ w.T + b, sy, sg).values())
    picked = max(scores, key=lambda c: (scores[c], -list(scores).index(c)))  # ties: the first
    ws, bs = [], []
    for _ in range(draws):
        idx = balanced_draw(fg, rng)
        w, b = fit_logistic_l1(zf[idx], fy[idx], num_classes, picked, iterations)
        ws.append(w)
        bs.append(b)
    w, b = np.mean(ws, 0), np.mean(bs, 0)
    # fold the standardisation in: w (x - m) / s + b = (w / s) x + (b - (w / s) m)
    weight = w / std
    return DFRResult(weight, b - weight @ mean, picked, scores, len(idx))

"""Deep Feature Reweighting (Kirichenko et al., ICLR 2023): keep a trained feature extractor,
refit only the last layer, by L1-regularised logistic regression on group-balanced draws.

NumPy and scikit-learn; no files. ``train.py --algorithm.name dfr --algorithm.reference RUN``
runs it on a finished run (the ``dfr`` entry of sharpdro/algorithms/post_hoc.py).

The recipe (DFR^Tr_Val of the paper, with the training images in the pool as well):
the fit pool is the training images plus one half of the validation set (seeded, stratified
by group); the other half picks the L1 strength by its worst-group accuracy; the final head
averages the weights of ``draws`` fits, each on a group-balanced draw from the pool (every
group as many images as the smallest has). Features are standardised by the pool's mean and
standard deviation, which the returned head folds back in: it takes the raw features.
The solver is scikit-learn's liblinear, as in the DFR authors' code (one-vs-rest over the
classes); a fit that stops at its iteration cap is reported, not hidden.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np

# the inverse L1 strengths of the DFR paper's search (scikit-learn's C), strongest last
C_GRID = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
EXTEND_FACTOR = 3.0  # a pick on the grid's edge adds the value this factor beyond it,
MAX_EXTENSIONS = 3   # at most this many times per edge
MAX_ITER = 1000
ABSENT_CLASS_BIAS = -1e4  # a class missing from a draw: never predicted by its head


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


@dataclass
class Fit:
    weight: np.ndarray  # classes x features
    bias: np.ndarray
    iterations: int     # the solver's, the largest over the one-vs-rest problems
    converged: bool


def fit_logistic_l1(x, y, num_classes, inverse_strength, seed=0, max_iter=MAX_ITER):
    """L1-regularised logistic regression (scikit-learn, liblinear: C times the summed
    log-loss plus ||w||_1, the intercept penalised as a feature of constant 1, one-vs-rest
    over the classes), as a head of ``num_classes`` logits. Returns a :class:`Fit`."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x, y = np.asarray(x, np.float64), np.asarray(y, np.int64)
    model = LogisticRegression(penalty="l1", C=float(inverse_strength), solver="liblinear",
                               max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    weight = np.zeros((num_classes, x.shape[1]))
    bias = np.full(num_classes, ABSENT_CLASS_BIAS)
    classes = model.classes_
    if len(classes) == 2:  # one decision function: class 1's logit against class 0's zero
        weight[classes[1]], bias[classes[1]], bias[classes[0]] = model.coef_[0], model.intercept_[0], 0.0
    else:
        weight[classes], bias[classes] = model.coef_, model.intercept_
    return Fit(weight, bias, int(np.max(model.n_iter_)), converged)


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
    grid: list = field(default_factory=list)  # every C tried, in the order tried
    solver: dict = field(default_factory=dict)  # C -> {"iterations", "converged"}; "final" too


def extend(grid, picked, added):
    """The value to try next when ``picked`` is on the edge of ``grid`` (None: it is not,
    or that edge was extended MAX_EXTENSIONS times). ``added``: {"weak": n, "strong": n}."""
    if picked == max(grid) and added["weak"] < MAX_EXTENSIONS:
        added["weak"] += 1
        return float(f"{picked * EXTEND_FACTOR:.3g}")  # 3 significant digits: a readable key
    if picked == min(grid) and added["strong"] < MAX_EXTENSIONS:
        added["strong"] += 1
        return float(f"{picked / EXTEND_FACTOR:.3g}")
    return None


def dfr_fit(fit, select, num_classes, seed, grid=C_GRID, draws=10, max_iter=MAX_ITER):
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
    scores, solver, tried = {}, {}, [float(c) for c in grid]
    added = {"weak": 0, "strong": 0}

    def best():  # ties: the first tried
        return max(scores, key=lambda v: (scores[v], -tried.index(v)))

    for c in tried:  # grows while it runs: a pick on the grid's edge appends the next value
        idx = balanced_draw(fg, rng)
        one = fit_logistic_l1(zf[idx], fy[idx], num_classes, c, seed, max_iter)
        scores[c] = min(group_accuracies(zs @ one.weight.T + one.bias, sy, sg).values())
        solver[str(c)] = {"iterations": one.iterations, "converged": one.converged}
        if c == tried[-1]:  # the whole grid scored
            more = extend(tried, best(), added)
            if more is not None and more not in scores:
                tried.append(more)
    picked = best()
    fits = []
    for _ in range(draws):
        idx = balanced_draw(fg, rng)
        fits.append(fit_logistic_l1(zf[idx], fy[idx], num_classes, picked, seed, max_iter))
    w, b = np.mean([f.weight for f in fits], 0), np.mean([f.bias for f in fits], 0)
    solver["final"] = {"iterations": max(f.iterations for f in fits),
                       "converged": all(f.converged for f in fits)}
    # fold the standardisation in: w (x - m) / s + b = (w / s) x + (b - (w / s) m)
    weight = w / std
    return DFRResult(weight, b - weight @ mean, picked, scores, len(idx), tried, solver)

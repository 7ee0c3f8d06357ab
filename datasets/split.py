"""The photon-limited split (SPEC section 2): per class, disjoint severity shares that
follow the Poisson pmf; the rest of the training pool is validation."""
import math

import numpy as np


def poisson_shares(num_severity, lam=1.0):
    """pmf(s) for s = 0..S; the tail above S is dropped, not renormalised."""
    if not 1 <= int(num_severity) <= 5:
        raise ValueError(f"num_severity (S) must be in 1..5, got {num_severity}")
    if not lam > 0:
        raise ValueError(f"poisson_lambda must be > 0, got {lam}")
    return np.array([math.exp(-lam) * lam ** s / math.factorial(s)
                     for s in range(int(num_severity) + 1)])


def split_by_severity(labels, num_per_class, shares, rng, val_per_class=None):
    """-> (train index arrays per severity, validation indices), both sorted.

    Per class: ``num_per_class`` images drawn without replacement; the first
    floor(n * pmf(0)) are clean, the next floor(n * pmf(1)) severity 1, and so on. The
    validation set is the rest of the class (at most ``val_per_class`` of it, if given).
    """
    labels = np.asarray(labels)
    per_severity = [[] for _ in shares]
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if num_per_class > len(members):
            raise ValueError(f"num_per_class {num_per_class} is larger than class {c}, "
                             f"which has {len(members)} training images")
        chosen = rng.permutation(members)
        start = 0
        for s, share in enumerate(shares):
            count = int(math.floor(num_per_class * share))
            per_severity[s].append(chosen[start:start + count])
            start += count
        rest = chosen[start:]  # every image of the class not used for training
        val.append(rest if val_per_class is None else rest[:val_per_class])
    return ([np.sort(np.concatenate(idx)) for idx in per_severity],
            np.sort(np.concatenate(val)))

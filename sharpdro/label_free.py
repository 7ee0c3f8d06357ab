"""The inference steps of the two-stage label-free methods (SPEC section 5): what
JTT and EIIL compute from a reference model's outputs on the training images between
their two stages. NumPy and SciPy, no MindSpore, no files: the entry points feed them
logits and labels.
"""
import numpy as np
from scipy.special import softmax


def irm_terms(logits, labels):
    """d_i = p_i . z_i - z_{i,y_i}: the derivative of CE(t z_i, y_i) in t at t = 1."""
    z = np.asarray(logits, np.float64)
    p = softmax(z, axis=1)
    return (p * z).sum(1) - z[np.arange(len(z)), np.asarray(labels)]


def jtt_error_set(logits, labels):
    """JTT's error set: True where the reference model misclassifies the image."""
    return np.asarray(logits).argmax(1) != np.asarray(labels)


def jtt_repeats(error_set, upweight):
    """How often each training image appears in one epoch of JTT's stage 2: ``upweight``
    times for the error set, once for the rest."""
    if int(upweight) < 1:
        raise ValueError(f"upweight must be >= 1, got {upweight}")
    return np.where(np.asarray(error_set, bool), int(upweight), 1).astype(np.int64)


def eiil_environments(d, steps=10000, lr=0.01, seed=0):
    """EIIL's environment inference: soft assignments q_i = sigmoid(a_i) that maximise

        J(q) = (sum_i q_i d_i / sum_i q_i)^2 + (sum_i (1 - q_i) d_i / sum_i (1 - q_i))^2,

    the IRMv1 penalty of the reference model under the split, by gradient ascent on a with
    Adam (a from N(0, 0.01^2), seeded: at q = 1/2 everywhere the gradient is zero).
    Returns (environment of each image: 0 or 1 as q_i > 0.5, q, J at the end)."""
    d = np.asarray(d, np.float64)
    rng = np.random.default_rng([seed, 31])
    a = rng.normal(0.0, 0.01, len(d))
    m, v = np.zeros_like(a), np.zeros_like(a)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for t in range(1, int(steps) + 1):
        grad = eiil_gradient(a, d)
        m = beta1 * m + (1.0 - beta1) * grad
        v = beta2 * v + (1.0 - beta2) * grad ** 2
        a += lr * (m / (1.0 - beta1 ** t)) / (np.sqrt(v / (1.0 - beta2 ** t)) + eps)
    q = 1.0 / (1.0 + np.exp(-a))
    return (q > 0.5).astype(np.int64), q, eiil_objective(q, d)


def eiil_gradient(a, d):
    """dJ/da at q = sigmoid(a) (J of eiil_environments)."""
    q = 1.0 / (1.0 + np.exp(-a))
    n1, n2 = q.sum(), (1.0 - q).sum()
    m1, m2 = (q * d).sum() / n1, ((1.0 - q) * d).sum() / n2
    return (2.0 * m1 * (d - m1) / n1 + 2.0 * m2 * (m2 - d) / n2) * q * (1.0 - q)


def eiil_objective(q, d):
    """J(q) of eiil_environments."""
    q, d = np.asarray(q, np.float64), np.asarray(d, np.float64)
    return ((q * d).sum() / q.sum()) ** 2 + (((1.0 - q) * d).sum() / (1.0 - q).sum()) ** 2

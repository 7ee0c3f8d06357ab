"""Group-index validation, free of MindSpore so the data layer can use it."""
import numpy as np


def check_group_indices(groups, num_groups):
    """Reject group indices outside 0..num_groups-1 where the data is built: in graph mode
    an out-of-range one-hot index is silently all zeros, so the sample would vanish."""
    if int(num_groups) < 1:
        raise ValueError(f"num_groups must be >= 1, got {num_groups}")
    groups = np.asarray(groups)
    if groups.size == 0:
        return
    if not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(f"group indices must be integers, got dtype {groups.dtype}")
    low, high = int(groups.min()), int(groups.max())
    if low < 0 or high >= num_groups:
        bad = low if low < 0 else high
        raise ValueError(f"group index {bad} is outside the valid range 0..{num_groups - 1} "
                         f"(num_groups = {num_groups})")


def group_adjustment(c, group_counts, num_groups):
    """GroupDRO's generalization adjustment C / sqrt(n_g) per group (float64 array), 0 for a
    group without training images (it never appears in a batch); a ValueError naming what
    is wrong with ``group_counts`` (the training images per group)."""
    if group_counts is None:
        raise ValueError(f"adjustment {c} needs the training images per group: "
                         "create_train_step(..., group_counts=[n_0, n_1, ...])")
    counts = np.asarray(group_counts, np.float64).reshape(-1)
    if len(counts) != int(num_groups):
        raise ValueError(f"group_counts has {len(counts)} entries for {num_groups} groups")
    bad = np.flatnonzero(~np.isfinite(counts) | (counts < 0) | (counts != np.round(counts)))
    if len(bad):
        raise ValueError(f"group_counts[{bad[0]}] is {group_counts[bad[0]]}: counts of training "
                         "images are whole numbers >= 0")
    return np.where(counts > 0, float(c) / np.sqrt(np.maximum(counts, 1.0)), 0.0)

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

"""A custom score declared in model.yaml: |alt - ref| (no strand merging)."""

import numpy as np


class AbsDiff:
    """Absolute difference of alt and ref predictions."""

    def __call__(self, ref, alt, ref_rc=None, alt_rc=None):
        return np.abs(np.asarray(alt) - np.asarray(ref))

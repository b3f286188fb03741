"""A deterministic toy model for veff's Kipoi support: the GC content of a one-hot window.

Input: one-hot DNA, shape (N, 4, L) with channels A, C, G, T (kipoiseq SeqIntervalDl with
alphabet_axis 0). N bases arrive as 0.25 in every channel and count as half a G/C.
Outputs: ``gc_fraction`` (whole window) and ``gc_center`` (the central ``center`` bases).
"""

import numpy as np


class GCContent:
    """GC fraction of the whole window and of its centre."""

    def __init__(self, center=11):
        self.center = int(center)

    def predict_on_batch(self, x):
        x = np.asarray(x, dtype=np.float64)
        gc = x[:, 1, :] + x[:, 2, :]  # C and G channels, shape (N, L)
        length = gc.shape[1]
        lo = (length - self.center) // 2
        return np.stack([gc.mean(axis=1), gc[:, lo:lo + self.center].mean(axis=1)], axis=1)

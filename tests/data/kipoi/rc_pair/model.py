"""Test model: position weights applied to each of its two inputs (a sequence and its reverse complement)."""

import numpy as np

WEIGHTS = ((np.arange(40, dtype=np.float32) * 7) % 9 + 1.0).reshape(10, 4)


class PairNet:
    def predict_on_batch(self, x):
        fwd, rev = (np.asarray(a, dtype=np.float32) for a in x)
        return np.stack([(fwd * WEIGHTS).sum(axis=(1, 2)), (rev * WEIGHTS).sum(axis=(1, 2))], axis=1)

"""Test model: a fixed position weight matrix over an (8, 4) one-hot window, plus its G/C count."""

import numpy as np

WEIGHTS = ((np.arange(32, dtype=np.float32) ** 2) % 11 + 1.0).reshape(8, 4) / 10.0


class PositionWeights:
    def predict_on_batch(self, x):
        x = np.asarray(x, dtype=np.float32)
        return np.stack([(x * WEIGHTS).sum(axis=(1, 2)), x[:, :, 1:3].sum(axis=(1, 2))], axis=1)

"""Test model over FactorNet-style inputs: fixed weights on DNA, signal channels and features.

Output 0 reads ``seq`` (DNA and signals) plus the features, output 1 reads ``seq_rc``, so a test
can tell which input received which sequence.
"""

import numpy as np

DNA_W = ((np.arange(48, dtype=np.float32) ** 2) % 13 + 1.0).reshape(12, 4) / 10.0
SIG_W = (np.arange(24, dtype=np.float32) % 5 + 1.0).reshape(12, 2) / 7.0
META_W = np.array([0.5, -1.0, 2.0], dtype=np.float32)


def _read(x):
    x = np.asarray(x, dtype=np.float32)
    return (x[..., :4] * DNA_W).sum(axis=(1, 2)) + (x[..., 4:] * SIG_W).sum(axis=(1, 2))


class TrackNet:
    def predict_on_batch(self, x):
        seq, seq_rc, meta = x
        forward = _read(seq) + np.asarray(meta, dtype=np.float32) @ META_W
        return np.stack([forward, _read(seq_rc)], axis=1)

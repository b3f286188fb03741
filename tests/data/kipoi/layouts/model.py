"""Test model: checks the layout it receives and returns a position code per sequence.

``PositionCode(layout)`` asserts the batch has the per-sample shape of ``layout`` (axes L, 4, 1),
converts it back to (N, L, 4) by its own means, and returns ``sum_{l,c} x[n, l, c] * (4 * l + c)``
plus the raw G count, so a wrong transpose or channel order gives a different number.
"""

import numpy as np


class PositionCode:
    def __init__(self, layout, length):
        self.axes = [a.strip() for a in layout.split(",")]
        self.length = int(length)

    def predict_on_batch(self, x):
        x = np.asarray(x)
        want = tuple(self.length if a == "L" else 4 if a == "4" else 1 for a in self.axes)
        assert x.shape[1:] == want, (x.shape, want)
        keep = [i + 1 for i, a in enumerate(self.axes) if a != "1"]
        squeezed = x.reshape((x.shape[0],) + tuple(x.shape[i] for i in keep))
        if [a for a in self.axes if a != "1"] == ["4", "L"]:
            squeezed = np.swapaxes(squeezed, 1, 2)
        weights = 4 * np.arange(self.length)[:, None] + np.arange(4)[None, :]
        code = (squeezed * weights).sum(axis=(1, 2))
        return np.stack([code, squeezed[:, :, 2].sum(axis=1)], axis=1)

"""A custom scoring function declared in model.yaml: the absolute change |alt - ref|."""

import numpy as np


class AbsDiff:
    """|alt - ref|, merged over strands with rc_merging."""

    def __init__(self, rc_merging="mean"):
        self.rc_merging = rc_merging

    def __call__(self, ref, alt, ref_rc=None, alt_rc=None):
        fwd = np.abs(alt - ref)
        if ref_rc is None or alt_rc is None:
            return fwd
        rc = np.abs(alt_rc - ref_rc)
        if self.rc_merging == "max":
            return np.maximum(fwd, rc)
        return (fwd + rc) / 2

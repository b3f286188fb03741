"""A custom score with an argument that has no default."""


class Scaled:
    def __init__(self, factor):
        self.factor = float(factor)

    def __call__(self, ref, alt, ref_rc=None, alt_rc=None):
        return (alt - ref) * self.factor

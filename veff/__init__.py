"""veff: variant effect prediction with deep-learning sequence models.

``import veff`` never imports torch or TensorFlow; model adapters import them when used.
"""

from __future__ import annotations

from veff._version import __version__
from veff.calibrate import calibrate
from veff.engine.describe import describe_model
from veff.errors import InputError, ModelError, OutputError, VeffError, VeffWarning
from veff.models import Model, load_model
from veff.mutation_map.compute import MutationMap, load_mutation_map
from veff.pipeline import Summary, score_variants
from veff.pipeline_splice import score_splice
from veff.scoring.registry import SCORES, Score, register_score
from veff.types import Region, Status, Variant
from veff.writers.read import read_scores

__all__ = [
    "SCORES",
    "InputError",
    "Model",
    "MutationMap",
    "ModelError",
    "OutputError",
    "Region",
    "Score",
    "Status",
    "Summary",
    "Variant",
    "VeffError",
    "VeffWarning",
    "__version__",
    "calibrate",
    "describe_model",
    "load_model",
    "load_mutation_map",
    "read_scores",
    "register_score",
    "score_splice",
    "score_variants",
]

"""Mutation maps: computing, storing and plotting them.

Mutation maps: computing them (:mod:`.compute`, :mod:`.mutagenesis`), their HDF5 format
(:mod:`.hdf5`) and plots (:mod:`.plot`).
"""

from __future__ import annotations

from veff.mutation_map.compute import MutationMap, load_mutation_map

__all__ = ["MutationMap", "load_mutation_map"]

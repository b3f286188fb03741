"""Mutation maps: computing, storing and plotting them.

Computing them: queries and files (:mod:`.compute`), one window's map (:mod:`.windows`), how
mutants are predicted (:mod:`.engines`), gradient maps (:mod:`.gradients`), tiling and mutant
tables (:mod:`.mutagenesis`); their HDF5 format (:mod:`.hdf5`) and plots (:mod:`.plot`).
"""

from __future__ import annotations

from veff.mutation_map.compute import MutationMap, load_mutation_map

__all__ = ["MutationMap", "load_mutation_map"]

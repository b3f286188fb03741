"""Variants as model inputs: alleles, window placement and the windows of a chunk.

Variants as model inputs: DNA codes and alleles (:mod:`.sequences`), window placement
(:mod:`.regions`) and the windows of a chunk of records (:mod:`.windows`).
"""

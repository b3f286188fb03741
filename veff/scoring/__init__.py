"""Scoring: registry, built-in scores, track operations and applying scores.

Scoring: the score registry and built-in scores (:mod:`.registry`), profile-track operations
(:mod:`.tracks`) and applying a run's scores to predictions (:mod:`.apply`).
"""

"""A run of ``score_variants`` as data and named stages (the order is :mod:`veff.pipeline`'s).

:mod:`~veff.run.options` (:class:`~veff.run.options.RunOptions`: every option, checked once),
:mod:`~veff.run.stages` (plan, sources, sinks, predict, score, write),
:mod:`~veff.run.hooks` (:class:`~veff.run.hooks.ShardHook`: in one process or as a shard) and
:mod:`~veff.run.summary` (what a run did).
"""

from __future__ import annotations

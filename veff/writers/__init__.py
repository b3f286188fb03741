"""Writers of veff's results, each a :class:`~veff.writers.sink.Sink`, and reading results back.

Annotated VCF, score tables, sequence dumps, the run summary and the in-memory predictions.
"""

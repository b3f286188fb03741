"""The engine: running windows through a model in batches, and what a run needs around that.

Batches through the model and output probing (:mod:`.batching`), output structure
(:mod:`.outputs`), background threads (:mod:`.threads`), progress (:mod:`.progress`) and
describing a loaded model (:mod:`.describe`).
"""

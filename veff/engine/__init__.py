"""The engine: model batches, output structure, background threads and progress.

The engine: batches through the model (:mod:`.batching`), output structure (:mod:`.outputs`),
background threads (:mod:`.threads`) and progress bars (:mod:`.progress`).
"""

"""Sharded runs on a Dask cluster.

Sharded runs on a Dask cluster: the driver (:mod:`.driver`), shard planning (:mod:`.shards`)
and the worker side (:mod:`.worker`).
"""

"""Benchmark case 7: a sharded run on a local Dask cluster against one process (veff.distributed.driver)."""

from __future__ import annotations

from pathlib import Path

from _common import FASTA, Timer, deepsea_module, make_vcf

import veff


def case_sharding(n: int, tmp: Path) -> dict[str, float]:
    """2 worker processes x 1 torch thread against 1 process x 2 torch threads, same VCF and model.

    Also checks the bytes of the sharded output against a run in one process with 1 thread
    (``threads=1``, the workers' count) and with 2.

    The model is DeepSEA (TorchScript file, so that the workers load it from its path); the VCF is
    bgzipped and tabix-indexed as a large input would be. The cluster is started, and torch
    imported in its workers, before the clock starts (reported as ``cluster_start_s``); loading
    the model is timed in both runs (the sharded run loads it in the driver and once per worker).
    """
    import pysam
    import torch
    from distributed import Client

    from veff.distributed.driver import local_cluster

    vcf = make_vcf(tmp / "shard.vcf", n, seed=7)
    gz = Path(pysam.tabix_index(str(vcf), preset="vcf", force=True, keep_original=True))
    model = tmp / "deepsea.pt"
    torch.jit.trace(deepsea_module(), torch.zeros(2, 4, 1000)).save(str(model))
    kw = {
        "rc": True,
        "seq_length": 1000,
        "batch_size": 64,
        "model_kwargs": {"input_layout": "4,L", "device": "cpu"},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        veff.score_variants(str(model), make_vcf(tmp / "warm3.vcf", 8), FASTA, tmp / "warm3.vcf.gz", **kw)
        with Timer() as one:
            veff.score_variants(str(model), gz, FASTA, tmp / "one.vcf.gz", **kw)
        with Timer() as start:
            cluster = local_cluster(2, threads=1)
            client = Client(cluster, set_as_default=False)
            client.run(lambda: __import__("torch").get_num_threads())
        try:
            with Timer() as many:
                summary = veff.score_variants(str(model), gz, FASTA, tmp / "many.vcf.gz", client=client, **kw)
            worker_threads = set(client.run(lambda: __import__("torch").get_num_threads()).values())
        finally:
            client.close()
            cluster.close()
        veff.score_variants(str(model), gz, FASTA, tmp / "one_1t.vcf.gz", threads=1, **kw)
    finally:
        torch.set_num_threads(threads)
    info = summary.distributed or {}  # type: ignore[union-attr]
    many_bytes = (tmp / "many.vcf.gz").read_bytes()
    return {
        "variants": n,
        "one_process_2_threads_s": one.seconds,
        "two_workers_1_thread_s": many.seconds,
        "overhead": many.seconds / one.seconds - 1,
        "target_overhead": 0.10,
        "shards": info.get("shards", 0),
        "shard_planning_s": info.get("plan_seconds", 0.0),
        "merge_s": info.get("merge_seconds", 0.0),
        "cluster_start_s": start.seconds,
        "torch_threads_per_worker": ",".join(map(str, sorted(worker_threads))),
        # the dense layers' BLAS sums change with the thread count, not with the shard cuts:
        "same_bytes_as_1_thread": (tmp / "one_1t.vcf.gz").read_bytes() == many_bytes,
        "same_bytes_as_2_threads": (tmp / "one.vcf.gz").read_bytes() == many_bytes,
    }

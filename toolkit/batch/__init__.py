"""Batch: one report over a parameter grid, every member in its own run folder and fresh kernel.

    members       plan the members, run them on an executor, report and publish the outcomes
    executors     ``make_executor``: the local one, or the Dask one for ``--cluster``
    local         worker processes on this machine, kernels forked from one warm template
    dask_cluster  members on a dask.distributed cluster, run folders back as bytes
    dask_local    ``--cluster local:N``: a LocalCluster started while the batch is planned
    dask_tls      the client's CA, certificate and key for ``--cluster tls://``
    bundle        the project (notebooks, templates) and run folders packed for the cluster

Nothing is imported here.
"""

"""Batch jobs (evaluation suites, dissection, certification): the same split into independent
parts runs in-process, as one ``--shard K/N`` slice (a Kubernetes Indexed Job) or as Ray tasks.

``rundir``: the one resumable run-directory layout (run record, parts, continuing a run);
``shard``: the slice of parts this process computes; ``metrics``: Prometheus progress metrics
(textfile collector + optional Pushgateway); ``ray_backend``: parts as Ray tasks; ``progress``: progress
bars that print plain lines when the output is not a terminal.
"""

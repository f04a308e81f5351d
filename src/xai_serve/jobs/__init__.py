"""Batch jobs (evaluation suites, dissection, certification): the same split into independent
parts runs in-process, as one ``--shard K/N`` slice (a Kubernetes Indexed Job) or as Ray tasks.

``shard``: the slice of parts this process computes; ``metrics``: Prometheus progress metrics
(textfile collector + optional Pushgateway); ``ray_backend``: parts as Ray tasks.
"""

"""Serving: TorchServe handler, archive builder, server control and the transport-neutral service.

- ``decode``: wire payload -> ``ExplainRequest`` -> validated, normalised model input
- ``service``: ``ExplainService`` (decode -> predict -> explain -> encode, one answer per request)
- ``encode``: per-transport response encoding (gRPC bytes; HTTP JSON / protobuf / PNG + status)
- ``handler``: ``XaiHandler``, the TorchServe entry class (``handlers/xai_handler.py`` subclasses it)
- ``archive``: ``xai archive`` (checkpoint -> ``.mar``)
- ``server``: ``xai serve`` start / wait-until-READY / stop by PID
- ``metrics``: Prometheus metrics declared for TorchServe and emitted by the handler
- ``protogen``: regenerates ``client/src/xai_client/api`` from ``protos/``
- ``demo``: the serving half of ``make demo``
- ``commands``: the CLI commands

Nothing here is imported by ``import xai_serve.serving`` itself (no torch at import time).
"""

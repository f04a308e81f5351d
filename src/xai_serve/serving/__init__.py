"""Serving: TorchServe handler, archive builder, server control and the transport-neutral service.

- ``wire``: one TorchServe request (gRPC, HTTP protobuf, JSON, raw image) -> ``ExplainRequest``
- ``inputs``: the request's image bytes or pixel tensor -> the model's normalised input, size-limited
- ``validate``: a request checked against the served model (methods, target, enums, deadline, cost)
- ``service``: ``ExplainService`` (decode -> predict -> explain -> encode, one answer per request),
  with one ``batch.ServedBatch`` per call
- ``ports``: the service's typed ports (``ExplanationEngine``, ``UnitEvidence``) and the production
  engine ``RegistryEngine``; ``observer``: the metrics port and the wire Status of a failure
- ``heatmaps``: one engine result row -> one wire ``Heatmap`` (values, PNG overlay, stats, evidence);
  ``evidence``: the ``decomposed`` method's filters; ``components``: models with several outputs
- ``encode``: per-transport response encoding (gRPC bytes; HTTP JSON / protobuf / PNG + status)
- ``handler``: ``XaiHandler``, the TorchServe entry class (``handlers/xai_handler.py`` subclasses it)
- ``archive``: ``xai archive`` (checkpoint -> ``.mar``)
- ``server``: ``xai serve`` start / wait-until-READY / stop by PID
- ``metrics``: Prometheus metrics declared for TorchServe and emitted by the handler
- ``protogen``: regenerates ``client/src/xai_client/api`` from ``protos/``
- ``commands``: the CLI commands

Nothing here is imported by ``import xai_serve.serving`` itself (no torch at import time).
"""

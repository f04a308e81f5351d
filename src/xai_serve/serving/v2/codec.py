"""The server's half of the Open Inference Protocol (v2) mapping, transport-neutral.

:func:`decode` turns one v2 request (its single input tensor and its parameters, in the names of
:mod:`xai_client.oip`) into one :class:`~xai_client.api.v1.explain_pb2.ExplainRequest` per row, which
:class:`~xai_serve.serving.service.ExplainService` answers exactly as it answers TorchServe's requests
(validation, cost limits, deadlines, NaN guard); :func:`encode` stacks the row answers into the v2 outputs.
A v2 answer has no per-row status: the first failed row fails the request with its error, mapped by
:func:`failure_of` to the protocol's HTTP status and gRPC code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf import json_format
from xai_client import oip
from xai_client.api.v1 import explain_pb2 as pb
from xai_client.oip import V2Tensor
from xai_client.targets import TargetSyntaxError, parse_output_form, parse_target
from xai_client.tensors import from_proto, to_proto
from xai_client.values import value_options

from xai_serve.errors import InvalidInputError, InvalidParameterError, InvalidTargetError, XaiError
from xai_serve.models import ModelCard

# google.rpc.Code name -> (HTTP status, gRPC status name) of a failed v2 request
_FAILURES: dict[str, tuple[int, str]] = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "NOT_FOUND": (400, "INVALID_ARGUMENT"),  # an unknown method: the request is invalid, the model exists
    "OUT_OF_RANGE": (400, "INVALID_ARGUMENT"),  # e.g. a non-finite explanation (never served)
    "FAILED_PRECONDITION": (400, "FAILED_PRECONDITION"),  # a method refused by the archive's credentials
    "RESOURCE_EXHAUSTED": (413, "RESOURCE_EXHAUSTED"),
    "UNAUTHENTICATED": (401, "UNAUTHENTICATED"),
    "DEADLINE_EXCEEDED": (504, "DEADLINE_EXCEEDED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
}


@dataclass(frozen=True)
class Failure:
    """A failed v2 request: HTTP status, gRPC status code name and message."""

    http_status: int
    grpc_code: str
    message: str


def failure_of(code: str, message: str) -> Failure:
    http, grpc_code = _FAILURES.get(code, (500, "INTERNAL"))
    return Failure(http, grpc_code, message)


def failure_of_status(status: pb.Status) -> Failure:
    return failure_of(pb.Code.Name(status.code), status.message)


def plain_parameters(params: Mapping[str, object] | None) -> dict[str, oip.Param]:
    """Request parameters as Python values: a REST dict as it is; gRPC ``InferParameter`` messages by
    their set field (a float sent by a Triton client reaches KServe's protos with no field set: refused)."""
    out: dict[str, oip.Param] = {}
    for key, value in (params or {}).items():
        which = getattr(value, "WhichOneof", None)
        if which is not None:
            field = which("parameter_choice")
            if field is None:
                raise InvalidParameterError(f"parameter {key!r} has no value (send numbers as strings)")
            value = getattr(value, field)
        if not isinstance(value, str | int | bool):
            raise InvalidParameterError(
                f"parameter {key!r} must be a string, integer or bool, not {type(value).__name__}"
            )
        out[key] = value
    return out


def decode(
    inputs: Sequence[V2Tensor], params: Mapping[str, oip.Param], card: ModelCard, *, request_id: str = ""
) -> list[pb.ExplainRequest]:
    """One ExplainRequest per row of the v2 request (typed XaiError on bad input or parameters)."""
    if len(inputs) != 1:
        raise InvalidInputError(f"expected one input tensor ({oip.INPUT!r}), got {len(inputs)}")
    template = _template(params, card, request_id)
    rows = []
    for item in _rows(inputs[0], card):
        req = pb.ExplainRequest()
        req.CopyFrom(template)
        if isinstance(item, bytes):
            req.input.encoded = item
        else:
            to_proto(item, req.input.tensor)
        rows.append(req)
    return rows


def _rows(t: V2Tensor, card: ModelCard) -> list[bytes | np.ndarray]:
    if t.datatype == "BYTES":
        if len(t.shape) not in (1, 2) or (len(t.shape) == 2 and t.shape[1] != 1):
            raise InvalidInputError(f"a BYTES input is shaped [B] (one encoded image per row), not {t.shape}")
        items = np.asarray(t.data, dtype=object).reshape(-1)
        if not len(items):
            raise InvalidInputError("the input has no rows")
        if t.parameters.get(oip.CONTENT_TYPE) == oip.BASE64:
            try:
                return [*oip.from_base64(list(items))]
            except ValueError as exc:
                raise InvalidInputError(str(exc)) from None
        return [bytes(i) if isinstance(i, bytes | bytearray) else str(i).encode() for i in items]
    if t.datatype != "FP32":
        raise InvalidInputError(f"input datatype {t.datatype} is not supported: send BYTES or FP32")
    expected = [int(s) for s in card.input_shape]
    if len(t.shape) != 4 or list(t.shape[1:]) != expected or t.shape[0] < 1:
        raise InvalidInputError(
            f"an FP32 input is shaped [B, {', '.join(map(str, expected))}], not {t.shape}"
        )
    x = np.asarray(t.data, dtype=np.float32).reshape(t.shape)
    return [np.ascontiguousarray(row) for row in x]


def _template(params: Mapping[str, oip.Param], card: ModelCard, request_id: str) -> pb.ExplainRequest:
    """Everything of a row's request but its input, from the request parameters."""
    unknown = [k for k in params if k.startswith("xai_") and k not in oip.REQUEST_PARAMETERS]
    unknown = [k for k in unknown if not k.startswith(oip.PARAM_PREFIX)]
    if unknown:
        raise InvalidParameterError(
            f"unknown parameter {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(oip.REQUEST_PARAMETERS)}, {oip.PARAM_PREFIX}METHOD.NAME"
        )
    req = pb.ExplainRequest(request_id=request_id, top_k=card.num_classes)
    names = [n.strip() for n in str(params.get(oip.METHODS, "")).split(",") if n.strip()]
    method_params: dict[str, dict[str, str]] = {n: {} for n in names}
    for key, value in params.items():
        if not key.startswith(oip.PARAM_PREFIX):
            continue
        method, _, name = key[len(oip.PARAM_PREFIX) :].partition(".")
        if method not in method_params or not name:
            raise InvalidParameterError(
                f"parameter {key!r}: write {oip.PARAM_PREFIX}METHOD.NAME for a method in {oip.METHODS}"
            )
        method_params[method][name] = _text(value)
    for name in names:
        req.methods.add(name=name, params=method_params[name])
    try:
        req.target.CopyFrom(parse_target(_text(params[oip.TARGET]) if oip.TARGET in params else None))
        req.output = parse_output_form(_text(params.get(oip.OUTPUT, "")))
    except TargetSyntaxError as exc:
        raise InvalidTargetError(str(exc)) from exc
    try:
        req.values.CopyFrom(
            value_options(_text(params.get(oip.REDUCE, "none")), _text(params.get(oip.VALUE_TYPE, "float32")))
        )
        req.deadline_unix_s = float(params.get(oip.DEADLINE, 0) or 0)
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from exc
    return req


def _text(value: oip.Param) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def top_k_of(params: Mapping[str, oip.Param]) -> int:
    """The ``xai_top_k`` parameter (0: none); InvalidParameterError when it is not a count."""
    try:
        k = int(params.get(oip.TOP_K, 0) or 0)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{oip.TOP_K} must be an integer, not {params[oip.TOP_K]!r}") from exc
    if k < 0:
        raise InvalidParameterError(f"{oip.TOP_K} must be >= 0, not {k}")
    return k


# ------------------------------------------------------------------------------------------- encoding


def encode(
    responses: Sequence[pb.ExplainResponse], card: ModelCard, *, top_k: int = 0
) -> tuple[list[V2Tensor], dict[str, oip.Param]]:
    """The v2 outputs and response parameters of the OK answers of one request's rows."""
    k = card.num_classes
    probs = np.zeros((len(responses), k), dtype=np.float32)
    logits = np.zeros((len(responses), k), dtype=np.float32)
    for b, resp in enumerate(responses):
        for s in resp.prediction.top:
            probs[b, s.index], logits[b, s.index] = s.probability, s.logit
    predicted = np.array([r.prediction.top[0].index for r in responses], dtype=np.int64)
    outputs = [
        V2Tensor.of(oip.PROBABILITIES, probs),
        V2Tensor.of(oip.LOGITS, logits),
        V2Tensor.of(oip.PREDICTED_CLASS, predicted),
    ]
    if top_k:
        n = min(top_k, k)
        labels = np.array(
            [[s.label.encode("utf-8") for s in r.prediction.top[:n]] for r in responses], dtype=object
        ).reshape(len(responses), n)
        outputs.append(V2Tensor.of(oip.TOP_LABELS, labels))
    for j, named in enumerate(responses[0].prediction.outputs):
        maps = np.stack([from_proto(r.prediction.outputs[j].tensor) for r in responses])
        outputs.append(V2Tensor.of(oip.MAP + named.name, maps))
    outputs += _heatmap_outputs(responses)
    timings = [json_format.MessageToDict(r.timings, preserving_proto_field_name=True) for r in responses]
    return outputs, {oip.TIMINGS: json.dumps(timings)}


def _heatmap_outputs(responses: Sequence[pb.ExplainResponse]) -> list[V2Tensor]:
    methods = list(dict.fromkeys(h.method for h in responses[0].heatmaps))
    if not methods:
        return []
    per_row = len(responses[0].heatmaps) // len(methods)  # targets per row (the service: for t, for m)
    lead = [len(responses)] if per_row == 1 else [len(responses), per_row]
    out = []
    for m in methods:
        maps = [h for r in responses for h in r.heatmaps if h.method == m]
        first = maps[0]
        evidence = np.empty(len(maps), dtype=object)
        for i, h in enumerate(maps):
            evidence[i] = _evidence_json(h).encode("utf-8")
        if first.HasField("values"):
            values = np.stack([from_proto(h.values) for h in maps])
            params: dict[str, oip.Param] = {"signed": first.signed, "kind": first.kind}
            if first.layer:
                params["layer"] = first.layer
            if first.HasField("credential"):
                params["credential"] = json_format.MessageToJson(
                    first.credential, preserving_proto_field_name=True, indent=None
                )
            if "conservation" in first.stats:
                params["conservation"] = json.dumps([h.stats.get("conservation", 0.0) for h in maps])
            if any(h.values.scale or h.values.offset for h in maps):
                params["scale"] = json.dumps([h.values.scale for h in maps])
                params["offset"] = json.dumps([h.values.offset for h in maps])
            out.append(V2Tensor.of(oip.HEATMAP + m, values.reshape(lead + list(values.shape[1:])), params))
        out.append(V2Tensor.of(oip.EVIDENCE + m, evidence.reshape(lead)))
        if any(h.png for h in maps):
            png = np.empty(len(maps), dtype=object)
            for i, h in enumerate(maps):
                png[i] = bytes(h.png)
            out.append(V2Tensor.of(oip.PNG + m, png.reshape(lead)))
        if any(h.filters for h in maps):
            out.append(V2Tensor.of(oip.FILTER_MAPS + m, _filter_maps(maps, lead)))
    return out


def _evidence_json(h: pb.Heatmap) -> str:
    """The heatmap without its values, PNG and filter maps (those travel as tensors)."""
    e = pb.Heatmap()
    e.CopyFrom(h)
    e.ClearField("values")
    e.ClearField("png")
    for f in e.filters:
        f.ClearField("map")
    return json_format.MessageToJson(e, preserving_proto_field_name=True, indent=None)


def _filter_maps(maps: Sequence[pb.Heatmap], lead: list[int]) -> np.ndarray:
    count = max(len(h.filters) for h in maps)
    shape = next(list(from_proto(f.map).shape) for h in maps for f in h.filters)
    out = np.zeros([len(maps), count, *shape], dtype=np.float32)
    for i, h in enumerate(maps):
        for j, f in enumerate(h.filters):
            out[i, j] = from_proto(f.map)
    return out.reshape([*lead, count, *shape])


def failed_row(responses: Sequence[pb.ExplainResponse]) -> Failure | None:
    """The failure of the first row that failed (a v2 answer is all rows or an error), or None."""
    for b, resp in enumerate(responses):
        if resp.status.code != pb.OK:
            f = failure_of_status(resp.status)
            prefix = f"row {b}: " if len(responses) > 1 else ""
            return Failure(f.http_status, f.grpc_code, prefix + f.message)
    return None


def failure_of_error(exc: XaiError) -> Failure:
    return failure_of(exc.code, str(exc))

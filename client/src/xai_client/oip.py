"""The Open Inference Protocol (KServe "v2") form of xai-serve's requests and answers: one table of names.

A v2 request carries one input tensor (the model metadata names it ``input``; any single input is
accepted): ``BYTES`` shaped ``[B]`` (one encoded PNG/JPEG per row) or ``FP32`` shaped ``[B, C, H, W]`` with
values in [0, 1] at the model's input size (the server normalises with the card's mean/std). Over REST a
``BYTES`` input may carry its images as base64 JSON strings with the input parameter
``content_type: "base64"`` (MLServer's convention): KServe's REST server refuses binary-data ``BYTES``
that are not UTF-8 text (it re-reads them as JSON strings), so encoded images go that way.
Request ``parameters`` (every value a string, bool or integer: float parameters are lost or refused by
standard gRPC clients, so numbers travel as strings and are parsed server-side):

======================  ==========================================================================
``xai_methods``         comma-separated method names; absent: a prediction only
``xai_target``          the target grammar of :mod:`xai_client.targets` (``predicted``, ``7``, ``top3``,
                        ``yg:14,9:predicted``)
``xai_value_type``      ``float32`` (default), ``float16``, ``uint8`` (:mod:`xai_client.values`)
``xai_reduce``          channel reduction ``none`` (default), ``sum``, ``abs_sum``, ``max_abs``
``xai_output``          ``tensor`` (default), ``png``, ``both``: overlay PNGs as ``png_<method>``
``xai_top_k``           also answer ``top_labels`` (the labels of the k most probable classes)
``xai_deadline_unix_s`` the client's deadline (Unix seconds, as text)
``xai_param.M.NAME``    parameter NAME of method M (text, as ``xai methods`` documents it)
======================  ==========================================================================

Outputs (``T`` = targets per row: 1, or K for ``topK``; the ``T`` axis only when ``T > 1``):

* ``probabilities`` FP32 ``[B, K]``, ``logits`` FP32 ``[B, K]``, ``predicted_class`` INT64 ``[B]``;
  ``top_labels`` BYTES ``[B, k]`` with ``xai_top_k``; ``map_<output>`` per extra model output (the
  predicted map of a multi-output model, ``[B, H, W]``);
* per method M: ``heatmap_M`` (FP32, or FP16 / UINT8 with ``xai_value_type``) ``[B, (T,) C or 1, H, W]``
  at the input size, with parameters ``layer``, ``signed``, ``kind``, ``credential`` (JSON) and, for LRP,
  ``conservation`` (JSON list, one per map); FP16 / UINT8 values are ``data * scale + offset`` with
  ``scale`` / ``offset`` JSON lists (one per map);
* ``evidence_M`` BYTES ``[B, (T)]``: per map a JSON document (the proto3 JSON of
  :class:`~xai_client.api.v1.explain_pb2.Heatmap` without values and PNG): target, statistics,
  resolved component target, ``decomposed`` filters (filter, contribution), dissected units;
* ``filter_maps_M`` FP32 ``[B, (T,) F, H, W]`` for a method with filter evidence (``decomposed``): the
  filters' activation maps in the order of ``evidence_M``'s ``filters`` (zero-padded to the largest F);
* ``png_M`` BYTES ``[B, (T)]`` with ``xai_output`` ``png`` / ``both``.

Response parameter ``timings``: JSON list of the per-row timings. Errors: HTTP 400 (invalid input,
unknown method or parameter), 413 (over a cost limit), 401 (no valid token), 504 (deadline) with
``{"error": ...}``; gRPC INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAUTHENTICATED, DEADLINE_EXCEEDED.

:func:`request_to_v2` and :func:`responses_from_v2` are the client's half (an ``ExplainRequest`` to a v2
request and the v2 answer back to one ``ExplainResponse`` per row); the server's half is
``xai_serve.serving.v2.codec``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from google.protobuf import json_format

from xai_client.api.v1 import explain_pb2 as pb
from xai_client.targets import format_target
from xai_client.tensors import to_proto
from xai_client.values import REDUCTIONS, VALUE_TYPES

INPUT = "input"
METHODS = "xai_methods"
TARGET = "xai_target"
VALUE_TYPE = "xai_value_type"
REDUCE = "xai_reduce"
OUTPUT = "xai_output"
TOP_K = "xai_top_k"
DEADLINE = "xai_deadline_unix_s"
PARAM_PREFIX = "xai_param."
CONTENT_TYPE, BASE64 = "content_type", "base64"  # input parameter: BYTES rows as base64 text (REST)
REQUEST_PARAMETERS = (METHODS, TARGET, VALUE_TYPE, REDUCE, OUTPUT, TOP_K, DEADLINE)

PROBABILITIES = "probabilities"
LOGITS = "logits"
PREDICTED_CLASS = "predicted_class"
TOP_LABELS = "top_labels"
HEATMAP, EVIDENCE, FILTER_MAPS, PNG, MAP = "heatmap_", "evidence_", "filter_maps_", "png_", "map_"
TIMINGS = "timings"

# v2 datatype <-> numpy
DATATYPES: dict[str, np.dtype] = {
    "FP32": np.dtype("float32"),
    "FP16": np.dtype("float16"),
    "FP64": np.dtype("float64"),
    "UINT8": np.dtype("uint8"),
    "INT32": np.dtype("int32"),
    "INT64": np.dtype("int64"),
    "BOOL": np.dtype("bool"),
    "BYTES": np.dtype(object),
}
_NUMPY_TO_V2 = {v.name: k for k, v in DATATYPES.items() if k != "BYTES"}
_PB_DTYPE = {"float32": pb.DTYPE_FLOAT32, "float16": pb.DTYPE_FLOAT16, "uint8": pb.DTYPE_UINT8}

Param = str | int | bool


@dataclass
class V2Tensor:
    """One v2 tensor, transport-neutral: ``data`` a numpy array (BYTES: an object array of bytes)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    parameters: dict[str, Param] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, array: np.ndarray, parameters: dict[str, Param] | None = None) -> V2Tensor:
        array = np.asarray(array)
        datatype = "BYTES" if array.dtype == object else _NUMPY_TO_V2[array.dtype.name]
        return cls(name, datatype, [int(s) for s in array.shape], array, dict(parameters or {}))


def to_base64(t: V2Tensor) -> list[str]:
    """The rows of a ``BYTES`` tensor as base64 text (sent with ``CONTENT_TYPE: BASE64``)."""
    rows = np.asarray(t.data, dtype=object).reshape(-1)
    return [base64.b64encode(_bytes(item)).decode("ascii") for item in rows]


def from_base64(items: Sequence[object]) -> list[bytes]:
    """The bytes of base64 rows (ValueError when one is not base64)."""
    try:
        return [base64.b64decode(_bytes(item), validate=True) for item in items]
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"a {CONTENT_TYPE}={BASE64} input row is not base64: {exc}") from None


def datatype_of(name: str) -> np.dtype:
    """The numpy dtype of v2 datatype ``name`` (ValueError for one xai-serve does not handle)."""
    if name not in DATATYPES:
        raise ValueError(f"datatype {name!r} is not one of {', '.join(DATATYPES)}")
    return DATATYPES[name]


# ---------------------------------------------------------------------------------------- client's half


def request_to_v2(req: pb.ExplainRequest) -> tuple[list[V2Tensor], dict[str, Param]]:
    """The v2 inputs and request parameters of ``req`` (one row)."""
    kind = req.input.WhichOneof("data")
    if kind == "encoded":
        inputs = [V2Tensor.of(INPUT, np.array([req.input.encoded], dtype=object))]
    elif kind == "tensor":
        if req.input.normalized:
            raise ValueError(
                "protocol v2 takes pixels in [0, 1] (the server normalises): not normalized=True"
            )
        from xai_client.tensors import from_proto

        x = np.asarray(from_proto(req.input.tensor), dtype=np.float32)
        if req.input.tensor.dtype == pb.DTYPE_UINT8:
            x = x / np.float32(255.0)
        if x.ndim == 2:
            x = x[None]
        if x.ndim == 3:
            x = x[None]
        inputs = [V2Tensor.of(INPUT, np.ascontiguousarray(x, dtype=np.float32))]
    else:
        raise ValueError("the request has no input")
    params: dict[str, Param] = {}
    if req.methods:
        params[METHODS] = ",".join(m.name for m in req.methods)
        for m in req.methods:
            for k, v in m.params.items():
                params[f"{PARAM_PREFIX}{m.name}.{k}"] = v
    if req.HasField("target"):
        params[TARGET] = format_target(req.target)
    if req.values.value_type:
        params[VALUE_TYPE] = _name_of(VALUE_TYPES, req.values.value_type)
    if req.values.reduction:
        params[REDUCE] = _name_of(REDUCTIONS, req.values.reduction)
    if req.output in (pb.OUTPUT_FORM_PNG, pb.OUTPUT_FORM_BOTH):
        params[OUTPUT] = "png" if req.output == pb.OUTPUT_FORM_PNG else "both"
    params[TOP_K] = int(req.top_k or 5)
    if req.deadline_unix_s:
        params[DEADLINE] = repr(float(req.deadline_unix_s))
    return inputs, params


def _name_of(table: Mapping[str, int], value: int) -> str:
    return next(k for k, v in table.items() if v == value)


def responses_from_v2(
    outputs: Sequence[V2Tensor], parameters: Mapping[str, Param], *, model: str, request_id: str = ""
) -> list[pb.ExplainResponse]:
    """One OK ``ExplainResponse`` per row of a v2 answer (the inverse of the server's encoding)."""
    by_name = {o.name: o for o in outputs}
    probs = np.asarray(by_name[PROBABILITIES].data, dtype=np.float32)
    logits = np.asarray(by_name[LOGITS].data, dtype=np.float32) if LOGITS in by_name else probs
    labels = by_name[TOP_LABELS].data if TOP_LABELS in by_name else None
    timings = json.loads(str(parameters.get(TIMINGS) or "[]"))
    out = []
    for b in range(probs.shape[0]):
        resp = pb.ExplainResponse(model=model, request_id=request_id)
        resp.status.code = pb.OK
        k = labels.shape[1] if labels is not None else probs.shape[1]
        for rank, c in enumerate(np.argsort(-probs[b], kind="stable")[:k]):
            label = _text(labels[b, rank]) if labels is not None else str(int(c))
            resp.prediction.top.add(
                index=int(c), label=label, probability=float(probs[b, c]), logit=float(logits[b, c])
            )
        for name, o in by_name.items():
            if name.startswith(MAP):
                to_proto(np.asarray(o.data[b]), resp.prediction.outputs.add(name=name[len(MAP) :]).tensor)
        if b < len(timings):
            json_format.ParseDict(timings[b], resp.timings)
        _heatmaps_of_row(by_name, b, resp)
        out.append(resp)
    return out


def _heatmaps_of_row(by_name: Mapping[str, V2Tensor], b: int, resp: pb.ExplainResponse) -> None:
    methods = [n[len(EVIDENCE) :] for n in by_name if n.startswith(EVIDENCE)]
    per_method = {}
    for m in methods:
        evidence = np.asarray(by_name[EVIDENCE + m].data[b], dtype=object).reshape(-1)
        per_method[m] = evidence
    count = max((len(e) for e in per_method.values()), default=0)
    for t in range(count):  # the service's order: for each target, every method
        for m in methods:
            flat = t if by_name[EVIDENCE + m].data.ndim > 1 else None
            h = resp.heatmaps.add()
            json_format.Parse(_text(per_method[m][t]), h)
            values = by_name.get(HEATMAP + m)
            if values is not None:
                v = values.data[b] if flat is None else values.data[b, t]
                to_proto(np.asarray(v), h.values)
                j = b * count + t
                for key in ("scale", "offset"):
                    if key in values.parameters:
                        setattr(h.values, key, float(json.loads(str(values.parameters[key]))[j]))
            png = by_name.get(PNG + m)
            if png is not None:
                h.png = _bytes(png.data[b] if flat is None else png.data[b, t])
            maps = by_name.get(FILTER_MAPS + m)
            if maps is not None:
                fm = maps.data[b] if flat is None else maps.data[b, t]
                for f, filt in enumerate(h.filters):
                    to_proto(np.asarray(fm[f], dtype=np.float32), filt.map)


def _text(value: object) -> str:
    return _bytes(value).decode("utf-8")


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, np.ndarray):
        return _bytes(value.item())
    return str(value).encode("utf-8")


# ------------------------------------------------------------------------------- raw (binary) tensors


def to_raw(t: V2Tensor) -> bytes:
    """The tensor's bytes in the binary-data form (little-endian; BYTES: 4-byte length + bytes each)."""
    if t.datatype == "BYTES":
        parts = []
        for item in np.asarray(t.data, dtype=object).reshape(-1):
            data = _bytes(item)
            parts.append(len(data).to_bytes(4, "little") + data)
        return b"".join(parts)
    dtype = datatype_of(t.datatype).newbyteorder("<")
    return np.ascontiguousarray(t.data, dtype=dtype).tobytes()


def from_raw(
    name: str, datatype: str, shape: Sequence[int], raw: bytes, parameters: dict | None = None
) -> V2Tensor:
    """A tensor from its binary-data form (ValueError when the byte count does not match the shape)."""
    shape = [int(s) for s in shape]
    count = math.prod(shape)
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            n = int.from_bytes(raw[pos : pos + 4], "little")
            items.append(raw[pos + 4 : pos + 4 + n])
            pos += 4 + n
        if len(items) != count:
            raise ValueError(f"{name}: {len(items)} BYTES elements for shape {shape}")
        arr = np.empty(count, dtype=object)
        arr[:] = items
        return V2Tensor(name, datatype, shape, arr.reshape(shape), dict(parameters or {}))
    dtype = datatype_of(datatype).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise ValueError(f"{name}: {len(raw)} bytes for shape {shape} of {datatype}")
    return V2Tensor(
        name, datatype, shape, np.frombuffer(raw, dtype=dtype).reshape(shape), dict(parameters or {})
    )

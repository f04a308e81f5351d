"""Request validation against the served model: methods, target, enums, deadline and cost.

Runs before the model does; everything here raises a typed :class:`~xai_serve.errors.XaiError`
(unknown method, refused method, bad target, bad enum value, deadline passed, too costly).
"""

from __future__ import annotations

from collections.abc import Mapping

from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import InvalidInputError, InvalidTargetError, UnknownMethodError
from xai_serve.explain import MethodSpec
from xai_serve.models import ModelCard
from xai_serve.serving.components import component_target
from xai_serve.serving.credentials import ServedCredentials
from xai_serve.serving.limits import CostLimits, check_deadline


def validate_request(
    req: pb.ExplainRequest,
    card: ModelCard,
    methods: Mapping[str, MethodSpec],
    credentials: ServedCredentials,
    cost_limits: CostLimits,
) -> None:
    """Check ``req`` against the model ``card``, the ``methods`` served, the archive's credentials
    (MethodRefusedError in refusal mode) and the cost limits."""
    seen = set()
    for m in req.methods:
        if m.name not in methods:
            raise UnknownMethodError(f"unknown method {m.name!r}; available: {', '.join(sorted(methods))}")
        if m.name in seen:
            raise InvalidInputError(f"method {m.name!r} is requested twice")
        credentials.check(m.name)
        seen.add(m.name)
    validate_target(req.target, card.num_classes)
    if req.target.WhichOneof("kind") == "component":  # a scalar of a named output map
        component_target(req.target.component, card)
    if req.top_k < 0:
        raise InvalidInputError(f"top_k must be >= 0, not {req.top_k}")
    check_enums(req)
    check_deadline(req.deadline_unix_s)
    if req.methods:
        kind = req.target.WhichOneof("kind")
        rows = (
            req.target.top_k
            if kind == "top_k"
            else len(req.target.classes.indices)
            if kind == "classes"
            else 1
        )
        cost_limits.check(
            rows, {m.name: (methods[m.name], m.params) for m in req.methods}, tuple(card.input_shape)
        )


def validate_target(target: pb.Target, num_classes: int) -> None:
    kind = target.WhichOneof("kind")
    if kind == "class_index" and not 0 <= target.class_index < num_classes:
        raise InvalidTargetError(
            f"target class {target.class_index} is out of range: the model has "
            f"{num_classes} classes (0..{num_classes - 1})"
        )
    if kind == "top_k" and not 1 <= target.top_k <= num_classes:
        raise InvalidTargetError(f"target top_k={target.top_k} must be in 1..{num_classes}")
    if kind == "classes":
        bad = [c for c in target.classes.indices if not 0 <= c < num_classes]
        if not target.classes.indices or bad:
            raise InvalidTargetError(
                f"target classes {list(target.classes.indices)} must be a non-empty list of classes in "
                f"0..{num_classes - 1}"
            )


def check_enums(req: pb.ExplainRequest) -> None:
    """Enum values outside their enum (a newer client, or garbage) are INVALID_ARGUMENT, not ignored."""
    for field_name, enum, value in (
        ("output", pb.OutputForm, req.output),
        ("values.reduction", pb.ChannelReduction, req.values.reduction),
        ("values.value_type", pb.ValueType, req.values.value_type),
    ):
        if value not in enum.values():
            raise InvalidInputError(
                f"{field_name}={value} is not a value of {enum.DESCRIPTOR.name} "
                f"({', '.join(f'{n}={v}' for n, v in enum.items())})"
            )

"""The one textual grammar of explanation targets and the one table of output-form names.

Used by the client (``Client.explain(target=...)``), both CLIs (``xai explain``, ``xai-client explain``)
and the server's decoder of raw-image requests (``X-Xai-Target`` / ``X-Xai-Output`` headers, multipart
fields). Grammar (case-insensitive keywords, no spaces inside a component)::

    target    := "predicted" | CLASS | CLASS "," CLASS ["," CLASS ...] | "top" K | "top-" K | "top_" K
               | "top:" K | component
    component := OUTPUT ":" ROW "," COL [ ":" ( CHANNEL | "predicted" ) ]

* ``CLASS`` a class index (``0``, ``7``; not negative); ``""`` or ``None`` means ``predicted``;
* ``3,5,7`` a list of classes (a Python list or tuple of ints too), one heatmap per method and class, in
  that order (the server explains them with one forward pass);
* ``topK`` the K (>= 1) most probable classes, one heatmap per method and class (``top3``); a bare
  ``top`` is refused (write ``top1``);
* a component of a named model output
  (the card's ``outputs``; the General Pattern Theory ``yg`` / ``ys`` maps): ``yg:14,9:predicted`` is
  ``yg[b, argmax_c yg[b, :, 14, 9], 14, 9]``, ``yg:14,9:3`` channel 3; without a channel part the arg-max
  channel is used (``yg:14,9`` == ``yg:14,9:predicted``).

:func:`parse_target` returns the wire :class:`~xai_client.api.v1.explain_pb2.Target` and raises
:class:`TargetSyntaxError` (a ``ValueError``) naming the grammar; :func:`format_target` is its inverse.
"""

from __future__ import annotations

import re

import numpy as np

from xai_client.api.v1 import explain_pb2 as pb

GRAMMAR = (
    "a class index, a list of classes (e.g. 3,5,7), 'predicted', 'topK' (e.g. top3) or a component "
    "'OUTPUT:ROW,COL[:CHANNEL|predicted]'"
)

# output-form names of OutputForm (the one table; "" leaves it unspecified = tensor)
OUTPUT_FORMS: dict[str, pb.OutputForm] = {
    "tensor": pb.OUTPUT_FORM_TENSOR,
    "png": pb.OUTPUT_FORM_PNG,
    "both": pb.OUTPUT_FORM_BOTH,
}

_TOP = re.compile(r"top[-_:]?(\d+)")
_CLASSES = re.compile(r"\d+(?:,\d+)+")
_COMPONENT = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*):(\d+),(\d+)(?::(\d+|(?i:predicted)))?")

TargetLike = int | str | pb.Target | list[int] | tuple[int, ...] | None


class TargetSyntaxError(ValueError):
    """A target or output-form text that does not follow the grammar (the message shows it)."""


def parse_target(target: TargetLike) -> pb.Target:
    """The wire Target for ``target`` (an int, a text of the grammar, a Target message or None)."""
    if isinstance(target, pb.Target):
        out = pb.Target()
        out.CopyFrom(target)
        return out
    msg = pb.Target()
    if target is None:
        msg.predicted = True
        return msg
    if isinstance(target, bool):
        raise TargetSyntaxError(f"a bool is not a target; use {GRAMMAR}")
    if isinstance(target, int | np.integer):
        if int(target) < 0:
            raise TargetSyntaxError(f"class index {int(target)} is negative")
        msg.class_index = int(target)
        return msg
    if isinstance(target, list | tuple):
        if not target or any(isinstance(c, bool) or not isinstance(c, int | np.integer) for c in target):
            raise TargetSyntaxError(f"a list target needs class indices, got {target!r}")
        if any(int(c) < 0 for c in target):
            raise TargetSyntaxError(f"class indices must not be negative, got {list(target)!r}")
        msg.classes.indices.extend(int(c) for c in target)
        return msg
    if not isinstance(target, str):
        raise TargetSyntaxError(f"unsupported target {target!r}: use {GRAMMAR}")
    text = target.strip()
    lowered = text.lower()
    if lowered in ("", "predicted"):
        msg.predicted = True
    elif text.isdigit():
        msg.class_index = int(text)
    elif _CLASSES.fullmatch(text.replace(" ", "")) is not None:
        msg.classes.indices.extend(int(c) for c in text.replace(" ", "").split(","))
    elif (match := _COMPONENT.fullmatch(text)) is not None:
        output, row, col, channel = match.groups()
        comp = msg.component
        comp.output, comp.row, comp.col = output, int(row), int(col)
        if channel is None or not channel.isdigit():
            comp.predicted_channel = True
        else:
            comp.channel = int(channel)
    elif lowered.startswith("top") and "," not in lowered:
        match = _TOP.fullmatch(lowered)
        if match is None or int(match.group(1)) < 1:
            raise TargetSyntaxError(f"target {target!r}: write topK with K >= 1 (e.g. top3)")
        msg.top_k = int(match.group(1))
    else:
        raise TargetSyntaxError(f"target {target!r} is not {GRAMMAR}")
    return msg


def format_target(target: pb.Target) -> str:
    """The text of ``target`` in the grammar (``parse_target(format_target(t)) == t``)."""
    kind = target.WhichOneof("kind")
    if kind == "class_index":
        return str(target.class_index)
    if kind == "top_k":
        return f"top{target.top_k}"
    if kind == "classes":
        return ",".join(str(c) for c in target.classes.indices)
    if kind == "component":
        c = target.component
        channel = str(c.channel) if c.WhichOneof("channel_kind") == "channel" else "predicted"
        return f"{c.output}:{c.row},{c.col}:{channel}"
    return "predicted"


def parse_output_form(text: str | None) -> pb.OutputForm:
    """The OutputForm value of ``text`` (``tensor``, ``png``, ``both``; empty: unspecified)."""
    name = (text or "").strip().lower()
    if not name:
        return pb.OUTPUT_FORM_UNSPECIFIED
    if name not in OUTPUT_FORMS:
        raise TargetSyntaxError(f"output must be one of {', '.join(OUTPUT_FORMS)}, not {text!r}")
    return OUTPUT_FORMS[name]

"""Typed method parameters: each method declares its parameters as :class:`ParamSpec` values.

Parameters may arrive as Python values or as strings from the wire (``"0.25"``, ``"true"``,
``"0.1307,0.3081"``); :func:`convert_params` turns them into the declared type, checks choices and
ranges and raises :class:`~xai_serve.errors.InvalidParameterError` naming the offending parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from xai_serve.errors import InvalidParameterError

ParamType = Literal["int", "float", "bool", "str", "float_list", "layer"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ParamSpec:
    """One method parameter.

    ``type`` is one of ``int``, ``float``, ``bool``, ``str``, ``float_list`` (list of floats, e.g. a
    per-channel mean) and ``layer`` (a module name such as ``"layer4.1.conv2"`` or an integer index
    into ``model.features``; kept as ``str`` or ``int``). ``default=None`` means "not set" (the method
    then derives a value, e.g. the last conv layer). ``choices`` restricts ``str`` values; ``minimum``
    and ``maximum`` bound numbers (inclusive); ``above`` is an exclusive lower bound (a stabiliser
    must be ``> 0``: at 0 a rule divides 0 by 0).
    """

    type: ParamType
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (type, default, choices, bounds, doc), as the describe call serves it."""
        out: dict[str, Any] = {"type": self.type, "default": self.default, "doc": self.help}
        for key in ("choices", "minimum", "maximum", "above"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "choices" else value
        return out

    def convert(self, name: str, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type, or raise InvalidParameterError."""
        if value is None:
            return None
        try:
            out = _CONVERTERS[self.type](value)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"parameter {name!r}: cannot read {value!r} as {self.type} ({exc})"
            ) from None
        if self.choices is not None and out not in self.choices:
            raise InvalidParameterError(
                f"parameter {name!r}: {out!r} is not one of {', '.join(self.choices)}"
            )
        numbers = out if isinstance(out, list) else [out] if isinstance(out, int | float) else []
        for number in numbers:
            if self.minimum is not None and number < self.minimum:
                raise InvalidParameterError(f"parameter {name!r}: {number} is below {self.minimum}")
            if self.maximum is not None and number > self.maximum:
                raise InvalidParameterError(f"parameter {name!r}: {number} is above {self.maximum}")
            if self.above is not None and not number > self.above:
                raise InvalidParameterError(f"parameter {name!r}: {number} must be greater than {self.above}")
        return out


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true/false")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a bool is not an int")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    return int(str(value).strip()) if isinstance(value, str) else int(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a bool is not a float")
    out = float(value.strip()) if isinstance(value, str) else float(value)
    if out != out or out in (float("inf"), float("-inf")):
        raise ValueError("not finite")
    return out


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _to_float_list(value: Any) -> list[float]:
    if isinstance(value, str):
        text = value.strip()
        items: Any = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        items = [value]
    else:
        items = list(value)
    if not items:
        raise ValueError("empty list")
    return [_to_float(v) for v in items]


def _to_layer(value: Any) -> str | int:
    if isinstance(value, bool):
        raise ValueError("a bool is not a layer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        if not text:
            raise ValueError("empty layer name")
        return text
    raise ValueError("expected a module name or an index")


_CONVERTERS = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "str": _to_str,
    "float_list": _to_float_list,
    "layer": _to_layer,
}


def convert_params(method: str, specs: Mapping[str, ParamSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults of ``specs`` updated with ``given`` (converted); unknown names raise InvalidParameterError."""
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise InvalidParameterError(
            f"method {method!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {', '.join(specs) or 'none'}"
        )
    out = {name: spec.default for name, spec in specs.items()}
    for name, value in given.items():
        out[name] = specs[name].convert(name, value)
    return out

"""What a served model's methods accept: :meth:`Client.methods` returns one :class:`MethodInfo` each.

The server's method registry is the only list; its describe call (``GET /models/NAME?customized=true``,
or gRPC ``DescribeModel`` with ``customized``) serves each method's full parameter specs, which this
module turns into typed records (and help text for the CLI) without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a method: ``type`` (int, float, bool, str, float_list, layer), ``default``
    (None: the method derives it), ``doc``, allowed ``choices`` and bounds (``minimum``/``maximum``
    inclusive, ``above`` exclusive)."""

    name: str
    type: str
    default: Any
    doc: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None

    def help(self) -> str:
        """One line: ``name (type, default X, one of a|b, >= 0): doc``."""
        bits = [self.type, f"default {self.default}" if self.default is not None else "default: derived"]
        if self.choices:
            bits.append("one of " + "|".join(self.choices))
        if self.above is not None:
            bits.append(f"> {self.above:g}")
        if self.minimum is not None:
            bits.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bits.append(f"<= {self.maximum:g}")
        return f"{self.name} ({', '.join(bits)}): {self.doc}"


@dataclass(frozen=True)
class MethodInfo:
    """One served method: whether its map is ``signed``, its ``output`` kind (heatmap or image), its
    ``doc``, its parameters, cheap ``test_params`` / ``demo_params`` and its declared cost (``passes``
    per explained row, times the parameter named ``iterations`` when it iterates)."""

    name: str
    signed: bool
    output: str
    doc: str
    params: Mapping[str, ParamInfo] = field(default_factory=dict)
    test_params: Mapping[str, Any] = field(default_factory=dict)
    demo_params: Mapping[str, Any] = field(default_factory=dict)
    iterations: str | None = None
    passes: float = 1.0
    targeted: bool = True

    def help(self) -> str:
        summary = " ".join(self.doc.split("\n\n")[0].split())  # the doc's first paragraph
        lines = [f"{self.name}: {summary}"]
        lines += [f"    {p.help()}" for p in self.params.values()]
        return "\n".join(lines)


def methods_from_describe(described: Mapping[str, Any]) -> dict[str, MethodInfo]:
    """The ``methods`` section of the handler's describe answer as MethodInfo records, by name."""
    out: dict[str, MethodInfo] = {}
    for name, spec in sorted((described.get("methods") or {}).items()):
        raw_params = spec.get("params") or {}
        if not isinstance(raw_params, Mapping):  # an older server listed names only
            raw_params = {p: {"type": "str", "default": None, "doc": ""} for p in raw_params}
        params = {
            p: ParamInfo(
                name=p,
                type=str(d.get("type", "str")),
                default=d.get("default"),
                doc=str(d.get("doc", "")),
                choices=tuple(d["choices"]) if d.get("choices") is not None else None,
                minimum=d.get("minimum"),
                maximum=d.get("maximum"),
                above=d.get("above"),
            )
            for p, d in raw_params.items()
        }
        out[name] = MethodInfo(
            name=name,
            signed=bool(spec.get("signed", True)),
            output=str(spec.get("output", "heatmap")),
            doc=str(spec.get("doc", "")),
            params=params,
            test_params=dict(spec.get("test_params") or {}),
            demo_params=dict(spec.get("demo_params") or {}),
            iterations=spec.get("iterations"),
            passes=float(spec.get("passes", 1.0)),
            targeted=bool(spec.get("targeted", True)),
        )
    return out

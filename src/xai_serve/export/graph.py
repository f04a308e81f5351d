"""The layer graph of a model (``xai graph``): every module with the name that explanation
parameters take (``layer=features.3``), its type and settings, and the data flow between them,
rendered with Graphviz ``dot`` as SVG and PNG.

The data flow comes from ``torch.fx`` tracing; a model fx cannot trace is drawn as its leaf modules
in registration order, and the figure says so in its title.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from xai_serve.errors import XaiError

MAX_DETAIL = 48


class GraphvizMissingError(XaiError):
    """Graphviz's ``dot`` is not installed (Debian: ``apt-get install graphviz``; ``make venv`` does)."""

    code = "FAILED_PRECONDITION"


def _label(name: str, module: Any) -> str:
    detail = module.extra_repr() if hasattr(module, "extra_repr") else ""
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 3] + "..."
    kind = type(module).__name__
    rows = [f"<b>{html.escape(name)}</b>", html.escape(kind + (f"({detail})" if detail else ""))]
    return "<" + "<br/>".join(rows) + ">"


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(model: Any, title: str = "") -> str:
    """Graphviz source of ``model``'s layer graph (module names as the ``layer=`` parameter takes them)."""
    import torch.fx

    modules = dict(model.named_modules())
    lines = [
        "digraph model {",
        "  rankdir=TB; node [shape=box, style=rounded, fontname=Helvetica, fontsize=10];",
    ]
    try:
        traced = torch.fx.symbolic_trace(model)
        note = ""
    except Exception as e:  # data-dependent control flow: draw the module order instead
        traced = None
        note = f" (module order; data flow not traced: {type(e).__name__})"
    lines.append(f"  labelloc=t; label={_quote(title + note)};")
    if traced is None:
        leaves = [(n, m) for n, m in modules.items() if n and not list(m.children())]
        prev = None
        for n, m in leaves:
            lines.append(f"  {_quote(n)} [label={_label(n, m)}];")
            if prev is not None:
                lines.append(f"  {_quote(prev)} -> {_quote(n)};")
            prev = n
        lines.append("}")
        return "\n".join(lines) + "\n"
    ids: dict[str, str] = {}
    for node in traced.graph.nodes:
        if node.op == "get_attr":
            continue
        nid = _quote(node.name)
        ids[node.name] = nid
        if node.op == "call_module":
            lines.append(f"  {nid} [label={_label(str(node.target), modules[str(node.target)])}];")
        elif node.op == "placeholder":
            lines.append(f"  {nid} [label={_quote('input: ' + node.name)}, shape=oval];")
        elif node.op == "output":
            lines.append(f'  {nid} [label="output", shape=oval];')
        else:
            target = getattr(node.target, "__name__", str(node.target))
            lines.append(f"  {nid} [label={_quote(target)}, shape=ellipse, fontsize=9, color=gray];")
        for dep in node.all_input_nodes:
            if dep.name in ids:
                lines.append(f"  {ids[dep.name]} -> {nid};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, out_base: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Render ``dot_source`` to ``OUT_BASE.svg`` and ``OUT_BASE.png``; returns both paths."""
    from xai_serve.atomic import atomic_write_bytes

    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissingError(
            "Graphviz `dot` is not installed (apt-get install graphviz; `make venv` does)"
        )
    base = Path(out_base)
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in ("svg", "png"):
        done = subprocess.run([dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, check=False)
        if done.returncode != 0:
            raise XaiError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
        path = base.with_suffix(f".{fmt}")
        atomic_write_bytes(path, done.stdout)
        paths.append(path)
    return paths[0], paths[1]


def graph_checkpoint(
    checkpoint: str | os.PathLike[str], out_base: str | os.PathLike[str] | None = None, which: str = "best"
) -> tuple[Path, Path]:
    """The layer graph of a checkpoint's model as SVG + PNG (default ``CHECKPOINT/model_graph.*``)."""
    from xai_serve.models import load_checkpoint

    model, card = load_checkpoint(checkpoint, which)  # type: ignore[arg-type]
    title = f"{card.model} ({card.dataset}, input {'x'.join(map(str, card.input_shape))})"
    base = Path(out_base) if out_base else Path(checkpoint) / "model_graph"
    return render(to_dot(model, title), base)

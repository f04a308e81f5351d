"""The demo's digits ViT rows: the companion states the accuracy its checkpoint measured, and the report
lists the methods it refused with the server's reason."""

from __future__ import annotations

import json
from pathlib import Path

from xai_serve.app import serving_section as demo
from xai_serve.app.vit_rows import NAME, REFUSED, ROWS, vit_companion
from xai_serve.explain import list_methods


def test_companion_states_its_measured_accuracy(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9123, "epochs": 4}))
    c = vit_companion(tmp_path)
    assert c.name == NAME and c.methods == () and c.beside == ROWS and c.refused == REFUSED
    assert "test accuracy 91.2 % after 4 epochs" in c.why
    assert "accuracy" not in vit_companion(tmp_path / "missing").why  # never a figure it did not measure


def test_rows_are_methods_that_apply_to_a_vit() -> None:
    methods = list_methods()
    assert {m for _label, m, _p in ROWS} <= set(methods)
    assert {p.get("composite") for _label, m, p in ROWS if m == "lrp"} == {"attnlrp", "cp_lrp"}
    assert not {m for _label, m, _p in ROWS} & set(REFUSED)


def test_report_lists_refusals_with_their_reason() -> None:
    html = demo.render_report(
        [], [], {}, "digits", {}, 0.0, refusals=(NAME, {"guided_backprop": "... activation GELU ..."})
    )
    line = html[html.index(f"Refused by <code>{NAME}</code>") :].split("</ul>")[0]
    assert "<li><code>guided_backprop</code>: ... activation GELU ...</li>" in line
    assert "Refused by" not in demo.render_report([], [], {}, "digits", {}, 0.0, refusals=(NAME, {}))

"""LRP on attention models (composites ``attnlrp`` and ``cp_lrp``): parity with LXT (the authors'
implementation, run in a subprocess: its patches are process-wide), conservation, a closed form on a
one-block attention model, refusals and the shared pass with the gradient methods.

The LXT reference fails (never skips) when ``lxt`` or ``transformers`` is missing: the subprocess raises.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from xai_serve.errors import UnsupportedLayerError, UnsupportedOperationError
from xai_serve.explain import explain_detailed, model_hooks

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "lxt_reference.py"
_spec = importlib.util.spec_from_file_location("lxt_reference", REFERENCE)
assert _spec is not None and _spec.loader is not None
lxt_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lxt_reference)

VIT = {
    "kind": "vit",
    "image_size": 32,
    "patch_size": 8,
    "num_layers": 2,
    "num_heads": 4,
    "hidden_dim": 32,
    "mlp_dim": 64,
    "num_classes": 10,
}
ENCODER = {"kind": "encoder", "features": 6, "dim": 16, "heads": 2, "layers": 2, "classes": 5}
TARGET = 3


def randomised(spec: dict[str, Any], seed: int = 0, bias: bool = True, cls_pos: bool = True) -> nn.Module:
    """The model of ``spec`` in float64 with every parameter random (torchvision zeroes the head and the
    class token); ``bias=False`` zeroes every bias, ``cls_pos=False`` the class token and position
    embedding."""
    torch.manual_seed(seed)
    model = lxt_reference.build(spec).double().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.1 if bias else 0.0)
            elif "ln" in name or "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            elif name in {"class_token", "encoder.pos_embedding", "cls"}:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype) if cls_pos else 0.0)
            elif name.endswith("head.weight"):
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    return model


def vit_input(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def lxt(model: nn.Module, spec: dict[str, Any], x: torch.Tensor, mode: str, tmp_path: Path) -> torch.Tensor:
    """LXT's relevance for ``mode`` (see tests/fixtures/lxt_reference.py), computed in a subprocess."""
    src, dst = tmp_path / f"{mode}-in.pt", tmp_path / f"{mode}-out.pt"
    torch.save({"spec": spec, "state": model.state_dict(), "x": x, "target": TARGET, "modes": [mode]}, src)
    run = subprocess.run(
        [sys.executable, str(REFERENCE), str(src), str(dst)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"LXT reference failed (is lxt==2.1 installed?):\n{run.stderr[-3000:]}"
    out: dict[str, torch.Tensor] = torch.load(dst)
    return out[mode]


def ours(model: nn.Module, x: torch.Tensor, composite: str) -> Any:
    return explain_detailed(model, x, {"lrp": {"composite": composite}}, TARGET)["lrp"]


def assert_close(ours_r: torch.Tensor, ref: torch.Tensor, rel: float = 1e-5) -> None:
    scale = ref.abs().max()
    assert scale > 0
    err = float((ours_r - ref).abs().max() / scale)
    assert err <= rel, f"relative error {err:.3g} > {rel}"


@pytest.mark.parametrize(
    ("composite", "mode"),
    [("cp_lrp", "tv_cp"), ("attnlrp", "hf_attn"), ("cp_lrp", "hf_cp"), ("attnlrp", "tv_attn")],
)
def test_vit_parity_with_lxt(composite: str, mode: str, tmp_path: Path) -> None:
    model = randomised(VIT)
    x = vit_input()
    mine = ours(model, x, composite)
    assert mine.heatmap.shape == x.shape
    assert_close(mine.heatmap, lxt(model, VIT, x, mode, tmp_path))
    assert model_hooks(model) == []
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(("composite", "mode"), [("cp_lrp", "tv_cp"), ("attnlrp", "tv_attn")])
def test_multihead_attention_model_parity_with_lxt(composite: str, mode: str, tmp_path: Path) -> None:
    """``nn.TransformerEncoder`` (pre-norm, functional ReLU) over ``nn.MultiheadAttention``."""
    model = randomised(ENCODER)
    x = torch.randn(3, 7, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert_close(ours(model, x, composite).heatmap, lxt(model, ENCODER, x, mode, tmp_path))


def test_auto_composite_is_attnlrp_for_attention_models() -> None:
    model = randomised(VIT)
    x = vit_input()
    assert torch.equal(ours(model, x, "auto").heatmap, ours(model, x, "attnlrp").heatmap)


def test_cp_lrp_conserves_on_a_bias_free_vit() -> None:
    """No biases, zero class token and position embedding: the pixel relevance sums to the logit."""
    model = randomised(VIT, bias=False, cls_pos=False)
    result = ours(model, vit_input(), "cp_lrp")
    for total, score in zip(result.stats["relevance_sum"], result.stats["target_score"], strict=True):
        assert total == pytest.approx(score, rel=1e-8, abs=1e-9)


def test_attnlrp_absorption_on_a_bias_free_vit() -> None:
    """AttnLRP is not conservative (each softmax absorbs a bias-like term); the method reports what was
    absorbed, and it is not rounding."""
    model = randomised(VIT, bias=False, cls_pos=False)
    result = ours(model, vit_input(), "attnlrp")
    for total, score, absorbed in zip(
        result.stats["relevance_sum"],
        result.stats["target_score"],
        result.stats["bias_absorbed"],
        strict=True,
    ):
        assert absorbed == pytest.approx(score - total)
        assert abs(absorbed) > 1e-6 * abs(score)


class OneBlock(nn.Module):
    """One single-head attention block on the tokens themselves: ``f = w . (softmax(x x^T / sqrt(d)) x)[0]``
    (query = key = value = the input tokens, no projections)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(d, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.scaled_dot_product_attention(x, x, x)
        return (out[:, 0] * self.w).sum(-1, keepdim=True)


def test_closed_form_on_one_attention_block() -> None:
    """CP-LRP: R_x = x * (P^T (g w)) with P constant, so R sums to f exactly. AttnLRP: the value path gets
    half of that, the score path half of the softmax rule's relevance, split equally between q and k."""
    torch.manual_seed(0)
    d, n = 4, 5
    model = OneBlock(d).eval()
    x = torch.randn(2, n, d, dtype=torch.float64)
    scale = d**-0.5
    scores = scale * x @ x.transpose(1, 2)
    p = torch.softmax(scores, -1)
    f = ((p @ x)[:, 0] * model.w).sum(-1)
    g_out = torch.zeros(2, n, d, dtype=torch.float64)
    g_out[:, 0] = model.w
    r_value = x * (p.transpose(1, 2) @ g_out)  # relevance through v with P constant
    cp = explain_detailed(model, x, {"lrp": {"composite": "cp_lrp"}}, 0)["lrp"]
    torch.testing.assert_close(cp.heatmap, r_value)
    torch.testing.assert_close(cp.heatmap.flatten(1).sum(1), f)
    # AttnLRP: O = P V, both halves; the gradient on P is (g V^T)/2 and the softmax passes its gradient
    g_p = 0.5 * g_out @ x.transpose(1, 2)
    g_scores = p * (g_p - (g_p * p).sum(-1, keepdim=True))
    # scores = scale * (q/2)(k/2)^T-halves: q and k each get half of the score gradient, q = k = v = x
    g_q = 0.5 * scale * g_scores @ x
    g_k = 0.5 * scale * g_scores.transpose(1, 2) @ x
    expected = x * (0.5 * (p.transpose(1, 2) @ g_out) + g_q + g_k)
    attn = explain_detailed(model, x, {"lrp": {"composite": "attnlrp"}}, 0)["lrp"]
    torch.testing.assert_close(attn.heatmap, expected)


def test_shared_pass_with_gradient_methods() -> None:
    """LRP and the gradient methods share one forward pass; each answers its own map."""
    model = randomised(VIT)
    x = vit_input()
    both = explain_detailed(model, x, {"lrp": {"composite": "attnlrp"}, "gradient": {}}, TARGET)
    alone = explain_detailed(model, x, {"gradient": {}}, TARGET)["gradient"]
    torch.testing.assert_close(both["gradient"].heatmap, alone.heatmap)
    torch.testing.assert_close(both["lrp"].heatmap, ours(model, x, "attnlrp").heatmap)


class Squares(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attn(x, x, x)
        return torch.exp(y).mean(1)


class Unknown(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.odd = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.odd(self.attn(x, x, x)[0]).mean(1)


def test_unknown_operations_and_layers_are_refused() -> None:
    x = torch.randn(2, 3, 4)
    with pytest.raises(UnsupportedOperationError, match="exp"):
        explain_detailed(Squares().eval(), x, {"lrp": {"composite": "attnlrp"}}, 0)
    with pytest.raises(UnsupportedLayerError, match="odd"):
        explain_detailed(Unknown().eval(), x, {"lrp": {}}, 0)


class HfLogits(nn.Module):
    """A Hugging Face ``ViTForImageClassification`` returning its logits tensor."""

    def __init__(self, hf: nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hf(pixel_values=x).logits


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize(("composite", "mode"), [("attnlrp", "hf_attn"), ("cp_lrp", "hf_cp")])
def test_hugging_face_vit_equals_lxt(
    attn_implementation: str, composite: str, mode: str, tmp_path: Path
) -> None:
    """A model the engine has no module rules for: HF's ViT (its own attention module calling
    ``F.scaled_dot_product_attention`` or, eager, matmuls and a float32 softmax; ``GELUActivation``):
    the watch gives its operations the rules (eager: within 1e-5 despite its float32 softmax)."""
    model = randomised(VIT)
    hf = lxt_reference._hf_from_torchvision(model, VIT)
    hf.config._attn_implementation = attn_implementation
    x = vit_input()
    mine = ours(HfLogits(hf), x, composite).heatmap
    assert_close(mine, lxt(model, VIT, x, mode, tmp_path))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("masks", ["none", "bool", "float", "padding", "kdim"])
def test_explicit_attention_computes_the_modules_function(batch_first: bool, masks: str) -> None:
    """The replaced ``nn.MultiheadAttention`` forward is the module's own function (outputs and averaged
    weights), with masks, key padding, unbatched input and separate key/value sizes."""
    from xai_serve.explain.attention_lrp import mha_forward
    from xai_serve.explain.passes import ModeSwitch

    torch.manual_seed(3)
    kdim = 6 if masks == "kdim" else None
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, kdim=kdim, vdim=kdim).double().eval()
    q = torch.randn(2, 5, 8, dtype=torch.float64)
    kv = torch.randn(2, 4, kdim or 8, dtype=torch.float64)
    if not batch_first:
        q, kv = q.transpose(0, 1), kv.transpose(0, 1)
    kwargs: dict[str, Any] = {}
    if masks == "bool":
        kwargs["attn_mask"] = torch.tensor([[False, True, False, False]] * 5)
    elif masks == "float":
        kwargs["attn_mask"] = torch.randn(5, 4, dtype=torch.float64)
    elif masks == "padding":
        kwargs["key_padding_mask"] = torch.tensor([[False, False, True, False], [False, True, True, False]])
    forward = mha_forward(mha, "attn", ModeSwitch(), conservative=False)
    with torch.no_grad():
        expected = mha(q, kv, kv, **kwargs)
        got = forward(q, kv, kv, **kwargs)
        torch.testing.assert_close(got[0], expected[0])
        torch.testing.assert_close(got[1], expected[1])
        if masks == "none":  # unbatched
            one = q[0] if batch_first else q[:, 0]
            kv1 = kv[0] if batch_first else kv[:, 0]
            torch.testing.assert_close(forward(one, kv1, kv1)[0], mha(one, kv1, kv1)[0])

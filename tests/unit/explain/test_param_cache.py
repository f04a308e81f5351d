"""The derived-parameter cache LRP's caller owns: per model, valid while the source version holds,
least recently used evicted beyond its bound; LRP fills the cache of the context it is given."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_serve.explain import DerivedParamCache, ModelContext, create_explainer


def test_lru_per_model_and_version() -> None:
    cache = DerivedParamCache(2)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    calls: list[str] = []

    def derive(tag: str) -> str:
        calls.append(tag)
        return tag

    assert cache.get(a, "k1", 0, lambda: derive("a1")) == "a1"
    assert cache.get(a, "k1", 0, lambda: derive("again")) == "a1"  # a hit
    assert cache.get(a, "k1", 1, lambda: derive("a1v1")) == "a1v1"  # a new version derives again
    cache.get(a, "k2", 0, lambda: derive("a2"))
    cache.get(a, "k1", 1, lambda: derive("x"))  # k1 used last: k2 is the least recently used
    cache.get(a, "k3", 0, lambda: derive("a3"))  # evicts k2
    assert cache.size(a) == 2
    assert cache.get(a, "k2", 0, lambda: derive("a2 again")) == "a2 again"
    assert cache.size(b) == 0  # models do not share entries
    cache.get(b, "k1", 0, lambda: derive("b1"))
    assert calls == ["a1", "a1v1", "a2", "a3", "a2 again", "b1"]
    with pytest.raises(ValueError, match="at least one entry"):
        DerivedParamCache(0)


def test_lrp_fills_the_context_cache() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    context = ModelContext(param_cache=DerivedParamCache(1))
    x = torch.randn(2, 4)
    first = create_explainer("lrp", model, context=context, composite="epsilon")(x, 0)
    assert context.param_cache.size(model) == 1  # two layers, bounded to one entry
    other = ModelContext()
    again = create_explainer("lrp", model, context=other, composite="epsilon")(x, 0)
    assert other.param_cache.size(model) == 2 and context.param_cache.size(model) == 1
    torch.testing.assert_close(first, again, rtol=0, atol=0)


def test_calls_without_a_context_reuse_the_default_cache() -> None:
    """Library calls that pass no context (``explain(model, x, ...)`` in a loop) derive LRP's weights
    once per model, not once per call; a model that is dropped frees its entries."""
    import gc

    from xai_serve.explain import explain
    from xai_serve.explain.context import DEFAULT_CONTEXT

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    x = torch.randn(2, 4)
    first = explain(model, x, {"lrp": {"composite": "epsilon"}}, 0)["lrp"]
    assert DEFAULT_CONTEXT.param_cache.size(model) == 2
    derived = dict(DEFAULT_CONTEXT.param_cache._models[model])
    again = explain(model, x, {"lrp": {"composite": "epsilon"}, "gradient": {}}, 0)["lrp"]
    now = DEFAULT_CONTEXT.param_cache._models[model]
    assert now.keys() == derived.keys()
    assert all(now[k][1] is derived[k][1] for k in now)  # the very same derived tensors: not derived again
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    models_before = len(DEFAULT_CONTEXT.param_cache._models)
    del model
    gc.collect()
    assert len(DEFAULT_CONTEXT.param_cache._models) == models_before - 1

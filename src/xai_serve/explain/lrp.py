"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019), method ``lrp``.

The rules and how they are installed: :mod:`xai_serve.explain.lrp_engine`. ``Lrp`` is a backprop
explainer like the gradient methods: its request is the rule engine as the pass's extension, so
:func:`~xai_serve.explain.explain` runs it in the gradient methods' forward pass where it can.

Every result carries, per sample: ``relevance_sum`` (sum of the map), ``target_score`` (the explained
logit), ``conservation`` (their ratio) and ``bias_absorbed`` (``target_score - relevance_sum``: the
relevance absorbed by biases, BatchNorm shifts and stabilisers, plus any leak through an operation
the engine could not see; exactly 0 up to rounding for LRP-0/gamma/alpha-beta/z+/z^B/w^2/flat on a
bias-free ReLU network).
"""

from __future__ import annotations

from typing import Any

from xai_serve.explain.attention_lrp import ATTENTION_COMPOSITES, AttentionLrpEngine, contains_attention
from xai_serve.explain.backprop import BackpropExplainer, BackpropRequest, BackpropResult, PassExtension
from xai_serve.explain.composites import COMPOSITES, FIRST_RULES, LrpSettings
from xai_serve.explain.context import ModelContext
from xai_serve.explain.lrp_engine import LrpEngine
from xai_serve.explain.params import ParamSpec
from xai_serve.explain.registry import Attribution, register_method


def lrp_settings(params: dict[str, Any], context: ModelContext) -> LrpSettings:
    """The rule settings; the z^B bounds are the normalised black and white pixels of ``context``."""
    return LrpSettings(
        epsilon=params["epsilon"],
        gamma=params["gamma"],
        alpha=params["alpha"],
        beta=params["beta"],
        stabilizer=params["stabilizer"],
        low=context.low,
        high=context.high,
    )


LRP_PARAMS = {
    "composite": ParamSpec(
        "str",
        "auto",
        "rule map (see the composites table; auto: attnlrp with attention, else epsilon_plus_flat)",
        choices=("auto", *COMPOSITES, *ATTENTION_COMPOSITES),
    ),
    "first_rule": ParamSpec(
        "str", "auto", "rule for the first linear layer executed (auto: the composite's)", choices=FIRST_RULES
    ),
    "epsilon": ParamSpec("float", 1e-6, "epsilon of the epsilon rule (0: LRP-0)", minimum=0.0, maximum=1e6),
    "gamma": ParamSpec("float", 0.25, "gamma of the gamma rule", minimum=0.0, maximum=1e6),
    "alpha": ParamSpec("float", 2.0, "alpha of alpha-beta (alpha - beta = 1)", minimum=1.0, maximum=1e6),
    "beta": ParamSpec("float", 1.0, "beta of alpha-beta", minimum=0.0, maximum=1e6),
    "stabilizer": ParamSpec(
        "float", 1e-6, "stabiliser of the other rules and of Norm (> 0)", above=0.0, maximum=1e6
    ),
}


@register_method("lrp", params=LRP_PARAMS, signed=True)
class Lrp(BackpropExplainer):
    """Layer-wise relevance propagation with a composite of rules; reports conservation per sample.

    The z^B bounds come from the model context (its input normalisation); its derived-parameter cache
    keeps the rules' weights between calls. The forward pass LRP runs is the model's (BatchNorm merged:
    the same function up to rounding)."""

    def setup(self) -> None:
        self.settings = lrp_settings(self.params, self.context)
        if self.params["composite"] == "alpha_beta" or self.params["first_rule"] == "alpha_beta":
            self.settings.rule("alpha_beta")  # validates alpha - beta = 1 now

    def composite(self) -> str:
        """The composite to run (``auto`` resolved: ``attnlrp`` for a model with attention)."""
        name = str(self.params["composite"])
        if name == "auto":
            return "attnlrp" if contains_attention(self.model) else "epsilon_plus_flat"
        return name

    def engine(self) -> PassExtension:
        """The rule engine of these parameters (the pass extension of :meth:`request`): the attention
        composites' (:mod:`xai_serve.explain.attention_lrp`) or the layer rules'."""
        composite = self.composite()
        if composite in ATTENTION_COMPOSITES:
            return AttentionLrpEngine(composite, self.settings.stabilizer)
        cache = self.context.param_cache
        return LrpEngine(composite, self.settings, cache, self.params["first_rule"])

    def request(self) -> BackpropRequest:
        return BackpropRequest(extension=self.engine())

    def finish(self, result: BackpropResult) -> Attribution:
        """The attribution from a pass that ran this method's engine (alone or with the gradient
        methods): the map and, per sample, its sum, the explained score, their ratio (conservation) and
        the difference (relevance absorbed)."""
        assert result.relevance is not None
        score = result.selection.scores
        relevance_sum = result.relevance.flatten(1).sum(1)
        stats = {
            "relevance_sum": relevance_sum.tolist(),
            "target_score": score.tolist(),
            "conservation": (relevance_sum / score).tolist(),
            "bias_absorbed": (score - relevance_sum).tolist(),
        }
        classes = result.selection.classes
        labels = None if classes is None else [int(c) for c in classes]
        return Attribution(heatmap=result.relevance, stats=stats, logits=result.logits, classes=labels)

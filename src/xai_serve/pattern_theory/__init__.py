"""Seed A (General Pattern Theory, methods.md A): pixel metrics, figures and the ``xai gpt`` commands.

The data generator lives in ``xai_serve.data.pattern_digits``, the model in
``xai_serve.models.resgptnet``, component targets in ``xai_serve.explain.targets``.
"""

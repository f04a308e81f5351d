"""General Pattern Theory (Tjoa & Guan, docs/methods.md#gpt): the figures and the ``xai gpt`` commands.

The data generator lives in ``xai_serve.data.pattern_digits``, the model (with the component
randomisation levels it declares) in ``xai_serve.models.resgptnet``, the multi-output helpers in
``xai_serve.models.multi_output``, component targets in ``xai_serve.explain.targets``; the pixel
metrics and the component-wise randomisation check are evaluation's, generic over models with
component outputs (``xai_serve.evaluation.pixel_metrics``, ``.component_randomisation``).
"""

"""Suite declarations, one module per suite (torch-free). Every module here is imported by
:func:`xai_serve.evaluation.registry.discover` and registers its suite with ``register_suite``."""

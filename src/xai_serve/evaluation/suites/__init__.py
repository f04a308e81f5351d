"""The evaluation suites, one module each: its options (the ``xai evaluate NAME`` flags), its run
(batch by batch into a ``RunDir``, then the outputs), the report's verdict and its registration
(:func:`xai_serve.evaluation.registry.register_suite`). Every module here is imported by
:func:`xai_serve.evaluation.registry.discover`, so adding a suite is adding one module. The modules
import no torch at the top (``xai --help`` lists the suites' options)."""

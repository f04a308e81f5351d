"""Seed E, "Decomposing the Deep" (methods.md E.1-E.7): class-specific influential filters (integer and
fractional k), selectivity Psi, the decomposed final layer (:mod:`xai_serve.models.decomposed`), the
essential-feature noise test, mutual information between class filter sets, the CSG gate, index-file
I/O, and the ``xai decompose`` commands.
"""

"""Decomposing the Deep (Badola et al., docs/methods.md#decomposing-the-deep): class-specific influential
filters (integer and fractional k), selectivity Psi, the decomposed final layer
(:mod:`xai_serve.models.decomposed`), the essential-feature noise test, mutual information between class
filter sets, the CSG gate, index-file I/O, and the ``xai decompose`` commands.
"""

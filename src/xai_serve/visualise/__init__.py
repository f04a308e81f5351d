"""Images generated from a model for a person to look at (class images,
docs/methods.md#class-image), run from the CLI.

The methods themselves live in :mod:`xai_serve.explain` (``class_image``, ``filter_image``); this package
holds their command-line front end only, so ``xai --help`` does not import torch.
"""

"""TorchServe entry file packed into every xai-serve ``.mar`` (``xai archive``).

TorchServe imports this file by its basename and instantiates the single class defined here; all
logic lives in the installed ``xai_serve`` package.
"""

from xai_serve.serving.handler import XaiHandler


class XaiModelHandler(XaiHandler):
    """Predictions and explanations for a model archived by ``xai archive``."""

"""xai-serve client: predictions and explanation heatmaps over gRPC and HTTP, without torch.

>>> from xai_client import Client
>>> with Client("127.0.0.1:7070") as c:                       # doctest: +SKIP
...     e = c.explain("digits", "seven.png", ["lrp", "gradcam"], target="predicted")
...     e.prediction.label, e.heatmap("lrp").values.shape
"""

from xai_client.client import Client, ModelInfo
from xai_client.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
    XaiClientError,
)
from xai_client.results import ClassScore, Explanation, Heatmap, Prediction

__version__ = "0.1.0"

__all__ = [
    "ClassScore",
    "Client",
    "DeadlineExceeded",
    "Explanation",
    "FailedPrecondition",
    "Heatmap",
    "Internal",
    "InvalidArgument",
    "ModelInfo",
    "NotFound",
    "Prediction",
    "Unauthenticated",
    "Unavailable",
    "XaiClientError",
    "__version__",
]

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
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    XaiClientError,
)
from xai_client.methods import MethodInfo, ParamInfo
from xai_client.results import (
    ClassScore,
    Credential,
    Explanation,
    FilterEvidence,
    Heatmap,
    Prediction,
    UnitEvidence,
)

__version__ = "0.1.0"

__all__ = [
    "ClassScore",
    "Client",
    "Credential",
    "DeadlineExceeded",
    "Explanation",
    "FailedPrecondition",
    "FilterEvidence",
    "Heatmap",
    "Internal",
    "InvalidArgument",
    "MethodInfo",
    "ModelInfo",
    "NotFound",
    "ParamInfo",
    "Prediction",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "UnitEvidence",
    "XaiClientError",
    "__version__",
]

"""Typed errors shared by every part of xai-serve.

Each error carries a stable ``code`` (a gRPC-style status name) so the serving layer can map it to a
wire status without string matching, and the client can raise the matching typed exception.
"""

from __future__ import annotations


class XaiError(Exception):
    """Base class of every error xai-serve raises on purpose."""

    code = "INTERNAL"


class InvalidArgumentError(XaiError, ValueError):
    """The caller passed something malformed (input, parameter, target...)."""

    code = "INVALID_ARGUMENT"


class NotFoundError(XaiError, LookupError):
    """A named thing (model, method, layer, dataset file) does not exist."""

    code = "NOT_FOUND"


class UnknownModelError(NotFoundError):
    """``create_model`` was asked for a name that is not registered."""


class UnknownMethodError(NotFoundError):
    """``create_explainer`` was asked for a name that is not registered."""


class InvalidParameterError(InvalidArgumentError):
    """A method, model or recipe parameter has the wrong name, type or value."""


class InvalidTargetError(InvalidArgumentError):
    """The explanation target is malformed or out of range for the model output."""


class InvalidInputError(InvalidArgumentError):
    """The input image or tensor is malformed (shape, dtype, NaN, size, encoding)."""


class UnsupportedLayerError(InvalidArgumentError):
    """A model has a layer the chosen method/composite has no rule for (the layer is named)."""


class UnsupportedOperationError(UnsupportedLayerError):
    """A model calls an operation outside a module that the chosen method cannot apply its rule to
    (the call site is named); the method refuses instead of answering another method's map."""


class DatasetNotFoundError(NotFoundError, FileNotFoundError):
    """A dataset folder is missing or incomplete; the message names the expected files."""


class RecipeError(InvalidArgumentError):
    """A training recipe is malformed; the message names the offending key."""


class CheckpointError(XaiError):
    """A checkpoint directory is missing, incomplete or would be overwritten."""

    code = "FAILED_PRECONDITION"


class WeightsFileError(CheckpointError):
    """A weights file to import is missing, is not a torch file or holds no usable state_dict."""


class PickleRefusedError(WeightsFileError):
    """A weights file holds pickled objects (a whole model, custom classes): refused without trust."""


class StateDictMismatchError(CheckpointError):
    """A state_dict's keys or shapes differ from the model's; the message lists the first differences."""


class ModelFileError(CheckpointError):
    """A user's model file cannot be imported, lacks the class, or the class cannot be built."""


class ResourceExhaustedError(XaiError):
    """A well-formed request asks for more work than a server-side cost limit allows (the limit is named)."""

    code = "RESOURCE_EXHAUSTED"


class DeadlineExceededError(XaiError):
    """The client's deadline had passed when the worker reached the request; nothing was computed."""

    code = "DEADLINE_EXCEEDED"


class NonFiniteResultError(XaiError):
    """A method produced NaN or infinite values for legal parameters; the map is refused, never served."""

    code = "OUT_OF_RANGE"


class MethodRefusedError(XaiError):
    """The archive refuses this method: it failed its credentials' sanity check (the check is named)."""

    code = "FAILED_PRECONDITION"

"""Request validation against the served model (targets, enums)."""

from __future__ import annotations

import pytest
from xai_client.api.v1 import explain_pb2 as pb

from xai_serve.errors import InvalidTargetError
from xai_serve.serving.validate import validate_target


def test_target_validation():
    validate_target(pb.Target(class_index=9), 10)
    validate_target(pb.Target(predicted=True), 10)
    for bad in (
        pb.Target(class_index=10),
        pb.Target(class_index=-1),
        pb.Target(top_k=11),
        pb.Target(top_k=0),
    ):
        with pytest.raises(InvalidTargetError):
            validate_target(bad, 10)

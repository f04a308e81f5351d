"""Model cards of decomposed models: the base model's card turned into the registered ``decomposed`` form
(same weights, same state_dict keys), with the index file validated against the base model's head."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from xai_serve.decomposition.indices import ClassFilters, load_indices
from xai_serve.errors import InvalidArgumentError
from xai_serve.models import ModelCard, create_model
from xai_serve.models.decomposed import find_head


def head_of(model_name: str, model_kwargs: dict[str, Any]) -> tuple[int, int, str]:
    """``(classes, filters, description)`` of a registered model's head (random init, no weights)."""
    model = create_model(model_name, **{k: v for k, v in model_kwargs.items() if k != "weights"})
    head = find_head(model)
    return head.num_classes, head.num_filters, head.describe()


def decomposed_kwargs(card: ModelCard, indices: ClassFilters) -> dict[str, Any]:
    return {"base": card.model, "base_kwargs": dict(card.model_kwargs), "indices": [list(s) for s in indices]}


def decomposed_card(card: ModelCard, index_file: str | os.PathLike[str]) -> ModelCard:
    """``card``'s model with its final layer decomposed by ``index_file`` (validated: class count, filter
    range, JSON), as a new card naming the model ``decomposed``."""
    if card.model == "decomposed":
        raise InvalidArgumentError("the checkpoint is already decomposed")
    classes, filters, _ = head_of(card.model, card.model_kwargs)
    indices = load_indices(index_file, num_classes=classes, num_filters=filters)
    return dataclasses.replace(card, model="decomposed", model_kwargs=decomposed_kwargs(card, indices))

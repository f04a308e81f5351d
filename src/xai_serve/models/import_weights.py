"""Reading a foreign weights file and matching it to a model, for ``xai import``.

:func:`read_weights` accepts what people save: a bare state_dict, or one nested under ``state_dict`` /
``model`` / ``model_state_dict`` (training checkpoints with ``epoch``, ``optimizer``, ``best_prec1``
beside it), or the one dict of tensors under another key, with or without DataParallel's ``module.``
(or ``torch.compile``'s ``_orig_mod.``) prefix. It loads with ``weights_only=True`` (a safetensors
file with the safetensors package); a file holding pickled objects (a whole ``nn.Module``, custom
classes) is a :class:`~xai_serve.errors.PickleRefusedError` naming the first such class, unless the
caller trusts it (then it is unpickled once, with a warning, and only its tensors are kept).

:func:`match_state_dict` checks a state_dict against a model, trying the model's known foreign layouts
(:mod:`xai_serve.models.layouts`) when the keys differ, and raises
:class:`~xai_serve.errors.StateDictMismatchError` listing the first missing, unexpected and mis-shaped
keys with their shapes; a model is never loaded partially.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from xai_serve.errors import PickleRefusedError, StateDictMismatchError, WeightsFileError
from xai_serve.models.layouts import layouts_for
from xai_serve.models.weights import WRAPPER_KEYS, strip_prefix

PREFIXES = ("module.", "_orig_mod.")
SHOWN = 8  # keys listed per kind of difference
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def _is_safetensors(path: Path) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header."""
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    size = int.from_bytes(head[:8], "little")
    return 0 < size <= path.stat().st_size - 8


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise WeightsFileError(f"{path} is a safetensors file: pip install safetensors to read it") from None
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:  # a corrupt header or data
        raise WeightsFileError(f"{path}: not a readable safetensors file ({exc})") from None


def _user_pickle_module(classes: Mapping[str, type], module_names: set[str]) -> ModuleType:
    """A ``pickle_module`` for ``torch.load`` resolving the classes of a pickled model defined in the
    user's model file, whatever module name they were pickled under (``__main__``, the file's stem)."""
    import pickle

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module in module_names and name in classes:
                return classes[name]
            return super().find_class(module, name)

    mod = ModuleType("xai_user_pickle")
    mod.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
    mod.Unpickler = Unpickler  # type: ignore[attr-defined]
    return mod


def _load(
    path: Path, trust_pickle: bool, user_classes: Mapping[str, type] | None = None, user_module: str = ""
) -> Any:
    if _is_safetensors(path):
        return _load_safetensors(path)
    try:
        with warnings.catch_warnings():  # torch's note on an unusual pickle protocol: the outcome says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        found = _GLOBAL.search(str(exc))
        if found is None:
            raise WeightsFileError(
                f"{path} is not a torch weights file (torch.load: {type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r})"
            ) from None
        if not trust_pickle:
            raise PickleRefusedError(
                f"{path} holds pickled Python objects (first: {found.group(1)}), not only tensors; "
                "loading it runs code from the file. Pass --trust-pickle if you trust its source "
                "(it is then loaded once and re-saved as a plain state_dict)"
            ) from None
    warnings.warn(f"unpickling {path} with weights_only=False (--trust-pickle)", stacklevel=3)
    extra: dict[str, Any] = {}
    if user_classes:
        extra["pickle_module"] = _user_pickle_module(user_classes, {"__main__", user_module})
    try:
        return torch.load(path, map_location="cpu", weights_only=False, **extra)
    except Exception as exc:
        raise WeightsFileError(f"{path}: unpickling failed: {type(exc).__name__}: {exc}") from None


def _unwrap(obj: Any, path: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping) and not _all_tensors(obj):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                inner = inner.state_dict()
            if isinstance(inner, Mapping):
                obj = inner
                break
        else:  # another wrapper key (``net``, ``weights``, ...): the one dict of tensors in the file
            nested = [v for v in obj.values() if isinstance(v, Mapping) and v and _all_tensors(v)]
            if len(nested) == 1:
                obj = nested[0]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsFileError(
            f"{path} holds a {type(obj).__name__}, not a state_dict (a dict of tensors, possibly under "
            f"one of the keys {', '.join(WRAPPER_KEYS)})"
        )
    others = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if others and not trust_pickle:
        raise WeightsFileError(
            f"{path}: the state_dict has non-tensor entries ({', '.join(others[:SHOWN])}); "
            "pass --trust-pickle to drop them"
        )
    if others:
        warnings.warn(f"{path}: dropping non-tensor entries {', '.join(others[:SHOWN])}", stacklevel=3)
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _all_tensors(obj: Mapping[Any, Any]) -> bool:
    return all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` / ``_orig_mod.`` prefix that every key has (repeatedly: ``module.module.``)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = strip_prefix(state, prefix)
                changed = True
    return state


def read_weights(
    path: str | os.PathLike[str],
    *,
    trust_pickle: bool = False,
    user_classes: Mapping[str, type] | None = None,
    user_module: str = "",
) -> dict[str, torch.Tensor]:
    """The state_dict in the weights file ``path`` (unwrapped, prefixes stripped, CPU tensors).

    ``user_classes`` (name -> class of the user's model file, pickled under ``__main__`` or
    ``user_module``) let a trusted pickled model of the user's own class unpickle."""
    path = Path(path)
    if not path.exists():
        raise WeightsFileError(f"weights file not found: {path}")
    if not path.is_file():
        raise WeightsFileError(f"weights path is not a file: {path}")
    obj = _load(path, trust_pickle, user_classes, user_module)
    return strip_prefixes(_unwrap(obj, path, trust_pickle))


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def _differences(model_state: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    shapes = [k for k in model_state if k in state and state[k].shape != model_state[k].shape]
    out = []
    if missing:
        listed = ", ".join(f"{k} [{_shape(model_state[k])}]" for k in missing[:SHOWN])
        out.append(f"{len(missing)} missing (first: {listed})")
    if unexpected:
        listed = ", ".join(f"{k} [{_shape(state[k])}]" for k in unexpected[:SHOWN])
        out.append(f"{len(unexpected)} unexpected (first: {listed})")
    if shapes:
        listed = ", ".join(
            f"{k} [file {_shape(state[k])}, model {_shape(model_state[k])}]" for k in shapes[:SHOWN]
        )
        out.append(f"{len(shapes)} of another shape (first: {listed})")
    return out


def _fill_batch_counters(model_state: Mapping[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
    # files saved before PyTorch 0.4.1 have no BatchNorm ``num_batches_tracked`` (unused in eval mode)
    for key, value in model_state.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value.clone()


def _common_head(keys: list[str]) -> str:
    """The first dotted component every key shares ("" when they do not share one)."""
    heads = {k.partition(".")[0] for k in keys if "." in k}
    return heads.pop() if len(heads) == 1 and all("." in k for k in keys) else ""


def _prefix_candidates(
    state: dict[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]
) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """The file's keys with wrapper attribute prefixes removed (a LightningModule's ``model.``) or the
    model's own shared prefix added, tried only as exact matches."""
    out: list[tuple[str, dict[str, torch.Tensor]]] = []
    current, dropped = dict(state), []
    while (head := _common_head(list(current))) and head not in {k.partition(".")[0] for k in model_state}:
        dropped.append(head)
        current = strip_prefix(current, head + ".")
        out.append((f"without prefix {'.'.join(dropped)}.", dict(current)))
    own = _common_head(list(model_state))
    if own and _common_head(list(state)) != own:
        out.append((f"with prefix {own}.", {f"{own}.{k}": v for k, v in state.items()}))
    return out


def match_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], arch: str, source: str = "weights"
) -> tuple[dict[str, torch.Tensor], str]:
    """``state`` in ``model``'s key names (as is, or through a known layout of ``arch``) and the name of
    the layout used (``""`` for none). Raises :class:`StateDictMismatchError` when nothing matches."""
    model_state = model.state_dict()
    candidates: list[tuple[str, dict[str, torch.Tensor]]] = [("", dict(state))]
    candidates += _prefix_candidates(state, model_state)
    for layout in layouts_for(arch):
        mapped = layout.convert(state)
        if mapped is not None:
            candidates.append((layout.name, mapped))
    for name, candidate in candidates:
        _fill_batch_counters(model_state, candidate)
        if not _differences(model_state, candidate):
            return {k: candidate[k].to(model_state[k].dtype) for k in model_state}, name
    problems = _differences(model_state, candidates[0][1])
    tried = ", ".join(layout.name for layout in layouts_for(arch))
    hint = f"; known layouts of {arch} tried: {tried}" if tried else ""
    raise StateDictMismatchError(
        f"{source} does not fit {arch} ({len(state)} tensors in the file, {len(model_state)} in the "
        f"model): " + "; ".join(problems) + hint
    )

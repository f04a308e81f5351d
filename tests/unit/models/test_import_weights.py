"""Reading foreign weights files and matching them to a model (models/import_weights.py, layouts.py)."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from xai_serve.errors import PickleRefusedError, StateDictMismatchError, WeightsFileError
from xai_serve.models import create_model
from xai_serve.models.import_weights import match_state_dict, read_weights, strip_prefixes
from xai_serve.models.layouts import simplenet_released_indices
from xai_serve.models.simplenet import CONFIG_5M

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "resnet20-12fca82f.th"


def _state() -> dict[str, torch.Tensor]:
    return {"a.weight": torch.randn(3, 2), "a.bias": torch.randn(3)}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: s,
        lambda s: {"state_dict": s, "epoch": 3, "best_prec1": 91.0},
        lambda s: {"model": s},
        lambda s: {"model_state_dict": s, "optimizer_state_dict": {"lr": 0.1}},
        lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
        lambda s: OrderedDict((f"module.module.{k}", v) for k, v in s.items()),
        lambda s: {f"_orig_mod.{k}": v for k, v in s.items()},
    ],
    ids=["bare", "state_dict", "model", "model_state_dict", "module_nested", "module_twice", "compiled"],
)
def test_wrappers_and_prefixes_are_unwrapped(tmp_path: Path, wrap) -> None:
    state = _state()
    torch.save(wrap(state), tmp_path / "w.pth")
    got = read_weights(tmp_path / "w.pth")
    assert set(got) == set(state)
    for key, value in state.items():
        assert torch.equal(got[key], value)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsFileError, match="not found"):
        read_weights(tmp_path / "none.pth")
    with pytest.raises(WeightsFileError, match="not a file"):
        read_weights(tmp_path)


@pytest.mark.parametrize("content", [b"hello world\n", bytes(range(256)) * 4, pickle.dumps({"a": 1})])
def test_not_a_torch_file_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "w.pth").write_bytes(content)
    with pytest.raises(WeightsFileError, match=r"not a torch weights file|not a state_dict"):
        read_weights(tmp_path / "w.pth")


def test_pickled_model_is_refused_without_trust_and_reduced_to_tensors_with_it(tmp_path: Path) -> None:
    model = nn.Linear(2, 3)
    torch.save(model, tmp_path / "m.pt")
    with pytest.raises(PickleRefusedError, match=r"torch\.nn\.modules\.linear\.Linear.*--trust-pickle"):
        read_weights(tmp_path / "m.pt")
    with pytest.warns(UserWarning, match="weights_only=False"):
        got = read_weights(tmp_path / "m.pt", trust_pickle=True)
    assert set(got) == {"weight", "bias"} and torch.equal(got["weight"], model.weight.detach())


def test_non_tensor_entries_beside_tensors_are_refused_without_trust(tmp_path: Path) -> None:
    torch.save({"a.weight": torch.ones(2), "note": "text"}, tmp_path / "w.pth")
    with pytest.raises(WeightsFileError, match="non-tensor entries \\(note\\)"):
        read_weights(tmp_path / "w.pth")
    with pytest.warns(UserWarning):
        assert set(read_weights(tmp_path / "w.pth", trust_pickle=True)) == {"a.weight"}


def test_empty_or_scalar_payload_is_refused(tmp_path: Path) -> None:
    torch.save({}, tmp_path / "e.pth")
    torch.save(torch.ones(3), tmp_path / "t.pth")
    for name in ("e.pth", "t.pth"):
        with pytest.raises(WeightsFileError, match="not a state_dict"):
            read_weights(tmp_path / name)


def test_strip_prefixes_keeps_keys_when_not_all_share_the_prefix() -> None:
    state = {"module.a": torch.ones(1), "b": torch.ones(1)}
    assert set(strip_prefixes(state)) == {"module.a", "b"}


def test_mismatch_lists_missing_unexpected_and_misshaped_keys_with_shapes() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["0.weight"] = torch.zeros(5, 4)
    del state["1.bias"]
    state["2.weight"] = torch.zeros(7)
    with pytest.raises(StateDictMismatchError) as info:
        match_state_dict(model, state, "seq")
    message = str(info.value)
    assert "1 missing (first: 1.bias [2])" in message
    assert "1 unexpected (first: 2.weight [7])" in message
    assert "0.weight [file 5x4, model 3x4]" in message


def test_released_resnet20_matches_as_saved() -> None:
    model = create_model("resnet20")
    state, layout = match_state_dict(model, read_weights(FIXTURE), "resnet20")
    assert layout == ""
    model.load_state_dict(state)  # strict


def _released_simplenet_cifar10(num_classes: int = 10) -> nn.Module:
    """The released CIFAR-10 SimpleNet's module layout written out from the published architecture
    (Hasanpour et al. 2016, ``simplenet_cifar_5m_extra_pool``): Conv-BN-ReLU blocks, MaxPool + Dropout2d,
    no dropout after a convolution."""

    def block(cin: int, cout: int, k: int = 3) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout, momentum=0.05), nn.ReLU()]

    pool = [nn.MaxPool2d(2, 2), nn.Dropout2d(0.1)]
    layers = [
        *block(3, 64),
        *block(64, 128),
        *block(128, 128),
        *block(128, 128),
        *pool,
        *block(128, 128),
        *block(128, 128),
        *block(128, 256),
        *pool,
        *block(256, 256),
        *block(256, 256),
        *pool,
        *block(256, 512),
        *pool,
        *block(512, 2048, 1),
        *block(2048, 256, 1),
        *pool,
        *block(256, 256),
    ]
    net = nn.Module()
    net.features = nn.Sequential(*layers)
    net.classifier = nn.Linear(256, num_classes)
    return net


def test_simplenet_released_layout_maps_onto_simplenet_5m() -> None:
    released = _released_simplenet_cifar10()
    for p in released.parameters():
        nn.init.normal_(p)
    state = {f"module.{k}": v for k, v in released.state_dict().items()}
    model = create_model("simplenet_5m")
    mapped, layout = match_state_dict(model, strip_prefixes(state), "simplenet_5m")
    assert layout == "simplenet-cifar10-released"
    model.load_state_dict(mapped)
    # same computation: the released net's features + global max pool + classifier
    released.eval(), model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = released.classifier(torch.amax(released.features(x), dim=(2, 3)))
        assert torch.allclose(model(x), expected, atol=1e-4, rtol=1e-4)


def test_simplenet_index_map_is_monotone_and_covers_every_conv() -> None:
    mapping = simplenet_released_indices(CONFIG_5M)
    convs = sum(1 for e in CONFIG_5M if e != "p")
    assert len(mapping) == 2 * convs
    assert list(mapping.values()) == sorted(mapping.values())
    assert mapping[0] == 0 and mapping[3] == 4  # the registry's dropout after the first block


def test_wrong_layout_for_simplenet_still_lists_the_differences() -> None:
    state = create_model("simplenet_310k").state_dict()
    with pytest.raises(StateDictMismatchError, match="known layouts of simplenet_5m tried"):
        match_state_dict(create_model("simplenet_5m"), dict(state), "simplenet_5m")


def test_the_one_dict_of_tensors_under_another_key(tmp_path: Path) -> None:
    state = _state()
    torch.save({"net": state, "optimizer": {"param_groups": [{"lr": 0.1}]}, "epoch": 2}, tmp_path / "w.pt")
    assert set(read_weights(tmp_path / "w.pt")) == set(state)


def test_safetensors_file(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.torch")  # optional reader; torch files need none
    state = {f"module.{k}": v for k, v in _state().items()}
    safetensors.save_file(state, str(tmp_path / "w.safetensors"))
    got = read_weights(tmp_path / "w.safetensors")
    assert set(got) == {"a.weight", "a.bias"} and torch.equal(got["a.bias"], state["module.a.bias"])


def test_lightning_style_prefix_is_dropped_and_a_models_own_prefix_added() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    state = model.state_dict()
    lightning = {f"model.{k}": v for k, v in state.items()}
    got, layout = match_state_dict(model, lightning, "seq")
    assert layout == "without prefix model." and set(got) == set(state)
    wrapped = nn.Module()
    wrapped.net = model
    got, layout = match_state_dict(wrapped, dict(state), "wrapped")
    assert layout == "with prefix net." and set(got) == {f"net.{k}" for k in state}

"""``xai import``: round trips for each kind of model and layout, and every refusal leaving nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from xai_serve.cli import app
from xai_serve.errors import (
    CheckpointError,
    InvalidArgumentError,
    ModelFileError,
    PickleRefusedError,
    StateDictMismatchError,
    UnknownModelError,
    WeightsFileError,
)
from xai_serve.hashing import file_sha256
from xai_serve.models import create_model, load_checkpoint
from xai_serve.training.importer import ImportSpec, import_weights, parse_normalize

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "resnet20-12fca82f.th"

USER_MODEL = """
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, width: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.act(self.conv(x))).flatten(1))
"""


def _same_outputs(a: nn.Module, b: nn.Module, shape: tuple[int, ...]) -> None:
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(a.eval()(x), b.eval()(x), atol=1e-5)


def _assert_nothing_left(parent: Path, before: set[str]) -> None:
    assert {p.name for p in parent.iterdir()} == before


def test_registry_model_round_trip(tmp_path: Path) -> None:
    source = create_model("simplenet_310k", num_classes=10, in_chans=1)
    torch.save({"model_state_dict": source.state_dict(), "epoch": 7}, tmp_path / "w.pt")
    result = import_weights(ImportSpec(tmp_path / "w.pt", tmp_path / "ckpt", arch="simplenet_310k"))
    model, card = load_checkpoint(result.out)
    assert card.model == "simplenet_310k" and card.input_shape == [1, 28, 28] and card.dataset == "mnist"
    assert card.labels == [str(i) for i in range(10)]
    _same_outputs(source, model, (1, 28, 28))
    assert torch.load(tmp_path / "ckpt" / "best.pt", weights_only=True).keys() == source.state_dict().keys()
    record = json.loads((tmp_path / "ckpt" / "import.json").read_text())
    assert record["source_sha256"] == file_sha256(tmp_path / "w.pt")


def test_torchvision_architecture_with_module_prefix_and_nested_state_dict(tmp_path: Path) -> None:
    source = create_model("torchvision.mobilenet_v3_small", num_classes=5)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "arch": "mnv3"}
    torch.save(wrapped, tmp_path / "w.pth")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({str(i): f"kind {i}" for i in range(5)}))
    spec = ImportSpec(
        tmp_path / "w.pth",
        tmp_path / "ckpt",
        arch="mobilenet_v3_small",
        input_size=(3, 64, 64),
        labels=labels,
    )
    import_weights(spec)
    model, card = load_checkpoint(tmp_path / "ckpt")
    assert card.model == "torchvision.mobilenet_v3_small" and card.num_classes == 5
    assert card.labels[4] == "kind 4" and card.resize == round(64 * 256 / 224)
    assert card.mean == [0.485, 0.456, 0.406]
    _same_outputs(source, model, (3, 64, 64))


def test_places365_resnet18_layout(tmp_path: Path) -> None:
    source = create_model("resnet18", num_classes=365)
    torch.save(
        {
            "epoch": 90,
            "arch": "resnet18",
            "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
        },
        tmp_path / "resnet18_places365.pth.tar",
    )
    names = [f"/{chr(97 + i % 26)}/scene_{i}" for i in range(365)]
    (tmp_path / "categories_places365.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    spec = ImportSpec(
        tmp_path / "resnet18_places365.pth.tar",
        tmp_path / "places",
        arch="resnet18",
        num_classes=365,
        labels=tmp_path / "categories_places365.txt",
    )
    import_weights(spec)
    model, card = load_checkpoint(tmp_path / "places")
    assert card.labels[0] == "scene_0" and card.labels[364] == "scene_364" and card.num_classes == 365
    assert card.input_shape == [3, 224, 224] and card.resize == 256
    _same_outputs(source, model, (3, 64, 64))


def test_released_resnet20_imports_with_cifar10_normalisation(tmp_path: Path) -> None:
    from xai_serve.data import cifar10

    import_weights(ImportSpec(FIXTURE, tmp_path / "r20", arch="resnet20"))
    model, card = load_checkpoint(tmp_path / "r20")
    assert card.mean == list(cifar10.MEAN) and card.std == list(cifar10.STD)
    assert card.labels == list(cifar10.LABELS) and card.dataset == "cifar10"
    reference = create_model("resnet20", weights=str(FIXTURE))
    _same_outputs(reference, model, (3, 32, 32))


def test_user_model_file(tmp_path: Path) -> None:
    (tmp_path / "tiny_net.py").write_text(USER_MODEL)
    import importlib.util

    spec_ = importlib.util.spec_from_file_location("tiny_net_source", tmp_path / "tiny_net.py")
    module = importlib.util.module_from_spec(spec_)  # type: ignore[arg-type]
    spec_.loader.exec_module(module)  # type: ignore[union-attr]
    source = module.TinyNet(width=6, classes=3)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    spec = ImportSpec(
        tmp_path / "w.pt",
        tmp_path / "mine",
        model_file=tmp_path / "tiny_net.py",
        model_class="TinyNet",
        kwargs={"width": 6, "classes": 3},
        input_size=(3, 16, 16),
        normalize="0.5/0.25",
    )
    import_weights(spec)
    model, card = load_checkpoint(tmp_path / "mine")
    assert card.model == "TinyNet" and card.model_file == "tiny_net.py"
    assert card.model_file_sha256 == file_sha256(tmp_path / "mine" / "tiny_net.py")
    assert (
        card.mean == [0.5] * 3 and card.std == [0.25] * 3 and card.labels == ["class_0", "class_1", "class_2"]
    )
    _same_outputs(source, model, (3, 16, 16))
    assert not any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())  # canonicalised
    (tmp_path / "mine" / "tiny_net.py").write_text(USER_MODEL + "\n# edited\n")
    with pytest.raises(ModelFileError, match="sha256 differs"):
        load_checkpoint(tmp_path / "mine")


def _spec(tmp_path: Path, weights: Path, **kw) -> ImportSpec:
    return ImportSpec(weights, tmp_path / "out" / "ckpt", **kw)


@pytest.fixture
def out_parent(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def test_refusals_leave_nothing_behind(tmp_path: Path, out_parent: Path) -> None:
    r20 = create_model("resnet20").state_dict()
    torch.save(r20, tmp_path / "r20.pt")
    torch.save(nn.Linear(2, 3), tmp_path / "pickled.pt")
    (tmp_path / "text.pt").write_text("not weights")
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    (tmp_path / "broken.py").write_text(
        "import torch\nx = 1\nraise RuntimeError('no GPU here, says the model file')\n"
    )
    cases = [
        (_spec(tmp_path, tmp_path / "missing.pt", arch="resnet20"), WeightsFileError, "not found"),
        (
            _spec(tmp_path, tmp_path / "text.pt", arch="resnet20"),
            WeightsFileError,
            "not a torch weights file",
        ),
        (_spec(tmp_path, tmp_path / "pickled.pt", arch="resnet20"), PickleRefusedError, "--trust-pickle"),
        (
            _spec(tmp_path, tmp_path / "r20.pt", arch="simplenet_5m"),
            StateDictMismatchError,
            r"conv1\.weight \[16x3x3x3\]",
        ),
        (
            _spec(tmp_path, tmp_path / "r20.pt", arch="resnet20", labels=tmp_path / "three.txt"),
            InvalidArgumentError,
            "has 3 labels but the model has 10 classes",
        ),
        (
            _spec(
                tmp_path,
                tmp_path / "r20.pt",
                model_file=tmp_path / "broken.py",
                model_class="Net",
                input_size=(3, 32, 32),
            ),
            ModelFileError,
            r"broken\.py:3: RuntimeError: no GPU here, says the model file",
        ),
        (
            _spec(tmp_path, tmp_path / "r20.pt", model_file=tmp_path / "nothing.py", model_class="Net"),
            ModelFileError,
            "not found",
        ),
        (_spec(tmp_path, tmp_path / "r20.pt", arch="no_such_net"), UnknownModelError, "no_such_net"),
        (_spec(tmp_path, tmp_path / "r20.pt"), InvalidArgumentError, "--arch"),
        (
            _spec(tmp_path, tmp_path / "r20.pt", arch="resnet20", num_classes=7),
            StateDictMismatchError,
            r"linear\.weight \[file 10x64, model 7x64\]",
        ),
        (
            _spec(tmp_path, tmp_path / "r20.pt", arch="resnet20", normalize="0.1,0.2/0.3,0.4"),
            InvalidArgumentError,
            "2 mean / 2 std values for a 3-channel input",
        ),
    ]
    for spec, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            import_weights(spec)
        _assert_nothing_left(out_parent, set())


def test_existing_out_is_refused_and_untouched(tmp_path: Path) -> None:
    torch.save(create_model("resnet20").state_dict(), tmp_path / "r20.pt")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="already exists"):
        import_weights(ImportSpec(tmp_path / "r20.pt", tmp_path / "ckpt", arch="resnet20"))
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["keep.txt"]


def test_model_file_class_errors(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(USER_MODEL)
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelFileError, match=r"no 'Net'; nn\.Module classes in it: TinyNet"):
        import_weights(
            ImportSpec(
                tmp_path / "w.pt",
                tmp_path / "o",
                model_file=tmp_path / "net.py",
                model_class="Net",
                input_size=(3, 8, 8),
            )
        )
    with pytest.raises(ModelFileError, match="unexpected keyword argument 'depth'"):
        import_weights(
            ImportSpec(
                tmp_path / "w.pt",
                tmp_path / "o",
                model_file=tmp_path / "net.py",
                model_class="TinyNet",
                kwargs={"depth": 3},
                input_size=(3, 8, 8),
            )
        )
    assert not (tmp_path / "o").exists()


def test_num_classes_is_read_from_the_file(tmp_path: Path) -> None:
    torch.save(create_model("resnet20", num_classes=4).state_dict(), tmp_path / "w.pt")
    result = import_weights(ImportSpec(tmp_path / "w.pt", tmp_path / "c", arch="resnet20"))
    assert result.card.num_classes == 4 and result.card.labels == [f"class_{i}" for i in range(4)]


def test_normalize_parsing() -> None:
    assert parse_normalize("none", 1) == ([0.0], [1.0])
    assert parse_normalize("0.5/0.2", 3) == ([0.5] * 3, [0.2] * 3)
    with pytest.raises(InvalidArgumentError, match="--normalize expects"):
        parse_normalize("imagenette", 3)
    with pytest.raises(InvalidArgumentError, match="positive"):
        parse_normalize("0/0", 1)


def test_cli_import_and_refusal(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["import", str(FIXTURE), "--out", str(tmp_path / "r20"), "--arch", "resnet20"])
    assert ok.exit_code == 0, ok.output
    assert "model resnet20 (10 classes, input 3x32x32, dataset cifar10)" in ok.output
    again = runner.invoke(app, ["import", str(FIXTURE), "--out", str(tmp_path / "r20"), "--arch", "resnet20"])
    assert again.exit_code == 2 and "already exists" in again.output
    archs = runner.invoke(app, ["import", "--list-archs"])
    assert archs.exit_code == 0
    listed = archs.output.split()
    for name in (
        "resnet20",
        "simplenet_5m",
        "torchvision.resnet152",
        "torchvision.wide_resnet101_2",
        "torchvision.vit_b_16",
        "torchvision.convnext_tiny",
        "torchvision.efficientnet_b0",
        "torchvision.densenet121",
        "torchvision.vgg16",
        "torchvision.resnext101_32x8d",
    ):
        assert name in listed


def test_pickled_model_of_the_users_own_class_with_trust(tmp_path: Path) -> None:
    """``torch.save(model)`` in the user's training script pickles ``__main__.TinyNet``: with
    ``--trust-pickle`` and ``--model-file`` the class resolves to the file's; without trust, refused."""
    import subprocess
    import sys

    (tmp_path / "tiny_net.py").write_text(USER_MODEL)
    script = USER_MODEL + (
        "\nif __name__ == '__main__':\n    import sys\n    torch.manual_seed(1)\n"
        "    torch.save(TinyNet(width=5, classes=2), sys.argv[1])\n"
    )
    (tmp_path / "train.py").write_text(script)
    subprocess.run([sys.executable, str(tmp_path / "train.py"), str(tmp_path / "whole.pt")], check=True)
    spec = dict(model_file=tmp_path / "tiny_net.py", model_class="TinyNet", input_size=(3, 8, 8))
    with pytest.raises(PickleRefusedError, match=r"__main__\.TinyNet"):
        import_weights(
            ImportSpec(tmp_path / "whole.pt", tmp_path / "a", kwargs={"width": 5, "classes": 2}, **spec)
        )
    with pytest.warns(UserWarning, match="weights_only=False"):
        result = import_weights(
            ImportSpec(
                tmp_path / "whole.pt",
                tmp_path / "b",
                kwargs={"width": 5, "classes": 2},
                trust_pickle=True,
                **spec,
            )
        )
    assert result.card.num_classes == 2
    model, _ = load_checkpoint(tmp_path / "b")
    assert torch.load(tmp_path / "b" / "best.pt", weights_only=True).keys() == model.state_dict().keys()


def test_num_classes_reaches_a_user_class_that_takes_it(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\nclass Net(nn.Module):\n    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n        self.fc = nn.Linear(12, num_classes)\n\n"
        "    def forward(self, x):\n        return self.fc(x.flatten(1))\n"
    )
    torch.save(nn.Linear(12, 7).state_dict(), tmp_path / "w.pt")
    torch.save({"fc." + k: v for k, v in nn.Linear(12, 7).state_dict().items()}, tmp_path / "w.pt")
    spec = ImportSpec(
        tmp_path / "w.pt",
        tmp_path / "c",
        model_file=tmp_path / "net.py",
        model_class="Net",
        num_classes=7,
        input_size=(3, 2, 2),
    )
    result = import_weights(spec)
    assert result.card.model_kwargs == {"num_classes": 7} and result.card.num_classes == 7


def test_a_multi_output_registry_model_keeps_its_output_names(tmp_path: Path) -> None:
    source = create_model("resgptnet_small", width=8)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    spec = ImportSpec(
        tmp_path / "w.pt", tmp_path / "g", arch="resgptnet_small", kwargs={"width": 8}, input_size=(1, 28, 28)
    )
    result = import_weights(spec)
    assert result.card.outputs == ["y", "yg", "ys"] and result.card.num_classes == 10
    model, _ = load_checkpoint(tmp_path / "g")
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x)[0], source.eval()(x)[0], atol=1e-5)


def test_mlp_is_sized_by_the_input(tmp_path: Path) -> None:
    source = create_model("mlp", input_shape=[1, 28, 28], hidden=[32])
    torch.save(source.state_dict(), tmp_path / "w.pt")
    result = import_weights(
        ImportSpec(tmp_path / "w.pt", tmp_path / "m", arch="mlp", kwargs={"hidden": [32]})
    )
    assert result.card.model_kwargs["input_shape"] == [1, 28, 28] and result.card.input_shape == [1, 28, 28]
    model, _ = load_checkpoint(tmp_path / "m")
    _same_outputs(source, model, (1, 28, 28))

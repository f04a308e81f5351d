"""``xai import`` end to end: four imported checkpoints (a registry model saved as a training checkpoint,
a torchvision architecture with DataParallel's ``module.`` prefix nested under ``state_dict``, a user's
own model file, the released Decomposing-the-Deep ResNet-20) archived by ``xai archive``'s builder and
served by ONE real TorchServe; predictions and explanations over gRPC equal the in-process model loaded
with ``load_checkpoint``. The user's model file travels in the archive (the worker imports it from
there), and an image sent to the torchvision model is resized and centre-cropped as its card says."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from xai_serve.explain import ModelContext, explain_detailed
from xai_serve.models import create_model, load_checkpoint
from xai_serve.serving.archive import ArchiveOptions
from xai_serve.training.importer import ImportSpec, import_weights

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "resnet20-12fca82f.th"

USER_MODEL = '''
import torch
from torch import nn


class PlainNet(nn.Module):
    """A user's network: nothing of xai_serve in it."""

    def __init__(self, width: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.body(x)).flatten(1))
'''

# name -> (checkpoint subdirectory, methods explained)
SERVED = {
    "imp_registry": ("registry", ["gradient", "lrp"]),
    "imp_torchvision": ("torchvision", ["gradient", "gradcam"]),
    "imp_user": ("user", ["gradient", "gradcam", "lrp"]),
    "imp_resnet20": ("resnet20", ["gradient", "lrp"]),
}


def _imports(root: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    registry = create_model("simplenet_310k", num_classes=10, in_chans=1)
    for module in registry.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    torch.save({"epoch": 3, "model_state_dict": registry.state_dict()}, root / "simplenet.pt")
    tv = create_model("torchvision.squeezenet1_1", num_classes=5)
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}, root / "squeeze.pth")
    (root / "plain_net.py").write_text(USER_MODEL)
    namespace: dict[str, object] = {}
    exec(compile(USER_MODEL, "plain_net.py", "exec"), namespace)  # the user's own training run
    user = namespace["PlainNet"](width=6, classes=4)  # type: ignore[operator]
    torch.save(user.state_dict(), root / "plain.pt")
    specs = {
        "registry": ImportSpec(root / "simplenet.pt", root / "registry", arch="simplenet_310k"),
        "torchvision": ImportSpec(
            root / "squeeze.pth", root / "torchvision", arch="squeezenet1_1", input_size=(3, 64, 64)
        ),
        "user": ImportSpec(
            root / "plain.pt",
            root / "user",
            model_file=root / "plain_net.py",
            model_class="PlainNet",
            kwargs={"width": 6, "classes": 4},
            input_size=(3, 24, 24),
            normalize="0.5/0.25",
        ),
        "resnet20": ImportSpec(FIXTURE, root / "resnet20", arch="resnet20"),
    }
    return {name: import_weights(spec).out for name, spec in specs.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, private_server):
    root = tmp_path_factory.mktemp("imported")
    ckpts = _imports(root)
    (root / "plain_net.py").unlink()  # the worker must import the copy packed in the archive
    options = ArchiveOptions(batch_size=2, max_batch_delay_ms=20)
    archives = [(ckpts[sub], name, options) for name, (sub, _) in SERVED.items()]
    return private_server(request, root, archives), ckpts


@pytest.mark.parametrize("name", list(SERVED))
def test_served_imports_equal_in_process(server, name: str) -> None:
    served, ckpts = server
    sub, methods = SERVED[name]
    model, card = load_checkpoint(ckpts[sub])
    x = np.random.default_rng(5).normal(size=card.input_shape).astype(np.float32)
    with served.client("grpc") as c:
        e = c.explain(name, x, methods, target="predicted", normalized=True, top_k=card.num_classes)
    xt = torch.from_numpy(x)[None]
    with torch.no_grad():
        logits = model(xt)[0]
    assert e.prediction.index == int(logits.argmax())
    got = {s.index: s.logit for s in e.prediction.top}
    np.testing.assert_allclose(
        [got[i] for i in range(card.num_classes)], logits.numpy(), rtol=1e-4, atol=1e-5
    )
    context = ModelContext.of(card.mean, card.std)
    ref = explain_detailed(model, xt, {m: {} for m in methods}, int(logits.argmax()), context)
    for method in methods:
        np.testing.assert_allclose(
            e.heatmap(method).values, ref[method].heatmap[0].numpy(), rtol=1e-4, atol=1e-6, err_msg=method
        )


def test_served_image_is_resized_and_centre_cropped_as_the_card_says(server) -> None:
    served, ckpts = server
    model, card = load_checkpoint(ckpts["torchvision"])
    assert card.resize == round(64 * 256 / 224)
    pixels = np.random.default_rng(6).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    with served.client("grpc") as c:
        e = c.explain("imp_torchvision", buf.getvalue(), ["gradient"], top_k=card.num_classes)
    pipeline = transforms.Compose(
        [
            transforms.Resize(card.resize),
            transforms.CenterCrop(64),
            transforms.ToTensor(),
            transforms.Normalize(card.mean, card.std),
        ]
    )
    with torch.no_grad():
        logits = model(pipeline(image)[None])[0]
    got = {s.index: s.logit for s in e.prediction.top}
    # pixels rounded to 8 bits on the server: logits agree to that precision
    np.testing.assert_allclose([got[i] for i in range(card.num_classes)], logits.numpy(), atol=0.05)


def test_client_command_params_reach_the_served_method(server, tmp_path: Path) -> None:
    """``xai-client explain --param METHOD.KEY=VALUE`` (the one grammar, xai_client.params) sets the
    served method's parameters: the map equals the in-process one with the same parameters, and differs
    from the default's."""
    from xai_client.cli import main

    served, ckpts = server
    model, card = load_checkpoint(ckpts["resnet20"])
    pixels = np.random.default_rng(7).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    image = tmp_path / "img.png"
    Image.fromarray(pixels).save(image)
    common = ["--model", "imp_resnet20", "--address", served.config.grpc_address]
    common += ["--key-file", str(served.config.key_file), "--target", "3"]
    params = [
        "--param",
        "lrp.composite=epsilon",
        "--param",
        "lrp.epsilon=0.25",
        "--param",
        "gradcam.layer=layer2",
    ]
    assert (
        main(
            [
                "explain",
                str(image),
                "--method",
                "lrp",
                "--method",
                "gradcam",
                *params,
                "--out",
                str(tmp_path / "a"),
                *common,
            ]
        )
        == 0
    )
    assert main(["explain", str(image), "--method", "lrp", "--out", str(tmp_path / "b"), *common]) == 0
    x = transforms.Normalize(card.mean, card.std)(transforms.ToTensor()(Image.open(image)))[None]
    context = ModelContext.of(card.mean, card.std)
    wanted = {"lrp": {"composite": "epsilon", "epsilon": 0.25}, "gradcam": {"layer": "layer2"}}
    ref = explain_detailed(model, x, wanted, 3, context)
    for method in ("lrp", "gradcam"):
        served_map = np.load(tmp_path / "a" / f"img_{method}.npy")
        np.testing.assert_allclose(served_map, ref[method].heatmap[0].numpy(), rtol=1e-4, atol=1e-6)
    assert not np.allclose(np.load(tmp_path / "b" / "img_lrp.npy"), np.load(tmp_path / "a" / "img_lrp.npy"))
    # a parameter of a method not asked for, and a malformed item: refused before any request
    assert (
        main(
            [
                "explain",
                str(image),
                "--method",
                "lrp",
                "--param",
                "gradcam.layer=x",
                "--out",
                str(tmp_path / "c"),
                *common,
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "explain",
                str(image),
                "--method",
                "lrp",
                "--param",
                "epsilon=1",
                "--out",
                str(tmp_path / "c"),
                *common,
            ]
        )
        == 2
    )

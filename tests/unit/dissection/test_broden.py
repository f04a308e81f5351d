"""Broden-format reader: round trip on the synthetic generator, layers OR-ed, scalar labels, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_serve.data.broden import BrodenDataset, decode_segmentation, encode_segmentation
from xai_serve.dissection import bitsets
from xai_serve.dissection.concepts import ConceptStore
from xai_serve.errors import DatasetNotFoundError


def test_round_trip_synthetic(broden: tuple[Path, dict[str, np.ndarray]]) -> None:
    root, truth = broden
    ds = BrodenDataset(root)
    assert len(ds) == 24
    assert ds.mask_size == (28, 28)
    assert set(ds.names) == set(truth)
    assert "material" not in ds.label_category
    store = ConceptStore.from_dataset(ds)
    for c, name in enumerate(store.names):
        dense = bitsets.unpack(store.rows[store.loc[c]], store.shape)
        np.testing.assert_array_equal(dense, truth[name], err_msg=name)
        assert store.counts[c] == truth[name].sum()
    assert ds.image(0).size == (56, 56)


def test_segmentation_codec() -> None:
    labels = np.array([[0, 1, 255], [256, 300, 1197]])
    np.testing.assert_array_equal(encode_segmentation(labels)[..., 0], labels % 256)
    assert decode_segmentation.__doc__


def _write(root: Path, index_rows: list[dict[str, str]]) -> None:
    (root / "images").mkdir(parents=True)
    with open(root / "category.csv", "w", newline="") as f:
        f.write("name,first,last,count,frequency\npart,1,1,1,1\nscene,2,2,1,1\n")
    with open(root / "label.csv", "w", newline="") as f:
        f.write(
            "number,name,category,frequency,coverage,syns\n0,-,,0,0,\n1,wheel,part(1),1,1,\n7,street,scene(1),1,1,\n"
        )
    fields = ["image", "split", "ih", "iw", "sh", "sw", "part", "scene"]
    with open(root / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(index_rows)


def _row(part: str, scene: str) -> dict[str, str]:
    """One index row: image ``a.jpg`` (train, 8x8, segmentations 4x4) with these part and scene cells."""
    return {
        "image": "a.jpg",
        "split": "train",
        "ih": "8",
        "iw": "8",
        "sh": "4",
        "sw": "4",
        "part": part,
        "scene": scene,
    }


def test_layers_or_and_scalar(tmp_path: Path) -> None:
    root = tmp_path / "b"
    _write(root, [_row("a_p1.png;a_p2.png", "7")])
    Image.new("RGB", (8, 8)).save(root / "images" / "a.jpg")
    l1 = np.zeros((4, 4), int)
    l1[0, 0] = 1
    l2 = np.zeros((4, 4), int)
    l2[3, 3] = 1
    Image.fromarray(encode_segmentation(l1)).save(root / "images" / "a_p1.png")
    Image.fromarray(encode_segmentation(l2)).save(root / "images" / "a_p2.png")
    store = ConceptStore.from_dataset(BrodenDataset(root))
    wheel = bitsets.unpack(store.rows[store.loc[0, 0]], (4, 4))
    np.testing.assert_array_equal(wheel, (l1 == 1) | (l2 == 1))
    assert store.counts.tolist() == [2, 16]  # the scene label is a whole-image mask


def test_missing_folder_names_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"index\.csv.*label\.csv.*category\.csv"):
        BrodenDataset(tmp_path / "nowhere")


def test_malformed_index(tmp_path: Path) -> None:
    root = tmp_path / "b"
    _write(root, [])
    (root / "index.csv").write_text("image,split\nx.jpg,train\n")
    with pytest.raises(DatasetNotFoundError, match="lacks the columns"):
        BrodenDataset(root)


def test_missing_segmentation(tmp_path: Path) -> None:
    root = tmp_path / "b"
    _write(root, [_row("gone.png", "")])
    with pytest.raises(DatasetNotFoundError, match=r"gone\.png"):
        ConceptStore.from_dataset(BrodenDataset(root))

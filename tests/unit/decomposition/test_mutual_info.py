"""MI between class filter sets (docs/methods.md#decomp-mutual-info) from the released index files and the CSG
gate, against scikit-learn's ``mutual_info_score``
(a test-only reference: the product has its own implementation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from xai_serve.decomposition.csg import convert_csg_checkpoint, csg_indices, load_gate
from xai_serve.decomposition.mutual_info import binary_mutual_info, markdown_table, mean_mutual_info
from xai_serve.decomposition.runs import mutual_info_inputs


def sklearn_means(sets: list[list[int]], d: int = 64) -> tuple[float, float]:
    vecs = []
    for s in sets:
        v = np.zeros(d, dtype=int)
        v[s] = 1
        vecs.append(v)
    m = np.array([[mutual_info_score(a, b) for b in vecs] for a in vecs])
    k = len(vecs)
    return float(m.mean()), float((m.sum() - np.trace(m)) / (k * (k - 1)))


def load(p: Path) -> list[list[int]]:
    data = json.loads(p.read_text())
    return [data[str(c)] for c in range(10)]


def test_pairwise_values_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 2, 64), rng.integers(0, 2, 64)
        assert binary_mutual_info(a, b) == pytest.approx(mutual_info_score(a, b), abs=1e-12)


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory: pytest.TempPathFactory, released) -> Path:
    with pytest.warns(UserWarning, match="weights_only=False"):
        return convert_csg_checkpoint(released.csg_pth, tmp_path_factory.mktemp("csg"))


def test_released_index_files_match_sklearn(released, gate_dir: Path, tmp_path: Path) -> None:
    inputs = [*released.index_files.values(), released.csg_index_file, gate_dir / "gate.pt"]
    results = mutual_info_inputs(inputs, csg_order="seed_ascending")
    for k, path in released.index_files.items():
        got = results[path.stem][str(k)]
        assert (got.mean_all_pairs, got.mean_off_diagonal) == pytest.approx(
            sklearn_means(load(path)), abs=1e-12
        )
    csg_file = results[released.csg_index_file.stem]["5"]
    assert csg_file.mean_all_pairs == pytest.approx(
        sklearn_means(load(released.csg_index_file))[0], abs=1e-12
    )
    gate = load_gate(gate_dir)
    for k in (5, 10, 20):
        for order in ("seed_ascending",):
            ref = sklearn_means(csg_indices(gate, k, order))
            got = results["gate"][str(k)]
            assert (got.mean_all_pairs, got.mean_off_diagonal) == pytest.approx(ref, abs=1e-12)
    # the seed_ascending gate order reproduces the Decomposing the Deep code's CSG index file exactly
    assert results["gate"]["5"] == csg_file
    desc = mutual_info_inputs([released.index_files[5], gate_dir], csg_order="descending")
    assert desc[gate_dir.name]["5"].mean_all_pairs == pytest.approx(
        sklearn_means(csg_indices(gate, 5, "descending"))[0], abs=1e-12
    )
    table = markdown_table(results)
    assert table.splitlines()[0].startswith("| k | resnet20_cifar-10_indices")
    assert len(table.splitlines()) == 2 + 3  # header, rule, rows k = 5, 10, 20


def test_diagonal_is_entropy() -> None:
    sets = [[0, 1, 2, 3, 4]] * 2
    mi = mean_mutual_info(sets, 64)
    p = 5 / 64
    h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert mi.mean_all_pairs == pytest.approx(h) and mi.mean_off_diagonal == pytest.approx(h)

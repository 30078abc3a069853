"""The training core's data sets: sizes as promised, determinism, normalization, the cache, and
each source's own rules (no downloads, the CIFAR-10 file format, upload validation)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gradlab_contract.shapes import UploadInfo, data_shape
from gradlab_contract.spec import CtrOptions, DataSpec
from sklearn.metrics import roc_auc_score

import training.data
from training.data import Dataset, load_dataset
from training.data import ctr as ctr_source
from training.data import spiral as spiral_source
from training.data._cache import RawCache
from training.data.cifar10 import FOLDER, TEST_FILE, read_binary, write_cifar10_binary

BUILTIN_SPECS = [
    DataSpec(dataset="mnist1d", options={"samples": 105}),  # not a multiple of 10 on purpose
    DataSpec(dataset="digits", val_fraction=0.3),
    DataSpec(dataset="spiral", options={"classes": 4, "points": 50}),
    DataSpec(dataset="ctr", options={"rows": 1000, "fields": 3, "cardinality": 50}),
]


def spec_id(data: DataSpec) -> str:
    return data.dataset


def assert_same(a: Dataset, b: Dataset) -> None:
    for name in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def save_upload(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


# --- sizes, types, determinism ------------------------------------------------------------------


@pytest.mark.parametrize("data", BUILTIN_SPECS, ids=spec_id)
def test_builtin_sets_have_exactly_the_estimated_shape(data: DataSpec) -> None:
    dataset = load_dataset(data, seed=3)
    assert dataset.shape == data_shape(data)
    shape = dataset.shape
    assert dataset.x_train.shape == (shape.n_train, *shape.input_shape)
    assert dataset.x_val.shape == (shape.n_val, *shape.input_shape)
    expected_x = torch.int64 if shape.kind == "categorical" else torch.float32
    assert dataset.x_train.dtype == dataset.x_val.dtype == expected_x
    for labels in (dataset.y_train, dataset.y_val):
        assert labels.dtype == torch.int64
        assert labels.min() >= 0 and labels.max() < shape.num_classes
    assert len(torch.unique(dataset.y_train)) == shape.num_classes


@pytest.mark.parametrize("data", BUILTIN_SPECS, ids=spec_id)
def test_same_seed_gives_identical_tensors_even_after_the_cache_is_dropped(data: DataSpec) -> None:
    first = load_dataset(data, seed=5)
    training.data.clear_cache()
    assert_same(first, load_dataset(data, seed=5))


@pytest.mark.parametrize("data", BUILTIN_SPECS, ids=spec_id)
def test_another_seed_gives_another_set_or_split(data: DataSpec) -> None:
    a, b = load_dataset(data, seed=1), load_dataset(data, seed=2)
    assert not torch.equal(a.x_train, b.x_train)


def test_mnist1d_is_generated_without_download_and_leaves_global_random_state_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mnist1d.data
    import requests

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data set tried to download")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_network)
    monkeypatch.setattr(requests, "get", no_network)
    np.random.seed(123)
    random.seed(123)
    numpy_before, python_before = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)

    load_dataset(DataSpec(dataset="mnist1d", options={"samples": 200}), seed=0)

    assert np.random.random() == numpy_before
    assert random.random() == python_before


# --- normalization ------------------------------------------------------------------------------


def test_standardize_uses_train_statistics_per_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scales = np.array([1.0, 10.0, 100.0])[None, :, None, None]
    x = rng.normal(5.0, 1.0, (40, 3, 4, 4)) * scales
    x_test = x[:10] + 1000.0  # far from the train data: must not be standardized on its own
    path = save_upload(
        tmp_path / "u.npz", x=x, y=np.arange(40) % 2, x_test=x_test, y_test=np.zeros(10, int)
    )

    dataset = load_dataset(DataSpec(dataset="upload:u"), seed=0, upload_path=path)

    per_channel = dataset.x_train.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(1, correction=0), torch.ones(3), atol=1e-4, rtol=0)
    train_std = x.transpose(1, 0, 2, 3).reshape(3, -1).std(1)
    expected_val = (x_test - x.mean(axis=(0, 2, 3), keepdims=True)) / train_std[None, :, None, None]
    np.testing.assert_allclose(dataset.x_val.numpy(), expected_val, rtol=1e-4)


def test_standardize_is_per_feature_for_vectors_and_leaves_constant_features_finite() -> None:
    dataset = load_dataset(DataSpec(dataset="spiral", options={"noise": 0.0}), seed=0)
    torch.testing.assert_close(dataset.x_train.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        dataset.x_train.std(0, correction=0), torch.ones(2), atol=1e-4, rtol=0
    )


def test_constant_feature_is_centred_not_divided_by_zero(tmp_path: Path) -> None:
    x = np.stack([np.full(20, 3.0), np.arange(20.0)], axis=1)
    path = save_upload(tmp_path / "c.npz", x=x, y=np.arange(20) % 2)
    dataset = load_dataset(DataSpec(dataset="upload:c"), seed=0, upload_path=path)
    assert torch.isfinite(dataset.x_train).all()
    assert torch.all(dataset.x_train[:, 0] == 0)


def test_minmax_maps_train_range_to_unit_interval() -> None:
    dataset = load_dataset(DataSpec(dataset="digits", normalize="minmax"), seed=0)
    assert dataset.x_train.min() == 0.0 and dataset.x_train.max() == 1.0


def test_none_keeps_raw_values() -> None:
    dataset = load_dataset(DataSpec(dataset="digits", normalize="none"), seed=0)
    values = torch.unique(torch.cat([dataset.x_train.flatten(), dataset.x_val.flatten()]))
    assert torch.equal(values, torch.arange(17, dtype=torch.float32))  # grey levels 0..16


def test_ctr_ids_are_never_normalized() -> None:
    options = {"rows": 500, "fields": 2, "cardinality": 30}
    dataset = load_dataset(DataSpec(dataset="ctr", options=options, normalize="minmax"), seed=0)
    assert dataset.x_train.dtype == torch.int64
    assert dataset.x_train.min() >= 0 and dataset.x_train.max() < 30


# --- cache --------------------------------------------------------------------------------------


def test_a_set_is_built_once_per_process_and_its_tensors_are_owned_by_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real = spiral_source.generate
    monkeypatch.setattr(spiral_source, "generate", lambda *a: calls.append(a) or real(*a))
    data = DataSpec(dataset="spiral", options={"points": 20})

    first = load_dataset(data, seed=0)
    first.x_train.fill_(99.0)
    first.y_train.fill_(0)
    second = load_dataset(data, seed=0)
    load_dataset(data.model_copy(update={"val_fraction": 0.5}), seed=0)  # same raw set
    load_dataset(data, seed=1)  # another raw set

    assert len(calls) == 2
    assert not torch.equal(first.x_train, second.x_train)
    assert len(torch.unique(second.y_train)) == 3


class Blob:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


def test_cache_evicts_the_least_recently_used_entry_first() -> None:
    cache = RawCache(max_entries=2, max_bytes=100)
    a, b = Blob(10), Blob(10)
    cache.get_or_build("a", lambda: a)
    cache.get_or_build("b", lambda: b)
    assert cache.get_or_build("a", lambda: Blob(0)) is a  # a is now the most recent
    cache.get_or_build("c", lambda: Blob(10))  # over max_entries: b goes, not a
    assert cache.get_or_build("a", lambda: Blob(0)) is a
    assert cache.get_or_build("b", lambda: Blob(0)) is not b


def test_cache_stays_within_its_byte_budget() -> None:
    cache = RawCache(max_entries=10, max_bytes=100)
    first = Blob(60)
    cache.get_or_build("first", lambda: first)
    cache.get_or_build("second", lambda: Blob(50))  # 110 bytes would not fit: first goes
    assert cache.nbytes == 50 and len(cache) == 1
    huge = Blob(101)
    assert cache.get_or_build("huge", lambda: huge) is huge  # returned, never kept
    assert cache.nbytes == 50
    assert cache.get_or_build("first", lambda: Blob(0)) is not first


# --- ctr ----------------------------------------------------------------------------------------


def test_ctr_categories_are_skewed_and_labels_follow_the_true_weights() -> None:
    data = ctr_source.generate(CtrOptions(), seed=0)
    counts = np.bincount(data.x[:, 0], minlength=1000)
    assert counts[0] > 0.2 * len(data.x)  # the head is very common
    assert (counts < 20).mean() > 0.8  # most categories are rare
    assert roc_auc_score(data.y, data.logits()) > 0.8
    assert 0.2 < data.y.mean() < 0.5


def test_rare_categories_carry_a_real_share_of_the_signal() -> None:
    data = ctr_source.generate(CtrOptions(), seed=0)
    rare = data.x >= 100  # ranks past 100 are each seen fewer than ~20 times in 20,000 rows
    weights = np.take_along_axis(data.weights.T, data.x, axis=0)
    rare_part = np.where(rare, weights, 0.0).sum(axis=1)
    assert rare_part.var() > 0.1 * data.logits().var()


def test_default_ctr_generation_is_fast() -> None:
    start = time.perf_counter()
    ctr_source.generate(CtrOptions(), seed=1)
    assert time.perf_counter() - start < 0.5


def test_adam_beats_plain_sgd_on_ctr_validation_auc() -> None:
    """The comparison the set exists for, on a small embedding model like the engine's."""
    dataset = load_dataset(DataSpec(dataset="ctr"), seed=0)
    sgd_auc = _train_embedding_model(dataset, torch.optim.SGD, lr=0.5)
    adam_auc = _train_embedding_model(dataset, torch.optim.Adam, lr=0.01)
    assert adam_auc > sgd_auc + 0.04, (adam_auc, sgd_auc)


def _train_embedding_model(dataset: Dataset, optimizer: Any, lr: float, steps: int = 300) -> float:
    torch.manual_seed(0)
    fields, cardinality = len(dataset.shape.cardinalities), dataset.shape.cardinalities[0]
    offsets = torch.arange(fields) * cardinality
    embed = torch.nn.Embedding(fields * cardinality, 4)
    head = torch.nn.Sequential(
        torch.nn.Linear(fields * 4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)
    )
    step = optimizer([*embed.parameters(), *head.parameters()], lr=lr)
    batches = torch.Generator().manual_seed(0)
    for _ in range(steps):
        rows = torch.randint(0, dataset.shape.n_train, (128,), generator=batches)
        logits = head(embed(dataset.x_train[rows] + offsets).flatten(1))
        loss = torch.nn.functional.cross_entropy(logits, dataset.y_train[rows])
        step.zero_grad()
        loss.backward()
        step.step()
    with torch.no_grad():
        scores = head(embed(dataset.x_val + offsets).flatten(1)).softmax(1)[:, 1]
    return float(roc_auc_score(dataset.y_val.numpy(), scores.numpy()))


# --- cifar10 ------------------------------------------------------------------------------------


def test_cifar10_reads_the_binary_format_and_honours_the_limit(cifar_root: Path) -> None:
    folder = cifar_root / FOLDER
    first_images, _ = read_binary(folder / "data_batch_1.bin")
    second_images, _ = read_binary(folder / "data_batch_2.bin")
    data = DataSpec(dataset="cifar10", options={"limit": 10}, normalize="none")

    dataset = load_dataset(data, seed=0, data_root=cifar_root)

    assert (dataset.shape.n_train, dataset.shape.n_val) == (10, 3)
    assert dataset.shape.input_shape == (3, 32, 32) and dataset.shape.num_classes == 10
    expected = np.concatenate(
        [first_images, second_images, read_binary(folder / "data_batch_3.bin")[0]]
    )
    np.testing.assert_array_equal(dataset.x_train.numpy(), expected[:10])
    assert dataset.y_train.tolist() == list(range(10))
    assert dataset.y_val.tolist() == [7, 8, 9]


def test_cifar10_without_limit_uses_every_record_in_the_folder(cifar_root: Path) -> None:
    dataset = load_dataset(DataSpec(dataset="cifar10"), seed=0, data_root=cifar_root)
    assert dataset.x_train.shape == (20, 3, 32, 32)  # 5 files of 4 images
    assert dataset.x_val.shape == (3, 3, 32, 32)


def test_cifar10_record_layout_is_label_then_channel_planes(tmp_path: Path) -> None:
    image = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    image[0, 0, 0, 1] = 11  # red, row 0, column 1
    image[0, 2, 31, 31] = 22  # blue, last pixel
    path = tmp_path / "one.bin"
    write_cifar10_binary(path, image, np.array([6]))
    raw = path.read_bytes()
    assert len(raw) == 3073 and raw[0] == 6 and raw[1 + 1] == 11 and raw[-1] == 22


def test_missing_cifar10_folder_says_where_and_what(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-bin.*data_batch_1\.bin"):
        load_dataset(DataSpec(dataset="cifar10"), seed=0, data_root=tmp_path)
    with pytest.raises(FileNotFoundError, match="data root"):
        load_dataset(DataSpec(dataset="cifar10"), seed=0)


def test_truncated_cifar10_file_is_refused(cifar_root: Path) -> None:
    test_file = cifar_root / FOLDER / TEST_FILE
    test_file.write_bytes(test_file.read_bytes()[:-5])
    with pytest.raises(ValueError, match="not a multiple of 3073"):
        load_dataset(DataSpec(dataset="cifar10"), seed=0, data_root=cifar_root)


# --- uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "input_shape", "kind"),
    [
        ((30, 5), (5,), "vector"),
        ((30, 6, 7), (1, 6, 7), "image"),
        ((30, 2, 6, 7), (2, 6, 7), "image"),
    ],
)
def test_upload_shapes_follow_upload_shape(
    tmp_path: Path, x_shape: tuple[int, ...], input_shape: tuple[int, ...], kind: str
) -> None:
    x = np.random.default_rng(0).random(x_shape).astype(np.float32)
    path = save_upload(tmp_path / "u.npz", x=x, y=np.arange(30) % 4)
    data = DataSpec(dataset="upload:u", val_fraction=0.25)

    dataset = load_dataset(data, seed=0, upload_path=path)

    assert dataset.shape == data_shape(data, UploadInfo(x_shape, num_classes=4))
    assert (dataset.shape.kind, dataset.shape.input_shape) == (kind, input_shape)
    assert dataset.x_train.shape == (dataset.shape.n_train, *input_shape)


def test_upload_test_split_is_the_validation_set_and_counts_its_classes(tmp_path: Path) -> None:
    x, x_test = np.arange(20.0).reshape(10, 2), np.full((4, 2), 7.0)
    path = save_upload(
        tmp_path / "t.npz", x=x, y=np.arange(10) % 2, x_test=x_test, y_test=np.array([0, 1, 2, 5])
    )
    dataset = load_dataset(DataSpec(dataset="upload:t", normalize="none"), seed=0, upload_path=path)
    assert (dataset.shape.n_train, dataset.shape.n_val, dataset.shape.num_classes) == (10, 4, 6)
    np.testing.assert_array_equal(dataset.x_val.numpy(), x_test)
    assert dataset.y_val.tolist() == [0, 1, 2, 5]


def test_a_replaced_upload_is_read_again(tmp_path: Path) -> None:
    path = save_upload(tmp_path / "r.npz", x=np.zeros((10, 2)), y=np.zeros(10, int))
    data = DataSpec(dataset="upload:r", normalize="none")
    assert load_dataset(data, seed=0, upload_path=path).x_train.max() == 0
    save_upload(path, x=np.ones((12, 2)), y=np.zeros(12, int))
    assert load_dataset(data, seed=0, upload_path=path).x_train.min() == 1


BAD_UPLOADS: list[tuple[dict[str, Any], str]] = [
    ({"x": np.zeros((5, 2))}, "needs arrays 'x' and 'y'"),
    ({"x": np.array([["a", "b"]] * 5), "y": np.zeros(5, int)}, "x must be numeric"),
    ({"x": np.zeros(5), "y": np.zeros(5, int)}, "must be \\(N, F\\)"),
    ({"x": np.zeros((5, 1, 2, 3, 4)), "y": np.zeros(5, int)}, "must be \\(N, F\\)"),
    ({"x": np.full((5, 2), np.nan), "y": np.zeros(5, int)}, "NaN"),
    ({"x": np.zeros((5, 2)), "y": np.zeros(5)}, "integer class labels"),
    ({"x": np.zeros((5, 2)), "y": np.zeros(4, int)}, "one label per row"),
    ({"x": np.zeros((5, 2)), "y": np.array([0, 1, -1, 0, 1])}, "negative labels"),
    (
        {"x": np.zeros((5, 2)), "y": np.zeros(5, int), "x_test": np.zeros((2, 2))},
        "both x_test and y_test",
    ),
    (
        {
            "x": np.zeros((5, 2)),
            "y": np.zeros(5, int),
            "x_test": np.zeros((2, 3)),
            "y_test": np.zeros(2, int),
        },
        "x_test examples",
    ),
    ({"x": np.zeros((5, 2), dtype=object), "y": np.zeros(5, int)}, "object arrays"),
]


@pytest.mark.parametrize(("arrays", "message"), BAD_UPLOADS)
def test_bad_upload_content_is_refused_with_a_clear_message(
    tmp_path: Path, arrays: dict[str, Any], message: str
) -> None:
    path = save_upload(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_dataset(DataSpec(dataset="upload:bad"), seed=0, upload_path=path)


def test_an_upload_that_is_not_an_npz_is_refused(tmp_path: Path) -> None:
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((5, 2)))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    for path in (single, garbage):
        with pytest.raises(ValueError, match="npz"):
            load_dataset(DataSpec(dataset="upload:x"), seed=0, upload_path=path)


def test_a_missing_upload_file_or_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_dataset(DataSpec(dataset="upload:gone"), seed=0, upload_path=tmp_path / "gone.npz")
    with pytest.raises(ValueError, match="path of its uploaded file"):
        load_dataset(DataSpec(dataset="upload:gone"), seed=0)


def test_an_upload_too_small_to_split_is_refused(tmp_path: Path) -> None:
    path = save_upload(tmp_path / "s.npz", x=np.zeros((2, 2)), y=np.zeros(2, int))
    with pytest.raises(ValueError, match="no training rows"):
        load_dataset(DataSpec(dataset="upload:s", val_fraction=0.8), seed=0, upload_path=path)

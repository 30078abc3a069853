"""The torch-free estimate: data shapes, layer plans, parameter counts and steps."""

import pytest
from gradlab_client import JobSpec
from gradlab_contract.shapes import UploadInfo, estimate


def spec(**parts: object) -> JobSpec:
    raw: dict[str, object] = {"data": {"dataset": "digits"}, "training": {"steps": 10}}
    raw.update(parts)
    return JobSpec.model_validate(raw)


def test_mlp_parameters_are_counted_by_hand() -> None:
    result = estimate(spec(model={"hidden": [32, 16]}))
    # 64 inputs -> 32 -> 16 -> 10, weights plus biases.
    assert result.parameters == (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    assert [layer.name for layer in result.layers] == ["fc1", "fc2", "out"]


def test_batch_norm_and_maxout_change_the_plan() -> None:
    plain = estimate(spec(model={"hidden": [32]})).parameters
    with_bn = estimate(spec(model={"hidden": [32], "batch_norm": True})).parameters
    assert with_bn - plain == 2 * 32
    maxout = estimate(spec(model={"hidden": [32], "activation": "maxout"}))
    assert maxout.layers[-1].weight_shape == (10, 16)


def test_cnn_shapes_follow_the_data() -> None:
    conv = {"kind": "cnn", "conv": [{"channels": 8, "pool": "max"}], "hidden": [16]}
    seq = estimate(spec(data={"dataset": "mnist1d"}, model=conv))
    assert seq.layers[0].type == "conv1d" and seq.layers[0].weight_shape == (8, 1, 3)
    assert seq.layers[1].weight_shape == (16, 8 * 20)
    img = estimate(spec(model=conv))
    assert img.layers[0].type == "conv2d" and img.layers[1].weight_shape == (16, 8 * 4 * 4)


def test_a_conv_stack_that_shrinks_to_nothing_is_refused() -> None:
    conv = [{"channels": 4, "pool": "max"}] * 4
    with pytest.raises(ValueError, match=r"model\.conv\.3"):
        estimate(spec(model={"kind": "cnn", "conv": conv}))


def test_epochs_become_steps_from_the_split() -> None:
    result = estimate(
        spec(
            training={"epochs": 3, "batch_size": 100},
            data={"dataset": "digits", "val_fraction": 0.2},
        )
    )
    assert result.shape.n_train == 1797 - 359
    assert result.total_steps == 3 * 15


def test_embedding_parameters_scale_with_cardinality() -> None:
    result = estimate(
        spec(
            data={"dataset": "ctr", "options": {"fields": 4, "cardinality": 100}},
            model={"kind": "embedding_mlp", "embedding_dim": 5, "hidden": [8]},
        )
    )
    assert result.parameters == 4 * 100 * 5 + (20 * 8 + 8) + (8 * 2 + 2)


def test_uploads_need_their_shape() -> None:
    raw = spec(data={"dataset": "upload:abc"})
    with pytest.raises(ValueError):
        estimate(raw)
    result = estimate(raw, UploadInfo(x_shape=(100, 3, 16, 16), num_classes=4))
    assert result.shape.kind == "image" and result.shape.n_train == 80


def test_augmentations_the_data_cannot_take_are_refused_with_the_field() -> None:
    upload = UploadInfo(x_shape=(100, 20), num_classes=3)
    with pytest.raises(ValueError, match=r"data\.augment\.shift"):
        estimate(spec(data={"dataset": "upload:abc", "augment": {"shift": 2}}), upload)
    noisy = estimate(spec(data={"dataset": "upload:abc", "augment": {"noise_std": 0.1}}), upload)
    assert noisy.shape.kind == "vector"

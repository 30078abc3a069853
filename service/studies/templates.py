"""Built-in studies that reproduce the lecture's comparisons (docs: shared/design/lecture.md).

Each is small enough for a CPU worker: a few hundred steps per job on a data set that needs no
download. `POST /v1/studies {"template": name, "overrides": {"training.steps": 1000}}` runs one.
"""

from __future__ import annotations

from typing import Any

from gradlab_contract.models import StudyTemplate

_TELEMETRY = {"snapshot_every": 50, "bins": 32}


def _base(data: dict[str, Any], model: dict[str, Any], optimizer: dict[str, Any],
          steps: int = 300) -> dict[str, Any]:
    return {"data": data, "model": model, "optimizer": optimizer,
            "training": {"steps": steps, "batch_size": 64, "eval_every": 50, "seed": 0},
            "telemetry": _TELEMETRY}


# Lecture section 3: zero init never breaks symmetry, std 0.01 collapses a deep net's signal,
# and each activation has its initialization (Xavier for tanh, Kaiming for ReLU).
_INIT_X_ACTIVATION = {
    "name": "init x activation",
    "base": _base({"dataset": "digits"},
                  {"hidden": [64] * 6, "init": {"scheme": "default", "std": 0.01}},
                  {"name": "momentum", "lr": 0.05}),
    "grid": {"model.init.scheme": ["zeros", "normal", "xavier_normal", "kaiming_normal"],
             "model.activation": ["sigmoid", "tanh", "relu"]},
}
# Section 1: per-parameter step sizes suit sparse inputs (rare categories of a CTR set).
_OPTIMIZERS_ON_CTR = {
    "name": "optimizers on sparse CTR",
    "base": _base({"dataset": "ctr", "options": {"rows": 5000, "cardinality": 500}},
                  {"kind": "embedding_mlp", "hidden": [32]}, {"name": "sgd", "lr": 0.01}),
    "grid": {"optimizer.name": ["sgd", "momentum", "adagrad", "rmsprop", "adam"]},
}
# Section 4: batch norm tolerates larger learning rates. Plain SGD on a 4-layer tanh MLP with
# PyTorch's default init: without batch norm, lr 2.0 blows the loss up and the net ends at
# chance (~0.1 val accuracy, every seed) while lr 0.01 is still slow after 300 steps (~0.6);
# with batch norm both train, and lr 2.0 best (~0.97 against ~0.95). Without batch norm lr 0.5
# still trains (~0.98), so the high rate has to be well past it to show the difference.
_BATCH_NORM_X_LR = {
    "name": "batch norm x learning rate",
    "base": _base({"dataset": "digits"}, {"hidden": [64] * 4, "activation": "tanh"},
                  {"name": "sgd", "lr": 0.01}),
    "grid": {"model.batch_norm": [False, True], "optimizer.lr": [0.01, 2.0]},
}
# Section 5: augmentation helps most when data are few.
_AUGMENTATION = {
    "name": "augmentation on a small training set",
    "base": _base({"dataset": "mnist1d", "options": {"samples": 600}, "val_fraction": 0.5},
                  {"kind": "cnn", "hidden": [64],
                   "conv": [{"channels": 16}, {"channels": 16, "pool": "max"}]},
                  {"name": "adam", "lr": 0.003}, steps=400),
    "grid": {"data.augment": [{}, {"shift": 4, "noise_std": 0.1}]},
}

# He et al. (2016): a plain deep network trains worse than a shallower one; the same depth with
# identity shortcuts does not. A residual MLP on MNIST-1D (flat, no normalization, ReLU with
# PyTorch's default init, width 32), plain (shortcut none) or residual, 2 or 10 blocks (6 or 22
# weighted layers). Measured on this CPU (seed 0, 400 steps): at 10 blocks the plain net stays at
# chance (0.09; its first layer's gradient is ~1e-8 of the output layer's, which the diagnosis
# names as vanishing gradients) while the residual one reaches 0.47; at 2 blocks both train.
_DEPTHS = [[{"channels": 32, "blocks": 2}], [{"channels": 32, "blocks": 10}]]
_RESIDUAL_VS_PLAIN = {
    "name": "residual vs plain",
    "base": _base({"dataset": "mnist1d"},
                  {"kind": "resnet", "resnet": {"flat": True, "norm": "none", "stem_channels": 32,
                                                "stages": _DEPTHS[0]}},
                  {"name": "adam", "lr": 0.001}, steps=400),
    "grid": {"model.resnet.stages": _DEPTHS, "model.resnet.shortcut": ["none", "identity"]},
}

TEMPLATES: dict[str, tuple[str, dict[str, Any]]] = {
    "init_x_activation": ("zeros / normal 0.01 / xavier / kaiming init x sigmoid / tanh / relu "
                          "on a 6-layer MLP (digits)", _INIT_X_ACTIVATION),
    "optimizers_on_ctr": ("sgd / momentum / adagrad / rmsprop / adam on the sparse CTR set",
                          _OPTIMIZERS_ON_CTR),
    "batch_norm_x_lr": ("batch norm off / on x sgd learning rates 0.01 and 2.0 on a 4-layer "
                        "tanh MLP (digits): without it lr 2.0 blows the loss up and ends at "
                        "chance, with it lr 2.0 trains best", _BATCH_NORM_X_LR),
    "augmentation_small_data": ("no augmentation vs shift + noise on 300 MNIST-1D sequences",
                                _AUGMENTATION),
    "residual_vs_plain": ("plain vs residual MLP at 2 and 10 blocks (MNIST-1D): the plain deep "
                          "net's gradients vanish and it stays at chance, the residual one "
                          "trains", _RESIDUAL_VS_PLAIN),
}


def _jobs(request: dict[str, Any]) -> int:
    count = 1
    for values in request["grid"].values():
        count *= len(values)
    return count


def list_templates() -> list[StudyTemplate]:
    return [StudyTemplate(name=name, description=text, request=request, jobs=_jobs(request))
            for name, (text, request) in TEMPLATES.items()]

"""A user's uploaded .npz: arrays ``x`` and ``y``, optionally ``x_test`` and ``y_test``.

Uploads are untrusted, so the file is opened without pickle (an object array could run code) and
every rule is checked with a message that says what to fix. The shape rules are those of
shapes.upload_shape: (N, F) is a vector set, (N, H, W) a one-channel image set, (N, C, H, W)
an image set.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from gradlab_contract.shapes import UploadInfo

from training.data._arrays import Pool, Split

# bool, signed and unsigned integers, floats: anything that converts to float32 with meaning.
_NUMERIC_KINDS = "biuf"


def read(path: Path) -> tuple[Pool | Split, UploadInfo]:
    """The rows (a Pool, or a Split when the file has a test part) and what the service knows."""
    arrays = _load_npz(path)
    x, y = _checked_pair(arrays, "x", "y")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError("an upload with a test split needs both x_test and y_test")
    if "x_test" not in arrays:
        return Pool(_as_channels(x), y), UploadInfo(x.shape, int(y.max()) + 1)
    x_test, y_test = _checked_pair(arrays, "x_test", "y_test")
    if x_test.shape[1:] != x.shape[1:]:
        raise ValueError(f"x_test examples have shape {x_test.shape[1:]}, x examples {x.shape[1:]}")
    info = UploadInfo(x.shape, int(max(y.max(), y_test.max())) + 1, test_rows=len(y_test))
    return Split(_as_channels(x), y, _as_channels(x_test), y_test), info


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"{path.name} holds a single array; upload an .npz with x and y")
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path.name} is not a readable .npz file: {exc}") from exc
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise ValueError("the upload holds object arrays; save plain numeric arrays") from exc
        if "pickled" in str(exc):
            raise ValueError(f"{path.name} is not an .npz file (it looks like a pickle)") from exc
        raise


def _checked_pair(
    arrays: dict[str, np.ndarray], x_name: str, y_name: str
) -> tuple[np.ndarray, np.ndarray]:
    if x_name not in arrays or y_name not in arrays:
        raise ValueError(
            f"the upload needs arrays {x_name!r} and {y_name!r}, found {sorted(arrays)}"
        )
    x, y = arrays[x_name], arrays[y_name]
    if x.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{x_name} must be numeric, got dtype {x.dtype}")
    if not 2 <= x.ndim <= 4:
        raise ValueError(f"{x_name} must be (N, F), (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{x_name} has no rows")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{x_name} contains NaN or infinite values")
    if y.dtype.kind not in "iu":
        raise ValueError(f"{y_name} must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (len(x),):
        raise ValueError(
            f"{y_name} must be one label per row of {x_name}: shape ({len(x)},), got {y.shape}"
        )
    if y.min() < 0:
        raise ValueError(f"{y_name} has negative labels; classes are 0..num_classes-1")
    return x, y.astype(np.int64)


def _as_channels(x: np.ndarray) -> np.ndarray:
    """(N, H, W) images get their one channel, as shapes.upload_shape says."""
    return x[:, None] if x.ndim == 3 else x

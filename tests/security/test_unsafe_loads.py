"""Uploads and checkpoints are never unpickled: no code of the repository deserializes objects
(tests/security/unsafe_loads.py says what counts). The scanner is tested on planted examples
first, so a scan that finds nothing means something."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.unsafe_loads import scan_source, scan_tree

ROOT = Path(__file__).resolve().parents[2]

UNSAFE = {
    "pickle": "import pickle\npickle.loads(data)",
    "pickle aliased": "import pickle as p\np.load(open(path, 'rb'))",
    "from pickle": "from pickle import loads as l\nl(data)",
    "unpickler": "import pickle\npickle.Unpickler(f).load()",
    "pickle passed on": "import pickle\ndecode = pickle.loads",
    "star import": "from pickle import *",
    "cloudpickle": "import cloudpickle\ncloudpickle.loads(data)",
    "dill": "import dill\ndill.load(f)",
    "marshal": "import marshal\nmarshal.loads(data)",
    "shelve": "import shelve\nshelve.open(path)",
    "joblib": "import joblib\njoblib.load(path)",
    "pandas": "import pandas as pd\npd.read_pickle(path)",
    "torch.load bare": "import torch\ntorch.load(path)",
    "torch.load weights_only False": "import torch\ntorch.load(path, weights_only=False)",
    "torch.load weights_only variable": "import torch\ntorch.load(path, weights_only=flag)",
    "torch.load from import": "from torch import load\nload(path, map_location='cpu')",
    "torch.load in a function": "def f(p):\n    import torch\n    return torch.load(p)",
    "numpy.load bare": "import numpy as np\nnp.load(path)",
    "numpy.load allow_pickle True": "import numpy\nnumpy.load(path, allow_pickle=True)",
    "numpy.load kwargs": "import numpy as np\nnp.load(path, **options)",
    "read_array": "import numpy as np\nnp.lib.format.read_array(f)",
    "yaml.load bare": "import yaml\nyaml.load(text)",
    "yaml.load full": "import yaml\nyaml.load(text, Loader=yaml.FullLoader)",
    "yaml.load unsafe positional": "import yaml\nyaml.load(text, yaml.UnsafeLoader)",
    "yaml.unsafe_load": "import yaml\nyaml.unsafe_load(text)",
    "yaml.full_load": "from yaml import full_load\nfull_load(text)",
    "eval": "eval(request_body)",
    "exec": "exec(code)",
    "builtins.eval": "import builtins\nbuiltins.eval(s)",
}
SAFE = {
    "torch.load weights_only": "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
    "numpy.load allow_pickle False": "import numpy as np\nnp.load(p, allow_pickle=False)",
    "yaml.safe_load": "import yaml\nyaml.safe_load(text)",
    "yaml.load SafeLoader": "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "yaml.load CSafeLoader positional": "from yaml import CSafeLoader\nimport yaml\n"
                                        "yaml.load(text, CSafeLoader)",
    "model.eval": "model.eval()\nself.exec = 1",
    "a method named load": "store.load(path)\njson.loads(text)",
    "a mention": "# pickle.loads(data)\ntext = 'torch.load(p)'",
    "a local pickle name": "pickle = None\nloads = json.loads",
}


@pytest.mark.parametrize("source", UNSAFE.values(), ids=UNSAFE.keys())
def test_the_scanner_finds_a_planted_unsafe_load(source: str) -> None:
    assert scan_source(source), source


@pytest.mark.parametrize("source", SAFE.values(), ids=SAFE.keys())
def test_the_scanner_passes_safe_code(source: str) -> None:
    assert scan_source(source) == []


def test_the_scanner_finds_a_planted_file(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "resume.py").write_text("import torch\nstate = torch.load(p)\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "vendored.py").write_text("import pickle\npickle.loads(b'')\n")
    found = scan_tree(tmp_path)
    assert [(f.path, f.line, f.name) for f in found] == [("worker/resume.py", 2, "torch.load")]


def test_no_code_of_the_repository_deserializes_objects() -> None:
    found = scan_tree(ROOT)
    assert found == [], "\n".join(map(str, found))


def test_the_scan_covers_the_code_that_loads_files() -> None:
    """The safe loads the repository does make are seen (and passed), so the scan ran over them:
    checkpoints (torch.load) and uploads on the worker (numpy.load). The API's check of an
    upload (service/npz.py) reads the .npy headers and values itself and loads nothing."""
    assert "np.load" not in (ROOT / "service/npz.py").read_text()
    for relative in ("training/checkpoint.py", "training/data/upload.py"):
        source = (ROOT / relative).read_text()
        unsafe = source.replace("weights_only=True", "weights_only=False").replace(
            "allow_pickle=False", "allow_pickle=True")
        assert scan_source(source) == [] and scan_source(unsafe), relative

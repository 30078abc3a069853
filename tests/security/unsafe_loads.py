"""Find code that could deserialize attacker-controlled bytes into objects (OWASP API8/A08):
pickle and its relatives, torch.load without weights_only=True, numpy.load without
allow_pickle=False, yaml.load without a safe loader, eval and exec.

It reads the syntax tree, not the text: `np.load(path)` is found whatever numpy is imported as,
`model.eval()` is not eval, and a comment or a string that mentions pickle.loads is not code.
Every reference counts, not only calls: `f = pickle.loads` hands the loader on.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Loaders that unpickle (or run code) whatever their arguments.
ALWAYS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads",
    "_pickle.Unpickler", "cPickle.load", "cPickle.loads", "cloudpickle.load", "cloudpickle.loads",
    "dill.load", "dill.loads", "dill.Unpickler", "marshal.load", "marshal.loads", "shelve.open",
    "joblib.load", "pandas.read_pickle", "jsonpickle.decode", "yaml.unsafe_load",
    "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all", "builtins.eval",
    "builtins.exec", "eval", "exec",
}
# Loaders that are safe only with this keyword argument set to this constant.
REQUIRED_KEYWORD = {
    "torch.load": ("weights_only", True),
    "torch.serialization.load": ("weights_only", True),
    "numpy.load": ("allow_pickle", False),
    "numpy.lib.format.read_array": ("allow_pickle", False),
}
# yaml.load is safe only with one of these loaders (keyword Loader= or second argument).
YAML_LOADS = {"yaml.load", "yaml.load_all"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve"}
SKIPPED_FOLDERS = {".venv", "venv", "build", "node_modules", ".git", ".gradlab", "__pycache__",
                   ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    name: str  # the resolved dotted name: numpy.load
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name}: {self.why}"


def scan_source(source: str, path: str = "<snippet>") -> list[Finding]:
    tree = ast.parse(source, filename=path)
    return list(_Scanner(path, _aliases(tree)).findings(tree))


def scan_tree(root: Path) -> list[Finding]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIPPED_FOLDERS & set(relative.parts) or any(
                part.endswith(".egg-info") for part in relative.parts):
            continue
        found += scan_source(path.read_text(encoding="utf-8"), str(relative))
    return found


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted name, from every import in the file (whatever its scope)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


class _Scanner:
    def __init__(self, path: str, aliases: dict[str, str]) -> None:
        self.path = path
        self.aliases = aliases

    def findings(self, tree: ast.AST) -> Iterator[Finding]:
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in UNSAFE_MODULES and any(
                    alias.name == "*" for alias in node.names):
                yield Finding(self.path, node.lineno, f"{node.module}.*", "star import")
            elif isinstance(node, ast.Call):
                yield from self._call(node)
            elif isinstance(node, ast.Name | ast.Attribute) and id(node) not in called:
                yield from self._reference(node)

    def _call(self, node: ast.Call) -> Iterator[Finding]:
        name = self.resolve(node.func)
        if name is None:
            return
        if name in ALWAYS:
            yield self._finding(node, name, "deserializes or runs its input")
        elif name in REQUIRED_KEYWORD:
            keyword, value = REQUIRED_KEYWORD[name]
            if not _has_constant(node, keyword, value):
                yield self._finding(node, name, f"needs {keyword}={value}")
        elif name in YAML_LOADS and not self._safe_yaml_loader(node):
            yield self._finding(node, name, "needs Loader=yaml.SafeLoader (or yaml.safe_load)")

    def _reference(self, node: ast.Name | ast.Attribute) -> Iterator[Finding]:
        """A loader passed on without being called here: its arguments cannot be checked."""
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            return
        name = self.resolve(node)
        if name in ALWAYS or name in REQUIRED_KEYWORD or name in YAML_LOADS:
            yield self._finding(node, name, "referenced without a call that can be checked")

    def _safe_yaml_loader(self, node: ast.Call) -> bool:
        loader = next((kw.value for kw in node.keywords if kw.arg == "Loader"), None)
        if loader is None and len(node.args) > 1:
            loader = node.args[1]
        name = self.resolve(loader) if loader is not None else None
        return name is not None and name.rsplit(".", 1)[-1] in SAFE_YAML_LOADERS

    def resolve(self, node: ast.expr) -> str | None:
        """The dotted name an expression refers to, through imports; None when unknown."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            return node.id if hasattr(builtins, node.id) else None
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _finding(self, node: ast.AST, name: str, why: str) -> Finding:
        return Finding(self.path, getattr(node, "lineno", 0), name, why)


def _has_constant(node: ast.Call, keyword: str, value: bool) -> bool:
    for kw in node.keywords:
        if kw.arg == keyword:
            return isinstance(kw.value, ast.Constant) and kw.value.value is value
    return False

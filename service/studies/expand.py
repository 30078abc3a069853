"""Expand a study request into validated job specs, before anything is stored.

Each grid value is first checked alone on the base spec, so a refusal names the exact value
("grid.model.init.scheme[1]"); only then are the combinations built and checked (a value can be
valid alone and invalid beside another one).
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from gradlab_contract.models import RandomSearch, RangeSpace
from gradlab_contract.spec import JobSpec, describe_errors
from pydantic import ValidationError

from service.errors import InvalidSpec, LimitExceeded


@dataclass(frozen=True)
class Variant:
    values: dict[str, Any]  # dotted path -> value


@dataclass(frozen=True)
class Run:
    variant: int
    seed: int
    spec: JobSpec


@dataclass(frozen=True)
class Expansion:
    varied: list[str]
    variants: list[Variant]
    runs: list[Run]


def set_path(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `spec` with the dotted `path` set to `value` (missing sections are created)."""
    result = copy.deepcopy(spec)
    *parents, leaf = path.split(".")
    node = result
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = copy.deepcopy(value)
    return result


def validate(spec: dict[str, Any], where: str, varied: str | None = None) -> JobSpec:
    """The JobSpec, or InvalidSpec naming `where` (plus the spec field, unless it is `varied`)."""
    try:
        return JobSpec.model_validate(spec)
    except ValidationError as exc:
        error = describe_errors(exc)[0]
        inside = varied is not None and error.field.startswith(varied)
        field = where if inside else f"{where}.{error.field}".rstrip(".")
        raise InvalidSpec(error.message, field=field) from None


def expand(
    base: dict[str, Any], *, grid: dict[str, list[Any]] | None, search: RandomSearch | None,
    seeds: list[int] | None, max_jobs: int,
) -> Expansion:
    validate(base, "base")
    if grid is not None:
        variants = _grid(base, grid)
    elif search is not None:
        variants = _search(base, search)
    else:
        raise InvalidSpec("a study needs a `grid` or a `search`", field="grid")
    seeds = seeds or [JobSpec.model_validate(base).training.seed]
    total = len(variants) * len(seeds)
    if total > max_jobs:
        raise LimitExceeded(f"the study makes {total} jobs ({len(variants)} variants x "
                            f"{len(seeds)} seeds); the most is {max_jobs}", field="grid")
    runs = [_run(base, index, variant, seed)
            for index, variant in enumerate(variants) for seed in seeds]
    return Expansion(list(variants[0].values), variants, runs)


def _run(base: dict[str, Any], index: int, variant: Variant, seed: int) -> Run:
    spec = base
    for path, value in variant.values.items():
        spec = set_path(spec, path, value)
    spec = set_path(spec, "training.seed", seed)
    described = ", ".join(f"{path}={value!r}" for path, value in variant.values.items())
    return Run(index, seed, validate(spec, f"grid (variant {index}: {described})"))


def _grid(base: dict[str, Any], grid: dict[str, list[Any]]) -> list[Variant]:
    if not grid or any(not values for values in grid.values()):
        raise InvalidSpec("each grid path needs at least one value", field="grid")
    for path, values in grid.items():
        for index, value in enumerate(values):
            validate(set_path(base, path, value), f"grid.{path}[{index}]", varied=path)
    combos = itertools.product(*grid.values())
    return [Variant(dict(zip(grid, combo, strict=True))) for combo in combos]


def _search(base: dict[str, Any], search: RandomSearch) -> list[Variant]:
    for path, space in search.space.items():
        ends = [space.low, space.high] if isinstance(space, RangeSpace) else space
        if not isinstance(space, RangeSpace) and not space:
            raise InvalidSpec("needs at least one choice", field=f"search.space.{path}")
        if isinstance(space, RangeSpace) and not _valid_range(space):
            raise InvalidSpec("needs low <= high, and low > 0 with log",
                              field=f"search.space.{path}")
        for index, value in enumerate(ends):
            validate(set_path(base, path, value), f"search.space.{path}[{index}]", varied=path)
    rng = random.Random(search.seed)
    return [Variant({path: _sample(rng, space) for path, space in search.space.items()})
            for _ in range(search.n)]


def _valid_range(space: RangeSpace) -> bool:
    return space.low <= space.high and (not space.log or space.low > 0)


def _sample(rng: random.Random, space: list[Any] | RangeSpace) -> Any:
    if not isinstance(space, RangeSpace):
        return copy.deepcopy(rng.choice(space))
    if space.log:
        return math.exp(rng.uniform(math.log(space.low), math.log(space.high)))
    return rng.uniform(space.low, space.high)

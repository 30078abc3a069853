"""How well the diagnosis names what went wrong: the labelled scenarios of
tests/diagnosis/scenarios.py trained on the CPU, each diagnosed as the worker would at the end.

Prints, per scenario, the codes expected and the warnings/errors found; per code, how many of the
runs that should raise it did; the overall recall; and the false alarms on healthy controls (any
warning or error there). With --remedies, each pathological spec is run again with its findings'
remedies applied, and the problems found must be gone.

Targets: recall 100%, no false alarm. Run: .venv/bin/python bench/diagnosis_matrix.py
[--seeds 0,1,2] [--remedies]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the scenarios live under the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradlab_contract.spec import JobSpec

from diagnosis import CODES, Finding, apply_remedies, diagnose
from tests.diagnosis.harness import record_run
from tests.diagnosis.scenarios import SCENARIOS, Scenario


def alarms(found: list[Finding]) -> set[str]:
    return {finding.code for finding in found if finding.severity != "info"}


def seeded(scenario: Scenario, seed: int) -> dict[str, Any]:
    spec = copy.deepcopy(scenario.spec)
    spec["training"]["seed"] = seed
    return spec


Row = tuple[Scenario, int, set[str]]
Found = dict[tuple[str, int], list[Finding]]


def run_matrix(seeds: list[int]) -> tuple[list[Row], Found]:
    rows: list[Row] = []
    findings: Found = {}
    print(f"{'scenario':<26}{'seed':>4}  {'expected':<34} found (warnings and errors)")
    for seed in seeds:
        for scenario in SCENARIOS:
            found = diagnose(record_run(seeded(scenario, seed)))
            codes = alarms(found)
            rows.append((scenario, seed, codes))
            findings[(scenario.name, seed)] = found
            if scenario.healthy:
                verdict = "ok" if not codes else "FALSE ALARM"
            else:
                verdict = "ok" if scenario.expect <= codes else "MISSED"
            expected = ", ".join(sorted(scenario.expect)) or "(healthy)"
            print(f"{scenario.name:<26}{seed:>4}  {expected:<34} "
                  f"{', '.join(sorted(codes)) or '-'}  [{verdict}]")
    return rows, findings


def summarize(rows: list[Row]) -> None:
    expected, caught, extra = Counter[str](), Counter[str](), Counter[str]()
    for scenario, _, codes in rows:
        for code in scenario.expect:
            expected[code] += 1
            caught[code] += code in codes
        for code in codes - scenario.expect:
            extra[code] += not scenario.healthy
    print(f"\n{'code':<22}{'expected':>9}{'found':>7}{'recall':>8}  "
          "also raised in pathological runs")
    for code in CODES:
        share = f"{caught[code] / expected[code]:.0%}" if expected[code] else "-"
        print(f"{code:<22}{expected[code]:>9}{caught[code]:>7}{share:>8}  {extra[code] or ''}")
    total, hit = sum(expected.values()), sum(caught.values())
    healthy = [(s, codes) for s, _, codes in rows if s.healthy]
    false = sum(len(codes) for _, codes in healthy)
    noisy = sum(1 for _, codes in healthy if codes)
    print(f"\nrecall: {hit}/{total} = {hit / total:.0%} of expected findings raised")
    print(f"false alarms on healthy controls: {false} warnings/errors in {noisy} of "
          f"{len(healthy)} runs")


def check_remedies(findings: Found, seeds: list[int]) -> None:
    print(f"\n{'remedied scenario':<26}{'seed':>4}  {'remedy':<58} problems left")
    for seed in seeds:
        for scenario in (s for s in SCENARIOS if not s.healthy):
            found = findings[(scenario.name, seed)]
            codes = [f.code for f in found if f.remedy]
            fixed = JobSpec.model_validate(apply_remedies(seeded(scenario, seed), found, codes))
            left = alarms(diagnose(record_run(fixed))) & {f.code for f in found}
            merged = {k: v for f in found if f.remedy for k, v in f.remedy.items()}
            changes = ", ".join(f"{k}={v}" for k, v in merged.items())
            print(f"{scenario.name:<26}{seed:>4}  {changes[:58]:<58} "
                  f"{', '.join(sorted(left)) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--remedies", action="store_true", help="re-run with the remedies")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    started = time.perf_counter()
    rows, findings = run_matrix(seeds)
    summarize(rows)
    if args.remedies:
        check_remedies(findings, seeds)
    print(f"\n{len(rows)} runs in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

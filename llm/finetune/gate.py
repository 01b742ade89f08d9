"""The evaluation gate: does a tuned candidate deserve to replace the base model?

A candidate passes when it is better than the base on the dataset's validation
split (questions about documents it was not trained on) and no worse than the
base, beyond ``tolerance``, on any quality metric of any gold set. Latency is
reported beside the verdict but does not gate it: the same weights served on
another machine answer at another speed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Quality metrics, each a share from 0 to 1 where higher is better.
QUALITY = ("answer_recall", "citation_precision", "citation_format", "abstention_accuracy")


def validation_score(metrics: Mapping[str, float]) -> float:
    """One number for the validation split: the mean of its quality metrics."""
    return sum(float(metrics.get(k, 0.0)) for k in QUALITY) / len(QUALITY)


@dataclass(frozen=True)
class GateReport:
    passed: bool
    #: Every reason, passing ones included, one line each.
    reasons: tuple[str, ...]
    tolerance: float
    #: Metrics by evaluation set (``validation`` and each gold set's name), base and candidate.
    base: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    candidate: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: The reasons that failed the gate (empty when it passed).
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "failures": list(self.failures),
            "tolerance": self.tolerance,
            "base": {k: dict(v) for k, v in self.base.items()},
            "candidate": {k: dict(v) for k, v in self.candidate.items()},
        }


def decide(
    base: Mapping[str, Mapping[str, float]],
    candidate: Mapping[str, Mapping[str, float]],
    *,
    tolerance: float,
    validation: str = "validation",
) -> GateReport:
    """The verdict and every reason for it, one line a reason, passing ones included."""
    reasons: list[str] = []
    failures: list[str] = []
    passed = True
    if validation in base and validation in candidate:
        b, c = validation_score(base[validation]), validation_score(candidate[validation])
        if c > b:
            reasons.append(f"validation: better than the base ({c:.3f} > {b:.3f})")
        else:
            passed = False
            failures.append(f"validation: not better than the base ({c:.3f} <= {b:.3f})")
            reasons.append(failures[-1])
    else:
        passed = False
        failures.append("validation: the dataset has no validation split to compare on")
        reasons.append(failures[-1])
    for name in sorted(set(base) & set(candidate) - {validation}):
        fell = False
        for metric in QUALITY:
            if metric not in base[name] or metric not in candidate[name]:
                continue
            b, c = float(base[name][metric]), float(candidate[name][metric])
            if c < b - tolerance:
                fell = True
                failures.append(
                    f"{name}: {metric} fell from {b:.3f} to {c:.3f}, more than the "
                    f"tolerance {tolerance:.3f}"
                )
                reasons.append(failures[-1])
        if fell:
            passed = False
        else:
            reasons.append(f"{name}: no quality metric fell more than {tolerance:.3f}")
    return GateReport(passed, tuple(reasons), tolerance, base, candidate, tuple(failures))

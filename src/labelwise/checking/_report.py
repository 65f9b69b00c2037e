"""`Finding` and `CheckReport`: what `check` hands back."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from labelwise.errors import TrainingError

__all__ = ["CheckReport", "Finding", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem: what was found, why it is wrong and how to fix it, one sentence each.

    Args:
        rule: the rule's name, one of `labelwise.checking.RULES`.
        severity: ``"error"`` (training breaks or learns the wrong thing) or ``"warning"`` (legal, likely unmeant).
        found: what was seen on the batch.
        why: why it is wrong.
        fix: the exact change, code in backticks.

    Example:
        >>> print(Finding("bce_long_targets", "error", "Long targets.", "BCE needs floats.", "`targets.float()`."))
        error [bce_long_targets]: Long targets. BCE needs floats. Fix: `targets.float()`.
    """

    rule: str
    severity: Severity
    found: str
    why: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity} [{self.rule}]: {self.found} {self.why} Fix: {self.fix}"


@dataclass(frozen=True)
class CheckReport:
    """What `check` found, and on what (``checked``); ``notes`` say what it could not check.

    Example:
        >>> report = CheckReport((), checked="nn.CrossEntropyLoss on outputs (8, 3) float32")
        >>> report.ok, str(report)
        (True, 'no problems found: nn.CrossEntropyLoss on outputs (8, 3) float32.')
    """

    findings: tuple[Finding, ...]
    checked: str
    notes: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Findings that break training or make it learn the wrong thing."""
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Findings that are legal but probably not what was meant."""
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not self.errors

    def __str__(self) -> str:
        lines = [str(f) for f in (*self.errors, *self.warnings)] or [f"no problems found: {self.checked}."]
        return "\n".join([*lines, *(f"note: {note}" for note in self.notes)])

    def raise_for_errors(self) -> None:
        """Raise `TrainingError` listing every error finding, one per line; do nothing when there is none."""
        if self.errors:
            listed = "\n".join(f"  {finding}" for finding in self.errors)
            raise TrainingError(f"check found {len(self.errors)} error(s) in {self.checked}:\n{listed}")

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description: ``ok``, ``checked``, ``notes`` and ``findings`` (dicts of Finding's fields)."""
        findings = [asdict(f) for f in self.findings]
        return {"ok": self.ok, "checked": self.checked, "notes": list(self.notes), "findings": findings}

"""A grounded answer: lines of text whose every number is followed by a [n] marker pointing at a reference
(API call + UI link), plus the machine-readable facts (which field of which reference holds the value)."""

from __future__ import annotations

from dataclasses import dataclass, field

from serving.schemas import Reference


@dataclass(frozen=True)
class Fact:
    ref: int  # 1-based index into GroundedAnswer.references
    field: str  # dotted path into that endpoint's JSON response, e.g. "totals.savings" or "items.0.title"
    value: float | str


@dataclass
class GroundedAnswer:
    intent: str
    lines: list[str] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    refused: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def cite(self, ref: Reference) -> int:
        for i, existing in enumerate(self.references, 1):
            if existing == ref:
                return i
        self.references.append(ref)
        return len(self.references)

    def money(self, value: float, ref: int, field_path: str) -> str:
        self.facts.append(Fact(ref, field_path, round(value, 2)))
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value):,.2f} [{ref}]"

    def pct(self, value: float, ref: int, field_path: str) -> str:
        self.facts.append(Fact(ref, field_path, round(value, 1)))
        return f"{value:.1f}% [{ref}]"

    def change_pct(self, now: float, before: float, ref_now: int, ref_before: int, field_path: str) -> str:
        """A derived figure: the change between two referenced values (field `change_pct:<path>` names both)."""
        value = 100.0 * (now - before) / before
        self.facts.append(Fact(ref_now, f"change_pct:{ref_before}:{field_path}", round(abs(value), 1)))
        return f"{'up' if value >= 0 else 'down'} {abs(value):.1f}% [{ref_now}][{ref_before}]"

    def say(self, line: str) -> None:
        self.lines.append(line)

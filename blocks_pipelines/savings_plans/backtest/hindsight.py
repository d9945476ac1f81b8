"""Value of a set of Savings Plan purchases on a known usage path, and the hindsight-best set.

Value = what the purchases save versus leaving the same hours to on-demand (plans held before the backtest are
applied first, so they are the same for every policy and cancel out): for each hour of the evaluation window
    min((u - legacy)^+, K) - r K,   K = cover of the purchased plans active in that hour (on-demand $/h).
The window is the decision period (first decision to one month after the last). A plan bought late is judged on
its hours inside the window only: a real ladder keeps going, so charging its whole tail while forbidding the
purchases that would follow would score the end of the backtest, not the policy.

Hindsight optimum: choose cover x_j >= 0 for each decision j (a plan active for `term` hours from its start) to
maximize the total value. Between consecutive start/end/legacy-expiry cut points the set of active plans is
constant, so the objective is a sum of concave piecewise-linear functions of partial sums of x: a concave
program. We solve it by coordinate ascent with exact line searches along single plans until they stop moving,
then along pairs of plans too (move cover from one to another, or both together) for the kinks where single
coordinates stall; on the backtest scenarios the pair moves change the value by ~1e-5 relative.
Each line search finds where the directional slope (an exact count of hours above the cover) changes sign.
The result is a feasible purchase set, so its value is a lower bound of the true optimum; the relaxation in
which cover may change freely between segments gives an upper bound (`free_cover_bound`), and the test suite
checks the optimizer against brute force on small cases.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class _Segment:
    hours: int
    ys: list[float]  # sorted (u - legacy)^+ over the segment's hours
    plans: tuple[int, ...]  # indices of the purchases active throughout
    cover: float = 0.0

    def slope(self, cover: float, ratio: float) -> float:
        """Right derivative of the segment's value at this cover."""
        return (len(self.ys) - bisect_right(self.ys, cover)) - ratio * self.hours

    def value(self, cover: float, ratio: float) -> float:
        return sum(min(y, cover) for y in self.ys) - ratio * cover * self.hours


def segments(
    usage: Sequence[float],
    legacy: Sequence[tuple[float, int]],
    starts: Sequence[int],
    term: int,
    end: int,
) -> list[_Segment]:
    """legacy: (on-demand cover $/h, end index). The horizon runs from the first start to `end`."""
    begin = starts[0]
    cuts = {begin, end} | set(starts) | {s + term for s in starts} | {e for _, e in legacy if begin < e < end}
    cuts = sorted(c for c in cuts if begin <= c <= end)
    out = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        base = sum(c for c, e in legacy if e > a)
        plans = tuple(j for j, s in enumerate(starts) if s <= a < s + term)
        ys = sorted(max(0.0, u - base) for u in usage[a:b])
        out.append(_Segment(b - a, ys, plans))
    return out


def portfolio_value(
    usage: Sequence[float],
    legacy: Sequence[tuple[float, int]],
    starts: Sequence[int],
    covers: Sequence[float],
    term: int,
    end: int,
    ratio: float,
) -> float:
    total = 0.0
    for seg in segments(usage, legacy, starts, term, end):
        total += seg.value(sum(covers[j] for j in seg.plans), ratio)
    return total


def free_cover_bound(
    usage: Sequence[float],
    legacy: Sequence[tuple[float, int]],
    starts: Sequence[int],
    term: int,
    end: int,
    ratio: float,
) -> float:
    """Upper bound: each segment gets its own best cover (its (1 - r)-quantile) where some plan could be active."""
    total = 0.0
    for seg in segments(usage, legacy, starts, term, end):
        if seg.plans:
            k = seg.ys[min(len(seg.ys) - 1, int((1.0 - ratio) * len(seg.ys)))]
            total += max(0.0, seg.value(k, ratio))
    return total


def best_purchases(
    usage: Sequence[float],
    legacy: Sequence[tuple[float, int]],
    starts: Sequence[int],
    term: int,
    end: int,
    ratio: float,
    *,
    max_single_sweeps: int = 1000,
    max_pair_sweeps: int = 5,
) -> list[float]:
    """Hindsight-best on-demand cover to buy at each start (see module doc)."""
    segs = segments(usage, legacy, starts, term, end)
    n = len(starts)
    member: list[list[int]] = [[] for _ in range(n)]
    for i, seg in enumerate(segs):
        for j in seg.plans:
            member[j].append(i)
    x = [0.0] * n
    scale = max((s.ys[-1] for s in segs if s.ys), default=0.0)
    if scale <= 0.0:
        return x
    tol = 1e-7 * scale
    singles: list[dict[int, int]] = [{j: 1} for j in range(n)]
    pairs: list[dict[int, int]] = [{j: 1, k: -1} for j in range(n) for k in range(n) if k != j and abs(k - j) <= 12]
    pairs += [{j: 1, k: 1} for j in range(n) for k in range(j + 1, min(n, j + 13))]
    # single plans do almost all the work; pair moves then polish the few kinks where singles stall
    for directions, sweeps in ((singles, max_single_sweeps), (singles + pairs, max_pair_sweeps)):
        for _ in range(sweeps):
            moved = 0.0
            for d in directions:
                step = _line_search(segs, member, x, d, ratio, scale, tol)
                if step != 0.0:
                    for j, sign in d.items():
                        x[j] = max(0.0, x[j] + sign * step)
                    for i in {i for j in d for i in member[j]}:
                        segs[i].cover = sum(x[j] for j in segs[i].plans)
                    moved = max(moved, abs(step))
            if moved <= 10 * tol:
                break
    return x


def _line_search(segs, member, x, direction: dict[int, int], ratio: float, scale: float, tol: float) -> float:
    coef: dict[int, int] = {}
    for j, sign in direction.items():
        for i in member[j]:
            coef[i] = coef.get(i, 0) + sign
    touched = [(segs[i], c) for i, c in coef.items() if c]
    if not touched:
        return 0.0

    def slope(t: float) -> float:
        return sum(c * seg.slope(seg.cover + c * t, ratio) for seg, c in touched)

    lo = -min(x[j] for j, s in direction.items() if s > 0)
    hi = min((x[j] for j, s in direction.items() if s < 0), default=scale)
    if slope(0.0) > 0.0:
        lo = 0.0
    elif slope(-tol) <= 0.0 and lo < 0.0:
        hi = 0.0
    else:
        return 0.0
    if slope(hi) > 0.0:
        return hi
    if slope(lo) <= 0.0:
        return lo
    while hi - lo > tol:
        mid = (lo + hi) / 2.0
        if slope(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return lo

"""Hyperparameter search that widens its grid until the choice is interior: the one search
every tuning in the project runs (scikit-surprise competitors, the MovieLens preset's penalties).

A value chosen on the edge of the grid it was chosen from says only that the
optimum lies at or beyond that edge, so a comparison against it can flatter
whoever tuned the grid. :func:`widening_search` therefore keeps searching
past an edge, in the grid's own spacing, until every chosen value has a worse
value tried on each side of it (with every other parameter at its chosen
value) or sits at a natural limit that the caller states (one cluster, zero
penalty). What it scores is the caller's: a cross-validated RMSE, a hold-out
RMSE, any number to minimise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import NamedTuple

__all__ = ["SearchResult", "point_key", "step_beyond", "widening_search"]


class SearchResult(NamedTuple):
    """What :func:`widening_search` returns.

    Attributes:
      best: the chosen point, ``{parameter: value}`` (every parameter of the grid).
      score: its score (the lowest seen).
      trials: every point scored, as ``(point, score)``, in the order scored.
      settled: per searched parameter (one with more than one value), why its
        value is final: ``"interior"`` (a worse value was tried on each side,
        the other parameters at their chosen values), ``"limit"`` (at a natural
        limit) or ``"rounds"`` (still on an edge when the rounds ran out: the
        choice is then a bound, not an optimum).
    """

    best: dict
    score: float
    trials: tuple
    settled: dict

    @property
    def interior(self) -> bool:
        """Whether every searched parameter settled inside its grid or at a limit."""
        return all(v != "rounds" for v in self.settled.values())


def step_beyond(values: Sequence[float], upward: bool, limits: tuple[float, float],
                integer: bool) -> float:
    """The next value past one end of a sorted grid, in the grid's own spacing.

    Geometric when the end's two values are positive and at least 1.5 apart in
    ratio (or the parameter is real-valued and positive), arithmetic otherwise;
    clipped to ``limits``; rounded when ``integer``.

    Example:
      >>> step_beyond([0.01, 0.1], upward=True, limits=(0.0, 50.0), integer=False)
      1.0
      >>> step_beyond([5, 10], upward=False, limits=(1, 100), integer=True)
      2
    """
    lo, hi = limits
    a, b = (values[-2], values[-1]) if upward else (values[1], values[0])
    if a > 0 and b > 0 and (max(a, b) / min(a, b) >= 1.5 or not integer):
        nxt = b * (b / a)
    else:
        nxt = b + (b - a)
    nxt = min(hi, max(lo, nxt))
    return int(round(nxt)) if integer else float(nxt)


def point_key(point: Mapping) -> str:
    """The text that names a search point in a ``memo`` of :func:`widening_search`: its
    items sorted by name, values by ``repr`` (exact for floats, so no two points share one).

    Example:
      >>> point_key({"reg": 0.1, "k": 5})
      "[('k', 5), ('reg', 0.1)]"
    """
    return repr(sorted(point.items()))


def widening_search(
    score: Callable[[dict], float],
    grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]],
    *,
    limits: Mapping[str, tuple[float, float]],
    integer: frozenset[str] | set[str] = frozenset(),
    max_rounds: int = 6,
    memo: MutableMapping[str, float] | None = None,
) -> SearchResult:
    """The point of lowest ``score``, the grid widened until every choice is interior.

    The full product of ``grid`` is scored first (or, for a list of grids, each
    stage's product in turn with the earlier stages' parameters at their best,
    which keeps four-parameter searches affordable). Then, for as many as
    ``max_rounds`` coordinate rounds, each searched parameter walks down and up
    its list from the best point while the score improves; a best value on an
    edge of its list (and not at its limit) gets one more value beyond that
    edge (:func:`step_beyond`). A round that moves nothing has checked both
    neighbours of every chosen value with the others at theirs. Each point is
    scored once.

    Args:
      score: ``point -> number to minimise``; ``point`` holds every parameter.
      grid: ``{parameter: [values]}`` or a list of such stages. A parameter with
        one value is held fixed.
      limits: ``{parameter: (low, high)}``, the natural limits of every searched
        parameter; a choice at a limit counts as settled.
      integer: the parameters whose values are integers.
      max_rounds: widening rounds at most.
      memo: scores already known, ``{point_key(point): score}``, read before a
        point is scored and written as soon as it is. The search is a
        deterministic function of its scores, so a search that was interrupted
        and is run again with the memo it filled walks the same path, scores
        only the points it had not reached, and returns what an uninterrupted
        search returns (trials included). Give one that outlives the process
        (a file-backed mapping) to make a long search resumable.

    Returns:
      A :class:`SearchResult`.

    Raises:
      ValueError: a searched parameter without limits, or an empty grid.
      TypeError: ``memo`` is not a mutable mapping.

    Example:
      >>> res = widening_search(lambda p: (p["x"] - 7) ** 2, {"x": [1, 2, 3]},
      ...                       limits={"x": (0, 100)}, integer={"x"})
      >>> res.best, res.settled
      ({'x': 7}, {'x': 'interior'})
    """
    if memo is not None and not isinstance(memo, MutableMapping):
        raise TypeError(f"memo: a mutable mapping {{point_key(point): score}} or None, "
                        f"not {type(memo).__name__}")
    stages = [dict(grid)] if isinstance(grid, Mapping) else [dict(g) for g in grid]
    if not stages or any(not s or any(len(v) == 0 for v in s.values()) for s in stages):
        raise ValueError(f"grid={grid!r}: every stage needs at least one parameter with values")
    values = {k: sorted(v) for stage in stages for k, v in stage.items()}
    searched = [n for n in values if len(values[n]) > 1]
    missing = [n for n in searched if n not in limits]
    if missing:
        raise ValueError(f"grid: {missing} can be searched only with natural limits; "
                         f"limits has {sorted(limits)}")
    scores: dict[tuple, float] = {}
    trials = []

    def at(point: dict) -> float:
        key = tuple(sorted(point.items()))
        if key not in scores:
            name = point_key(point)
            known = None if memo is None else memo.get(name)
            if known is None:
                known = float(score(dict(point)))
                if memo is not None:
                    memo[name] = known
            scores[key] = float(known)
            trials.append((dict(point), scores[key]))
        return scores[key]

    def best_point() -> dict:
        return dict(min(scores.items(), key=lambda kv: kv[1])[0])

    # Until a stage has chosen them, parameters sit at the middle of their lists.
    best = {n: v[len(v) // 2] for n, v in values.items()}
    for stage in stages:
        names = list(stage)
        for combo in itertools.product(*(values[n] for n in names)):
            at({**best, **dict(zip(names, combo))})
        best = best_point()

    for _ in range(max_rounds):
        moved = False
        for name in searched:
            for step in (-1, 1):
                while True:
                    best = best_point()
                    vals = values[name]
                    i = vals.index(best[name])
                    if not 0 <= i + step < len(vals):
                        if best[name] in limits[name]:
                            break
                        nxt = step_beyond(vals, step > 0, limits[name], name in integer)
                        if nxt in vals:
                            break
                        values[name] = vals = sorted([*vals, nxt])
                        i = vals.index(best[name])
                    neighbour = {**best, name: vals[i + step]}
                    if tuple(sorted(neighbour.items())) in scores or at(neighbour) >= at(best):
                        break
                    moved = True
        if not moved:
            break
    best = best_point()
    settled = {}
    for name in searched:
        tried = sorted({p[name] for p, _ in trials
                        if all(p[o] == best[o] for o in searched if o != name)})
        v = best[name]
        if v in limits[name]:
            settled[name] = "limit"
        elif tried[0] < v < tried[-1]:
            settled[name] = "interior"
        else:
            settled[name] = "rounds"
    return SearchResult(best, scores[tuple(sorted(best.items()))], tuple(trials), settled)

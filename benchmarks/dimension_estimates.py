"""Intrinsic-dimension estimates for SPEC §6's covariates and for sets of known dimension.

Prints two markdown tables and saves them to ``benchmarks/out/dimension_estimates.md``:

1. SPEC §6 covariates (``x_1..x_d`` iid U[0,1], ``x_l = x_{l-d}``, ``D = 50``) at
   ``d = 20, 30, 40`` (the true dimension is ``d``) from 1,500 and 100,000 points;
2. the known sets of ``tests/test_theory_dimension.py`` (20,000 points each).

With ``--figure`` it also draws box counts against ε for the Sierpinski
triangle into ``docs/figures/box_counts_sierpinski.png``.

Usage::

    python benchmarks/dimension_estimates.py [--figure] [--quick]

Every sample is drawn from a fixed seed, so the numbers are reproducible.
``--quick`` skips the 100,000-point rows.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from theory import (
    DimensionEstimate,
    UnresolvedDimensionWarning,
    box_counting_dimension,
    mle_dimension,
    twonn_dimension,
)
from theory.known_sets import (
    CANTOR_DIMENSION,
    SIERPINSKI_DIMENSION,
    cantor_set,
    embedded_cube,
    finite_set,
    sierpinski_triangle,
    spec_covariates,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "dimension_estimates.md"
FIGURE = ROOT / "docs" / "figures" / "box_counts_sierpinski.png"
# Nearest-neighbour estimators query this many points (neighbours among all n).
QUERIES = 2_000


def estimators(n: int) -> dict[str, Callable[[np.ndarray], DimensionEstimate]]:
    queries = None if n <= QUERIES else QUERIES
    return {
        "box q=0": lambda x: box_counting_dimension(x, order=0, warn=False),
        "box q=2": lambda x: box_counting_dimension(x, order=2, warn=False),
        "TwoNN": lambda x: twonn_dimension(x, n_queries=queries, seed=0),
        "MLE k=10..20": lambda x: mle_dimension(x, n_queries=queries, seed=0),
    }


def cell(run: Callable[[np.ndarray], DimensionEstimate], points: np.ndarray) -> str:
    try:
        estimate = run(points)
    except ValueError as error:  # e.g. TwoNN on a sample whose every point is repeated
        return f"refused: {str(error).split(';')[0]}"
    text = f"{estimate.dimension:.2f} ± {estimate.stderr:.2f}"
    return text if estimate.resolved else f"({text}) unresolved"


def table(rows: list[tuple[str, float, np.ndarray]]) -> str:
    names = list(estimators(1))
    lines = [
        "| sample | n | true | " + " | ".join(names) + " | seconds |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    print("\n".join(lines), flush=True)
    for label, truth, points in rows:
        start = time.perf_counter()
        cells = [cell(run, points) for run in estimators(points.shape[0]).values()]
        seconds = time.perf_counter() - start
        lines.append(
            f"| {label} | {points.shape[0]:,} | {truth:.3f} | " + " | ".join(cells)
            + f" | {seconds:.1f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


KNOWN_SAMPLES: dict[str, tuple[Callable[[int], np.ndarray], float]] = {
    "segment in R^10": (lambda seed: embedded_cube(20_000, 1, 10, seed=seed), 1.0),
    "square in R^10": (lambda seed: embedded_cube(20_000, 2, 10, seed=seed), 2.0),
    "3-cube in R^10": (lambda seed: embedded_cube(20_000, 3, 10, seed=seed), 3.0),
    "square in R^50": (lambda seed: embedded_cube(20_000, 2, 50, seed=seed), 2.0),
    "Cantor set": (lambda seed: cantor_set(20_000, seed=seed), CANTOR_DIMENSION),
    "Sierpinski triangle": (lambda seed: sierpinski_triangle(20_000, seed=seed),
                            SIERPINSKI_DIMENSION),
    "25 points in R^5": (lambda seed: finite_set(20_000, 25, 5, seed=seed), 0.0),
}


def spread(seeds: range) -> str:
    """Range of box-counting estimates over seeds, per set and option."""
    options = {
        "q=0": {"order": 0},
        "q=0, all octaves": {"order": 0, "max_octaves": None},
        "q=2": {"order": 2},
        "q=2, all octaves": {"order": 2, "max_octaves": None},
    }
    lines = [
        f"| sample (20,000 points, seeds {seeds.start}..{seeds.stop - 1}) | true | "
        + " | ".join(options) + " |",
        "|---|---|" + "---|" * len(options),
    ]
    print("\n".join(lines), flush=True)
    for label, (sample, truth) in KNOWN_SAMPLES.items():
        cells = []
        for kwargs in options.values():
            values = [box_counting_dimension(sample(seed), warn=False, **kwargs).dimension
                      for seed in seeds]
            cells.append(f"{min(values):.2f} to {max(values):.2f}")
        lines.append(f"| {label} | {truth:.3f} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def figure(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sierpinski_triangle(20_000, seed=0)
    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=100)
    for order, colour in ((0, "tab:blue"), (2, "tab:orange")):
        est = box_counting_dimension(points, order=order)
        finite = np.isfinite(est.curve_counts)
        label = "$N_0(\\varepsilon)$ occupied boxes" if order == 0 else (
            "$N_2(\\varepsilon)$ collision count")
        ax.loglog(est.curve_scales[finite], est.curve_counts[finite], "o", ms=3, color=colour,
                  alpha=0.45, label=label)
        ax.loglog(est.scales, est.counts, "o", ms=5, color=colour)
        fit = est.counts[-1] * (est.scales / est.scales[-1]) ** -est.dimension
        ax.loglog(est.scales, fit, "-", color=colour,
                  label=f"fit q={order}: slope {est.dimension:.3f}")
    ax.axhline(20_000, color="grey", lw=0.8, ls=":")
    ax.text(0.12, 23_000, "n = 20,000 points", color="grey", fontsize=8)
    ax.set_xlabel("box side $\\varepsilon$ (sup-norm)")
    ax.set_ylabel("count")
    ax.set_title(f"Sierpinski triangle, true dimension {SIERPINSKI_DIMENSION:.3f}; "
                 "filled: fitted scales", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figure", action="store_true", help="also draw the box-count figure")
    parser.add_argument("--quick", action="store_true", help="skip the 100,000-point rows")
    parser.add_argument("--spread", action="store_true",
                        help="also range box-counting estimates over seeds 0..7")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UnresolvedDimensionWarning)

    sizes = (1_500,) if args.quick else (1_500, 100_000)
    spec_rows = [(f"SPEC §6, d={d}", float(d), spec_covariates(n, d, seed=0))
                 for d in (20, 30, 40) for n in sizes]
    print("## SPEC §6 covariates (D = 50)\n")
    spec = table(spec_rows)

    known_rows = [(label, truth, sample(0)) for label, (sample, truth) in KNOWN_SAMPLES.items()]
    print("\n## Sets of known dimension (seed 0)\n")
    text = ("## SPEC §6 covariates (D = 50)\n\n" + spec
            + "\n\n## Sets of known dimension (seed 0)\n\n" + table(known_rows) + "\n")
    if args.spread:
        print("\n## Box counting over seeds\n")
        text += "\n## Box counting over seeds\n\n" + spread(range(8)) + "\n"

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"\nwrote {OUT.relative_to(ROOT)}")
    if args.figure:
        figure(FIGURE)


if __name__ == "__main__":
    main()

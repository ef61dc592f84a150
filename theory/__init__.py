"""Checks of the two-tower convergence theory (SPEC §3 to §5).

* :mod:`theory.measures`: network size ``U(f)``, ``D(f)``, ``Z(f)``.
* :mod:`theory.dimension`, :mod:`theory.neighbour_dimension`: intrinsic
  (Minkowski) dimension of a covariate sample; :mod:`theory.known_sets` holds
  samples of sets with known dimension.
* :mod:`theory.bounds`: Theorems 1 and 2 (exponent, rate, prescribed towers).
* :mod:`theory.perturbation`, :mod:`theory.entropy`: Lemmas 2 and 3.
* :mod:`theory.rates`: fitting a measured rate, comparing it with Theorem 2
  (one-sided) and ordering two rates by their intervals.

See ``docs/theory.md`` for each function's link to the paper.
"""

from theory.bounds import (
    Theorem2Architecture,
    theorem1_error,
    theorem1_scale,
    theorem1_width,
    theorem2_architecture,
    theorem2_depth,
    theorem2_exponent,
    theorem2_max_penalty,
    theorem2_probability,
    theorem2_rate,
    theorem2_scale,
    theorem2_width,
)
from theory.dimension import (
    BoxCounts,
    DimensionEstimate,
    UnresolvedDimensionWarning,
    box_counting_dimension,
    box_counts,
)
from theory.entropy import TowerClass, bracketing_entropy_bound, lemma1_widths
from theory.measures import (
    Layer,
    NetworkSize,
    PerTower,
    depth,
    effective_params,
    network_size,
    param_scale,
    tower_layers,
)
from theory.neighbour_dimension import mle_dimension, twonn_dimension
from theory.perturbation import (
    PerturbationBound,
    activation_lipschitz,
    activation_sup,
    lemma2_constant,
    perturbation_bound,
)
from theory.rates import Ordering, RateFit, fit_rate, rate_consistent, rate_ordering

__all__ = [
    "BoxCounts",
    "DimensionEstimate",
    "Layer",
    "NetworkSize",
    "Ordering",
    "PerTower",
    "PerturbationBound",
    "RateFit",
    "Theorem2Architecture",
    "TowerClass",
    "UnresolvedDimensionWarning",
    "activation_lipschitz",
    "activation_sup",
    "box_counting_dimension",
    "box_counts",
    "bracketing_entropy_bound",
    "depth",
    "effective_params",
    "fit_rate",
    "lemma1_widths",
    "lemma2_constant",
    "mle_dimension",
    "network_size",
    "param_scale",
    "perturbation_bound",
    "rate_consistent",
    "rate_ordering",
    "theorem1_error",
    "theorem1_scale",
    "theorem1_width",
    "theorem2_architecture",
    "theorem2_depth",
    "theorem2_exponent",
    "theorem2_max_penalty",
    "theorem2_probability",
    "theorem2_rate",
    "theorem2_scale",
    "theorem2_width",
    "tower_layers",
    "twonn_dimension",
]

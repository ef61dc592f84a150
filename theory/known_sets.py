"""Point samples of sets whose Minkowski dimension is known, for checking estimators.

Each function draws ``n`` points with an explicit ``seed`` (an int or a
``numpy.random.Generator``) and returns a float64 array ``[n, D]``.

* :func:`embedded_cube`: uniform on ``[0,1]^k`` mapped into ``R^D`` by a random
  rotation (dimension ``k``);
* :func:`cantor_set`: the middle-thirds Cantor set from its iterated function
  system ``x ↦ x/3``, ``x ↦ x/3 + 2/3`` (dimension ``log 2 / log 3``);
* :func:`sierpinski_triangle`: from ``x ↦ (x + v_j)/2`` for the three corners
  ``v_j`` (dimension ``log 3 / log 2``);
* :func:`finite_set`: draws from a fixed finite set of atoms (dimension 0);
* :func:`spec_covariates`: SPEC §6's synthetic covariates (dimension ``d``).
"""

from __future__ import annotations

import math

import numpy as np

from ttm_jax.data.synthetic import sample_intrinsic_covariates

__all__ = [
    "CANTOR_DIMENSION",
    "SIERPINSKI_DIMENSION",
    "cantor_set",
    "embedded_cube",
    "finite_set",
    "sierpinski_triangle",
    "spec_covariates",
]

#: ``log 2 / log 3``, the Minkowski dimension of the middle-thirds Cantor set.
CANTOR_DIMENSION = math.log(2.0) / math.log(3.0)
#: ``log 3 / log 2``, the Minkowski dimension of the Sierpinski triangle.
SIERPINSKI_DIMENSION = math.log(3.0) / math.log(2.0)

# Enough IFS generations to reach float64 resolution (3^-34 < 2^-52 < 2^-53).
_CANTOR_DIGITS = 34
_SIERPINSKI_DIGITS = 53


def embedded_cube(n: int, dim: int, ambient: int, *, seed: int | np.random.Generator) -> np.ndarray:
    """Uniform points on ``[0,1]^dim`` rotated into ``R^ambient`` by a random orthogonal map.

    Args:
      n: number of points.
      dim: ``k``, the cube's dimension (1: a segment, 2: a square, …).
      ambient: ``D ≥ k``.
      seed: int or Generator for the points and the rotation.

    Returns:
      ``[n, ambient]``.

    Example::

      >>> embedded_cube(5, 2, 10, seed=0).shape
      (5, 10)
    """
    _check_count("n", n)
    _check_count("dim", dim)
    if ambient < dim:
        raise ValueError(f"ambient={ambient} must be >= dim={dim}")
    rng = np.random.default_rng(seed)
    # QR of a Gaussian matrix, with R's signs fixed, is a Haar-random orthogonal matrix.
    q, r = np.linalg.qr(rng.standard_normal((ambient, ambient)))
    q = q * np.sign(np.diag(r))
    return rng.uniform(size=(n, dim)) @ q[:, :dim].T


def cantor_set(n: int, *, seed: int | np.random.Generator) -> np.ndarray:
    """Points of the middle-thirds Cantor set ``Σ_j 2 b_j 3^{-j}``, ``b_j ∈ {0, 1}``.

    Args:
      n: number of points (each a random address in the IFS).
      seed: int or Generator.

    Returns:
      ``[n, 1]`` in ``[0, 1]``.

    Example::

      >>> float(cantor_set(3, seed=0).max()) <= 1.0
      True
    """
    _check_count("n", n)
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 2, size=(n, _CANTOR_DIGITS))
    weights = 2.0 * 3.0 ** -np.arange(1, _CANTOR_DIGITS + 1)
    return (digits @ weights)[:, None]


def sierpinski_triangle(n: int, *, seed: int | np.random.Generator) -> np.ndarray:
    """Points of the Sierpinski triangle ``Σ_j v_{c_j} 2^{-j}`` over random corner sequences.

    Args:
      n: number of points.
      seed: int or Generator.

    Returns:
      ``[n, 2]`` inside the triangle with corners ``(0,0), (1,0), (1/2, √3/2)``.

    Example::

      >>> sierpinski_triangle(4, seed=0).shape
      (4, 2)
    """
    _check_count("n", n)
    rng = np.random.default_rng(seed)
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3.0) / 2.0]])
    choice = rng.integers(0, 3, size=(n, _SIERPINSKI_DIGITS))
    weights = 2.0 ** -np.arange(1, _SIERPINSKI_DIGITS + 1)
    return np.einsum("njc,j->nc", corners[choice], weights)


def finite_set(n: int, atoms: int, ambient: int, *, seed: int | np.random.Generator) -> np.ndarray:
    """``n`` draws (with repetition) from ``atoms`` fixed Gaussian points in ``R^ambient``.

    Example::

      >>> len(np.unique(finite_set(1000, 7, 3, seed=0), axis=0))
      7
    """
    _check_count("n", n)
    _check_count("atoms", atoms)
    _check_count("ambient", ambient)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((atoms, ambient))
    picks = np.concatenate([np.arange(min(atoms, n)), rng.integers(0, atoms, n - min(atoms, n))])
    return centres[rng.permutation(picks)]


def spec_covariates(n: int, d: int, ambient: int = 50, *, seed: int | np.random.Generator) -> np.ndarray:
    """SPEC §6's covariates: ``x_1..x_d`` iid Uniform[0,1], ``x_l = x_{l-d}`` for ``l > d``.

    Args:
      n: number of users (or items).
      d: intrinsic dimension (20, 30 or 40 in the paper's Table 1).
      ambient: ``D`` (50 in the paper).
      seed: int or Generator.

    Returns:
      ``[n, ambient]`` in ``[0, 1]``; its support is a ``d``-dimensional cube.

    Example::

      >>> x = spec_covariates(3, 20, seed=0)
      >>> bool((x[:, 20:40] == x[:, :20]).all())
      True
    """
    _check_count("n", n)
    _check_count("d", d)
    if ambient < d:
        raise ValueError(f"ambient={ambient} must be >= d={d}")
    # The one SPEC §6 sampler, shared with ttm_jax's synthetic data (float64 here,
    # so that dimension estimates see the draws at full precision).
    return sample_intrinsic_covariates(n, ambient, d, np.random.default_rng(seed), np.float64)


def _check_count(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name}={value} must be an integer >= 1")

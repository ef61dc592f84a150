"""Frozen configuration for the two-tower model and its training.

Defaults are the configuration that measured best on the paper's synthetic
study (see ``benchmarks/RESULTS.md``, "Default configuration"); the paper's own
recipe is :meth:`TrainConfig.paper`.
"""

from __future__ import annotations

import dataclasses
import math

from ttm_jax.towers import ACTIVATIONS

__all__ = ["ModelConfig", "TrainConfig", "PENALTIES", "OPTIMIZERS", "TOWER_MODES"]

PENALTIES = ("l2", "l1", "none")
OPTIMIZERS = ("adam", "adamw", "sgd")
TOWER_MODES = ("auto", "entity", "rating")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the two towers (SPEC §1).

    Attributes:
      hidden: hidden widths ``p_1..p_{L-1}`` of each tower; the tower has
        ``len(hidden) + 1`` layers ``U(f)`` (the paper: four hidden layers of 50).
      embedding_dim: ``p``, the width of the linear output layer (paper: 30).
      activation: σ, one of ``ttm_jax.towers.ACTIVATIONS``.
      standardize: standardise each covariate column to mean 0, variance 1
        (statistics from the training users/items) inside the model.
      center_ratings: score ``mean(r) + <f, g>`` with the training mean as a
        fixed offset, instead of the bare dot product.
    """

    hidden: tuple[int, ...] = (200, 200)
    embedding_dim: int = 30
    activation: str = "silu"
    standardize: bool = True
    center_ratings: bool = True

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        if any(w < 1 for w in self.hidden):
            raise ValueError(f"hidden={self.hidden} must hold widths >= 1")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim={self.embedding_dim} must be >= 1")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={self.activation!r} is not known; choose one of {sorted(ACTIVATIONS)}"
            )

    @classmethod
    def paper(cls) -> ModelConfig:
        """SPEC §6's towers: 5 layers, 50 hidden units, 30 outputs, ReLU, raw inputs."""
        return cls(hidden=(50, 50, 50, 50), embedding_dim=30, activation="relu",
                   standardize=False, center_ratings=False)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation of eq. 2 by minibatch stochastic gradients.

    Attributes:
      optimizer: ``"adam"``, ``"adamw"`` (decoupled weight decay equal to
        ``penalty_weight``, in place of the penalty gradient) or ``"sgd"``.
      learning_rate: initial step size.
      decay_rate: multiply the step size by this every ``decay_epochs`` epochs
        (``1.0``: constant).
      decay_epochs: epochs between decays.
      decay_begin_epochs: epochs at the full step size before the decay starts
        (after any warm-up).
      min_learning_rate: floor of the decayed step size.
      warmup_epochs: linear warm-up from 0 over this many epochs.
      batch_size: ``|M|``, ratings per step, sampled uniformly from Ω.
      max_epochs: budget in epochs (one epoch = ``|Ω| / batch_size`` steps),
        trained exactly: when ``eval_every_epochs`` does not divide it, the last
        validation check comes after the remainder.
      penalty: ``J``: ``"l2"`` (Σ‖A‖²_F + ‖b‖²), ``"l1"`` (Σ|A| + |b|) or ``"none"``.
      penalty_weight: ``λ``.
      proximal: for ``"l1"``, apply the penalty by soft-thresholding after each
        step, ``w ← sign(w) max(|w| − η_t λ, 0)``, instead of by its
        subgradient, so weights reach exact zeros and ``Z(f)`` becomes
        informative. With ``optimizer="sgd"`` this is the exact proximal
        gradient step; with Adam the threshold ``η_t λ`` is small next to
        Adam's normalised steps, so few weights settle at zero: use SGD.
      eval_every_epochs: epochs between validation checks (and progress updates).
      patience: validation checks without improvement before early stopping.
      min_delta: improvement in validation RMSE that counts as one.
      tower_mode: how tower outputs are computed per step: ``"entity"`` (every
        user and item once, then gather), ``"rating"`` (once per rating in the
        batch) or ``"auto"`` (entity when ``n_users + n_items <= 2 * batch_size``;
        see ``benchmarks/train_speed.py``).
      max_seconds: wall-clock budget; training stops (keeping the best
        parameters) when exceeded. ``None``: no limit.
      grad_clip: clip the global gradient norm to this (``None``: no clipping).
    """

    optimizer: str = "adam"
    learning_rate: float = 6e-3
    decay_rate: float = 0.5
    decay_epochs: float = 1000.0
    decay_begin_epochs: float = 0.0
    min_learning_rate: float = 1e-4
    warmup_epochs: float = 0.0
    batch_size: int = 8192
    max_epochs: int = 4000
    penalty: str = "l2"
    penalty_weight: float = 1e-3
    proximal: bool = False
    eval_every_epochs: int = 10
    patience: int = 50
    min_delta: float = 0.0
    tower_mode: str = "auto"
    max_seconds: float | None = None
    grad_clip: float | None = None

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r}: choose one of {OPTIMIZERS}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty={self.penalty!r}: choose one of {PENALTIES}")
        if self.tower_mode not in TOWER_MODES:
            raise ValueError(f"tower_mode={self.tower_mode!r}: choose one of {TOWER_MODES}")
        for name in ("learning_rate", "decay_rate", "decay_epochs"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}={v} must be positive and finite")
        for name in ("min_learning_rate", "warmup_epochs", "decay_begin_epochs", "penalty_weight",
                     "min_delta"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}={v} must be >= 0 and finite")
        for name in ("batch_size", "max_epochs", "eval_every_epochs", "patience"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name}={v} must be a positive integer")
        if self.proximal and self.penalty != "l1":
            raise ValueError("proximal=True applies to penalty='l1' only; set penalty='l1'")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds={self.max_seconds} must be positive or None")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip={self.grad_clip} must be positive or None")

    @classmethod
    def paper(cls, **overrides) -> TrainConfig:
        """The paper's recipe (SPEC §2): SGD, step 0.01 decayed ×0.9 per epoch to a
        floor of 0.005, L2 penalty, early stopping; batch 32 (the paper gives none).
        """
        base = dict(
            optimizer="sgd",
            learning_rate=0.01,
            decay_rate=0.9,
            decay_epochs=1.0,
            min_learning_rate=0.005,
            batch_size=32,
            max_epochs=200,
            penalty="l2",
            penalty_weight=1e-4,
            eval_every_epochs=1,
            patience=10,
        )
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

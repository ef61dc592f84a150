"""The ways to call the training loop: one model, ``r`` members, or the paper's λ grid.

Each is a thin shell over :func:`ttm_jax.training.engine.train` (one loop for
all): it checks its arguments, lays the members out
(:func:`~ttm_jax.training.engine.stack_members`) and shapes the result.

* :func:`fit`: one model (``r = 1``); raises :class:`TrainingDivergedError`
  when its loss becomes non-finite, with the best parameters found before.
* :func:`fit_members`: ``r`` models trained together under ``vmap``, on one
  shared data set or ``r`` data sets of equal shape (replications), each
  with its own key and, optionally, its own step size and λ. A diverging
  member is marked and the others go on.
* :func:`fit_lambda_grid`: one model trained once per λ of a grid (the paper's
  25 values by default), all at once, λ chosen by validation RMSE. With
  ``optimizer="adamw"`` λ is AdamW's decoupled decay, vmapped like the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np

from ttm_jax.config import TrainConfig
from ttm_jax.data.ratings import RatingData, outlying_rating
from ttm_jax.model.towers import TwoTower
from ttm_jax.optim.optimizer import Hyperparams
from ttm_jax.training.callbacks import Callback, progress_callback
from ttm_jax.training.engine import stack_members, train
from ttm_jax.training.results import FitResult, TrainingDivergedError
from ttm_jax.training.stopping import StopReason

__all__ = ["PAPER_LAMBDAS", "LambdaGridResult", "fit", "fit_lambda_grid", "fit_members"]

#: The paper's grid ``{10^(-6 + k/3) : k = 0..24}``, ``[25]`` float64 (1e-6 … 1e2).
PAPER_LAMBDAS = 10.0 ** (-6.0 + np.arange(25) / 3.0)


def _config(config: TrainConfig | None) -> TrainConfig:
    if config is None:
        return TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return config


def _key(name: str, key) -> jax.Array:
    if not (isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
            and key.shape == ()):
        raise TypeError(f"{name} must be one jax.random.key(seed), got {key!r}")
    return key


def _train(members, config, label, progress, callbacks, checkpoint_dir, checkpoint_every,
           mesh) -> FitResult:
    """:func:`~ttm_jax.training.engine.train` with the library's progress report."""
    if jax.process_index() != 0:
        progress = False
    return train(members, config, callbacks=(progress_callback(label, progress), *callbacks),
                 checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, mesh=mesh,
                 label=label)


def fit(
    model: TwoTower,
    train: RatingData,
    validation: RatingData | None = None,
    config: TrainConfig | None = None,
    *,
    key: jax.Array,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir=None,
    checkpoint_every: int = 1,
    mesh=None,
    label: str = "fit",
) -> FitResult:
    """Train ``model`` on ``train`` by minibatch stochastic gradients on eq. 2.

    Args:
      model: a :class:`TwoTower` (e.g. from :func:`~ttm_jax.init_model`); not modified.
      train: the training ratings Ω.
      validation: ratings for early stopping (sharing ``train``'s covariate
        tables); ``None`` trains for ``config.max_epochs``.
      config: optimiser, schedule, penalty and stopping rule (default ``TrainConfig()``).
      key: ``jax.random`` key for the minibatch draws.
      progress: report progress (a bar on a terminal, a line per check in a
        log); ``False``: silent.
      callbacks: more progress callbacks (:mod:`ttm_jax.training.callbacks`).
      checkpoint_dir: save the run to this folder every ``checkpoint_every``
        checks and when it stops; if it already holds a checkpoint of this run,
        resume from it (:mod:`ttm_jax.io.checkpoint`). ``None``: no checkpoints.
      checkpoint_every: validation checks between checkpoints.
      mesh: a one-axis ``jax.sharding.Mesh`` to train data-parallel over its
        devices (:func:`~ttm_jax.training.distributed.data_parallel_mesh`);
        ``None``: one device.
      label: the run's name in progress reports.

    Returns:
      A one-model :class:`FitResult`; ``result.model`` holds the best parameters.

    Raises:
      TrainingDivergedError: the loss became NaN/inf; its ``result`` keeps the
        best parameters found before that.

    Example:
      >>> data, _ = make_synthetic(200, 200, 5000, seed=0)
      >>> split = random_split(data, 0.3, 0.2, seed=0)
      >>> model = init_model(ModelConfig(hidden=(32,)), split.train, key=jax.random.key(0))
      >>> res = fit(model, split.train, split.validation, TrainConfig(max_epochs=20),
      ...           key=jax.random.key(1), progress=False)
    """
    config = _config(config)
    members = stack_members([model], [train], None if validation is None else [validation],
                            config, [_key("key", key)])
    result = _train(members, config, label, progress, callbacks, checkpoint_dir,
                    checkpoint_every, mesh).member(0)
    if result.stop_reason is StopReason.DIVERGED:
        hist = result.history
        raise TrainingDivergedError(
            f"training loss became non-finite by epoch {hist.epoch[-1]:g} (step size "
            f"{hist.learning_rate[-1]:.3g}); kept the best parameters found before it (epoch "
            f"{result.best_epoch:g}). {_divergence_hint(train)}", result)
    return result


def _divergence_hint(train: RatingData) -> str:
    k = outlying_rating(train.ratings)
    if k is None:
        return "Lower learning_rate or set grad_clip."
    return (f"The rating {train.ratings[k]:g} at position {k} of the training ratings is far "
            f"outside the others (median {np.median(train.ratings):g}): check the data for a "
            "misplaced value, or rescale the ratings; a lower learning_rate would only hide it.")


def fit_members(
    models: Sequence[TwoTower],
    trains: RatingData | Sequence[RatingData],
    validations: RatingData | Sequence[RatingData] | None = None,
    config: TrainConfig | None = None,
    *,
    keys: Sequence[jax.Array],
    hyperparams: Sequence[Hyperparams] | None = None,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir=None,
    checkpoint_every: int = 1,
    mesh=None,
    label: str | None = None,
) -> FitResult:
    """Train ``r`` models at once, each as :func:`fit` would train it alone.

    Args:
      models: ``r`` models of one architecture; not modified.
      trains: one :class:`RatingData` shared by every member, or ``r`` of equal
        shapes (tables ``[n_users, D_u]``, ``[n_items, D_i]``, ``|Ω|``).
      validations: ``None``, or one validation set per training set (each
        sharing its training set's covariate tables).
      config: shared optimiser, schedule, penalty, budget and stopping rule.
      keys: ``r`` ``jax.random`` keys for the minibatch draws (member ``k``
        draws the minibatches ``fit(..., key=keys[k])`` would).
      hyperparams: ``r`` :class:`~ttm_jax.optim.Hyperparams` (step size ``η_0``
        and ``λ``) when members differ in them; default: the configuration's.
      progress, callbacks, checkpoint_dir, checkpoint_every, mesh: as :func:`fit`.
      label: the run's name in progress reports (default ``"fit ×r"``).

    Returns:
      A :class:`FitResult` with ``r`` members (``[r]`` fields; ``member(k)``
      is member ``k``'s one-model result). A member whose loss became
      non-finite keeps its best finite parameters and ``stop_reason``
      ``"diverged"``; the others train on.

    Example:
      >>> res = fit_members([m0, m1], [train0, train1], [val0, val1], config,
      ...                   keys=[jax.random.key(0), jax.random.key(1)])
      >>> res.best_val_rmse        # [2]
    """
    config = _config(config)
    trains = [trains] if isinstance(trains, RatingData) else list(trains)
    if validations is not None:
        validations = [validations] if isinstance(validations, RatingData) else list(validations)
    keys = [_key(f"keys[{k}]", key) for k, key in enumerate(keys)]
    members = stack_members(list(models), trains, validations, config, keys, hyperparams)
    return _train(members, config, label or f"fit ×{len(keys)}", progress, callbacks,
                  checkpoint_dir, checkpoint_every, mesh)


class LambdaGridResult(NamedTuple):
    """What :func:`fit_lambda_grid` returns: the grid, its fits and the choice.

    Attributes:
      lambdas: ``[g]`` the grid, as given.
      fits: the :class:`FitResult` of the ``g`` members (member ``k`` trained with ``lambdas[k]``).
    """

    lambdas: np.ndarray
    fits: FitResult

    @property
    def val_rmse(self) -> np.ndarray:
        """``[g]`` best validation RMSE of each λ (``inf`` if it never scored a finite one)."""
        return self.fits.best_val_rmse

    @property
    def best_epoch(self) -> np.ndarray:
        """``[g]`` epoch of each λ's kept parameters."""
        return self.fits.best_epoch

    @property
    def diverged(self) -> np.ndarray:
        """``[g]`` whether each λ's loss became non-finite."""
        return self.fits.diverged

    @property
    def best_index(self) -> int:
        """Index of the chosen λ: the lowest validation RMSE (ties: the first)."""
        return int(np.argmin(self.val_rmse))

    @property
    def best_lambda(self) -> float:
        """The chosen λ."""
        return float(self.lambdas[self.best_index])

    @property
    def model(self):
        """The chosen λ's model, with its best-validation parameters."""
        return self.fits.models[self.best_index]

    @property
    def epochs_run(self) -> float:
        """Epochs trained by the longest-running λ."""
        return float(np.max(self.fits.epochs_run))

    @property
    def seconds(self) -> float:
        return self.fits.seconds

    @property
    def stop_reason(self) -> StopReason:
        """``time_limit`` if the budget ran out, ``early_stopping`` if every λ
        stopped (or diverged), else ``max_epochs``."""
        reasons = set(self.fits.stop_reason)
        if StopReason.TIME_LIMIT in reasons:
            return StopReason.TIME_LIMIT
        if reasons <= {StopReason.EARLY_STOPPING, StopReason.DIVERGED}:
            return StopReason.EARLY_STOPPING
        return StopReason.MAX_EPOCHS


def check_lambdas(lambdas) -> np.ndarray:
    """``lambdas`` as a ``[g]`` float64 array of finite values ``>= 0``, or ``ValueError``."""
    try:
        lam = np.asarray(lambdas, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"lambdas={lambdas!r} must be a sequence of numbers") from None
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"lambdas must be a non-empty 1-D sequence of λ values; got shape "
                         f"{lam.shape}")
    if not (np.isfinite(lam).all() and (lam >= 0).all()):
        raise ValueError(f"lambdas must be finite and >= 0; got {lam.tolist()}")
    return lam


def fit_lambda_grid(
    model: TwoTower,
    train: RatingData,
    validation: RatingData,
    config: TrainConfig | None = None,
    *,
    lambdas: Sequence[float] | np.ndarray = PAPER_LAMBDAS,
    key: jax.Array,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir=None,
    checkpoint_every: int = 1,
    mesh=None,
) -> LambdaGridResult:
    """Train ``model`` once per λ in ``lambdas``, all in one ``vmap``; keep the best λ.

    Every grid point starts from the same parameters and draws the same
    minibatches; only λ differs (the L2/L1 penalty weight of eq. 2, or AdamW's
    decoupled decay with ``optimizer="adamw"``). Grid point ``k`` ends with
    the parameters ``fit(model, train, validation, config.replace(penalty_weight=
    lambdas[k]), key=key)`` would return, up to float rounding.

    Args:
      model: the initial :class:`TwoTower` shared by every grid point; not modified.
      train: training ratings Ω.
      validation: ratings for early stopping and for choosing λ, sharing
        ``train``'s covariate tables.
      config: training configuration; its ``penalty_weight`` is replaced by
        each λ. Its penalty must not be ``"none"`` (every λ would be the same fit).
      lambdas: ``[g]`` values of λ, each finite and ``>= 0`` (default: the
        paper's 25-point grid :data:`PAPER_LAMBDAS`).
      key: ``jax.random`` key for the minibatch draws (the same for every λ).
      progress, callbacks, checkpoint_dir, checkpoint_every, mesh: as :func:`fit`.
        A save writes every λ's parameters and Adam moments (tens of MB for the
        paper's grid and towers of 200), so save less often than every check
        when checks are quick.

    Returns:
      A :class:`LambdaGridResult`.

    Raises:
      ValueError: empty or non-finite/negative ``lambdas``, a missing
        ``validation``, ``penalty="none"``, or a ``checkpoint_dir`` holding another run.
      ttm_jax.io.CheckpointError: a damaged checkpoint.
    """
    config = _config(config)
    lam = check_lambdas(lambdas)
    if validation is None:
        raise ValueError("validation is required: λ is chosen by validation RMSE")
    if config.penalty == "none":
        raise ValueError("config.penalty='none' makes every λ identical; use 'l2' or 'l1'")
    key = _key("key", key)
    hyper = [Hyperparams(np.float32(config.learning_rate), np.float32(v)) for v in lam]
    members = stack_members([model] * lam.size, [train], [validation], config,
                            [key] * lam.size, hyper)
    fits = _train(members, config, f"λ grid ×{lam.size}", progress, callbacks,
                  checkpoint_dir, checkpoint_every, mesh)
    return LambdaGridResult(lam, fits)

"""A scikit-learn-style estimator over the library's fitting protocol."""

from __future__ import annotations

import secrets

import jax
import numpy as np

from ttm_jax import checks
from ttm_jax.config import ModelConfig, TrainConfig
from ttm_jax.data.ratings import RatingData
from ttm_jax.model.ensemble import mean_model, mean_model_config
from ttm_jax.model.init import init_model
from ttm_jax.model.towers import TwoTower
from ttm_jax.protocols import REFIT_MODES, holdout_then_refit
from ttm_jax.serving.inference import check_covariates, embed_items, embed_users, predict_pairs
from ttm_jax.training.fit import fit
from ttm_jax.training.results import FitResult, TrainingDivergedError

__all__ = ["TwoTowerRegressor"]


class TwoTowerRegressor:
    """The two-tower model, fitted and used like a scikit-learn estimator.

    Args:
      model: architecture (:class:`ModelConfig`; default: the measured best).
      train: optimisation (:class:`TrainConfig`; ``TrainConfig.paper()`` is the
        paper's recipe).
      validation_fraction: when :meth:`fit` gets no validation set, hold out this
        fraction of the training ratings for early stopping (paper: 0.2).
      refit: after early stopping on that hold-out, learn from *all* the training
        ratings (:func:`ttm_jax.protocols.holdout_then_refit`): ``"warm"`` (the
        default) trains the early-stopped model on, on every rating, for a short
        share of the epochs it kept; ``"scratch"`` trains a fresh model from the
        same keys for all the kept epochs (a second whole fit); ``"none"`` keeps
        the early-stopped model. Not done when :meth:`fit` is given its own
        validation set, or with ``validation_fraction=0``.
      seed: seeds initialisation, minibatches and the validation hold-out. With
        ``None`` a seed is drawn from the OS and recorded in ``seed_``, so any
        run can be repeated by passing it back.
      progress: progress reports while fitting (a bar on a terminal, a line per
        check in a log; ``False``: silent).
      ensemble: ``K``: fit ``K`` models, member ``k`` exactly as this regressor with
        ``seed + k`` would fit it alone, and predict their mean
        (:func:`ttm_jax.model.mean_model`: one two-tower model ``K`` times as wide,
        so every scoring path takes it). ``K`` times the cost; the members' own
        randomness (initialisation, minibatches, hold-out) averages out.

    Attributes (after :meth:`fit`):
      model_: the trained :class:`TwoTower` (the refitted one, when refitting).
      result_: the :class:`FitResult` of the early-stopped fit (history with
        validation RMSE, best epoch, time, stop reason).
      refit_result_: the refit's :class:`FitResult` (no validation curve), or
        ``None`` when there was no refit.
      seed_: the seed used.
      model_config_: the :class:`ModelConfig` of ``model_``, for
        :func:`~ttm_jax.save_model` (``save_model(path, reg.model_, reg.model_config_)``):
        ``model``, or with ``ensemble = K`` its widths times ``K``
        (:func:`ttm_jax.model.mean_model_config`).
      members_: with ``ensemble > 1``, the ``K`` fitted member regressors
        (``model_`` is their mean; ``result_`` and ``refit_result_`` are member
        0's); ``None`` otherwise.

    Example:
      >>> from ttm_jax import TwoTowerRegressor, make_synthetic, random_split, evaluate
      >>> data, truth = make_synthetic(300, 300, 10_000, seed=0)
      >>> split = random_split(data, test_fraction=0.3, seed=0)
      >>> reg = TwoTowerRegressor(train=TrainConfig(max_epochs=50), seed=0).fit(split.train)
      >>> reg.predict(split.test).shape
      (3000,)
    """

    def __init__(
        self,
        model: ModelConfig | None = None,
        train: TrainConfig | None = None,
        *,
        validation_fraction: float = 0.2,
        refit: str = "warm",
        seed: int | None = None,
        progress: bool | None = None,
        ensemble: int = 1,
    ):
        if model is not None and not isinstance(model, ModelConfig):
            raise TypeError(f"model must be a ModelConfig, got {type(model).__name__}")
        if train is not None and not isinstance(train, TrainConfig):
            raise TypeError(f"train must be a TrainConfig, got {type(train).__name__}")
        self.model = model if model is not None else ModelConfig()
        self.train = train if train is not None else TrainConfig()
        self.validation_fraction = checks.fraction("validation_fraction", validation_fraction)
        self.refit = checks.choice("refit", refit, REFIT_MODES)
        self.seed = None if seed is None else checks.integer("seed", seed, low=0,
                                                                     high=checks.SEED_MAX)
        self.progress = progress
        self.ensemble = checks.integer("ensemble", ensemble, low=1, high=1024)
        if self.seed is not None and self.seed + self.ensemble - 1 > checks.SEED_MAX:
            raise checks.InvalidArgument(
                f"seed={self.seed} with ensemble={self.ensemble}: member seeds seed .. "
                f"seed + {self.ensemble - 1} must stay at most {checks.SEED_MAX}; use a "
                "smaller seed")

    def fit(self, train: RatingData, validation: RatingData | None = None) -> TwoTowerRegressor:
        """Fit on ``train``; early-stop on ``validation`` (or on a hold-out of ``train``).

        With ``refit`` (the default) and no ``validation`` given, this is two
        fits: one early-stopped on a hold-out of ``train``, then one on all of
        ``train`` for the epochs the first kept.

        Raises:
          TrainingDivergedError: the loss became NaN/inf. ``model_`` is still set,
            to the best parameters found before that (the early-stopped model's,
            if it was the refit that diverged).
        """
        if not isinstance(train, RatingData):
            raise TypeError(f"train must be a RatingData, got {type(train).__name__}")
        if validation is not None and not isinstance(validation, RatingData):
            raise TypeError(f"validation must be a RatingData or None, got "
                            f"{type(validation).__name__}")
        # A drawn seed is below 2**31, so its members' seeds stay valid.
        self.seed_ = int(self.seed if self.seed is not None else secrets.randbits(31))
        self.members_ = None
        self.model_config_ = mean_model_config(self.model, self.ensemble)
        if self.ensemble > 1:
            return self._fit_ensemble(train, validation)
        init_key, fit_key = jax.random.split(jax.random.key(self.seed_))
        self.refit_result_: FitResult | None = None
        try:
            if validation is None and self.validation_fraction > 0:
                out = holdout_then_refit(
                    self.model, train, self.train, validation_fraction=self.validation_fraction,
                    refit=self.refit, split_seed=self.seed_, init_key=init_key, key=fit_key,
                    progress=self.progress)
                self.model_, self.result_, self.refit_result_ = out.model, out.selection, out.refit
            else:
                model = init_model(self.model, train, key=init_key)
                result = fit(model, train, validation, self.train, key=fit_key,
                             progress=self.progress)
                self.model_, self.result_ = result.model, result
        except TrainingDivergedError as err:
            if err.selection is not None:  # the refit diverged: keep the early-stopped model
                self.model_, self.result_ = err.selection.model, err.selection
                self.refit_result_ = err.result
            else:
                self.model_, self.result_ = err.result.model, err.result
            raise
        return self

    def _fit_ensemble(self, train: RatingData, validation: RatingData | None):
        # Each member is the one-model fit of its seed, so a member can be reproduced
        # (and checked) alone; they run one after another, each on the one engine.
        members = [TwoTowerRegressor(self.model, self.train,
                                     validation_fraction=self.validation_fraction,
                                     refit=self.refit, seed=self.seed_ + k,
                                     progress=self.progress)
                   for k in range(self.ensemble)]
        for member in members:
            member.fit(train, validation)
        self.members_ = members
        self.model_ = mean_model([m.model_ for m in members])
        self.result_, self.refit_result_ = members[0].result_, members[0].refit_result_
        return self

    def _check_fitted(self) -> TwoTower:
        if not hasattr(self, "model_"):
            raise RuntimeError("this TwoTowerRegressor is not fitted yet; call fit(train) first")
        return self.model_

    def predict(self, data: RatingData) -> np.ndarray:
        """Predicted ratings ``[|Ω|]`` for the pairs of ``data`` (float32)."""
        model = self._check_fitted()
        if not isinstance(data, RatingData):
            raise TypeError(f"data must be a RatingData, got {type(data).__name__}")
        return predict_pairs(
            model, data.user_features, data.item_features, data.user_ids, data.item_ids
        )

    def predict_matrix(self, user_features: np.ndarray, item_features: np.ndarray, *,
                       user_ids: np.ndarray | None = None,
                       item_ids: np.ndarray | None = None) -> np.ndarray:
        """Scores of every (user, item) pair: ``[n, D_u] × [m, D_i] → [n, m]``.

        Covariates must be finite numbers (a NaN row is refused, naming it).
        With id tables (``ModelConfig(user_ids=True)``), ``user_ids [n]`` /
        ``item_ids [m]`` are the rows' ids in the training tables; without them
        the rows are scored as new entities, by their covariates alone."""
        model = self._check_fitted()
        u = embed_users(model, user_features, user_ids)
        v = embed_items(model, item_features, item_ids)
        return np.float32(model.offset[...]) + u @ v.T

    def user_embeddings(self, features: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """``f(x_u)``: ``[n, D_u]`` → ``[n, p]``; works for users never seen in training
        (``ids``: the users' rows in the training table, for a user id table)."""
        model = self._check_fitted()
        return embed_users(model, check_covariates(model, features, "user", name="features"), ids)

    def item_embeddings(self, features: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
        """``g(x_i)``: ``[n, D_i]`` → ``[n, p]``; works for items never seen in training
        (``ids`` as in :meth:`user_embeddings`)."""
        model = self._check_fitted()
        return embed_items(model, check_covariates(model, features, "item", name="features"), ids)

    def __repr__(self) -> str:
        more = f", ensemble={self.ensemble}" if self.ensemble > 1 else ""
        return (f"TwoTowerRegressor(model={self.model}, train={self.train}, seed={self.seed}"
                f"{more})")

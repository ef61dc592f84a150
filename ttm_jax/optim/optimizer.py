"""The optimiser of a :class:`TrainConfig`, its hyperparameters injected into its state.

:func:`make_optimizer` wraps the optax chain in ``optax.inject_hyperparams`` so
that the initial step size ``η_0`` and the penalty weight ``λ`` are arrays in
the optimiser state rather than constants of the compiled step. One compiled
step then serves every member of a batch trained under ``vmap`` with its own
``λ`` (the paper's grid), its own step size, or its own AdamW decay, and the
training loop never recompiles when they change.

``λ`` is read where the configuration applies it: by the loss (eq. 2's
``λ J``, :func:`ttm_jax.training.step`), as AdamW's decoupled decay, or as the
proximal L1 step's strength (:func:`ttm_jax.optim.proximal_l1`). The id
tables' weight ``λ_id`` is injected beside it, so a grid over both trains in
one ``vmap`` too.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ttm_jax.config import TrainConfig
from ttm_jax.model.towers import is_id_table
from ttm_jax.optim.proximal import proximal_l1
from ttm_jax.optim.rowwise import scale_by_rowwise_adagrad
from ttm_jax.optim.schedule import make_schedule

__all__ = ["MUON_RMS", "Hyperparams", "hyperparams_of", "make_optimizer", "with_hyperparams"]

#: RMS of muon's orthogonalised update (Moonlight's matching of an AdamW step).
MUON_RMS = 0.2


class Hyperparams(NamedTuple):
    """The hyperparameters a member of a batched fit may hold on its own.

    Attributes:
      learning_rate: ``η_0``, the peak of the step-size schedule.
      penalty_weight: ``λ``.
      id_penalty_weight: ``λ_id``, the id tables' penalty weight; ``None``:
        the configuration's ``id_penalty_weight``, or ``λ`` when that is ``None``
        (resolved by :meth:`resolve`).

    Each is a float32 scalar for one model, or ``[r]`` for ``r`` members.
    """

    learning_rate: jax.Array
    penalty_weight: jax.Array
    id_penalty_weight: jax.Array | None = None

    @classmethod
    def of(cls, config: TrainConfig) -> Hyperparams:
        """The configuration's own values, as float32 scalars."""
        return cls(jnp.asarray(config.learning_rate, jnp.float32),
                   jnp.asarray(config.penalty_weight, jnp.float32)).resolve(config)

    def resolve(self, config: TrainConfig) -> Hyperparams:
        """These values with ``id_penalty_weight`` filled in for ``config`` when ``None``."""
        if self.id_penalty_weight is not None:
            return self
        tied = config.id_penalty_weight is None
        return self._replace(id_penalty_weight=jnp.asarray(
            self.penalty_weight if tied else config.id_penalty_weight, jnp.float32))


def _id_mask(params, ids: bool):
    """A mask of ``params``: True on the id tables (``ids``) or on everything else."""
    return jax.tree_util.tree_map_with_path(lambda path, _: is_id_table(path) == ids, params)


def _muon_dimensions(params):
    """Muon orthogonalises the weight matrices; an id table is a lookup, not a linear map
    (orthogonalising its update would mix the rows of entities that were not in the
    minibatch), so it takes the Adam branch, as biases do."""
    dims = optax.contrib.MuonDimensionNumbers()
    return jax.tree_util.tree_map_with_path(
        lambda path, x: None if is_id_table(path) or x.ndim != 2 else dims, params)


def _id_labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "ids" if is_id_table(path) else "weights", params)


def _weights_transform(config: TrainConfig, schedule, penalty_weight, id_penalty_weight,
                       head: list):
    """``head`` (clipping, or nothing), then the configured optimiser at its scheduled step."""
    parts = list(head)
    if config.optimizer == "muon":
        # consistent_rms: the orthogonalised update is scaled to an Adam step's RMS,
        # so Adam's step sizes (and schedules) carry over.
        parts.append(optax.contrib.muon(schedule, consistent_rms=MUON_RMS,
                                        muon_weight_dimension_numbers=_muon_dimensions))
        return optax.chain(*parts)
    if config.optimizer in ("adam", "adamw"):
        parts.append(optax.scale_by_adam())
    if config.optimizer == "adamw" and config.id_penalty_weight is None:
        parts.append(optax.add_decayed_weights(penalty_weight))
    elif config.optimizer == "adamw":
        parts.append(optax.add_decayed_weights(penalty_weight, lambda p: _id_mask(p, False)))
        parts.append(optax.add_decayed_weights(id_penalty_weight, lambda p: _id_mask(p, True)))
    parts.append(optax.scale_by_learning_rate(schedule))
    tx = optax.chain(*parts)
    if config.proximal:
        tx = proximal_l1(tx, penalty_weight, schedule, precondition=config.optimizer != "sgd")
    return tx


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax transformation for ``config``: clipping, the optimiser, the scheduled step.

    ``adam`` is ``chain(scale_by_adam, scale_by_learning_rate(η_t))`` as
    ``optax.adam``; ``adamw`` inserts ``add_decayed_weights(λ)`` as ``optax.adamw``;
    ``sgd`` is ``scale_by_learning_rate(η_t)``; ``muon`` is ``optax.contrib.muon``
    (Newton–Schulz-orthogonalised momentum for the weight matrices, Adam for the
    biases and id tables) at step ``η_t``; with ``proximal=True`` the update
    ends with :func:`~ttm_jax.optim.proximal_l1`. With ``id_penalty_weight``,
    AdamW decays the id tables by it and the rest by λ. With
    ``id_optimizer="rowwise_adagrad"`` the id tables take
    :func:`~ttm_jax.optim.scale_by_rowwise_adagrad` at the same scheduled step
    (``optax.partition``) and the rest the configured optimiser. ``η_0`` and ``λ`` are injected
    (``optax.inject_hyperparams``): see :func:`with_hyperparams`.

    Example:
      >>> tx = make_optimizer(TrainConfig(optimizer="adamw"), steps_per_epoch=10)
      >>> state = tx.init(params)
      >>> state = with_hyperparams(state, Hyperparams(jnp.float32(1e-2), jnp.float32(1e-4)))
    """

    def factory(learning_rate, penalty_weight, id_penalty_weight):
        schedule = make_schedule(config, steps_per_epoch, peak=learning_rate)
        clip = ([] if config.grad_clip is None
                else [optax.clip_by_global_norm(config.grad_clip)])
        if config.id_optimizer == "same":
            return _weights_transform(config, schedule, penalty_weight, id_penalty_weight, clip)
        # The id tables apart: one accumulator per row instead of two moments per
        # entry (the optimiser state of a 10^6-row table shrinks by 2 × width).
        ids = [scale_by_rowwise_adagrad()]
        if config.optimizer == "adamw":
            ids.append(optax.add_decayed_weights(id_penalty_weight))
        ids.append(optax.scale_by_learning_rate(schedule))
        weights = _weights_transform(config, schedule, penalty_weight, id_penalty_weight, [])
        return optax.chain(*clip, optax.partition({"weights": weights,
                                                   "ids": optax.chain(*ids)}, _id_labels))

    initial = Hyperparams.of(config)
    return optax.inject_hyperparams(factory)(learning_rate=initial.learning_rate,
                                             penalty_weight=initial.penalty_weight,
                                             id_penalty_weight=initial.id_penalty_weight)


def hyperparams_of(opt_state) -> Hyperparams:
    """The :class:`Hyperparams` held by a state of :func:`make_optimizer`."""
    h = opt_state.hyperparams
    return Hyperparams(h["learning_rate"], h["penalty_weight"], h["id_penalty_weight"])


def with_hyperparams(opt_state, values: Hyperparams):
    """``opt_state`` with its injected hyperparameters replaced by ``values``
    (float32 scalars, or ``[r]`` for a state stacked over ``r`` members; a ``None``
    field keeps the state's value)."""
    hyper = dict(opt_state.hyperparams)
    for name, value in values._asdict().items():
        if value is not None:
            hyper[name] = jnp.asarray(value, jnp.float32).reshape(np.shape(hyper[name]))
    return opt_state._replace(hyperparams=hyper)

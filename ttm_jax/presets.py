"""Measured configurations for named datasets: ``(ModelConfig, TrainConfig)`` pairs.

A preset is what a benchmark measured, in the library, so that a user gets the
benchmark's model from one call::

    import ttm_jax
    from ttm_jax import TwoTowerRegressor, read_movielens

    data = read_movielens("../shared/datasets/ml-100k", title_words=100).data
    reg = TwoTowerRegressor(*ttm_jax.presets.movielens_100k(), seed=0).fit(data)

How each was chosen, and on which data, is in ``benchmarks/RESULTS.md`` (§5 for
MovieLens) with the command that measured it.
"""

from __future__ import annotations

from ttm_jax.config import ModelConfig, TrainConfig

__all__ = ["MOVIELENS_TITLE_WORDS", "movielens_100k", "movielens_100k_top_k"]

#: The item covariates the MovieLens preset was measured with:
#: ``read_movielens(folder, title_words=MOVIELENS_TITLE_WORDS)``.
MOVIELENS_TITLE_WORDS = 100


def movielens_100k() -> tuple[ModelConfig, TrainConfig]:
    """The hybrid model of MovieLens-100K (SPEC §1: covariates plus id tables).

    Linear towers (``hidden=()``) of width ``p = 64`` over the raw covariates
    (no standardisation: the 0/1 genre, occupation and title-word columns keep
    their scale) plus a learnt id row per user and per item
    (``ModelConfig(user_ids=True, item_ids=True)``). So
    ``R(u, i) = μ + (A x_u + E_u[u])ᵀ (B x_i + E_i[i]) + biases``: a factor
    model whose user and item factors are also predicted from covariates, which
    is what carries a user or item the model has not met (their id reads the
    table's unknown row, zero unless id dropout trained it).

    Training: Adam at a constant step ``5e-4``, batch 4096, L2; the covariate
    weights and the id tables are penalised apart (``penalty_weight`` and
    ``id_penalty_weight``), since the dense demographic columns overfit long
    before the id rows have learnt (``benchmarks/RESULTS.md`` §5: the per-split tuning that
    checks them); early stopping every 2 epochs with patience 6, at most 400
    epochs.

    ``TwoTowerRegressor(*movielens_100k(), ensemble=5)`` averages five fits (seeds
    ``s .. s + 4``) into one two-tower model (:func:`ttm_jax.model.mean_model`), at five
    times the cost and a lower RMSE (``benchmarks/RESULTS.md`` §5).

    Returns:
      ``(model_config, train_config)``, for ``TwoTowerRegressor(*movielens_100k())``
      or :func:`ttm_jax.fit`. Read the data with
      ``read_movielens(folder, title_words=MOVIELENS_TITLE_WORDS)``.

    Example:
      >>> from ttm_jax.presets import movielens_100k
      >>> model_config, train_config = movielens_100k()
      >>> model_config.user_ids, model_config.item_ids, train_config.optimizer
      (True, True, 'adam')
    """
    model = ModelConfig(hidden=(), embedding_dim=64, standardize=False, user_ids=True,
                        item_ids=True)
    train = TrainConfig(optimizer="adam", learning_rate=5e-4, decay_rate=1.0, batch_size=4096,
                        penalty_weight=PENALTY_WEIGHT, id_penalty_weight=ID_PENALTY_WEIGHT,
                        max_epochs=400, eval_every_epochs=2, patience=6)
    return model, train


# Chosen on an inner split of seed 0's training set of the cold-start study
# (`python benchmarks/tune_movielens.py --study cold --index 0`, which chooses them
# again); per-split tuning, RESULTS.md §5, picks λ in {0.01, 0.03}, λ_id in {1e-4, 3e-4}.
PENALTY_WEIGHT = 3e-2
ID_PENALTY_WEIGHT = 3e-4


def movielens_100k_top_k() -> tuple[ModelConfig, TrainConfig]:
    """The hybrid model of MovieLens-100K trained for top-k lists rather than RMSE.

    :func:`movielens_100k`'s towers with Steck's (2010) missing-rating term
    (``TrainConfig.missing_weight`` ``w_m``, ``missing_rating`` ``r_m``): every pair a
    user did not rate counts as a rating ``r_m`` of weight ``w_m``, so the model
    learns which items a user chooses to rate as well as how they rate them. On the
    5-fold CV of ``benchmarks/movielens.py`` its top-10 lists beat the popularity
    baseline and SVD's, at a higher RMSE on the observed ratings
    (``benchmarks/RESULTS.md`` §5).

    It trains a fixed number of epochs (``max_epochs``, tuned with ``w_m`` and ``r_m``
    for NDCG@10): early stopping would stop on the observed ratings' RMSE, which is
    not what this model is for. Fit it without a hold-out::

        reg = TwoTowerRegressor(*movielens_100k_top_k(), validation_fraction=0.0, seed=0)
        lists = ttm_jax.recommend(reg.fit(data).model_, users, 10, data=data)

    The values were chosen on an inner split of fold 0's training set
    (``python benchmarks/tune_movielens.py --study cv --index 0 --methods ttm_mnar``),
    with the penalties that fold's RMSE tuning chose.

    Example:
      >>> from ttm_jax.presets import movielens_100k_top_k
      >>> _, train_config = movielens_100k_top_k()
      >>> train_config.missing_weight > 0
      True
    """
    model, train = movielens_100k()
    return model, train.replace(**TOP_K)


#: Chosen by ``python benchmarks/tune_movielens.py --study cv --index 0 --methods ttm_mnar``
#: (RESULTS.md §5 lists every fold's choice).
TOP_K = dict(penalty_weight=3e-2, id_penalty_weight=1e-4, missing_weight=0.3, missing_rating=1.0,
             max_epochs=400)

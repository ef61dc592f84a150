"""benchmarks/cold_start_floor.py splits a cold user's error into the user's own offset and the
rest, and tells whether the covariates carry that offset: on data the test makes, where they
do and where they do not."""

from __future__ import annotations

import numpy as np
import pytest

from ttm_jax import RatingData, cold_start_split


def ratings_with_user_offsets(offsets_from_covariates: bool, seed: int = 0) -> RatingData:
    """``r = 3 + b_i + o_u + ε`` (sd 0.3); ``o_u`` (sd 0.5) is linear in the user's
    covariates, or drawn apart from them."""
    rng = np.random.default_rng(seed)
    n_users, n_items, per_user = 400, 120, 30
    xu = rng.normal(size=(n_users, 4)).astype(np.float32)
    xi = rng.normal(size=(n_items, 3)).astype(np.float32)
    if offsets_from_covariates:
        offsets = xu @ np.array([0.3, -0.2, 0.25, 0.1])
    else:
        offsets = 0.5 * rng.normal(size=n_users)
    b_i = 0.4 * rng.normal(size=n_items)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    r = 3.0 + b_i[items] + offsets[users] + 0.3 * rng.normal(size=users.size)
    return RatingData(xu, xi, users.astype(np.int32), items.astype(np.int32), r.astype(np.float32))


@pytest.mark.parametrize("offsets_from_covariates", [False, True])
def test_the_oracle_removes_user_offsets_and_covariates_recover_them_only_if_they_carry_them(
        load_benchmark, offsets_from_covariates):
    floor = load_benchmark("cold_start_floor")
    data = ratings_with_user_offsets(offsets_from_covariates)
    split = cold_start_split(data, user_fraction=0.25, test_fraction=0.1, seed=1)
    row = floor.cold_floor(data, split.train, split.test, seed=1)

    assert row.n_cold_ratings == 100 * 30
    # The item-bias predictor leaves the offset's variance (about 0.25 or 0.18) on top of
    # the noise; knowing each user's offset leaves the noise (0.09) and the offset's error.
    assert row.oracle_offset == pytest.approx(0.09 * 29 / 30, abs=0.02)
    assert row.item_bias > row.oracle_offset + 0.12
    if offsets_from_covariates:
        assert row.covariate_r2 > 0.9
        assert row.covariate_offset < row.oracle_offset + 0.03
    else:
        assert row.covariate_r2 < 0.05
        assert row.covariate_offset > row.item_bias - 0.02


def test_a_split_without_held_out_users_is_refused(load_benchmark):
    floor = load_benchmark("cold_start_floor")
    data = ratings_with_user_offsets(False)
    with pytest.raises(ValueError, match="no held-out user"):
        floor.cold_floor(data, data, data, seed=0)

"""RatingData validation, splits and the SPEC §6 generator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttm_jax import RatingData, cold_start_split, make_synthetic, random_split
from ttm_jax.data import outlying_rating


def small(**override):
    fields = dict(
        user_features=np.zeros((3, 2)),
        item_features=np.ones((4, 5)),
        user_ids=np.array([0, 1, 2]),
        item_ids=np.array([3, 0, 3]),
        ratings=np.array([1.0, 2.0, 3.0]),
    )
    fields.update(override)
    return RatingData(**fields)


def test_valid_data_has_sizes_and_float32_tables():
    data = small()
    assert (data.n_users, data.n_items, data.n_ratings) == (3, 4, 3)
    assert data.user_features.dtype == np.float32 and data.ratings.dtype == np.float32
    assert data.user_ids.dtype == np.int32


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("user_features", np.zeros(3), "user_features: expected a 2-D"),
        ("user_features", np.array([[0.0, np.nan]] * 3), "user_features: 3 non-finite"),
        ("item_features", np.array([["a"] * 5] * 4), "item_features: dtype"),
        ("item_features", np.array([[np.inf] * 5] * 4), "item_features: 20 non-finite"),
        ("user_ids", np.array([0, 1, 3]), "user_ids: id 3 at position 2 is out of range"),
        ("user_ids", np.array([0.0, 1.0, 2.0]), "user_ids: dtype float64 is not an integer"),
        ("item_ids", np.array([0, -1, 1]), "item_ids: id -1 at position 1"),
        ("item_ids", np.array([[0, 1, 2]]), "item_ids: expected a 1-D"),
        ("ratings", np.array([1.0, np.nan, 3.0]), "ratings: non-finite rating nan at position 1"),
        ("ratings", np.array([1.0, 2.0]), "must have the same length"),
        ("ratings", np.array(["1", "2", "3"]), "ratings: dtype"),
    ],
)
def test_each_invalid_field_is_named(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        small(**{field: value})


def test_a_rating_too_large_to_train_on_is_called_a_data_error():
    # (r - prediction)² of 1e30 overflows float32: training could only diverge.
    with pytest.raises(ValueError, match=r"ratings: value 1e\+30 at position 1 is larger than "
                                         r"1e\+18 .*likely a data error"):
        small(ratings=np.array([4.0, 1e30, 3.0]))
    with pytest.raises(ValueError, match="ratings: value -3e\\+18 at position 2"):
        small(ratings=np.array([1, 2, -3 * 10**18]))


def test_a_covariate_beyond_float32_is_named_not_turned_into_inf():
    x = np.zeros((3, 2))
    x[2, 1] = 1e39
    with pytest.raises(ValueError, match=r"user_features: value 1e\+39 at row 2, column 1 does "
                                         "not fit in float32"):
        small(user_features=x)
    x[2, 1] = 1e20  # large, but a float32: accepted (and standardised in float64)
    assert small(user_features=x).user_features[2, 1] == np.float32(1e20)


def test_an_outlying_rating_is_found_and_ordinary_spreads_are_not():
    assert outlying_rating([1.0, 5.0, 3.0, 1e10, 4.0]) == 3
    assert outlying_rating([1.0, 5.0, 3.0, 2.0, 4.0]) is None
    assert outlying_rating(np.geomspace(1, 1e6, 50)) is None  # prices, say
    assert outlying_rating([5.0, 5.0, 5.0, 4.0]) is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(test_fraction=0.2, validation_fraction=-0.1), "validation_fraction=-0.1 must be in"),
    (dict(test_fraction=0.2, validation_fraction=float("nan")),
     "validation_fraction=nan must be a finite number"),
    (dict(test_fraction="0.2"), "test_fraction='0.2' must be a number, not str"),
    (dict(test_fraction=0.0), r"test_fraction=0.0 must be in \(0, 1\)"),
    (dict(test_fraction=0.2, seed=1.5), "seed=1.5 must be an int"),
])
def test_random_split_names_a_bad_fraction_instead_of_ignoring_it(kwargs, message):
    kwargs.setdefault("seed", 0)
    with pytest.raises(ValueError, match=message):
        random_split(small(), **kwargs)


def test_duplicate_pairs_are_rejected_with_the_pair():
    with pytest.raises(ValueError, match=r"pair \(user 0, item 3\) occurs 2 times"):
        small(user_ids=np.array([0, 0, 1]), item_ids=np.array([3, 3, 0]))


def test_empty_omega_is_rejected():
    with pytest.raises(ValueError, match="Ω is empty"):
        small(user_ids=np.array([], int), item_ids=np.array([], int), ratings=np.array([]))


def test_data_is_read_only():
    data = small()
    with pytest.raises(ValueError):
        data.ratings[0] = 9.0


@given(n=st.integers(10, 400), test=st.floats(0.05, 0.5), val=st.floats(0.0, 0.5),
       seed=st.integers(0, 2**31 - 1))
def test_random_split_partitions_omega(n, test, val, seed):
    rng = np.random.default_rng(0)
    pairs = rng.choice(30 * 30, size=n, replace=False)
    data = RatingData(rng.normal(size=(30, 2)), rng.normal(size=(30, 3)), pairs // 30,
                      pairs % 30, rng.normal(size=n))
    try:
        split = random_split(data, test, val, seed=seed)
    except ValueError as err:
        assert "empty part" in str(err)
        return
    parts = [split.train, split.test] + ([split.validation] if split.validation else [])
    keys = np.concatenate([p.user_ids.astype(np.int64) * 30 + p.item_ids for p in parts])
    assert sorted(keys) == sorted(pairs)
    assert split.test.n_ratings == round(test * n)
    assert split.train.user_features is data.user_features


def test_cold_start_split_holds_out_whole_users():
    data, _ = make_synthetic(200, 150, 6000, seed=3)
    split = cold_start_split(data, user_fraction=0.2, test_fraction=0.1,
                             validation_fraction=0.2, seed=1)
    train_users = set(split.train.user_ids.tolist()) | set(split.validation.user_ids.tolist())
    cold_test = ~np.isin(split.test.user_ids, list(train_users))
    assert len(set(split.test.user_ids[cold_test].tolist())) == 40
    assert cold_test.any() and (~cold_test).any()  # cold and warm test pairs
    total = split.train.n_ratings + split.validation.n_ratings + split.test.n_ratings
    assert total == data.n_ratings


def test_same_seed_same_synthetic_data():
    a, _ = make_synthetic(50, 40, 500, seed=7)
    b, _ = make_synthetic(50, 40, 500, seed=7)
    c, _ = make_synthetic(50, 40, 500, seed=8)
    assert np.array_equal(a.ratings, b.ratings) and np.array_equal(a.user_ids, b.user_ids)
    assert not np.array_equal(a.ratings, c.ratings)


def test_synthetic_follows_spec_section_6():
    data, truth = make_synthetic(300, 200, 20_000, intrinsic_dim=20, noise_var=0.1, seed=0)
    x = data.user_features
    assert x.shape == (300, 50) and x.min() >= 0 and x.max() <= 1
    # x_l = x_{l-d} for l > d (1-based), i.e. columns repeat with period d.
    assert np.array_equal(x[:, 20:40], x[:, :20]) and np.array_equal(x[:, 40:], x[:, :10])
    clean = truth.rating(x[data.user_ids], data.item_features[data.item_ids])
    noise = data.ratings - clean
    assert abs(noise.var() - 0.1) < 0.01
    assert np.allclose(truth.user_embeddings, truth.user_map(x), atol=1e-5)
    assert len(set((data.user_ids * 200 + data.item_ids).tolist())) == 20_000
    fresh = truth.sample_users(1000, 1)
    assert fresh.shape == (1000, 50) and np.array_equal(fresh[:, 20:40], fresh[:, :20])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(intrinsic_dim=60), "intrinsic_dim=60 must be <= ambient_dim=50"),
        (dict(n_ratings=10_000), "n_ratings=10000 must lie in 1 .. n_users\\*n_items = 100"),
        (dict(noise_var=-1.0), "noise_var=-1.0"),
        (dict(n_users=0), "n_users=0 must be a positive integer"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, message):
    args = dict(n_users=10, n_items=10, n_ratings=50, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        make_synthetic(**args)

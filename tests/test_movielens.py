"""The MovieLens-100K loader: feature layout on known rows, and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ttm_jax.data import load_movielens, read_movielens
from ttm_jax.data.movielens import AGE_BUCKETS, GENRES, OCCUPATIONS

N_USER_COV = 1 + len(AGE_BUCKETS) + 2 + len(OCCUPATIONS) + 11  # 42
N_ITEM_COV = len(GENRES) + 2 + 8  # 29


def col(names, name):
    return names.index(name)


# --- the real files (skipped when ../shared/datasets/ml-100k is absent) -------------


@pytest.fixture(scope="module")
def ml(movielens_dir):
    return read_movielens(movielens_dir)


def test_shapes_and_ratings(ml):
    assert ml.data.user_features.shape == (943, N_USER_COV)
    assert ml.data.item_features.shape == (1682, N_ITEM_COV)
    assert ml.data.n_ratings == 100_000
    assert len(ml.user_columns) == N_USER_COV and len(ml.item_columns) == N_ITEM_COV
    # Every covariate lies in [0, 1] (SPEC §5's support).
    for x in (ml.data.user_features, ml.data.item_features):
        assert x.min() >= 0 and x.max() <= 1
    # First line of u.data: "196	242	3	881250949".
    assert ml.user_raw_ids[ml.data.user_ids[0]] == 196
    assert ml.item_raw_ids[ml.data.item_ids[0]] == 242
    assert ml.data.ratings[0] == 3 and ml.timestamps[0] == 881250949
    counts = np.bincount(ml.data.ratings.astype(int), minlength=6)[1:]
    assert counts.tolist() == [6110, 11370, 27145, 34174, 21201]


def test_user_one_covariates(ml):
    # u.user line 1: "1|24|M|technician|85711"
    x, names = ml.data.user_features[0], ml.user_columns
    assert x[col(names, "age")] == pytest.approx(0.24)
    on = {names[k] for k in np.flatnonzero(x[1:]) + 1}
    assert on == {"age:18-24", "gender:M", "occupation:technician", "zip:8"}


def test_canadian_zip_is_non_us(ml):
    non_us = ml.data.user_features[:, col(ml.user_columns, "zip:non-us")]
    # Each user has exactly one zip column set; a few have non-US postcodes.
    zips = ml.data.user_features[:, [k for k, n in enumerate(ml.user_columns) if n.startswith("zip:")]]
    assert (zips.sum(axis=1) == 1).all()
    assert 0 < non_us.sum() < 50


def test_toy_story_and_the_unknown_movie(ml):
    names = ml.item_columns
    toy = ml.data.item_features[0]  # "1|Toy Story (1995)|01-Jan-1995|..."
    assert {names[k] for k in np.flatnonzero(toy)} == {
        "genre:Animation", "genre:Children's", "genre:Comedy", "year", "decade:1990s"
    }
    assert toy[col(names, "year")] == pytest.approx(0.95)
    unknown = ml.data.item_features[list(ml.item_raw_ids).index(267)]  # no release date
    assert unknown[col(names, "year:missing")] == 1
    assert unknown[[col(names, f"decade:{d}s") for d in range(1920, 2000, 10)]].sum() == 0


def test_one_hot_ids_are_gone_with_a_note(movielens_dir):
    # Ids are embedding tables in the model now (ModelConfig(user_ids=True)).
    with pytest.raises(ValueError, match=r"ModelConfig\(user_ids=True, item_ids=True\)"):
        load_movielens(movielens_dir, user_ids=True, item_ids=True)
    with pytest.raises(ValueError, match="embedding tables"):
        read_movielens(movielens_dir, item_ids=True)


def test_title_words(movielens_dir):
    ml = read_movielens(movielens_dir, title_words=10)
    words = [n for n in ml.item_columns if n.startswith("title:")]
    assert len(words) == 10 and "title:the" not in words
    assert ml.data.item_features.shape == (1682, N_ITEM_COV + 10)


# --- small hand-written folders --------------------------------------------------------

USERS = "1|24|M|technician|85711\n2|53|F|other|T8H1N\n"
ITEMS = (
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|Old Film (1925)|01-Jan-1925||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
)
RATINGS = "1\t1\t5\t881250949\n2\t1\t3\t881250950\n2\t2\t4\t881250951\n"


def write_folder(tmp_path: Path, users=USERS, items=ITEMS, ratings=RATINGS) -> Path:
    for name, text in (("u.user", users), ("u.item", items), ("u.data", ratings)):
        if text is not None:
            (tmp_path / name).write_text(text, encoding="latin-1")
    return tmp_path


def test_tiny_folder_round_trip(tmp_path):
    ml = read_movielens(write_folder(tmp_path))
    assert ml.data.n_users == 2 and ml.data.n_items == 2 and ml.data.n_ratings == 3
    x2 = ml.data.user_features[1]
    assert x2[col(ml.user_columns, "gender:F")] == 1
    assert x2[col(ml.user_columns, "zip:non-us")] == 1
    assert x2[col(ml.user_columns, "age:50-55")] == 1
    old = ml.data.item_features[1]
    assert old[col(ml.item_columns, "decade:1920s")] == 1
    assert old[col(ml.item_columns, "year")] == pytest.approx(0.25)


@pytest.mark.parametrize("missing", ["u.user", "u.item", "u.data"])
def test_missing_file_is_named(tmp_path, missing):
    kwargs = {"users": USERS, "items": ITEMS, "ratings": RATINGS}
    kwargs[{"u.user": "users", "u.item": "items", "u.data": "ratings"}[missing]] = None
    with pytest.raises(FileNotFoundError, match=missing):
        read_movielens(write_folder(tmp_path, **kwargs))


@pytest.mark.parametrize(
    ("kwargs", "file", "line", "hint"),
    [
        ({"ratings": RATINGS + "1\t2\t4\n"}, "u.data", 4, "4 tab-separated"),
        ({"ratings": "1\t1\tfive\t8\n"}, "u.data", 1, "rating 'five'"),
        ({"ratings": RATINGS + "9\t1\t4\t8\n"}, "u.data", 4, "user id 9 has no row"),
        ({"ratings": RATINGS + "1\t7\t4\t8\n"}, "u.data", 4, "item id 7 has no row"),
        ({"users": USERS + "3|30|M|astronaut|12345\n"}, "u.user", 3, "occupation 'astronaut'"),
        ({"users": USERS + "3|30|X|other|12345\n"}, "u.user", 3, "gender 'X'"),
        ({"users": "1|24|M|technician\n"}, "u.user", 1, "5 '|'-separated"),
        ({"users": USERS + "1|30|M|other|12345\n"}, "u.user", 3, "occurs twice"),
        ({"items": ITEMS.replace("01-Jan-1925", "1925/01/01")}, "u.item", 2, "dd-Mon-yyyy"),
        ({"items": ITEMS.replace("|0|0|0|0|0|0|0|0|1|", "|0|0|0|0|0|0|0|0|7|")}, "u.item", 2,
         "genre flag"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, kwargs, file, line, hint):
    with pytest.raises(ValueError, match=rf"{file}, line {line}: .*{hint}"):
        read_movielens(write_folder(tmp_path, **kwargs))


def test_duplicate_rating_is_reported_by_movielens_ids_and_lines(tmp_path):
    with pytest.raises(ValueError, match="u.data, line 4: user 1 rated item 1 already on line 1"):
        read_movielens(write_folder(tmp_path, ratings=RATINGS + "1\t1\t2\t9\n"))


@pytest.mark.parametrize("rating", ["55", "-3", "0", "3.5", "6"])
def test_a_rating_outside_one_to_five_stars_is_refused_by_line(tmp_path, rating):
    ratings = RATINGS + f"1\t2\t{rating}\t881250952\n"
    with pytest.raises(ValueError, match=rf"u.data, line 4: rating '{rating}' is not one of "
                                         "MovieLens-100K's whole stars 1 to 5"):
        read_movielens(write_folder(tmp_path, ratings=ratings))


@pytest.mark.parametrize("cut", ["1\t2\t4\t8812", "1\t2\t4", "1\t2"])
def test_a_file_cut_mid_line_is_refused_naming_the_line(tmp_path, cut):
    # "1\t2\t4\t8812" would parse: only the missing line break gives the cut away.
    with pytest.raises(ValueError, match="u.data, line 4: the last line has no line break, so "
                                         "the file was cut mid-line"):
        read_movielens(write_folder(tmp_path, ratings=RATINGS + cut))


def test_the_preset_learns_movielens_and_scores_cold_users_by_their_covariates(movielens_dir):
    import ttm_jax
    from ttm_jax import TwoTowerRegressor, cold_start_split, evaluate
    from ttm_jax.presets import MOVIELENS_TITLE_WORDS

    data = read_movielens(movielens_dir, title_words=MOVIELENS_TITLE_WORDS).data
    split = cold_start_split(data, user_fraction=0.2, test_fraction=0.2, seed=3)
    reg = TwoTowerRegressor(*ttm_jax.presets.movielens_100k(), seed=0, progress=False)
    ev = evaluate(reg.fit(split.train).predict(split.test), split.test, split.train)
    # The held-out users read the id table's unknown row: only their covariates differ.
    cold = np.isin(split.test.user_ids, np.unique(split.train.user_ids), invert=True)
    assert not reg.model_.user_tower.seen_ids()[split.test.user_ids[cold]].any()
    mean = split.train.ratings.mean()
    assert ev.warm.rmse < 0.94
    assert ev.cold_user.rmse < 0.95 * np.sqrt(np.mean((split.test.ratings[cold] - mean) ** 2))

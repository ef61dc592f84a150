"""The Yelp loader on small JSON-lines files written here, where the right answer is known."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ttm_jax.data.yelp import (
    YELP_FILES,
    AspectResourcesMissing,
    aspect_backend,
    aspect_polarity_sums,
    read_yelp,
)

# Phoenix has 3 businesses and Tinytown 1. With min_city_businesses=3 and
# min_business_reviews=3, b1 and b3 are kept; b2 (review_count 2) and b4
# (its city is too small) are dropped.
BUSINESSES = [
    {"business_id": "b1", "city": "Phoenix", "state": "AZ", "review_count": 5,
     "categories": "Food, Bars"},
    {"business_id": "b2", "city": "Phoenix", "state": "AZ", "review_count": 2,
     "categories": "Food"},
    {"business_id": "b3", "city": " Phoenix ", "state": "AZ", "review_count": 3,
     "categories": "Food"},
    {"business_id": "b4", "city": "Tinytown", "state": "NV", "review_count": 50,
     "categories": None},
]
REVIEWS = [
    {"user_id": "u1", "business_id": "b1", "stars": 4, "date": "2015-01-01",
     "text": "great tacos and great salsa"},
    {"user_id": "u1", "business_id": "b3", "stars": 2, "date": "2015-02-01",
     "text": "slow service, cold fries"},
    {"user_id": "u2", "business_id": "b1", "stars": 5, "date": "2016-01-01",
     "text": "amazing margaritas"},
    {"user_id": "u2", "business_id": "b2", "stars": 3, "date": "2016-01-02",
     "text": "fine"},
    {"user_id": "u3", "business_id": "b4", "stars": 1, "date": "2016-01-03",
     "text": "awful"},
    # u1 reviews b1 again later: the later stars (5) are the rating.
    {"user_id": "u1", "business_id": "b1", "stars": 5, "date": "2017-03-01",
     "text": "great tacos again"},
]
USERS = [
    {"user_id": "u1", "elite": "2012,2013", "useful": 10, "cool": 0, "funny": 3},
    {"user_id": "u2", "elite": "", "useful": 0, "cool": 4, "funny": 0},
    {"user_id": "u3", "elite": "", "useful": 1, "cool": 1, "funny": 1},
]
FILTERS = dict(min_city_businesses=3, min_business_reviews=3)


def write(folder: Path, businesses=BUSINESSES, reviews=REVIEWS, users=USERS) -> Path:
    for role, rows in (("business", businesses), ("review", reviews), ("user", users)):
        lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
        (folder / YELP_FILES[role]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def ratings_of(y):
    d = y.data
    return {
        (y.user_raw_ids[u], y.business_raw_ids[b], float(r))
        for u, b, r in zip(d.user_ids, d.item_ids, d.ratings)
    }


def test_filters_keep_the_known_businesses_users_and_ratings(tmp_path):
    y = read_yelp(write(tmp_path), n_terms=5, **FILTERS)
    assert y.business_raw_ids == ("b1", "b3")
    assert y.user_raw_ids == ("u1", "u2")
    assert ratings_of(y) == {("u1", "b1", 5.0), ("u1", "b3", 2.0), ("u2", "b1", 5.0)}


def test_user_filter(tmp_path):
    # u1 has 3 reviews of kept businesses, u2 one.
    y = read_yelp(write(tmp_path), n_terms=5, min_user_reviews=2, **FILTERS)
    assert y.user_raw_ids == ("u1",)
    assert ratings_of(y) == {("u1", "b1", 5.0), ("u1", "b3", 2.0)}


def test_loose_filters_keep_everything(tmp_path):
    y = read_yelp(write(tmp_path), n_terms=5, min_city_businesses=1, min_business_reviews=0)
    assert y.business_raw_ids == ("b1", "b2", "b3", "b4")
    assert y.data.n_ratings == 5


def test_item_covariates(tmp_path):
    y = read_yelp(write(tmp_path), n_terms=5, **FILTERS)
    cov = [c for c in y.item_columns if not c.startswith("tfidf:")]
    # One kept city (b3's padded name is trimmed); categories by frequency.
    assert cov == ["city:Phoenix, AZ", "category:Food", "category:Bars"]
    x = y.data.item_features[:, : len(cov)]
    np.testing.assert_array_equal(x, [[1, 1, 1], [1, 1, 0]])
    assert y.data.item_features.shape == (2, 3 + 5)


def test_user_covariates(tmp_path):
    y = read_yelp(write(tmp_path), n_terms=5, **FILTERS)
    assert y.user_columns[:4] == ("elite", "useful", "cool", "funny")
    x = y.data.user_features[:, :4]
    # elite binarised; counts as log1p(c) / log1p(max over kept users).
    np.testing.assert_allclose(x, [[1, 1, 0, 1], [0, 0, 1, 0]], atol=1e-6)
    assert y.data.user_features.shape == (2, 4 + 5)


def test_tfidf_averages(tmp_path):
    y = read_yelp(write(tmp_path), n_terms=300, **FILTERS)
    terms = list(y.terms)
    assert 0 < len(terms) <= 300
    assert "great tacos" in terms  # bigrams are in the vocabulary
    u = y.data.user_features[:, 4:]
    b = y.data.item_features[:, -len(terms):]
    k = terms.index("margaritas")
    # Only u2 (on b1) wrote "margaritas"; u2 has one review, b1 three.
    assert u[0, k] == 0 and u[1, k] > 0
    assert b[1, k] == 0 and b[0, k] == pytest.approx(u[1, k] / 3, rel=1e-5)
    # A single review's vector is L2-normalised.
    assert np.linalg.norm(u[1]) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
    ("role", "rows", "line", "hint"),
    [
        ("review", REVIEWS[:1] + ["{not json"], 2, "not valid JSON"),
        ("review", REVIEWS[:1] + [{"user_id": "u1", "business_id": "b1"}], 2, "stars"),
        ("business", BUSINESSES[:2] + [{"business_id": "b9", "city": "X", "state": "Y"}], 3,
         "review_count"),
        ("business", BUSINESSES + [BUSINESSES[0]], 5, "occurs twice"),
        ("user", [{"user_id": "u1", "useful": "lots"}], 1, "useful"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, role, rows, line, hint):
    write(tmp_path, **{{"review": "reviews", "business": "businesses", "user": "users"}[role]: rows})
    with pytest.raises(ValueError, match=rf"{YELP_FILES[role]}, line {line}: .*{hint}"):
        read_yelp(tmp_path, n_terms=5, **FILTERS)


def test_a_latin1_file_is_named_with_its_line_not_a_traceback(tmp_path):
    write(tmp_path)
    path = tmp_path / YELP_FILES["review"]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace("amazing", "café")
    path.write_bytes("".join(lines).encode("latin-1"))  # é is one byte, 0xe9, in latin-1
    with pytest.raises(ValueError, match=rf"{YELP_FILES['review']}, line 3: byte 0xe9 at column "
                                         r"\d+ is not UTF-8 .*iconv -f latin1"):
        read_yelp(tmp_path, n_terms=5, **FILTERS)


@pytest.mark.parametrize(("field", "value"), [("text", 42), ("text", ["great"]),
                                              ("user_id", 7), ("business_id", None)])
def test_a_field_of_the_wrong_type_is_named_with_its_line(tmp_path, field, value):
    reviews = [dict(r) for r in REVIEWS]
    reviews[1][field] = value
    write(tmp_path, reviews=reviews)
    with pytest.raises(ValueError, match=rf"{YELP_FILES['review']}, line 2: field '{field}' is "
                                         rf"{re.escape(repr(value))}, not a"):
        read_yelp(tmp_path, n_terms=5, **FILTERS)


def test_a_null_or_missing_text_counts_as_an_empty_review(tmp_path):
    reviews = [dict(r) for r in REVIEWS]
    reviews[2]["text"] = None  # u2's one kept review
    del reviews[1]["text"]
    y = read_yelp(write(tmp_path, reviews=reviews), n_terms=5, **FILTERS)
    assert y.data.n_ratings == 3
    tfidf = [k for k, c in enumerate(y.user_columns) if c.startswith("tfidf:")]
    u2 = y.user_raw_ids.index("u2")
    assert not y.data.user_features[u2, tfidf].any()


def test_user_missing_from_user_file(tmp_path):
    write(tmp_path, users=USERS[:1])
    with pytest.raises(ValueError, match="user_id 'u2'.*line 3 of .*review"):
        read_yelp(tmp_path, n_terms=5, **FILTERS)


def test_a_missing_user_is_named_with_its_own_first_line_whatever_the_order(tmp_path):
    # u2 reviews first but sorts second: the line must follow the user, not the order.
    write(tmp_path, reviews=[REVIEWS[2], *REVIEWS[:2], *REVIEWS[3:]], users=USERS[:1])
    with pytest.raises(ValueError, match="user_id 'u2'.*line 1 of .*review"):
        read_yelp(tmp_path, n_terms=5, **FILTERS)


def test_filters_that_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match="no business passes the filters"):
        read_yelp(write(tmp_path), min_city_businesses=10)


def test_missing_file(tmp_path):
    write(tmp_path)
    (tmp_path / YELP_FILES["user"]).unlink()
    with pytest.raises(FileNotFoundError, match=YELP_FILES["user"]):
        read_yelp(tmp_path, **FILTERS)


def test_aspects_without_resources_name_what_is_missing(tmp_path):
    # No such spaCy model exists, so this fails whatever is installed; the
    # message names spaCy (the package or the model).
    with pytest.raises(AspectResourcesMissing, match="(?i)spacy"):
        aspect_backend("xx_no_such_model")
    with pytest.raises(AspectResourcesMissing, match="(?i)spacy"):
        read_yelp(write(tmp_path), aspects=True, spacy_model="xx_no_such_model", **FILTERS)


def test_aspect_polarity_sums_on_stub_documents():
    def tok(word, pos="NOUN"):
        return SimpleNamespace(lemma_=word, pos_=pos, is_alpha=True)

    class Sent(list):
        text = ""

    good = Sent([tok("taco"), tok("be", "AUX"), tok("great", "ADJ")])
    good.text = "good"
    bad = Sent([tok("service"), tok("taco")])
    bad.text = "bad"
    docs = [SimpleNamespace(sents=[good, bad]), SimpleNamespace(sents=[bad])]
    sums, counts = aspect_polarity_sums(
        docs, {"good": 0.8, "bad": -0.5}.__getitem__, ["taco", "service", "price"]
    )
    np.testing.assert_allclose(sums, [[0.3, -0.5, 0], [-0.5, -0.5, 0]])
    np.testing.assert_array_equal(counts, [[2, 1, 0], [1, 1, 0]])

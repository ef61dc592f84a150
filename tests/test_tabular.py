"""The CSV/Parquet readers of the command line: ids are text (``NA`` and ``None``
included), and every bad value is named by file, column, row and line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ttm_jax.data.tabular import TabularError, lookup_ids, read_covariates, read_ratings


def write(path, text: str):
    path.write_text(text)
    return path


def test_na_none_nan_and_null_are_ids_like_any_other(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item,rating\nNA,None,1\nnan,null,2\nNone,NA,3\n")
    users = write(tmp_path / "u.csv", "user,x\nNA,0.5\nnan,1.5\nNone,2.5\n")
    table = read_ratings(ratings)
    assert table.users.tolist() == ["NA", "nan", "None"]
    assert table.items.tolist() == ["None", "null", "NA"]
    covariates = read_covariates(users, id_col="user")
    rows = lookup_ids(table.users, covariates.ids, path=ratings, column="user", known_from="u.csv")
    assert covariates.features[rows, 0].tolist() == [0.5, 1.5, 2.5]


def test_only_an_empty_field_is_a_missing_id(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item,rating\nNA,a,1\n,b,2\n")
    with pytest.raises(TabularError, match=r"r.csv: column 'user', row 1 \(line 3\): the id is "
                                           "empty"):
        read_ratings(ratings)
    blank = write(tmp_path / "b.csv", "user,item,rating\nNA,a,1\n   ,b,2\n")
    with pytest.raises(TabularError, match=r"row 1 \(line 3\): the id is empty"):
        read_ratings(blank)


def test_a_parquet_null_is_a_missing_id_and_the_text_none_is_not(tmp_path):
    frame = pd.DataFrame({"user": ["None", None], "item": ["a", "b"], "rating": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    with pytest.raises(TabularError, match=r"r.parquet: column 'user', row 1: the id is empty"):
        read_ratings(tmp_path / "r.parquet")


@pytest.mark.parametrize("cell, message", [
    ("NA", "value 'NA' is not a number"),
    ("", "the value is empty"),
    ("inf", "value 'inf' is not finite"),
    ("1e39", "value 1e\\+39 is larger than 3.4e\\+38 in size; it does not fit in float32"),
])
def test_a_bad_covariate_is_named_by_row_and_line(tmp_path, cell, message):
    users = write(tmp_path / "u.csv", f"user,x,y\na,1,2\nb,3,{cell}\n")
    with pytest.raises(TabularError, match=rf"u.csv: column 'y', row 1 \(line 3\): {message}"):
        read_covariates(users, id_col="user")


def test_an_absurd_rating_is_refused_by_its_line(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item,rating\na,x,4\nb,x,1e30\n")
    with pytest.raises(TabularError, match=r"r.csv: column 'rating', row 1 \(line 3\): value "
                                           r"1e\+30 is larger than 1e\+18 in size; such a rating "
                                           "is a data error"):
        read_ratings(ratings)


def test_a_rating_written_na_is_not_a_number(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item,rating\na,x,NA\n")
    with pytest.raises(TabularError, match=r"row 0 \(line 2\): value 'NA' is not a number"):
        read_ratings(ratings)


def test_valid_files_read_as_written(tmp_path):
    ratings = write(tmp_path / "r.csv", "user,item,rating\n 7 ,x,4.5\n007,x,3\n")
    table = read_ratings(ratings)
    assert table.users.tolist() == ["7", "007"]  # text, trimmed: 7 and 007 differ
    np.testing.assert_array_equal(table.ratings, np.array([4.5, 3.0], np.float32))

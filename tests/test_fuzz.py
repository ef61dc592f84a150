"""Property-based fuzz tests of the library's boundaries (issue 22).

For every generated input, the answer is either a correct result or an error of
the documented type that the library raised itself, naming the field, file or
option at fault: never an exception from inside jax, numpy, pandas or orbax,
and never a changed or deleted file that the library did not write.

What is generated (counts: benchmarks/RESULTS.md, "Fuzz tests (issue 22)"):

- ModelConfig / TrainConfig from arbitrary field values (wrong types included);
- RatingData from valid tables with one field replaced by an arbitrary array
  (any dtype, shape, NaN/inf/huge values, ragged lists);
- ``ttm_jax fit`` on generated CSV files (odd ids, one corruption each, or none);
- saved-model folders with random damage (files truncated, flipped, deleted or
  added; metadata.json edited, with or without a recomputed checksum).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import numbers
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ttm_jax
import ttm_jax.io
from ttm_jax import ModelConfig, RatingData, TrainConfig
from ttm_jax.checks import INT32_MAX, InvalidArgument
from ttm_jax.config import ACTIVATION_NAMES, OPTIMIZERS, PENALTIES, TOWER_MODES

PACKAGE = Path(ttm_jax.__file__).resolve().parent


def examples(n: int) -> int:
    """``n`` cases under the default profile (25 examples), proportionally more under
    HYPOTHESIS_PROFILE=ttm-thorough."""
    return n * max(1, settings.default.max_examples // 25)


def raised_here(err: BaseException) -> bool:
    """Whether ``err`` was raised by ttm_jax's own code (its traceback's last frame)."""
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def assert_ours(err: BaseException, types, names) -> None:
    """``err`` is one of ``types``, raised by ttm_jax, and its message names one of ``names``."""
    assert isinstance(err, types), f"{type(err).__name__}: {err}"
    assert raised_here(err), f"raised outside ttm_jax: {type(err).__name__}: {err}"
    assert any(name in str(err) for name in names), f"names none of {names}: {err}"


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- configurations -----------------------------------------------------------------------

ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.integers(2**31 - 2, 2**64),
    st.integers(min_value=10**309), st.just(10**5000),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.lists(st.integers(-2, 70), max_size=3), st.tuples(st.integers(0, 64)),
    st.integers(-5, 300).map(np.int64), st.floats(-10, 1e4, width=32).map(np.float32),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1), st.just(object()),
    st.just(np.array([8, 8])), st.just(np.bool_(True)),
)
VALID = {
    "hidden": st.lists(st.integers(1, 64), max_size=3).map(tuple),
    "embedding_dim": st.integers(1, 64), "activation": st.sampled_from(ACTIVATION_NAMES),
    "standardize": st.booleans(), "center_ratings": st.booleans(),
    "optimizer": st.sampled_from(OPTIMIZERS), "penalty": st.sampled_from(PENALTIES),
    "tower_mode": st.sampled_from(TOWER_MODES), "proximal": st.booleans(),
    "batch_size": st.integers(1, 10**4), "max_epochs": st.integers(1, 10**4),
    "eval_every_epochs": st.integers(1, 50), "patience": st.integers(1, 50),
    "max_seconds": st.one_of(st.none(), st.floats(1e-3, 1e4)),
    "grad_clip": st.one_of(st.none(), st.floats(1e-3, 1e4)),
}
_REAL = st.floats(0.0, 10.0)


@st.composite
def _fields(draw, cls) -> dict:
    """Valid values for some fields, then arbitrary values (any type) for up to two."""
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = draw(st.fixed_dictionaries({}, optional={n: VALID.get(n, _REAL) for n in names}))
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        kwargs[name] = draw(ANY)
    return kwargs


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_)


def _well_typed(config) -> None:
    """Every field of a constructed configuration has its declared type and range."""
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        kind = str(f.type)
        if f.name == "hidden":
            assert isinstance(v, tuple) and all(_is_int(w) and 1 <= w <= INT32_MAX for w in v)
        elif kind == "bool":
            assert isinstance(v, bool)
        elif kind == "int":
            assert _is_int(v) and 1 <= v <= INT32_MAX
        elif kind == "str":
            assert isinstance(v, str)
        else:  # float, or float | None
            assert (v is None and "None" in kind) or (
                isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
                and math.isfinite(v) and v >= 0)


@settings(max_examples=examples(500))
@given(cls=st.sampled_from([ModelConfig, TrainConfig]), data=st.data())
def test_a_configuration_is_well_typed_or_its_error_names_the_field(cls, data):
    kwargs = data.draw(_fields(cls))
    try:
        config = cls(**kwargs)
    except Exception as err:  # which ones are expected is asserted
        event(f"{cls.__name__}: refused")
        assert_ours(err, InvalidArgument, [f.name for f in dataclasses.fields(cls)])
        return
    event(f"{cls.__name__}: built")
    _well_typed(config)
    if isinstance(config, TrainConfig):
        assert not config.proximal or config.penalty == "l1"
        assert config.decay_rate >= 1 or config.min_learning_rate <= config.learning_rate


# --- RatingData ------------------------------------------------------------------------------

FIELDS = ("user_features", "item_features", "user_ids", "item_ids", "ratings")
_DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.int64,
                           np.uint8, np.bool_, np.complex64, "U3", object])


@st.composite
def arbitrary_arrays(draw):
    dtype = np.dtype(draw(_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    if dtype.kind == "O":
        return draw(hnp.arrays(dtype, shape, elements=st.one_of(
            st.integers(-3, 3), st.floats(), st.text(max_size=2), st.none())))
    return draw(hnp.arrays(dtype, shape))


RAGGED = st.just([[1.0], [1.0, 2.0]])


@st.composite
def rating_data_fields(draw):
    """Valid fields of a small RatingData, then maybe one replaced by an arbitrary value."""
    n_u, n_i = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    d_u, d_i = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    finite = st.floats(-1e6, 1e6, width=32)
    cells = sorted(draw(st.sets(st.integers(0, n_u * n_i - 1), min_size=1, max_size=n_u * n_i)))
    pairs = [(c // n_i, c % n_i) for c in cells]
    fields = {
        "user_features": draw(hnp.arrays(np.float64, (n_u, d_u), elements=finite)),
        "item_features": draw(hnp.arrays(np.float32, (n_i, d_i), elements=finite)),
        "user_ids": np.array([u for u, _ in pairs]),
        "item_ids": np.array([i for _, i in pairs]),
        "ratings": draw(hnp.arrays(np.float64, len(pairs), elements=st.floats(-5, 5))),
    }
    broken = draw(st.sampled_from((None, *FIELDS)))
    if broken is not None:
        fields[broken] = draw(st.one_of(arbitrary_arrays(), RAGGED, ANY))
    event(f"replaced: {broken}")
    return fields


@settings(max_examples=examples(500))
@given(fields=rating_data_fields())
def test_rating_data_is_valid_or_its_error_names_the_field(fields):
    try:
        data = RatingData(**fields)
    except Exception as err:
        event("refused")
        assert_ours(err, (ValueError, TypeError), FIELDS)
        return
    event("built")
    for name in FIELDS:
        value = getattr(data, name)
        assert not value.flags.writeable
        if name.endswith("ids"):
            assert value.dtype == np.int32 and value.ndim == 1
        else:
            assert value.dtype == np.float32 and np.isfinite(value).all()
            np.testing.assert_array_equal(value, np.asarray(fields[name]).astype(np.float32))
    assert 0 <= data.user_ids.min() and data.user_ids.max() < data.n_users
    assert 0 <= data.item_ids.min() and data.item_ids.max() < data.n_items
    assert len(set(zip(data.user_ids.tolist(), data.item_ids.tolist()))) == data.n_ratings


# --- the command line's fit on generated CSV files ----------------------------------------------

ODD_IDS = ["NA", "None", "nan", "null", "007", "7", "ü", "a b", 'q"t', "c,d", "-", "TRUE"]
CORRUPTIONS = {  # what a run with each must name in its error
    "none": None, "missing_rating_column": "ratings.csv", "text_rating": "ratings.csv",
    "empty_rating": "ratings.csv", "na_rating": "ratings.csv", "huge_rating": "ratings.csv",
    "inf_rating": "ratings.csv", "empty_id": "ratings.csv", "duplicate_pair": "ratings.csv",
    "unknown_user": "ratings.csv", "unrated_item": "items.csv", "text_covariate": "users.csv",
    "empty_covariate": "items.csv", "duplicate_covariate_id": "users.csv",
    "empty_file": "items.csv", "header_only": "ratings.csv", "not_text": "users.csv",
    "model_is_a_file": "model", "model_folder_of_another_tool": "model",
    "bad_option": "--",
}
BAD_OPTIONS = [("--validation-fraction", "-0.5"), ("--validation-fraction", "nan"),
               ("--epochs", "0"), ("--hidden", "0"), ("--batch-size", "0"),
               ("--learning-rate", "inf"), ("--checkpoint-every", "0")]


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


@st.composite
def fit_inputs(draw):
    """A small valid data set as CSV rows (odd ids included), a bad option and a hold-out."""
    names = st.lists(st.sampled_from(ODD_IDS + [f"id{k}" for k in range(8)]), min_size=2,
                     max_size=5, unique=True)
    users, items = draw(names), draw(names)
    cells = draw(st.sets(st.integers(0, len(users) * len(items) - 1), min_size=2, max_size=12))
    pairs = [(users[c // len(items)], items[c % len(items)]) for c in sorted(cells)]
    ratings = [[u, i, draw(st.integers(1, 5))] for u, i in pairs]
    covariate = st.floats(-3, 3, allow_subnormal=False).map(lambda v: round(v, 3))
    user_rows = [[u, draw(covariate), draw(covariate)] for u in sorted({u for u, _ in pairs})]
    item_rows = [[i, draw(covariate)] for i in sorted({i for _, i in pairs})]
    option = draw(st.sampled_from(BAD_OPTIONS))
    fraction = draw(st.sampled_from(["0", "0.3"]))
    return ratings, user_rows, item_rows, option, fraction


def _corrupt(work: Path, corruption: str, ratings, user_rows, item_rows) -> None:
    """Apply ``corruption`` to the rows (in place) or to the files in ``work``."""
    if corruption in ("text_rating", "empty_rating", "na_rating", "huge_rating", "inf_rating"):
        ratings[-1][2] = {"text_rating": "five", "empty_rating": "", "na_rating": "NA",
                          "huge_rating": "1e30", "inf_rating": "-inf"}[corruption]
    elif corruption == "empty_id":
        ratings[0][0] = " "
    elif corruption == "duplicate_pair":
        ratings.append(list(ratings[0]))
    elif corruption == "unknown_user":
        ratings.append(["nobody-at-all", ratings[0][1], 3])
    elif corruption == "unrated_item":
        item_rows.append(["never-rated", 0.5])
    elif corruption == "text_covariate":
        user_rows[-1][1] = "tall"
    elif corruption == "empty_covariate":
        item_rows[0][1] = ""
    elif corruption == "duplicate_covariate_id":
        user_rows.append(list(user_rows[0]))
    elif corruption == "model_is_a_file":
        (work / "model").write_text("my notes, not a model")
    elif corruption == "model_folder_of_another_tool":
        (work / "model").mkdir()
        (work / "model" / "metadata.json").write_text('{"format": "other.tool"}')
        (work / "model" / "results.txt").write_text("keep me")


def _write_inputs(work: Path, corruption: str, ratings, user_rows, item_rows) -> None:
    _corrupt(work, corruption, ratings, user_rows, item_rows)
    header = ["user", "item", "stars" if corruption == "missing_rating_column" else "rating"]
    _csv(work / "ratings.csv", header, [] if corruption == "header_only" else ratings)
    _csv(work / "users.csv", ["user", "x0", "x1"], user_rows)
    _csv(work / "items.csv", ["item", "y0"], item_rows)
    if corruption == "empty_file":
        (work / "items.csv").write_bytes(b"")
    elif corruption == "not_text":
        (work / "users.csv").write_bytes(b"user,x0\n\xff\xfe\x00,1\n")
    (work / "notes.txt").write_text("the user's own file")


def _run(*argv) -> tuple[int, str]:
    from ttm_jax.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def _check_fitted(model: Path, ratings, user_rows) -> None:
    """A fitted model folder holds exactly the files' ids and ratings."""
    saved = ttm_jax.load_model(model)
    assert sorted(saved.arrays["user_ids"].tolist()) == sorted(str(r[0]).strip()
                                                               for r in user_rows)
    stored = {(saved.arrays["user_ids"][u], saved.arrays["item_ids"][i]): r for u, i, r in zip(
        saved.arrays["rated_users"], saved.arrays["rated_items"], saved.arrays["ratings"])}
    assert stored == {(str(u).strip(), str(i).strip()): float(r) for u, i, r in ratings}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@settings(max_examples=examples(5))
@given(inputs=fit_inputs())
def test_fit_on_generated_csv_files_fits_or_names_the_file(corruption, inputs):
    ratings, user_rows, item_rows, option, fraction = inputs
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _write_inputs(work, corruption, ratings, user_rows, item_rows)
        before = snapshot(work)
        extra = option if corruption == "bad_option" else ()
        code, err = _run("fit", "--ratings", work / "ratings.csv", "--user-features",
                         work / "users.csv", "--item-features", work / "items.csv",
                         "--model", work / "model", "--hidden", "4", "--embedding-dim", "2",
                         "--epochs", "1", "--batch-size", "8", "--no-progress",
                         "--validation-fraction", fraction, *extra)
        event(f"exit {code}")
        # Inputs and the user's files, inside a refused model folder too, are untouched.
        after = snapshot(work)
        assert {k: v for k, v in after.items() if k in before} == before
        if code == 0:
            assert corruption == "none", err
            _check_fitted(work / "model", ratings, user_rows)
            return
        assert code == 2 and err.startswith("ttm_jax: error: ") and "Traceback" not in err, err
        assert CORRUPTIONS[corruption] is None or CORRUPTIONS[corruption] in err, err
        if corruption == "none":  # only a hold-out too small for the data may refuse it
            assert "leave an empty part" in err, err
        assert set(after) == set(before)  # nothing written


# --- saved-model folders with random damage -------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model folder written by ``ttm_jax fit``, its model, and a user id to ask about."""
    work = tmp_path_factory.mktemp("fuzz_saved")
    ratings = [[f"u{k % 6}", f"i{k % 5}", 1 + k % 5] for k in range(30)]
    _write_inputs(work, "none", ratings, [[f"u{k}", k / 10, 1 - k / 10] for k in range(6)],
                  [[f"i{k}", k / 5] for k in range(5)])
    code, err = _run("fit", "--ratings", work / "ratings.csv", "--user-features",
                     work / "users.csv", "--item-features", work / "items.csv", "--model",
                     work / "model", "--hidden", "4", "--embedding-dim", "2", "--epochs", "1",
                     "--no-progress", "--validation-fraction", "0")
    assert code == 0, err
    return work / "model", ttm_jax.load_model(work / "model")


def _scores(model) -> np.ndarray:
    x_u, x_i = np.linspace(0, 1, 4).reshape(2, 2), np.linspace(0, 1, 3).reshape(3, 1)
    return ttm_jax.embed_users(model, x_u) @ ttm_jax.embed_items(model, x_i).T


EDIT_VALUES = [None, 7, -1, "x", [], {}, 1e308, True, [10**12], {"format": "other"}]


@st.composite
def damage(draw, files: list[str], meta: dict):
    """1 to 3 changes to a saved-model folder: ``(kind, target, detail)`` each."""
    keys = [(k,) for k in meta] + [(k, j) for k, v in meta.items() if isinstance(v, dict)
                                   for j in v]
    change = st.one_of(
        st.tuples(st.just("none"), st.just(""), st.none()),
        st.tuples(st.sampled_from(["truncate", "flip"]), st.sampled_from(files),
                  st.integers(0, 10**6)),
        st.tuples(st.just("delete"), st.sampled_from(files), st.none()),
        st.tuples(st.just("add"), st.sampled_from(["extra.bin", "PAYLOAD/extra.bin"]),
                  st.binary(max_size=8)),
        st.tuples(st.sampled_from(["edit", "edit+reseal"]), st.sampled_from(keys),
                  st.sampled_from(EDIT_VALUES)),
        st.tuples(st.just("garbage"), st.just("metadata.json"), st.binary(max_size=20)),
    )
    return draw(st.lists(change, min_size=1, max_size=3))


def _reseal(meta: dict) -> None:
    body = {k: v for k, v in meta.items() if k != "checksum"}
    meta["checksum"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _apply(folder: Path, kind: str, target, detail) -> None:
    meta_path = folder / "metadata.json"
    if kind in ("edit", "edit+reseal"):
        try:
            meta = json.loads(meta_path.read_text())
        except (ValueError, OSError):
            return  # already garbage, or deleted
        inner = meta
        for key in target[:-1]:
            inner = inner.get(key) if isinstance(inner, dict) else None
        if isinstance(inner, dict):
            inner[target[-1]] = detail
        if kind == "edit+reseal":
            _reseal(meta)
        meta_path.write_text(json.dumps(meta))
        return
    if kind == "none":
        return
    if kind == "add":
        payload = next((p.name for p in folder.glob("payload-*")), "payload-missing")
        path = folder / target.replace("PAYLOAD", payload)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(detail)
        return
    path = folder / target
    if not path.is_file():
        return
    data = path.read_bytes()
    if kind == "delete":
        path.unlink()
    elif kind == "garbage":
        path.write_bytes(detail)
    elif kind == "truncate":
        path.write_bytes(data[: detail % max(len(data), 1)])
    elif data:  # flip one byte
        at = detail % len(data)
        path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:])


@settings(max_examples=examples(60))
@given(data=st.data())
def test_a_damaged_model_folder_is_read_correctly_or_refused_and_user_files_survive(saved, data):
    base, original = saved
    files = sorted(k for k in snapshot(base))
    changes = data.draw(damage(files, json.loads((base / "metadata.json").read_text())))
    event(f"changes: {'+'.join(sorted({c[0] for c in changes}))}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(base, folder)
        for change in changes:
            _apply(folder, *change)
        intact = _intact(base, folder)
        (folder / "notes.txt").write_text("the user's own file")
        (Path(tmp) / "beside.txt").write_text("another")
        damaged = snapshot(folder)
        _load(folder, original, intact, changes)
        code, err = _run("recommend", "--model", folder, "--users", "u1", "-k", "2")
        assert code == 0 or (code == 2 and err.startswith("ttm_jax: error: ") and
                             str(folder) in err), err
        assert snapshot(folder) == damaged  # reading never writes
        _resave(folder, original, damaged)
        assert (folder / "notes.txt").read_text() == "the user's own file"
        assert (Path(tmp) / "beside.txt").read_text() == "another"


def _intact(base: Path, folder: Path) -> bool:
    """Whether the changes left the save as it was: the same payload files, byte for byte,
    and a metadata.json with the same content (a flip flipped back, an added top file)."""
    def payload(snap):
        return {k: v for k, v in snap.items() if k.startswith("payload-")}

    try:
        same_meta = (json.loads((folder / "metadata.json").read_text()) ==
                     json.loads((base / "metadata.json").read_text()))
    except (OSError, ValueError):
        return False
    return same_meta and payload(snapshot(folder)) == payload(snapshot(base))


def _load(folder: Path, original, intact: bool, changes) -> None:
    try:
        loaded = ttm_jax.load_model(folder)
    except Exception as err:  # which ones are expected is asserted
        event(f"load: {type(err).__name__}")
        assert not intact, err
        assert_ours(err, (ttm_jax.CheckpointError, FileNotFoundError), [str(folder)])
        return
    event("load: ok")
    if intact:
        np.testing.assert_array_equal(_scores(loaded.model), _scores(original.model))
    else:  # a consistent forgery (a resealed edit) is a model, and a usable one
        assert any(kind == "edit+reseal" for kind, _, _ in changes)
        assert np.isfinite(_scores(loaded.model)).all()


def _resave(folder: Path, original, damaged: dict) -> None:
    """Saving over the damaged folder either works, keeping the user's files, or is refused
    before anything is changed."""
    try:
        ttm_jax.save_model(folder, original.model, original.config)
    except Exception as err:  # which ones are expected is asserted
        event(f"re-save: {type(err).__name__}")
        assert_ours(err, ttm_jax.io.OutputPathError, [str(folder)])
        assert snapshot(folder) == damaged
        return
    event("re-save: ok")
    np.testing.assert_array_equal(_scores(ttm_jax.load_model(folder).model),
                                  _scores(original.model))

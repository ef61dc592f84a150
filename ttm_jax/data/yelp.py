"""The Yelp Open Dataset as a :class:`~ttm_jax.data.RatingData` with SPEC §7's covariates.

Reads the JSON-lines files ``yelp_academic_dataset_business.json``,
``yelp_academic_dataset_user.json`` and ``yelp_academic_dataset_review.json``
(one JSON object per line), streaming them: the review file is several GB, so
no file is ever held in memory, only the kept pairs and running sums.

Passes: the business file once (filters and item covariates); the review file
twice (first the kept pairs, their stars and a random sample of texts to fit
the tf-idf vocabulary; then every kept review's text, folded into per-user and
per-business sums); the user file once (user covariates of kept users).

Filters (SPEC §7; thresholds are arguments):

- cities: keep businesses whose city (``"city, state"``, whitespace trimmed,
  case kept) has at least ``min_city_businesses`` businesses in the business
  file (counted before any other filter);
- businesses: of those, keep the ones whose ``review_count`` field is at least
  ``min_business_reviews`` (Yelp's own count, as the paper states it);
- users: keep users with at least ``min_user_reviews`` reviews of kept
  businesses (1: everyone who reviewed one).

A user who reviewed a business more than once keeps the latest review's stars
as the rating (Ω is a set of pairs); every review's text counts in the text
averages.

Item covariates ``[n_businesses, D_i]``: one-hot location ``city:<city, state>``,
one-hot categories ``category:<name>`` (a business can have several; names
split on ``,`` and trimmed), then the text blocks. User covariates
``[n_users, D_u]``: ``elite`` (1 if the user was elite in any year),
``useful``, ``cool``, ``funny`` as ``log1p(count) / log1p(max count over
kept users)`` (the counts are heavy-tailed; this keeps them in [0, 1]), then
the text blocks.

Text blocks (both sides): ``tfidf:<term>``, the mean over the entity's reviews
of the review's tf-idf vector over ``n_terms`` 1- to 3-grams: the terms with
the largest mean tf-idf weight on a random sample of up to ``tfidf_sample``
reviews of kept businesses (scikit-learn's ``TfidfVectorizer``, English stop words removed,
each review's vector L2-normalised). With ``aspects=True`` also
``aspect:<noun>``: for the ``n_aspects`` most frequent nouns (spaCy lemmas) of
the sample, the mean VADER compound polarity (nltk) of the sentences of the
entity's reviews that mention it, 0 where none does.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse

from ttm_jax.data.ratings import RatingData

__all__ = [
    "YELP_FILES",
    "Yelp",
    "AspectResourcesMissing",
    "load_yelp",
    "read_yelp",
    "aspect_backend",
    "aspect_polarity_sums",
]

#: File names of the Yelp Open Dataset's parts, by role.
YELP_FILES = {
    "business": "yelp_academic_dataset_business.json",
    "user": "yelp_academic_dataset_user.json",
    "review": "yelp_academic_dataset_review.json",
}


class AspectResourcesMissing(RuntimeError):
    """The aspect-sentiment features need packages or language data that are not installed."""


class Yelp(NamedTuple):
    """The Yelp data read into a :class:`RatingData`, with names.

    Attributes:
      data: covariates and ratings (stars 1–5).
      user_columns: name of each user covariate column, ``[D_u]``.
      item_columns: name of each business covariate column, ``[D_i]``.
      user_raw_ids: Yelp ``user_id`` of each row, ``[n_users]``.
      business_raw_ids: Yelp ``business_id`` of each row, ``[n_items]``.
      terms: the tf-idf vocabulary, ``[n_terms]``.
      aspects: the aspect nouns (empty without ``aspects=True``).
    """

    data: RatingData
    user_columns: tuple[str, ...]
    item_columns: tuple[str, ...]
    user_raw_ids: tuple[str, ...]
    business_raw_ids: tuple[str, ...]
    terms: tuple[str, ...]
    aspects: tuple[str, ...]


def _records(path: Path, fields: Sequence[str]) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` per non-blank line; a clear error for bad JSON or fields."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = _decode(path, lineno, raw)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path}, line {lineno}: not valid JSON ({err.msg} at column {err.colno}); "
                    "each line must be one JSON object (JSON-lines)"
                ) from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}, line {lineno}: expected a JSON object, got "
                                 f"{type(obj).__name__}; each line must be one object")
            missing = [f for f in fields if f not in obj]
            if missing:
                raise ValueError(f"{path}, line {lineno}: missing field(s) {', '.join(missing)}; "
                                 "is this the right Yelp file?")
            for field in ("user_id", "business_id"):
                if field in obj:
                    _text(path, lineno, obj, field, required=True)
            yield lineno, obj


def _decode(path: Path, lineno: int, raw: bytes) -> str:
    # Decoded line by line, so that a bad byte is reported with its line.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}, line {lineno}: byte 0x{raw[err.start]:02x} at column {err.start + 1} is "
            "not UTF-8 (JSON files are UTF-8; this one looks re-encoded, e.g. as latin-1); "
            f"convert it, e.g. iconv -f latin1 -t utf-8 {path.name}"
        ) from None


def _text(path: Path, lineno: int, obj: dict, field: str, *, required: bool = False) -> str:
    """``obj[field]`` as a string; missing or null gives ``""`` unless ``required``."""
    value = obj.get(field)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    need = "a non-empty string" if required else "a string (or null)"
    raise ValueError(f"{path}, line {lineno}: field {field!r} is {value!r}, not {need}; "
                     "fix or drop the line")


def _number(path: Path, lineno: int, obj: dict, field: str) -> float:
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{path}, line {lineno}: field {field!r} is {value!r}, not a finite "
                         "number; fix or drop the line")
    return float(value)


def _categories(value) -> list[str]:
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return sorted({p.strip() for p in parts if isinstance(p, str) and p.strip()})


def _is_elite(value) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str):
        years = [y.strip() for y in value.split(",")]
    else:
        years = [str(y).strip() for y in value]
    return float(any(y and y.lower() != "none" for y in years))


def _resolve(folder, business, user, review) -> dict[str, Path]:
    given = {"business": business, "user": user, "review": review}
    paths = {}
    for role, path in given.items():
        if path is None:
            if folder is None:
                raise ValueError(f"no {role} file: pass folder= or {role}=")
            path = Path(folder) / YELP_FILES[role]
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: Yelp {role} file not found; pass the folder that "
                                    f"holds {YELP_FILES[role]} or {role}=<path>")
        paths[role] = path
    return paths


class _AspectBackend(NamedTuple):
    nlp: Callable
    polarity: Callable[[str], float]


def aspect_backend(spacy_model: str = "en_core_web_sm") -> _AspectBackend:
    """spaCy's pipeline and nltk's VADER polarity, or a clear error naming what is missing.

    Raises:
      AspectResourcesMissing: spaCy, its model ``spacy_model``, nltk, or nltk's
        ``vader_lexicon`` is not installed (the message says how to install each).
    """
    missing = []
    nlp = polarity = None
    try:
        import spacy
    except ImportError:
        missing.append("the spaCy package (pip install spacy)")
    else:
        try:
            nlp = spacy.load(spacy_model, disable=["ner", "textcat"])
        except OSError:
            missing.append(f"spaCy's language model {spacy_model!r} "
                           f"(python -m spacy download {spacy_model})")
    try:
        from nltk.sentiment import SentimentIntensityAnalyzer
    except ImportError:
        missing.append("the nltk package (pip install nltk) and its 'vader_lexicon' "
                       "(python -m nltk.downloader vader_lexicon)")
    else:
        try:
            sia = SentimentIntensityAnalyzer()
        except LookupError:
            missing.append("nltk's 'vader_lexicon' resource (python -m nltk.downloader "
                           "vader_lexicon)")
        else:
            def polarity(text: str) -> float:
                return float(sia.polarity_scores(text)["compound"])
    if missing:
        raise AspectResourcesMissing(
            "aspects=True needs " + "; ".join(missing) + ". Install them, or load without "
            "aspects (aspects=False)."
        )
    return _AspectBackend(nlp, polarity)


def _nouns(sent) -> set[str]:
    return {t.lemma_.lower() for t in sent if t.pos_ == "NOUN" and t.is_alpha}


def aspect_polarity_sums(
    docs, polarity: Callable[[str], float], aspects: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-review sums and counts of sentence polarity for each aspect.

    Args:
      docs: parsed reviews (spaCy ``Doc``: ``.sents`` of tokens with ``.pos_``,
        ``.lemma_``, ``.is_alpha``), ``n`` of them.
      polarity: sentence text → polarity in ``[-1, 1]`` (VADER's compound score).
      aspects: the aspect nouns, ``[A]``.

    Returns:
      ``(sums [n, A], counts [n, A])``: polarity summed over the sentences of
      each review that mention each aspect, and how many sentences did.
    """
    index = {a: k for k, a in enumerate(aspects)}
    docs = list(docs)
    sums = np.zeros((len(docs), len(aspects)), np.float64)
    counts = np.zeros_like(sums)
    for r, doc in enumerate(docs):
        for sent in doc.sents:
            hit = [index[n] for n in _nouns(sent) if n in index]
            if hit:
                p = polarity(sent.text)
                sums[r, hit] += p
                counts[r, hit] += 1
    return sums, counts


def read_yelp(
    folder: str | Path | None = None,
    *,
    business: str | Path | None = None,
    user: str | Path | None = None,
    review: str | Path | None = None,
    min_city_businesses: int = 20,
    min_business_reviews: int = 100,
    min_user_reviews: int = 1,
    n_terms: int = 300,
    ngram_range: tuple[int, int] = (1, 3),
    tfidf_sample: int = 200_000,
    aspects: bool = False,
    n_aspects: int = 200,
    spacy_model: str = "en_core_web_sm",
    chunk_size: int = 10_000,
    seed: int = 0,
) -> Yelp:
    """Read the Yelp Open Dataset into SPEC §7's features (see the module docstring).

    Args:
      folder: folder holding the three files under their Yelp names
        (:data:`YELP_FILES`); ``business``/``user``/``review`` override single paths.
      min_city_businesses: keep cities with at least this many businesses (paper: 20).
      min_business_reviews: keep businesses whose ``review_count`` is at least this (paper: 100).
      min_user_reviews: keep users with at least this many reviews of kept businesses.
      n_terms: size of the tf-idf vocabulary (paper: 300).
      ngram_range: n-gram lengths (paper: 1 to 3).
      tfidf_sample: reviews sampled (uniformly, reservoir) to choose the terms and their idf.
      aspects: add the aspect-sentiment blocks (needs spaCy, its model and nltk's VADER).
      n_aspects: number of aspect nouns (paper: 200).
      spacy_model: the spaCy pipeline to parse reviews with.
      chunk_size: reviews vectorised at a time.
      seed: seeds the text sample.

    Returns:
      A :class:`Yelp`; ``.data`` holds ``[n_users, D_u]``, ``[n_items, D_i]`` and the stars.

    Raises:
      FileNotFoundError: a file is missing.
      ValueError: a malformed line (file and line named: not JSON, not UTF-8, a
        missing field, an id or text that is not a string, a count that is not a
        number), or the filters leave nothing.
      AspectResourcesMissing: ``aspects=True`` without spaCy / its model / nltk / VADER.
    """
    for name, v in (("min_city_businesses", min_city_businesses),
                    ("min_business_reviews", min_business_reviews),
                    ("min_user_reviews", min_user_reviews), ("n_terms", n_terms),
                    ("tfidf_sample", tfidf_sample), ("chunk_size", chunk_size)):
        lowest = 0 if name.startswith("min_") else 1
        if int(v) != v or v < lowest:
            raise ValueError(f"{name}={v} must be an integer >= {lowest}")
    backend = aspect_backend(spacy_model) if aspects else None
    paths = _resolve(folder, business, user, review)

    biz, kept_biz = _read_businesses(paths["business"], min_city_businesses,
                                     min_business_reviews)
    biz_index = {b: k for k, b in enumerate(kept_biz)}
    kept = _read_pairs(paths["review"], biz_index, min_user_reviews, tfidf_sample,
                       np.random.default_rng(seed))
    terms, vec = _vocabulary(paths["review"], kept.sample, n_terms, ngram_range)
    aspect_names = () if backend is None else _aspect_names(backend, kept.sample, n_aspects)
    u_text, b_text = _text_blocks(paths["review"], vec, backend, aspect_names, biz_index,
                                  kept.row_of_user, chunk_size)
    u_meta = _user_meta(paths["user"], paths["review"], kept)
    b_loc, b_cat, cities, cats = _business_covariates(biz, kept_biz)

    term_cols = [f"tfidf:{t}" for t in terms]
    aspect_cols = [f"aspect:{a}" for a in aspect_names]
    user_cols = ("elite", "useful", "cool", "funny", *term_cols, *aspect_cols)
    item_cols = (*(f"city:{c}" for c in cities), *(f"category:{c}" for c in cats),
                 *term_cols, *aspect_cols)
    arr = np.asarray(kept.pairs, np.float64).reshape(-1, 3)
    data = RatingData(
        np.concatenate([u_meta, *u_text], axis=1),
        np.concatenate([b_loc, b_cat, *b_text], axis=1),
        arr[:, 0].astype(np.int32),
        arr[:, 1].astype(np.int32),
        arr[:, 2],
    )
    return Yelp(data, user_cols, item_cols, kept.raw_users, tuple(kept_biz), terms,
                aspect_names)


def _read_businesses(p: Path, min_city_businesses: int, min_business_reviews: int):
    """The business file: ``({business_id: (city, categories, review_count)}, kept ids
    sorted)``, cities counted over every business before the two filters."""
    biz: dict[str, tuple[str, list[str], float]] = {}
    city_count: Counter = Counter()
    for lineno, obj in _records(p, ("business_id", "city", "state", "review_count")):
        city = f"{str(obj['city']).strip()}, {str(obj['state']).strip()}"
        count = _number(p, lineno, obj, "review_count")
        bid = obj["business_id"]
        if bid in biz:
            raise ValueError(f"{p}, line {lineno}: business_id {bid!r} occurs twice; "
                             "each business must have one line")
        biz[bid] = (city, _categories(obj.get("categories")), count)
        city_count[city] += 1
    kept_biz = sorted(b for b, (city, _, count) in biz.items()
                      if city_count[city] >= min_city_businesses and count >= min_business_reviews)
    if not kept_biz:
        raise ValueError(f"{p}: no business passes the filters (min_city_businesses="
                         f"{min_city_businesses}, min_business_reviews={min_business_reviews}); "
                         "lower them")
    return biz, kept_biz


class _KeptPairs(NamedTuple):
    """The review file's first pass: kept users (sorted raw ids, their rows, the line of
    each one's first kept review ``[n_users]``, by row), the ``(row, business, stars)``
    pairs sorted, and the text sample the vocabulary is chosen on."""

    raw_users: tuple[str, ...]
    row_of_user: dict[str, int]
    first_line: np.ndarray
    pairs: list[tuple[int, int, float]]
    sample: list[str]


def _read_pairs(p: Path, biz_index: dict[str, int], min_user_reviews: int,
                tfidf_sample: int, rng: np.random.Generator) -> _KeptPairs:
    """Review pass 1: the kept pairs (the latest review's stars win) and a reservoir
    sample of up to ``tfidf_sample`` review texts."""
    user_index: dict[str, int] = {}
    user_first_line: list[int] = []
    latest: dict[tuple[int, int], tuple[str, float]] = {}
    n_reviews_of_user: list[int] = []
    sample: list[str] = []
    seen = 0
    for lineno, obj in _records(p, ("user_id", "business_id", "stars")):
        b = biz_index.get(obj["business_id"])
        if b is None:
            continue
        stars = _number(p, lineno, obj, "stars")
        uid = obj["user_id"]
        u = user_index.get(uid)
        if u is None:
            u = user_index[uid] = len(user_index)
            user_first_line.append(lineno)
            n_reviews_of_user.append(0)
        n_reviews_of_user[u] += 1
        date = str(obj.get("date", ""))
        prev = latest.get((u, b))
        if prev is None or date >= prev[0]:
            latest[(u, b)] = (date, stars)
        text = _text(p, lineno, obj, "text")
        if len(sample) < tfidf_sample:
            sample.append(text)
        else:
            j = int(rng.integers(0, seen + 1))
            if j < tfidf_sample:
                sample[j] = text
        seen += 1
    keep_user = np.asarray(n_reviews_of_user) >= min_user_reviews
    if not keep_user.any():
        raise ValueError(f"{p}: no user has {min_user_reviews}+ reviews of the kept businesses; "
                         "lower min_user_reviews or the business filters")
    raw_users = sorted(uid for uid, u in user_index.items() if keep_user[u])
    row_of_user = {uid: r for r, uid in enumerate(raw_users)}
    remap = np.full(len(user_index), -1, np.int64)
    for uid, u in user_index.items():
        if keep_user[u]:
            remap[u] = row_of_user[uid]
    pairs = sorted((int(remap[u]), b, stars) for (u, b), (_, stars) in latest.items()
                   if remap[u] >= 0)
    # By row, not by id: a dict over every kept user would cost more than the pairs.
    first_line = np.empty(len(raw_users), np.int64)
    first_line[remap[keep_user]] = np.asarray(user_first_line, np.int64)[keep_user]
    return _KeptPairs(tuple(raw_users), row_of_user, first_line, pairs, sample)


def _vocabulary(p: Path, sample: list[str], n_terms: int, ngram_range):
    """The ``n_terms`` grams with the largest mean tf-idf on the sample (sorted), and a
    vectoriser over exactly them."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    wide = TfidfVectorizer(ngram_range=tuple(ngram_range), stop_words="english",
                           max_features=max(50 * n_terms, 10_000), dtype=np.float32)
    try:
        weights = wide.fit_transform(sample)
    except ValueError:
        raise ValueError(f"{p}: the sampled reviews have no usable words for the tf-idf "
                         "vocabulary (empty 'text' fields?)") from None
    mean_w = np.asarray(weights.mean(axis=0)).ravel()
    names = wide.get_feature_names_out()
    order = sorted(range(len(names)), key=lambda k: (-mean_w[k], names[k]))[:n_terms]
    order = sorted(order, key=lambda k: names[k])
    terms = tuple(names[k] for k in order)
    vec = TfidfVectorizer(ngram_range=tuple(ngram_range), stop_words="english",
                          vocabulary=terms, dtype=np.float32).fit(sample[:1])
    # Same sample, same analyser: the wide fit's idf is the one a refit would
    # compute, so take it rather than re-tokenise the sample.
    vec.idf_ = wide.idf_[order]
    return terms, vec


def _aspect_names(backend: _AspectBackend, sample: list[str], n_aspects: int):
    """The ``n_aspects`` most frequent nouns (spaCy lemmas) of the sample's sentences."""
    noun_count: Counter = Counter()
    for doc in backend.nlp.pipe(sample, batch_size=256):
        for sent in doc.sents:
            noun_count.update(_nouns(sent))
    return tuple(a for a, _ in sorted(noun_count.items(),
                                      key=lambda kv: (-kv[1], kv[0]))[:n_aspects])


def _text_blocks(p: Path, vec, backend, aspect_names, biz_index, row_of_user, chunk_size):
    """Review pass 2: each kept review's text folded into its user's and business's
    sums, ``chunk_size`` reviews at a time; the per-entity means as ``(user blocks,
    business blocks)``: tf-idf, then the aspect polarities when ``backend`` is given."""
    n_u, n_b = len(row_of_user), len(biz_index)
    n_t, n_a = len(vec.vocabulary_), len(aspect_names)
    # float32 sums: a million users × 300 terms is 1.2 GB, not 2.4.
    u_tf, b_tf = np.zeros((n_u, n_t), np.float32), np.zeros((n_b, n_t), np.float32)
    u_n, b_n = np.zeros(n_u), np.zeros(n_b)
    u_as, b_as = np.zeros((n_u, n_a)), np.zeros((n_b, n_a))
    u_ac, b_ac = np.zeros((n_u, n_a)), np.zeros((n_b, n_a))

    def flush(texts, us, bs):
        if not texts:
            return
        us, bs = np.asarray(us), np.asarray(bs)
        x = vec.transform(texts)
        for rows, acc, cnt in ((us, u_tf, u_n), (bs, b_tf, b_n)):
            np.add.at(cnt, rows, 1.0)
            # A 0/1 entity-by-review matrix sums the sparse rows per entity
            # without densifying the chunk.
            member = scipy.sparse.csr_matrix(
                (np.ones(rows.size), (rows, np.arange(rows.size))), shape=(acc.shape[0], rows.size)
            )
            summed = (member @ x).tocoo()  # one entry per (entity, term): no repeats
            acc[summed.row, summed.col] += summed.data
        if backend is not None:
            sums, counts = aspect_polarity_sums(backend.nlp.pipe(texts, batch_size=256),
                                                backend.polarity, aspect_names)
            for rows, s_acc, c_acc in ((us, u_as, u_ac), (bs, b_as, b_ac)):
                np.add.at(s_acc, rows, sums)
                np.add.at(c_acc, rows, counts)

    texts, us, bs = [], [], []
    for lineno, obj in _records(p, ("user_id", "business_id")):
        b = biz_index.get(obj["business_id"])
        r = row_of_user.get(obj["user_id"]) if b is not None else None
        if r is None:
            continue
        texts.append(_text(p, lineno, obj, "text"))
        us.append(r)
        bs.append(b)
        if len(texts) >= chunk_size:
            flush(texts, us, bs)
            texts, us, bs = [], [], []
    flush(texts, us, bs)
    u_text = [u_tf / np.maximum(u_n, 1)[:, None]]
    b_text = [b_tf / np.maximum(b_n, 1)[:, None]]
    if backend is not None:
        u_text.append(np.divide(u_as, u_ac, out=np.zeros_like(u_as), where=u_ac > 0))
        b_text.append(np.divide(b_as, b_ac, out=np.zeros_like(b_as), where=b_ac > 0))
    return u_text, b_text


def _user_meta(p: Path, review_path: Path, kept: _KeptPairs) -> np.ndarray:
    """The user file: ``[n_users, 4]`` elite and scaled feedback counts of kept users."""
    u_meta = np.full((len(kept.raw_users), 4), np.nan)
    for lineno, obj in _records(p, ("user_id",)):
        r = kept.row_of_user.get(obj["user_id"])
        if r is None:
            continue
        u_meta[r, 0] = _is_elite(obj.get("elite"))
        for k, field in enumerate(("useful", "cool", "funny"), 1):
            u_meta[r, k] = _number(p, lineno, obj, field) if field in obj else 0.0
            if u_meta[r, k] < 0:
                raise ValueError(f"{p}, line {lineno}: {field}={u_meta[r, k]:g} is negative; "
                                 "counts must be >= 0")
    absent = np.flatnonzero(np.isnan(u_meta[:, 0]))
    if absent.size:
        uid = kept.raw_users[absent[0]]
        raise ValueError(
            f"{p}: user_id {uid!r} (first review on line {kept.first_line[absent[0]]} of "
            f"{review_path}) has no line in the user file, and {absent.size - 1} more; "
            "use the user file of the same Yelp release"
        )
    logs = np.log1p(u_meta[:, 1:])
    top = logs.max(axis=0)
    u_meta[:, 1:] = logs / np.where(top > 0, top, 1.0)
    return u_meta


def _business_covariates(biz, kept_biz):
    """One-hot city ``[n_businesses, n_cities]`` and categories ``[n_businesses,
    n_categories]`` (most frequent first), with the city and category names."""
    cities = sorted({biz[b][0] for b in kept_biz})
    cat_count = Counter(c for b in kept_biz for c in biz[b][1])
    cats = sorted(cat_count, key=lambda c: (-cat_count[c], c))
    city_col = {c: k for k, c in enumerate(cities)}
    cat_col = {c: k for k, c in enumerate(cats)}
    b_loc = np.zeros((len(kept_biz), len(cities)))
    b_cat = np.zeros((len(kept_biz), len(cats)))
    for k, b in enumerate(kept_biz):
        b_loc[k, city_col[biz[b][0]]] = 1.0
        for c in biz[b][1]:
            b_cat[k, cat_col[c]] = 1.0
    return b_loc, b_cat, cities, cats


def load_yelp(folder: str | Path | None = None, **kwargs) -> RatingData:
    """The Yelp Open Dataset as a :class:`RatingData`; arguments as :func:`read_yelp`."""
    return read_yelp(folder, **kwargs).data

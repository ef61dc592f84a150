"""Frozen configuration of the model (:class:`ModelConfig`) and of its training (:class:`TrainConfig`).

The defaults are the configuration that measured best on validation data in
the paper's synthetic study (``benchmarks/RESULTS.md`` §1); the paper's own
towers and recipe are :meth:`ModelConfig.paper` and :meth:`TrainConfig.paper`.
Every field is checked on construction, types included, by :mod:`ttm_jax.checks`.
"""

from __future__ import annotations

import dataclasses

from ttm_jax import checks

__all__ = ["ACTIVATION_NAMES", "ID_OPTIMIZERS", "ID_UPDATES", "OPTIMIZERS", "PENALTIES", "TOWER_MODES",
           "UNSEEN_IDS", "ModelConfig", "TrainConfig"]

#: The activations σ a tower may use (``ttm_jax.model.ACTIVATIONS`` maps them to functions);
#: ``relu`` and ``sigmoid`` are the paper's.
ACTIVATION_NAMES = ("relu", "sigmoid", "silu", "tanh", "gelu", "softplus", "identity")
PENALTIES = ("l2", "l1", "none")
OPTIMIZERS = ("adam", "adamw", "sgd", "muon")
TOWER_MODES = ("auto", "entity", "rating")
#: How a step updates the id tables (``TrainConfig.id_updates``).
ID_UPDATES = ("dense", "rows")
#: The optimiser of the id tables (``TrainConfig.id_optimizer``).
ID_OPTIMIZERS = ("same", "rowwise_adagrad")
#: What a model with id tables does with an id that had no training rating.
UNSEEN_IDS = ("unknown", "error")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the two towers (SPEC §1).

    Attributes:
      hidden: hidden widths ``p_1..p_{L-1}`` of each tower; the tower has
        ``len(hidden) + 1`` layers ``U(f)`` (the paper: four hidden layers of 50).
      embedding_dim: ``p``, the width of the linear output layer (paper: 30).
      activation: σ, one of :data:`ACTIVATION_NAMES`.
      standardize: standardise each covariate column to mean 0, variance 1
        (statistics from the training users/items) inside the model.
      center_ratings: score ``mean(r) + <f, g>`` with the training mean as a
        fixed offset, instead of the bare dot product.
      user_ids, item_ids: give the user (item) tower an id table: a learnt row
        per user (item), added to its first layer's pre-activation,
        ``h_1 = σ(A_1 x + b_1 + E[id])``. This is SPEC §1's hybrid model
        ("one-hot ids appended to the covariates") without the ``n × n`` one-hot
        block: ``E`` is ``[n + 1, p_1]`` (``p_1`` the first layer's width, ``p``
        for a linear tower), its rows indexed by the rows of the covariate
        table, so memory is ``O((n_users + n_items) p_1)``. The table's size
        comes from the training data (:func:`~ttm_jax.init_model`). Row ``n``
        is the "unknown" row: ids with no training rating, and users or items
        given by covariates alone, read it, so their covariates carry them. It
        starts at zero and stays there unless id dropout
        (``TrainConfig.user_id_dropout``) trains it. Ids are never standardised.
      unseen_ids: what scoring does with an id that had no training rating:
        ``"unknown"`` (read the unknown row) or ``"error"`` (refuse it, naming
        the id, at every scoring entry point; inside training, validation pairs
        are still scored through the unknown row).

    Every field is checked on construction (types included): ``hidden="64"``
    or ``embedding_dim=2.5`` raise :class:`ttm_jax.checks.InvalidArgument`
    naming the field.
    """

    hidden: tuple[int, ...] = (200, 200)
    embedding_dim: int = 30
    activation: str = "silu"
    standardize: bool = True
    center_ratings: bool = True
    user_ids: bool = False
    item_ids: bool = False
    unseen_ids: str = "unknown"

    def __post_init__(self):
        object.__setattr__(self, "hidden", checks.integer_tuple("hidden", self.hidden,
                                                                high=checks.INT32_MAX))
        checks.integer("embedding_dim", self.embedding_dim, low=1, high=checks.INT32_MAX)
        checks.choice("activation", self.activation, ACTIVATION_NAMES)
        for name in ("standardize", "center_ratings", "user_ids", "item_ids"):
            checks.boolean(name, getattr(self, name))
        checks.choice("unseen_ids", self.unseen_ids, UNSEEN_IDS)

    @classmethod
    def paper(cls) -> ModelConfig:
        """SPEC §6's towers: 5 layers, 50 hidden units, 30 outputs, ReLU, raw inputs."""
        return cls(hidden=(50, 50, 50, 50), embedding_dim=30, activation="relu",
                   standardize=False, center_ratings=False)

    def replace(self, **changes) -> ModelConfig:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation of eq. 2 by minibatch stochastic gradients.

    Attributes:
      optimizer: ``"adam"``, ``"adamw"`` (decoupled weight decay equal to
        ``penalty_weight``, in place of the penalty gradient), ``"sgd"``, or
        ``"muon"`` (``optax.contrib.muon``: momentum orthogonalised by
        Newton–Schulz iterations for the weight matrices, scaled to the RMS of
        an Adam step so that the same step sizes apply; Adam for the biases).
      learning_rate: initial step size ``η_0``.
      decay_rate: multiply the step size by this every ``decay_epochs`` epochs
        (``1.0``: constant).
      decay_epochs: epochs between decays.
      decay_begin_epochs: epochs at the full step size before the decay starts
        (after any warm-up).
      min_learning_rate: floor of the decayed step size; at most
        ``learning_rate`` when the step decays.
      warmup_epochs: linear warm-up from 0 over this many epochs.
      batch_size: ``|M|``, ratings per step, sampled uniformly from Ω.
      max_epochs: budget in epochs (one epoch = ``⌈|Ω| / batch_size⌉`` steps),
        trained exactly: when ``eval_every_epochs`` does not divide it, the last
        validation check comes after the remainder. The default, 3500, was 4000 until
        Table 1 and the time-to-accuracy benchmark chose it (``benchmarks/RESULTS.md``
        §1, "A shorter budget").
      penalty: ``J``: ``"l2"`` (Σ‖A‖²_F + ‖b‖²), ``"l1"`` (Σ|A| + |b|) or ``"none"``.
      penalty_weight: ``λ``.
      proximal: for ``"l1"``, apply the penalty by a proximal (soft-threshold)
        step after each update instead of by its subgradient, so that weights
        reach exact zeros and ``Z(f)`` becomes informative. With SGD the
        threshold is ``η_t λ`` (the exact proximal gradient step); with Adam it
        is preconditioned like Adam's step, ``η_t λ / (√v̂ + ε)``, so zeros
        appear with Adam too (:func:`ttm_jax.optim.proximal_l1`).
      eval_every_epochs: epochs between validation checks (and progress
        reports). A first check at epoch 0 scores the initial model.
      patience: validation checks without improvement before early stopping.
      min_delta: improvement in validation RMSE that counts as one.
      tower_mode: how tower outputs are computed per step: ``"entity"`` (every
        user and item once, then gather), ``"rating"`` (once per rating in the
        batch) or ``"auto"`` (entity when ``n_users + n_items <= 2 * batch_size``;
        see ``benchmarks/train_speed.py``).
      max_seconds: wall-clock budget in seconds; training stops (keeping the
        best parameters) when exceeded. ``None``: no limit.
      grad_clip: clip the global gradient norm to this (``None``: no clipping).
      user_id_dropout, item_id_dropout: the probability, per rating of each
        minibatch, that the user's (item's) id is replaced by the unknown row
        (``ModelConfig.user_ids``), so that the tower also learns to score from
        covariates alone: the path cold users take. In ``[0, 1)``; 0: off.
      id_penalty_weight: ``λ_id``, the penalty weight of the id tables
        (``λ_id ‖E‖²`` for L2), so that the collaborative part and the
        covariate part are regularised apart; ``penalty_weight`` stays the
        weight of everything else. ``None``: ``λ_id = λ`` (as for the one-hot
        columns of a dense first layer), and then a λ grid moves both.
      id_updates: how a step updates the id tables. ``"dense"``: as every other
        weight (the optimiser's moments of every row decay each step, and the id
        penalty reaches every row). ``"rows"``: only the rows the minibatch reads
        (at most ``2 B`` of them), with the same optimiser applied to those rows
        and their moments, as TensorFlow's ``LazyAdam``; the id penalty (or
        AdamW's decay) reaches a row when it is read. A step then costs
        ``O(B p_1)`` in the tables instead of ``O((n_users + n_items) p_1)``:
        what makes tables of 10^6 users affordable (``benchmarks/scale.py``).
        With ``"rows"`` the towers run per rating (``tower_mode`` ``"auto"``
        resolves to ``"rating"``; ``"entity"``, which reads every row, is refused).
      id_optimizer: ``"same"``: the id tables take ``optimizer`` like every other
        weight (Adam's and Muon's two moments per table entry). ``"rowwise_adagrad"``:
        they take row-wise Adagrad (:func:`ttm_jax.optim.scale_by_rowwise_adagrad`,
        one accumulator per row, as TorchRec does) at the same scheduled step, so the
        optimiser state of a table of ``n`` rows is ``n`` numbers, not ``2 n p_1``.
      missing_weight, missing_rating: ``w_m`` and ``r_m`` of Steck's (2010) objective for
        ratings missing not at random: every pair *not* in Ω counts as a rating
        ``r_m`` of weight ``w_m`` (an observed rating weighs 1), so the loss is
        ``(1/|Ω|) [Σ_Ω (r − R)² + w_m Σ_{(u,i)} (r_m − R(u, i))²] + λ J``. Each step
        estimates the second sum from ``batch_size`` pairs drawn uniformly from all
        ``n_users × n_items`` (observed ones included, a fraction ``|Ω|/(n_users n_items)``
        of them). Users choose what they rate, and a low ``r_m`` teaches the model
        that: top-k lists over *all* unrated items improve (``benchmarks/RESULTS.md``
        §5) at some cost in RMSE on the observed ratings. ``w_m = 0``: off (eq. 2).
        ``r_m`` is in the ratings' units (e.g. 2 on a 1–5 scale, Steck's choice).

    Every field is checked on construction, types included (``batch_size=32.0``
    raises :class:`ttm_jax.checks.InvalidArgument` naming ``batch_size``).
    """

    optimizer: str = "muon"
    learning_rate: float = 2.4e-2
    decay_rate: float = 0.5
    decay_epochs: float = 700.0
    decay_begin_epochs: float = 0.0
    min_learning_rate: float = 1e-4
    warmup_epochs: float = 0.0
    batch_size: int = 32768
    max_epochs: int = 3500
    penalty: str = "l2"
    penalty_weight: float = 1e-3
    proximal: bool = False
    eval_every_epochs: int = 10
    patience: int = 50
    min_delta: float = 0.0
    tower_mode: str = "auto"
    max_seconds: float | None = None
    grad_clip: float | None = None
    user_id_dropout: float = 0.0
    item_id_dropout: float = 0.0
    id_penalty_weight: float | None = None
    id_updates: str = "dense"
    id_optimizer: str = "same"
    missing_weight: float = 0.0
    missing_rating: float = 0.0

    def __post_init__(self):
        checks.choice("optimizer", self.optimizer, OPTIMIZERS)
        checks.choice("penalty", self.penalty, PENALTIES)
        checks.choice("tower_mode", self.tower_mode, TOWER_MODES)
        for name in ("learning_rate", "decay_rate", "decay_epochs"):
            checks.real(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("min_learning_rate", "warmup_epochs", "decay_begin_epochs", "penalty_weight",
                     "min_delta"):
            checks.real(name, getattr(self, name), low=0.0)
        for name in ("batch_size", "max_epochs", "eval_every_epochs", "patience"):
            checks.integer(name, getattr(self, name), low=1, high=checks.INT32_MAX)
        checks.boolean("proximal", self.proximal)
        if self.proximal and self.penalty != "l1":
            raise checks.InvalidArgument(
                "proximal=True applies to penalty='l1' only; set penalty='l1'")
        if self.proximal and self.optimizer == "muon":
            raise checks.InvalidArgument(
                "proximal=True needs optimizer='sgd', 'adam' or 'adamw' (the threshold is "
                "preconditioned like their step; muon's orthogonalised step has no such scale)")
        checks.optional_real("max_seconds", self.max_seconds, low=0.0, low_open=True)
        checks.optional_real("grad_clip", self.grad_clip, low=0.0, low_open=True)
        for name in ("user_id_dropout", "item_id_dropout"):
            checks.fraction(name, getattr(self, name))
        checks.optional_real("id_penalty_weight", self.id_penalty_weight, low=0.0)
        checks.choice("id_updates", self.id_updates, ID_UPDATES)
        checks.choice("id_optimizer", self.id_optimizer, ID_OPTIMIZERS)
        checks.real("missing_weight", self.missing_weight, low=0.0)
        checks.real("missing_rating", self.missing_rating)
        if self.id_optimizer != "same" and self.proximal:
            raise checks.InvalidArgument(
                "id_optimizer='rowwise_adagrad' takes the id tables out of the proximal L1 "
                "step; use proximal=False, or id_optimizer='same'")
        if self.id_updates == "rows" and self.tower_mode == "entity":
            raise checks.InvalidArgument(
                "id_updates='rows' updates the id rows a minibatch reads, but tower_mode="
                "'entity' reads every row each step; use tower_mode='rating' or 'auto'")
        if self.id_penalty_weight is not None and self.proximal:
            raise checks.InvalidArgument(
                "id_penalty_weight applies to a penalty in the loss or AdamW's decay; with "
                "proximal=True the soft-threshold uses penalty_weight for every weight, so leave "
                "id_penalty_weight=None")
        if self.decay_rate < 1 and self.min_learning_rate > self.learning_rate:
            # The floor would *raise* the step size above the one asked for.
            raise checks.InvalidArgument(
                f"min_learning_rate={self.min_learning_rate:g} exceeds "
                f"learning_rate={self.learning_rate:g}; the decayed step is floored at "
                "min_learning_rate, so lower it (e.g. min_learning_rate="
                f"{self.learning_rate / 10:g})"
            )

    @classmethod
    def paper(cls, **overrides) -> TrainConfig:
        """The paper's recipe (SPEC §2): SGD, step 0.01 decayed ×0.9 per epoch to a
        floor of 0.005, L2 penalty, early stopping; batch 32 (the paper gives none).
        """
        base = dict(
            optimizer="sgd",
            learning_rate=0.01,
            decay_rate=0.9,
            decay_epochs=1.0,
            min_learning_rate=0.005,
            batch_size=32,
            max_epochs=200,
            penalty="l2",
            penalty_weight=1e-4,
            eval_every_epochs=1,
            patience=10,
        )
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)

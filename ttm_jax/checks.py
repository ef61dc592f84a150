"""Argument checks shared by every public entry point: types and ranges, named in the error.

Every configuration field and public argument goes through one of these before
any work starts, so a wrong value fails at the call that made it, with the
field's name, what was given and what would do, and never later inside JAX or
numpy. ``bool`` is refused where a number is asked for (``True`` is an ``int``
in Python, but never what a user meant by a width or a step size).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "INT32_MAX",
    "SEED_MAX",
    "InvalidArgument",
    "boolean",
    "choice",
    "fraction",
    "integer",
    "integer_tuple",
    "optional_real",
    "real",
]


#: The largest count JAX's default 32-bit integers hold: widths, batch sizes, epochs.
INT32_MAX = 2**31 - 1
#: The largest seed ``jax.random.key`` tells apart: larger ones wrap around silently
#: (``2**32`` gives the key of ``0``).
SEED_MAX = 2**32 - 1


class InvalidArgument(ValueError, TypeError):
    """A public argument or configuration field has the wrong type or value.

    Both a ``ValueError`` and a ``TypeError``, so that callers catching either
    (as Python's own conventions for the two cases would have them) see it.
    """


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _show(value) -> str:
    """``repr(value)``, shortened to stay readable (a huge int's repr can even fail)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<{type(value).__name__} too large to print>"
    return text if len(text) <= 60 else text[:57] + "..."


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def integer(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]``, or :class:`InvalidArgument` naming ``name``.

    Floats are refused even when integral (``32.0``): a count given as a float
    is usually a computation gone wrong, and JAX would fail on it much later.
    """
    if not _is_int(value):
        hint = f" (e.g. {name}={int(value)})" if _is_real(value) and float(value).is_integer() else ""
        raise InvalidArgument(f"{name}={_show(value)} must be an int, not {type(value).__name__}{hint}")
    value = int(value)
    # Only the bound that is crossed is named: "0 must be >= 1" reads better than a range.
    if low is not None and value < low:
        raise InvalidArgument(f"{name}={_show(value)} must be an integer >= {low}")
    if high is not None and value > high:
        raise InvalidArgument(f"{name}={_show(value)} must be an integer <= {high}")
    return value


def real(name: str, value, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False, allow_inf: bool = False) -> float:
    """``value`` as a finite ``float`` in the given range, or :class:`InvalidArgument`.

    Args:
      name: the field's name, for the message.
      value: an int or float (not a bool, not a string).
      low, high: bounds (``None``: unbounded); ``low_open``/``high_open`` exclude them.
      allow_inf: accept ``+inf`` (for example a smoothness β = ∞).
    """
    if not _is_real(value):
        raise InvalidArgument(f"{name}={_show(value)} must be a number, not {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float64
        raise InvalidArgument(f"{name}={_show(value)} is too large; it must be a finite float") from None
    if math.isnan(value) or (math.isinf(value) and not (allow_inf and value > 0)):
        raise InvalidArgument(f"{name}={_show(value)} must be a finite number")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        if low is not None and high is not None:
            where = f"in {lo}, {hi}"
        elif low is not None:
            where = f"{'>' if low_open else '>='} {low:g}"
        else:
            where = f"{'<' if high_open else '<='} {high:g}"
        raise InvalidArgument(f"{name}={_show(value)} must be {where}")
    return value


def optional_real(name: str, value, **bounds) -> float | None:
    """``None``, or :func:`real` of ``value``."""
    return None if value is None else real(name, value, **bounds)


def fraction(name: str, value, *, allow_zero: bool = True) -> float:
    """A fraction in ``[0, 1)`` (``(0, 1)`` without ``allow_zero``)."""
    return real(name, value, low=0.0, high=1.0, low_open=not allow_zero, high_open=True)


def boolean(name: str, value) -> bool:
    """``value`` if it is ``True`` or ``False``, else :class:`InvalidArgument` (``1`` and
    ``"yes"`` are refused: a flag given as anything else is usually a mix-up)."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={_show(value)} must be True or False")
    return value


def choice(name: str, value, options: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``options``, else :class:`InvalidArgument`."""
    if not isinstance(value, str) or value not in options:
        raise InvalidArgument(f"{name}={_show(value)}: choose one of {tuple(options)}")
    return value


def integer_tuple(name: str, value, *, low: int = 1, high: int | None = None) -> tuple[int, ...]:
    """A sequence of ints (each ``>= low``) as a tuple; a string is refused.

    ``"64"`` would otherwise be read as the widths ``(6, 4)``.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidArgument(
            f"{name}={_show(value)} must be a sequence of ints, e.g. {name}=(64, 64) "
            f"(a single layer: {name}=(64,))"
        )
    return tuple(integer(f"{name}[{k}]", w, low=low, high=high) for k, w in enumerate(value))

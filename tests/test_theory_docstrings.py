"""The examples in the theory package's docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest

MODULES = [
    "theory.bounds",
    "theory.dimension",
    "theory.entropy",
    "theory.known_sets",
    "theory.measures",
    "theory.neighbour_dimension",
    "theory.perturbation",
    "theory.rates",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np, "math": math}, report=True)
    assert result.attempted > 0
    assert result.failed == 0

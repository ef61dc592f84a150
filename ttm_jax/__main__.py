"""``python -m ttm_jax``: the command line (see :mod:`ttm_jax.cli`)."""

import sys

from ttm_jax.cli import main

sys.exit(main())

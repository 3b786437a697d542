"""``python -m aurora_qb_pipeline.bench``: the benchmark (each mode's subprocess runs this too)."""

import sys

from . import main

sys.exit(main())

"""``python -m aurora_qb_pipeline.cli``: the same as ``aurora-qb``."""

import sys

from . import main

sys.exit(main())

"""Entry point: `python3 -m fxpdbench`, as tests/bench/run.sh runs it (tests/bench on the path)."""

import sys

from .cli import main

sys.exit(main())

"""``python -m diffthinker``: the same as the ``diffthinker`` console script."""

import sys

from .cli import main

sys.exit(main())

"""``python -m diffthinker.demo``: the same as ``diffthinker demo``."""

from . import main

raise SystemExit(main())

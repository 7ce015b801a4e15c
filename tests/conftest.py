"""Suite-wide settings.

Hypothesis runs derandomized: its examples are a function of each test's source, so `make test` (and CI) draws
the same cases on every run and a red run can be repeated exactly. ``HYPOTHESIS_PROFILE=explore`` draws fresh
random cases to hunt for new failures; a failure found there goes back as an ``@example``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

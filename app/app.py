"""The DiffThinker Gradio demo: ``python app/app.py [--port 7860] [--checkpoint PATH ...]`` (see ``--help``).

A thin launcher; the app lives in ``diffthinker.demo`` so that ``diffthinker demo`` works from a pip install.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run from a checkout without installing: the repository root holds the package.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from diffthinker.demo import main

    raise SystemExit(main())

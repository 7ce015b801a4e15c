"""The Gradio demo: generate or upload a puzzle, watch the diffusion model draw N candidate solutions, see each
one verified, beside the MLLM baseline's answer on the same puzzle.

``main(argv)`` serves it (``diffthinker demo``, ``python app/app.py``); ``build_app(handlers)`` builds the page;
``DemoHandlers`` holds the logic as plain Python. gradio is imported only when the page is built.
"""

from __future__ import annotations

from .handlers import DemoHandlers, DemoSettings
from .launch import add_arguments, main, parse_args, run, serve
from .models import ModelRegistry, default_checkpoint_dir
from .puzzles import DemoError, Puzzle, generate_puzzle, load_upload

__all__ = [
    "DemoError",
    "DemoHandlers",
    "DemoSettings",
    "ModelRegistry",
    "Puzzle",
    "add_arguments",
    "build_app",
    "default_checkpoint_dir",
    "generate_puzzle",
    "load_upload",
    "main",
    "parse_args",
    "run",
    "serve",
]


def __getattr__(name):  # build_app imports gradio: load it on first use only
    if name == "build_app":
        from .ui import build_app

        return build_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

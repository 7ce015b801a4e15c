"""``diffthinker demo`` / ``python app/app.py``: load the checkpoints, build the page, serve it.

Safe defaults: binds 127.0.0.1 (``--host 0.0.0.0`` to expose it), no public share link unless ``--share``, one
solve at a time with a bounded queue behind it, uploads limited to ``--max-file-size`` MB (gradio refuses larger
files before they reach a handler; the handlers check again), no analytics calls.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from .handlers import DemoHandlers, DemoSettings
from .models import ModelRegistry, default_checkpoint_dir

logger = logging.getLogger(__name__)

DESCRIPTION = ("The DiffThinker Gradio demo: generate or upload a puzzle, watch the diffusion model draw N candidate "
               "solutions, each verified, beside the MLLM baseline. Serves http://127.0.0.1:7860 by default.")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The demo's options (also usable as a ``diffthinker demo`` subcommand's arguments)."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="port (default 7860; 0: the first free port from 7860 on)")
    p.add_argument("--share", action="store_true", help="also open a public gradio share link (off by default)")
    p.add_argument("--checkpoint", type=Path, action="append", default=[], metavar="PATH",
                   help="a checkpoint folder (diffusion pipeline or MLLM policy); repeatable; takes precedence "
                        "over the checkpoint folder's models for the tasks it supports")
    p.add_argument("--checkpoints-dir", type=Path, default=None, metavar="DIR",
                   help=f"folder whose sub-folders are models (default: {default_checkpoint_dir()})")
    p.add_argument("--no-checkpoints-dir", action="store_true", help="use only the --checkpoint folders")
    p.add_argument("--concurrency", type=_positive, default=1, help="solves running at once (default 1)")
    p.add_argument("--queue-size", type=_positive, default=16, help="requests waiting at most (default 16)")
    p.add_argument("--max-file-size", type=_positive, default=10, metavar="MB",
                   help="largest accepted upload in MB (default 10)")
    p.add_argument("--max-samples", type=_positive, default=16, help="largest N on the samples slider")
    p.add_argument("--max-steps", type=_positive, default=50, help="largest Euler step count on its slider")


def build(args: argparse.Namespace):
    """(the gradio app, its handlers) from parsed arguments; loads the checkpoints."""
    from .ui import build_app

    folder = None if args.no_checkpoints_dir else (args.checkpoints_dir or default_checkpoint_dir())
    registry = ModelRegistry.discover(folder, args.checkpoint)
    settings = DemoSettings(max_samples=args.max_samples, max_steps=args.max_steps,
                            max_upload_bytes=args.max_file_size * 1024 * 1024)
    handlers = DemoHandlers(registry, settings)
    app = build_app(handlers, concurrency_limit=args.concurrency)
    app.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    return app, handlers


def serve(args: argparse.Namespace, *, block: bool = True):
    """Build and launch; with ``block=False`` return the running app at once (tests; ``app.close()`` stops it)."""
    # No usage statistics or version checks from a demo that may run offline.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app, handlers = build(args)
    for failure in handlers.registry.failures:
        if failure.explicit:
            logger.error("checkpoint %s could not be loaded: %s", failure.path, failure.message)
    app.launch(server_name=args.host, server_port=args.port or None, share=args.share,
               max_file_size=args.max_file_size * 1024 * 1024, show_error=False, ssr_mode=False,
               allowed_paths=handlers.served_folders(), css=_css(), footer_links=["gradio", "settings"],
               prevent_thread_lock=not block, quiet=not block)
    return app


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Returns the exit code."""
    serve(args)
    return 0


def _css() -> str:
    from .ui import CSS

    return CSS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="diffthinker demo", description=DESCRIPTION)
    add_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """``diffthinker demo [options]``: see ``--help``."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)

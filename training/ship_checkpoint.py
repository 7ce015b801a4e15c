"""Copy a trained pipeline (``<output_dir>/pipeline`` of train_diffusion.py) into ``checkpoints/<name>``, stored small.

    python training/ship_checkpoint.py runs/bench/maze8/pipeline checkpoints/diffthinker-tiny-maze8

The weights are stored as float16 safetensors (half the bytes; the shipped checkpoints together must stay under
60 MB). ``DiffThinkerPipeline.from_pretrained`` builds the model in float32 and loads these weights into it, so
inference runs in float32 exactly as in training, from weights rounded to float16. The rounding's effect is
measured, not assumed: re-run ``diffthinker eval`` on the shipped folder and record both numbers in its card.

The model card (README.md) and training_config.yaml of the source are kept; a "Shipped copy" section is appended
(source, storage dtype, byte size). The destination is written atomically: a temporary folder, then a rename, so
an interrupted copy never leaves a half checkpoint behind (an existing destination is replaced only at the end).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ship(src: Path, dst: Path, dtype: str = "float16") -> Path:
    import torch

    from diffthinker.diffusion.pipeline import DiffThinkerPipeline
    from diffthinker.fsutil import replace_folder

    if not (src / "model_index.json").is_file():
        raise SystemExit(f"{src} is not a pipeline folder (no model_index.json); expected <output_dir>/pipeline")
    pipe = DiffThinkerPipeline.from_pretrained(str(src))
    pipe.denoiser.to(getattr(torch, dtype))
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    for name in ("README.md", "training_config.yaml"):
        if (src / name).is_file():
            shutil.copy2(src / name, tmp / name)
    size = folder_bytes(tmp)
    card = tmp / "README.md"
    text = card.read_text() if card.is_file() else f"# {dst.name}\n"
    text += (f"\n## Shipped copy\n\nCopied from `{src}` by `training/ship_checkpoint.py`; weights stored as {dtype} "
             f"safetensors ({size / 1e6:.2f} MB in all) and loaded into a float32 model.\n")
    card.write_text(text)
    dst.parent.mkdir(parents=True, exist_ok=True)
    return replace_folder(tmp, dst, old=dst.with_name(f".{dst.name}.old"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="pipeline folder written by train_diffusion.py")
    ap.add_argument("dst", type=Path, help="destination, e.g. checkpoints/diffthinker-tiny-maze8")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    args = ap.parse_args(argv)
    out = ship(args.src, args.dst, args.dtype)
    print(f"{out}: {folder_bytes(out) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

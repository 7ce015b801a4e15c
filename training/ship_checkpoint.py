"""Copy a trained model into ``checkpoints/<name>``: a diffusion pipeline stored small, or an MLLM policy with a card.

    python training/ship_checkpoint.py runs/bench/maze8/pipeline checkpoints/diffthinker-tiny-maze8
    python training/ship_checkpoint.py runs/mllm/maze-sft/policy checkpoints/mllm-tiny-maze-sft

A diffusion pipeline (``<output_dir>/pipeline`` of train_diffusion.py, ``model_index.json``):

The weights are stored as float16 safetensors (half the bytes; the shipped checkpoints together must stay under
60 MB). ``DiffThinkerPipeline.from_pretrained`` builds the model in float32 and loads these weights into it, so
inference runs in float32 exactly as in training, from weights rounded to float16. The rounding's effect is
measured, not assumed: re-run ``diffthinker eval`` on the shipped folder and record both numbers in its card.

The model card (README.md) and training_config.yaml of the source are kept; a "Shipped copy" section is appended
(source, storage dtype, byte size). The destination is written atomically: a temporary folder, then a rename, so
an interrupted copy never leaves a half checkpoint behind (an existing destination is replaced only at the end).

An MLLM policy (``<output_dir>/policy`` of train_mllm_rl.py, ``diffthinker_policy.json``): copied as it is (the
tiny policy is ~1 MB in float32), with a model card (README.md) written from the training record the policy
carries: the command, the config, what it never trained on (held-out fingerprint), training time, the final
evaluation and the machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


#: issue 7's budget for everything under checkpoints/ together (tests/test_shipped_checkpoints.py checks it too)
MAX_TOTAL_BYTES = 60_000_000


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def shipped_folders(root: Path) -> list[Path]:
    """The checkpoint folders under ``root`` (hidden ones, e.g. an interrupted copy's temporary, excluded)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def check_budget(tmp: Path, dst: Path) -> None:
    """Refuse a copy that would take checkpoints/ (``dst``'s folder) past MAX_TOTAL_BYTES, counting ``tmp`` in
    place of ``dst``. Only a folder named ``checkpoints`` is held to the budget (tests ship into tmp folders)."""
    if dst.parent.name != "checkpoints":
        return
    others = sum(folder_bytes(p) for p in shipped_folders(dst.parent) if p.name != dst.name)
    size = folder_bytes(tmp)
    total = others + size
    if total > MAX_TOTAL_BYTES:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"shipping {dst.name} ({size / 1e6:.1f} MB) would take {dst.parent} to "
                         f"{total / 1e6:.1f} MB; the budget is {MAX_TOTAL_BYTES / 1e6:.0f} MB in all: remove or "
                         f"replace a checkpoint first")


def ship(src: Path, dst: Path, dtype: str = "float16", note: str | None = None) -> Path:
    """Copy ``src`` to ``dst`` (see the module docstring). ``note``: markdown appended to the card under "Notes"
    (e.g. how a run trained before the card recorded every resume command was made)."""
    if (src / "diffthinker_policy.json").is_file():
        return ship_policy(src, dst, note)
    import torch

    from diffthinker.diffusion.pipeline import DiffThinkerPipeline
    from diffthinker.fsutil import replace_folder

    if not (src / "model_index.json").is_file():
        raise SystemExit(f"{src} is neither a pipeline folder (model_index.json) nor an MLLM policy folder "
                         f"(diffthinker_policy.json); expected <output_dir>/pipeline or <output_dir>/policy")
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
    card.write_text(text + _notes(note))
    check_budget(tmp, dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    return replace_folder(tmp, dst, old=dst.with_name(f".{dst.name}.old"))


def policy_card(meta: dict, name: str, src: Path) -> str:
    """A model card for an MLLM policy, from the training record ``Policy.save`` stores in diffthinker_policy.json."""
    import yaml

    tr = meta.get("training") or {}
    cfg, state, final = tr.get("config") or {}, tr.get("state") or {}, tr.get("final_eval") or {}
    held = tr.get("held_out") or {}
    lines = ["---", "library_name: transformers", "tags: [diffthinker, mllm-baseline, visual-reasoning]", "---", "",
             f"# {name}", "",
             f"The MLLM baseline's policy (`mllm_baselines`, base `{meta.get('base_model')}`, {meta.get('family')}) for "
             f"{', '.join(meta.get('tasks', []))}; it answers in text, parsed by each task's `parse_text` and verified.",
             ""]
    if final:
        lines += ["## Evaluation (end of training)", "",
                  f"**{100 * final.get('accuracy', 0):.1f}%** ({final.get('correct')}/{final.get('n')}) with "
                  f"temperature {final.get('temperature', 0.0)} (0 = greedy), parse rate {final.get('parse_rate')}.",
                  "", "| level | n | accuracy |", "|---|---:|---:|"]
        for level, rec in (final.get("per_level") or {}).items():
            lines.append(f"| {level} | {rec.get('n')} | {100 * rec.get('accuracy', 0):.1f}% |")
        lines.append("")
    lines += ["## Training", "",
              f"- command: `{' '.join(tr.get('command') or []) or '(not recorded)'}`",
              f"- stages done: {state.get('done')}; steps: {state.get('stopped_at')}",
              "- training time (evaluation excluded): " + ", ".join(
                  f"{stage} {sec / 60:.1f} min" for stage, sec in (state.get("train_seconds") or {}).items()),
              f"- machine: {tr.get('machine')}", ""]
    if held:
        ev = held.get("evaluation_set", {})
        lines += ["## Data", "",
                  f"- levels: {', '.join((cfg.get('data') or {}).get('levels') or [])}; training seeds from "
                  f"{(cfg.get('data') or {}).get('seed_start')}",
                  f"- never trained on: {held.get('n_hashes')} content hashes ({held.get('sources')}); fingerprint "
                  f"sha256 `{held.get('fingerprint')}`",
                  f"- evaluation set: {ev.get('n')} puzzles from seed {ev.get('seed')}, seeds per level "
                  f"{ev.get('seeds')}; content-hash fingerprint sha256 `{ev.get('fingerprint')}`", ""]
    lines += ["## Config", "", "```yaml", yaml.safe_dump(cfg, sort_keys=False).rstrip(), "```", "",
              "## Use", "", "```python", "from diffthinker.inference import load_solver",
              "solver = load_solver('<this folder>', temperature=0.0)  # greedy",
              "```", "", "## Shipped copy", "",
              f"Copied from `{src}` by `training/ship_checkpoint.py` (weights as trained, float32 safetensors).", ""]
    return "\n".join(lines)


def _notes(note: str | None) -> str:
    return f"\n## Notes\n\n{note.strip()}\n" if note and note.strip() else ""


def ship_policy(src: Path, dst: Path, note: str | None = None) -> Path:
    import json

    from diffthinker.fsutil import replace_folder

    meta = json.loads((src / "diffthinker_policy.json").read_text())
    if any(p.suffix in (".bin", ".pt", ".pth", ".pkl") for p in src.iterdir()):
        raise SystemExit(f"{src} holds pickled weights; only safetensors are shipped")
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    (tmp / "README.md").write_text(policy_card(meta, dst.name, src) + _notes(note))
    check_budget(tmp, dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    return replace_folder(tmp, dst, old=dst.with_name(f".{dst.name}.old"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="pipeline folder written by train_diffusion.py, or policy folder written "
                                            "by train_mllm_rl.py")
    ap.add_argument("dst", type=Path, help="destination, e.g. checkpoints/diffthinker-tiny-maze8")
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"],
                    help="storage dtype of a pipeline's weights (policies are copied as they are)")
    ap.add_argument("--note", type=Path, metavar="FILE", help="markdown file appended to the card under 'Notes'")
    args = ap.parse_args(argv)
    if args.note is not None and not args.note.is_file():
        raise SystemExit(f"--note {args.note}: no such file; expected a markdown file")
    out = ship(args.src, args.dst, args.dtype, args.note.read_text() if args.note else None)
    print(f"{out}: {folder_bytes(out) / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

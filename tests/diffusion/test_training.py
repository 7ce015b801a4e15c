"""Training: config parsing and errors, the data stream, checkpoints (exact resume, keep-last-K, atomicity), the
loop (loss goes down, every trainable parameter moves) and the CLI entry. Tiny model, a few steps each."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffthinker.diffusion import training as T
from diffthinker.diffusion.data import (
    RETRY_STRIDE,
    BlockedHashes,
    PuzzleBatches,
    parse_level_specs,
    validation_set,
)
from diffthinker.diffusion.flow import FlowConfig, flow_matching_loss
from diffthinker.diffusion.model import build_denoiser
from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError

REPO = Path(__file__).resolve().parents[2]

#: a 1-layer model on 4x4 mazes at 32 px... the maze parser needs 64 px, so: 4x4 mazes at 64 px, 16 px patches
TINY = ["model.overrides={num_layers: 1, num_attention_heads: 2, attention_head_dim: 16, patch_size: 16}",
        "data.levels=[maze:4]", "data.batch_size=4", "report_to=none", "progress=false", "num_threads=1",
        "eval.n=2", "eval.num_inference_steps=2", "eval.num_images=1", "eval.every=0", "eval.at_end=false",
        "export=false", "log_every=1", "optim.lr_scheduler=cosine", "optim.warmup_steps=2", "ema.decay=0.9"]


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def tiny_cfg(out: Path, *extra: str) -> T.TrainConfig:
    return T.load_config(None, [*TINY, f"output_dir={out}", *extra])


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


# ============================================================================================== config
def test_yaml_configs_in_repo_load(tmp_path):
    for name in ("tiny_cpu_maze8.yaml", "tiny_cpu_vsp.yaml"):
        cfg = T.load_config(REPO / "training" / "configs" / name)
        assert cfg.model.preset == "tiny-cpu" and cfg.model.resolution == 64
    # every diffusion config committed (the MLLM track's are mllm_*.yaml), each with its own output_dir
    configs = sorted(p for p in (REPO / "training" / "configs").glob("*.yaml") if not p.name.startswith("mllm_"))
    assert len(configs) >= 7
    loaded = {p.name: T.load_config(p) for p in configs}
    assert len({cfg.output_dir for cfg in loaded.values()}) == len(loaded)
    assert loaded["small_cpu_jigsaw.yaml"].model.preset == "small-cpu"
    vsp = T.load_config(REPO / "training" / "configs" / "tiny_cpu_vsp.yaml")
    assert [str(s) for s in parse_level_specs(vsp.data.levels)] == [f"frozenlake-v1:vsp{k}" for k in (3, 4, 5, 6)]


def test_overrides_are_typed_and_dotted(tmp_path):
    cfg = T.load_config(None, ["optim.lr=3e-4", "optim.betas=[0.8,0.95]", "data.levels=maze:6",
                               "model.overrides.num_layers=2", "max_minutes=null", "flow.sigma_scheme=uniform",
                               "data.num_seeds=1e3"])
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.optim.betas == (0.8, 0.95)
    assert cfg.data.levels == ["maze:6"] and cfg.model.overrides == {"num_layers": 2}
    assert cfg.flow == FlowConfig(sigma_scheme="uniform") and cfg.data.num_seeds == 1000
    # round trip through YAML
    again = T.config_from_dict(__import__("yaml").safe_load(cfg.to_yaml()))
    assert again == cfg


@pytest.mark.parametrize("override, fragment", [
    ("optim.lrr=1", "unknown config key 'optim.lrr'"),
    ("learning_rate=1", "unknown config key 'learning_rate'"),
    ("max_steps.x=1", "'max_steps' is a value, not a section"),
    ("model.overrides.num_layerz=2", "model.overrides.num_layerz"),
    ("optim.lr=abc", "'optim.lr' = 'abc' has the wrong type; expected float"),
    ("optim.lr=-1", "'optim.lr' = -1.0 is invalid"),
    ("max_steps=1.5", "'max_steps' = 1.5 has the wrong type"),
    ("export=maybe", "'export' = 'maybe' has the wrong type; expected bool"),
    ("optim.lr_scheduler=cosinus", "expected one of 'constant'"),
    ("optim.betas=[0.9]", "'optim.betas'"),
    ("flow.sigma_scheme=gauss", "unknown sigma_scheme 'gauss'"),
    ("data.levels=[maze:99]", "unknown level '99'"),
    ("data.levels=[chess:1]", "unknown task 'chess'"),
    ("eval.levels=[frozenlake:vsp3]", "'eval.levels'"),
    ("data.weights=[1,2]", "'data.weights'"),
    ("ema.decay=1", "'ema.decay' = 1.0 is invalid"),
    ("checkpoint.keep_last=0", "'checkpoint.keep_last' = 0 is invalid"),
    ("optim.lr", "not of the form key=value"),
])
def test_bad_override_names_the_key(override, fragment):
    with pytest.raises(T.ConfigError) as err:
        T.load_config(None, [override])
    assert fragment in str(err.value)
    assert isinstance(err.value, TaskError)  # the CLI turns it into exit code 2


def test_bad_yaml_file_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1.0e-3\n  momentum: 0.9\n")
    with pytest.raises(T.ConfigError, match="unknown config key 'optim.momentum'"):
        T.load_config(path)
    with pytest.raises(T.ConfigError, match="not found"):
        T.load_config(tmp_path / "missing.yaml")


def test_cli_and_script_take_the_same_arguments():
    """Both declare them with config_io.add_train_arguments and the same examples: same options, same help,
    same parse of a command line."""
    from diffthinker.cli import build_parser

    def options(p: argparse.ArgumentParser) -> set[tuple]:
        return {(tuple(a.option_strings), a.dest, a.nargs, a.const, a.default, a.help) for a in p._actions
                if a.dest not in ("help",)}

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    diffusion = train._subparsers._group_actions[0].choices["diffusion"]
    script = T.build_arg_parser()
    assert options(diffusion) == options(script)
    argv = ["--config", "c.yaml", "--resume", "--output-dir", "o", "optim.lr=3e-4", "seed=1"]
    assert vars(diffusion.parse_intermixed_args(argv)) == vars(script.parse_intermixed_args(argv))


# ============================================================================================== data
def test_batches_are_deterministic_sharded_and_skip_blocked_puzzles():
    specs = parse_level_specs(["maze:4"])
    task = get_task("maze")
    kw = dict(specs=specs, tasks=["maze-v1"], resolution=64, batch_size=2, seed=0, world_size=2, seed_start=100)
    r0, r1 = PuzzleBatches(rank=0, **kw), PuzzleBatches(rank=1, **kw)
    a, b = r0[3], PuzzleBatches(rank=0, **kw)[3]
    assert torch.equal(a["cond"], b["cond"]) and torch.equal(a["target"], b["target"])  # same (seed, rank, step)
    assert a["cond"].shape == (2, 3, 64, 64) and a["cond"].min() >= -1 and a["cond"].max() <= 1
    assert a["seed"].tolist() == [100 + 12, 100 + 13] and r1[3]["seed"].tolist() == [100 + 14, 100 + 15]
    assert not torch.equal(a["target"], a["cond"])  # the solution draws the path
    # resuming from a sample offset continues the same stream
    assert torch.equal(PuzzleBatches(rank=0, offset=4 * 3, **kw)[0]["seed"], a["seed"])
    # a blocked puzzle (e.g. a validation maze) is replaced by a deterministic far seed
    blocked = BlockedHashes(frozenset({task.content_hash(task.generate("4", 112))}))
    c = PuzzleBatches(rank=0, blocked=blocked, **kw)[3]
    assert c["seed"].tolist() == [112 + RETRY_STRIDE, 113] and int(c["skipped"]) == 1


def test_a_finite_pool_draws_each_puzzle_once_and_its_kept_pixels_equal_a_fresh_drawing(monkeypatch):
    from diffthinker.diffusion import data as D

    kw = dict(specs=parse_level_specs(["maze:4"]), tasks=["maze-v1"], resolution=64, batch_size=8, seed=0,
              seed_start=100, num_seeds=3)  # 3 puzzles, 8 samples a batch: repeats are certain
    pool = PuzzleBatches(**kw)
    calls = []
    real_render_pair = D.render_pair
    monkeypatch.setattr(D, "render_pair", lambda *a: calls.append(a[1]) or real_render_pair(*a))
    first, again = pool[0], pool[0]
    assert len(calls) == len(set(first["seed"].tolist())) <= 3  # each distinct puzzle drawn once, then kept
    assert torch.equal(first["cond"], again["cond"]) and torch.equal(first["target"], again["target"])
    # the kept pixels are exactly a fresh drawing's
    monkeypatch.setattr(D, "PIXEL_CACHE_BYTES", 0)  # a pool that keeps no pixels draws every sample
    calls.clear()
    fresh = PuzzleBatches(**kw)[0]
    assert len(calls) == 8
    assert torch.equal(first["cond"], fresh["cond"]) and torch.equal(first["target"], fresh["target"])


def test_layouts_with_gaps_are_fitted_to_the_model_resolution_as_the_pipeline_fits_them():
    # a 64 px jigsaw 2x2 is drawn 65 px wide (two 32 px blocks and a 1 px gap, the published geometry scaled)
    from PIL import Image

    from diffthinker.diffusion.data import image_to_tensor
    from diffthinker.diffusion.pipeline import DiffThinkerPipeline

    task = get_task("jigsaw")
    batch = PuzzleBatches(parse_level_specs(["jigsaw:2x2"]), ["jigsaw-v1"], 64, 2, seed=0, seed_start=100)[0]
    assert batch["cond"].shape == batch["target"].shape == (2, 3, 64, 64)
    inst = task.generate("2x2", int(batch["seed"][0]))
    drawn = task.render(inst, size=64)
    assert drawn.size == (65, 65)
    # training sees exactly what the pipeline's preprocessing makes of the natively drawn problem image
    assert torch.equal(batch["cond"][0], image_to_tensor(drawn.resize((64, 64), Image.NEAREST)))
    pipe = DiffThinkerPipeline.from_denoiser(build_denoiser("tiny-cpu", ["jigsaw"], 64, num_layers=1,
                                                            num_attention_heads=2, attention_head_dim=16))
    assert torch.equal(batch["cond"][0], pipe.preprocess([drawn])[0])
    solved = task.render(inst, task.solve(inst), size=64).resize((64, 64), Image.NEAREST)
    assert torch.equal(batch["target"][0], image_to_tensor(solved))
    # and the verifier still reads the fitted 64 px solution
    assert task.verify(inst, task.parse(solved, inst)).correct


def test_exclude_folders_block_official_test_puzzles():
    folder = REPO / "tests" / "fixtures" / "diffthinker_samples" / "Maze"
    blocked = BlockedHashes.build([], [str(folder)])
    assert blocked.sources[f"exclude:{folder}"] == len(blocked.hashes) > 0
    with pytest.raises(T.ConfigError, match="'data.exclude'"):
        T.load_config(None, [f"data.exclude=[{folder / 'nope'}]"])


def test_validation_set_is_distinct_and_split_over_levels():
    specs = parse_level_specs(["frozenlake:vsp3", "frozenlake:vsp4"])
    items = validation_set(specs, 7, seed=0)
    assert [str(i.spec) for i in items].count("frozenlake-v1:vsp3") == 4
    assert len({i.content_hash for i in items}) == 7


# ============================================================================================== the loop
def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_denoiser("tiny-cpu", ["maze"], 64, num_layers=1, num_attention_heads=2, attention_head_dim=16,
                           patch_size=16)
    T.freeze_unused_parameters(model)
    batch = PuzzleBatches(parse_level_specs(["maze:4"]), ["maze-v1"], 64, 8)[0]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(30):
        loss, _ = flow_matching_loss(model, batch["target"], batch["cond"], batch["task_index"],
                                     torch.Generator().manual_seed(0), FlowConfig())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_every_trainable_parameter_changes_after_one_step(tmp_path):
    from accelerate.utils import set_seed

    cfg = tiny_cfg(tmp_path / "run", "max_steps=1")
    set_seed(cfg.seed)  # what train() does before building the model
    init = build_denoiser(cfg.model.preset, ["maze-v1"], 64, **cfg.model.overrides)
    frozen = set(T.freeze_unused_parameters(init))
    result = T.train(cfg)
    after = weights(result.checkpoint)
    trainable = {n for n, p in init.named_parameters() if p.requires_grad}
    assert trainable and frozen and not trainable & frozen
    unchanged = [n for n, p in init.named_parameters() if n in trainable and torch.equal(p.detach(), after[n])]
    assert unchanged == []
    assert all(torch.equal(dict(init.named_parameters())[n].detach(), after[n]) for n in frozen)


def test_resume_is_exact(tmp_path, monkeypatch):
    extra = ["max_steps=4", "checkpoint.every=2", "checkpoint.keep_last=5"]
    straight = T.train(tiny_cfg(tmp_path / "a", *extra))

    real_save = T.save_checkpoint

    def save_then_die(accelerator, cfg, state, ema):  # a run killed right after its step-2 checkpoint
        path = real_save(accelerator, cfg, state, ema)
        if state["step"] == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(T, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        T.train(tiny_cfg(tmp_path / "b", *extra))
    monkeypatch.setattr(T, "save_checkpoint", real_save)
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    resumed = T.train(tiny_cfg(tmp_path / "b", *extra, "checkpoint.resume=latest"))
    assert resumed.step == straight.step == 4
    wa, wb = weights(straight.checkpoint), weights(resumed.checkpoint)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ea, eb = load_file(str(straight.checkpoint / T.EMA_WEIGHTS)), load_file(str(resumed.checkpoint / T.EMA_WEIGHTS))
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    sa = json.loads((straight.checkpoint / T.TRAINER_STATE).read_text())
    sb = json.loads((resumed.checkpoint / T.TRAINER_STATE).read_text())
    assert (sa["samples_seen"], sa["micro_step"]) == (sb["samples_seen"], sb["micro_step"]) == (16, 4)


def test_a_resumed_run_card_lists_every_command_and_each_evaluated_step_once(tmp_path):
    from accelerate.state import AcceleratorState, GradientState

    extra = ["max_steps=2", "export=true", "eval.every=2", "eval.at_end=true"]
    T.train(tiny_cfg(tmp_path / "run", *extra), command=["first", "command"])
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    # resumed at its last step: nothing left to train, the end evaluates step 2 again and re-exports
    T.train(tiny_cfg(tmp_path / "run", *extra, "checkpoint.resume=latest"), command=["second", "--resume"])
    card = (tmp_path / "run" / "pipeline" / "README.md").read_text()
    assert "from step 0 (" in card and "`first command`" in card
    assert "from step 2 (" in card and "`second --resume`" in card
    assert card.count("| 2 | ") == 1  # the learning curve names step 2 once
    assert "since its last start (step 2)" in card


def test_keep_last_k_and_refuse_to_clobber(tmp_path):
    cfg = tiny_cfg(tmp_path / "run", "max_steps=5", "checkpoint.every=1", "checkpoint.keep_last=2")
    T.train(cfg)
    root = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint-00000004", "checkpoint-00000005"]
    assert T.latest_checkpoint(tmp_path / "run").name == "checkpoint-00000005"
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    with pytest.raises(T.ConfigError, match="already holds checkpoints"):
        T.train(cfg)


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    real = T._write_extras

    def flaky(tmp, state, ema, cfg):
        if state["step"] == 4:
            (tmp / "trainer_state.json").write_text("{half")  # something half written, then the crash
            raise OSError("disk full")
        real(tmp, state, ema, cfg)

    monkeypatch.setattr(T, "_write_extras", flaky)
    with pytest.raises(OSError, match="disk full"):
        T.train(tiny_cfg(tmp_path / "run", "max_steps=4", "checkpoint.every=2"))
    root = tmp_path / "run" / "checkpoints"
    assert [p.name for p in root.iterdir()] == ["checkpoint-00000002"]  # no partial folder, old one complete
    good = root / "checkpoint-00000002"
    state = json.loads((good / T.TRAINER_STATE).read_text())
    assert state["step"] == 2 and state["lr_scheduler"]["last_epoch"] == 2
    assert {"model.safetensors", "optimizer.bin", "ema.safetensors", "config.yaml", "random_states_0.pkl"} <= \
        {p.name for p in good.iterdir()}
    weights(good)  # loadable


def test_interrupted_saves_are_cleaned_or_recovered(tmp_path):
    root = tmp_path / "checkpoints"
    for name in ("checkpoint-00000002", ".old-checkpoint-00000004", ".tmp-checkpoint-00000006",
                 ".old-checkpoint-00000002"):
        (root / name).mkdir(parents=True)
    T._recover_interrupted_saves(root)  # what train() does first
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint-00000002", "checkpoint-00000004"]


# ============================================================================================== CLI
def test_cli_train_two_steps_exports_a_loadable_pipeline(tmp_path, capsys):
    from diffthinker.cli import main
    from diffthinker.diffusion.pipeline import DiffThinkerPipeline

    out = tmp_path / "run"
    code = main(["train", "diffusion", "--output-dir", str(out), *TINY, "max_steps=2", "export=true",
                 "eval.at_end=true", "report_to=tensorboard"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["solve_rate"] is not None
    pipe = DiffThinkerPipeline.from_pretrained(out / "pipeline", expected_task="maze-v1", expected_resolution=64)
    task = get_task("maze")
    inst = task.generate("4", 7)
    img = pipe(task.render(inst, size=64), task="maze-v1", num_inference_steps=2,
               generator=torch.Generator().manual_seed(0)).images[0]
    assert img.size == (64, 64)
    card = (out / "pipeline" / "README.md").read_text()
    for needle in ("train diffusion", "Validation solve rate", "seed rule", "fingerprint", "## Machine", "```yaml"):
        assert needle in card
    assert any((out / "logs").rglob("events.out.tfevents*"))
    assert (out / "samples" / "step-00000002.png").is_file()
    assert main(["train", "diffusion", "--output-dir", str(tmp_path / "x"), "optim.lrr=1"]) == 2
    assert "unknown config key 'optim.lrr'" in capsys.readouterr().err


def test_workers_do_not_change_the_stream(tmp_path):
    a = T.train(tiny_cfg(tmp_path / "a", "max_steps=2", "data.num_workers=0"))
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    b = T.train(tiny_cfg(tmp_path / "b", "max_steps=2", "data.num_workers=1"))
    wa, wb = weights(a.checkpoint), weights(b.checkpoint)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_saved_dataset_source_drops_validation_puzzles_and_refuses_official_rows(tmp_path):
    from diffthinker.data import build_dataset, make_manifest, save_dataset

    ds = build_dataset("maze", "4", n=6, seed=0, size=64, progress=False)  # seeds 0..: overlap the validation set
    save_dataset(ds, tmp_path / "train", make_manifest("dataset"))
    specs = parse_level_specs(["maze:4"])
    val = validation_set(specs, 2, seed=0)
    batches = PuzzleBatches(specs, ["maze-v1"], 64, 3, dataset=ds, blocked=BlockedHashes.build(val))
    assert batches.dataset_blocked == 2 and len(batches.keep) == 4
    used = {h for k in range(4) for h in batches[k]["hash64"].tolist()}
    from diffthinker.diffusion.data import _hash64

    assert used == {_hash64(h) for i, h in enumerate(ds["content_hash"]) if i in batches.keep}
    result = T.train(tiny_cfg(tmp_path / "run", "max_steps=1", f"data.dataset={tmp_path / 'train'}"))
    assert result.step == 1
    official = ds.map(lambda row: {"official": True})
    save_dataset(official, tmp_path / "official", make_manifest("dataset"))
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    with pytest.raises(TaskError, match="official test items"):
        T.train(tiny_cfg(tmp_path / "run2", "max_steps=1", f"data.dataset={tmp_path / 'official'}"))


# ============================================================================================== fine-tuning
def _save_tiny_pipeline(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A run of 1 step exported as a pipeline; returns its folder and the denoiser weights it holds."""
    out = tmp_path / "base"
    T.train(tiny_cfg(out, "max_steps=1", "export=true"))
    folder = out / "pipeline"
    return folder, load_file(str(folder / "denoiser" / "diffusion_pytorch_model.safetensors"))


def test_init_from_a_saved_pipeline_starts_from_its_weights_and_trains_them(tmp_path):
    base, base_weights = _save_tiny_pipeline(tmp_path)
    cfg = tiny_cfg(tmp_path / "ft", "max_steps=1", "export=true", f"model.init_from={base}", "seed=5")
    model = build_denoiser(cfg.model.preset, ["maze-v1"], 64, **cfg.model.overrides)
    assert T.init_weights_from(model, base) == base / "denoiser"
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in base_weights.items())
    # the same weights through the denoiser folder itself
    fresh = build_denoiser(cfg.model.preset, ["maze-v1"], 64, **cfg.model.overrides)
    T.init_weights_from(fresh, base / "denoiser")
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in base_weights.items())

    result = T.train(cfg)
    tuned = weights(result.checkpoint)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and n in tuned]
    # one step at a small lr from the base weights: close to them (a fresh init with seed 5 would be far), not equal
    moved = [n for n in trainable if not torch.equal(tuned[n], base_weights[n])]
    assert moved and len(moved) > len(trainable) // 2
    drift = max((tuned[n] - base_weights[n]).abs().max().item() for n in trainable)
    assert drift < 0.05, drift
    card = (tmp_path / "ft" / "pipeline" / "README.md").read_text()
    assert f"fine-tuned from the weights of `{base}`" in card


def test_init_from_refuses_a_missing_folder_and_another_architecture(tmp_path):
    with pytest.raises(T.ConfigError, match="model.init_from"):
        tiny_cfg(tmp_path / "x", f"model.init_from={tmp_path / 'nowhere'}")
    base, _ = _save_tiny_pipeline(tmp_path)
    wider = tiny_cfg(tmp_path / "y", f"model.init_from={base}",
                     "model.overrides={num_layers: 2, num_attention_heads: 2, attention_head_dim: 16, patch_size: 16}")
    with pytest.raises(T.ConfigError, match=r"num_layers = 1, the config builds num_layers = 2"):
        T.train(wider)
    other_task = tiny_cfg(tmp_path / "z", f"model.init_from={base}", "data.levels=[frozenlake:vsp3]")
    with pytest.raises(T.ConfigError, match=r"tasks = \['maze-v1'\]"):
        T.train(other_task)

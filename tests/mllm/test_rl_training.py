"""RL on the tiny policy: every preset trains two steps and moves every trainable parameter; dynamic sampling
terminates and keeps mixed groups; replay and offline members take their surrogates; N + resume + N == 2N through
the real training entry point; the CLI entry."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from mllm_baselines.config import load_config
from mllm_baselines.data import PuzzleStream, parse_level_specs
from mllm_baselines.generation import HFGenerator
from mllm_baselines.policy import build_tiny_policy, load_policy
from mllm_baselines.rl.presets import PRESETS
from mllm_baselines.rl.trainer import RLStep
from mllm_baselines.sft import sft_examples, sft_loss
from mllm_baselines.train import find_checkpoints, main, train

from .conftest import MICRO

LEVELS = ["frozenlake:vsp3"]
SMALL = ["data.levels=[frozenlake:vsp3]", "rl.batch_size=2", "rl.num_generations=4", "rl.micro_batch_size=16",
         "rl.max_completion_length=8", "rl.steps=2", "rl.lr=1e-3"]


@pytest.fixture(scope="module")
def warm_dir(tmp_path_factory):
    """A micro policy after 8 SFT steps on 3x3 lakes: it answers with moves, right sometimes (reward variance)."""
    pol = build_tiny_policy(["frozenlake"], overrides=MICRO, max_new_tokens={"frozenlake-v1": 8})
    stream = PuzzleStream(parse_level_specs(LEVELS))
    opt = torch.optim.AdamW(pol.model.parameters(), lr=3e-2)
    pol.model.train()
    for i in range(8):
        loss, _ = sft_loss(pol, sft_examples(pol, stream.take(8 * i, 8)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return pol.save(tmp_path_factory.mktemp("warm") / "policy")


def make_step(warm_dir, *overrides, policy=None):
    cfg = load_config(None, [*SMALL, *overrides]).rl
    pol = policy or load_policy(warm_dir)
    ref = copy.deepcopy(pol.model).eval() if cfg.beta > 0 else None
    opt = torch.optim.AdamW([p for p in pol.model.parameters() if p.requires_grad], lr=cfg.lr)

    def optimizer_step():
        gn = torch.nn.utils.clip_grad_norm_(pol.model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(gn)

    step = RLStep(cfg, pol, seed=0, generator=HFGenerator(64), budgets={"frozenlake-v1": 8}, ref_model=ref,
                  optimizer_step=optimizer_step)
    stream = PuzzleStream(parse_level_specs(LEVELS), seed_start=5000)
    pos = [0]

    def puzzles(n):
        out = stream.take(pos[0], n)
        pos[0] += n
        return out

    return step, pol, puzzles


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_two_steps_and_moves_every_parameter(warm_dir, preset):
    step, pol, puzzles = make_step(warm_dir, f"preset={preset}")
    before = {n: p.detach().clone() for n, p in pol.model.named_parameters() if p.requires_grad}
    metrics = [step.run(s, puzzles).metrics for s in range(2)]
    still = [n for n, p in pol.model.named_parameters() if p.requires_grad and torch.equal(p, before[n])]
    assert still == [], f"{preset}: unchanged parameters {still[:5]}"
    for m in metrics:
        assert all(v == v for k, v in m.items() if k != "siren_anchor"), m  # no NaN
        for k in ("reward", "accuracy", "entropy", "response_length", "frac_zero_std", "clip_low_frac",
                  "clip_high_frac"):
            assert k in m
    if preset == "grpo":
        assert "kl" in metrics[1] and metrics[1]["kl"] >= 0
    if preset == "revisual":
        assert [m["prompt_mode_text"] for m in metrics] == [0.0, 1.0]  # image RL, then text-only RL
    if preset == "siren":
        assert step.siren_anchor == pytest.approx(metrics[0]["siren_h_sel"])
    if preset == "exgrpo":
        assert "replay_questions" in metrics[1]


def test_dynamic_sampling_keeps_mixed_groups_and_terminates(warm_dir):
    step, _, puzzles = make_step(warm_dir, "preset=dapo", "rl.filter.max_gen_batches=6")
    groups, stats = step.collect(0, puzzles)
    if stats["filter_filled"]:
        assert all(0 < g.accuracy < 1 for g in groups) and len(groups) == 2
    assert 1 <= stats["gen_rounds"] <= 6
    # an impossible window: the loop stops after max_gen_batches and falls back to the last round
    step, _, puzzles = make_step(warm_dir, "preset=dapo", "rl.filter.min_acc=0.6", "rl.filter.max_acc=0.7",
                                 "rl.filter.max_gen_batches=2")
    groups, stats = step.collect(0, puzzles)
    assert stats["gen_rounds"] == 2 and stats["filter_filled"] == 0 and len(groups) == 2


def test_offline_traces_are_correct_members_with_the_shaped_surrogate(warm_dir):
    step, pol, puzzles = make_step(warm_dir, "preset=luffy")
    groups, _ = step.collect(0, puzzles)
    for g in groups:
        assert [t.origin for t in g.members] == ["on", "on", "on", "offline"] and g.members[-1].correct
    batch = step.prepare(0, groups)
    norm = step._normalizer(batch, range(len(batch)))
    loss, _ = step.loss_terms(batch, list(range(len(batch))), norm, False)
    # by hand: off-policy rows contribute −A·p/(p+0.1), on-policy rows −A·ρ (no clip), minus the 0.001 entropy
    # bonus, summed over tokens and divided by rows · L_max (dr_grpo)
    from mllm_baselines.forward import completion_forward

    out = completion_forward(pol, batch.rows(range(len(batch))))
    off = torch.tensor([o == "offline" for o in batch.origin])
    p = out.logp.exp()
    adv = batch.adv.unsqueeze(-1)
    assert "old_logp" not in batch.tokens  # one update per rollout batch: π_old is the loss forward's own values
    ratio = torch.exp(out.logp - out.logp.detach())
    from mllm_baselines.forward import entropy_from_logits

    ent = entropy_from_logits(out.logits)
    tok = torch.where(off.unsqueeze(-1), -adv * p / (p + 0.1), -adv * ratio) - 0.001 * ent
    expected = (tok * batch.mask).sum() / (len(batch) * 8)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-6)


def test_replay_member_takes_the_recorded_importance_ratio(warm_dir):
    from mllm_baselines.forward import completion_forward
    from mllm_baselines.prompts import build_prompt
    from mllm_baselines.rl.batch import Group, Trajectory

    step, pol, puzzles = make_step(warm_dir, "preset=exgrpo", "rl.entropy_coef=0")
    lake = pol.meta.tasks[0]
    pz = puzzles(1)[0]
    from diffthinker.tasks import get_task

    task = get_task(lake)
    ids = pol.encode_text(task.answer_to_text(task.solve(pz.instance))) + [pol.eos_id]
    prompt = build_prompt(task, instance=pz.instance)
    with torch.no_grad():
        recorded = completion_forward(pol, pol.encode([prompt], [ids])).logp[0].tolist()
    g = Group(pz, prompt, [Trajectory(ids, "x", False, correct=True), Trajectory([5], "y", False),
                           Trajectory([6], "z", False), Trajectory([7], "w", False)])
    step.buffer.observe([g], [[recorded, None, None, None]])
    step.buffer.active = True
    groups, _ = step.collect(1, puzzles)  # ratio 0.5 of 2 prompts: one replay group
    replay = [t for gr in groups for t in gr.members if t.origin == "replay"]
    assert len(replay) == 1 and replay[0].ids == ids and replay[0].behavior_logp == recorded
    assert sum(t.origin == "on" for gr in groups for t in gr.members) == 7
    batch = step.prepare(1, groups)
    i = batch.origin.index("replay")
    norm = step._normalizer(batch, range(len(batch)))
    loss, _ = step.loss_terms(batch, [i], norm, True)
    # θ = θ_behaviour: w = 1, f(w) = 1/1.1, so the row adds −A/1.1 per token, / (rows · L_max)
    expected = -float(batch.adv[i]) / 1.1 * len(ids) / (len(batch) * 8)
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-7)


def _final_weights(out):
    return load_file(str(find_checkpoints(out)[-1] / "model.safetensors"))


def test_resume_is_exact(warm_dir, tmp_path):
    """N steps + resume + N steps == 2N steps: weights, optimizer, replay buffer and SIREN anchor all restored."""
    common = [f"model.name_or_path={warm_dir}", "preset=[exgrpo, siren]", "rl.replay.start_solve_rate=0.0",
              "eval.n=2", "eval.at_end=false", "export=false", "progress=false", "num_threads=1",
              "checkpoint.every=2", *SMALL]
    straight = train(load_config(None, [*common, "rl.steps=4", f"output_dir={tmp_path / 'a'}"]))
    train(load_config(None, [*common, "rl.steps=2", f"output_dir={tmp_path / 'b'}"]))
    resumed = train(load_config(None, [*common, "rl.steps=4", f"output_dir={tmp_path / 'b'}",
                                       "checkpoint.resume=latest"]))
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = json.loads((find_checkpoints(tmp_path / "a")[-1] / "trainer_state.json").read_text())
    sb = json.loads((find_checkpoints(tmp_path / "b")[-1] / "trainer_state.json").read_text())
    assert sa["rl_hooks"] == sb["rl_hooks"] and sa["rl_hooks"]["siren_anchor"] is not None
    assert sa["step"] == sb["step"] == 4 and sa["puzzles"] == sb["puzzles"]
    assert straight.state["step"] == resumed.state["step"] == 4
    # a fresh run into a folder with checkpoints is refused unless overwrite=true
    with pytest.raises(Exception, match="already holds checkpoints"):
        train(load_config(None, [*common, f"output_dir={tmp_path / 'a'}"]))


def test_cli_entry(warm_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--config", "training/configs/mllm_sft.yaml", f"model.name_or_path={warm_dir}", "data.levels=[frozenlake:vsp3]",
            "sft.steps=2", "sft.batch_size=2", "rl.steps=0", "eval.n=2", "progress=false", f"output_dir={out}"]
    assert main(["--print-config", *args]) == 0
    assert "sft:" in capsys.readouterr().out
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stages"] == {"sft": 2} and (out / "policy" / "diffthinker_policy.json").is_file()
    training = load_policy(out / "policy").meta.training
    assert training["state"]["done"] == ["sft"]
    # the policy records what it never trained on, recomputable from the held-out rule
    from diffthinker.tasks.level_specs import hash_fingerprint, held_out_puzzles, parse_level_specs

    held = held_out_puzzles(parse_level_specs(["frozenlake:vsp3"]), 2, seed=0)
    rec = training["held_out"]
    assert rec["evaluation_set"]["fingerprint"] == hash_fingerprint(p.content_hash for p in held)
    assert rec["fingerprint"] == rec["evaluation_set"]["fingerprint"] and rec["sources"] == {"evaluation": 2}
    assert rec["evaluation_set"]["seeds"] == {"frozenlake-v1:vsp3": [held[0].seed, held[-1].seed, 2]}
    # shipped into checkpoints/ with a model card written from that record, and it still loads as a solver
    from script_modules import load_script

    ship = load_script("training/ship_checkpoint.py")
    dst = ship.ship(out / "policy", tmp_path / "checkpoints" / "mllm-tiny-test")
    card = (dst / "README.md").read_text()
    assert "| frozenlake-v1:vsp3 | 2 |" in card  # the final evaluation per level
    assert f"`{rec['evaluation_set']['fingerprint']}`" in card and "## Config" in card
    from diffthinker.inference import load_solver

    assert load_solver(dst, temperature=0.0).kind == "mllm"
    assert main([*args, "rl.loss_type=ppo"]) == 2
    assert "rl.loss_type" in capsys.readouterr().err

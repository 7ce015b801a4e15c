"""Generation (per-row seeds, Gumbel-max sampling, truncation), prompts, rewards (graded + TRL callable), the
Solver protocol, the evaluation/training puzzle sets, and the vLLM config."""

from __future__ import annotations

import pytest
import torch

from diffthinker.solver_api import RawCandidate, Solver
from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError
from mllm_baselines.data import LevelSpec, PuzzleStream, eval_puzzles, parse_level_specs
from mllm_baselines.generation import (
    HFGenerator,
    PerRowSampler,
    SamplingConfig,
    VLLMConfig,
    VLLMGenerator,
    derive_seed,
    truncate_logits,
)
from mllm_baselines.prompts import build_prompt, target_text
from mllm_baselines.rewards import PuzzleReward, RewardConfig, score_completion
from mllm_baselines.solver import MLLMSolver, load_mllm_solver

MAZE = get_task("maze")
LAKE = get_task("frozenlake")


# ============================================================================================== sampling
def test_gumbel_sampler_draws_from_softmax_of_truncated_logits():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    probs = torch.softmax(logits / 0.7, -1)[0]
    n = 4000
    counts = torch.zeros(4)
    sampler = PerRowSampler([torch.Generator().manual_seed(s) for s in range(n)], SamplingConfig(temperature=0.7))
    picks = sampler(None, logits.expand(n, 4)).argmax(-1)
    counts += torch.bincount(picks, minlength=4)
    # 4000 draws: each frequency within 4 standard errors of its probability
    se = (probs * (1 - probs) / n).sqrt()
    assert ((counts / n - probs).abs() < 4 * se + 1e-3).all()
    # top-k 2 never picks the two smallest; greedy is argmax
    k2 = PerRowSampler([torch.Generator().manual_seed(s) for s in range(200)], SamplingConfig(top_k=2))
    assert set(k2(None, logits.expand(200, 4)).argmax(-1).tolist()) == {0, 1}
    assert PerRowSampler([], SamplingConfig(temperature=0))(None, logits).argmax(-1).item() == 0


def test_top_p_keeps_the_crossing_token():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(truncate_logits(scores, 0, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(truncate_logits(scores, 0, 0.5)).tolist() == [[True, False, False, False]]
    with pytest.raises(TaskError, match="top_p"):
        SamplingConfig(top_p=0)
    with pytest.raises(TaskError, match="temperature"):
        SamplingConfig(temperature=-1)


def test_generation_rows_do_not_depend_on_batching(tiny_policy):
    prompts = [build_prompt(MAZE, instance=MAZE.generate("8", s)) for s in range(3)]
    rows = [prompts[0], prompts[0], prompts[1], prompts[2]]
    seeds = [11, 12, 13, 14]
    gen = HFGenerator()
    full = gen.generate(tiny_policy, rows, seeds, SamplingConfig(), 10, batch_size=4)
    single = [gen.generate(tiny_policy, [p], [s], SamplingConfig(), 10)[0] for p, s in zip(rows, seeds)]
    assert [c.ids for c in full] == [c.ids for c in single]
    assert full[0].ids != full[1].ids  # two seeds of one prompt differ
    for c in full:  # no EOS within budget: truncated, full length; else EOS is the last token
        assert (c.truncated and len(c.ids) == 10) or (not c.truncated and c.ids[-1] == tiny_policy.eos_id)
    greedy = gen.generate(tiny_policy, rows[:2], [1, 2], SamplingConfig(temperature=0), 10)
    assert greedy[0].ids == greedy[1].ids


def test_derive_seed_is_stable_and_63_bit():
    assert derive_seed("rl", 3, 1) == derive_seed("rl", 3, 1) != derive_seed("rl", 3, 2)
    assert 0 <= derive_seed(1) < 2 ** 63


# ============================================================================================== prompts / rewards
def test_targets_and_traces_parse_back_to_the_solver_answer():
    for task, level in ((MAZE, "8"), (LAKE, "vsp3")):
        for s in range(5):
            inst = task.generate(level, s)
            ans = task.solve(inst)
            for reasoning in (False, True):
                text = target_text(task, inst, reasoning=reasoning)
                assert task.verify(inst, task.parse_text(text, inst)).correct
            assert "path:" in target_text(task, inst, reasoning=True)
            assert target_text(task, inst) == task.answer_to_text(ans)
    with pytest.raises(TaskError, match="needs the puzzle instance"):
        build_prompt(MAZE, mode="text")
    with pytest.raises(TaskError, match="unknown prompt mode"):
        build_prompt(MAZE, mode="audio", instance=MAZE.generate("8", 0))


def test_graded_reward_orders_junk_invalid_partial_and_solved():
    inst = MAZE.generate("8", 3)
    moves = MAZE.answer_to_text(MAZE.solve(inst))
    cfg = RewardConfig(optimal=0.5)
    junk = score_completion(MAZE, inst, "no idea", cfg)
    solved = score_completion(MAZE, inst, f"the path is {moves}", cfg)
    inv = {"U": "D", "D": "U", "L": "R", "R": "L"}
    detours = [d + inv[d] + moves for d in "UDLR" if MAZE.verify(inst, MAZE.parse_text(d + inv[d] + moves)).correct]
    detour = score_completion(MAZE, inst, detours[0], cfg)  # a correct walk that is not the shortest
    assert junk.reward == 0 and not junk.parsed
    assert solved.correct and solved.optimal and solved.reward == pytest.approx(cfg.max_reward)
    assert detour.correct and not detour.optimal and detour.reward == pytest.approx(cfg.max_reward - 0.5)
    partial = score_completion(MAZE, inst, moves[:-1], cfg)  # stops one short: valid, not correct
    assert partial.parsed and partial.valid and not partial.correct
    assert junk.reward < partial.reward < solved.reward
    with pytest.raises(TaskError, match="reward weight 'format'"):
        RewardConfig(format="x")


def test_trl_reward_callable_accepts_strings_and_chat_messages():
    insts = [LAKE.generate("vsp3", s) for s in range(3)]
    answers = [LAKE.answer_to_text(LAKE.solve(i)) for i in insts]
    fn = PuzzleReward()
    plain = fn([answers[0], "junk", answers[2]], task=["frozenlake"] * 3, instance=[i.to_json() for i in insts],
               prompts=["p"] * 3, completion_ids=[[1]] * 3)
    chat = PuzzleReward(task="frozenlake")([[{"role": "assistant", "content": a}] for a in answers],
                                           instance=[i.to_dict() for i in insts])
    assert plain[0] == plain[2] == pytest.approx(RewardConfig().max_reward) and plain[1] == 0
    assert chat == [pytest.approx(RewardConfig().max_reward)] * 3 and fn.__name__ == "puzzle_reward"
    with pytest.raises(TaskError, match="column 'instance'"):
        fn(answers, task=["frozenlake"] * 3)
    with pytest.raises(TaskError, match="needs a task"):
        fn(answers, instance=[i.to_json() for i in insts])
    with pytest.raises(TaskError, match="equal lengths"):
        fn(answers, task=["frozenlake"], instance=[insts[0].to_json()])


# ============================================================================================== solver
def test_solver_protocol_seeds_and_round_trip(tiny_policy, tmp_path):
    solver = MLLMSolver(tiny_policy, batch_size=3)
    assert isinstance(solver, Solver) and solver.kind == "mllm"
    assert solver.supports("maze-v1") and solver.supports("frozenlake") and not solver.supports("tsp")
    images = [MAZE.render(MAZE.generate("8", s), size=512) for s in range(2)]  # any size: area-resized to 64
    out = solver.sample("maze", images, [[1, 2, 3], [4]])
    assert [len(r) for r in out] == [3, 1] and all(isinstance(c, RawCandidate) and c.text is not None
                                                   for r in out for c in r)
    alone = solver.sample("maze", images[1:], [[4]], batch_size=1)
    assert alone[0][0].text == out[1][0].text
    tiny_policy.save(tmp_path / "p")
    loaded = load_mllm_solver(tmp_path / "p")
    assert loaded.name == "mllm:p" and loaded.sample("maze", images[1:], [[4]])[0][0].text == out[1][0].text
    with pytest.raises(TaskError, match="not tsp-v1"):
        solver.sample("tsp", images, [[1], [2]])
    with pytest.raises(TaskError, match="2 images but 1 seed lists"):
        solver.sample("maze", images, [[1]])
    with pytest.raises(TaskError, match="unknown sampling options"):
        solver.sample("maze", images, [[1], [2]], guidance=3)


# ============================================================================================== puzzles
def test_eval_set_equals_the_diffusion_validation_set_and_training_never_touches_it():
    from diffthinker.diffusion.data import validation_set

    specs = parse_level_specs(["frozenlake:vsp3"])
    ours = eval_puzzles(specs, 40)
    theirs = validation_set(specs, 40, 0)
    assert [(p.seed, p.content_hash) for p in ours] == [(v.seed, v.content_hash) for v in theirs]
    blocked = {p.content_hash for p in ours}
    stream = PuzzleStream(specs, seed_start=0, blocked=blocked)  # seeds 0.. would hit the eval set at once
    drawn = stream.take(0, 60)
    assert not blocked & {p.content_hash for p in drawn}
    assert any(p.seed >= 1 << 40 for p in drawn)  # collisions moved to the retry stride
    assert [p.seed for p in stream.take(10, 5)] == [p.seed for p in drawn[10:15]]
    assert parse_level_specs("maze") == [LevelSpec("maze-v1", "8")] or parse_level_specs("maze")[0].task == "maze-v1"
    with pytest.raises(TaskError, match="unknown level"):
        parse_level_specs(["maze:99"])


# ============================================================================================== vLLM
def test_vllm_config_is_validated_and_backend_is_import_guarded():
    assert VLLMConfig().validate().sync_every == 1
    with pytest.raises(TaskError, match="gpu_memory_utilization"):
        VLLMConfig(gpu_memory_utilization=1.5).validate()
    with pytest.raises(TaskError, match="dtype"):
        VLLMConfig(dtype="int3").validate()
    with pytest.raises(TaskError, match="sync_every"):
        VLLMConfig(sync_every=0).validate()
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"diffthinker\[gpu\]"):
            VLLMGenerator("any/model")


def test_vllm_backend_config_is_validated_in_the_training_config():
    from mllm_baselines.config import ConfigError, load_config

    cfg = load_config(None, ["generation.backend=vllm", "generation.vllm={gpu_memory_utilization: 0.5}"])
    assert cfg.generation.backend == "vllm" and cfg.generation.vllm == {"gpu_memory_utilization": 0.5}
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        load_config(None, ["generation.vllm={gpu_memory_utilization: 2}"])
    with pytest.raises(ConfigError, match="generation.vllm"):
        load_config(None, ["generation.vllm={gpus: 2}"])
    with pytest.raises(ConfigError, match="generation.backend"):
        load_config(None, ["generation.backend=sglang"])


def test_a_saved_policy_plugs_into_diffthinker_solve(tiny_policy, tmp_path):
    from diffthinker.inference import load_solver, solve

    tiny_policy.save(tmp_path / "policy")
    solver = load_solver(tmp_path / "policy", name="tiny-mllm")
    assert solver.kind == "mllm" and solver.name == "tiny-mllm" and solver.tasks == ["maze-v1", "frozenlake-v1"]
    insts = [LAKE.generate("vsp3", s) for s in range(3)]
    images = [LAKE.render(i, size=256) for i in insts]
    results = solve(solver, "frozenlake", insts, images, num_samples=2, select="verifier", seed=1, batch_size=4)
    assert len(results) == 3 and all(len(r.candidates) == 2 and r.candidates[0].raw.text is not None
                                     for r in results)
    again = solve(solver, "frozenlake", insts, images, num_samples=2, select="verifier", seed=1, batch_size=2)
    assert [[c.raw.text for c in r.candidates] for r in results] == [[c.raw.text for c in r.candidates]
                                                                     for r in again]


def test_load_solver_temperature_zero_is_greedy_and_refused_for_pipelines(tiny_policy, tmp_path):
    from diffthinker.inference import load_solver, solve
    from diffthinker.tasks.base import TaskError

    tiny_policy.save(tmp_path / "policy")
    greedy = load_solver(tmp_path / "policy", temperature=0.0)
    insts = [LAKE.generate("vsp3", s) for s in range(3)]
    images = [LAKE.render(i, size=64) for i in insts]
    texts = [[c.raw.text for c in r.candidates]
             for r in solve(greedy, "frozenlake", insts, images, num_samples=3, select="first", seed=0)]
    assert all(len(set(t)) == 1 for t in texts)  # greedy: every sample of a puzzle is the same answer
    other_seed = solve(greedy, "frozenlake", insts, images, num_samples=1, select="first", seed=7)
    assert [r.candidates[0].raw.text for r in other_seed] == [t[0] for t in texts]
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    with pytest.raises(TaskError, match="temperature=0.0 applies to MLLM policies"):
        load_solver(tmp_path / "pipe", temperature=0.0)


def test_training_forward_reproduces_generation_under_left_padding(tiny_policy):
    """Greedy tokens are the argmax of the training forward's logits at every completion position, also for a batch
    mixing image and (longer or shorter) text prompts: generation and training see the same positions."""
    from mllm_baselines.forward import completion_forward

    inst = LAKE.generate("vsp3", 4)
    prompts = [build_prompt(LAKE, instance=inst), build_prompt(LAKE, instance=inst, mode="text"),
               build_prompt(MAZE, instance=MAZE.generate("8", 2))]
    comps = HFGenerator().generate(tiny_policy, prompts, [0, 1, 2], SamplingConfig(temperature=0), 6)
    batch = tiny_policy.encode(prompts, [c.ids for c in comps])
    with torch.no_grad():
        logits = completion_forward(tiny_policy, batch).logits
    logits[..., tiny_policy.banned_ids] = float("-inf")
    for i, c in enumerate(comps):
        assert logits[i, : len(c.ids)].argmax(-1).tolist() == c.ids


def test_shared_image_features_equal_repeated_pixels(tiny_policy):
    """A rollout micro-batch encodes each distinct image once; logits and gradients match repeating the pixels."""
    import copy

    from mllm_baselines.data import LevelSpec, Puzzle
    from mllm_baselines.forward import completion_forward
    from mllm_baselines.rl.batch import Group, RolloutBatch, Trajectory

    groups = []
    for s in range(2):
        inst = LAKE.generate("vsp3", s)
        g = Group(Puzzle(LevelSpec("frozenlake-v1", "vsp3"), s, inst, str(s)), build_prompt(LAKE, instance=inst))
        g.members = [Trajectory([30 + k, 31, tiny_policy.eos_id], "x", False) for k in range(3)]
        groups.append(g)
    groups.append(Group(groups[0].puzzle, build_prompt(LAKE, instance=groups[0].puzzle.instance, mode="text"),
                        [Trajectory([33, tiny_policy.eos_id], "y", False)]))
    batch = RolloutBatch(tiny_policy, groups)
    rows = batch.rows(range(len(batch)))
    assert rows["pixel_values"].shape[0] == 2 * 64 and rows["image_source"] == [0, 0, 0, 1, 1, 1]
    model = copy.deepcopy(tiny_policy.model)
    shared = completion_forward(tiny_policy, rows, model=model)
    shared.logp.sum().backward()
    g_shared = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    # the same rows with the pixels repeated per row (what Policy.encode builds), through the plain forward
    repeated = tiny_policy.encode(batch.prompts, [t.ids for t in batch.trajs])
    assert repeated["pixel_values"].shape[0] == 6 * 64
    by_row = [tiny_policy.processor.image_processor(images=[g.prompt.image], return_tensors="pt")["pixel_values"]
              for g in groups[:2] for _ in range(3)]
    assert torch.equal(repeated["pixel_values"], torch.cat(by_row))
    assert torch.equal(rows["pixel_values"], torch.cat([by_row[0], by_row[3]]))  # each group's own image
    assert torch.equal(batch.rows([4])["pixel_values"], by_row[3])
    sizes = rows["image_grid_distinct"].prod(-1).tolist()
    chunks = torch.split(rows["pixel_values"], sizes)
    rep = dict(rows, pixel_values=torch.cat([chunks[j] for j in rows["image_source"]]))
    del rep["image_source"], rep["image_grid_distinct"]
    plain = completion_forward(tiny_policy, rep, model=model)
    plain.logp.sum().backward()
    assert torch.allclose(shared.logits, plain.logits, atol=1e-5)
    for n, p in model.named_parameters():
        assert torch.allclose(g_shared[n], p.grad, atol=1e-5), n


def test_vppo_corrupted_pixels_follow_the_batch_layout(tiny_policy):
    from mllm_baselines.data import LevelSpec, Puzzle
    from mllm_baselines.rl.batch import Group, RolloutBatch, Trajectory
    from mllm_baselines.rl.probes import corrupted_pixels

    groups = []
    for s in range(2):
        inst = LAKE.generate("vsp3", s)
        groups.append(Group(Puzzle(LevelSpec("frozenlake-v1", "vsp3"), s, inst, str(s)),
                            build_prompt(LAKE, instance=inst), [Trajectory([30, tiny_policy.eos_id], "x", False)] * 2))
    batch = RolloutBatch(tiny_policy, groups)
    same = corrupted_pixels(tiny_policy, batch, patch=8, p=0.0, seed=0, step=0)   # nothing blackened
    assert torch.equal(same, batch.enc["pixel_values"])
    dark = corrupted_pixels(tiny_policy, batch, patch=8, p=1.0, seed=0, step=0)   # everything blackened
    assert dark.shape == same.shape and not torch.equal(dark, same) and torch.equal(dark[:64], dark[64:128])

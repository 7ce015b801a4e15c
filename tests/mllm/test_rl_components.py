"""RL components against their formulas, on random tensors (reference/grpo_family.md, "CPU unit-test invariants")."""

from __future__ import annotations

import math

import pytest
import torch

from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError
from mllm_baselines.config import ConfigError, load_config
from mllm_baselines.data import LevelSpec, Puzzle
from mllm_baselines.prompts import build_prompt
from mllm_baselines.rl import advantages as A
from mllm_baselines.rl import objectives as O
from mllm_baselines.rl import regularizers as R
from mllm_baselines.rl import weights as W
from mllm_baselines.rl.batch import Group, Trajectory
from mllm_baselines.rl.presets import PRESETS, preset_overrides
from mllm_baselines.rl.shapers import diversity_bonus, overlong_penalty, structure_units
from mllm_baselines.rl.sources import ExperienceBuffer, filter_groups

G = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=G)


def ragged_mask(n, c):
    lengths = torch.randint(1, c + 1, (n,), generator=G)
    return (torch.arange(c).unsqueeze(0) < lengths.unsqueeze(1)).float()


# ============================================================================================== advantages
def test_group_norm_constant_rewards_give_zero_and_matches_trl():
    group = torch.arange(4).repeat_interleave(6)
    assert torch.equal(A.group_norm(torch.full((24,), 0.7), group), torch.zeros(24))
    r = rand(24)
    adv = A.group_norm(r, group, "group")
    g = r.view(4, 6)
    trl = ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4)).flatten()
    assert torch.allclose(adv, trl, atol=1e-6)
    dr = A.group_norm(r, group, "none")
    assert torch.allclose(dr, (g - g.mean(1, keepdim=True)).flatten(), atol=1e-6)
    batch = A.group_norm(r, group, "batch")  # Lite-PPO: group mean, batch std
    assert torch.allclose(batch, (g - g.mean(1, keepdim=True)).flatten() / (r.std() + 1e-4), atol=1e-6)
    # statistics over on-policy members only (grpo_split); every member still gets an advantage
    stats = torch.tensor([True] * 5 + [False]).repeat(4)
    split = A.group_norm(r, group, "none", stats_mask=stats).view(4, 6)
    assert torch.allclose(split, g - g[:, :5].mean(1, keepdim=True), atol=1e-6)
    assert A.group_norm(torch.tensor([3.0]), torch.tensor([0]))[0] == 0
    with pytest.raises(TaskError, match="scale_rewards"):
        A.group_norm(r, group, "rank")


def test_conditional_split_properties():
    group = torch.arange(5).repeat_interleave(8)
    r = (rand(40) > 0).float()
    metric = rand(40)
    inter = A.conditional_split(r, metric, group, lam=1.0).view(5, 8)
    assert torch.allclose(inter.sum(1), torch.zeros(5), atol=1e-6)  # even n, α = 1: ΣA = 0
    intra = A.conditional_split(r, metric, group, lam=0.0)
    # λ = 0: each half is its own baseline
    for gi in range(5):
        idx = torch.arange(gi * 8, gi * 8 + 8)
        order = sorted(range(8), key=lambda k: (float(metric[idx[k]]), k))
        for half in (order[:4], order[4:]):
            h = idx[torch.tensor(half)]
            assert torch.allclose(intra[h], r[h] - r[h].mean(), atol=1e-6)
    # λ = 1: a member of the high half is compared with the low half's mean
    g0 = torch.arange(8)
    order = sorted(range(8), key=lambda k: (float(metric[k]), k))
    low, high = torch.tensor(order[:4]), torch.tensor(order[4:])
    assert torch.allclose(inter.flatten()[high], r[high] - r[low].mean(), atol=1e-6)
    assert torch.allclose(inter.flatten()[low], r[low] - r[high].mean(), atol=1e-6)
    del g0
    # ties are broken by position: all-equal metric puts the first half low, deterministically
    tie = A.conditional_split(torch.tensor([1.0, 0, 0, 0]), torch.zeros(4), torch.zeros(4, dtype=torch.long))
    assert tie.tolist() == [1.0, 0.0, -0.5, -0.5]
    # odd n: halves of 2 and 3, ΣA != 0 in general (the reference's caution)
    odd = A.conditional_split(torch.tensor([1.0, 0, 0, 0, 1]), torch.arange(5.0), torch.zeros(5, dtype=torch.long))
    assert abs(float(odd.sum())) > 1e-6


def test_pad_drops_near_zero_and_prioritises_large_advantages():
    adv = torch.tensor([0.0, 0.005, 2.0, -2.0, 0.1, -0.1])
    gen = torch.Generator().manual_seed(1)
    counts = A.pad_select(adv, threshold=0.01, temperature=0.5, num_samples=6000, generator=gen)
    assert counts[0] == counts[1] == 0 and counts.sum() == 6000
    probs = torch.softmax(adv[2:].abs() / 0.5, 0)
    assert torch.allclose(counts[2:] / 6000, probs.float(), atol=0.02)
    once = A.pad_select(adv, replacement=False, generator=gen)
    assert once.tolist() == [0, 0, 1, 1, 1, 1]
    assert A.pad_select(torch.zeros(4)).sum() == 0
    with pytest.raises(TaskError, match="temperature"):
        A.pad_select(adv, temperature=0)


# ============================================================================================== objectives
def trl_loss(per_token, mask, loss_type, max_len):
    """TRL GRPOTrainer._compute_loss aggregation (grpo_trainer.py), single process, one micro-batch."""
    if loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "dapo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return (per_token * mask).sum() / (per_token.size(0) * max_len)
    raise ValueError(loss_type)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_aggregators_equal_trl_and_split_exactly_over_micro_batches(loss_type):
    n, c = 10, 7
    tok, mask = rand(n, c), ragged_mask(n, c)
    norm = O.Normalizer(loss_type, rows=n, tokens=float(mask.sum()), max_len=c)
    full = O.aggregate(tok, mask, norm)
    assert torch.allclose(full, trl_loss(tok, mask, loss_type, c), atol=1e-6)
    parts = O.aggregate(tok[:3], mask[:3], norm) + O.aggregate(tok[3:], mask[3:], norm)
    assert torch.allclose(parts, full, atol=1e-6)
    # row weights (PAD multiplicities) equal repeating the rows
    w = torch.tensor([2.0, 0, 1, 1, 3, 0, 1, 1, 1, 1])
    rep = torch.repeat_interleave(torch.arange(n), w.long())
    norm_w = O.Normalizer(loss_type, rows=float(w.sum()), tokens=float((w * mask.sum(-1)).sum()), max_len=c)
    assert torch.allclose(O.aggregate(tok, mask, norm_w, w), trl_loss(tok[rep], mask[rep], loss_type, c), atol=1e-6)
    with pytest.raises(TaskError, match="loss_type"):
        O.Normalizer("ppo", 1, 1, 1)


def test_clip_surrogate_matches_ppo_and_dual_clip_caps_negative_advantages():
    logp, old = rand(6, 5) * 0.5, rand(6, 5) * 0.5
    adv = torch.tensor([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])
    loss, st = O.clip_surrogate(logp, old, adv, eps_low=0.2, eps_high=0.28)
    ratio = (logp - old).exp()
    a = adv.unsqueeze(-1)
    assert torch.allclose(loss, -torch.min(ratio * a, ratio.clamp(0.8, 1.28) * a))
    assert torch.equal(st["clip_low"], (ratio < 0.8) & (a < 0)) and torch.equal(st["clip_high"], (ratio > 1.28) & (a > 0))
    dual, st2 = O.clip_surrogate(logp + 3.0, old, adv, dual_clip=3.0)  # huge ratios
    neg = adv < 0
    assert torch.all(dual[neg] <= (-3.0 * adv[neg]).unsqueeze(-1) + 1e-6) and st2["clip_dual"].any()
    assert torch.allclose(O.noclip_surrogate(logp, old, adv), -ratio * a)
    # at θ = θ_old the clipped loss's gradient is the plain policy gradient −A ∇logp
    x = old.clone().requires_grad_(True)
    O.clip_surrogate(x, old, adv)[0].sum().backward()
    assert torch.allclose(x.grad, -a.expand_as(x))


def test_shaped_is_gradient_and_recorded_behaviour():
    logp = (torch.rand(4, 3, generator=G) * -3).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, 0.5, 2.0])
    O.shaped_is(logp, adv, gamma=0.1).sum().backward()
    p = logp.detach().exp()
    # d/dθ [p/(p+γ)] = γ/(p+γ)² · ∇p, and ∇p = p ∇logp
    assert torch.allclose(logp.grad, -adv.unsqueeze(-1) * 0.1 / (p + 0.1) ** 2 * p, atol=1e-6)
    # recorded behaviour at θ = θ_old: w = 1, f = 1/(1+γ)
    v = O.shaped_is(logp.detach(), adv, gamma=0.1, behavior_logp=logp.detach())
    assert torch.allclose(v, -adv.unsqueeze(-1) / 1.1 * torch.ones(4, 3))
    with pytest.raises(TaskError, match="gamma"):
        O.shaped_is(logp, adv, gamma=0)


# ============================================================================================== weights
def test_perception_shaping_and_mask():
    logp, aug = rand(8, 9), rand(8, 9)
    mask = ragged_mask(8, 9)
    dep = W.perception_dependency(logp, aug) * mask
    d = torch.clamp(aug - logp, -20, 20)
    assert torch.allclose(dep, torch.clamp(d.exp() - d - 1, 0, 10) * mask)
    alpha = W.perception_shaping(dep, mask, beta_min=0.9)
    assert abs(float(alpha.mean()) - 1.0) < 1e-6 and float(alpha.min()) == pytest.approx(0.9)
    assert torch.equal(W.perception_shaping(torch.ones(3, 4), torch.ones(3, 4)), torch.ones(3))
    keep = W.topk_token_mask(dep, mask, 0.4)
    assert keep.sum(-1).tolist() == [math.ceil(0.4 * n) for n in mask.sum(-1).tolist()]
    assert torch.all(keep <= mask)
    for i in range(8):  # the kept tokens are the largest S of the row
        kept, dropped = dep[i][keep[i] > 0], dep[i][(mask[i] > 0) & (keep[i] == 0)]
        if len(dropped):
            assert kept.min() >= dropped.max()
    img = get_task("maze").render(get_task("maze").generate("8", 0), size=64)
    black = W.patch_blacken(img, 8, 0.5, torch.Generator().manual_seed(0))
    import numpy as np

    arr = np.array(black)
    cells = arr.reshape(8, 8, 8, 8, 3).swapaxes(1, 2).reshape(64, -1)
    zeroed = (cells == 0).all(1)
    assert 10 < zeroed.sum() < 54  # ~half the patches, whole patches only
    assert np.array_equal(np.array(W.patch_blacken(img, 8, 0.5, torch.Generator().manual_seed(0))), arr)


def test_entropy_and_truncation_masks():
    ent, mask = rand(5, 6).abs(), ragged_mask(5, 6)
    m = W.high_entropy_mask(ent, mask, 0.2)
    vals = ent[mask > 0]
    assert torch.all(ent[m > 0] >= torch.quantile(vals, 0.8)) and torch.all(m <= mask)
    t = W.truncation_mask(torch.tensor([True, False, False, True, False]), mask)
    assert t[0].sum() == 0 and t[3].sum() == 0 and torch.equal(t[1], mask[1])


# ============================================================================================== regularizers
def test_k3_kl_is_zero_at_the_reference_and_positive_elsewhere():
    a, b = rand(4, 5), rand(4, 5)
    assert torch.allclose(R.k3_kl(a, a), torch.zeros(4, 5))
    assert torch.all(R.k3_kl(a, b) >= 0)


def test_topp_entropy_limits_and_anchor_gradient():
    logits = rand(3, 4, 50)
    full = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)
    assert torch.allclose(R.topp_entropy(logits, top_p=1.0, top_k=50), full, atol=1e-5)
    assert torch.all(R.topp_entropy(logits, top_p=0.8) <= full + 1e-5)
    one = torch.tensor([[[10.0, 0.0, 0.0]]])
    assert float(R.topp_entropy(one, top_p=0.5)) == pytest.approx(0.0, abs=1e-6)  # nucleus of one token
    # the linearised anchored term has the exact gradient of λ(H − anchor)²: zero at the anchor
    x = logits.clone().requires_grad_(True)

    def h_sel(z):
        return R.row_selected_mean(R.topp_entropy(z, 0.8), torch.ones(3, 4)).mean()

    h0 = float(h_sel(x).detach())
    for anchor in (h0, h0 + 1.0, h0 - 1.0):
        x.grad = None
        hh = h_sel(x)
        (R.anchored_entropy_coefficient(float(hh.detach()), anchor, 0.005) * hh).backward()
        exact = torch.autograd.grad(0.005 * (h_sel(x) - anchor) ** 2, x)[0]
        assert torch.allclose(x.grad, exact, atol=1e-7)
        if anchor == h0:
            assert torch.all(x.grad == 0)
        else:
            assert x.grad.abs().sum() > 0
    pk = R.peak_mask(torch.arange(10.0).unsqueeze(0), torch.ones(1, 10), 0.8)
    assert pk.tolist() == [[0] * 8 + [1] * 2]


# ============================================================================================== shapers
def test_overlong_penalty_and_diversity():
    assert overlong_penalty(80, False, 100, 20) == 0.0
    assert overlong_penalty(90, False, 100, 20) == pytest.approx(-0.5)
    assert overlong_penalty(100, True, 100, 20) == -1.0
    with pytest.raises(TaskError, match="cache_len"):
        overlong_penalty(1, False, 10, 20)
    maze = get_task("maze")
    units = [structure_units(maze.parse_text(m)) for m in ("RRDD", "RRDL", "UUUU")]
    assert units[0] == {"RRD", "RDD"}
    b = diversity_bonus(units, [True, True, False], scale=1.0, cap=0.68)
    acc = 2 / 3
    assert b == pytest.approx([0.5 * acc, 0.5 * acc, 0.0])
    assert diversity_bonus(units, [True, True, True], when="all_correct")[2] > 0
    assert diversity_bonus(units, [True, False, True], when="all_correct") == [0.0, 0.0, 0.0]
    assert structure_units(None) == set()


# ============================================================================================== sources
def _group(h, correct, origins=None):
    task = get_task("frozenlake")
    inst = task.generate("vsp3", h)
    pz = Puzzle(LevelSpec("frozenlake-v1", "vsp3"), h, inst, f"hash{h}")
    g = Group(pz, build_prompt(task, instance=inst))
    for i, c in enumerate(correct):
        g.members.append(Trajectory([1, 2], f"text{h}-{i % 2}", False, (origins or ["on"] * len(correct))[i],
                                    correct=c, reward=float(c)))
    return g


def test_replay_buffer_bookkeeping():
    buf = ExperienceBuffer(4, start_solve_rate=0.6)
    logps = [[[-0.5, -0.1]] * 4] * 3
    buf.observe([_group(0, [1, 1, 1, 1]), _group(1, [0, 0, 0, 0]), _group(2, [1, 1, 0, 0])], logps)
    assert buf.retired == {"hash0"} and set(buf.entries) == {"hash2"}  # retire at k=K, nothing at k=0
    e = buf.entries["hash2"]
    assert e.bucket == 2 and [t["text"] for t in e.trajs] == ["text2-0", "text2-1"] and e.trajs[0]["logp"] == [-0.5,
                                                                                                             -0.1]
    assert not buf.active  # batch solve rate 6/12 = 0.5 <= 0.6
    buf.observe([_group(2, [1, 0, 0, 0])], [[[-0.2, -0.2]] * 4])
    assert e.bucket == 1 and len(e.trajs) == 2  # bucket moves with k; the same text is not stored twice
    buf.observe([_group(2, [1, 1, 1, 1])], [[[-0.2, -0.2]] * 4])
    assert "hash2" not in buf.entries and "hash2" in buf.retired
    buf.observe([_group(3, [1, 1, 1, 0])], [[[-0.3, -0.3]] * 4])
    assert buf.active  # 3/4 > 0.6, and stays on
    buf.observe([_group(4, [0, 0, 0, 1])], [[[-0.3, -0.3]] * 4])
    assert buf.active
    state = buf.state_dict()
    back = ExperienceBuffer(4)
    back.load_state_dict(state)
    assert back.state_dict() == state
    # bucket weights ∝ N(k; K/2, 1): k=2 is preferred to k=1 and k=3 by exp(-1/2)
    assert buf.bucket_weight(2) == 1.0 and buf.bucket_weight(3) == pytest.approx(math.exp(-0.5))
    picks = buf.sample_questions(5, torch.Generator().manual_seed(0))
    assert sorted(picks) == ["hash3", "hash4"]  # without replacement, at most what is stored


def test_group_filter_keeps_mixed_groups():
    groups = [_group(0, [1, 1, 1, 1]), _group(1, [0, 0, 0, 0]), _group(2, [1, 0, 0, 0])]
    assert [g.puzzle.seed for g in filter_groups(groups, 1e-6, 1 - 1e-6)] == [2]
    assert groups[0].zero_variance and not groups[2].zero_variance


# ============================================================================================== presets / config
def test_presets_are_configuration_and_compose():
    for name in PRESETS:
        cfg = load_config(None, [f"preset={name}"])
        assert cfg.preset == [name]
    assert load_config(None, ["preset=grpo"]).rl.beta == 0.04
    dapo = load_config(None, ["preset=dapo"]).rl
    assert dapo.loss_type == "dapo" and dapo.epsilon_high == 0.28 and dapo.filter.enabled
    both = load_config(None, ["preset=[canon, siren]"]).rl
    assert both.advantage.estimator == "conditional_split" and both.siren.enabled and both.loss_type == "dr_grpo"
    assert load_config(None, ["preset=dapo", "rl.epsilon_high=0.3"]).rl.epsilon_high == 0.3  # user keys win
    assert load_config(None, ["preset=revisual"]).sft.prompt_mode == "text"
    with pytest.raises(TaskError, match="both set rl.filter.min_acc"):
        preset_overrides(["dapo", "vppo"])
    with pytest.raises(ConfigError, match="unknown preset 'ppo'"):
        load_config(None, ["preset=ppo"])
    with pytest.raises(ConfigError, match="rl.offline.k"):
        load_config(None, ["preset=[luffy, exgrpo]"])


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown config key 'rl.epsilonn'"):
        load_config(None, ["rl.epsilonn=0.2"])
    with pytest.raises(ConfigError, match="'rl.num_generations' = 1"):
        load_config(None, ["rl.num_generations=1"])
    with pytest.raises(ConfigError, match="'rl.loss_type' = 'ppo'"):
        load_config(None, ["rl.loss_type=ppo"])
    with pytest.raises(ConfigError, match="rl.curriculum"):
        load_config(None, ["rl.curriculum=[{mode: text, until: 0.5}]"])
    with pytest.raises(ConfigError, match="data.levels"):
        load_config(None, ["data.levels=[maze:99]"])
    with pytest.raises(ConfigError, match="rl.rewards"):
        load_config(None, ["rl.rewards={speed: 1}"])

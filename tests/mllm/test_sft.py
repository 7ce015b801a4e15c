"""SFT: the loss is the cross-entropy of the answer tokens only, it falls when training, and every parameter moves."""

from __future__ import annotations

import copy

import pytest
import torch

from diffthinker.tasks.base import TaskError
from mllm_baselines.data import PuzzleStream, parse_level_specs
from mllm_baselines.sft import sft_examples, sft_loss


def test_loss_counts_answer_tokens_only(tiny_policy):
    puzzles = PuzzleStream(parse_level_specs(["frozenlake:vsp3"])).take(0, 2)
    ex = sft_examples(tiny_policy, puzzles)
    loss, m = sft_loss(tiny_policy, ex)
    # by hand: full-sequence logits, cross-entropy at exactly the target positions (answer + EOS)
    batch = tiny_policy.encode([e.prompt for e in ex], [e.target_ids for e in ex])
    with torch.no_grad():
        logits = tiny_policy.model(**tiny_policy.forward_inputs(batch)).logits.float()
    p = batch["prompt_len"]
    total, count = 0.0, 0
    for i, e in enumerate(ex):
        for j, tok in enumerate(e.target_ids):
            total -= torch.log_softmax(logits[i, p - 1 + j], -1)[tok]
            count += 1
    assert m["sft_tokens"] == count == sum(len(e.target_ids) for e in ex)
    assert loss.item() == pytest.approx(float(total) / count, rel=1e-5)
    assert all(e.target_ids[-1] == tiny_policy.eos_id for e in ex)
    both = sft_examples(tiny_policy, puzzles, mode="both", reasoning=True)
    assert [e.prompt.mode for e in both] == ["image", "text"] * 2 and "path:" in both[0].target
    with pytest.raises(TaskError, match="unknown SFT prompt mode"):
        sft_examples(tiny_policy, puzzles, mode="video")


def test_training_lowers_the_loss_and_moves_every_parameter(tiny_policy):
    pol = copy.deepcopy(tiny_policy)
    pol.model.train()
    ex = sft_examples(pol, PuzzleStream(parse_level_specs(["frozenlake:vsp3"])).take(0, 4), mode="both")
    before = {n: p.detach().clone() for n, p in pol.model.named_parameters()}
    opt = torch.optim.AdamW(pol.model.parameters(), lr=5e-3)
    losses = []
    for _ in range(10):
        loss, _ = sft_loss(pol, ex)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0] and losses[-1] < min(losses[:6])
    unchanged = [n for n, p in pol.model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []

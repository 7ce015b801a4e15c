"""Flow-matching maths: noising, conversions, sigma sampling, bell weight, the loss."""

from __future__ import annotations

import math

import pytest
import torch

from diffthinker.diffusion.flow import (
    FlowConfig,
    add_noise,
    bell_weight,
    flow_matching_loss,
    loss_weight,
    published_sigma_grid,
    sample_sigmas,
    shift_sigmas,
    to_velocity,
    to_x0,
    velocity_target,
)
from diffthinker.diffusion.model import build_denoiser


def test_add_noise_endpoints_and_velocity_is_the_derivative():
    x0, eps = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    assert torch.equal(add_noise(x0, eps, torch.zeros(4)), x0)
    assert torch.equal(add_noise(x0, eps, torch.ones(4)), eps)
    s = torch.tensor([0.1, 0.4, 0.6, 0.9])
    h = 1e-3
    fd = (add_noise(x0, eps, s + h) - add_noise(x0, eps, s - h)) / (2 * h)
    assert torch.allclose(fd, velocity_target(x0, eps), atol=1e-3)
    # per-sample sigma broadcasts per item
    mixed = add_noise(x0, eps, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert torch.equal(mixed[0], x0[0]) and torch.equal(mixed[1], eps[1])


def test_to_x0_and_to_velocity_are_inverse():
    x0, eps = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    s = torch.tensor([0.2, 0.5, 0.95])
    xt = add_noise(x0, eps, s)
    v = velocity_target(x0, eps)
    assert torch.allclose(to_x0(v, xt, s, "velocity"), x0, atol=1e-5)
    assert torch.allclose(to_velocity(x0, xt, s, "x0"), v, atol=1e-4)
    assert torch.equal(to_x0(x0, xt, s, "x0"), x0) and torch.equal(to_velocity(v, xt, s, "velocity"), v)
    assert torch.allclose(to_x0(to_velocity(x0, xt, s, "x0"), xt, s, "velocity"), x0, atol=1e-5)
    with pytest.raises(ValueError, match="prediction_type"):
        to_x0(v, xt, s, "eps")


@pytest.mark.parametrize("scheme", ["uniform", "logit_normal", "published", "bell"])
def test_sample_sigmas_range_and_determinism(scheme):
    a = sample_sigmas(512, torch.Generator().manual_seed(3), scheme)
    b = sample_sigmas(512, torch.Generator().manual_seed(3), scheme)
    c = sample_sigmas(512, torch.Generator().manual_seed(4), scheme)
    assert a.shape == (512,) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    if scheme in ("published", "bell"):
        assert float(a.min()) >= 0.02 - 1e-6


def test_sigma_distributions_have_the_expected_shape():
    g = torch.Generator().manual_seed(0)
    uni = sample_sigmas(20000, g, "uniform")
    assert abs(float(uni.mean()) - 0.5) < 0.01
    shifted = sample_sigmas(20000, g, "uniform", shift=3.0)
    assert float(shifted.mean()) > 0.6  # shift > 1 favours high noise
    ln = sample_sigmas(20000, g, "logit_normal", logit_mean=1.0)
    assert abs(float(torch.logit(ln).mean()) - 1.0) < 0.05
    bell = sample_sigmas(20000, g, "bell")
    pub = sample_sigmas(20000, g, "published")
    # the bell weight is 0 at sigma = 1: importance sampling puts less mass near pure noise
    assert float((bell > 0.98).float().mean()) < float((pub > 0.98).float().mean())
    with pytest.raises(ValueError, match="unknown sigma scheme"):
        sample_sigmas(2, g, "cosine")


def test_published_grid_and_shift_formula():
    grid = published_sigma_grid()
    assert grid.shape == (1000,)
    assert math.isclose(float(grid[0]), 1.0, abs_tol=1e-6) and math.isclose(float(grid[-1]), 0.02, abs_tol=1e-6)
    assert bool((grid[1:] < grid[:-1]).all())
    s = torch.tensor([0.25, 0.5])
    mu = 0.8  # exponential shift e^mu / (e^mu + 1/s - 1) == shift_sigmas with shift e^mu
    assert torch.allclose(shift_sigmas(s, math.exp(mu)), math.exp(mu) / (math.exp(mu) + 1 / s - 1))
    assert torch.equal(shift_sigmas(s, 1.0), s)


def test_bell_weight_is_normalised_with_min_zero():
    grid = published_sigma_grid()
    w = bell_weight(grid)
    assert math.isclose(float(w.mean()), 1.0, rel_tol=1e-5)
    assert math.isclose(float(w.min()), 0.0, abs_tol=1e-6) and float(w.min()) >= 0
    assert int(w.argmax()) == int((grid - 0.5).abs().argmin())  # peak at t = 500
    assert torch.equal(loss_weight(torch.tensor([0.3, 0.9]), "none"), torch.ones(2))
    with pytest.raises(ValueError, match="unknown loss weighting"):
        loss_weight(torch.tensor([0.3]), "snr")


@pytest.mark.parametrize("ptype", ["x0", "velocity"])
def test_flow_matching_loss_deterministic_and_backprops(ptype):
    torch.manual_seed(0)
    model = build_denoiser("tiny-cpu", ["maze"], 16, patch_size=4, num_layers=1, num_attention_heads=2,
                           attention_head_dim=16, prediction_type=ptype)
    x0, cond = torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(4, 3, 16, 16) * 2 - 1
    ti = torch.zeros(4, dtype=torch.long)
    cfg = FlowConfig(sigma_scheme="published", loss_weighting="bell", edit_weight=2.0)
    l1, st1 = flow_matching_loss(model, x0, cond, ti, torch.Generator().manual_seed(1), cfg)
    l2, _ = flow_matching_loss(model, x0, cond, ti, torch.Generator().manual_seed(1), cfg)
    l3, _ = flow_matching_loss(model, x0, cond, ti, torch.Generator().manual_seed(2), cfg)
    assert torch.equal(l1, l2) and not torch.equal(l1, l3)
    assert set(st1) >= {"loss", "mse_x0", "sigma_mean"} and st1["loss"] == float(l1.detach())
    l1.backward()
    assert model.transformer.proj_out.weight.grad is not None
    assert model.prompt_embedding.weight.grad.abs().sum() > 0


def test_loss_target_space_and_config_validation():
    torch.manual_seed(0)
    model = build_denoiser("tiny-cpu", ["maze"], 16, patch_size=4, num_layers=1, num_attention_heads=2,
                           attention_head_dim=16, prediction_type="x0")
    x0, cond = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    ti = torch.zeros(2, dtype=torch.long)
    l_x0, _ = flow_matching_loss(model, x0, cond, ti, torch.Generator().manual_seed(0), FlowConfig())
    l_v, _ = flow_matching_loss(model, x0, cond, ti, torch.Generator().manual_seed(0),
                                FlowConfig(loss_target="velocity"))
    assert float(l_v.detach()) > float(l_x0.detach())  # x0 error divided by sigma < 1
    for bad in (dict(sigma_scheme="x"), dict(loss_weighting="x"), dict(loss_target="eps"), dict(shift=0)):
        with pytest.raises(ValueError):
            FlowConfig(**bad)

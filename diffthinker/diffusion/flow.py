"""Flow-matching (rectified-flow) maths, as published (reference §1), with no training loop.

Conventions (sigma in [0, 1]; 0 = clean, 1 = pure noise):

* ``x_t = (1 - sigma) * x0 + sigma * eps``                     (``add_noise``)
* velocity ``v = eps - x0`` = ``d x_t / d sigma``              (``velocity_target``)
* ``x0 = x_t - sigma * v``; ``v = (x_t - x0) / sigma``          (``to_x0`` / ``to_velocity``)

Timestep (sigma) sampling, ``sample_sigmas(scheme=...)``:

* ``"uniform"``: sigma ~ U(0, 1), then the time shift.
* ``"logit_normal"``: sigma = sigmoid(N(logit_mean, logit_std)) (SD3), then the time shift.
* ``"published"``: DiffSynth's discrete training grid (reference §1): 1000 points of ``linspace(1, 0, 1001)[:-1]``,
  exponential shift with mu = 0.8 (i.e. ``shift = e^0.8``), terminal stretched so the last sigma is 0.02; a
  uniform random index into it. Combine with ``loss_weight(..., "bell")`` for the published objective.
* ``"bell"``: the same grid, but the index is drawn with probability proportional to the bell weight, i.e.
  importance sampling of the published objective (same expected gradient as "published" + bell weight, lower
  variance); use it with loss weighting ``"none"``.

The time shift (``shift`` > 1 favours high noise) is ``shift * s / (1 + (shift - 1) * s)``, the formula of
diffusers' ``FlowMatchEulerDiscreteScheduler`` (exponential shift with ``mu = ln(shift)``).

Loss weighting, ``loss_weight(sigma, scheme)``: ``"none"`` (1), ``"bell"`` (reference: on the timestep t = 1000 *
sigma, ``w(t) ∝ exp(-2 ((t - 500) / 1000)^2)``, shifted so its minimum over the published grid is 0 and
normalised to mean 1 over that grid; DiffSynth looks sigma up on its grid, we evaluate the same formula at any
sigma, clamped at 0).

``flow_matching_loss`` is the one training objective: it samples sigmas and noise from a generator, runs the
model, and takes the MSE against the target in the space ``cfg.loss_target`` names (the model's own by default).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch

SIGMA_SCHEMES = ("uniform", "logit_normal", "published", "bell")
WEIGHT_SCHEMES = ("none", "bell")
LOSS_TARGETS = ("auto", "x0", "velocity")

#: DiffSynth's "Qwen-Image" training template: 1000 steps, mu = 0.8, terminal sigma 0.02 (reference §1).
PUBLISHED_NUM_TIMESTEPS = 1000
PUBLISHED_MU = 0.8
PUBLISHED_SHIFT_TERMINAL = 0.02


def _bcast(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    sigma = torch.as_tensor(sigma, device=like.device, dtype=like.dtype)
    if sigma.ndim == 0:
        return sigma
    return sigma.reshape(sigma.shape[0], *([1] * (like.ndim - 1)))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``x_t = (1 - sigma) x0 + sigma eps``; sigma is a scalar or ``[B]``."""
    s = _bcast(sigma, x0)
    return (1 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The published training target ``eps - x0``."""
    return noise - x0


def to_x0(pred: torch.Tensor, x_t: torch.Tensor, sigma: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """The clean-image estimate from a raw prediction: x0 as is; velocity ``x0 = x_t - sigma v``."""
    if prediction_type == "x0":
        return pred
    if prediction_type == "velocity":
        return x_t - _bcast(sigma, x_t) * pred
    raise ValueError(f"prediction_type must be 'x0' or 'velocity', got {prediction_type!r}")


def to_velocity(pred: torch.Tensor, x_t: torch.Tensor, sigma: torch.Tensor, prediction_type: str,
                min_sigma: float = 1e-4) -> torch.Tensor:
    """The velocity from a raw prediction: velocity as is; x0 ``v = (x_t - x0) / sigma`` (sigma clamped)."""
    if prediction_type == "velocity":
        return pred
    if prediction_type == "x0":
        return (x_t - pred) / _bcast(sigma, x_t).clamp_min(min_sigma)
    raise ValueError(f"prediction_type must be 'x0' or 'velocity', got {prediction_type!r}")


def shift_sigmas(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """The flow time shift of diffusers' scheduler: ``shift s / (1 + (shift - 1) s)`` (identity at shift 1)."""
    if shift <= 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    if shift == 1.0:
        return sigma
    return shift * sigma / (1 + (shift - 1) * sigma)


@lru_cache(maxsize=8)
def _published_grid_cached(num_timesteps: int, mu: float, terminal: float) -> torch.Tensor:
    s = torch.linspace(1.0, 0.0, num_timesteps + 1, dtype=torch.float64)[:-1]
    s = math.exp(mu) / (math.exp(mu) + (1 / s - 1))
    one_minus = 1 - s
    s = 1 - one_minus / (one_minus[-1] / (1 - terminal))
    return s.to(torch.float32)


def published_sigma_grid(num_timesteps: int = PUBLISHED_NUM_TIMESTEPS, mu: float = PUBLISHED_MU,
                         shift_terminal: float = PUBLISHED_SHIFT_TERMINAL) -> torch.Tensor:
    """DiffSynth's training sigmas (descending, from 1.0 to ``shift_terminal``), reference §1."""
    return _published_grid_cached(num_timesteps, mu, shift_terminal).clone()


def _bell_raw(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(-2 * ((t - 500.0) / 1000.0) ** 2)


@lru_cache(maxsize=1)
def _bell_norm() -> tuple[float, float]:
    t = published_sigma_grid().double() * PUBLISHED_NUM_TIMESTEPS
    y = _bell_raw(t)
    y_min = float(y.min())
    return y_min, float((y - y_min).mean())


def bell_weight(sigma: torch.Tensor) -> torch.Tensor:
    """The published bell weight at ``t = 1000 sigma``: min 0 and mean 1 over the published grid."""
    y_min, mean = _bell_norm()
    sigma = torch.as_tensor(sigma)
    return ((_bell_raw(sigma.double() * PUBLISHED_NUM_TIMESTEPS) - y_min) / mean).clamp_min(0).to(
        sigma.dtype if sigma.is_floating_point() else torch.float32)


def loss_weight(sigma: torch.Tensor, scheme: str = "none") -> torch.Tensor:
    """Per-sample loss weight for ``sigma`` ``[B]``: ``"none"`` (ones) or ``"bell"`` (published)."""
    sigma = torch.as_tensor(sigma)
    if scheme == "none":
        return torch.ones_like(sigma, dtype=sigma.dtype if sigma.is_floating_point() else torch.float32)
    if scheme == "bell":
        return bell_weight(sigma)
    raise ValueError(f"unknown loss weighting {scheme!r}; expected one of {WEIGHT_SCHEMES}")


def sample_sigmas(batch_size: int, generator: torch.Generator | None = None, scheme: str = "uniform",
                  shift: float = 1.0, logit_mean: float = 0.0, logit_std: float = 1.0,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """``[batch_size]`` training sigmas in [0, 1], drawn with ``generator`` (on the generator's device).

    ``shift`` applies to "uniform" and "logit_normal"; the grid schemes ("published", "bell") carry their own
    mu = 0.8 shift and ignore it. Deterministic for a seeded generator.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    gdev = generator.device if generator is not None else torch.device("cpu")
    if scheme == "uniform":
        s = torch.rand(batch_size, generator=generator, device=gdev)
        s = shift_sigmas(s, shift)
    elif scheme == "logit_normal":
        s = torch.sigmoid(logit_mean + logit_std * torch.randn(batch_size, generator=generator, device=gdev))
        s = shift_sigmas(s, shift)
    elif scheme in ("published", "bell"):
        grid = published_sigma_grid().to(gdev)
        if scheme == "published":
            idx = torch.randint(0, grid.shape[0], (batch_size,), generator=generator, device=gdev)
        else:
            idx = torch.multinomial(bell_weight(grid), batch_size, replacement=True, generator=generator)
        s = grid[idx]
    else:
        raise ValueError(f"unknown sigma scheme {scheme!r}; expected one of {SIGMA_SCHEMES}")
    return s.to(device) if device is not None else s


@dataclass
class FlowConfig:
    """Options of the flow-matching objective (the training config embeds these).

    sigma_scheme / shift / logit_mean / logit_std: see ``sample_sigmas``.
    loss_weighting: "none" | "bell" (per-sample, see ``loss_weight``).
    loss_target: "auto" (the model's own prediction type), "x0" or "velocity": the space the MSE is taken in;
      a prediction is converted with ``to_x0``/``to_velocity`` (x0 -> velocity divides by sigma, clamped at
      ``min_sigma``), so x0-prediction with a velocity loss weights by 1/sigma^2.
    edit_weight: extra weight on pixels the edit changes (``|x0 - cond| > edit_threshold`` in any channel):
      weight 1 + edit_weight there, 1 elsewhere; 0 disables (our addition: the red path is a few % of pixels).
    """

    sigma_scheme: str = "logit_normal"
    shift: float = 1.0
    logit_mean: float = 0.0
    logit_std: float = 1.0
    loss_weighting: str = "none"
    loss_target: str = "auto"
    min_sigma: float = 1e-3
    edit_weight: float = 0.0
    edit_threshold: float = 0.1

    def __post_init__(self) -> None:
        if self.sigma_scheme not in SIGMA_SCHEMES:
            raise ValueError(f"unknown sigma_scheme {self.sigma_scheme!r}; expected one of {SIGMA_SCHEMES}")
        if self.loss_weighting not in WEIGHT_SCHEMES:
            raise ValueError(f"unknown loss_weighting {self.loss_weighting!r}; expected one of {WEIGHT_SCHEMES}")
        if self.loss_target not in LOSS_TARGETS:
            raise ValueError(f"unknown loss_target {self.loss_target!r}; expected one of {LOSS_TARGETS}")
        if self.shift <= 0 or self.logit_std <= 0 or self.min_sigma <= 0 or self.edit_weight < 0:
            raise ValueError(f"invalid flow config {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flow_matching_loss(model: torch.nn.Module, x0: torch.Tensor, cond: torch.Tensor, task_index: torch.Tensor,
                       generator: torch.Generator | None = None, cfg: FlowConfig | None = None
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    """One flow-matching loss on a batch: ``x0`` (solutions) and ``cond`` (problems) ``[B, 3, R, R]`` in [-1, 1].

    Sigmas and noise come from ``generator`` (drawn on its device, then moved to ``x0``'s), so a seeded
    generator makes the loss reproducible. ``model`` is a ``PixelDenoiser`` (anything with the same forward and
    a ``config.prediction_type``). Returns ``(loss, stats)``; stats are floats: loss, mse_x0 (unweighted MSE
    of the x0 estimate), sigma_mean.
    """
    cfg = cfg or FlowConfig()
    b = x0.shape[0]
    gdev = generator.device if generator is not None else x0.device
    sigma = sample_sigmas(b, generator, cfg.sigma_scheme, cfg.shift, cfg.logit_mean, cfg.logit_std).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=gdev, dtype=torch.float32).to(x0.device, x0.dtype)
    x_t = add_noise(x0, noise, sigma)
    ptype = model.config.prediction_type
    pred = model(x_t, cond, sigma, task_index).float()
    target_space = ptype if cfg.loss_target == "auto" else cfg.loss_target
    x0f, x_tf, noisef = x0.float(), x_t.float(), noise.float()
    if target_space == "x0":
        est, target = to_x0(pred, x_tf, sigma, ptype), x0f
    else:
        sig = sigma.float().clamp_min(cfg.min_sigma)
        est, target = to_velocity(pred, x_tf, sig, ptype, cfg.min_sigma), velocity_target(x0f, noisef)
    err = (est - target) ** 2
    if cfg.edit_weight > 0:
        edited = ((x0f - cond.float()).abs() > cfg.edit_threshold).any(dim=1, keepdim=True)
        err = err * (1 + cfg.edit_weight * edited.float())
    per_sample = err.mean(dim=tuple(range(1, err.ndim)))
    loss = (per_sample * loss_weight(sigma.float(), cfg.loss_weighting).to(per_sample)).mean()
    with torch.no_grad():
        mse_x0 = (to_x0(pred, x_tf, sigma.float(), ptype) - x0f).pow(2).mean()
    stats = {"loss": float(loss.detach()), "mse_x0": float(mse_x0), "sigma_mean": float(sigma.float().mean())}
    return loss, stats

"""The denoiser: a small MMDiT (diffusers' ``QwenImageTransformer2DModel``) working directly on pixel patches.

Design (DESIGN.md, "The diffusion reasoner"):

* **No VAE.** An image ``[B, 3, H, W]`` in ``[-1, 1]`` is cut into ``patch_size x patch_size`` pixel patches; each
  patch is one token of ``3 * patch_size**2`` channels (channel-major inside the token: ``c, dy, dx``). With the
  patch equal to one puzzle cell (8 px patches on an 8x8 maze drawn at 64 px) every token *is* a cell.
* **In-context editing as in Qwen-Image-Edit.** The problem image's tokens are concatenated *after* the noisy
  tokens in one image sequence (``img_shapes = [(1, g, g), (1, g, g)]``: the transformer's 3-axis RoPE gives the
  condition frame index 1, so both images share the same 2-D positions but are told apart). Only the first
  ``g*g`` output tokens (the noisy image's) are read out.
* **Zero-timestep conditioning (Qwen-Image-Edit-2511, ``zero_cond_t``)** uses diffusers' own mechanism:
  ``QwenImageTransformer2DModel(zero_cond_t=True)`` computes a second timestep embedding for t = 0 and
  modulates every token after the first image (here: the condition tokens) with it (``modulate_index``).
* **A learned per-task prompt** (``prompt_tokens x joint_attention_dim``, an ``nn.Embedding`` row per task)
  replaces the 7B Qwen2.5-VL text encoder; it goes through the transformer's own ``txt_norm``/``txt_in``.
* The timestep fed to the transformer is ``sigma`` in [0, 1] (its sinusoidal projection scales by 1000, exactly
  as diffusers' Qwen-Image pipelines pass ``timestep / 1000``).

``prediction_type``: ``"velocity"`` (the published target, ``eps - x0``) or ``"x0"`` (the clean image; what
learns on CPU per the issue's measurements). ``forward`` returns the raw prediction; ``flow.to_x0`` /
``flow.to_velocity`` convert. ``x0_residual=True`` (x0 only) makes the network predict the *edit*: the output is
``cond + net(...)``, so copying the problem image is the zero function (our addition, not in the reference).

Presets (``PRESETS``), measured on the 2-core development machine (torch 2.13 CPU, ``torch.set_num_threads(1)``,
64x64 px, 8 px patches: 64 noisy + 64 condition tokens + 4 prompt tokens; one ``flow_matching_loss`` + backward +
AdamW step of batch 16; the range is the spread between an idle machine and one shared with another job):

* ``tiny-cpu``: 4 layers, 4 heads x 32 (width 128), 4 prompt tokens of 32 -> 2,511,456 parameters;
  0.26-0.36 s per training step of batch 16 on 1 thread. Sampling 32 puzzles x 20 Euler steps: ~7 s.
* ``small-cpu``: 6 layers, 6 heads x 32 (width 192) -> 8,239,072 parameters; 0.72-0.74 s per step.

With 2 threads on the 2 shared cores the steps were *slower* while other jobs ran (contention), so training runs
should set ``torch.set_num_threads`` to the cores they really have.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch
from diffusers import ModelMixin, QwenImageTransformer2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from ..tasks.base import TaskError

logger = logging.getLogger(__name__)

PREDICTION_TYPES = ("x0", "velocity")

#: Named model configurations. Every value is a keyword of ``PixelDenoiser`` (``tasks`` and ``resolution`` are
#: given separately to ``build_denoiser``). Numbers measured are in the module docstring.
PRESETS: dict[str, dict[str, Any]] = {
    # The issue's ~2.5M-parameter configuration: 64x64 px, 8 px patches (one token per cell of an 8x8 maze).
    "tiny-cpu": dict(
        patch_size=8,
        num_layers=4,
        num_attention_heads=4,
        attention_head_dim=32,
        joint_attention_dim=32,
        prompt_tokens=4,
        prediction_type="x0",
        zero_cond_t=False,
        x0_residual=False,
    ),
}
PRESETS.update({
    # Wider and deeper; ~3x the cost per step.
    "small-cpu": {**PRESETS["tiny-cpu"], "num_layers": 6, "num_attention_heads": 6},
})

#: Documented parameter counts (at 64x64 px, 8 px patches, one task), checked by the tests.
PRESET_PARAMS = {"tiny-cpu": (2.4e6, 2.6e6), "small-cpu": (8.0e6, 8.5e6)}


def default_rope_axes(attention_head_dim: int) -> tuple[int, int, int]:
    """Split a head dim into (frame, height, width) RoPE axes, each even, summing to the head dim (32 -> 8,12,12)."""
    if attention_head_dim % 4 != 0 or attention_head_dim < 8:
        raise ValueError(f"attention_head_dim must be a multiple of 4 and >= 8, got {attention_head_dim}")
    frame = 2 * max(1, round(attention_head_dim / 8))
    rest = attention_head_dim - frame
    height = 2 * (rest // 4)
    return (frame, height, rest - height)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, (H/p)*(W/p), C*p*p]`` (row-major tokens, channel-major inside a token)."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // p) * (w // p), c * p * p)


def unpatchify(tokens: torch.Tensor, patch_size: int, height: int, width: int, channels: int = 3) -> torch.Tensor:
    """Inverse of ``patchify``."""
    b = tokens.shape[0]
    p = patch_size
    x = tokens.reshape(b, height // p, width // p, channels, p, p)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(b, channels, height, width)


class PixelDenoiser(ModelMixin, ConfigMixin):
    """Pixel-space in-context-editing MMDiT. See the module docstring for the design.

    Args:
        tasks: task ids the model serves (``["maze-v1"]``); ``task_index`` indexes this list.
        resolution: square image side in pixels; must be a multiple of ``patch_size``.
        patch_size: pixels per patch side (ideally one puzzle cell).
        num_layers, num_attention_heads, attention_head_dim: transformer shape (width = heads * head_dim).
        joint_attention_dim: width of the prompt embedding (the transformer's "text" width).
        prompt_tokens: learned prompt tokens per task.
        prediction_type: ``"x0"`` or ``"velocity"`` (``eps - x0``).
        zero_cond_t: modulate the condition tokens with timestep 0 (Qwen-Image-Edit-2511).
        x0_residual: x0 only: output ``cond + net`` (the net predicts the edit).
        axes_dims_rope: RoPE split of the head dim (frame, h, w); derived from the head dim when None.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        tasks: list[str] = ("maze-v1",),
        resolution: int = 64,
        patch_size: int = 8,
        num_layers: int = 4,
        num_attention_heads: int = 4,
        attention_head_dim: int = 32,
        joint_attention_dim: int = 32,
        prompt_tokens: int = 4,
        prediction_type: str = "x0",
        zero_cond_t: bool = False,
        x0_residual: bool = False,
        axes_dims_rope: tuple[int, int, int] | None = None,
    ):
        super().__init__()
        tasks = list(tasks)
        if not tasks or not all(isinstance(t, str) and t for t in tasks):
            raise ValueError(f"tasks must be a non-empty list of task ids, got {tasks!r}")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks must be unique, got {tasks!r}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
        if x0_residual and prediction_type != "x0":
            raise ValueError("x0_residual=True needs prediction_type='x0'")
        if patch_size < 1 or resolution < patch_size or resolution % patch_size != 0:
            raise ValueError(f"resolution ({resolution}) must be a positive multiple of patch_size ({patch_size})")
        if prompt_tokens < 1:
            raise ValueError(f"prompt_tokens must be >= 1, got {prompt_tokens}")
        axes = tuple(axes_dims_rope) if axes_dims_rope is not None else default_rope_axes(attention_head_dim)
        if sum(axes) != attention_head_dim:
            raise ValueError(f"axes_dims_rope {axes} must sum to attention_head_dim {attention_head_dim}")

        self.grid = resolution // patch_size
        token_channels = 3 * patch_size * patch_size
        # patch_size=1 inside the transformer: we patchify pixels ourselves, one token = one pixel patch.
        self.transformer = QwenImageTransformer2DModel(
            patch_size=1,
            in_channels=token_channels,
            out_channels=token_channels,
            num_layers=num_layers,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            joint_attention_dim=joint_attention_dim,
            axes_dims_rope=axes,
            zero_cond_t=zero_cond_t,
        )
        self.prompt_embedding = nn.Embedding(len(tasks), prompt_tokens * joint_attention_dim)
        nn.init.normal_(self.prompt_embedding.weight, std=1.0)
        self._xformers_checked_for: str | None = None  # device type the xformers check last ran for

    # ------------------------------------------------------------------------------------------------ tasks
    @property
    def tasks(self) -> list[str]:
        return list(self.config.tasks)

    def task_index_of(self, task_id: str) -> int:
        """Index of ``task_id`` in ``config.tasks``; a bare name (``"maze"``) matches a single ``maze-vN``."""
        tasks = self.tasks
        if task_id in tasks:
            return tasks.index(task_id)
        matches = [i for i, t in enumerate(tasks) if isinstance(task_id, str) and t.rsplit("-v", 1)[0] == task_id]
        if len(matches) == 1:
            return matches[0]
        raise TaskError(f"this model was not trained for task {task_id!r}; it knows {tasks}")

    # ------------------------------------------------------------------------------------------------ attention
    def maybe_enable_xformers(self) -> bool:
        """Use xformers attention iff it is importable AND the model is on CUDA. Returns whether it is in use."""
        if self.device.type != "cuda" or importlib.util.find_spec("xformers") is None:
            return False
        try:
            self.transformer.set_attention_backend("xformers")
        except Exception as exc:  # pragma: no cover - depends on the GPU stack
            logger.warning("xformers is installed but could not be enabled (%s); using torch SDPA", exc)
            return False
        logger.info("using xformers attention")
        return True

    # ------------------------------------------------------------------------------------------------ forward
    def prompt_embeds(self, task_index: torch.Tensor) -> torch.Tensor:
        emb = self.prompt_embedding(task_index)
        return emb.view(task_index.shape[0], self.config.prompt_tokens, self.config.joint_attention_dim)

    def forward(self, noisy: torch.Tensor, cond: torch.Tensor, sigma: torch.Tensor,
                task_index: torch.Tensor) -> torch.Tensor:
        """Raw prediction (per ``prediction_type``) for noisy images ``x_t`` given the problem images.

        Args:
            noisy: ``[B, 3, R, R]`` x_t, ``cond``: ``[B, 3, R, R]`` problem images in [-1, 1] (R = resolution).
            sigma: ``[B]`` noise levels in [0, 1] (a scalar is broadcast). task_index: ``[B]`` long.
        Returns:
            ``[B, 3, R, R]``: x0 or velocity (``eps - x0``) per ``config.prediction_type``.
        """
        cfg = self.config
        r, p = cfg.resolution, cfg.patch_size
        if noisy.ndim != 4 or tuple(noisy.shape[1:]) != (3, r, r):
            raise ValueError(f"noisy must be [B, 3, {r}, {r}], got {tuple(noisy.shape)}")
        if cond.shape != noisy.shape:
            raise ValueError(f"cond must have the shape of noisy {tuple(noisy.shape)}, got {tuple(cond.shape)}")
        b = noisy.shape[0]
        if self._xformers_checked_for != noisy.device.type:
            self._xformers_checked_for = noisy.device.type
            self.maybe_enable_xformers()
        dtype = self.dtype
        sigma = torch.as_tensor(sigma, device=noisy.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(b)
        task_index = torch.as_tensor(task_index, device=noisy.device, dtype=torch.long)
        if task_index.ndim == 0:
            task_index = task_index.expand(b)
        if sigma.shape != (b,) or task_index.shape != (b,):
            raise ValueError(f"sigma and task_index must be [B={b}], got {tuple(sigma.shape)} and "
                             f"{tuple(task_index.shape)}")
        if (task_index < 0).any() or (task_index >= len(cfg.tasks)).any():
            raise ValueError(f"task_index out of range for tasks {list(cfg.tasks)}: {task_index.tolist()}")

        g = self.grid
        tokens = torch.cat([patchify(noisy.to(dtype), p), patchify(cond.to(dtype), p)], dim=1)
        out = self.transformer(
            hidden_states=tokens,
            encoder_hidden_states=self.prompt_embeds(task_index).to(dtype),
            encoder_hidden_states_mask=None,
            timestep=sigma.to(dtype),
            img_shapes=[[(1, g, g), (1, g, g)]] * b,
            return_dict=False,
        )[0]
        pred = unpatchify(out[:, : g * g], p, r, r)
        if cfg.x0_residual:
            pred = pred + cond.to(dtype)
        return pred


def build_denoiser(preset: str = "tiny-cpu", tasks: list[str] | str = ("maze-v1",), resolution: int = 64,
                   **overrides: Any) -> PixelDenoiser:
    """A fresh ``PixelDenoiser`` from a named preset; any constructor keyword can be overridden.

    Task names are resolved to versioned ids through the task registry (``"maze"`` -> ``"maze-v1"``).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown denoiser preset {preset!r}; expected one of {sorted(PRESETS)}")
    from ..tasks import get_task

    if isinstance(tasks, str):
        tasks = [tasks]
    ids = [get_task(t).id for t in tasks]
    kwargs = dict(PRESETS[preset])
    unknown = set(overrides) - set(kwargs) - {"axes_dims_rope"}
    if unknown:
        raise ValueError(f"unknown denoiser option(s) {sorted(unknown)}; expected some of {sorted(kwargs)}")
    kwargs.update(overrides)
    return PixelDenoiser(tasks=ids, resolution=resolution, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

"""``DiffThinkerPipeline``: puzzle image(s) + task id in, solved image(s) out, by flow-matching Euler sampling.

Components (``register_modules``): ``denoiser`` (a ``PixelDenoiser``) and ``scheduler``
(diffusers' ``FlowMatchEulerDiscreteScheduler``; its ``shift`` is the inference time shift).

Sampling (reference §1, "Inference"): the sigma grid is ``linspace(1, 1/N, N)`` passed through the scheduler's
shift (as diffusers' Qwen-Image pipelines do), then 0; each step the denoiser's raw prediction is turned into an
x0 estimate (``pred_x0``, the "thinking" frame) and a velocity, and the scheduler takes the Euler step
``x <- x + (sigma_next - sigma) v``. With ``clip_pred_x0=True`` (default) the x0 estimate is clamped to [-1, 1]
and the velocity recomputed from it (like DDPM's ``clip_sample``; the published sampler does not clip, but it works
in latent space). The last step lands exactly on the last x0 estimate. No classifier-free guidance: the model has
no unconditional branch (the reference uses CFG 4 with an empty prompt; our prompt is a learned task embedding).

Inputs (``image``):

* a ``PIL.Image`` or a list of them: converted to RGB when in another mode (logged), resized to the model's
  resolution with NEAREST when of another size (logged as a warning), scaled to [-1, 1];
* a float ``torch.Tensor`` ``[3, H, W]`` or ``[B, 3, H, W]`` with values in **[0, 1]** (diffusers' convention;
  values outside are rejected, not clipped), resized with nearest-exact interpolation when of another size.

Outputs (``output_type``): ``"pil"`` (list of RGB images), ``"np"`` (float32 ``[N, H, W, 3]`` in [0, 1]),
``"pt"`` (float32 ``[N, 3, H, W]`` in [0, 1]), with ``N = batch * num_images_per_prompt`` ordered item-major
(the samples of item 0 first). ``num_images_per_prompt`` samples run in ONE batched denoiser call per step.

Randomness: ``generator`` is None, one ``torch.Generator``, or a list of length ``batch * num_images_per_prompt``;
with a list, sample k's initial noise comes from generator k alone, so a sample does not depend on what else is in
the batch (the batched call equals the per-item calls up to float round-off). Sampling is otherwise
deterministic: same seed, same bytes.

Compatibility: ``DiffThinkerPipeline.from_pretrained(path, expected_task=..., expected_resolution=...)`` or
``pipe.check_compatible(task, resolution)`` raise a ``ValueError`` naming the checkpoint's tasks and resolution
when a checkpoint is for another task or image size. Weights are saved and loaded as safetensors only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from .flow import to_velocity, to_x0
from .model import PixelDenoiser

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt")
CALLBACK_TENSOR_INPUTS = ("latents", "pred_x0", "cond")


def default_scheduler(shift: float = 1.0) -> FlowMatchEulerDiscreteScheduler:
    """The Euler flow scheduler with a fixed time shift (1.0 = none; the reference uses mu 0.54 at 512 px)."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift, use_dynamic_shifting=False)


@dataclass
class DiffThinkerPipelineOutput(BaseOutput):
    """``images``: per ``output_type``; ``task``: the task id solved; ``num_images_per_prompt``: samples per item."""

    images: list[Image.Image] | np.ndarray | torch.Tensor
    task: str | None = None
    num_images_per_prompt: int = 1


class DiffThinkerPipeline(DiffusionPipeline):
    """Image-editing flow pipeline for puzzles. See the module docstring for inputs, outputs and randomness."""

    model_cpu_offload_seq = "denoiser"
    _callback_tensor_inputs = list(CALLBACK_TENSOR_INPUTS)

    def __init__(self, denoiser: PixelDenoiser, scheduler: FlowMatchEulerDiscreteScheduler):
        super().__init__()
        self.register_modules(denoiser=denoiser, scheduler=scheduler)

    @classmethod
    def from_denoiser(cls, denoiser: PixelDenoiser, shift: float = 1.0) -> DiffThinkerPipeline:
        return cls(denoiser=denoiser, scheduler=default_scheduler(shift))

    # ------------------------------------------------------------------------------------------------ properties
    @property
    def resolution(self) -> int:
        return int(self.denoiser.config.resolution)

    @property
    def tasks(self) -> list[str]:
        return list(self.denoiser.config.tasks)

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, expected_task: str | None = None,
                        expected_resolution: int | None = None, **kwargs: Any) -> DiffThinkerPipeline:
        """Load a saved pipeline folder (safetensors only) and optionally check it serves ``expected_task`` at
        ``expected_resolution`` px (``ValueError`` naming both sides otherwise)."""
        if kwargs.get("use_safetensors") is False:
            raise ValueError("DiffThinkerPipeline loads weights as safetensors only (use_safetensors=False given)")
        kwargs["use_safetensors"] = True
        pipe = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        pipe._source = str(pretrained_model_name_or_path)
        if expected_task is not None or expected_resolution is not None:
            pipe.check_compatible(expected_task, expected_resolution)
        return pipe

    def save_pretrained(self, save_directory, safe_serialization: bool = True, **kwargs: Any) -> None:
        if not safe_serialization:
            raise ValueError("DiffThinkerPipeline saves weights as safetensors only (safe_serialization=False given)")
        super().save_pretrained(save_directory, safe_serialization=True, **kwargs)

    def check_compatible(self, task: str | None = None, resolution: int | None = None) -> None:
        """Raise ``ValueError`` unless this pipeline's model serves ``task`` at ``resolution`` px (None: skip)."""
        where = getattr(self, "_source", None)
        name = f"checkpoint {where!r}" if where else "this pipeline"
        if task is not None:
            try:
                self.denoiser.task_index_of(task)
            except ValueError:
                raise ValueError(f"{name} was trained for tasks {self.tasks}, not for task {task!r}") from None
        if resolution is not None and int(resolution) != self.resolution:
            raise ValueError(f"{name} works at {self.resolution}x{self.resolution} px, not at "
                             f"{resolution}x{resolution} px as expected")

    # ------------------------------------------------------------------------------------------------ inputs
    def check_inputs(self, image: Any, task: Any, num_images_per_prompt: int, num_inference_steps: int,
                     generator: Any, output_type: str, callback_on_step_end: Callable | None,
                     callback_on_step_end_tensor_inputs: Sequence[str]) -> int:
        """Validate the call; returns the batch size. Every problem is a ``ValueError`` naming the value."""
        if not isinstance(task, str):
            raise ValueError(f"task must be a task id string such as {self.tasks[0]!r}, got {type(task).__name__}")
        try:
            self.denoiser.task_index_of(task)
        except ValueError:
            raise ValueError(f"unknown task {task!r} for this model; it was trained for {self.tasks}") from None
        if isinstance(image, Image.Image):
            batch = 1
        elif isinstance(image, (list, tuple)):
            if len(image) == 0:
                raise ValueError("image is an empty list; give at least one puzzle image")
            bad = [type(x).__name__ for x in image if not isinstance(x, Image.Image)]
            if bad:
                raise ValueError(f"a list of images must hold PIL images only, got {sorted(set(bad))}")
            batch = len(image)
        elif isinstance(image, torch.Tensor):
            if image.ndim not in (3, 4) or image.shape[-3] != 3:
                raise ValueError(f"an image tensor must be [3, H, W] or [B, 3, H, W], got {tuple(image.shape)}")
            if not image.is_floating_point():
                raise ValueError(f"an image tensor must be float with values in [0, 1], got dtype {image.dtype}")
            batch = 1 if image.ndim == 3 else image.shape[0]
            if batch == 0:
                raise ValueError("image tensor has an empty batch; give at least one puzzle image")
            lo, hi = float(image.min()), float(image.max())
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
                raise ValueError(f"an image tensor must hold values in [0, 1] (got [{lo:.3g}, {hi:.3g}]); "
                                 "map a [-1, 1] tensor with (x + 1) / 2")
        else:
            raise ValueError("image must be a PIL image, a list of PIL images or a float tensor in [0, 1], "
                             f"got {type(image).__name__}")
        if not isinstance(num_images_per_prompt, int) or isinstance(num_images_per_prompt, bool) \
                or num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be an int >= 1, got {num_images_per_prompt!r}")
        if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool) \
                or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an int >= 1, got {num_inference_steps!r}")
        if isinstance(generator, (list, tuple)):
            total = batch * num_images_per_prompt
            if len(generator) != total:
                raise ValueError(f"got a list of {len(generator)} generators for {batch} image(s) x "
                                 f"{num_images_per_prompt} sample(s) = {total}; give one generator per sample")
            if not all(isinstance(g, torch.Generator) for g in generator):
                raise ValueError("generator list must hold torch.Generator objects only")
        elif generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be None, a torch.Generator or a list of them, "
                             f"got {type(generator).__name__}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise ValueError("callback_on_step_end must be callable")
        unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs {unknown} not in {self._callback_tensor_inputs}")
        return batch

    def preprocess(self, image: Image.Image | Sequence[Image.Image] | torch.Tensor) -> torch.Tensor:
        """Images -> ``[B, 3, R, R]`` float32 in [-1, 1] at the model's resolution R (see the module docstring)."""
        r = self.resolution
        if isinstance(image, torch.Tensor):
            x = image.float()
            if x.ndim == 3:
                x = x[None]
            if tuple(x.shape[-2:]) != (r, r):
                logger.warning("resizing %d input tensor(s) from %dx%d to the model's %dx%d px (nearest)",
                               x.shape[0], x.shape[-1], x.shape[-2], r, r)
                x = F.interpolate(x, size=(r, r), mode="nearest-exact")
            return x.cpu() * 2 - 1
        images = [image] if isinstance(image, Image.Image) else list(image)
        converted = sorted({im.mode for im in images if im.mode != "RGB"})
        if converted:
            logger.info("converting input image mode(s) %s to RGB", converted)
        resized = sorted({im.size for im in images if im.size != (r, r)})
        if resized:
            logger.warning("resizing input image(s) of size %s to the model's %dx%d px with NEAREST",
                           ", ".join(f"{w}x{h}" for w, h in resized), r, r)
        arrays = []
        for im in images:
            im = im.convert("RGB") if im.mode != "RGB" else im
            if im.size != (r, r):
                im = im.resize((r, r), Image.NEAREST)
            arrays.append(np.asarray(im, dtype=np.float32))
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        return x / 127.5 - 1

    @staticmethod
    def postprocess(x: torch.Tensor, output_type: str = "pil"):
        """``[N, 3, H, W]`` in [-1, 1] -> the requested output type (values clamped to the valid range)."""
        x = ((x.float().clamp(-1, 1) + 1) / 2).cpu()
        if output_type == "pt":
            return x
        arr = x.permute(0, 2, 3, 1).numpy()
        if output_type == "np":
            return arr
        return [Image.fromarray(np.round(a * 255).astype(np.uint8), "RGB") for a in arr]

    def _mu(self) -> float | None:
        cfg = self.scheduler.config
        if not cfg.get("use_dynamic_shifting", False):
            return None
        seq = self.denoiser.grid ** 2
        m = (cfg.max_shift - cfg.base_shift) / (cfg.max_image_seq_len - cfg.base_image_seq_len)
        return seq * m + cfg.base_shift - m * cfg.base_image_seq_len

    # ------------------------------------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        image: Image.Image | Sequence[Image.Image] | torch.Tensor,
        task: str,
        num_images_per_prompt: int = 1,
        num_inference_steps: int = 20,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        clip_pred_x0: bool = True,
        callback_on_step_end: Callable[[DiffThinkerPipeline, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents", "pred_x0"),
        return_dict: bool = True,
    ) -> DiffThinkerPipelineOutput | tuple:
        """Solve a batch of puzzle images of one task.

        ``callback_on_step_end(pipe, step, timestep, callback_kwargs)`` runs after every Euler step with
        ``callback_kwargs`` holding the tensors named in ``callback_on_step_end_tensor_inputs``: ``"latents"``
        (x after the step, in [-1, 1] space), ``"pred_x0"`` (this step's clean-image estimate, ``[N, 3, R, R]`` in
        [-1, 1]; ``self.postprocess`` turns it into pictures) and ``"cond"``. It returns a dict; a returned
        ``"latents"`` replaces the current ones. ``timestep`` is the scheduler's timestep (1000 * sigma).
        """
        batch = self.check_inputs(image, task, num_images_per_prompt, num_inference_steps, generator, output_type,
                                  callback_on_step_end, callback_on_step_end_tensor_inputs)
        device = self._execution_device
        dtype = self.denoiser.dtype
        ptype = self.denoiser.config.prediction_type
        r = self.resolution
        task_index = self.denoiser.task_index_of(task)

        cond = self.preprocess(image).to(device=device, dtype=dtype)
        cond = cond.repeat_interleave(num_images_per_prompt, dim=0)
        total = batch * num_images_per_prompt
        gens = list(generator) if isinstance(generator, (list, tuple)) else generator
        latents = randn_tensor((total, 3, r, r), generator=gens, device=device, dtype=torch.float32)
        task_idx = torch.full((total,), task_index, device=device, dtype=torch.long)

        sigmas = np.linspace(1.0, 1.0 / num_inference_steps, num_inference_steps)
        self.scheduler.set_timesteps(sigmas=sigmas, device=device, mu=self._mu())
        timesteps = self.scheduler.timesteps
        sched_sigmas = self.scheduler.sigmas
        self._num_timesteps = len(timesteps)

        with self.progress_bar(total=len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                sigma = sched_sigmas[i].to(device=device, dtype=torch.float32).expand(total)
                pred = self.denoiser(latents.to(dtype), cond, sigma.to(dtype), task_idx).float()
                pred_x0 = to_x0(pred, latents, sigma, ptype)
                if clip_pred_x0:
                    pred_x0 = pred_x0.clamp(-1, 1)
                    velocity = to_velocity(pred_x0, latents, sigma, "x0")
                else:
                    velocity = to_velocity(pred, latents, sigma, ptype)
                latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    local = {"latents": latents, "pred_x0": pred_x0, "cond": cond}
                    kwargs = {k: local[k] for k in callback_on_step_end_tensor_inputs}
                    outputs = callback_on_step_end(self, i, t, kwargs) or {}
                    latents = outputs.pop("latents", latents)
                bar.update()

        images = self.postprocess(latents, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return DiffThinkerPipelineOutput(images=images, task=self.tasks[task_index],
                                         num_images_per_prompt=num_images_per_prompt)

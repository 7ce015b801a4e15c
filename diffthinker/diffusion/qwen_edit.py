"""The GPU path: the real Qwen-Image-Edit fine-tuned with LoRA, as DiffThinker published it (preset
``qwen-image-edit-lora``).

What it is (reference/diffthinker_tasks.md §1 and §3):

* Base model: Qwen-Image-Edit-2509 (diffusers ``QwenImageEditPlusPipeline``, the paper's model), -2511 (same
  pipeline class; its transformer modulates the condition-image tokens with timestep 0, ``zero_cond_t``) or the
  original Qwen-Image-Edit (``QwenImageEditPipeline``), from a local diffusers folder or a hub id. It works in
  latent space with its own VAE (``AutoencoderKLQwenImage``) and text encoder (Qwen2.5-VL-7B, which also sees the
  problem image), in-context editing: the problem image's latent tokens follow the noisy tokens in one sequence.
* LoRA (peft) on the transformer only: rank 32, alpha 32 (scale 1), target modules ``LORA_TARGET_MODULES``;
  AdamW lr 1e-4, weight decay 0.01, constant LR, batch 1 (``make_optimizer``).
* The published prompt per task (``get_task(t).prompt``).
* Training objective (``training_step``): DiffSynth's ``FlowMatchSFTLoss``: a uniform random index into the
  1000-point training grid (linspace, exponential shift mu = 0.8, terminal stretched to 0.02), ``x_t = (1 - s) x0
  + s eps`` on the normalised VAE latents, target ``eps - x0``, MSE times the bell weight of ``t = 1000 s``. The
  sigma sampling and weights are ``diffthinker.diffusion.flow``'s "published" scheme and "bell" weighting.
* Inference (``solve``): 20 Euler steps of ``FlowMatchEulerDiscreteScheduler`` with the Qwen-Image scheduler
  config (dynamic shift: mu = 0.5387 at 512x512, terminal 0.02: exactly the published 20-step grid), true CFG with
  an empty negative prompt at scale 4.0 (the published default: DiffSynth's default ``cfg_scale``, never overridden
  by the eval scripts; 2 transformer passes per step). ``true_cfg_scale=1`` halves the cost (one pass per step).
  The CFG combination is diffusers' (``neg + s (cond - neg)``, rescaled to the conditional prediction's norm).

Deliberate differences from ``QwenImageEditPlusPipeline.__call__`` (``solve`` runs the pipeline's own components
and helper methods in its own loop, so that inference sees exactly what training saw):

* The problem image is VAE-encoded at the output resolution (512 by default), as DiffSynth's
  ``edit_image_auto_resize=False`` did in training and evaluation; diffusers' ``__call__`` would always resize it
  to about 1024x1024 (4096 condition tokens, a different input from training).
* Batches: ``__call__`` of the Plus pipeline accepts one prompt at a time (it reads a list of images as several
  pictures of one prompt); here each item's prompt is encoded with its own image and the batch is padded, so
  ``solve`` and ``training_step`` take batches (and ``num_images_per_prompt``, a generator per sample).
* The image the Qwen2.5-VL encoder sees is resized to ``condition_pixels`` (default 384 x 384, diffusers' Plus
  pipelines; for the plain Qwen-Image-Edit the output resolution). With this set and the VAE image at the output
  size, ``solve`` gives the same latents as diffusers' ``__call__`` (a test checks it on tiny components).

Processor: the stock ``Qwen2VLProcessor`` of transformers 5 needs torchvision for its video processor. When that
cannot be loaded, ``load_pipeline`` falls back to ``QwenImageOnlyProcessor`` (the same processor without video,
on the PIL image processor): Qwen-Image-Edit only ever sends images. The tiny test components use it too.

LoRA files: diffusers' format (``pytorch_lora_weights.safetensors`` with the adapter config in the safetensors
metadata), written by ``save_lora`` and read by ``load_lora`` / ``pipe.load_lora_weights``; diffusers' loader
also converts DiffSynth-style keys (``...lora_A.default.weight``), the format of the published DiffThinker LoRAs.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .flow import add_noise, loss_weight, sample_sigmas, velocity_target

logger = logging.getLogger(__name__)

PRESET_NAME = "qwen-image-edit-lora"

#: DiffThinker's LoRA target modules (DiffSynth ``--lora_target_modules``), matched as module-name suffixes.
LORA_TARGET_MODULES = ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0", "to_add_out",
                       "img_mlp.net.2", "img_mod.1", "txt_mlp.net.2", "txt_mod.1")

#: Target modules that only feed the text stream's output. In the LAST transformer block that output is discarded
#: (only the image tokens reach ``norm_out``), so their LoRA weights there get exactly zero gradient and never
#: train: 3 of the 720 adapted modules of the real 60-block model (``txt_mod.1`` stays live: its norm1 shift/scale
#: feed the text keys/values the image tokens attend to). Harmless; we keep the published target list as is.
DEAD_IN_LAST_BLOCK = ("add_q_proj", "to_add_out", "txt_mlp.net.2")

VARIANTS = ("2509", "2511", "edit")
HUB_IDS = {"2509": "Qwen/Qwen-Image-Edit-2509", "2511": "Qwen/Qwen-Image-Edit-2511", "edit": "Qwen/Qwen-Image-Edit"}
PIPELINE_CLASS_NAMES = {"2509": "QwenImageEditPlusPipeline", "2511": "QwenImageEditPlusPipeline",
                        "edit": "QwenImageEditPipeline"}
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
_EXPECTED_FOLDER = ("model_index.json", "transformer/", "vae/", "text_encoder/", "tokenizer/", "processor/",
                    "scheduler/")


@dataclass
class QwenEditConfig:
    """Options of the ``qwen-image-edit-lora`` preset; the defaults are the published ones (reference §1).

    model: local diffusers folder or hub id. variant: "2509" | "2511" | "edit" | "auto" (from model_index.json,
      the transformer config and the name). resolution: output and VAE-input size (published 512; must be a
      multiple of 16 = 2 x the VAE factor for the real model). torch_dtype: dtype the weights are loaded in
      (published bf16; LoRA weights are kept in float32 for training). zero_cond_t: None = on for 2511 only.
    condition_pixels: the area the Qwen2.5-VL encoder's copy of the problem image is resized to (None: 384^2
      for the Plus pipelines, resolution^2 for the plain one).
    sigma_scheme / loss_weighting: see ``diffthinker.diffusion.flow`` ("published" + "bell" is DiffSynth's).
    true_cfg_scale: 4.0 published (two transformer passes per step); 1.0 disables CFG.
    """

    model: str = HUB_IDS["2509"]
    variant: str = "auto"
    resolution: int = 512
    torch_dtype: str = "bfloat16"
    local_files_only: bool = False
    lora_rank: int = 32
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] = LORA_TARGET_MODULES
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    zero_cond_t: bool | None = None
    condition_pixels: int | None = None
    sigma_scheme: str = "published"
    loss_weighting: str = "bell"
    num_inference_steps: int = 20
    true_cfg_scale: float = 4.0
    negative_prompt: str = ""
    seed: int = 42

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS + ("auto",):
            raise ValueError(f"unknown Qwen-Image-Edit variant {self.variant!r}; expected one of "
                             f"{VARIANTS + ('auto',)}")
        if self.resolution < 8 or self.lora_rank < 1 or self.num_inference_steps < 1 or self.learning_rate <= 0:
            raise ValueError(f"invalid QwenEditConfig {self}")
        if self.true_cfg_scale < 0:
            raise ValueError(f"true_cfg_scale must be >= 0, got {self.true_cfg_scale}")
        self.lora_target_modules = tuple(self.lora_target_modules)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_target_modules"] = list(self.lora_target_modules)
        return d


# --------------------------------------------------------------------------------------------------- processor
def _image_only_processor_class():
    from transformers import Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class QwenImageOnlyProcessor(Qwen2VLProcessor):
        """``Qwen2VLProcessor`` without the video processor (which needs torchvision); images and text only."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = (getattr(tokenizer, "image_token_id", None)
                                   or tokenizer.convert_tokens_to_ids(self.image_token))
            self.video_token_id = (getattr(tokenizer, "video_token_id", None)
                                   or tokenizer.convert_tokens_to_ids(self.video_token))
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    QwenImageOnlyProcessor.__module__ = __name__
    QwenImageOnlyProcessor.__qualname__ = "QwenImageOnlyProcessor"
    return QwenImageOnlyProcessor


_PROCESSOR_CLASS = None


def _processor_class():
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is None:
        _PROCESSOR_CLASS = _image_only_processor_class()
    return _PROCESSOR_CLASS


def __getattr__(name: str):  # ``QwenImageOnlyProcessor`` is built on first use (transformers loads lazily)
    if name == "QwenImageOnlyProcessor":
        return _processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def image_only_processor(image_processor, tokenizer):
    """A Qwen2-VL processor for images + text only (see the module docstring)."""
    return _processor_class()(image_processor=image_processor, tokenizer=tokenizer)


def _load_processor(path: str, local_files_only: bool):
    from transformers import AutoTokenizer, Qwen2VLProcessor

    try:
        return Qwen2VLProcessor.from_pretrained(path, subfolder="processor", local_files_only=local_files_only)
    except (ImportError, OSError, ValueError, AttributeError, TypeError) as exc:  # no torchvision or no video config
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )

        logger.warning("stock Qwen2VLProcessor unavailable (%s: %s); using the image-only processor",
                       type(exc).__name__, exc)
        ip = Qwen2VLImageProcessorPil.from_pretrained(path, subfolder="processor", local_files_only=local_files_only)
        tok = AutoTokenizer.from_pretrained(path, subfolder="processor", local_files_only=local_files_only)
        return image_only_processor(ip, tok)


# ------------------------------------------------------------------------------------------------ pipeline load
def _dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    try:
        return {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
                "float32": torch.float32, "fp32": torch.float32}[name]
    except KeyError:
        raise ValueError(f"unknown torch_dtype {name!r}; expected bfloat16, float16 or float32") from None


def _looks_local(model: str) -> bool:
    """A path (absolute, ./, ../, ~, a Windows drive, or not of the hub's 'owner/name' form) rather than a hub id."""
    if os.path.exists(model) or os.path.isabs(model) or model.startswith((".", "~")) or "\\" in model:
        return True
    return model.count("/") != 1


def detect_variant(model: str, transformer_config: dict | None = None, pipeline_class: str | None = None) -> str:
    """"2509" | "2511" | "edit" from the pipeline class, the transformer's zero_cond_t and the model name."""
    name = os.path.basename(os.path.normpath(str(model))).lower()
    if pipeline_class == "QwenImageEditPipeline":
        return "edit"
    if (transformer_config or {}).get("zero_cond_t") or "2511" in name:
        return "2511"
    if pipeline_class == "QwenImageEditPlusPipeline" or "2509" in name:
        return "2509"
    if "edit" in name:
        return "edit"
    raise ValueError(f"cannot tell which Qwen-Image-Edit variant {model!r} is; pass variant= one of {VARIANTS}")


def pipeline_class(variant: str):
    import diffusers

    if variant not in VARIANTS:
        raise ValueError(f"unknown Qwen-Image-Edit variant {variant!r}; expected one of {VARIANTS}")
    return getattr(diffusers, PIPELINE_CLASS_NAMES[variant])


def check_model_dir(path: str | os.PathLike) -> Path:
    """Raise ``FileNotFoundError`` naming the path and the expected layout unless it is a pipeline folder."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(
            f"Qwen-Image-Edit model directory {str(path)!r} does not exist (resolved to {str(p.resolve())!r}); "
            f"expected a diffusers pipeline folder with {', '.join(_EXPECTED_FOLDER)} "
            f"(e.g. a download of {HUB_IDS['2509']!r}), or pass a hub id such as {HUB_IDS['2509']!r}")
    missing = [e for e in _EXPECTED_FOLDER if not (p / e.rstrip("/")).exists()]
    if missing:
        raise FileNotFoundError(f"{str(p)!r} is not a complete Qwen-Image-Edit pipeline folder: missing "
                                f"{', '.join(missing)} (expected {', '.join(_EXPECTED_FOLDER)})")
    return p


def set_zero_cond_t(transformer, enabled: bool) -> None:
    """Switch Qwen-Image-Edit-2511's zero-timestep conditioning of the condition tokens on or off (and record it)."""
    transformer.zero_cond_t = bool(enabled)
    for block in transformer.transformer_blocks:
        block.zero_cond_t = bool(enabled)
    transformer.register_to_config(zero_cond_t=bool(enabled))


def build_pipeline(components: dict, variant: str = "2509", zero_cond_t: bool | None = None):
    """A Qwen-Image-Edit pipeline of ``variant`` from ready components (transformer, vae, text_encoder,
    tokenizer, processor, scheduler); zero_cond_t None = on for 2511 (kept as given otherwise)."""
    pipe = pipeline_class(variant)(**components)
    _apply_zero_cond_t(pipe, variant, zero_cond_t)
    pipe.diffthinker_variant = variant
    return pipe


def _apply_zero_cond_t(pipe, variant: str, zero_cond_t: bool | None) -> None:
    want = (variant == "2511") if zero_cond_t is None else bool(zero_cond_t)
    have = bool(getattr(pipe.transformer.config, "zero_cond_t", False))
    if want != have:
        if zero_cond_t is None or variant == "2511" or want:
            logger.warning("setting zero_cond_t=%s on the %s transformer (its config says %s)", want, variant, have)
        set_zero_cond_t(pipe.transformer, want)


def load_pipeline(cfg: QwenEditConfig | str, device: str | torch.device | None = None, **overrides):
    """Load Qwen-Image-Edit (``cfg.model``: local folder or hub id) as a diffusers pipeline, ready for LoRA.

    A local path that does not exist (or lacks the pipeline layout) raises ``FileNotFoundError`` naming it and
    what was expected; hub ids go through diffusers' ``from_pretrained`` (cache, ``local_files_only``).
    """
    cfg = QwenEditConfig(model=cfg, **overrides) if isinstance(cfg, str) else replace(cfg, **overrides)
    model = str(cfg.model)
    index: dict = {}
    tconf: dict = {}
    if _looks_local(model):
        root = check_model_dir(model)
        model = str(root)
        index = json.loads((root / "model_index.json").read_text())
        tconf_path = root / "transformer" / "config.json"
        tconf = json.loads(tconf_path.read_text()) if tconf_path.exists() else {}
    variant = cfg.variant if cfg.variant != "auto" else detect_variant(model, tconf, index.get("_class_name"))
    cls = pipeline_class(variant)
    processor = _load_processor(model, cfg.local_files_only)
    pipe = cls.from_pretrained(model, processor=processor, dtype=_dtype(cfg.torch_dtype),
                               local_files_only=cfg.local_files_only)
    _apply_zero_cond_t(pipe, variant, cfg.zero_cond_t)
    pipe.diffthinker_variant = variant
    if device is not None:
        pipe.to(device)
    return pipe


def variant_of(pipe) -> str:
    v = getattr(pipe, "diffthinker_variant", None)
    if v is None:
        v = "edit" if type(pipe).__name__ == "QwenImageEditPipeline" else (
            "2511" if getattr(pipe.transformer.config, "zero_cond_t", False) else "2509")
    return v


# ---------------------------------------------------------------------------------------------------------- LoRA
def attach_lora(pipe, cfg: QwenEditConfig | None = None, adapter_name: str = "default") -> list[torch.nn.Parameter]:
    """Freeze the VAE, text encoder and transformer, add the LoRA (peft) to the transformer; return its params.

    LoRA weights are float32 even when the base is bf16 (the usual mixed-precision LoRA recipe). peft's default
    init (A Kaiming-uniform, B zero) makes the adapted model start exactly at the base model.
    """
    from peft import LoraConfig

    cfg = cfg or QwenEditConfig()
    for name in ("vae", "text_encoder", "transformer"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.requires_grad_(False)
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      init_lora_weights=True, target_modules=list(cfg.lora_target_modules))
    pipe.transformer.add_adapter(lora, adapter_name=adapter_name)
    params = lora_parameters(pipe)
    if not params:
        raise ValueError(f"no LoRA target module found in the transformer for {cfg.lora_target_modules}")
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


def lora_parameters(pipe) -> list[torch.nn.Parameter]:
    return [p for n, p in pipe.transformer.named_parameters() if "lora_" in n]


def make_optimizer(pipe, cfg: QwenEditConfig | None = None) -> torch.optim.Optimizer:
    """AdamW over the LoRA parameters with the published lr (1e-4) and weight decay (0.01); constant LR."""
    cfg = cfg or QwenEditConfig()
    params = [p for p in lora_parameters(pipe) if p.requires_grad]
    if not params:
        raise ValueError("the transformer has no trainable LoRA parameters; call attach_lora(pipe, cfg) first")
    return torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)


def save_lora(pipe, directory: str | os.PathLike, adapter_name: str = "default") -> Path:
    """Write the transformer's LoRA as ``<directory>/pytorch_lora_weights.safetensors`` (diffusers format, the
    adapter config in the safetensors metadata); returns the file path."""
    from peft.utils import get_peft_model_state_dict

    tr = pipe.transformer
    if not getattr(tr, "peft_config", None) or adapter_name not in tr.peft_config:
        raise ValueError(f"the transformer has no LoRA adapter {adapter_name!r}; call attach_lora first")
    state = get_peft_model_state_dict(tr, adapter_name=adapter_name)
    meta = tr.peft_config[adapter_name].to_dict()
    meta = json.loads(json.dumps(meta, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    type(pipe).save_lora_weights(directory, transformer_lora_layers=state, weight_name=LORA_WEIGHT_NAME,
                                 transformer_lora_adapter_metadata=meta)
    return directory / LORA_WEIGHT_NAME


def load_lora(pipe, path: str | os.PathLike, adapter_name: str = "default") -> None:
    """Load a LoRA (a file or a folder holding ``pytorch_lora_weights.safetensors``; diffusers or DiffSynth keys)
    into the transformer as ``adapter_name``, replacing an adapter of that name. Safetensors only."""
    p = Path(path)
    if p.is_dir():
        p = p / LORA_WEIGHT_NAME
    if not p.is_file():
        raise FileNotFoundError(f"LoRA file {str(p)!r} does not exist; expected a .safetensors file or a folder "
                                f"holding {LORA_WEIGHT_NAME}")
    if p.suffix != ".safetensors":
        raise ValueError(f"LoRA weights must be .safetensors (no pickle loading), got {str(p)!r}")
    tr = pipe.transformer
    if getattr(tr, "peft_config", None) and adapter_name in tr.peft_config:
        tr.delete_adapters(adapter_name)
    pipe.load_lora_weights(str(p.parent), weight_name=p.name, adapter_name=adapter_name)


# ------------------------------------------------------------------------------------------------- image & prompt
def _task_prompt(task: str) -> str:
    from diffthinker.tasks import get_task

    prompt = getattr(get_task(task), "prompt", None)
    if not prompt:
        raise ValueError(f"task {task!r} has no published prompt (get_task({task!r}).prompt is empty)")
    return prompt


def _as_pil_list(images, resolution: int, what: str) -> list[Image.Image]:
    """PIL image(s) or a ``[B, 3, H, W]`` tensor in [-1, 1] -> RGB PIL images of ``resolution`` (NEAREST resize,
    as the published inference does, logged)."""
    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, torch.Tensor):
        t = images
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"{what}: expected a [B, 3, H, W] tensor in [-1, 1], got shape {tuple(images.shape)}")
        if float(t.min()) < -1.001 or float(t.max()) > 1.001:
            raise ValueError(f"{what}: tensor values must lie in [-1, 1], got [{float(t.min()):.3f}, "
                             f"{float(t.max()):.3f}]")
        arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        images = [Image.fromarray(a.permute(1, 2, 0).numpy()) for a in arr]
    if not isinstance(images, (list, tuple)) or not images:
        raise ValueError(f"{what}: expected a PIL image, a non-empty list of them or a [B, 3, H, W] tensor, "
                         f"got {type(images).__name__}")
    out = []
    for i, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise TypeError(f"{what}[{i}]: expected a PIL image, got {type(im).__name__}")
        im = im.convert("RGB")
        if im.size != (resolution, resolution):
            logger.info("%s[%d]: resizing %dx%d -> %dx%d (NEAREST)", what, i, *im.size, resolution, resolution)
            im = im.resize((resolution, resolution), Image.NEAREST)
        out.append(im)
    return out


def _pixels(pipe, pil: list[Image.Image], device, dtype) -> torch.Tensor:
    """RGB PIL images (already at size) -> ``[B, 3, 1, H, W]`` in [-1, 1] (the VAE's video layout)."""
    t = pipe.image_processor.preprocess(pil, pil[0].height, pil[0].width)
    return t.unsqueeze(2).to(device=device, dtype=dtype)


def _condition_size(pipe, variant: str, resolution: int, condition_pixels: int | None) -> tuple[int, int]:
    area = condition_pixels if condition_pixels is not None else (
        resolution * resolution if variant == "edit" else 384 * 384)
    side = max(32, round(math.sqrt(area) / 32) * 32)  # diffusers' calculate_dimensions for a square image
    return side, side


def encode_prompts(pipe, prompts: Sequence[str], images: Sequence[Image.Image], variant: str | None = None,
                   condition_pixels: int | None = None, resolution: int | None = None, device=None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Qwen2.5-VL embeddings of each (prompt, image) with the pipeline's own edit template, one item at a time
    (the Plus pipeline reads several images as pictures of one prompt), padded to one length.

    Returns ``(embeds [B, L, D], mask [B, L] long or None when nothing is padded)`` as diffusers does.
    """
    variant = variant or variant_of(pipe)
    device = device or pipe._execution_device
    res = resolution or images[0].width
    h, w = _condition_size(pipe, variant, res, condition_pixels)
    embeds = []
    with torch.no_grad():
        for prompt, im in zip(prompts, images):
            cim = pipe.image_processor.resize(im, h, w)
            cim = [cim] if variant != "edit" else cim
            e, _ = pipe.encode_prompt(prompt=prompt, image=cim, device=device)
            embeds.append(e[0])
    length = max(e.shape[0] for e in embeds)
    out = torch.stack([torch.cat([e, e.new_zeros(length - e.shape[0], e.shape[1])]) for e in embeds])
    mask = torch.stack([torch.cat([torch.ones(e.shape[0], dtype=torch.long),
                                   torch.zeros(length - e.shape[0], dtype=torch.long)]) for e in embeds]).to(device)
    return out, (None if bool(mask.all()) else mask)


def encode_latents(pipe, pixels: torch.Tensor) -> torch.Tensor:
    """``[B, 3, 1, H, W]`` pixels -> normalised, 2x2-packed latent tokens ``[B, (h/2)(w/2), 4 z]`` (mode of the
    posterior, as the pipelines encode the edit image)."""
    with torch.no_grad():
        lat = pipe._encode_vae_image(pixels, generator=None)
    b, c, _, h, w = lat.shape
    return pipe._pack_latents(lat, b, c, h, w)


def _img_shapes(pipe, batch: int, resolution: int) -> list:
    side = resolution // pipe.vae_scale_factor // 2
    return [[(1, side, side), (1, side, side)]] * batch


def _check_resolution(pipe, resolution: int) -> None:
    m = pipe.vae_scale_factor * 2
    if resolution % m:
        raise ValueError(f"resolution must be a multiple of {m} (2 x the VAE factor {pipe.vae_scale_factor}), "
                         f"got {resolution}")


# ------------------------------------------------------------------------------------------------------ training
def training_step(components, batch: dict, generator: torch.Generator | None = None,
                  cfg: QwenEditConfig | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The published latent flow-matching loss on one batch, through the pipeline's own VAE, text encoder and
    transformer (gradients reach only trainable parameters: the LoRA after ``attach_lora``).

    ``components``: a Qwen-Image-Edit pipeline (``load_pipeline`` / ``build_pipeline``). ``batch``: ``problem``
    and ``solution`` (PIL image(s) or ``[B, 3, H, W]`` tensors in [-1, 1]), and ``task`` (a task id, or one per
    item) or ``prompt`` (str or list). Sigmas and noise come from ``generator`` (CPU or the device's), so a
    seeded generator makes the loss reproducible. Returns ``(loss, stats)`` with float stats: loss, mse (the
    unweighted velocity MSE), sigma_mean. The caller does ``loss.backward()`` and the optimiser step.
    """
    cfg = cfg or QwenEditConfig()
    pipe = components
    variant = variant_of(pipe)
    res = cfg.resolution
    _check_resolution(pipe, res)
    problems = _as_pil_list(batch["problem"], res, "problem")
    solutions = _as_pil_list(batch["solution"], res, "solution")
    if len(problems) != len(solutions):
        raise ValueError(f"batch has {len(problems)} problems but {len(solutions)} solutions")
    b = len(problems)
    prompts = _prompts_for(batch, b)
    device = pipe._execution_device
    tr = pipe.transformer
    dtype = tr.dtype
    embeds, mask = encode_prompts(pipe, prompts, problems, variant, cfg.condition_pixels, res, device)
    vae_dtype = pipe.vae.dtype
    x0 = encode_latents(pipe, _pixels(pipe, solutions, device, vae_dtype)).float()
    cond = encode_latents(pipe, _pixels(pipe, problems, device, vae_dtype))
    sigma = sample_sigmas(b, generator, cfg.sigma_scheme).to(device)
    gdev = generator.device if generator is not None else torch.device("cpu")
    noise = torch.randn(x0.shape, generator=generator, device=gdev, dtype=torch.float32).to(device)
    x_t = add_noise(x0, noise, sigma)
    pred = tr(hidden_states=torch.cat([x_t.to(dtype), cond.to(dtype)], dim=1), timestep=sigma.to(dtype),
              encoder_hidden_states=embeds.to(dtype), encoder_hidden_states_mask=mask,
              img_shapes=_img_shapes(pipe, b, res), return_dict=False)[0][:, : x0.shape[1]].float()
    err = (pred - velocity_target(x0, noise)).pow(2).mean(dim=(1, 2))
    w = loss_weight(sigma.float(), cfg.loss_weighting).to(err)
    loss = (err * w).mean()
    stats = {"loss": float(loss.detach()), "mse": float(err.detach().mean()), "sigma_mean": float(sigma.mean())}
    return loss, stats


def _prompts_for(batch: dict, b: int) -> list[str]:
    if batch.get("prompt") is not None:
        p = batch["prompt"]
        prompts = [p] * b if isinstance(p, str) else list(p)
    elif batch.get("task") is not None:
        t = batch["task"]
        prompts = [_task_prompt(t)] * b if isinstance(t, str) else [_task_prompt(x) for x in t]
    else:
        raise ValueError("batch needs 'task' (a task id or one per item) or 'prompt'")
    if len(prompts) != b:
        raise ValueError(f"batch has {b} images but {len(prompts)} prompts/tasks")
    return prompts


# ----------------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def solve(components, images, task: str | Sequence[str] | None = None, cfg: QwenEditConfig | None = None, *,
          prompt: str | Sequence[str] | None = None, num_inference_steps: int | None = None,
          true_cfg_scale: float | None = None, negative_prompt: str | None = None, num_images_per_prompt: int = 1,
          generator: torch.Generator | list[torch.Generator] | None = None, output_type: str = "pil",
          callback_on_step_end: Callable | None = None,
          callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",)):
    """Edit each puzzle image into its solution with the Qwen-Image-Edit pipeline (+ LoRA); published settings
    by default (20 Euler steps, true CFG 4.0 with an empty negative prompt, resolution 512).

    ``images``: PIL image(s) or a ``[B, 3, H, W]`` tensor in [-1, 1], resized (NEAREST, logged) to
    ``cfg.resolution``. ``task``: a task id (its published prompt) or one per image; or ``prompt``.
    Returns ``B * num_images_per_prompt`` outputs, item-major (item 0's samples first): a list of PIL images,
    or a ``[N, 3, H, W]`` tensor in [0, 1] (``"pt"``), or an ``[N, H, W, 3]`` array (``"np"``).
    ``generator``: one, or a list of ``B * num_images_per_prompt`` (one per sample, reproducible per sample).
    ``callback_on_step_end(pipe, i, t, {"latents": ..., "x0_latents": ...})`` may replace "latents".
    """
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import (
        calculate_shift,
        retrieve_timesteps,
    )
    from diffusers.utils.torch_utils import randn_tensor

    cfg = cfg or QwenEditConfig()
    pipe = components
    variant = variant_of(pipe)
    res = cfg.resolution
    _check_resolution(pipe, res)
    steps = num_inference_steps or cfg.num_inference_steps
    scale = cfg.true_cfg_scale if true_cfg_scale is None else true_cfg_scale
    neg = cfg.negative_prompt if negative_prompt is None else negative_prompt
    if output_type not in ("pil", "pt", "np", "latent"):
        raise ValueError(f"output_type must be 'pil', 'pt', 'np' or 'latent', got {output_type!r}")
    if num_images_per_prompt < 1:
        raise ValueError(f"num_images_per_prompt must be >= 1, got {num_images_per_prompt}")
    bad = [k for k in callback_on_step_end_tensor_inputs if k not in ("latents", "x0_latents")]
    if bad:
        raise ValueError(f"callback_on_step_end_tensor_inputs must be among ['latents', 'x0_latents'], got {bad}")
    pil = _as_pil_list(images, res, "images")
    b, n = len(pil), num_images_per_prompt
    prompts = _prompts_for({"task": task, "prompt": prompt}, b)
    if isinstance(generator, list) and len(generator) != b * n:
        raise ValueError(f"got {len(generator)} generators for {b} images x {n} samples = {b * n}")
    device = pipe._execution_device
    tr = pipe.transformer
    dtype = tr.dtype

    embeds, mask = encode_prompts(pipe, prompts, pil, variant, cfg.condition_pixels, res, device)
    embeds, mask = _repeat(embeds, n), (None if mask is None else _repeat(mask, n))
    do_cfg = scale > 1
    if do_cfg:
        n_embeds, n_mask = encode_prompts(pipe, [neg] * b, pil, variant, cfg.condition_pixels, res, device)
        n_embeds, n_mask = _repeat(n_embeds, n), (None if n_mask is None else _repeat(n_mask, n))
    cond = _repeat(encode_latents(pipe, _pixels(pipe, pil, device, pipe.vae.dtype)), n).to(dtype)
    side = 2 * (res // (pipe.vae_scale_factor * 2))
    c = pipe.latent_channels
    noise = randn_tensor((b * n, 1, c, side, side), generator=generator, device=device, dtype=dtype)
    latents = pipe._pack_latents(noise, b * n, c, side, side)
    img_shapes = _img_shapes(pipe, b * n, res)

    sched = pipe.scheduler
    sigmas = np.linspace(1.0, 1 / steps, steps)
    mu = calculate_shift(latents.shape[1], sched.config.get("base_image_seq_len", 256),
                         sched.config.get("max_image_seq_len", 4096), sched.config.get("base_shift", 0.5),
                         sched.config.get("max_shift", 1.15))
    timesteps, _ = retrieve_timesteps(sched, steps, device, sigmas=sigmas, mu=mu)
    sched.set_begin_index(0)
    for i, t in enumerate(pipe.progress_bar(timesteps)):
        model_in = torch.cat([latents, cond], dim=1)
        ts = t.expand(latents.shape[0]).to(dtype) / 1000
        pred = tr(hidden_states=model_in, timestep=ts, encoder_hidden_states=embeds,
                  encoder_hidden_states_mask=mask, img_shapes=img_shapes, return_dict=False)[0][:, : latents.shape[1]]
        if do_cfg:
            npred = tr(hidden_states=model_in, timestep=ts, encoder_hidden_states=n_embeds,
                       encoder_hidden_states_mask=n_mask, img_shapes=img_shapes,
                       return_dict=False)[0][:, : latents.shape[1]]
            comb = npred + scale * (pred - npred)
            pred = comb * (torch.norm(pred, dim=-1, keepdim=True) / torch.norm(comb, dim=-1, keepdim=True))
        sigma_now = sched.sigmas[i]
        x0_latents = latents - sigma_now.to(latents) * pred.to(latents)
        latents = sched.step(pred, t, latents, return_dict=False)[0]
        if callback_on_step_end is not None:
            local = {"latents": latents, "x0_latents": x0_latents}
            outs = callback_on_step_end(pipe, i, t, {k: local[k] for k in callback_on_step_end_tensor_inputs})
            latents = (outs or {}).get("latents", latents)
    if output_type == "latent":
        return latents
    return _decode(pipe, latents, res, output_type)


def _repeat(t: torch.Tensor, n: int) -> torch.Tensor:
    return t if n == 1 else t.repeat_interleave(n, dim=0)


def _decode(pipe, latents: torch.Tensor, res: int, output_type: str):
    lat = pipe._unpack_latents(latents, res, res, pipe.vae_scale_factor).to(pipe.vae.dtype)
    z = pipe.vae.config.z_dim
    mean = torch.tensor(pipe.vae.config.latents_mean).view(1, z, 1, 1, 1).to(lat)
    std = torch.tensor(pipe.vae.config.latents_std).view(1, z, 1, 1, 1).to(lat)
    image = pipe.vae.decode(lat * std + mean, return_dict=False)[0][:, :, 0]
    return pipe.image_processor.postprocess(image, output_type=output_type)


def preset() -> dict[str, Any]:
    """The ``qwen-image-edit-lora`` preset as a plain dict (the published settings; see ``QwenEditConfig``)."""
    return QwenEditConfig().to_dict()

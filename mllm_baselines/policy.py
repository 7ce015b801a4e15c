"""The policy of the MLLM track: a transformers Qwen-VL model (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) with its processor.

Where it comes from (``load_policy(name_or_path)``):

- ``tiny`` / ``small`` (the offline defaults): a Qwen2-VL built from config with random weights (``TINY_PRESETS``;
  ``tiny`` is ~0.3 M parameters, ``small`` ~3 M), a byte-level BPE tokenizer trained locally on the puzzle layer's
  own prompts (``build_tokenizer``; no download), and the PIL ``Qwen2VLImageProcessorPil``. The vision patch is
  8 px with a 2x2 merge, so a 64 px puzzle image is 8x8 patches = 16 image tokens (one patch per 8x8 maze cell).
- a saved policy folder (``Policy.save``): the HF files (``config.json``, ``model.safetensors``, tokenizer and
  image-processor configs) beside ``diffthinker_policy.json``, which makes the folder self-describing (kind
  ``mllm``, tasks, image size, prompt version, base model, generation budget) so ``diffthinker solve/eval`` can
  tell it from a diffusion pipeline.
- any other local folder or hub id of the Qwen-VL family (GPUs): the model class is picked from ``config.json``'s
  ``model_type`` (``qwen2_vl``, ``qwen2_5_vl``, ``qwen3_vl``).

The processor. transformers' stock ``Qwen2VLProcessor`` / ``Qwen3VLProcessor`` insist on a video processor, and the
video processors need torchvision, which has no build beside the CPU torch used here. We only ever send images, so
``ImageOnlyQwenProcessor`` is the stock processor minus the video processor (same image-token expansion). The
stock one is used whenever it loads (a GPU install with torchvision).

Image size. Training, generation and evaluation all draw or resize puzzles to ``image_size`` and the image
processor's ``min_pixels = max_pixels = image_size**2`` pins its resize, so the number of image tokens never differs
between training and generation (the source of the "N image tokens for M placeholders" errors users report).
``image_size`` must be a multiple of ``patch_size * merge_size`` (16 for the tiny presets, 28 for Qwen2/2.5-VL, 32
for Qwen3-VL).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from diffthinker.tasks import get_task, list_tasks
from diffthinker.tasks.base import TaskError

from .prompts import ANSWER_FORMATS, PROMPT_VERSION, Prompt, instruction

logger = logging.getLogger(__name__)

__all__ = [
    "FAMILIES",
    "POLICY_FILE",
    "Policy",
    "PolicyMeta",
    "SPECIAL_TOKENS",
    "TINY_PRESETS",
    "build_tiny_policy",
    "build_tokenizer",
    "image_only_processor",
    "is_policy_folder",
    "load_policy",
]

POLICY_FILE = "diffthinker_policy.json"
FORMAT_VERSION = 1

#: the special tokens of the Qwen-VL ChatML and vision templates
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")

#: model_type (config.json) -> transformers class name
FAMILIES = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}

#: offline presets: Qwen2-VL sizes built from config. ``vocab_size`` is the BPE target of the local tokenizer.
TINY_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vision_depth=2, vision_embed_dim=64, vision_num_heads=4, vision_mlp_ratio=2,
                 patch_size=8, merge_size=2, vocab_size=512, tie_word_embeddings=True),
    "small": dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=6,
                  num_key_value_heads=2, vision_depth=3, vision_embed_dim=128, vision_num_heads=4,
                  vision_mlp_ratio=2, patch_size=8, merge_size=2, vocab_size=1024, tie_word_embeddings=True),
}


# ============================================================================================== tokenizer
_TRAINED: dict[tuple, str] = {}


def _tokenizer_corpus(seeds: int = 4) -> list[str]:
    """The texts the local BPE is trained on: every task's instruction, prompt and ``to_text`` renderings of a few
    seeded puzzles of each level (deterministic). Answers are left out on purpose: move strings then stay one token
    per move, which is what the policy has to learn to emit."""
    texts: list[str] = []
    for tid in list_tasks():
        task = get_task(tid)
        if task.name in ANSWER_FORMATS:
            texts.append(instruction(task))
        texts.append(task.prompt)
        for level in task.levels:
            for s in range(seeds):
                try:
                    texts.append(task.to_text(task.generate(level, s)))
                except TaskError:  # a level that cannot generate here (none today); the corpus stays deterministic
                    break
    return texts


def build_tokenizer(vocab_size: int = 512, corpus: Sequence[str] | None = None):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained locally (no download), with the Qwen special tokens.

    Byte-level: every string round-trips, whatever the model writes. Deterministic for a given corpus.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise TaskError(f"tokenizer vocab_size {vocab_size} is too small; expected >= {256 + len(SPECIAL_TOKENS)} "
                        "(256 byte tokens + the special tokens)")
    key = (vocab_size, tuple(corpus) if corpus is not None else None)
    if key not in _TRAINED:  # training is deterministic, so one training per process and corpus is enough
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), min_frequency=2,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(list(corpus) if corpus is not None else _tokenizer_corpus(), trainer)
        _TRAINED[key] = tok.to_str()
    tok = Tokenizer.from_str(_TRAINED[key])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=list(SPECIAL_TOKENS[1:]))
    fast.model_max_length = 8192
    return fast


# ============================================================================================== processor
_PROCESSOR_CLASS = None


def _image_only_processor_class():
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is not None:
        return _PROCESSOR_CLASS
    from transformers import Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyQwenProcessor(Qwen2VLProcessor):
        """``Qwen2VLProcessor`` without the video processor (which needs torchvision): images and text only.

        The image-token expansion (``<|image_pad|>`` -> ``grid_t * grid_h * grid_w / merge_size**2`` tokens) is the
        stock one, which is also what Qwen2.5-VL and Qwen3-VL use for images."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    ImageOnlyQwenProcessor.__module__ = __name__
    _PROCESSOR_CLASS = ImageOnlyQwenProcessor
    return ImageOnlyQwenProcessor


def image_only_processor(image_processor, tokenizer):
    """A Qwen-VL processor for images + text only (see the module docstring)."""
    return _image_only_processor_class()(image_processor=image_processor, tokenizer=tokenizer)


def _pil_image_processor(image_size: int, patch_size: int, merge_size: int, temporal_patch_size: int = 2,
                         source: str | None = None):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    factor = patch_size * merge_size
    if image_size % factor:
        raise TaskError(f"image_size {image_size} must be a multiple of patch_size x merge_size = {factor} "
                        f"(so the processor never resizes and image-token counts match)")
    kw = dict(min_pixels=image_size * image_size, max_pixels=image_size * image_size)
    if source is not None:
        return Qwen2VLImageProcessorPil.from_pretrained(source, **kw)
    return Qwen2VLImageProcessorPil(patch_size=patch_size, merge_size=merge_size,
                                    temporal_patch_size=temporal_patch_size, **kw)


# ============================================================================================== metadata
@dataclass
class PolicyMeta:
    """What ``diffthinker_policy.json`` records: enough to load and prompt the policy the way it was trained."""

    tasks: list[str]
    image_size: int = 64
    base_model: str = "tiny"
    family: str = "qwen2_vl"
    prompt_version: str = PROMPT_VERSION
    max_new_tokens: dict[str, int] = field(default_factory=dict)   # per task id
    kind: str = "mllm"
    format: str = "diffthinker-policy"
    format_version: int = FORMAT_VERSION
    training: dict[str, Any] = field(default_factory=dict)         # free-form provenance (stages, steps, config)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> "PolicyMeta":
        if data.get("format") != "diffthinker-policy" or data.get("kind") != "mllm":
            raise TaskError(f"{where}: not an MLLM policy file (format={data.get('format')!r}, "
                            f"kind={data.get('kind')!r}); expected format 'diffthinker-policy', kind 'mllm'")
        if data.get("format_version") != FORMAT_VERSION:
            raise TaskError(f"{where}: format_version {data.get('format_version')!r} is not supported; "
                            f"expected {FORMAT_VERSION}")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def is_policy_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / POLICY_FILE).is_file()


# ============================================================================================== the policy
class Policy:
    """A Qwen-VL model, its processor and its metadata; prompt encoding for generation and for training.

    ``encode(prompts, completions=None)`` is the one place inputs are built: prompts are left-padded to a common
    length, completions (token id lists) right-padded after them, so completion column ``j`` is at the same
    position in every row and ``logits[:, P - 1 + j]`` predicts it.
    """

    def __init__(self, model: torch.nn.Module, processor: Any, meta: PolicyMeta):
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.meta = meta
        tok = self.tokenizer
        self.eos_id = tok.convert_tokens_to_ids("<|im_end|>")
        self.image_token_id = tok.convert_tokens_to_ids("<|image_pad|>")
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.convert_tokens_to_ids("<|endoftext|>")
        # special tokens a completion must never contain (the sampler forbids them): a generated <|image_pad|>
        # would break the image-feature scatter of the next forward; EOS is the one special token it may emit
        added = getattr(tok, "added_tokens_decoder", {}) or {}
        self.banned_ids = sorted({i for i, t in added.items() if getattr(t, "special", False)} - {self.eos_id})

    # ------------------------------------------------------------------ basics
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def image_size(self) -> int:
        return self.meta.image_size

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad or not trainable_only)

    def supports(self, task_id: str) -> bool:
        try:
            return get_task(task_id).id in self.meta.tasks
        except TaskError:
            return False

    def max_new_tokens(self, task_id: str, default: int = 64) -> int:
        return int(self.meta.max_new_tokens.get(get_task(task_id).id, default))

    def decode(self, ids: Sequence[int]) -> str:
        """Completion text without special tokens (stops at the first EOS)."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ------------------------------------------------------------------ inputs
    def encode(self, prompts: Sequence[Prompt], completions: Sequence[Sequence[int]] | None = None) -> dict[str, Any]:
        """Model inputs for ``prompts`` (+ right-padded ``completions``).

        Returns ``input_ids``, ``attention_mask``, ``pixel_values`` / ``image_grid_thw`` (only when some prompt has
        an image; rows without one contribute no pixels), ``prompt_len`` (int, the padded prompt width) and,
        with completions, ``completion_ids`` / ``completion_mask`` [N, C] (C = the longest completion).
        """
        if not prompts:
            raise TaskError("encode needs at least one prompt")
        size = self.image_size
        images = [p.image for p in prompts if p.image is not None]
        for img in images:
            if img.size != (size, size):
                raise TaskError(f"prompt image size {img.size} differs from the policy's image_size {size}; "
                                "build prompts with prompts.build_prompt(..., image_size=policy.image_size)")
        rows = []
        pix, grids = [], []
        cache: dict[int, tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = {}
        for p in prompts:  # the G rows of a group share one Prompt object: process it once
            hit = cache.get(id(p))
            if hit is None:
                if p.image is not None:
                    out = self.processor(text=[p.text], images=[p.image], return_tensors="pt")
                    hit = (out["input_ids"][0], out["pixel_values"], out["image_grid_thw"])
                else:
                    out = self.tokenizer([p.text], add_special_tokens=False, return_tensors="pt")
                    hit = (out["input_ids"][0], None, None)
                cache[id(p)] = hit
            rows.append(hit[0])
            if hit[1] is not None:
                pix.append(hit[1])
                grids.append(hit[2])
        plen = max(len(r) for r in rows)
        n = len(prompts)
        comp = [list(c) for c in completions] if completions is not None else None
        if comp is not None and len(comp) != n:
            raise TaskError(f"encode got {n} prompts but {len(comp)} completions")
        clen = max((len(c) for c in comp), default=0) if comp is not None else 0
        clen = max(clen, 1) if comp is not None else 0
        ids = torch.full((n, plen + clen), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, plen + clen), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, plen - len(r): plen] = r
            mask[i, plen - len(r): plen] = 1
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "prompt_len": plen}
        if comp is not None:
            cids = torch.full((n, clen), self.pad_id, dtype=torch.long)
            cmask = torch.zeros((n, clen), dtype=torch.float32)
            for i, c in enumerate(comp):
                if c:
                    cids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
                    cmask[i, : len(c)] = 1.0
            ids[:, plen:] = cids
            mask[:, plen:] = cmask.long()
            batch["completion_ids"] = cids
            batch["completion_mask"] = cmask
        if pix:
            batch["pixel_values"] = torch.cat(pix)
            batch["image_grid_thw"] = torch.cat(grids)
            # modality per position (0 text, 1 image): transformers builds M-RoPE positions from it
            batch["mm_token_type_ids"] = (ids == self.image_token_id).int()
        return batch

    def forward_inputs(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The tensors of ``batch`` the model's forward takes, on the model's device."""
        dev = self.device
        out = {"input_ids": batch["input_ids"].to(dev), "attention_mask": batch["attention_mask"].to(dev)}
        if "pixel_values" in batch:
            out["pixel_values"] = batch["pixel_values"].to(dev, dtype=self.model.dtype)
            out["image_grid_thw"] = batch["image_grid_thw"].to(dev)
            out["mm_token_type_ids"] = batch["mm_token_type_ids"].to(dev)
        return out

    def to(self, device: str | torch.device) -> "Policy":
        self.model.to(device)
        return self

    # ------------------------------------------------------------------ save
    def save(self, path: str | os.PathLike, *, training: dict[str, Any] | None = None) -> Path:
        """Write the policy folder (safetensors weights, tokenizer, image processor, ``diffthinker_policy.json``)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        model = self.model
        model.save_pretrained(str(path), safe_serialization=True)
        self.tokenizer.save_pretrained(str(path))
        self.processor.image_processor.save_pretrained(str(path))
        meta = asdict(self.meta)
        if training is not None:
            meta["training"] = training
        (path / POLICY_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return path


# ============================================================================================== build / load
def _tiny_config(preset: str, tokenizer, overrides: dict[str, Any]):
    from transformers import Qwen2VLConfig

    if preset not in TINY_PRESETS:
        raise TaskError(f"unknown policy preset {preset!r}; expected one of {sorted(TINY_PRESETS)}")
    p = {**TINY_PRESETS[preset], **overrides}
    unknown = set(p) - set(TINY_PRESETS["tiny"])
    if unknown:
        raise TaskError(f"unknown tiny-policy options {sorted(unknown)}; expected some of {sorted(TINY_PRESETS['tiny'])}")
    heads = p["num_attention_heads"]
    if p["hidden_size"] % heads or (p["hidden_size"] // heads) % 2:
        raise TaskError(f"hidden_size {p['hidden_size']} must split into {heads} heads of an even size")
    half = p["hidden_size"] // heads // 2          # M-RoPE sections (temporal, height, width) sum to head_dim / 2
    t = half // 4
    hw = half - t
    mrope = [t, hw // 2, hw - hw // 2]
    ids = {tkn: tokenizer.convert_tokens_to_ids(tkn) for tkn in SPECIAL_TOKENS}
    vocab = len(tokenizer)
    return Qwen2VLConfig(
        text_config=dict(hidden_size=p["hidden_size"], intermediate_size=p["intermediate_size"],
                         num_hidden_layers=p["num_hidden_layers"], num_attention_heads=heads,
                         num_key_value_heads=p["num_key_value_heads"], vocab_size=vocab,
                         max_position_embeddings=4096, tie_word_embeddings=p["tie_word_embeddings"],
                         rope_scaling={"mrope_section": mrope, "rope_type": "default", "type": "default"},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=p["vision_depth"], embed_dim=p["vision_embed_dim"], hidden_size=p["hidden_size"],
                           num_heads=p["vision_num_heads"], mlp_ratio=p["vision_mlp_ratio"],
                           patch_size=p["patch_size"], spatial_merge_size=p["merge_size"], temporal_patch_size=2,
                           in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        vocab_size=vocab, tie_word_embeddings=p["tie_word_embeddings"],
    ), p


def build_tiny_policy(tasks: Sequence[str], *, preset: str = "tiny", image_size: int = 64, seed: int = 0,
                      overrides: dict[str, Any] | None = None,
                      max_new_tokens: dict[str, int] | None = None) -> Policy:
    """A random-init Qwen2-VL of a ``TINY_PRESETS`` size with a locally trained tokenizer (fully offline).

    Same arguments, same weights and tokenizer (the init runs under ``torch.manual_seed(seed)`` in a forked RNG)."""
    from transformers import Qwen2VLForConditionalGeneration

    tasks = [get_task(t).id for t in tasks]
    if not tasks:
        raise TaskError("a policy needs at least one task")
    base = {**TINY_PRESETS.get(preset, {}), **(overrides or {})}
    tokenizer = build_tokenizer(int(base.get("vocab_size", 512)))
    config, p = _tiny_config(preset, tokenizer, overrides or {})
    ip = _pil_image_processor(image_size, p["patch_size"], p["merge_size"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    meta = PolicyMeta(tasks=tasks, image_size=image_size, base_model=preset, family="qwen2_vl",
                      max_new_tokens=dict(max_new_tokens or {}))
    return Policy(model.eval(), image_only_processor(ip, tokenizer), meta)


def _torch_dtype(name: str) -> torch.dtype:
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise TaskError(f"unknown torch_dtype {name!r}; expected one of {sorted(table)}")
    return table[name]


def _load_processor(source: str, image_size: int, patch_size: int, merge_size: int, local_only: bool):
    """The stock processor if it loads (torchvision present), else the image-only one; image size pinned."""
    from transformers import AutoProcessor, AutoTokenizer

    try:
        proc = AutoProcessor.from_pretrained(source, local_files_only=local_only)
        ip = proc.image_processor
        ip.size = {"shortest_edge": image_size * image_size, "longest_edge": image_size * image_size}
        for attr in ("min_pixels", "max_pixels"):
            if hasattr(ip, attr):
                setattr(ip, attr, image_size * image_size)
        return proc
    except (ImportError, OSError, ValueError, AttributeError, TypeError, KeyError) as exc:
        logger.info("stock processor unavailable for %s (%s: %s); using the image-only processor", source,
                    type(exc).__name__, exc)
    tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    ip = _pil_image_processor(image_size, patch_size, merge_size, source=source)
    return image_only_processor(ip, tok)


def load_policy(name_or_path: str | os.PathLike, *, tasks: Sequence[str] | None = None, image_size: int | None = None,
                seed: int = 0, overrides: dict[str, Any] | None = None, torch_dtype: str = "float32",
                device: str | torch.device | None = None, local_files_only: bool | None = None,
                max_new_tokens: dict[str, int] | None = None) -> Policy:
    """A policy from a preset name (``tiny``, ``small``), a saved policy folder, a Qwen-VL folder or a hub id.

    ``tasks`` / ``image_size`` are required for presets and base models and, for a saved policy, must agree with
    what it was trained on (a clear error otherwise). Hub ids download (GPU machines); set ``local_files_only``
    to forbid that (default: only for paths that exist)."""
    name = str(name_or_path)
    if name in TINY_PRESETS:
        if not tasks:
            raise TaskError(f"building the {name!r} preset needs the tasks it is for (e.g. tasks=['maze-v1'])")
        pol = build_tiny_policy(tasks, preset=name, image_size=image_size or 64, seed=seed, overrides=overrides,
                                max_new_tokens=max_new_tokens)
        return pol.to(device) if device is not None else pol
    path = Path(name).expanduser()
    is_local = path.exists()
    if not is_local and (name.startswith((".", "/", "~")) or name.count("/") != 1):
        raise TaskError(f"policy {name!r} is neither a preset ({sorted(TINY_PRESETS)}), an existing folder, nor a "
                        "hub id of the form owner/name")
    local_only = is_local if local_files_only is None else local_files_only
    meta: PolicyMeta | None = None
    if is_local and (path / POLICY_FILE).is_file():
        try:
            meta = PolicyMeta.from_dict(json.loads((path / POLICY_FILE).read_text()), str(path / POLICY_FILE))
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path / POLICY_FILE} is not valid JSON ({exc})") from None
        if meta.prompt_version != PROMPT_VERSION:
            raise TaskError(f"policy {path} was trained with prompt version {meta.prompt_version!r}; this code writes "
                            f"{PROMPT_VERSION!r} prompts (use the diffthinker version that trained it)")
        if image_size is not None and image_size != meta.image_size:
            raise TaskError(f"policy {path} was trained at image_size {meta.image_size}, not {image_size}")
        if tasks:
            extra = [get_task(t).id for t in tasks if get_task(t).id not in meta.tasks]
            if extra:
                logger.warning("policy %s was trained for %s; now also used for %s", path, meta.tasks, extra)
                meta.tasks = [*meta.tasks, *extra]
    if is_local and not (path / "config.json").is_file():
        raise TaskError(f"{path} has no config.json; expected a saved policy or a Qwen-VL model folder")
    config_path = path / "config.json" if is_local else None
    if config_path is not None:
        model_type = json.loads(config_path.read_text()).get("model_type")
    else:
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(name, local_files_only=local_only).model_type
    if model_type not in FAMILIES:
        raise TaskError(f"{name}: model_type {model_type!r} is not a supported Qwen-VL family; expected one of "
                        f"{sorted(FAMILIES)}")
    import transformers

    cls = getattr(transformers, FAMILIES[model_type])
    model = cls.from_pretrained(name, dtype=_torch_dtype(torch_dtype), local_files_only=local_only)
    vc = model.config.vision_config
    patch = int(getattr(vc, "patch_size", 14))
    merge = int(getattr(vc, "spatial_merge_size", 2))
    if meta is None:
        if not tasks:
            raise TaskError(f"loading base model {name!r} needs the tasks it will be trained/evaluated on")
        size = image_size or patch * merge * 16
        meta = PolicyMeta(tasks=[get_task(t).id for t in tasks], image_size=size, base_model=name, family=model_type,
                          max_new_tokens=dict(max_new_tokens or {}))
    elif max_new_tokens:
        meta.max_new_tokens.update(max_new_tokens)
    processor = _load_processor(name, meta.image_size, patch, merge, local_only)
    pol = Policy(model.eval(), processor, meta)
    return pol.to(device) if device is not None else pol

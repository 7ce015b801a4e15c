"""Generation backends: HF ``generate`` (default; CPU and GPU) and vLLM (optional, GPUs).

Randomness contract (the same as ``diffthinker.solver_api``): completion ``k`` of puzzle ``i`` depends only on the
model, the prompt and its own seed, never on which other rows share the batch. HF ``generate`` samples with the
global RNG, so instead we run it greedily over logits to which ``PerRowSampler`` has added Gumbel noise drawn from
one ``torch.Generator`` per row: ``argmax(logits / T + Gumbel)`` is an exact sample of ``softmax(logits / T)``
(the Gumbel-max trick), after the usual top-k / top-p truncation. Row ``i`` consumes exactly one noise vector per
step from its own generator, whatever the batch. ``temperature = 0`` is plain greedy decoding.

vLLM takes a per-request ``seed`` in ``SamplingParams``, which gives the same contract. Its config is validated
here even where vLLM is absent (``VLLMConfig.validate``); constructing ``VLLMGenerator`` without vLLM raises an
ImportError naming the ``gpu`` extra.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from diffthinker.tasks.base import TaskError

from .prompts import Prompt

__all__ = [
    "Completion",
    "HFGenerator",
    "PerRowSampler",
    "SamplingConfig",
    "VLLMConfig",
    "VLLMGenerator",
    "derive_seed",
]


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any tuple of labels (stable across runs and platforms: sha256 of their repr)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:16], 16) >> 1


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings (TRL / vLLM names). temperature 0 = greedy; top_k 0 and top_p 1 disable truncation."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise TaskError(f"sampling temperature {self.temperature!r} is invalid; expected a number >= 0")
        if not 0 < self.top_p <= 1:
            raise TaskError(f"sampling top_p {self.top_p!r} is invalid; expected 0 < top_p <= 1")
        if self.top_k < 0:
            raise TaskError(f"sampling top_k {self.top_k!r} is invalid; expected >= 0 (0 disables)")


@dataclass
class Completion:
    """One generated completion: token ids (EOS included when the model stopped), text, and whether it ran out of
    budget without an EOS (DAPO's overlong shaping and filtering read ``truncated``)."""

    ids: list[int]
    text: str
    truncated: bool


def truncate_logits(scores: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Top-k then nucleus (top-p) truncation: removed entries become -inf (at least one token always stays)."""
    if top_k and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        probs = sorted_scores.softmax(-1)
        # drop a token when the mass strictly before it already reaches top_p (the crossing token is kept)
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    return scores


class PerRowSampler:
    """A transformers ``LogitsProcessor``: banned tokens, temperature, top-k/top-p, then per-row Gumbel noise (see
    the module docstring). ``banned_ids``: special tokens a completion must not contain (all but EOS)."""

    def __init__(self, generators: Sequence[torch.Generator], sampling: SamplingConfig,
                 banned_ids: Sequence[int] = ()):
        self.generators = list(generators)
        self.sampling = sampling
        self.banned_ids = list(banned_ids)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        s = self.sampling
        if self.banned_ids:
            scores = scores.clone()
            scores[:, self.banned_ids] = float("-inf")
        if s.temperature == 0:
            return scores
        if scores.shape[0] != len(self.generators):
            raise RuntimeError(f"PerRowSampler has {len(self.generators)} generators for {scores.shape[0]} rows")
        scores = truncate_logits(scores.float() / s.temperature, s.top_k, s.top_p)
        vocab = scores.shape[-1]
        u = torch.stack([torch.rand(vocab, generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp_(1e-300, 1.0 - 1e-16)))
        return scores + gumbel.to(scores.device, torch.float32)


class HFGenerator:
    """Batched generation with transformers' ``generate`` and per-row seeds (``PerRowSampler``)."""

    name = "hf"

    def __init__(self, batch_size: int = 64):
        if batch_size < 1:
            raise TaskError(f"generation batch_size {batch_size} must be >= 1")
        self.batch_size = batch_size

    @torch.no_grad()
    def generate(self, policy: Any, prompts: Sequence[Prompt], seeds: Sequence[int], sampling: SamplingConfig,
                 max_new_tokens: int, batch_size: int | None = None) -> list[Completion]:
        from transformers import GenerationConfig, LogitsProcessorList

        if len(prompts) != len(seeds):
            raise TaskError(f"generate got {len(prompts)} prompts but {len(seeds)} seeds")
        if max_new_tokens < 1:
            raise TaskError(f"max_new_tokens {max_new_tokens} must be >= 1")
        bs = batch_size or self.batch_size
        model = policy.model
        was_training = model.training
        model.eval()
        out: list[Completion] = []
        gen_cfg = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                                   eos_token_id=policy.eos_id, pad_token_id=policy.pad_id)
        try:
            for start in range(0, len(prompts), bs):
                chunk = list(prompts[start:start + bs])
                gens = [torch.Generator().manual_seed(int(s)) for s in seeds[start:start + bs]]
                batch = policy.encode(chunk)
                inputs = policy.forward_inputs(batch)
                seq = model.generate(**inputs, generation_config=gen_cfg,
                                     logits_processor=LogitsProcessorList([PerRowSampler(gens, sampling,
                                                                                        policy.banned_ids)]))
                comp = seq[:, batch["prompt_len"]:].tolist()
                for ids in comp:
                    if policy.eos_id in ids:
                        ids = ids[: ids.index(policy.eos_id) + 1]
                        truncated = False
                    else:
                        truncated = True
                    out.append(Completion(ids, policy.decode(ids), truncated))
        finally:
            model.train(was_training)
        return out


# ============================================================================================== vLLM
@dataclass
class VLLMConfig:
    """vLLM colocated-engine settings (GPUs). ``sync_every``: reload the trained weights into the engine every this
    many optimizer steps (1 = fully on-policy, like TRL's colocate mode)."""

    gpu_memory_utilization: float = 0.3
    tensor_parallel_size: int = 1
    max_model_len: int = 4096
    dtype: str = "bfloat16"
    enforce_eager: bool = False
    enable_sleep_mode: bool = False
    sync_every: int = 1

    def validate(self) -> "VLLMConfig":
        def need(ok: bool, key: str, expected: str) -> None:
            if not ok:
                raise TaskError(f"vllm.{key} = {getattr(self, key)!r} is invalid; expected {expected}")

        need(0 < self.gpu_memory_utilization <= 1, "gpu_memory_utilization", "a fraction in (0, 1]")
        need(isinstance(self.tensor_parallel_size, int) and self.tensor_parallel_size >= 1, "tensor_parallel_size",
             "an integer >= 1")
        need(isinstance(self.max_model_len, int) and self.max_model_len >= 64, "max_model_len", "an integer >= 64")
        need(self.dtype in ("bfloat16", "float16", "float32", "auto"), "dtype",
             "one of bfloat16, float16, float32, auto")
        need(isinstance(self.sync_every, int) and self.sync_every >= 1, "sync_every", "an integer >= 1")
        return self


class VLLMGenerator:
    """Generation with an in-process vLLM engine (colocated with training, as TRL's default ``colocate`` mode).

    Prompts are sent as ChatML text with one image placeholder plus the raw image; ``mm_processor_kwargs`` pins the
    image to ``policy.image_size`` so vLLM's image-token count equals the training processor's. Not exercised on
    CPU (vLLM needs a GPU); the config is validated in tests.
    """

    name = "vllm"

    def __init__(self, model_path: str, config: VLLMConfig | None = None, image_size: int = 448):
        self.config = (config or VLLMConfig()).validate()
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            raise ImportError("the vLLM generation backend needs vllm (pip install 'diffthinker[gpu]' on a CUDA "
                              f"machine); it is not installed here ({exc})") from None
        from vllm import LLM

        c = self.config
        self.image_size = image_size
        self.llm = LLM(model=str(model_path), gpu_memory_utilization=c.gpu_memory_utilization,
                       tensor_parallel_size=c.tensor_parallel_size, max_model_len=c.max_model_len, dtype=c.dtype,
                       enforce_eager=c.enforce_eager, enable_sleep_mode=c.enable_sleep_mode,
                       limit_mm_per_prompt={"image": 1},
                       mm_processor_kwargs={"min_pixels": image_size ** 2, "max_pixels": image_size ** 2})

    def load_weights(self, model: torch.nn.Module) -> None:
        """Copy the trained weights into the engine (after optimizer steps)."""
        state = ((k, v.detach()) for k, v in model.state_dict().items())
        engine_model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
        engine_model.load_weights(state)

    def generate(self, policy: Any, prompts: Sequence[Prompt], seeds: Sequence[int], sampling: SamplingConfig,
                 max_new_tokens: int, batch_size: int | None = None) -> list[Completion]:
        from vllm import SamplingParams

        requests, params = [], []
        for p, seed in zip(prompts, seeds):
            req: dict[str, Any] = {"prompt": p.text}
            if p.image is not None:
                req["multi_modal_data"] = {"image": p.image}
            requests.append(req)
            params.append(SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                                         top_k=sampling.top_k if sampling.top_k else -1, max_tokens=max_new_tokens,
                                         seed=int(seed) % (2 ** 31), stop_token_ids=[policy.eos_id],
                                         skip_special_tokens=True,
                                         # the same special-token ban as PerRowSampler (vLLM clamps biases to 100)
                                         logit_bias={i: -100.0 for i in policy.banned_ids} or None))
        outs = self.llm.generate(requests, params, use_tqdm=False)
        result = []
        for o in outs:
            c = o.outputs[0]
            ids = list(c.token_ids)
            truncated = c.finish_reason == "length"
            result.append(Completion(ids, policy.decode(ids), truncated))
        return result

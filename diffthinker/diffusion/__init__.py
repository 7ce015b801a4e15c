"""The diffusion reasoner: a pixel-space MMDiT denoiser, flow-matching maths, and DiffThinkerPipeline."""

from .flow import (
    FlowConfig,
    add_noise,
    bell_weight,
    flow_matching_loss,
    loss_weight,
    sample_sigmas,
    shift_sigmas,
    to_velocity,
    to_x0,
    velocity_target,
)
from .model import PRESETS, PixelDenoiser, build_denoiser, count_parameters

__all__ = [
    "PRESETS",
    "FlowConfig",
    "PixelDenoiser",
    "add_noise",
    "bell_weight",
    "build_denoiser",
    "count_parameters",
    "flow_matching_loss",
    "loss_weight",
    "sample_sigmas",
    "shift_sigmas",
    "to_velocity",
    "to_x0",
    "velocity_target",
]


def __getattr__(name):  # the pipeline imports diffusers' pipeline machinery: load it on first use only
    if name in ("DiffThinkerPipeline", "DiffThinkerPipelineOutput", "default_scheduler"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

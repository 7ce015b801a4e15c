"""DiffThinker: generative visual reasoning. Diffusion models solve puzzles by drawing; pixel verifiers check."""

__version__ = "0.1.0"

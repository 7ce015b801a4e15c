"""GRPO-family RL as components (sources, probes, shapers, advantages, token weights, objectives, regularizers)
composed by configuration; ``presets.PRESETS`` names the published methods. See ``trainer.RLStep`` for the order."""

"""Train the MLLM baseline (SFT warm start, then GRPO-family RL) under accelerate.

    accelerate launch training/train_mllm_rl.py --config training/configs/mllm_grpo.yaml [key=value ...]
    python training/train_mllm_rl.py --config training/configs/mllm_dapo.yaml --resume
    python training/train_mllm_rl.py --config training/configs/mllm_sft.yaml preset=[canon,siren] rl.steps=100

Overrides are dotted keys of ``mllm_baselines.config.TrainConfig`` with YAML values. Same as
``diffthinker train mllm``.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mllm_baselines.train import main

if __name__ == "__main__":
    sys.exit(main())

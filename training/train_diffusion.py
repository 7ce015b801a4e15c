"""Train the DiffThinker diffusion reasoner (flow matching) under accelerate.

    accelerate launch training/train_diffusion.py --config training/configs/tiny_cpu_maze8.yaml [key=value ...]
    accelerate launch --config_file training/configs/accelerate/multi_gpu_ddp.yaml \\
        training/train_diffusion.py --config training/configs/tiny_cpu_maze8.yaml data.batch_size=64
    python training/train_diffusion.py --config ... --resume            # continue from the newest checkpoint

Overrides are dotted keys of ``diffthinker.diffusion.training.TrainConfig`` with YAML values (``optim.lr=3e-4``,
``data.levels=[maze:6,maze:8]``, ``model.overrides.num_layers=6``). Same as ``diffthinker train diffusion``.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffthinker.diffusion.training import main

if __name__ == "__main__":
    sys.exit(main())

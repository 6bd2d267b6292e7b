"""The training engine behind ``gansr train`` and ``gansr interp``.

- :mod:`~gansr.train.config`: the config dataclasses, YAML/preset loading, ``--set`` overrides.
- :mod:`~gansr.train.build`: builds models, losses and data from a config (validating all of it).
- :mod:`~gansr.train.loop`: :func:`train`, the loop itself; :mod:`~gansr.train.step`: one iteration
  (also what ``gansr speed --train`` times); :mod:`~gansr.train.state`: the run's state, which is
  exactly what a checkpoint holds.
- :mod:`~gansr.train.checkpointing`, :mod:`~gansr.train.ema`, :mod:`~gansr.train.logging`,
  :mod:`~gansr.train.plots`, :mod:`~gansr.train.distributed`, :mod:`~gansr.train.data`: its parts.
- :mod:`~gansr.train.interp`: ESRGAN network interpolation.

    >>> from gansr.train import load_config, train
    >>> cfg = load_config("mnist_x4", ["data.root=/data/mnist", "train.gan.iters=500"])
    >>> result = train(cfg, runs_dir="runs")          # doctest: +SKIP
"""

from gansr.train.build import build_parts
from gansr.train.config import Config, config_from_dict, load_config, preset_names
from gansr.train.interp import interpolate, interpolate_files
from gansr.train.loop import TrainingDiverged, TrainResult, train

__all__ = [
    "Config",
    "TrainResult",
    "TrainingDiverged",
    "build_parts",
    "config_from_dict",
    "interpolate",
    "interpolate_files",
    "load_config",
    "preset_names",
    "train",
]

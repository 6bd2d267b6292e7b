"""``gansr speed``: how fast and how big, measured against the naive path and the machine's peak.

* :mod:`gansr.speed.runner`: inference: the fast engine (:mod:`gansr.engine`) vs the naive
  eager NCHW fp32 path, per precision and tile setting, timed round-robin in one run
  (:func:`~gansr.speed.runner.run_inference_bench`).
* :mod:`gansr.speed.peak`: the yardstick, a large 3x3 convolution in the same precision.
* :mod:`gansr.speed.memory`: peak RSS (and CUDA allocator peak) of a block of code.
* :mod:`gansr.speed.training`: the trainer's GAN step, naive vs channels-last (+bf16 autocast).
* :mod:`gansr.speed.quality`: PSNR/SSIM on a benchmark set, naive vs fast per precision.

Submodules are imported on use; this package imports nothing heavy.
"""

from __future__ import annotations

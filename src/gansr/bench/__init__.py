"""``gansr bench``: how fast and how big, measured against the naive path and the machine's peak.

* :mod:`gansr.bench.runner`: inference: the fast engine (:mod:`gansr.inference`) vs the naive
  eager NCHW fp32 path, per precision and tile setting, timed round-robin in one run
  (:func:`~gansr.bench.runner.run_inference_bench`).
* :mod:`gansr.bench.peak`: the yardstick, a large 3x3 convolution in the same precision.
* :mod:`gansr.bench.memory`: peak RSS (and CUDA allocator peak) of a block of code.
* :mod:`gansr.bench.training`: the trainer's GAN step, naive vs channels-last (+bf16 autocast).
* :mod:`gansr.bench.quality`: PSNR/SSIM on a benchmark set, naive vs fast per precision.

Submodules are imported on use; this package imports nothing heavy.
"""

from __future__ import annotations

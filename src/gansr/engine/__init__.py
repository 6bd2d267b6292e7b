"""The inference engine: how a generator runs fast on a device, within a memory budget.

* :mod:`gansr.engine.device`: :func:`~gansr.engine.device.resolve_device` (the one device-name
  parser), the RAM and per-pass memory budget.
* :mod:`gansr.engine.fast`: :class:`~gansr.engine.fast.FastModel` /
  :func:`~gansr.engine.fast.prepare_model` (fused, channels-last, one precision table) and the
  naive baseline path.
* :mod:`gansr.engine.tiles`: the one tile planner and the tiled runners.
* :mod:`gansr.engine.allocator`: heap reuse within a forward pass.

The engine sits below :mod:`gansr.models` and never imports it: it reads a generator's
``scale``/``size_multiple``/``fuse_for_inference`` attributes. Callers import the submodules.
"""

#: The precisions the engine runs, in the one table every edge (CLI, Upscaler, bench) validates
#: against; :func:`gansr.engine.fast.resolve_precision` decides what a device runs natively.
#: Here, not in :mod:`gansr.engine.fast`, so that the CLI's parsers need not import torch.
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

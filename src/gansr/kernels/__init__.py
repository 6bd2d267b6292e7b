"""Compiled compute kernels that PyTorch does not provide on the CPU (see :mod:`.winograd`)."""

"""Scad's ``disaggrt`` (numpy arrays in memory elements), importable as ``disaggrt``: see
:mod:`scadrt.compat`. Modules: :mod:`.buffer_pool_lib`, :mod:`.rdma_array`, :mod:`.util`."""

from scadrt.compat.disaggrt import buffer_pool_lib, rdma_array, util

__all__ = ["buffer_pool_lib", "rdma_array", "util"]

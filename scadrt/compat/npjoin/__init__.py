"""Scad's ``npjoin`` (joins, hash partitions and merges on numpy structured arrays), in numpy.

Programs written for Scad import it as ``from npjoin import join`` or ``import npjoin.join as join``
(:mod:`scadrt.compat` makes the name importable); the functions are also here at the top level.
The semantics are described in :mod:`scadrt.compat.npjoin.join`.
"""

from __future__ import annotations

from . import join
from .join import (
    Float32Table,
    deindex,
    groupsort_indexer,
    join_on,
    join_on_table_float32,
    lookup3,
    merge_dtypes,
    partition_on_float32,
    partition_on_float32_pair,
    prepare_join_float32,
    structured_array_merge,
)

__all__ = [
    "Float32Table",
    "deindex",
    "groupsort_indexer",
    "join",
    "join_on",
    "join_on_table_float32",
    "lookup3",
    "merge_dtypes",
    "partition_on_float32",
    "partition_on_float32_pair",
    "prepare_join_float32",
    "structured_array_merge",
]

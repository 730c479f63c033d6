"""Partitioning of analysed programs into compute and memory elements (networkx).

Empty until the split issue lands; may import ``scadc.analysis`` and ``scadrt``.
"""

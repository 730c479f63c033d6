"""Partitioning of analysed programs into compute and memory elements.

``build`` (which cuts are allowed, and the plan's elements and edges), ``policies`` (which
allowed cuts are taken), ``loops`` (which ``for`` loops run as parallel elements) and ``plan``
(the frozen result code generation reads). It works on the analysis's frozen facts only: it may
import ``scadc.analysis`` and ``scadrt``, never libcst (``tests/test_layering.py``).
"""

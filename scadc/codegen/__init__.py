"""Code generation of element files from a partition plan (jinja2 templates).

Empty until the split issue lands; may import ``scadc.partition``, ``scadc.analysis`` and ``scadrt``.
"""

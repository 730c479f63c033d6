"""Program analysis for ``scadc split``: units, def/use, mutation, liveness, heavy objects.

Empty until the analysis issue lands; the package exists so the layering is fixed now:
``analysis`` may import ``scadrt`` but never ``scadc.partition`` or ``scadc.codegen``.
"""

"""The public surface of both packages is exactly what it should be."""

from __future__ import annotations

import scadc
import scadrt
import scadrt.dag
import scadrt.errors
import scadrt.export

EXPECTED = {
    scadrt: ["Corun", "ElementSpec", "InternalError", "Limits", "MissingToolError", "Problem", "Program",
             "ProgramError", "ScadError", "UserError", "__version__", "load_program"],
    scadc: ["__version__"],
}


def test_all_is_as_documented() -> None:
    for module, names in EXPECTED.items():
        assert sorted(module.__all__) == names, module.__name__


def test_all_names_exist_and_cover_the_public_names() -> None:
    for module in (scadrt, scadc, scadrt.dag, scadrt.errors, scadrt.export):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    public_classes = {n for n, v in vars(scadrt.errors).items() if isinstance(v, type) and not n.startswith("_")}
    assert public_classes <= set(scadrt.errors.__all__) | {"Iterable"}

"""Constant arithmetic at split time: what an expression evaluates to from literals and the
module's constants, without running the program.

Rules (:class:`Constants`):

1. Integer and float literals are themselves; a name is the value of the module constant it
   names (a ``constant`` definition, evaluated by these rules in program order), else unknown.
2. ``+ - * // / ** %`` and unary ``-`` over known numbers, ``int(x)`` of a known number, and
   tuples/lists of known values evaluate as Python does; an arithmetic error is unknown.
3. Anything else is unknown (None).

Used by the heavy-object sizes (:mod:`scadc.analysis.heavy`, rule 3) and the loop facts
(:mod:`scadc.analysis.shapes`: how many iterations a ``range()`` of constants has).
"""

from __future__ import annotations

import math
import weakref
from collections import ChainMap
from collections.abc import Callable, Mapping, MutableMapping
from typing import cast

import libcst as cst

from scadc.analysis.program import Program

__all__ = ["Constants", "Value"]

#: what a constant expression evaluates to
Value = int | float | tuple["Value", ...]


class Constants:
    """Evaluates integer/float arithmetic over literals and known constants (rules 1-3)."""

    def __init__(self, env: Mapping[str, Value]) -> None:
        self.env = env

    @classmethod
    def of(cls, program: Program) -> Constants:
        """The evaluator over ``program``'s module constants (evaluated once per program)."""
        env = _CONSTANTS.get(program)
        if env is None:
            env = _CONSTANTS[program] = _module_constants(program)
        return cls(env)

    def with_values(self, values: Mapping[str, Value]) -> Constants:
        """This evaluator with ``values`` bound over its names (a helper's constant arguments):
        a view, not a copy of every constant."""
        # a ChainMap writes only to its first map: the constants underneath are only read
        return Constants(ChainMap(dict(values), cast("MutableMapping[str, Value]", self.env)))

    def __call__(self, e: cst.BaseExpression | None) -> Value | None:
        try:
            return self._eval(e)
        except (ArithmeticError, ValueError, TypeError, OverflowError):
            return None

    def _eval(self, e: cst.CSTNode | None) -> Value | None:
        if isinstance(e, cst.Integer):
            return e.evaluated_value
        if isinstance(e, cst.Float):
            return e.evaluated_value
        if isinstance(e, cst.Name):
            return self.env.get(e.value)
        if isinstance(e, (cst.Tuple, cst.List)):
            items = [self._eval(el.value) for el in e.elements]
            return None if any(i is None for i in items) else tuple(i for i in items if i is not None)
        if isinstance(e, cst.UnaryOperation) and isinstance(e.operator, cst.Minus):
            v = self._eval(e.expression)
            return -v if isinstance(v, (int, float)) else None
        if isinstance(e, cst.BinaryOperation):
            a, b = self._eval(e.left), self._eval(e.right)
            if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
                return None
            op = _OPERATORS.get(type(e.operator))
            return op(a, b) if op else None
        if isinstance(e, cst.Call) and isinstance(e.func, cst.Name) and e.func.value == "int" and len(e.args) == 1:
            v = self._eval(e.args[0].value)
            return int(v) if isinstance(v, (int, float)) else None
        return None

    def count(self, e: cst.BaseExpression | None) -> int | None:
        """``e`` as a number of elements: a number, or the product of a shape's numbers."""
        v = self(e)
        if isinstance(v, (int, float)):
            return int(v)
        if isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v):
            return int(math.prod(x for x in v if isinstance(x, (int, float))))
        return None


_Number = int | float
_OPERATORS: dict[type[cst.BaseBinaryOp], Callable[[_Number, _Number], _Number]] = {
    cst.Add: lambda a, b: a + b, cst.Subtract: lambda a, b: a - b, cst.Multiply: lambda a, b: a * b,
    cst.FloorDivide: lambda a, b: a // b, cst.Divide: lambda a, b: a / b, cst.Power: lambda a, b: a**b,
    cst.Modulo: lambda a, b: a % b,
}


def _module_constants(program: Program) -> dict[str, Value]:
    env: dict[str, Value] = {}
    for d in program.definitions:
        if d.kind == "constant" and isinstance(d.node, cst.SimpleStatementLine) and \
                isinstance(d.node.body[0], cst.Assign):
            value = Constants(env)(d.node.body[0].value)
            for n in d.names:
                if value is not None:
                    env[n] = value
    return env


#: each program's module constants, evaluated once (a program does not change once loaded)
_CONSTANTS: weakref.WeakKeyDictionary[Program, dict[str, Value]] = weakref.WeakKeyDictionary()

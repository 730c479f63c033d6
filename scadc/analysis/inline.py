"""Inlining the program's own helpers into the entry region, so that cuts can fall inside them.

A unit is one top-level statement of the entry region, so ``points = make_points(rng, n)`` is one
atom however many tables the helper builds. This pass rewrites such a call, in place, into the
helper's body (Scad's front end flattened calls into ``main`` for the same reason); the helper's
``def`` stays for every other caller. It runs on the parsed program before the analyses, which then
see the rewritten entry region; spans keep naming the original lines (:attr:`Inlined.line_map`).

Rules:

1. Candidates are top-level statements of a function entry of the shape ``x = h(args)``,
   ``a, b = h(args)`` (names only) or ``h(args)``, where ``h`` is a module-level ``def`` bound once
   and never rebound by the entry region. Each candidate is inlined or kept, with the reason
   (:class:`InlineDecision`, printed by ``scadc split --explain``).
2. The helper is refused unless it is plain: no decorators, not async, no ``yield``/``await``,
   ``global``/``nonlocal``, ``import``, nested ``def``/``class``/``lambda``, no frame introspection
   (``locals``, ``vars``, ``super``, ``exec``, ``eval``, ``globals``, ``dir``, ``inspect``,
   ``_getframe``, a warning's ``stacklevel``, which names a caller's line), no call of itself, no
   ``*args``/``**kwargs``, only literal defaults, one ``return`` at most and only as its last
   top-level statement. A generator expression is allowed
   only as the argument of a builtin that consumes it at once (``sum``, ``list``, ``"".join``, ...):
   anything else could keep a closure over the helper's locals alive after they are released.
3. The call is refused when it passes ``*``/``**`` arguments, unknown keywords or too few
   arguments, carries a ``# scad:`` pragma, when the helper reads a module-level or builtin name
   that the entry region binds (inlined, it would read the local instead), or when a call
   statement has no return value to assign.
4. Arguments are evaluated once, in their original order: all of them are bound at once to fresh
   names (``_inl1_x, _inl1_y = arg1, arg2``) at the call's line. An argument that is an entry local,
   a module constant or a literal other than a string (in an f-string its quotes could end it) is
   substituted for the parameter instead, when the helper never rebinds that parameter: no second
   name for one object, so aliasing adds nothing to the analyses.
5. Every other local of the helper (its parameters and every name it binds) is renamed
   ``_inl<k>_<name>``, with ``k`` chosen so that no name of the module starts with that prefix.
6. ``return E`` becomes ``x = E`` (or ``E`` for a call statement; ``a = x; b = y`` for
   ``a, b = x, y`` when ``x`` and ``y`` read neither ``a`` nor ``b``) followed, on the same line, by
   the release of the helper's locals, as the helper's frame released them on return: the names
   that may be unbound there are first bound to None, then all are deleted. A helper with no
   ``return`` gets that release as a statement of its own after its body.
7. :attr:`Inlined.line_map` maps every line of the rewritten module to the original line it came
   from: the helper's statements to the helper's lines (tracebacks and profiles name those), the
   bindings of rule 4 to the call's line, a release statement of its own to the ``def`` line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from scadc.analysis.program import InlineDecision, Program, _body, _target_names, index_program, load_program
from scadc.errors import InternalCompilerError

__all__ = ["INLINE_PREFIX", "InlineDecision", "Inlined", "inline_calls", "load_inlined"]

INLINE_PREFIX = "_inl"
_INTROSPECTION = frozenset({"locals", "vars", "super", "exec", "eval", "globals", "dir", "inspect", "breakpoint",
                            "__import__"})
_FRAME_ATTRS = frozenset({"_getframe", "f_back", "f_locals", "f_globals", "currentframe", "exc_info"})
#: builtins that consume a generator expression before they return (rule 2)
_CONSUMERS = frozenset({"sum", "min", "max", "any", "all", "list", "tuple", "set", "frozenset", "sorted", "dict"})


@dataclass(frozen=True)
class Inlined:
    """The rewritten module: its text, where each of its lines came from, and the decisions."""

    code: str
    #: ``line_map[i]`` is the original line of line ``i + 1`` of ``code`` (rule 7)
    line_map: tuple[int, ...]
    decisions: tuple[InlineDecision, ...]

    @property
    def changed(self) -> bool:
        return any(d.inlined for d in self.decisions)


class _Refused(Exception):
    """Why a call is kept (rule 2 and 3)."""


def _literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("None", "True", "False")
    return isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) and \
        isinstance(node.expression, (cst.Integer, cst.Float))


class _Check(cst.CSTVisitor):
    """Rule 2 over a helper's body: the first construct that makes it unsafe to inline."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.problem: str | None = None
        self.returns: list[cst.Return] = []
        self.consumed: set[int] = set()  # generator expressions consumed by a builtin at once

    def _refuse(self, why: str) -> bool:
        if self.problem is None:
            self.problem = why
        return False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.problem is not None:
            return False
        if isinstance(node, (cst.Yield, cst.Await)):
            return self._refuse("it is a generator or a coroutine")
        if isinstance(node, (cst.Global, cst.Nonlocal)):
            return self._refuse("it declares global or nonlocal names")
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            return self._refuse("it imports inside its body")
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return self._refuse("it defines a function, class or lambda that could capture its locals")
        if isinstance(node, (cst.With, cst.For, cst.CompFor)) and getattr(node, "asynchronous", None) is not None:
            return self._refuse("it is a coroutine")
        if isinstance(node, cst.Name) and node.value in _INTROSPECTION:
            return self._refuse(f"it uses {node.value}, which sees its frame")
        if isinstance(node, cst.Name) and node.value == self.name:
            return self._refuse("it calls itself")
        if isinstance(node, cst.Attribute) and node.attr.value in _FRAME_ATTRS:
            return self._refuse(f"it uses .{node.attr.value}, which sees its frame")
        if isinstance(node, cst.Arg) and node.keyword is not None and node.keyword.value == "stacklevel":
            return self._refuse("it passes stacklevel=: a warning would name another caller's line")
        if isinstance(node, cst.Call):
            func = node.func
            warn = (func.value if isinstance(func, cst.Name) else func.attr.value
                    if isinstance(func, cst.Attribute) else None)
            if warn == "warn" and len(node.args) >= 3:
                return self._refuse("it passes a stacklevel: a warning would name another caller's line")
            consumer = (isinstance(func, cst.Name) and func.value in _CONSUMERS) or (
                isinstance(func, cst.Attribute) and func.attr.value == "join")
            if consumer and len(node.args) >= 1 and isinstance(node.args[0].value, cst.GeneratorExp):
                self.consumed.add(id(node.args[0].value))
        if isinstance(node, cst.GeneratorExp) and id(node) not in self.consumed:
            return self._refuse("a generator expression of it could outlive its locals")
        if isinstance(node, cst.Return):
            self.returns.append(node)
        return True


def _check_helper(fn: cst.FunctionDef) -> list[cst.BaseStatement]:
    """Rule 2: the helper's body (docstring dropped) when it may be inlined; raises :class:`_Refused`."""
    if fn.decorators:
        raise _Refused("it is decorated")
    if fn.asynchronous is not None:
        raise _Refused("it is async")
    p = fn.params
    if isinstance(p.star_arg, cst.Param) or p.star_kwarg is not None:
        raise _Refused("it takes *args or **kwargs")
    for param in (*p.posonly_params, *p.params, *p.kwonly_params):
        if param.default is not None and not _literal(param.default):
            raise _Refused(f"the default of {param.name.value} is not a literal")
    body = _body(fn)
    if not body or not isinstance(fn.body, cst.IndentedBlock):
        raise _Refused("its body is not a block")
    check = _Check(fn.name.value)
    for stmt in body:
        stmt.visit(check)
    if check.problem is not None:
        raise _Refused(check.problem)
    if check.returns:
        last = body[-1]
        if len(check.returns) > 1 or not (isinstance(last, cst.SimpleStatementLine)
                                          and last.body[-1] is check.returns[0]):
            raise _Refused("it returns other than by one return at its end")
    return body


def _top_binds(stmts: Sequence[cst.BaseStatement]) -> set[str]:
    """Names certainly bound after ``stmts`` ran: plain assignments at the top level (rule 6)."""
    out: set[str] = set()
    for s in stmts:
        if not isinstance(s, cst.SimpleStatementLine):
            continue
        for small in s.body:
            targets: list[cst.BaseExpression] = []
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
            elif isinstance(small, (cst.AnnAssign, cst.AugAssign)) and small.value is not None:
                targets = [small.target]
            elif isinstance(small, cst.Del):
                return out  # deletions from here on: what is bound is no longer certain
            for t in targets:
                out |= _target_names(t)
    return out


class _Rename(cst.CSTTransformer):
    """Rule 4-5: the helper's locals renamed, substituted parameters replaced by their arguments."""

    def __init__(self, renamed: dict[str, str], substituted: dict[str, cst.BaseExpression]) -> None:
        super().__init__()
        self.renamed, self.substituted = renamed, substituted

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return False  # only the object is renamed (below): the attribute's name is not a variable

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(value=original.value.visit(self))

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)  # f(size=...): a keyword, not a variable

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        if original.value in self.substituted:
            return self.substituted[original.value]
        if original.value in self.renamed:
            return updated.with_changes(value=self.renamed[original.value])
        return updated


def _names(node: cst.CSTNode, variables: bool = False) -> set[str]:
    """Every name in ``node``; with ``variables``, not attributes' names nor call keywords."""
    found: set[str] = set()
    skipped: set[int] = set()

    class _Collect(cst.CSTVisitor):
        def visit_Attribute(self, n: cst.Attribute) -> None:
            if variables:
                skipped.add(id(n.attr))

        def visit_Arg(self, n: cst.Arg) -> None:
            if variables and n.keyword is not None:
                skipped.add(id(n.keyword))

        def visit_Name(self, n: cst.Name) -> None:
            if id(n) not in skipped:
                found.add(n.value)

    node.visit(_Collect())
    return found


def _stores(stmts: Sequence[cst.BaseStatement], program: Program) -> set[str]:
    """Names the helper's statements bind or delete (the parameters a substitution must not see rebound)."""
    from libcst.metadata import ExpressionContext

    out: set[str] = set()

    class _Collect(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            if program.contexts.get(n) in (ExpressionContext.STORE, ExpressionContext.DEL):
                out.add(n.value)

        def visit_AugAssign(self, n: cst.AugAssign) -> None:
            out.update(_names(n.target) if isinstance(n.target, cst.Name) else ())

    for s in stmts:
        s.visit(_Collect())
    return out


def _pairwise(targets: list[str], value: object) -> bool:
    """``a, b = x, y`` may be ``a = x; b = y``: as many plain elements as targets, none reading a target."""
    return (len(targets) > 1 and isinstance(value, cst.Tuple) and len(value.elements) == len(targets)
            and all(isinstance(e, cst.Element) for e in value.elements) and not (_names(value) & set(targets)))


def _deletes(stmts: Sequence[cst.BaseStatement], program: Program) -> set[str]:
    """Names the statements delete, anywhere in them."""
    from libcst.metadata import ExpressionContext

    return {n.value for s in stmts for n in _nodes(s)
            if isinstance(n, cst.Name) and program.contexts.get(n) is ExpressionContext.DEL}


def _nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    """Every node below ``node``, ``node`` included."""
    found: list[cst.CSTNode] = []

    class _All(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            found.append(n)
            return True

    node.visit(_All())
    return found


@dataclass
class _Site:
    """One inlined call: the statements that replace it, and where each came from (rule 7)."""

    #: (new statement, original statement it copies or None, the original line of a generated one)
    statements: list[tuple[cst.BaseStatement, cst.BaseStatement | None, int]]
    prefix: str
    substituted: tuple[str, ...]


class _Inliner:
    def __init__(self, program: Program) -> None:
        self.program = program
        module = program.module
        self.functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
        self.entry_names = {a.name for a in program.scope.assignments}
        self.all_names = _names(module)
        self.counter = 0
        self.constants = {n for d in program.definitions if d.kind == "constant" for n in d.names
                          if len(program.definitions_of([n])) == 1 and n not in self.entry_names}

    def fresh(self) -> str:
        while True:
            self.counter += 1
            prefix = f"{INLINE_PREFIX}{self.counter}_"
            if not any(n.startswith(prefix) for n in self.all_names):
                return prefix

    @staticmethod
    def candidate(stmt: cst.BaseStatement) -> tuple[list[str] | None, cst.Call] | None:
        """(target names or None for a call statement, the call) of a rule-1 statement, else None."""
        if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return None
        small = stmt.body[0]
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            call, targets = small.value, None
        elif isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.value, cst.Call):
            call, target = small.value, small.targets[0].target
            if isinstance(target, cst.Name):
                targets = [target.value]
            elif isinstance(target, (cst.Tuple, cst.List)) and target.elements and all(
                    isinstance(e, cst.Element) and isinstance(e.value, cst.Name) for e in target.elements):
                targets = [e.value.value for e in target.elements if isinstance(e.value, cst.Name)]
            else:
                return None
        else:
            return None
        if not isinstance(call.func, cst.Name):
            return None
        return targets, call

    def inline(self, stmt: cst.SimpleStatementLine, targets: list[str] | None, call: cst.Call,
               fn: cst.FunctionDef) -> _Site:
        """Rules 2-6 for one call; raises :class:`_Refused`."""
        program = self.program
        if len(program.definitions_of([fn.name.value])) != 1 or fn.name.value in self.entry_names:
            raise _Refused("its name is bound more than once")
        if "scad:" in program.module.code_for_node(stmt):
            raise _Refused("the call carries a scad: pragma")
        body = _check_helper(fn)
        fscope = program.scopes.get(body[0])
        if fscope is None:
            raise _Refused("its scope is unknown")
        local = {a.name for a in fscope.assignments}
        free = set().union(*(_names(s, variables=True) for s in body)) - local
        clash = sorted(free & self.entry_names)
        if clash:
            raise _Refused(f"it reads {clash[0]}, which the entry region binds")
        returns = isinstance(body[-1], cst.SimpleStatementLine) and isinstance(body[-1].body[-1], cst.Return)
        value = body[-1].body[-1].value if returns and isinstance(body[-1], cst.SimpleStatementLine) and \
            isinstance(body[-1].body[-1], cst.Return) else None
        if targets is not None and len(targets) > 1 and value is None:
            raise _Refused("it returns nothing to unpack")
        bound = self.bind(call, fn)
        stores = _stores(body, program)
        prefix = self.fresh()
        substituted: dict[str, cst.BaseExpression] = {}
        binds: list[tuple[str, cst.BaseExpression]] = []
        for param, arg in bound:
            if param not in stores and self.substitutable(arg):
                # a literal in parentheses: `x.real` and `-x ** 2` must stay what they meant
                substituted[param] = arg if isinstance(arg, cst.Name) else arg.with_changes(
                    lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            else:
                binds.append((prefix + param, arg))
        renamed = {n: prefix + n for n in sorted(local) if n not in substituted}
        rename = _Rename(renamed, substituted)
        line = program.positions[stmt].start.line
        out: list[tuple[cst.BaseStatement, cst.BaseStatement | None, int]] = []
        if binds:
            lhs = cst.Tuple([cst.Element(cst.Name(n)) for n, _ in binds], lpar=[], rpar=[]) if len(binds) > 1 \
                else cst.Name(binds[0][0])
            rhs = cst.Tuple([cst.Element(a) for _, a in binds], lpar=[], rpar=[]) if len(binds) > 1 else binds[0][1]
            assign = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(lhs)], rhs)],
                                             leading_lines=stmt.leading_lines)
            out.append((assign, None, line))
        deleted = _deletes(body, program)  # a `del` anywhere (in a branch too): that name may be unbound
        certain = {prefix + p for p, _ in bound if p not in substituted and p not in deleted} | {
            renamed[n] for n in _top_binds(body) if n in renamed and n not in deleted}
        release = self.release(sorted(renamed.values()), certain)
        for s in body[:-1] if returns else body:
            new = s.visit(rename)
            assert isinstance(new, cst.BaseStatement)
            out.append((new, s, 0))
        if returns:
            last = body[-1]
            assert isinstance(last, cst.SimpleStatementLine)
            smalls = [s.visit(rename) for s in last.body[:-1]]
            result = value.visit(rename) if value is not None else None
            if targets is not None and _pairwise(targets, result):
                # `a = x; b = y` for `a, b = x, y`: what the analyses follow name by name (the right side
                # reads none of the targets, so assigning one by one changes nothing)
                assert isinstance(result, cst.Tuple)
                smalls += [cst.Assign([cst.AssignTarget(cst.Name(t))], e.value)
                           for t, e in zip(targets, result.elements, strict=True)]
            elif targets is not None:
                target: cst.BaseAssignTargetExpression = cst.Name(targets[0]) if len(targets) == 1 else cst.Tuple(
                    [cst.Element(cst.Name(t)) for t in targets], lpar=[], rpar=[])
                smalls.append(cst.Assign([cst.AssignTarget(target)],
                                         result if isinstance(result, cst.BaseExpression) else cst.Name("None")))
            elif isinstance(result, cst.BaseExpression):
                smalls.append(cst.Expr(result))
            smalls += release
            new_last = last.with_changes(body=[s for s in smalls if isinstance(s, cst.BaseSmallStatement)]
                                         or [cst.Pass()])
            out.append((new_last, last, 0))
        else:
            tail: list[cst.BaseSmallStatement] = []
            if targets is not None:
                tail.append(cst.Assign([cst.AssignTarget(cst.Name(targets[0]))], cst.Name("None")))
            tail += release
            if tail:
                out.append((cst.SimpleStatementLine(tail), None, program.positions[fn].start.line))
        return _Site(out, prefix, tuple(sorted(substituted)))

    @staticmethod
    def release(names: list[str], certain: set[str]) -> list[cst.BaseSmallStatement]:
        """Rule 6: bind what may be unbound to None, then delete every local."""
        if not names:
            return []
        out: list[cst.BaseSmallStatement] = []
        maybe = [n for n in names if n not in certain]
        if maybe:
            out.append(cst.Assign([cst.AssignTarget(cst.Name(n)) for n in maybe], cst.Name("None")))
        target = cst.Tuple([cst.Element(cst.Name(n)) for n in names], lpar=[], rpar=[]) if len(names) > 1 \
            else cst.Name(names[0])
        out.append(cst.Del(target))
        return out

    def substitutable(self, arg: cst.BaseExpression) -> bool:
        """Rule 4: an argument that may stand for its parameter everywhere (evaluating it again is free)."""
        if _literal(arg):
            return not isinstance(arg, cst.SimpleString)
        return isinstance(arg, cst.Name) and (arg.value in self.entry_names or arg.value in self.constants)

    @staticmethod
    def bind(call: cst.Call, fn: cst.FunctionDef) -> list[tuple[str, cst.BaseExpression]]:
        """(parameter, argument) in the order the call evaluates them, then the defaults (rule 3-4)."""
        p = fn.params
        positional = [x.name.value for x in (*p.posonly_params, *p.params)]
        keyword_ok = {x.name.value for x in (*p.params, *p.kwonly_params)}
        defaults = {x.name.value: x.default for x in (*p.posonly_params, *p.params, *p.kwonly_params)}
        out: list[tuple[str, cst.BaseExpression]] = []
        seen: set[str] = set()
        for i, arg in enumerate(call.args):
            if arg.star:
                raise _Refused("the call passes *args or **kwargs")
            if isinstance(arg.value, cst.GeneratorExp):
                raise _Refused("the call passes a generator expression")
            if any(isinstance(n, cst.NamedExpr) for n in _nodes(arg.value)):
                raise _Refused("an argument assigns with :=")
            if arg.keyword is None:
                if i >= len(positional):
                    raise _Refused("the call passes too many arguments")
                name = positional[i]
            else:
                name = arg.keyword.value
                if name not in keyword_ok or name in seen:
                    raise _Refused(f"the call passes {name}= that the helper does not take")
            seen.add(name)
            out.append((name, arg.value))
        for name in (*positional, *(x.name.value for x in p.kwonly_params)):
            if name in seen:
                continue
            default = defaults.get(name)
            if default is None:
                raise _Refused(f"the call does not pass {name}")
            out.append((name, default))
        return out


def load_inlined(path: str, *, entry: str | None = None, inline: bool = True) -> Program:
    """:func:`~scadc.analysis.program.load_program` with, when ``inline``, the entry region's calls of
    the program's own helpers inlined where that is safe: the units are then the statements of the
    rewritten entry region, their spans the original lines (rule 7 there)."""
    program = load_program(path, entry=entry)
    if not inline:
        return program
    inlined = inline_calls(program)
    if not inlined.changed:
        return replace(program, inlining=inlined.decisions)
    try:
        module = cst.parse_module(inlined.code)
    except cst.ParserSyntaxError as exc:  # pragma: no cover - the pass printed what libcst parses
        raise InternalCompilerError(f"inlining produced code libcst cannot parse: {exc.message}") from exc
    rewritten = index_program(path, program.source, module, entry, inlined.line_map)
    return replace(rewritten, inlining=inlined.decisions)


def inline_calls(program: Program) -> Inlined:
    """Rules 1-7 over ``program``'s entry region (one level: the inlined bodies are not looked into)."""
    decisions: list[InlineDecision] = []
    if program.entry.kind == "script":
        return Inlined(program.source, (), ())
    inliner = _Inliner(program)
    sites: dict[int, _Site] = {}
    done: dict[str, int] = {}  # helper -> the line of the call inlined
    for unit in program.units:
        found = inliner.candidate(unit.node)
        if found is None:
            continue
        targets, call = found
        assert isinstance(call.func, cst.Name) and isinstance(unit.node, cst.SimpleStatementLine)
        name = call.func.value
        fn = inliner.functions.get(name)
        if fn is None or fn.name.value == program.entry.name:
            continue  # not one of the program's helpers: nothing to decide
        if name in done:  # a second copy's units would have the first's lines: the same spans, profile keys
            decisions.append(InlineDecision(unit.span.line, name, False, f"inlined once already, at line {done[name]}"))
            continue
        try:
            site = sites[id(unit.node)] = inliner.inline(unit.node, targets, call, fn)
        except _Refused as why:
            decisions.append(InlineDecision(unit.span.line, name, False, str(why)))
        else:
            done[name] = unit.span.line
            decisions.append(InlineDecision(unit.span.line, name, True, "its statements are units",
                                            unit.span.end_line or unit.span.line, site.prefix, site.substituted))
    if not sites:
        return Inlined(program.source, (), tuple(decisions))
    return _rewrite(program, sites, tuple(decisions))


def _rewrite(program: Program, sites: dict[int, _Site], decisions: tuple[InlineDecision, ...]) -> Inlined:
    """The module with each site's statements in place of its call, and the line map (rule 7)."""
    module = program.module
    entry = next(s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == program.entry.name)
    assert isinstance(entry.body, cst.IndentedBlock)
    origin: list[tuple[cst.BaseStatement, cst.BaseStatement | None, int]] = []
    body: list[cst.BaseStatement] = []
    for stmt in entry.body.body:
        site = sites.get(id(stmt))
        if site is None:
            body.append(stmt)
            origin.append((stmt, stmt, 0))
        else:
            body += [new for new, _, _ in site.statements]
            origin += site.statements
    new_entry = entry.with_changes(body=entry.body.with_changes(body=body))
    new_module = module.with_changes(body=[new_entry if s is entry else s for s in module.body])
    code = new_module.code
    positions = MetadataWrapper(new_module, unsafe_skip_copy=True).resolve(PositionProvider)
    old = program.positions
    n_lines = code.count("\n") + (0 if code.endswith("\n") else 1)
    line_map = [0] * (n_lines + 2)

    def first(node: cst.BaseStatement, where: int) -> int:
        return where - len(getattr(node, "leading_lines", ()))

    def copy(new: cst.BaseStatement, original: cst.BaseStatement) -> None:
        start, end = first(new, positions[new].start.line), positions[new].end.line
        source = first(original, old[original].start.line)
        for k in range(start, end + 1):
            line_map[k] = source + k - start

    for stmt in module.body:  # everything but the entry's body is unchanged: offsets only
        copy(new_entry if stmt is entry else stmt, stmt)
    for new, original, line in origin:
        if original is not None:
            copy(new, original)
        else:
            for k in range(first(new, positions[new].start.line), positions[new].end.line + 1):
                line_map[k] = line
    for k in range(1, len(line_map)):  # the blocks' footers and the file's last lines: carried on
        if line_map[k] == 0:
            line_map[k] = line_map[k - 1] + 1
    return Inlined(code, tuple(line_map[1 : n_lines + 1]), decisions)


#!/usr/bin/env python3
"""Generate the sync face (``_sync.py``, ``_sync_session.py``) from the async classes, read with ``ast``.

For every public coroutine method named ``a…`` (and every ``a…`` method
returning an ``AsyncIterator``) of the async classes below, the generated class
gets a blocking twin without the ``a`` (``agenerate`` -> ``generate``), with the
same signature and docstring, that runs on the shared background loop
(``_portal``); async iterators become iterators.

- ``_sync.py``: ``LLM(LLMBase)``. The methods of ``AsyncProvider``
  (``providers/base.py``) get an async delegate to the provider as well; the
  apps written on ``LLMBase`` (``_llm_base.py``: ``arun``, ``abatch``, …) get
  their twins.
- ``_sync_session.py``: ``Session(AsyncSession)`` (``session.py``: ``asend``).
  A module of its own because ``LLMBase.session()`` returns a ``Session`` and
  ``_sync.py`` imports ``LLMBase``: one module would be a cycle.

Signatures are copied as written (``**kwargs: Unpack[CallKwargs]`` included);
every name they use is imported the way the source module has it (an import
under ``if TYPE_CHECKING:`` stays under it; a TypeVar is copied; a class of the
source module is imported from it). A name that cannot be resolved stops the
generator with its place.

``--check`` exits 1 when a committed file differs from what would be generated.
Never edit the generated files by hand: change the async classes and rerun this.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import copy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
#: Where the generated modules are written (a test points it at a temporary folder).
OUT = SRC / "abstractcore"

Method = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Source:
    """An async class read by the generator: ``path`` relative to ``src/``."""

    path: str
    cls: str

    @property
    def module(self) -> str:
        return ".".join(Path(self.path).with_suffix("").parts).removesuffix(".__init__")


@dataclass(frozen=True)
class Face:
    """One generated module: class ``cls`` subclassing ``base``, with the twins of ``own``'s methods.

    The methods of ``delegated`` also get an async delegate to ``self._provider``, and their
    twins run ``self._provider.<method>``; the twins of ``own``'s methods run ``self.<method>``.
    """

    file: str
    cls: str
    base: Source
    summary: str
    class_doc: str
    delegated: Source | None = None
    own: tuple[Source, ...] = ()
    slots: bool = False

    @property
    def sources(self) -> tuple[Source, ...]:
        return (*([self.delegated] if self.delegated else []), *self.own)


FACES = (
    Face(
        file="_sync.py",
        cls="LLM",
        base=Source("abstractcore/_llm_base.py", "LLMBase"),
        summary="The ``LLM`` class: async methods and their blocking twins in one object.",
        class_doc="""A model behind one API, for blocking and async callers alike.

    Made by ``create_llm``. Async methods (``agenerate``, ``astream``, ...) run
    on the caller's event loop; their blocking twins (``generate``,
    ``stream``, ...) run on one shared background loop, so they also work
    inside a running event loop (Jupyter) and from many threads at once.
    """,
        delegated=Source("abstractcore/providers/base.py", "AsyncProvider"),
        own=(Source("abstractcore/_llm_base.py", "LLMBase"),),
        slots=True,
    ),
    Face(
        file="_sync_session.py",
        cls="Session",
        base=Source("abstractcore/session.py", "AsyncSession"),
        summary="The ``Session`` class: a conversation's async methods and their blocking twins.",
        class_doc="""A conversation that keeps its history, for blocking and async callers alike.

    Made by ``llm.session(...)`` (or ``Session(llm, ...)``); ``Session.load(path, llm)``
    continues a saved one. ``await chat.asend(...)`` runs on the caller's event loop,
    its blocking twin ``chat.send(...)`` on the shared background loop, like
    ``LLM.generate``. See ``abstractcore.session``.
    """,
        own=(Source("abstractcore/session.py", "AsyncSession"),),
    ),
)

#: Twins that cannot drop the ``a``: ``capabilities`` is the provider's attribute (what is known
#: without asking), so the blocking form of ``acapabilities()`` is ``fetch_capabilities()``.
TWIN_NAMES = {"acapabilities": "fetch_capabilities"}

#: Names a signature may use that the generated module provides if its sources do not.
FALLBACK_IMPORTS = {"Iterator": "collections.abc", "overload": "typing"}


def _twin_name(name: str) -> str:
    return TWIN_NAMES.get(name, name[1:])


class _SyncAnnotations(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id == "AsyncIterator":
            return ast.Name(id="Iterator", ctx=node.ctx)
        return node


def _is_overload_decorator(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "overload"


def _is_overload(node: ast.AST) -> bool:
    return any(_is_overload_decorator(d) for d in getattr(node, "decorator_list", []))


def _returns_async_iterator(node: Method) -> bool:
    returns = node.returns
    if isinstance(returns, ast.Subscript):
        returns = returns.value
    return isinstance(returns, ast.Name) and returns.id == "AsyncIterator"


def _call_args(args: ast.arguments) -> str:
    parts = [a.arg for a in args.posonlyargs + args.args if a.arg != "self"]
    parts += [f"{a.arg}={a.arg}" for a in args.kwonlyargs]
    if args.vararg:
        parts.append(f"*{args.vararg.arg}")
    if args.kwarg:
        parts.append(f"**{args.kwarg.arg}")
    return ", ".join(parts)


def _sync_doc(doc: str, names: set[str] | frozenset[str] = frozenset()) -> str:
    """The blocking twin's docstring: ``doc`` with the async names (``names``: the face's methods)
    and words turned into their blocking forms."""
    for old, new in (
        ("agenerate", "generate"),
        ("astream", "stream"),
        ("an async iterator", "an iterator"),
        ("async iterator", "iterator"),
    ):
        doc = doc.replace(old, new)
    for name in sorted(names):
        doc = doc.replace(f"``{name}``", f"``{_twin_name(name)}``")
    return doc


def _docstring(text: str | None) -> list[ast.stmt]:
    if not text:
        return []
    lines = text.splitlines()
    if len(lines) > 1:
        body = [("    " + line) if line else "" for line in lines[1:]]
        text = "\n".join([lines[0], *body, "    "])
    return [ast.Expr(ast.Constant(text))]


def _class(tree: ast.Module, source: Source) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == source.cls:
            return node
    raise SystemExit(f"gen_sync: class {source.cls} not found in src/{source.path}")


def _methods(tree: ast.Module, source: Source) -> list[Method]:
    """The public ``a…`` coroutine methods (and ``a…`` methods returning an AsyncIterator) of a class."""
    found = []
    for item in _class(tree, source).body:
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not item.name.startswith("a") or item.name.startswith("_"):
            continue
        if isinstance(item, ast.AsyncFunctionDef) or _returns_async_iterator(item):
            found.append(item)
    return found


def _delegate(node: Method) -> Method:
    """The async method of ``LLM`` that hands the call to the provider."""
    delegate = copy.deepcopy(node)
    delegate.decorator_list = [d for d in delegate.decorator_list if _is_overload_decorator(d)]
    if _is_overload(node):
        delegate.body = [ast.Expr(ast.Constant(...))]
    else:
        expr = f"self._provider.{node.name}({_call_args(node.args)})"
        stmt = f"return await {expr}" if isinstance(node, ast.AsyncFunctionDef) else f"return {expr}"
        delegate.body = [*_docstring(ast.get_docstring(node)), *ast.parse(stmt).body]
    return delegate


def _twin(node: Method, target: str, names: set[str]) -> ast.FunctionDef:
    """The blocking twin (``agenerate`` -> ``generate``) running ``target.<name>`` on the background loop."""
    fields = {k: copy.deepcopy(getattr(node, k)) for k in ("args", "returns", "decorator_list")}
    twin = ast.FunctionDef(name=_twin_name(node.name), body=[], type_params=[], lineno=0, **fields)
    twin.decorator_list = [d for d in twin.decorator_list if _is_overload_decorator(d)]
    twin = _SyncAnnotations().visit(twin)
    assert isinstance(twin, ast.FunctionDef)
    if _is_overload(node):
        twin.body = [ast.Expr(ast.Constant(...))]
        return twin
    call = _call_args(node.args)
    if isinstance(node, ast.AsyncFunctionDef):
        stmt = f"return _portal.call(functools.partial({target}.{node.name}, {call}))"
    else:
        stmt = f"return _portal.iterate({target}.{node.name}({call}))"
    doc = ast.get_docstring(node)
    twin.body = [*_docstring(_sync_doc(doc, names) if doc else None), *ast.parse(stmt).body]
    return twin


# -- the names a signature uses, and where they come from ----------------------------------------


@dataclass(frozen=True)
class Binding:
    """How a name reaches the generated module: an import (``module``, ``name``) or a copied TypeVar."""

    module: str = ""
    name: str | None = None  # None: ``import module [as alias]``
    typevar: ast.Assign | None = None
    guarded: bool = False  # under ``if TYPE_CHECKING:`` in the source


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(module: str | None, level: int, here: str, is_package: bool) -> str:
    if not level:
        return module or ""
    parts = here.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def _is_typevar(value: ast.expr) -> bool:
    return isinstance(value, ast.Call) and (
        (isinstance(value.func, ast.Name) and value.func.id in ("TypeVar", "ParamSpec"))
        or (isinstance(value.func, ast.Attribute) and value.func.attr in ("TypeVar", "ParamSpec"))
    )


def _bindings(tree: ast.Module, source: Source) -> dict[str, Binding]:
    """Every name the source module binds at top level (imports, TypeVars, classes, aliases)."""
    found: dict[str, Binding] = {}
    is_package = source.path.endswith("__init__.py")

    def visit(statements: list[ast.stmt], guarded: bool) -> None:
        for node in statements:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, True)
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                module = _absolute(node.module, node.level, source.module, is_package)
                for alias in node.names:
                    found.setdefault(alias.asname or alias.name, Binding(module, alias.name, None, guarded))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    module = alias.name if alias.asname else bound
                    found.setdefault(bound, Binding(module, None, None, guarded))
            elif isinstance(node, ast.Assign) and _is_typevar(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, Binding(typevar=node, guarded=guarded))
            elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                found.setdefault(node.name, Binding(source.module, node.name, None, guarded))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, Binding(source.module, target.id, None, guarded))
            elif sys.version_info >= (3, 12) and isinstance(node, ast.TypeAlias):
                assert isinstance(node.name, ast.Name)
                found.setdefault(node.name.id, Binding(source.module, node.name.id, None, guarded))

    visit(tree.body, False)
    return found


def _annotation_names(node: ast.AST | None) -> set[str]:
    """The names an annotation uses, string annotations (forward references) included."""
    names: set[str] = set()
    if node is None:
        return names
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            try:
                names |= _annotation_names(ast.parse(sub.value, mode="eval"))
            except SyntaxError:
                pass
    return names


def _signature_names(method: Method) -> set[str]:
    """The names a method's signature needs: annotations, defaults, return, decorators."""
    args = method.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    names = set().union(*(_annotation_names(a.annotation) for a in every if a is not None))
    for default in [*args.defaults, *args.kw_defaults]:
        if default is not None:
            names |= {n.id for n in ast.walk(default) if isinstance(n, ast.Name)}
    names |= _annotation_names(method.returns)
    for decorator in method.decorator_list:
        names |= {n.id for n in ast.walk(decorator) if isinstance(n, ast.Name)}
    return names


def _imports(methods: list[Method], bindings: dict[str, Binding], where: str) -> tuple[str, str]:
    """The import lines (runtime, TYPE_CHECKING-only) and copied TypeVars the generated signatures need."""
    needed = set().union(*(_signature_names(m) for m in methods))
    runtime: dict[str, set[str]] = {}
    guarded: dict[str, set[str]] = {}
    typevars: list[str] = []
    pending = sorted(needed)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        binding = bindings.get(name)
        if binding is None and name in FALLBACK_IMPORTS:
            binding = Binding(FALLBACK_IMPORTS[name], name)
        if binding is None:
            if hasattr(builtins, name) or name == "self":
                continue
            raise SystemExit(
                f"gen_sync: {name!r}, used in a signature of {where}, is neither imported nor defined there"
            )
        if binding.typevar is not None:
            typevars.append(ast.unparse(binding.typevar))
            call = binding.typevar.value
            assert isinstance(call, ast.Call)
            for part in [call.func, *call.args[1:], *(k.value for k in call.keywords)]:
                pending.extend(_annotation_names(part))  # the bound, constraints (forward refs too)
            continue
        table = guarded if binding.guarded else runtime
        if binding.name is None:
            plain = binding.module if name == binding.module else f"{binding.module} as {name}"
            table.setdefault("", set()).add(plain)
        else:
            alias = binding.name if binding.name == name else f"{binding.name} as {name}"
            table.setdefault(binding.module, set()).add(alias)
    if guarded:
        runtime.setdefault("typing", set()).add("TYPE_CHECKING")

    def lines(table: dict[str, set[str]], indent: str) -> list[str]:
        out = [f"{indent}import {m}" for m in sorted(table.get("", set()))]
        out += [f"{indent}from {m} import {', '.join(sorted(ns))}" for m, ns in sorted(table.items()) if m]
        return out

    text = "\n".join(lines(runtime, ""))
    if guarded:
        text += "\n\nif TYPE_CHECKING:\n" + "\n".join(lines(guarded, "    "))
    return text, "\n".join(sorted(set(typevars)))


# -- rendering --------------------------------------------------------------------------------


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line else line for line in text.splitlines())


def _unparse(node: ast.AST) -> str:
    return _indent(ast.unparse(ast.fix_missing_locations(node)))


def render_face(face: Face) -> str:
    """The text the generated module of ``face`` must have."""
    trees = {s: ast.parse((SRC / s.path).read_text(), filename=s.path) for s in {face.base, *face.sources}}
    delegated = _methods(trees[face.delegated], face.delegated) if face.delegated else []
    own = [(s, _methods(trees[s], s)) for s in face.own]
    names = {m.name for m in delegated} | {m.name for _, ms in own for m in ms}
    delegates: list[Method] = [_delegate(m) for m in delegated]
    twins = [_twin(m, "self._provider", names) for m in delegated]
    twins += [_twin(m, "self", names) for _, ms in own for m in ms]

    bindings: dict[str, Binding] = {}
    for source in face.sources:
        for name, binding in _bindings(trees[source], source).items():
            bindings.setdefault(name, binding)
    where = " / ".join(f"src/{s.path}" for s in face.sources)
    imports, typevars = _imports([*delegates, *twins], bindings, where)
    uses_partial = any(isinstance(m, ast.AsyncFunctionDef) for m in delegated) or any(
        isinstance(m, ast.AsyncFunctionDef) for _, ms in own for m in ms
    )
    sources = ", ".join(dict.fromkeys(s.path.removeprefix("abstractcore/") for s in face.sources))
    body = []
    if delegates:
        body += ["    # -- async (delegated to the provider) --", *(_unparse(d) for d in delegates)]
    body += ["    # -- blocking twins (run on the background loop) --", *(_unparse(t) for t in twins)]
    text = (
        f'''"""{face.summary}

GENERATED by scripts/gen_sync.py from {sources}. Do not edit by hand:
change the async class{"es" if len(face.sources) > 1 else ""} there and run ``python scripts/gen_sync.py``.
"""

from __future__ import annotations

{"import functools" if uses_partial else ""}
{imports}

from abstractcore import _portal
from {face.base.module} import {face.base.cls}

__all__ = ["{face.cls}"]

{typevars}


class {face.cls}({face.base.cls}):
    """{face.class_doc}"""

{"    __slots__ = ()" if face.slots else ""}

'''
        + "\n\n".join(body)
        + "\n"
    )
    return _format(text, face.file)


def render() -> dict[str, str]:
    """The text of every generated module, by file name."""
    return {face.file: render_face(face) for face in FACES}


def _format(text: str, file: str) -> str:
    """``text`` as ruff writes it (imports sorted, then ``ruff format``, the project's settings)."""
    ruff = Path(sys.executable).with_name("ruff")
    binary = str(ruff) if ruff.exists() else "ruff"
    name = str(SRC / "abstractcore" / file)
    for command in (
        [binary, "check", "--select", "I", "--fix", "--quiet", "--stdin-filename", name, "-"],
        [binary, "format", "--stdin-filename", name, "-"],
    ):
        result = subprocess.run(command, input=text, capture_output=True, text=True, cwd=ROOT, check=False)
        if result.returncode != 0:
            raise SystemExit(f"gen_sync: {' '.join(command[:2])} failed: {result.stderr.strip()}")
        text = result.stdout
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated module is stale")
    args = parser.parse_args()
    texts = render()
    if args.check:
        stale = [f for f, text in texts.items() if not (OUT / f).exists() or (OUT / f).read_text() != text]
        for file in stale:
            print(f"{OUT / file} is stale: run python scripts/gen_sync.py", file=sys.stderr)
        return 1 if stale else 0
    for file, text in texts.items():
        (OUT / file).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

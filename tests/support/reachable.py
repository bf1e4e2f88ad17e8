"""Where a raw string can be found among the objects reachable from a root.

``paths_holding(root, needle)`` walks everything reachable from ``root``:
attributes (``__dict__`` and every ``__slots__`` entry, name-mangled ones
included), dict keys and values and other mappings, lists, tuples, sets,
deques, weak references and weak containers, closures' cells, bound
methods, ``functools.partial`` objects, the locals of suspended generators
and coroutines, and, for objects written in C, whatever the garbage
collector says they refer to. It judges the objects themselves, never their
``repr``: a ``str`` subclass whose ``repr`` is masked still holds its text.

Not followed: modules, classes, code objects and functions' globals (they
reach the whole program, test modules included), and the inside of a
``Secret``, the one holder a key may live in (masked everywhere, revealed
only by the transport while it sends).
"""

from __future__ import annotations

import collections
import functools
import gc
import inspect
import sys
import types
import weakref
from collections.abc import Mapping
from typing import Any

from abstractcore.core.secrets import Secret

__all__ = ["paths_holding"]

_ATOMS = (int, float, complex, bool, type(None), type(Ellipsis), range)
_OPAQUE = (types.ModuleType, type, types.CodeType, types.FrameType, Secret)
_SEQUENCES = (list, tuple, set, frozenset, collections.deque, weakref.WeakSet)


def _slot_names(cls: type) -> list[str]:
    slots = cls.__dict__.get("__slots__", ())
    names = [slots] if isinstance(slots, str) else list(slots)
    mangled = []
    for name in names:
        if name.startswith("__") and not name.endswith("__"):
            name = f"_{cls.__name__.lstrip('_')}{name}"
        mangled.append(name)
    return mangled


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    """(``.name``, value) of every instance attribute, read past ``__getattr__`` and properties."""
    found: list[tuple[str, Any]] = []
    try:
        state = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        state = None
    if isinstance(state, dict):
        found += [(f".{key}", value) for key, value in state.items()]
    for cls in type(obj).__mro__:
        for name in _slot_names(cls):
            descriptor = cls.__dict__.get(name)
            if isinstance(descriptor, types.MemberDescriptorType):
                try:
                    found.append((f".{name}", descriptor.__get__(obj, cls)))
                except AttributeError:  # an empty slot
                    pass
    return found


def _running(obj: types.CoroutineType[Any, Any, Any] | types.AsyncGeneratorType[Any, Any]) -> bool:
    """Whether a coroutine (or async generator) is on the stack right now, awaiting or executing."""
    if isinstance(obj, types.CoroutineType):
        return bool(obj.cr_running) or inspect.getcoroutinestate(obj) == inspect.CORO_RUNNING
    return bool(obj.ag_running)


def _edges(obj: Any, module_dicts: set[int]) -> list[tuple[str, Any]]:
    """What ``obj`` refers to, each with the step of the path that leads there."""
    if isinstance(obj, (Mapping, weakref.WeakKeyDictionary, weakref.WeakValueDictionary)):
        try:
            items = list(obj.items())
        except Exception:  # a mapping that cannot be listed: fall back on its referents
            items = []
        edges: list[tuple[str, Any]] = []
        for key, value in items:
            edges += [("<key>", key), (f"[{key!r}]", value)]
        return edges + (_attributes(obj) if not isinstance(obj, dict) else [])
    if isinstance(obj, _SEQUENCES):
        return [(f"[{i}]", value) for i, value in enumerate(list(obj))]
    if isinstance(obj, weakref.ref):
        return [("()", obj())]
    if isinstance(obj, types.MethodType):
        return [(".__self__", obj.__self__), (".__func__", obj.__func__)]
    if isinstance(obj, types.FunctionType):
        cells = obj.__closure__ or ()
        edges = [(f".<cell {obj.__code__.co_freevars[i]}>", cell) for i, cell in enumerate(cells)]
        edges += [(".__defaults__", obj.__defaults__), (".__kwdefaults__", obj.__kwdefaults__)]
        return edges + _attributes(obj)
    if isinstance(obj, types.CellType):
        try:
            return [(".cell_contents", obj.cell_contents)]
        except ValueError:  # an empty cell
            return []
    if isinstance(obj, functools.partial):
        return [(".func", obj.func), (".args", obj.args), (".keywords", obj.keywords)]
    if isinstance(obj, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
        if obj.gi_running if isinstance(obj, types.GeneratorType) else _running(obj):
            return []  # the stack of the caller (the test itself): not state anything holds
        frame = (
            getattr(obj, "gi_frame", None) or getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
        )
        if frame is None:  # finished
            return []
        return [(f".<local {name}>", value) for name, value in frame.f_locals.items()]
    edges = _attributes(obj)
    if not edges or not hasattr(obj, "__dict__"):  # written in C (or only slots): ask the collector
        state = getattr(obj, "__dict__", None)
        edges += [
            ("<referent>", ref)
            for ref in gc.get_referents(obj)
            if ref is not state and id(ref) not in module_dicts and not isinstance(ref, _OPAQUE)
        ]
    return edges


def paths_holding(root: Any, needle: str, *, limit: int = 200_000) -> list[str]:
    """The paths from ``root`` to every str or bytes object that contains ``needle``."""
    raw = needle.encode()
    module_dicts = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    seen: set[int] = set()
    keep: list[Any] = []  # seen ids stay valid while the walk runs
    found: list[str] = []
    todo: collections.deque[tuple[str, Any]] = collections.deque([("root", root)])
    while todo and len(seen) < limit:
        path, obj = todo.popleft()
        if isinstance(obj, str):  # a leaf: reported on every path that reaches it
            if str.__contains__(obj, needle) and len(found) < 50:
                found.append(path)
            continue
        if isinstance(obj, (bytes, bytearray, memoryview)):
            if raw in bytes(obj) and len(found) < 50:
                found.append(path)
            continue
        if id(obj) in seen or id(obj) in module_dicts:
            continue
        seen.add(id(obj))
        keep.append(obj)
        if isinstance(obj, (*_ATOMS, *_OPAQUE)):
            continue
        todo.extend((path + step, value) for step, value in _edges(obj, module_dicts))
    assert len(seen) < limit, f"more than {limit} objects reachable: the walk was cut short"
    return found

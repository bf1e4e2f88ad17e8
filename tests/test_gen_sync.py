"""The sync-face generator copies any signature: whatever ``**kwargs`` is annotated with
(``Unpack[CallKwargs]``), and every import the annotations need, the way the source has it."""

from __future__ import annotations

import ast
import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

ASYNC_SOURCE = '''
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TypeVar

from typing_extensions import Unpack

from ..features import request as _request
from .types import Reply

if TYPE_CHECKING:
    from abstractcore.features.request import CallKwargs

R = TypeVar("R", bound="Reply")


class Local:
    pass


class AsyncThing:
    async def ado(self, prompt: str | None = None, /, *, into: type[R] | None = None,
                  **kwargs: Unpack[CallKwargs]) -> R | Local:
        """Do it; see ``astream_it``."""

    def astream_it(self, *args: _request.Part, **kwargs: Unpack[CallKwargs]) -> AsyncIterator[Reply]:
        """Stream it, an async iterator."""

    async def _private(self) -> None: ...

    def sync_helper(self) -> None: ...
'''


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_sync", ROOT / "scripts" / "gen_sync.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_sync"] = gen
    spec.loader.exec_module(gen)
    return gen


def _face(gen: Any, tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "abstractcore" / "apps").mkdir(parents=True)
    (tmp_path / "abstractcore" / "apps" / "thing.py").write_text(textwrap.dedent(source))
    monkeypatch.setattr(gen, "SRC", tmp_path)
    thing = gen.Source("abstractcore/apps/thing.py", "AsyncThing")
    return gen.Face(file="_thing.py", cls="Thing", base=thing, summary="S.", class_doc="D.", own=(thing,))


def test_signatures_and_their_imports_are_copied_whatever_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = _generator()
    text = gen.render_face(_face(gen, tmp_path, ASYNC_SOURCE, monkeypatch))
    tree = ast.parse(text)
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    twins = {m.name: m for m in cls.body if isinstance(m, ast.FunctionDef)}
    assert set(twins) == {"do", "stream_it"}  # not the private one, nor the plain method
    signature = {
        name: (ast.unparse(m.args), ast.unparse(m.returns)) for name, m in twins.items() if m.returns
    }
    assert signature == {
        "do": (
            "self, prompt: str | None=None, /, *, into: type[R] | None=None, **kwargs: Unpack[CallKwargs]",
            "R | Local",
        ),
        "stream_it": ("self, *args: _request.Part, **kwargs: Unpack[CallKwargs]", "Iterator[Reply]"),
    }
    bodies = {name: ast.unparse(m.body[-1]) for name, m in twins.items()}
    assert bodies == {
        "do": "return _portal.call(functools.partial(self.ado, prompt, into=into, **kwargs))",
        "stream_it": "return _portal.iterate(self.astream_it(*args, **kwargs))",
    }
    assert [ast.get_docstring(twins[n]) for n in ("do", "stream_it")] == [
        "Do it; see ``stream_it``.",
        "Stream it, an iterator.",
    ]
    imports = text[: text.index("class Thing")]
    assert "from typing_extensions import Unpack" in imports
    assert "from abstractcore.apps.types import Reply" in imports  # the relative import, resolved
    assert "from abstractcore.features import request as _request" in imports
    assert "from abstractcore.apps.thing import Local" in imports  # defined in the source
    assert 'R = TypeVar("R", bound="Reply")' in imports
    guarded = imports[imports.index("if TYPE_CHECKING:") :]
    assert "from abstractcore.features.request import CallKwargs" in guarded  # stays guarded
    assert "AsyncIterator" not in imports


def test_a_name_the_source_does_not_bind_stops_the_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = _generator()
    source = ASYNC_SOURCE.replace("-> R | Local:", "-> Missing:")
    where = r"'Missing', used in a signature of src/abstractcore/apps/thing\.py"
    with pytest.raises(SystemExit, match=where):
        gen.render_face(_face(gen, tmp_path, source, monkeypatch))

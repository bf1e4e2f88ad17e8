"""The fast lane's guard (tests/conftest.py): a test that uses the real model or starts a server
cannot run in ``pytest -m "not slow"`` unmarked. Checked on probe tests in a child pytest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBES = '''
import subprocess
import sys

import pytest

from abstractcore.engines.base import Engine


class CheapEngine(Engine):
    """An engine defined after the guard was installed: its load is watched all the same."""

    loaded = False

    def load(self):
        pass

    def generate(self, spec, emit, cancel):
        raise NotImplementedError

    def unload(self):
        pass


def test_asks_for_the_model(gguf_path):
    raise AssertionError("marked slow at collection: never runs in the fast lane")


def test_asks_for_the_model_at_run_time(request):
    request.getfixturevalue("gguf_path")


def test_loads_a_model_in_process():
    CheapEngine().load()


def test_starts_a_server_process():
    subprocess.run([sys.executable, "-c", "pass", "--", "llama-server"], check=True)


@pytest.mark.slow
def test_marked_and_real():
    CheapEngine().load()


def test_pure():
    assert 1 + 1 == 2
'''


#: The probes' conftest sits below the root, as tests/conftest.py does (pytest asks such a conftest
#: about fewer things than the root's: the guard must work from there).
CONFTEST = """
from tests.conftest import *  # noqa: F403
from tests.conftest import _fast_lane_guard  # noqa: F401
"""


def _pytest(tmp_path: Path, *args: str) -> str:
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    (probes / "conftest.py").write_text(CONFTEST)
    (probes / "test_probes.py").write_text(textwrap.dedent(PROBES))
    command = [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path)]
    command += ["-p", "no:cacheprovider", "-q", "-rA", str(probes / "test_probes.py"), *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def test_the_fast_lane_refuses_real_tests_that_are_not_marked(tmp_path: Path) -> None:
    out = _pytest(tmp_path, "-m", "not slow")
    # the probes' bodies pass; the guard fails the three at teardown, test_pure not
    assert "4 passed, 2 deselected, 3 errors" in out, out
    assert "of test_pure" not in out
    for name, why in [
        ("test_asks_for_the_model_at_run_time", "asked for gguf_path"),
        ("test_loads_a_model_in_process", "loaded a model in process (CheapEngine.load)"),
        ("test_starts_a_server_process", "started a server process"),
    ]:
        assert f"ERROR at teardown of {name}" in out, name
        assert f"probes/test_probes.py::{name} is not slow but {why}" in out, name
    assert "mark it @pytest.mark.slow" in out


def test_a_test_asking_for_a_model_fixture_is_in_the_slow_lane(tmp_path: Path) -> None:
    out = _pytest(tmp_path, "-m", "slow", "--collect-only")
    assert "test_probes.py::test_asks_for_the_model" in out.replace("\n", " ")
    assert "test_probes.py::test_marked_and_real" in out
    assert "2/6 tests collected (4 deselected)" in out, out

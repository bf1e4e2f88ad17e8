"""``MCPTools`` against real MCP servers (the ``mcp`` package's own ``MCPServer``), over stdio
(a subprocess) and streamable HTTP on 127.0.0.1: listing, calls, structured, image and error
results, a server that crashes or never starts, timeouts that cancel the call on the server,
list-changed notifications, filters and prefixes."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from abstractcore import ConfigurationError, ImagePart, MCPConnectionError, MCPTools, ToolCallError
from abstractcore.features.tools.schema import to_tools
from tests.support.mcp_servers.running import SERVER, http_mcp_server
from tests.support.mcp_servers.tools_server import PNG

pytestmark = pytest.mark.slow


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with http_mcp_server() as (url, _):
        yield url


@pytest.fixture(params=["stdio", "http"])
def server(request: pytest.FixtureRequest) -> Any:
    """A factory of MCPTools for the test server over one transport."""
    if request.param == "stdio":
        return lambda **kw: MCPTools.stdio(sys.executable, args=[SERVER], **kw)
    url = request.getfixturevalue("http_url")
    return lambda **kw: MCPTools.http(url, headers={"X-Test": "1"}, **kw)


@pytest.mark.anyio
async def test_the_tools_are_listed_with_their_schemas_as_given(server: Any) -> None:
    async with server() as tools:
        specs = {s.name: s for s in tools.specs}
        assert {"capital", "forecast", "red_pixel", "fail", "slow", "crash", "grow"} <= set(specs)
        assert specs["capital"].description == "The capital city of a country."
        assert specs["capital"].parameters == {  # the server's schema, untouched (titles kept)
            "type": "object",
            "properties": {"country": {"title": "Country", "type": "string"}},
            "required": ["country"],
            "title": "capitalArguments",
        }
        assert [t.name for t in to_tools([tools])] == [s.name for s in tools.specs]


@pytest.mark.anyio
async def test_text_structured_image_and_error_results(server: Any) -> None:
    async with server() as tools:
        assert await tools.acall("capital", {"country": "France"}) == {"result": "Paris"}
        assert await tools.acall("forecast", {"city": "Oslo"}) == {"city": "Oslo", "celsius": 21}
        image = await tools.acall("red_pixel")
        assert image == [ImagePart(PNG, "image/png")]
        with pytest.raises(ToolCallError, match="refused: no reason") as info:
            await tools.acall("fail", {"reason": "no reason"})
        assert not isinstance(info.value, MCPConnectionError)
        assert await tools.acall("capital", {"country": "Italy"}) == {"result": "Rome"}  # still usable


@pytest.mark.anyio
async def test_parallel_calls_run_concurrently(server: Any) -> None:
    async with server() as tools:
        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(tools.acall, "slow", {"seconds": 1.0})
        assert time.perf_counter() - start < 2.5  # three 1 s calls, not 3 s one after another


@pytest.mark.anyio
async def test_a_call_over_its_timeout_fails_and_is_cancelled_on_the_server(
    server: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "finished"
    async with server(timeout=0.5) as tools:
        with pytest.raises(ToolCallError, match=r"did not answer within timeout=0\.5 s"):
            await tools.acall("slow", {"seconds": 1.5, "marker": str(marker)})
        await anyio.sleep(2.0)
        assert not marker.exists()  # the server stopped the call: it never woke up to finish
        assert await tools.acall("capital", {"country": "France"}) == {"result": "Paris"}


@pytest.mark.anyio
async def test_a_list_changed_notification_refreshes_the_tools(server: Any) -> None:
    async with server() as tools:
        assert "extra" not in [s.name for s in tools.specs]
        assert await tools.acall("grow") == {"result": "grown"}
        with anyio.fail_after(5):
            while not await tools.__abstractcore_refresh__():  # noqa: ASYNC110 (the refresh is under test)
                await anyio.sleep(0.05)
        assert "extra" in [s.name for s in tools.specs]
        assert await tools.acall("extra") == {"result": "extra here"}


@pytest.mark.anyio
async def test_filter_keeps_some_tools_and_prefix_renames_them(server: Any) -> None:
    async with server(filter=["capital", "forecast"], prefix="geo_") as tools:
        assert [s.name for s in tools.specs] == ["geo_capital", "geo_forecast"]
        (capital, _) = to_tools([tools])
        assert await capital.function(country="France") == {"result": "Paris"}  # type: ignore[misc]
    async with server(filter=lambda name: name.startswith("c")) as tools:
        assert [s.name for s in tools.specs] == ["capital", "crash"]


@pytest.mark.anyio
async def test_two_servers_with_one_tool_name_clash_unless_prefixed(http_url: str) -> None:
    async with (
        MCPTools.stdio(sys.executable, args=[SERVER, "--name", "one"], filter=["capital"]) as one,
        MCPTools.http(http_url, filter=["capital"]) as two,
    ):
        with pytest.raises(ToolCallError, match=r"repeated: capital\. .*prefix"):
            to_tools([one, two])
    async with (
        MCPTools.stdio(sys.executable, args=[SERVER], filter=["capital"]) as one,
        MCPTools.http(http_url, filter=["capital"], prefix="web_") as two,
    ):
        assert [t.name for t in to_tools([one, two])] == ["capital", "web_capital"]


@pytest.mark.anyio
async def test_a_server_that_crashes_mid_call_names_itself_and_its_stderr() -> None:
    async with MCPTools.stdio(sys.executable, args=[SERVER]) as tools:
        with pytest.raises(MCPConnectionError) as info:
            await tools.acall("crash")
        assert "tools_server.py died during the call to 'crash'" in str(info.value)
        assert "about to crash: goodbye" in info.value.stderr
        assert info.value.server.endswith("tools_server.py")
        with pytest.raises(MCPConnectionError, match="died"):  # later calls say so too
            await tools.acall("capital", {"country": "France"})


@pytest.mark.anyio
async def test_a_server_that_fails_to_start_says_why(tmp_path: Path) -> None:
    script = tmp_path / "broken_server.py"
    script.write_text("import sys\nprint('no database at /nowhere', file=sys.stderr)\nsys.exit(2)\n")
    with pytest.raises(MCPConnectionError) as info:
        async with MCPTools.stdio(sys.executable, args=[str(script)]):
            pass
    assert "broken_server.py failed to start" in str(info.value)
    assert "no database at /nowhere" in str(info.value) and "no database" in info.value.stderr
    with pytest.raises(MCPConnectionError, match="no-such-command failed to start"):
        async with MCPTools.stdio("no-such-command"):
            pass


@pytest.mark.anyio
async def test_an_unreachable_http_server_is_a_typed_error_without_its_headers() -> None:
    from tests.support.llama_server import free_port

    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(MCPConnectionError, match="could not be reached") as info:
        async with MCPTools.http(url, headers={"Authorization": "Bearer sk-secret-123"}):
            pass
    assert "sk-secret" not in str(info.value) and "sk-secret" not in repr(
        MCPTools.http(url, headers={"A": "sk-secret"})
    )


def test_the_plain_with_opens_and_closes_the_connection() -> None:
    with MCPTools.stdio(sys.executable, args=[SERVER], filter=["capital"]) as tools:
        assert [s.name for s in tools.specs] == ["capital"]
    with pytest.raises(ConfigurationError, match="open it first"):
        to_tools([tools])

"""A real MCP server for the tests, written with the ``mcp`` package's own server API.

Run as ``python tools_server.py`` (stdio) or ``python tools_server.py http PORT``
(streamable HTTP on 127.0.0.1, served at /mcp). ``--name NAME`` changes the
server's name (two servers with the same tool names in one test).
"""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from pydantic import BaseModel

#: A 1x1 red PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


def _name() -> str:
    args = sys.argv[1:]
    return args[args.index("--name") + 1] if "--name" in args else "test-tools"


app = MCPServer(_name())


class Forecast(BaseModel):
    city: str
    celsius: int


@app.tool()
def capital(country: str) -> str:
    """The capital city of a country."""
    return {"france": "Paris", "italy": "Rome"}.get(country.strip().lower(), "Atlantis")


@app.tool()
def forecast(city: str) -> Forecast:
    """Tomorrow's weather in a city."""
    return Forecast(city=city, celsius=21)


@app.tool()
def red_pixel() -> Image:
    """A picture of a red pixel."""
    return Image(data=PNG, format="png")


@app.tool()
def fail(reason: str) -> str:
    """Always fails with the reason given."""
    raise ToolError(f"refused: {reason}")


@app.tool()
async def slow(seconds: float, marker: str = "") -> str:
    """Sleeps, then answers (and writes the file ``marker``, if given, when it wakes)."""
    await anyio.sleep(seconds)
    if marker:
        await anyio.Path(marker).write_text("finished")
    return f"slept {seconds}"


@app.tool()
def crash() -> str:
    """Kills the server in the middle of the call."""
    print("about to crash: goodbye", file=sys.stderr, flush=True)
    os._exit(3)


@app.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool ``extra`` and says the tool list changed."""

    def extra() -> str:
        """A tool that appeared later."""
        return "extra here"

    app.add_tool(extra)
    await ctx.notify_tools_changed()
    await ctx.session.send_tool_list_changed()
    return "grown"


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "http":
        app.run(transport="streamable-http", host="127.0.0.1", port=int(argv[1]))
    else:
        app.run()

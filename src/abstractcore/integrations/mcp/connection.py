"""One live connection to an MCP server, over the official ``mcp`` package's ``Client``.

Opened on an ``AsyncExitStack`` (so the ``async with`` that owns it closes it): the
server is started (stdio) or reached (streamable HTTP), the protocol negotiated, its tools
listed; a ``tools/list_changed`` notification marks the list stale and ``tools()`` lists it
again. A server that cannot be started or reached, or that dies, is an
``MCPConnectionError`` naming it, with the last lines of its stderr (a stdio server's).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from abstractcore.core.errors import MCPConnectionError

if TYPE_CHECKING:
    from mcp import Client
    from mcp_types import CallToolResult
    from mcp_types import Tool as MCPTool

__all__ = ["Connection", "Target", "STDERR_LINES"]

#: How many of a server's last stderr lines an error shows.
STDERR_LINES = 12


@dataclass(frozen=True)
class Target:
    """Where a server is: a command to start (stdio) or a URL (streamable HTTP)."""

    command: str | None = None
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a key: never shown

    @property
    def name(self) -> str:
        """The server as an error names it: its command line, or its URL without credentials."""
        if self.command is not None:
            return " ".join([self.command, *self.args])
        from urllib.parse import urlsplit

        url = urlsplit(self.url or "")
        host = url.hostname or ""
        netloc = f"{host}:{url.port}" if url.port else host
        return url._replace(netloc=netloc, query="", fragment="").geturl()


def _leaves(exc: BaseException) -> list[BaseException]:
    subs = getattr(exc, "exceptions", None)  # an exception group (anyio's task groups raise them)
    if isinstance(subs, tuple) and subs:
        return [leaf for sub in subs for leaf in _leaves(sub)]
    return [exc]


def _reason(exc: BaseException) -> str:
    leaves = _leaves(exc)
    first = next((e for e in leaves if str(e)), leaves[0])
    return f"{type(first).__name__}: {first}" if str(first) else type(first).__name__


class Connection:
    """A server's client session and the state of its tool list (see the module docstring)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.client: Client | None = None
        self.stale = True
        self.dead: MCPConnectionError | None = None
        self._stderr: IO[str] | None = None
        self._listed: list[MCPTool] = []

    def stderr_tail(self) -> str:
        """The last ``STDERR_LINES`` lines the server wrote to stderr ("" over HTTP)."""
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        lines = [line.rstrip() for line in self._stderr.read().splitlines() if line.strip()]
        return "\n".join(lines[-STDERR_LINES:])

    def error(self, what: str, exc: BaseException | None = None) -> MCPConnectionError:
        """``MCPConnectionError`` saying ``what`` happened to this server, with its stderr's tail."""
        tail = self.stderr_tail()
        message = f"The MCP server {self.target.name} {what}"
        if exc is not None:
            message += f" ({_reason(exc)})"
        message += "." + (f" Its stderr ended with:\n{tail}" if tail else "")
        return MCPConnectionError(message, server=self.target.name, stderr=tail)

    async def open(self, stack: contextlib.AsyncExitStack) -> None:
        """Start or reach the server, negotiate, list its tools, listen for list changes."""
        from mcp import Client

        transport = self._transport(stack)
        client = Client(transport, message_handler=self._on_message, cache=None)
        try:
            self.client = await stack.enter_async_context(client)
            await self.tools()
        except Exception as exc:
            raise self.error(
                "failed to start" if self.target.command else "could not be reached", exc
            ) from None
        await self._listen(stack, client)

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        target = self.target
        if target.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            self._stderr = stack.enter_context(
                tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
            )
            params = StdioServerParameters(
                command=target.command,
                args=list(target.args),
                env=dict(target.env) if target.env is not None else None,
                cwd=target.cwd,
            )
            return stdio_client(params, errlog=self._stderr)
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = create_mcp_http_client(headers=dict(target.headers) or None)
        return streamable_http_client(target.url or "", http_client=http)

    async def _listen(self, stack: contextlib.AsyncExitStack, client: Client) -> None:
        """On a 2026-era connection, list changes come on a ``subscriptions/listen`` stream."""
        import anyio
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        tools = client.server_capabilities.tools
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not (tools and tools.list_changed):
            return  # earlier protocols send notifications/tools/list_changed unasked
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)

        async def listen(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            started = False
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    task_status.started()
                    started = True
                    async for _event in subscription:
                        self.stale = True
            except Exception:  # refused or lost (the server died): the notifications still mark it
                if not started:
                    task_status.started()

        await group.start(listen)

    async def _on_message(self, message: Any) -> None:
        from mcp_types import ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification):
            self.stale = True

    async def tools(self) -> list[MCPTool]:
        """The server's tools, listed again (every page) when a notification said they changed."""
        if not self.stale:
            return self._listed
        client = self._client()
        self.stale = False  # a change notified while listing marks it stale again
        listed: list[MCPTool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        self._listed = listed
        return listed

    async def call(self, name: str, arguments: Mapping[str, Any]) -> CallToolResult:
        """``tools/call``; a server that died meanwhile is an ``MCPConnectionError``."""
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        client = self._client()
        try:
            return await client.call_tool(name, dict(arguments))
        except MCPError as exc:
            if exc.error.code != CONNECTION_CLOSED:
                raise
            self.dead = self.error(f"died during the call to {name!r}")
            raise self.dead from None

    def _client(self) -> Client:
        if self.dead is not None:
            raise self.dead
        if self.client is None:
            raise MCPConnectionError(
                f"The MCP server {self.target.name} is not connected: use its MCPTools in "
                "`async with` (or `with`) around the calls.",
                server=self.target.name,
                stderr="",
            )
        return self.client

"""``MCPTools``: an MCP server's tools in ``tools=[...]``, beside plain functions.

``async with MCPTools.stdio("python", args=["server.py"]) as docs:`` starts the server
(``MCPTools.http(url)`` reaches one over streamable HTTP) and ends it on exit; a plain
``with`` does the same for blocking code, holding the connection on the background loop
the sync face runs on (so ``llm.run(..., tools=[docs])`` calls it there). Inside, the
object stands for the server's tools, with their input schemas as the server gives them:
``generate``, ``run``, ``Session`` and the router expand it, and ``run`` calls them on
the server (concurrently when the model asks for several; ``timeout=`` bounds each call,
as does ``run``'s ``tool_timeout``; a cancelled call is cancelled on the server too).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from abstractcore.core.errors import ConfigurationError, ToolCallError
from abstractcore.core.types import ToolSpec
from abstractcore.features.tools.schema import TOOL_NAME, Tool
from abstractcore.integrations.mcp.connection import Connection, Target
from abstractcore.integrations.mcp.results import tool_result

if TYPE_CHECKING:
    from concurrent.futures import Future

    import anyio
    from mcp_types import Tool as MCPTool

__all__ = ["MCPTools"]

#: ``filter=``: the tool names to keep, or a predicate on a name (the server's, before ``prefix``).
ToolFilter = Collection[str] | Callable[[str], bool]


def _require_mcp() -> None:
    from abstractcore.engines.base import require

    require("mcp", "mcp", "MCPTools")


class MCPTools:
    """The tools of one MCP server; build it with ``MCPTools.stdio(...)`` or ``MCPTools.http(...)``.

    ``prefix`` is put before every tool's name (two servers offering the same name need one:
    a clash without it is a ``ToolCallError``); ``filter`` keeps only some tools (names as
    the server gives them); ``timeout`` bounds each call, in seconds.
    """

    def __init__(
        self,
        target: Target,
        *,
        prefix: str = "",
        filter: ToolFilter | None = None,
        timeout: float | None = None,
    ) -> None:
        _require_mcp()
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a string; got {prefix!r}.")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise ConfigurationError(f"timeout must be a number of seconds > 0, or None; got {timeout!r}.")
        if (
            filter is not None
            and not callable(filter)
            and (isinstance(filter, str) or not isinstance(filter, Collection))
        ):
            raise ConfigurationError(
                f"filter must be a collection of tool names or a function of a name; got {filter!r}."
            )
        self._target = target
        self.prefix = prefix
        self.timeout = timeout
        self._keep: Callable[[str], bool] = (
            (lambda name: True)
            if filter is None
            else filter
            if callable(filter)
            else set(filter).__contains__
        )
        self._connection: Connection | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._tools: list[Tool] = []
        self._thread: int | None = None
        self._held: tuple[Future[Any], anyio.Event] | None = None

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        prefix: str = "",
        filter: ToolFilter | None = None,
        timeout: float | None = None,
    ) -> MCPTools:
        """A server started as ``command args...`` and spoken to over its stdin and stdout.

        ``env`` is added to a minimal default environment (the ``mcp`` package's); ``cwd`` is
        its working directory. What it writes to stderr is kept: an error shows its last lines.
        """
        if not isinstance(command, str) or not command:
            raise ConfigurationError(f"command must be a non-empty string; got {command!r}.")
        if isinstance(args, str):
            raise ConfigurationError("args must be a list of strings, not one string.")
        target = Target(command=command, args=tuple(str(a) for a in args), env=env, cwd=cwd)
        return cls(target, prefix=prefix, filter=filter, timeout=timeout)

    @classmethod
    def http(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        prefix: str = "",
        filter: ToolFilter | None = None,
        timeout: float | None = None,
    ) -> MCPTools:
        """A server reached over streamable HTTP at ``url`` (``headers``, e.g. a key, on every request)."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"url must be an http:// or https:// URL; got {url!r}.")
        return cls(
            Target(url=url, headers=dict(headers or {})), prefix=prefix, filter=filter, timeout=timeout
        )

    def __repr__(self) -> str:
        state = "connected" if self._connection is not None else "not connected"
        return f"MCPTools({self._target.name!r}, {state}, {len(self._tools)} tools)"

    @property
    def specs(self) -> list[ToolSpec]:
        """The tools the model sees (names prefixed), as listed last."""
        return [t.spec for t in self._tools]

    # -- the async context manager -------------------------------------------------------

    async def __aenter__(self) -> MCPTools:
        if self._connection is not None:
            raise ConfigurationError(f"{self!r} is already open; open it once (or make another).")
        async with contextlib.AsyncExitStack() as stack:
            connection = Connection(self._target)
            await connection.open(stack)
            self._tools = self._build(await connection.tools())
            self._connection, self._stack = connection, stack.pop_all()
            self._thread = threading.get_ident()
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack, self._connection, self._tools = self._stack, None, None, []
        if stack is not None:
            await stack.aclose()

    # -- the plain ``with`` (the sync face's background loop holds the connection) ----------

    def __enter__(self) -> MCPTools:
        from abstractcore._portal import portal

        future, stop = portal().start_task(self._hold)
        self._held = (future, stop)
        return self

    def __exit__(self, *exc: object) -> None:
        from abstractcore._portal import portal

        held, self._held = self._held, None
        if held is None:
            return
        future, stop = held
        portal().call(stop.set)
        future.result()

    async def _hold(self, *, task_status: Any) -> None:
        import anyio

        stop = anyio.Event()
        async with self:
            task_status.started(stop)
            await stop.wait()

    # -- the tool source ------------------------------------------------------------------

    def __abstractcore_tools__(self) -> list[Tool]:
        if self._connection is None:
            raise ConfigurationError(
                f"{self!r}: open it first, with `async with` (or `with`) around the calls that use it."
            )
        return list(self._tools)

    async def __abstractcore_refresh__(self) -> bool:
        connection = self._connection
        if connection is None or not connection.stale:
            return False
        if self._thread != threading.get_ident():
            return False  # held by another loop: listed again there
        self._tools = self._build(await connection.tools())
        return True

    def _build(self, listed: list[MCPTool]) -> list[Tool]:
        tools = []
        for found in listed:
            if not self._keep(found.name):
                continue
            name = self.prefix + found.name
            if not TOOL_NAME.fullmatch(name):
                raise ConfigurationError(
                    f"The MCP server {self._target.name} has a tool named {found.name!r}, which models' "
                    "APIs refuse (1 to 64 letters, digits, '_' or '-'): leave it out with filter=."
                )
            spec = ToolSpec(name, found.description or found.title or "", dict(found.input_schema))
            tools.append(Tool(spec, self._caller(found.name)))
        return tools

    def _caller(self, server_name: str) -> Callable[..., Any]:
        async def call(**arguments: Any) -> Any:
            return await self.acall(server_name, arguments)

        call.__name__ = server_name
        return call

    async def acall(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Call the server's tool ``name`` (its own name, without ``prefix``); the tool result.

        Text comes back as a string, ``structuredContent`` as a dict, images as a list of
        ``TextPart`` / ``ImagePart``; ``isError`` raises ``ToolCallError`` with the server's
        text; a dead server raises ``MCPConnectionError``.
        """
        import anyio

        connection = self._connection
        if connection is None:
            self.__abstractcore_tools__()  # raises: not open
            raise AssertionError
        if self._thread != threading.get_ident():
            if self._held is None:
                raise ConfigurationError(
                    f"{self!r} was opened by `async with` on another event loop; call its tools there."
                )
            from abstractcore._portal import call as on_portal  # opened by a plain `with`: its loop

            return await anyio.to_thread.run_sync(on_portal, self.acall, name, arguments)
        with anyio.move_on_after(self.timeout) as scope:
            result = await connection.call(name, arguments or {})
        if scope.cancelled_caught:
            raise ToolCallError(
                f"The tool {name!r} of the MCP server {self._target.name} did not answer within "
                f"timeout={self.timeout:g} s; the call was cancelled."
            )
        return tool_result(result, tool=name, server=self._target.name)

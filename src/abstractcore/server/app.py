"""The aiohttp face of the server: one catch-all route into ``Service``, the request-size limit,
streams written as they come, and the runner.

aiohttp was measured against Starlette + uvicorn on ``benchmarks/server.py`` (see
docs/server.md): it is already a dependency and it is faster here. The runner cancels a
handler whose client went away (``handler_cancellation``), so a dropped request or stream
stops its generation at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from abstractcore.features.telemetry import state as telemetry
from abstractcore.server.backends import Backends
from abstractcore.server.config import ServerConfig
from abstractcore.server.service import Reply, Service

if TYPE_CHECKING:
    from abstractcore import LLM

__all__ = ["create_app", "run", "start"]

log = logging.getLogger("abstractcore.server")
_SERVICE = web.AppKey("service", Service)
_BACKENDS = web.AppKey("backends", Backends)


class _AccessLogger(AbstractAccessLogger):
    """One line per request: method, path, status, milliseconds (no headers, no query, no body)."""

    @property
    def enabled(self) -> bool:
        """Whether lines are logged (INFO on ``abstractcore.server.access``)."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        self.logger.info("%s %s %s %.1fms", request.method, request.path, response.status, duration * 1000)


def _response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, headers=reply.headers)


async def _handle(request: web.Request) -> web.StreamResponse:
    tracing = telemetry.active
    if tracing is None:
        return await _serve(request)
    with tracing.server(request.method, request.path, request.headers) as span:
        response = await _serve(request)
        span.set_attribute("http.response.status_code", response.status)
        return response


async def _serve(request: web.Request) -> web.StreamResponse:
    service = request.app[_SERVICE]
    method, path, headers = request.method, request.path, request.headers
    early = service.check(method, path, headers)
    if early is not None:
        return _response(early)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _response(service.too_large(path, headers))
    reply = await service.handle(method, path, headers, body)
    if reply.stream is None:
        return _response(reply)
    response = web.StreamResponse(status=reply.status, headers=reply.headers)
    try:
        await response.prepare(request)
        async for data in reply.stream:
            await response.write(data)
        await response.write_eof()
    except ConnectionError:  # the client went away: closing the stream stops the generation
        log.info("%s %s: the client disconnected mid-stream", method, path)
    finally:
        await reply.stream.aclose()
    return response


def create_app(
    models: Backends | Mapping[str, LLM] | LLM, config: ServerConfig | None = None
) -> web.Application:
    """The aiohttp application serving ``models``: a ``Backends``, a mapping of served names to
    LLM objects (``create_llm(...)``, a router, ...), or one LLM (served as ``provider/model``)."""
    config = config or ServerConfig()
    if isinstance(models, Backends):
        backends = models
    elif isinstance(models, Mapping):
        backends = Backends(models)
    else:
        owner = getattr(getattr(models, "provider", None), "name", "abstractcore")
        backends = Backends({f"{owner}/{models.model}": models})
    app = web.Application(client_max_size=config.max_request_bytes, handler_args={"max_field_size": 16384})
    app[_SERVICE] = Service(backends, config)
    app[_BACKENDS] = backends
    app.router.add_route("*", "/{tail:.*}", _handle)

    async def close_backends(app: web.Application) -> None:
        await app[_BACKENDS].aclose()

    app.on_cleanup.append(close_backends)
    return app


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 8000) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` (port 0: a free one, see ``runner.addresses``) until
    ``await runner.cleanup()``."""
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log_class=_AccessLogger,
        access_log=logging.getLogger("abstractcore.server.access"),
        shutdown_timeout=1.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    return runner


def run(app: web.Application, config: ServerConfig, *, announce: bool = True) -> None:
    """Serve ``app`` until interrupted (Ctrl-C or SIGTERM), then close the back ends. With
    ``config.otel`` tracing is switched on first, the OpenTelemetry SDK configured from the
    ``OTEL_*`` environment variables (``docs/tracing.md``)."""
    if config.otel:
        from abstractcore.features.telemetry.environment import instrument_from_environment

        instrument_from_environment()

    async def main() -> None:
        runner = await start(app, config.host, config.port)
        if announce:
            host, port = runner.addresses[0][:2]
            names = ", ".join(name for name, _ in app[_BACKENDS].listing())
            log.info("abstractcore server on http://%s:%s (models: %s)", host, port, names)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                pass
        try:
            await stop.wait()
        finally:
            started = time.monotonic()
            await runner.cleanup()
            log.info("stopped in %.2fs", time.monotonic() - started)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

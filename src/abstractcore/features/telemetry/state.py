"""Whether tracing is on: ``active`` is the ``Tracing`` that ``abstractcore.instrument()`` set, or
None. The request path reads it once per call (a module attribute and a None check); this module
imports nothing, so tracing switched off costs nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abstractcore.features.telemetry.tracing import Tracing

__all__ = ["active"]

#: The tracing in use; None when ``abstractcore.instrument()`` was not called (or switched off).
active: Tracing | None = None

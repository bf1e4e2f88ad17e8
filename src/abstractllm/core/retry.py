"""Alias of ``abstractcore.core.retry``."""

from abstractcore.core.retry import RetryConfig

__all__ = ["RetryConfig"]

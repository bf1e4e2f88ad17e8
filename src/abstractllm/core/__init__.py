"""Alias of ``abstractcore.core``."""

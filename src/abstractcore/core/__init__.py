"""Core types, errors, configuration and the provider registry (imports nothing above it)."""

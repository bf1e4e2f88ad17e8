"""Provider implementations; imported lazily by the registry."""

"""HTTP transport (pooled, retrying, error-mapping), stream decoders and the worker bridge."""

"""Shared features: tools, structured output, media, the OpenAI chat shapes, constrained decoding."""

"""Helpers shared by the tests: the real model file and the real llama.cpp server."""

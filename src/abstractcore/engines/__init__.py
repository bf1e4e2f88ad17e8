"""In-process inference engines (llama.cpp, transformers, MLX) and model-file lookup."""

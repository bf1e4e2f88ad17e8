"""Optional integrations, each behind its extra and imported on first use (``mcp``: MCP servers' tools)."""

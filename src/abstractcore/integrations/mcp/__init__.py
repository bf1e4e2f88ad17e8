"""MCP servers as tools: ``MCPTools.stdio(...)`` / ``MCPTools.http(...)`` (extra ``abstractcore[mcp]``).

Nothing here imports the ``mcp`` package until an ``MCPTools`` is built.
"""

from abstractcore.integrations.mcp.tools import MCPTools

__all__ = ["MCPTools"]

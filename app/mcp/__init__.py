"""MCP at `/mcp` (streamable HTTP, the official `mcp` SDK): the memory use cases as tools for desktop agents,
each call limited by the caller's API key exactly as the REST routes are."""

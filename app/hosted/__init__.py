"""mem0's hosted API (what mem0's official clients call), as adapters over this server's own services."""

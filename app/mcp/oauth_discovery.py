"""OAuth discovery, answered: an MCP client (mcp-remote, the SDKs) that meets a 401 without a key configured looks
for OAuth metadata, then registers itself, before it gives up with whatever the last answer said. This server has
no OAuth, so each of those paths answers a 404 in the API's error shape (without a key: they are asked anonymously)
whose message says how to send the API key instead. The paths are those the MCP specification and RFC 9728 / 8414
derive from `/mcp`."""

from __future__ import annotations

from fastapi import APIRouter

from app.errors import NotFound

NO_OAUTH = (
    "this server uses API keys, not OAuth: send the key in a header, `X-API-Key: <key>` or "
    "`Authorization: Bearer <key>` (an MCP client's `headers` setting, or mcp-remote's `--header`)"
)
METADATA_PATHS = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/mcp",
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/mcp",
)
REGISTRATION_PATH = "/register"  # dynamic client registration, where a client without metadata tries it

router = APIRouter(include_in_schema=False)


async def no_oauth() -> None:
    raise NotFound(NO_OAUTH)


for path in METADATA_PATHS:
    router.add_api_route(path, no_oauth, methods=["GET"])
router.add_api_route(REGISTRATION_PATH, no_oauth, methods=["POST"])

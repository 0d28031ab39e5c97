"""The one Ollama client every model call goes through."""

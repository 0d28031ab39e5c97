"""Scopes: the user, agent and run ids that have memories (mem0 calls them entities), listed with counts and
deleted with their memories."""

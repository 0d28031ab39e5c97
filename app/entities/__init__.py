"""Entities: the user, agent and run ids that have memories, listed with counts and deleted as a scope."""

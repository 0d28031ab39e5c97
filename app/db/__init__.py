"""Postgres access: the embedded server, the pool, named SQL queries and the migrator."""

"""Graph memory's Neo4j projection: Neo4j shows, per scope, what Postgres's graph_relations hold (mem0's layout)."""

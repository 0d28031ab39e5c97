// Named Cypher statements of the projection (app/graph/projection/graph_store.py), split at `// name:` lines.
// Every value is a parameter. Three things cannot be, and are filled in by graph_store.py from checked text only:
// {scope(n)} is the exact-scope predicate on node n (built from the fixed identifier keys: each identifier the
// scope has equal to its parameter, the others absent), {label} a node type from names.NODE_TYPES, {type_labels}
// all of them, and {type} a relationship type that fullmatched names.RELATIONSHIP_TYPE.

// name: components
CALL dbms.components() YIELD name, versions, edition
RETURN name, versions[0] AS version, edition

// name: ping
RETURN 1

// Lookups by name (every step that finds a node) and by scope (the stale-node sweep). TEXT indexes: they serve
// equality on strings as RANGE ones do, and take values up to 32 KB where a RANGE index refuses one over 8 KB (so a
// long name would fail its scope's projection). Not a uniqueness constraint: in the community edition a node key
// over (name, user_id, agent_id, run_id) needs all four, and scopes leave some out. IF NOT EXISTS also passes when
// an equivalent index exists under another name.
// name: index_name
CREATE TEXT INDEX mem0_entity_name IF NOT EXISTS FOR (n:__Entity__) ON (n.name)

// name: index_user_id
CREATE TEXT INDEX mem0_entity_user_id IF NOT EXISTS FOR (n:__Entity__) ON (n.user_id)

// name: index_agent_id
CREATE TEXT INDEX mem0_entity_agent_id IF NOT EXISTS FOR (n:__Entity__) ON (n.agent_id)

// name: index_run_id
CREATE TEXT INDEX mem0_entity_run_id IF NOT EXISTS FOR (n:__Entity__) ON (n.run_id)

// Relationships between two nodes of the scope that Postgres no longer has; $keep holds [source, type, destination].
// name: delete_stale_relationships
MATCH (source:__Entity__)-[r]->(destination:__Entity__)
WHERE {scope(source)} AND {scope(destination)} AND NOT [source.name, type(r), destination.name] IN $keep
DELETE r

// name: delete_stale_nodes
MATCH (n:__Entity__)
WHERE {scope(n)} AND NOT n.name IN $names
DETACH DELETE n

// MERGE cannot be used: a node pattern with the scope's identifiers would also match a node of a wider scope (one
// with an agent_id more), and it fails on a null property, so absent identifiers cannot be part of it.
// name: create_missing_nodes
UNWIND $nodes AS node
WITH node
WHERE NOT EXISTS { MATCH (n:__Entity__ {name: node.name}) WHERE {scope(n)} }
CREATE (n:__Entity__ {name: node.name, created: timestamp()})
SET n += $identifiers

// A node has exactly one type label: the others of the fixed set are removed (its type may have changed).
// name: set_nodes
UNWIND $nodes AS node
MATCH (n:__Entity__ {name: node.name})
WHERE {scope(n)}
SET n.mentions = node.mentions
REMOVE n{type_labels}
SET n:{label}

// name: merge_relationships
UNWIND $relationships AS relationship
MATCH (source:__Entity__ {name: relationship.source})
WHERE {scope(source)}
MATCH (destination:__Entity__ {name: relationship.destination})
WHERE {scope(destination)}
MERGE (source)-[r:{type}]->(destination)
ON CREATE SET r.created = timestamp()
SET r.valid = relationship.valid, r.invalidated_at = relationship.invalidated_at,
    r.mentions = relationship.mentions

-- mem0's own library can share the memories table; it inserts (id, vector, payload) and keeps its history in its
-- own SQLite file. This server marks the rows it writes, so a memory without history here is known to be the
-- library's (its history is rebuilt from the row) and not a broken invariant. A constant default adds the column
-- without rewriting the table; rows written before it are told apart by their history.
ALTER TABLE "{collection}" ADD COLUMN IF NOT EXISTS written_here boolean NOT NULL DEFAULT false;

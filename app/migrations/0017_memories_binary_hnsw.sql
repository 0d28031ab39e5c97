-- The ANN index moves from the full vectors to their binary quantization (one bit per dimension, the sign) under
-- Hamming distance, with a smaller graph (m = 16, ef_construction = 32). Inserting a row into the full-vector HNSW
-- (m 16, ef_construction 64) cost Postgres 3.5–7 ms of CPU (10,000–100,000 rows), most of a write; into this one
-- about a third of that: a Hamming distance over 768 bits is a few popcounts instead of 768 multiply-adds, an index
-- element is 96 bytes instead of 3 KB, and ef_construction is halved. Smaller graphs (m 8, ef_construction 16) cost
-- less again but reached recall@10 0.85 at most. The index only serves scopes above MEM0_EXACT_SEARCH_MAX_ROWS; its
-- query (semantic_index in app/memories/queries.sql) takes 6 times the candidate list in Hamming order and re-ranks
-- it by exact cosine distance on the full vectors, which the table keeps (README, "ef_search"; recall measured by
-- `python -m scripts.bench --large`).
--
-- The index keeps mem0's name, "{collection}_hnsw_idx": mem0's library, which may share this table, runs
-- `CREATE INDEX IF NOT EXISTS {collection}_hnsw_idx ... USING hnsw (vector vector_cosine_ops)` each time it
-- starts, and with this index under that name it skips it, instead of adding a second full-vector index that every
-- insert would pay for again. (mem0's own searches order by `vector <=> q`, which this index cannot serve: on a
-- shared table they become exact scans.) A table mem0 created before this server first ran has mem0's index under
-- that name, which 0001 adopted; this replaces it as well. Dropping first and creating after makes the file safe
-- to run on any earlier state; the migrator runs it once, in one transaction, so writers wait for the (short)
-- build rather than seeing no index.
DROP INDEX IF EXISTS "{collection}_hnsw_idx";
CREATE INDEX "{collection}_hnsw_idx" ON "{collection}"
    USING hnsw ((binary_quantize(vector)::bit({dims})) bit_hamming_ops) WITH (m = 16, ef_construction = 32);

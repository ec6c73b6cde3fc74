-- Rustorium Grid shard store, schema version 2: shard ids are never given twice.
-- Applied once by SqliteMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0003_*.sql instead.
--
-- Clients cache shard maps keyed by id, and ids appear in proofs and logs, so an id must name one shard forever.
-- Version 1 gave a split's new shard max(id) + 1, which hands out again the id of a shard a merge removed (the
-- right shard of a merge is often the largest id). The counter below is the largest id ever given: the initial
-- layout and every split take their ids from it and move it on, in the transaction that inserts the shards (a
-- refused split rolls it back with everything else), and nothing ever lowers it.

-- One row (singleton = 1): the largest shard id ever given out (0 before the first layout).
CREATE TABLE shard_id_counter (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    last_id   INTEGER NOT NULL CHECK (last_id >= 0)
);

-- An existing store starts from its largest id. An id above it that a merge freed before this migration is not
-- recorded anywhere and may be given once more; from here on no id is given twice.
INSERT INTO shard_id_counter (singleton, last_id) SELECT 1, coalesce(max(id), 0) FROM shards;

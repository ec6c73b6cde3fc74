-- Rustorium Grid on PostgreSQL, schema version 4: shard ids are never given twice.
-- Applied once by PostgresMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0005_*.sql instead.
--
-- Clients cache shard maps keyed by id, and ids appear in proofs and logs, so an id must name one shard forever.
-- Versions 1-3 gave a split's new shard max(id) + 1, which hands out again the id of a shard a merge removed (the
-- right shard of a merge is often the largest id). The counter below is the largest id ever given: the initial
-- layout and every split take their ids from it and move it on, in the transaction that inserts the shards, and
-- nothing ever lowers it.
--
-- A counter row rather than a sequence: it is transactional (a refused or failed split gives its id back instead of
-- using it up) and its row lock is what serialises id allocation among concurrent splits of different shards, in
-- place of the advisory lock versions 1-3 took. A split takes it after its shard's row lock; 0002's generation row
-- (locked by the deferred triggers at COMMIT) stays the last lock of every transaction.

CREATE TABLE shard_id_counter (
    singleton boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id   bigint  NOT NULL CHECK (last_id >= 0)       -- the largest shard id ever given out (0 before the layout)
);

-- An existing schema starts from its largest id. An id above it that a merge freed before this migration is not
-- recorded anywhere and may be given once more; from here on no id is given twice. (A silo of an older build still
-- running during a rolling upgrade allocates max(id) + 1 behind the counter's back: the allocation statement also
-- raises the counter to the largest id present, so it never hands out an id such a silo has already committed.)
INSERT INTO shard_id_counter (singleton, last_id) SELECT true, coalesce(max(id), 0) FROM shards;

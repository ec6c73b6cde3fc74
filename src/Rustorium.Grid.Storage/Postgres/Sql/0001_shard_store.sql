-- Rustorium Grid on PostgreSQL, schema version 1: the shard store.
-- Applied once by PostgresMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0002_*.sql instead.
--
-- Encodings as in the SQLite store: keys and values are bytea (PostgreSQL compares bytea bytewise, a
-- proper prefix first: the grid's unsigned lexicographic key order). Field elements (roots, node hashes,
-- children, leaf key/value) are 32-byte big-endian canonical bytea. Times are Unix microseconds.

-- One row per shard: its range, version, ownership epoch and sparse Merkle root. The cluster store
-- (0002) adds the owner of each shard to this row: ownership and the epoch every commit checks live in
-- one row, so a claim and a commit serialise on its lock.
CREATE TABLE shards (
    id          bigint  NOT NULL PRIMARY KEY,
    range_start bytea   NOT NULL,
    range_end   bytea       NULL,                  -- NULL: unbounded
    version     bigint  NOT NULL CHECK (version >= 0),
    epoch       bigint  NOT NULL CHECK (epoch >= 0),
    root        bytea   NOT NULL CHECK (length(root) = 32),
    key_count   bigint  NOT NULL CHECK (key_count >= 0),
    updated_at  bigint  NOT NULL
) WITH (fillfactor = 50); -- every commit rewrites its shard's row: room on the page keeps those updates HOT (no index writes)

CREATE UNIQUE INDEX shards_by_range_start ON shards (range_start);

-- The data; the primary key is the scan order. No foreign key to shards: the store writes a shard's rows and
-- nodes only inside a transaction that holds the shard's row lock, and a per-row referential check would cost
-- more than the rest of the insert. Keys live in the primary key's B-tree, whose entries PostgreSQL limits to
-- about 2,700 bytes: a longer key is refused (InvalidArgument) and its commit rolled back.
CREATE TABLE rows (
    shard_id bigint NOT NULL,
    key      bytea  NOT NULL,
    value    bytea  NOT NULL,
    version  bigint NOT NULL,                      -- version of the commit that wrote the row
    ts       bigint NOT NULL,                      -- time of that commit
    PRIMARY KEY (shard_id, key)
) WITH (fillfactor = 90); -- an overwrite (upsert of a stored key) can then stay on its page (HOT)

-- The shard's sparse Merkle tree, content-addressed: kind 1 = middle (a = left, b = right),
-- kind 2 = leaf (a = key, b = value) -- the values of SmtNodeKind.
CREATE TABLE smt_nodes (
    shard_id bigint   NOT NULL,
    hash     bytea    NOT NULL CHECK (length(hash) = 32),
    kind     smallint NOT NULL CHECK (kind IN (1, 2)),
    a        bytea    NOT NULL CHECK (length(a) = 32),
    b        bytea    NOT NULL CHECK (length(b) = 32),
    PRIMARY KEY (shard_id, hash)
);

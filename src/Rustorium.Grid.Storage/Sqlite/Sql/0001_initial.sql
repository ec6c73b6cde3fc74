-- Rustorium Grid shard store, schema version 1.
-- Applied once by SqliteMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0002_*.sql instead.
--
-- Encodings: keys and values are BLOBs (SQLite orders BLOBs by memcmp, then shorter first: exactly the
-- grid's unsigned lexicographic key order). Field elements (roots, node hashes, children, leaf key/value)
-- are 32-byte big-endian canonical BLOBs. Times are Unix microseconds.

-- Marks the file as a Rustorium Grid store ('RGSS'), so a foreign SQLite file is never mistaken for one.
PRAGMA application_id = 1380406099;

CREATE TABLE schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    checksum   TEXT    NOT NULL,            -- SHA-256 (hex) of the script, line endings normalised to \n
    applied_at INTEGER NOT NULL             -- Unix microseconds
);

-- One row per shard: its range, version, ownership epoch and sparse Merkle root.
CREATE TABLE shards (
    id          INTEGER NOT NULL PRIMARY KEY,
    range_start BLOB    NOT NULL CHECK (typeof(range_start) = 'blob'),
    range_end   BLOB        NULL CHECK (range_end IS NULL OR typeof(range_end) = 'blob'),   -- NULL: unbounded
    version     INTEGER NOT NULL CHECK (version >= 0),
    epoch       INTEGER NOT NULL CHECK (epoch >= 0),
    root        BLOB    NOT NULL CHECK (length(root) = 32),
    key_count   INTEGER NOT NULL CHECK (key_count >= 0),
    updated_at  INTEGER NOT NULL
);

CREATE UNIQUE INDEX shards_by_range_start ON shards (range_start);

-- The data. The primary key is the scan order; WITHOUT ROWID keeps each row in the key's B-tree leaf.
CREATE TABLE rows (
    shard_id INTEGER NOT NULL REFERENCES shards (id),
    key      BLOB    NOT NULL CHECK (typeof(key) = 'blob'),
    value    BLOB    NOT NULL CHECK (typeof(value) = 'blob'),
    version  INTEGER NOT NULL,                -- version of the commit that wrote the row
    ts       INTEGER NOT NULL,                -- time of that commit
    PRIMARY KEY (shard_id, key)
) WITHOUT ROWID;

-- The shard's sparse Merkle tree, content-addressed: kind 1 = middle (a = left, b = right),
-- kind 2 = leaf (a = key, b = value) -- the values of SmtNodeKind.
CREATE TABLE smt_nodes (
    shard_id INTEGER NOT NULL REFERENCES shards (id),
    hash     BLOB    NOT NULL CHECK (length(hash) = 32),
    kind     INTEGER NOT NULL CHECK (kind IN (1, 2)),
    a        BLOB    NOT NULL CHECK (length(a) = 32),
    b        BLOB    NOT NULL CHECK (length(b) = 32),
    PRIMARY KEY (shard_id, hash)
) WITHOUT ROWID;

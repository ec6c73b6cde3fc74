-- Rustorium Grid shard store, schema version 4: tree nodes keyed by position.
-- Applied once by SqliteMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0005_*.sql instead.
--
-- A shard's tree nodes were keyed by hash: a fold that replaced a node deleted one row and inserted another, each
-- on a random page of the table. Keyed by where the node sits in the tree, the replacement is an update of the same
-- row, and the nodes of a subtree share pages. pos is SmtPosition's encoding: the path bits from the root, packed
-- most significant bit first, then one byte holding the level (the root is the single byte 0). The stored hash lets a
-- read check that the node at a position is the one the tree expects.
--
-- The same migration step copies every shard's tree from smt_nodes (walking it from the shard's root, which gives each
-- node its position) and then drops smt_nodes: see SqliteMigrator.

CREATE TABLE tree_nodes (
    shard_id INTEGER NOT NULL REFERENCES shards (id),
    pos      BLOB    NOT NULL CHECK (length(pos) BETWEEN 1 AND 33),
    hash     BLOB    NOT NULL CHECK (length(hash) = 32),
    kind     INTEGER NOT NULL CHECK (kind IN (1, 2)),
    a        BLOB    NOT NULL CHECK (length(a) = 32),
    b        BLOB    NOT NULL CHECK (length(b) = 32),
    PRIMARY KEY (shard_id, pos)
) WITHOUT ROWID;

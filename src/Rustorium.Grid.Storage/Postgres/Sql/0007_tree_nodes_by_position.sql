-- Rustorium Grid on PostgreSQL, schema version 7: tree nodes keyed by position.
-- Applied once by PostgresMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0008_*.sql instead.
--
-- A shard's tree nodes were keyed by hash: a fold that replaced a node deleted one row and inserted another, each
-- with its own index entry. Keyed by where the node sits in the tree, the replacement is an update of the same row
-- that changes no indexed column, which PostgreSQL can keep on the same page without touching the index (a HOT
-- update; the fill factor leaves the room for it), and the nodes of a subtree sit next to each other in the index.
-- pos is SmtPosition's encoding: the path bits from the root, packed most significant bit first, then one byte
-- holding the level (the root is the single byte 0). The stored hash lets a read check that the node at a position
-- is the one the tree expects.
--
-- The same migration step copies every shard's tree from smt_nodes (walking it from the shard's root, which gives each
-- node its position) and then drops smt_nodes: see PostgresMigrator.
CREATE TABLE tree_nodes (
    shard_id bigint   NOT NULL,
    pos      bytea    NOT NULL CHECK (length(pos) BETWEEN 1 AND 33),
    hash     bytea    NOT NULL CHECK (length(hash) = 32),
    kind     smallint NOT NULL CHECK (kind IN (1, 2)),
    a        bytea    NOT NULL CHECK (length(a) = 32),
    b        bytea    NOT NULL CHECK (length(b) = 32),
    PRIMARY KEY (shard_id, pos)
) WITH (fillfactor = 80);

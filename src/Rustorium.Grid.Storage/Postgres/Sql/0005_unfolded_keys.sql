-- Rustorium Grid on PostgreSQL, schema version 5: the tree may lag the rows.
-- Applied once by PostgresMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0006_*.sql instead.
--
-- A data commit writes rows and the shard's version and is acknowledged; the shard's tree folds it in later, in
-- larger batches, with a tree commit (ARCHITECTURE.md: "the ProofGrain folds each committed batch into the shard's
-- sparse Merkle tree and publishes (version, root)"). tree_version is the version the stored nodes and root are of.
-- The keys a data commit wrote stay listed in unfolded_keys until a tree commit passes their version, so that after a
-- crash the next owner knows exactly which keys to fold (with their current values) to bring the tree to the data's
-- version. Same design as the SQLite store's 0003_unfolded_changes.sql.

-- Every existing shard's tree is at its version (versions 1-4 committed rows and tree together). The default only
-- serves inserts that name no tree version (tools, older builds): a new shard's empty tree is at version 0. Not part
-- of 0002's trigger columns, and not indexed: moving it keeps the shard row's update HOT and the map's generation still.
ALTER TABLE shards ADD COLUMN tree_version bigint NOT NULL DEFAULT 0;
UPDATE shards SET tree_version = version;
ALTER TABLE shards ADD CONSTRAINT shards_tree_version_within_version CHECK (tree_version >= 0 AND tree_version <= version);

-- Keys written by data commits after the shard's tree version, one row per (commit, key): a key written by several
-- data commits appears once for each. The primary key leads with (shard_id, version), so a tree commit deletes a
-- prefix of the shard's part of the index (version <= the new tree version) and a split or merge the whole part, and
-- the unfolded read walks the shard's part only. No foreign key to shards, as for rows and smt_nodes (0001): the
-- store writes them only while it holds the shard's row lock. A key too long for this B-tree (0001's limit, less 8 bytes)
-- is refused like one too long for rows (InvalidArgument, the commit rolled back).
CREATE TABLE unfolded_keys (
    shard_id bigint NOT NULL,
    version  bigint NOT NULL,                      -- the data commit that wrote the key
    key      bytea  NOT NULL,
    PRIMARY KEY (shard_id, version, key)
);

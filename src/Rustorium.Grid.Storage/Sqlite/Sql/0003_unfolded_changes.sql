-- Rustorium Grid shard store, schema version 3: the tree may lag the rows.
-- Applied once by SqliteMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0004_*.sql instead.
--
-- A data commit writes rows and the version and is acknowledged; the shard's tree folds it in later, in larger
-- batches, with a tree commit (ARCHITECTURE.md: "the ProofGrain folds each committed batch into the shard's sparse
-- Merkle tree and publishes (version, root)"). tree_version is the version the stored nodes and root are of. The keys
-- a data commit wrote stay listed in unfolded_keys until a tree commit passes their version, so that after a crash the
-- next owner knows exactly which keys to fold (with their current values) to bring the tree to the data's version.

-- Every existing shard's tree is at its version (version 2 committed rows and tree together).
ALTER TABLE shards ADD COLUMN tree_version INTEGER NOT NULL DEFAULT 0 CHECK (tree_version >= 0);
UPDATE shards SET tree_version = version;

-- Keys written by data commits after the shard's tree version. Ordered by version so that a tree commit deletes a
-- prefix; a key written by several data commits appears once per commit.
CREATE TABLE unfolded_keys (
    shard_id INTEGER NOT NULL REFERENCES shards (id),
    version  INTEGER NOT NULL,
    key      BLOB    NOT NULL CHECK (typeof(key) = 'blob'),
    PRIMARY KEY (shard_id, version, key)
) WITHOUT ROWID;

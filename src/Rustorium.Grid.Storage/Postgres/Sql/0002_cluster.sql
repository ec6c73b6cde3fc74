-- Rustorium Grid on PostgreSQL, schema version 2: the cluster store (membership table and shard directory).
-- Applied once by PostgresMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0003_*.sql instead.
--
-- Every time in these tables is the database server's clock (clock_timestamp()), never a silo's: heartbeat ages
-- and the dead-declaration condition are computed here, so silos whose clocks disagree still agree on who is dead.
-- See docs/membership.md.

-- The membership table: one row per incarnation of a silo (endpoint + generation, Orleans's SiloAddress).
-- status holds SiloStatus: 1 = Active, 2 = ShuttingDown, 3 = Dead (explicit and append-only). A row only ever
-- moves 1 -> 2 -> 3 or 1 -> 3: every update the store runs is conditioned on status <> 3, so Dead is final.
CREATE TABLE silos (
    endpoint       text        NOT NULL CHECK (endpoint <> ''),
    generation     bigint      NOT NULL CHECK (generation > 0),
    name           text        NOT NULL,
    region         text        NOT NULL,
    http_endpoint  text            NULL,
    status         smallint    NOT NULL CHECK (status IN (1, 2, 3)),
    joined_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_heartbeat timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (endpoint, generation)
);

-- The live members, for failure detectors that scan only them.
CREATE INDEX silos_live ON silos (endpoint, generation) WHERE status <> 3;

-- The shard directory: each shard's owner lives on its row in shards (0001), beside the epoch every commit of the
-- shard is conditioned on. A claim is one conditional UPDATE of that row (epoch + 1), so a claim and a commit
-- serialise on the row's lock and a fenced owner's commit finds the epoch moved on. The owner is not a foreign key
-- into silos: which silos may own what is the runtime's policy, not the directory's.
ALTER TABLE shards
    ADD COLUMN owner_endpoint   text   NULL,
    ADD COLUMN owner_generation bigint NULL;

ALTER TABLE shards
    ADD CONSTRAINT shards_owner_is_a_silo_address
        CHECK ((owner_endpoint IS NULL) = (owner_generation IS NULL) AND (owner_generation IS NULL OR owner_generation > 0));

-- The shard map's generation: a single row that moves on with every change of ownership or ranges, so a client that
-- holds two maps keeps the one with the larger generation. Held under the row lock of this one row, the order of
-- generations is the commit order of the changes.
CREATE TABLE shard_map_generation (
    singleton  boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint  NOT NULL CHECK (generation >= 0)
);

INSERT INTO shard_map_generation (singleton, generation) VALUES (true, 0);

-- The generation moves on in the same transaction as the change, whoever makes it: a claim or release by the
-- directory, or a layout, split or merge by the shard store. The triggers are deferred to commit so the generation
-- row is the last lock any transaction takes (a merge that locks two shard rows cannot deadlock with a claim), and
-- they fire only when ownership or a range actually changed, so ordinary data commits (version, root, key_count)
-- never touch the generation row.
-- The function keeps the schema it was created in (the migrator's search path), whatever the caller's search path.
CREATE FUNCTION shard_map_moved_on() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE shard_map_generation SET generation = generation + 1 WHERE singleton;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER shards_added_or_removed
    AFTER INSERT OR DELETE ON shards
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION shard_map_moved_on();

CREATE CONSTRAINT TRIGGER shards_owner_or_range_changed
    AFTER UPDATE OF range_start, range_end, epoch, owner_endpoint, owner_generation ON shards
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.range_start IS DISTINCT FROM NEW.range_start
       OR OLD.range_end IS DISTINCT FROM NEW.range_end
       OR OLD.epoch IS DISTINCT FROM NEW.epoch
       OR OLD.owner_endpoint IS DISTINCT FROM NEW.owner_endpoint
       OR OLD.owner_generation IS DISTINCT FROM NEW.owner_generation)
    EXECUTE FUNCTION shard_map_moved_on();

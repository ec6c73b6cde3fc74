-- Rustorium Grid on PostgreSQL, schema version 3: the grain directory (IGrainDirectory) of the cluster store.
-- Applied once by PostgresMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0004_*.sql instead.
--
-- Which silo incarnation hosts the one activation of each grain that may live anywhere in the cluster (every grain
-- type but shard grains, whose owners are on their rows in shards). See docs/membership.md, "Grain directory".

-- One row per grain ever registered. grain is GrainId.ToString() ({type}/i/{integer} or {type}/s/{string}), in the
-- "C" collation so that the primary key compares and orders bytewise (ordinally), whatever the database's collation.
-- silo_endpoint + silo_generation name the registered incarnation (a SiloAddress, like silos' primary key); both null
-- = unregistered. An unregistered row is kept, not deleted, so that its epoch never goes back: the next registration
-- continues from it, and a deactivation or a silo that still holds an old entry can never match a later one.
-- epoch moves on (+1) every time the registration passes to another incarnation (or is taken again after it was
-- unregistered); 1 for the first registration of the grain.
--
-- The incarnation is deliberately not a foreign key into silos: whether it is alive is decided by every statement
-- that reads the row, against silos, in the same snapshot (alive = its row exists and is not Dead (3), and no later
-- generation has joined on its endpoint). A registration to a silo that died is therefore free at once, without
-- anyone having to clean it up first.
CREATE TABLE grain_directory (
    grain           text COLLATE "C" NOT NULL PRIMARY KEY CHECK (grain <> ''),
    silo_endpoint   text                 NULL,
    silo_generation bigint               NULL,
    epoch           bigint           NOT NULL CHECK (epoch > 0),
    registered_at   timestamptz      NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT grain_directory_silo_is_a_silo_address
        CHECK ((silo_endpoint IS NULL) = (silo_generation IS NULL) AND (silo_generation IS NULL OR silo_generation > 0))
);

-- A stopping silo's UnregisterSiloAsync finds its rows without scanning the directory.
CREATE INDEX grain_directory_by_silo ON grain_directory (silo_endpoint, silo_generation) WHERE silo_endpoint IS NOT NULL;

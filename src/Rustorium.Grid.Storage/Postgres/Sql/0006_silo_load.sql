-- Rustorium Grid on PostgreSQL, schema version 6: silos report their load with each heartbeat.
-- Applied once by PostgresMigrator inside one transaction and recorded in schema_migrations (with this
-- script's SHA-256): never edit this file once it has shipped; add 0007_*.sql instead.
--
-- The load-based placement director breaks ties between silos that own as many shards by the calls their shards
-- served per second and by their grain activations (docs/placement.md). Every silo must see the same figures to
-- agree on one target, so the figures live in the table, written by each silo's own heartbeat. Rows of silos that
-- never reported (older builds) read as zero load.
ALTER TABLE silos ADD COLUMN ops_per_second double precision NOT NULL DEFAULT 0 CHECK (ops_per_second >= 0);
ALTER TABLE silos ADD COLUMN activations integer NOT NULL DEFAULT 0 CHECK (activations >= 0);

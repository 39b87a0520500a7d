-- Run by the postgres image on first start (empty data directory) as
-- POSTGRES_USER, which therefore owns every database. One database per
-- data-owning service; today only identity has a schema.
CREATE DATABASE identity;
CREATE DATABASE inventory;
CREATE DATABASE scheduler;
CREATE DATABASE github_sync;
CREATE DATABASE metrics;

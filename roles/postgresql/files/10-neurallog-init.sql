-- NeuralLog application database and user.
--
-- Run by the postgres image's entrypoint (psql, as the superuser) when the
-- data directory is initialised. The names come from the container
-- environment; the password from the file NEURALLOG_DB_PASSWORD_FILE names
-- (a mounted Secret; NEURALLOG_DB_PASSWORD when no file is given), never
-- from this file. Safe to run again: every statement creates only what is
-- missing and re-applies the rest.
\set ON_ERROR_STOP on
\getenv app_database NEURALLOG_DB_NAME
\getenv app_user NEURALLOG_DB_USER
\getenv app_password_file NEURALLOG_DB_PASSWORD_FILE
\if :{?app_password_file}
  \set app_password `cat -- "$NEURALLOG_DB_PASSWORD_FILE"`
\else
  \getenv app_password NEURALLOG_DB_PASSWORD
\endif

SELECT :{?app_database} AND :{?app_user} AND :{?app_password} AS env_set
\gset
\if :env_set
\else
  \warn 'NEURALLOG_DB_NAME, NEURALLOG_DB_USER and NEURALLOG_DB_PASSWORD_FILE (or NEURALLOG_DB_PASSWORD) must be set'
  SELECT 1 / 0 AS neurallog_environment_missing;
\endif
SELECT :'app_database' <> '' AND :'app_user' <> '' AND length(:'app_password') >= 16 AS env_valid
\gset
\if :env_valid
\else
  \warn 'NEURALLOG_DB_NAME and NEURALLOG_DB_USER must not be empty, the password (NEURALLOG_DB_PASSWORD_FILE) needs 16+ characters'
  SELECT 1 / 0 AS neurallog_environment_invalid;
\endif

SELECT format('CREATE ROLE %I LOGIN', :'app_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'app_user')
\gexec
ALTER ROLE :"app_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';

SELECT format('CREATE DATABASE %I OWNER %I', :'app_database', :'app_user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = :'app_database')
\gexec
ALTER DATABASE :"app_database" OWNER TO :"app_user";
REVOKE ALL ON DATABASE :"app_database" FROM PUBLIC;
GRANT ALL PRIVILEGES ON DATABASE :"app_database" TO :"app_user";

\connect :"app_database"
-- PostgreSQL 15+ no longer lets every user create objects in `public`.
ALTER SCHEMA public OWNER TO :"app_user";

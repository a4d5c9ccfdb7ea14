-- Make the governance audit trail append-only on PostgreSQL.
--
-- 1. A trigger on audit_event and audit_checkpoint raises on UPDATE, DELETE and TRUNCATE, for every
--    role (the table owner and superusers too, unless they explicitly disable the trigger).
-- 2. UPDATE, DELETE and TRUNCATE are revoked on both tables from the application role (and PUBLIC),
--    so the application's own credentials cannot rewrite history even with the trigger dropped.
--    INSERT and SELECT stay: appends keep working.
--
-- The application role must not own the tables and must not be a superuser (an owner can drop the
-- trigger and grant itself the privileges back); run migrations as a separate owner role.
--
-- Apply with the gov command (records an audit event):
--     gov --catalog postgresql+psycopg://owner@host/db audit harden --role APP_ROLE
-- or with psql:
--     PGOPTIONS="-c governance.app_role=APP_ROLE" psql "postgresql://owner@host/db" \
--         -v ON_ERROR_STOP=1 -1 -f audit_append_only.sql
-- Idempotent: running it again changes nothing.

CREATE OR REPLACE FUNCTION governance_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'governance audit trail is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$fn$;

DROP TRIGGER IF EXISTS governance_append_only_rows ON audit_event;
CREATE TRIGGER governance_append_only_rows BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
DROP TRIGGER IF EXISTS governance_append_only_truncate ON audit_event;
CREATE TRIGGER governance_append_only_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION governance_audit_append_only();

DROP TRIGGER IF EXISTS governance_append_only_rows ON audit_checkpoint;
CREATE TRIGGER governance_append_only_rows BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION governance_audit_append_only();
DROP TRIGGER IF EXISTS governance_append_only_truncate ON audit_checkpoint;
CREATE TRIGGER governance_append_only_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION governance_audit_append_only();

DO $do$
DECLARE
    app_role text := current_setting('governance.app_role', true);
BEGIN
    IF app_role IS NULL OR app_role = '' THEN
        RAISE EXCEPTION 'set governance.app_role to the application role, e.g. PGOPTIONS="-c governance.app_role=app"';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
        RAISE EXCEPTION 'no PostgreSQL role named %', app_role;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role AND rolsuper) THEN
        RAISE EXCEPTION 'role % is a superuser: it bypasses privileges; use an ordinary application role', app_role;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_tables WHERE tablename IN ('audit_event', 'audit_checkpoint')
               AND schemaname = current_schema() AND tableowner = app_role) THEN
        RAISE EXCEPTION 'role % owns the audit tables: an owner can drop the trigger; run the application as a role that does not own them', app_role;
    END IF;
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_event, audit_checkpoint FROM %I, PUBLIC', app_role);
END
$do$;

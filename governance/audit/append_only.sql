-- Make the governance audit trail append-only on PostgreSQL, and the state the gate reads writable
-- only through the audited path.
--
-- 1. A trigger on audit_event and audit_checkpoint raises on UPDATE, DELETE and TRUNCATE, for every
--    role (the table owner and superusers too, unless they explicitly disable the trigger).
-- 2. UPDATE, DELETE and TRUNCATE are revoked on both tables from the application role (and PUBLIC),
--    so the application's own credentials cannot rewrite history even with the trigger dropped.
--    INSERT and SELECT stay: appends keep working.
-- 3. State tables (registry, policy, waivers, approvals, signed statements, lineage): every row a
--    transaction writes is recorded in audit_touch by migration 0006's trigger (SECURITY DEFINER), and a
--    deferred constraint trigger checks at COMMIT that an audit event inserted by the same transaction
--    binds each of them (its state map names the row); otherwise the COMMIT fails.  Whether the bound
--    content matches is the gate's check (digests).  The application role loses every write privilege
--    on audit_touch (only the trigger writes it) and TRUNCATE on the state tables (TRUNCATE fires no
--    row trigger); it must own none of them (an owner could disable the triggers).
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
BEGIN
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION governance_state_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = %I, pg_temp AS $g$
DECLARE
    me text := pg_current_xact_id()::text;
    loose record;
BEGIN
    IF current_setting('governance.state_checked', true) = me THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('governance.state_checked', me, true);
    WITH bound AS (
        SELECT s.key AS tbl, r.key AS row_id
        FROM audit_touch e
        JOIN audit_event a ON a.seq = e.row_id
        CROSS JOIN LATERAL jsonb_each(COALESCE(convert_from(a.payload, 'UTF8')::jsonb -> 'state', '{}'::jsonb)) s
        CROSS JOIN LATERAL jsonb_object_keys(s.value) r(key)
        WHERE e.xid = me AND e.tbl = 'audit_event')
    SELECT t.tbl, t.row_id INTO loose
    FROM audit_touch t LEFT JOIN bound b ON b.tbl = t.tbl AND b.row_id = t.row_id::text
    WHERE t.xid = me AND t.tbl <> 'audit_event' AND b.tbl IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'governance: %% %% was written without an audit event that binds it; write through the audited path', loose.tbl, loose.row_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM audit_touch WHERE xid = me;
    RETURN NULL;
END;
$g$ $f$, current_schema());
END
$do$;

-- the events a transaction inserts are recorded too, so the check finds this transaction's events
DROP TRIGGER IF EXISTS governance_touch ON audit_event;
CREATE TRIGGER governance_touch AFTER INSERT ON audit_event
    FOR EACH ROW EXECUTE FUNCTION governance_touch();

DROP TRIGGER IF EXISTS governance_state_guard ON audit_touch;
CREATE CONSTRAINT TRIGGER governance_state_guard AFTER INSERT ON audit_touch
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION governance_state_guard();

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
    IF EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tableowner = app_role
               AND tablename IN ('approval', 'check_result', 'column_lineage', 'dataset', 'dataset_field',
                                 'dataset_version', 'evidence', 'job', 'model', 'model_alias', 'model_version',
                                 'policy_evaluation', 'promotion_event', 'run', 'run_io', 'signed_statement',
                                 'waiver', 'audit_touch')) THEN
        RAISE EXCEPTION 'role % owns state tables: an owner can disable their triggers; run the application as a role that does not own them', app_role;
    END IF;
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_event, audit_checkpoint FROM %I, PUBLIC', app_role);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_touch FROM %I, PUBLIC', app_role);
    EXECUTE format('GRANT SELECT ON audit_touch TO %I', app_role);
    EXECUTE format('REVOKE TRUNCATE ON approval, check_result, column_lineage, dataset, dataset_field, '
                   'dataset_version, evidence, job, model, model_alias, model_version, policy_evaluation, '
                   'promotion_event, run, run_io, signed_statement, waiver FROM %I, PUBLIC', app_role);
END
$do$;

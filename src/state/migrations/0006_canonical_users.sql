-- canonical_users: every piece of per-user state is keyed by the canonical user name
-- (`canonical_user()`, portcullis_config::UserKey: trimmed, NFKC, case-folded), so `ALICE`
-- finds alice's devices, lockouts and delivered-code address. Rows written under a variant
-- of a name are rekeyed; two rows that become one keep the stricter values.

UPDATE mfa_devices SET user = canonical_user(user);

CREATE TABLE mfa_failures_canonical (
    user         TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    lockouts     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
) STRICT;
INSERT INTO mfa_failures_canonical
    SELECT canonical_user(user), max(failures), max(lockouts), max(locked_until)
    FROM mfa_failures GROUP BY canonical_user(user);
DROP TABLE mfa_failures;
ALTER TABLE mfa_failures_canonical RENAME TO mfa_failures;

-- A pending RADIUS challenge lives 300 s; the ones open during the upgrade are dropped.
DELETE FROM mfa_challenges;

CREATE TABLE throttle_canonical (
    key          TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    last_failure INTEGER NOT NULL
) STRICT;
INSERT INTO throttle_canonical
    SELECT CASE
               WHEN key LIKE 'user:remote:%' THEN 'user:remote:' || canonical_user(substr(key, 13))
               WHEN key LIKE 'user:loopback:%' THEN 'user:loopback:' || canonical_user(substr(key, 15))
               ELSE key
           END AS canonical,
           max(failures), max(locked_until), max(last_failure)
    FROM throttle GROUP BY canonical;
DROP TABLE throttle;
ALTER TABLE throttle_canonical RENAME TO throttle;

-- The MFA service keeps the id its callers chose; the gateway finds its users by key.
ALTER TABLE mfa_users ADD COLUMN user_key TEXT NOT NULL DEFAULT '';
UPDATE mfa_users SET user_key = canonical_user(id);
CREATE INDEX mfa_users_by_key ON mfa_users (application_id, user_key);

-- The audit log keeps the name as typed (`user`) and is searched by key.
ALTER TABLE audit_events ADD COLUMN user_key TEXT NOT NULL DEFAULT '';
UPDATE audit_events SET user_key = canonical_user(user);
DROP INDEX audit_events_kind_user;
CREATE INDEX audit_events_kind_user_key ON audit_events (kind, user_key);

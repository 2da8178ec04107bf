-- mfa_service: the MFA service's applications, their users and addresses, pending one-time
-- codes (hashed), send times and failure counters. Times are Unix seconds.

-- The HMAC-SHA256 key of the code hashes: 32 random bytes, made by the daemon on first use.
CREATE TABLE mfa_key (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL
) STRICT;

CREATE TABLE mfa_applications (
    id                           TEXT PRIMARY KEY NOT NULL,
    name                         TEXT NOT NULL UNIQUE,
    description                  TEXT NOT NULL,
    auth_code_length             INTEGER NOT NULL,
    auth_token_type              TEXT NOT NULL,
    auth_token_validity_duration INTEGER NOT NULL,
    auth_token_prefix            TEXT NOT NULL,
    auth_token_delivery_methods  TEXT NOT NULL,
    associate_template           TEXT NOT NULL,
    display_name                 TEXT NOT NULL,
    login_template               TEXT NOT NULL,
    message_from                 TEXT NOT NULL,
    created                      INTEGER NOT NULL,
    updated                      INTEGER NOT NULL,
    version_number               INTEGER NOT NULL
) STRICT;

-- status: INITIAL (no address), VALIDATION PENDING, VALIDATED. failures counts consecutive
-- wrong codes; at the limit locked_until is set and failures start again from 0.
CREATE TABLE mfa_users (
    application_id TEXT NOT NULL REFERENCES mfa_applications (id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    user_address   TEXT NOT NULL,
    status         TEXT NOT NULL,
    created        INTEGER NOT NULL,
    updated        INTEGER NOT NULL,
    version_number INTEGER NOT NULL,
    failures       INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (application_id, id)
) STRICT;

-- At most one outstanding code per user: the last one sent. purpose: associate or login.
CREATE TABLE mfa_codes (
    application_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    address        TEXT NOT NULL,
    hash           BLOB NOT NULL,
    expires        INTEGER NOT NULL,
    PRIMARY KEY (application_id, user_id),
    FOREIGN KEY (application_id, user_id)
        REFERENCES mfa_users (application_id, id) ON DELETE CASCADE
) STRICT;

-- When codes were sent (or tried), for the per-user send limit; old rows are pruned.
CREATE TABLE mfa_sends (
    application_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    at             INTEGER NOT NULL
) STRICT;
CREATE INDEX mfa_sends_by_user ON mfa_sends (application_id, user_id, at);

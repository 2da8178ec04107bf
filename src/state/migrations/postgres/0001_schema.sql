-- The state shared by every node of one deployment: the same tables as the SQLite schema
-- (src/state/migrations/0001..), as they stand after its last migration. Times are Unix
-- seconds unless a column says otherwise; per-user rows are keyed by the canonical user name
-- (portcullis_config::UserKey). `user` is a reserved word here, so user columns are `username`.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every login attempt and configuration change of every node, newest last (id grows).
CREATE TABLE audit_events (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    node       TEXT NOT NULL,             -- the node that recorded it ([state] node)
    kind       TEXT NOT NULL,             -- 'login' or 'config'
    username   TEXT NOT NULL,             -- the name given; '-' when unknown
    user_key   TEXT NOT NULL,
    source     TEXT NOT NULL,
    action     TEXT NOT NULL,
    result     TEXT NOT NULL,
    reason     TEXT,
    method     TEXT,
    server     TEXT,
    latency_ms BIGINT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_kind_user_key ON audit_events (kind, user_key);

-- The MFA service: the HMAC key of code hashes, applications, users, codes, send times.
CREATE TABLE mfa_key (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    key BYTEA NOT NULL
);

CREATE TABLE mfa_applications (
    id                           TEXT PRIMARY KEY,
    name                         TEXT NOT NULL UNIQUE,
    description                  TEXT NOT NULL,
    auth_code_length             BIGINT NOT NULL,
    auth_token_type              TEXT NOT NULL,
    auth_token_validity_duration BIGINT NOT NULL,
    auth_token_prefix            TEXT NOT NULL,
    auth_token_delivery_methods  TEXT NOT NULL,
    associate_template           TEXT NOT NULL,
    display_name                 TEXT NOT NULL,
    login_template               TEXT NOT NULL,
    message_from                 TEXT NOT NULL,
    created                      BIGINT NOT NULL,
    updated                      BIGINT NOT NULL,
    version_number               BIGINT NOT NULL
);

CREATE TABLE mfa_users (
    application_id TEXT NOT NULL REFERENCES mfa_applications (id) ON DELETE CASCADE,
    id             TEXT NOT NULL,
    user_key       TEXT NOT NULL,
    user_address   TEXT NOT NULL,
    status         TEXT NOT NULL,
    created        BIGINT NOT NULL,
    updated        BIGINT NOT NULL,
    version_number BIGINT NOT NULL,
    failures       BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (application_id, id)
);
CREATE INDEX mfa_users_by_key ON mfa_users (application_id, user_key);

CREATE TABLE mfa_codes (
    application_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    address        TEXT NOT NULL,
    hash           BYTEA NOT NULL,
    expires        BIGINT NOT NULL,
    PRIMARY KEY (application_id, user_id),
    FOREIGN KEY (application_id, user_id)
        REFERENCES mfa_users (application_id, id) ON DELETE CASCADE
);

CREATE TABLE mfa_sends (
    application_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX mfa_sends_by_user ON mfa_sends (application_id, user_id, at);

-- Paired TOTP devices; `secret` sealed under the nodes' shared mfa.key; `last_step` is the
-- last accepted TOTP step, advanced by one conditional UPDATE so a code is accepted once.
CREATE TABLE mfa_devices (
    id        TEXT PRIMARY KEY,
    username  TEXT NOT NULL,
    name      TEXT NOT NULL,
    os        TEXT NOT NULL,
    secret    BYTEA NOT NULL,
    created   BIGINT NOT NULL,
    updated   BIGINT NOT NULL,
    activated BIGINT,
    last_used BIGINT,
    last_step BIGINT
);
CREATE INDEX mfa_devices_by_user ON mfa_devices (username);

-- RADIUS Access-Challenges waiting for their code, by the SHA-256 of the State.
CREATE TABLE mfa_challenges (
    state_hash BYTEA PRIMARY KEY,
    username   TEXT NOT NULL,
    client_id  BIGINT NOT NULL,
    source     TEXT NOT NULL,
    roles      TEXT NOT NULL,
    method     TEXT NOT NULL,
    expires    BIGINT NOT NULL
);
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires);

CREATE TABLE mfa_failures (
    username     TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    lockouts     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

-- The brute-force throttle's counts, one row per key for all nodes: each node adds the
-- failures it counted (or replaces the row when it cleared it) and notifies
-- `portcullis_throttle`, so every node's copy in memory follows.
CREATE TABLE throttle (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    last_failure BIGINT NOT NULL
);

-- Upstream RADIUS Access-Challenges relayed to a user and waiting for the answer, by the
-- SHA-256 of the gateway's handle (a partial token, a front-end State), so that any node can
-- take the answer. `party`: `rest` or `radius:<client id>:<source>`.
CREATE TABLE upstream_dialogues (
    handle_hash BYTEA PRIMARY KEY,
    username    TEXT NOT NULL,
    party       TEXT NOT NULL,
    server      TEXT NOT NULL,
    state       BYTEA NOT NULL,             -- the upstream's State
    messages    TEXT NOT NULL,              -- JSON array of Reply-Messages
    echo        BOOLEAN NOT NULL,
    round       INTEGER NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX upstream_dialogues_by_expiry ON upstream_dialogues (expires_ms);

-- Bearer tokens of REST logins, by the SHA-256 of the token (never the token).
CREATE TABLE sessions (
    seq        BIGSERIAL PRIMARY KEY,
    hash       BYTEA NOT NULL UNIQUE,
    username   TEXT NOT NULL,
    roles      TEXT NOT NULL,
    method     TEXT NOT NULL,
    expires_ns BIGINT NOT NULL,
    partial    BOOLEAN NOT NULL,
    grant_hash BYTEA
);

-- The configuration every node shares (all but each node's listeners and [state]), one row
-- per version; the newest is live. A write names the version it was made from, so two
-- writes from one version cannot both land.
CREATE TABLE config_versions (
    version    BIGINT PRIMARY KEY,
    document   TEXT NOT NULL,             -- TOML, secrets included
    node       TEXT NOT NULL,             -- the node that stored it
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

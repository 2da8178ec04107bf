-- mfa_devices: TOTP authenticator apps paired by users, RADIUS challenges waiting for a code,
-- and failed second factors per user (lockout).

-- One paired device. `secret` is sealed (ChaCha20-Poly1305 under mfa.key, the id as associated
-- data); `activated` is NULL while the device waits for its first code; `last_step` is the
-- last TOTP time step accepted (a code of that step or an older one is refused).
CREATE TABLE mfa_devices (
    id        TEXT PRIMARY KEY NOT NULL,
    user      TEXT NOT NULL,
    name      TEXT NOT NULL,
    os        TEXT NOT NULL,
    secret    BLOB NOT NULL,
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL,
    activated INTEGER,
    last_used INTEGER,
    last_step INTEGER
) STRICT;
CREATE INDEX mfa_devices_by_user ON mfa_devices (user);

-- A RADIUS Access-Challenge waiting for its code: the SHA-256 of the State sent, bound to the
-- user and the client (front-end client id and source address), with what the first factor
-- granted.
CREATE TABLE mfa_challenges (
    state_hash BLOB PRIMARY KEY NOT NULL,
    user       TEXT NOT NULL,
    client_id  INTEGER NOT NULL,
    source     TEXT NOT NULL,
    roles      TEXT NOT NULL,
    method     TEXT NOT NULL,
    expires    INTEGER NOT NULL
) STRICT;
CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires);

-- Failed second factors in a row per user; `lockouts` counts the lockouts since the last
-- success (each doubles the next one); `locked_until` is a Unix time.
CREATE TABLE mfa_failures (
    user         TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    lockouts     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
) STRICT;

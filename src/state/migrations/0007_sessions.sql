-- sessions: bearer tokens of REST logins (src/api/sessions.rs), kept across restarts.
-- Only the SHA-256 hash of a token is stored, never the token.
CREATE TABLE sessions (
    seq        INTEGER PRIMARY KEY,          -- creation order (oldest is evicted first)
    hash       BLOB NOT NULL UNIQUE,         -- SHA-256 of the token
    user       TEXT NOT NULL,                -- the name as typed at login
    roles      TEXT NOT NULL,                -- JSON array of the roles at login
    method     TEXT NOT NULL,                -- Local, RADIUS, TACACS+
    expires_ns INTEGER NOT NULL,             -- Unix nanoseconds
    partial    INTEGER NOT NULL,             -- 1: a second factor is still owed
    grant_hash BLOB                          -- Local sessions: SHA-256 of the local user's
                                             -- name, roles and password hash at login
) STRICT;

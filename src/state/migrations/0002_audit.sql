-- audit: every login attempt and every configuration change, newest last (id grows).
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,          -- seconds since the Unix epoch
    kind       TEXT NOT NULL,             -- 'login' or 'config'
    user       TEXT NOT NULL,             -- who (the name given; '-' when unknown)
    source     TEXT NOT NULL,             -- from where (address, 'unix' or 'signal')
    action     TEXT NOT NULL,             -- what: 'POST /api/auth/1.0/login', 'radius:<client>', ...
    result     TEXT NOT NULL,             -- accept, reject, unavailable / ok, refused, failed
    reason     TEXT,
    method     TEXT,                      -- the login method that decided
    server     TEXT,                      -- the upstream server that decided
    latency_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_kind_user ON audit_events (kind, user);

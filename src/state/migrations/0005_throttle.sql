-- throttle: consecutive failed logins per key (src/throttle.rs), kept across restarts.
-- key: `user:remote:<name>`, `user:loopback:<name>` or `source:<address>`.
CREATE TABLE throttle (
    key          TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,          -- consecutive failures
    locked_until INTEGER NOT NULL,          -- Unix seconds; 0 = not locked
    last_failure INTEGER NOT NULL           -- Unix seconds of the last counted failure
) STRICT;

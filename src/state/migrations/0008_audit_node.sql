-- audit_node: each event names the node that recorded it ([state] node, by default the host
-- name). Events recorded before the column existed were this node's; they keep '' here.
ALTER TABLE audit_events ADD COLUMN node TEXT NOT NULL DEFAULT '';

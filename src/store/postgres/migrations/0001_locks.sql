-- Run locks: one row per lock key, ever (the epoch only grows: a fencing
-- token). A lock is held while lease_until is in the future; released, its
-- lease_until is set to -infinity and the row keeps its last holder.
CREATE TABLE runbook_locks (
    key         text PRIMARY KEY,
    run_id      text NOT NULL,
    host        text NOT NULL,
    username    text NOT NULL,
    pid         integer NOT NULL,
    epoch       bigint NOT NULL,
    acquired    timestamptz NOT NULL,
    lease_until timestamptz NOT NULL
);

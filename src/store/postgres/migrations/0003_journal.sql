-- Run journals: one row per run (runbook_runs) and one per journal line
-- (runbook_journal), with the same bytes as the line of the run's
-- journal.jsonl (without its newline), hash chain included. A live run
-- renews `heartbeat` while it lives and sets `ended` when its process
-- lets go of the journal.
CREATE TABLE runbook_runs (
    run_id    text PRIMARY KEY,
    runbook   text NOT NULL,
    run_json  bytea NOT NULL,
    host      text NOT NULL,
    username  text NOT NULL,
    pid       integer NOT NULL,
    started   timestamptz NOT NULL DEFAULT now(),
    heartbeat timestamptz NOT NULL DEFAULT now(),
    ended     timestamptz
);
CREATE TABLE runbook_journal (
    run_id text NOT NULL REFERENCES runbook_runs (run_id),
    seq    bigint NOT NULL CHECK (seq > 0),
    line   text NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Approval requests, one row per question asked (a new ask of the same
-- run and key supersedes the older row: the newest `seq` is the question
-- that stands). The decision columns are NULL while it is pending; a
-- decision is placed once (UPDATE ... WHERE approved IS NULL) and
-- announced with NOTIFY runbook_approvals (payload: the request id).
CREATE TABLE runbook_approvals (
    id          text PRIMARY KEY,
    seq         bigserial UNIQUE,
    run_id      text NOT NULL,
    key         text NOT NULL,
    node        text NOT NULL,
    item        text,
    message     text NOT NULL,
    asked       text NOT NULL,
    timeout_ms  bigint,
    pid         integer NOT NULL,
    host        text NOT NULL,
    started_by  text,
    by_other    boolean NOT NULL DEFAULT false,
    approved    boolean,
    decided_by  text,
    reason      text,
    decided     text,
    via         text CHECK (via IN ('command', 'web', 'terminal', 'timeout', 'cancelled'))
);
CREATE INDEX runbook_approvals_run ON runbook_approvals (run_id, key, seq);
-- Attempts refused without answering (the run's starter approving an
-- `approve ... by other` step).
CREATE TABLE runbook_approval_refusals (
    seq         bigserial PRIMARY KEY,
    request_id  text NOT NULL REFERENCES runbook_approvals (id),
    by          text NOT NULL,
    via         text NOT NULL,
    reason      text,
    why         text NOT NULL,
    at          text NOT NULL
);

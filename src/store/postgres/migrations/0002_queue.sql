-- Run requests (`runbook enqueue`), claimed by workers (`runbook worker`)
-- with FOR UPDATE SKIP LOCKED. A claimed request is `running`, its worker
-- in claimed_by, and heartbeat renewed while the worker lives; a request
-- whose worker stopped heartbeating is handed back (`queued`) if its run
-- had not started, else marked `orphaned` (its journal is on the dead
-- worker's machine: `runbook resume` there).
CREATE TABLE runbook_queue (
    id          bigserial PRIMARY KEY,
    path        text NOT NULL,
    source      text NOT NULL,
    inputs      text[] NOT NULL,
    tag         text,
    state       text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'orphaned')),
    enqueued    timestamptz NOT NULL DEFAULT now(),
    claimed_by  text,
    claimed     timestamptz,
    heartbeat   timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    run_id      text,
    outcome     text,
    exit_code   integer,
    finished    timestamptz
);
CREATE INDEX runbook_queue_queued ON runbook_queue (id) WHERE state = 'queued';

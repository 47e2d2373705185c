-- `runbook serve --store` (issue 14). A request queued by the server
-- carries more than `runbook enqueue`'s: dry run or not, who started it
-- (`approve ... by other` refuses their approval), structured inputs of
-- `POST /runs` (a JSON object), the run id the worker gives its run
-- (chosen by the server, so that it can link to the run at once), and the
-- route and alert fingerprint that started it: while a request of a
-- (route, fingerprint) is queued, running or orphaned, the same alert
-- starts nothing (deduplication that outlives the server process).
ALTER TABLE runbook_queue
    ADD COLUMN dry_run        boolean NOT NULL DEFAULT false,
    ADD COLUMN started_by     text,
    ADD COLUMN input_values   text,
    ADD COLUMN planned_run_id text UNIQUE,
    ADD COLUMN route          text,
    ADD COLUMN fingerprint    text;
CREATE INDEX runbook_queue_alert ON runbook_queue (route, fingerprint)
    WHERE state IN ('queued', 'running', 'orphaned');
-- Proposals (a route in `propose` mode): a dry run waiting for someone to
-- approve the live run. `body` is the proposal as the server shows it
-- (JSON); a pending one holds its route and alert (deduplication). A
-- decision is placed once (UPDATE ... WHERE state = 'pending').
CREATE TABLE runbook_proposals (
    id          text PRIMARY KEY,
    route       text NOT NULL,
    fingerprint text NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'approved', 'denied', 'cancelled')),
    created     timestamptz NOT NULL DEFAULT now(),
    decided     timestamptz,
    body        text NOT NULL
);
CREATE INDEX runbook_proposals_pending ON runbook_proposals (route, fingerprint)
    WHERE state = 'pending';

-- What a takeover needs (issue 13): a run's owner epoch, the fencing
-- token of its journal (every journal insert names it; a takeover bumps
-- it, so the old owner's next insert fails and it starts nothing more),
-- and what another machine needs to go on with the run: the runbook's
-- source text, the text of the runbook.yaml it started with (NULL: none),
-- and its non-secret inputs as JSON (secrets are never stored: the
-- machine that takes over reads them from its own environment or files).
-- Rows written before this migration have no source: such a run cannot be
-- taken over (resume it where its run directory is).
ALTER TABLE runbook_runs
    ADD COLUMN epoch       bigint NOT NULL DEFAULT 0,
    ADD COLUMN source      text,
    ADD COLUMN source_name text,
    ADD COLUMN config      text,
    ADD COLUMN inputs      text;
CREATE INDEX runbook_runs_live ON runbook_runs (heartbeat) WHERE ended IS NULL;

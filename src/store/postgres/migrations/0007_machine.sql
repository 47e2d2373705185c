-- Which machine a run's owner process runs on, as far as its pid means
-- anything (issue 13): the kernel's boot id and the pid namespace. A
-- `runbook resume RUN_ID --store` on that machine whose owner process is
-- gone takes the run over at once instead of waiting for the grace. NULL
-- (rows written before this migration, or no /proc): the grace applies.
ALTER TABLE runbook_runs ADD COLUMN machine text;

//! The one JSON form of an event, used by every writer (the journal,
//! `--output json`, drills, tests): `seq, ts, t_ms, run_id, node?, kind`,
//! then the kind's fields in their documented order (`docs/decision-log.md`),
//! an optional field left out when it is `None` or an empty list.
//!
//! Written by hand, as ripgrep's JSON printer is, rather than derived: the
//! derived form needed `#[serde(flatten)]`, which buffers every event into
//! a map first, and a second hand-written writer beside it for speed. The
//! journal hashes these bytes, so they must not change:
//! `tests/it/event_json.rs` holds them to a golden file, and reading them back
//! (serde's derived `Deserialize` in `kinds.rs`) to the same event.

use super::{Event, EventKind};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::time::Duration;

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("ts", &*self.ts)?;
        map.serialize_entry("t_ms", &self.t_ms)?;
        map.serialize_entry("run_id", &*self.run_id)?;
        if let Some(node) = &self.node {
            map.serialize_entry("node", &**node)?;
        }
        map.serialize_entry("kind", self.kind.name())?;
        self.kind.serialize_fields(&mut Fields(&mut map))?;
        map.end()
    }
}

/// The entries of one event's map, with the two ways an optional field is
/// left out.
struct Fields<'a, M>(&'a mut M);

impl<M: SerializeMap> Fields<'_, M> {
    fn put<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), M::Error> {
        self.0.serialize_entry(key, v)
    }

    /// Left out when `None`.
    fn opt<T: Serialize>(&mut self, key: &'static str, v: &Option<T>) -> Result<(), M::Error> {
        match v {
            Some(v) => self.put(key, v),
            None => Ok(()),
        }
    }

    /// Left out when empty.
    fn list<T: Serialize>(&mut self, key: &'static str, v: &[T]) -> Result<(), M::Error> {
        if v.is_empty() {
            Ok(())
        } else {
            self.put(key, v)
        }
    }

    /// As `plan::dur::option` writes a duration (`"5m 30s"`); left out when
    /// `None`.
    fn duration(&mut self, key: &'static str, d: &Option<Duration>) -> Result<(), M::Error> {
        self.opt(key, &d.map(Humantime))
    }
}

struct Humantime(Duration);

impl Serialize for Humantime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl EventKind {
    /// Every field of the kind, in order. Every field is named (no `..`):
    /// a field added to a kind does not compile until it is written here.
    fn serialize_fields<M: SerializeMap>(&self, f: &mut Fields<'_, M>) -> Result<(), M::Error> {
        match self {
            EventKind::RunStarted {
                format,
                runbook,
                title,
                mode,
                inputs,
                secrets,
                source_sha256,
                parallel,
                notes,
            } => {
                f.put("format", format)?;
                f.put("runbook", runbook)?;
                f.opt("title", title)?;
                f.put("mode", mode)?;
                f.put("inputs", inputs)?;
                f.put("secrets", secrets)?;
                f.put("source_sha256", source_sha256)?;
                f.put("parallel", parallel)?;
                f.list("notes", notes)
            }
            EventKind::NodeReady { deps } => f.put("deps", deps),
            EventKind::ConditionEvaluated {
                purpose,
                expr,
                values,
                result,
                error,
                note,
            } => {
                f.put("purpose", purpose)?;
                f.put("expr", expr)?;
                f.put("values", values)?;
                f.put("result", result)?;
                f.opt("error", error)?;
                f.opt("note", note)
            }
            EventKind::NodeSkipped { reason, values } => {
                f.put("reason", reason)?;
                f.put("values", values)
            }
            EventKind::ActionStarted {
                adapter,
                phase,
                attempt,
                item,
                effect,
                request,
                timeout,
                simulated,
            } => {
                f.put("adapter", adapter)?;
                f.put("phase", phase)?;
                f.put("attempt", attempt)?;
                f.opt("item", item)?;
                f.put("effect", effect)?;
                f.put("request", request)?;
                f.duration("timeout", timeout)?;
                f.put("simulated", simulated)
            }
            EventKind::ActionFinished {
                adapter,
                phase,
                attempt,
                item,
                status,
                exit,
                http_status,
                elapsed_ms,
                output,
                error,
            } => {
                f.put("adapter", adapter)?;
                f.put("phase", phase)?;
                f.put("attempt", attempt)?;
                f.opt("item", item)?;
                f.put("status", status)?;
                f.opt("exit", exit)?;
                f.opt("http_status", http_status)?;
                f.put("elapsed_ms", elapsed_ms)?;
                f.opt("output", output)?;
                f.opt("error", error)
            }
            EventKind::CheckEvaluated {
                check,
                probe,
                status,
                passed,
                observed,
                expects,
                error,
                note,
            } => {
                f.put("check", check)?;
                f.put("probe", probe)?;
                f.put("status", status)?;
                f.put("passed", passed)?;
                f.put("observed", observed)?;
                f.put("expects", expects)?;
                f.opt("error", error)?;
                f.opt("note", note)
            }
            EventKind::RetryScheduled {
                attempt,
                delay_ms,
                reason,
                item,
            } => {
                f.put("attempt", attempt)?;
                f.put("delay_ms", delay_ms)?;
                f.put("reason", reason)?;
                f.opt("item", item)
            }
            EventKind::Timeout {
                phase,
                attempt,
                after_ms,
                item,
            } => {
                f.put("phase", phase)?;
                f.put("attempt", attempt)?;
                f.put("after_ms", after_ms)?;
                f.opt("item", item)
            }
            EventKind::VerifyPoll {
                poll,
                passed,
                streak,
                needed,
                remaining_ms,
            } => {
                f.put("poll", poll)?;
                f.put("passed", passed)?;
                f.put("streak", streak)?;
                f.put("needed", needed)?;
                f.put("remaining_ms", remaining_ms)
            }
            EventKind::CaptureStored {
                name,
                format,
                value,
            } => {
                f.put("name", name)?;
                f.put("format", format)?;
                f.put("value", value)
            }
            EventKind::NodeSucceeded {
                attempts,
                elapsed_ms,
                failed_items,
            } => {
                f.put("attempts", attempts)?;
                f.put("elapsed_ms", elapsed_ms)?;
                f.list("failed_items", failed_items)
            }
            EventKind::NodeFailed {
                reason,
                attempts,
                continued,
            } => {
                f.put("reason", reason)?;
                f.put("attempts", attempts)?;
                f.put("continued", continued)
            }
            EventKind::RollbackStarted {
                reason,
                plan,
                not_undone,
            } => {
                f.put("reason", reason)?;
                f.put("plan", plan)?;
                f.put("not_undone", not_undone)
            }
            EventKind::UndoFinished {
                ok,
                attempts,
                items,
                error,
            } => {
                f.put("ok", ok)?;
                f.put("attempts", attempts)?;
                f.list("items", items)?;
                f.opt("error", error)
            }
            EventKind::RollbackFinished {
                clean,
                failed_undos,
                after_rollback_verified,
            } => {
                f.put("clean", clean)?;
                f.put("failed_undos", failed_undos)?;
                f.opt("after_rollback_verified", after_rollback_verified)
            }
            EventKind::NotificationSent {
                channel,
                text,
                ok,
                http_status,
                simulated,
            } => {
                f.put("channel", channel)?;
                f.put("text", text)?;
                f.put("ok", ok)?;
                f.opt("http_status", http_status)?;
                f.put("simulated", simulated)
            }
            EventKind::ApprovalAsked {
                message,
                timeout,
                preapproved,
            } => {
                f.put("message", message)?;
                f.duration("timeout", timeout)?;
                f.put("preapproved", preapproved)
            }
            EventKind::ApprovalGiven { by, reason } | EventKind::ApprovalRefused { by, reason } => {
                f.put("by", by)?;
                f.opt("reason", reason)
            }
            EventKind::ApprovalAttemptRefused {
                by,
                via,
                reason,
                why,
            } => {
                f.put("by", by)?;
                f.put("via", via)?;
                f.opt("reason", reason)?;
                f.put("why", why)
            }
            EventKind::HandlerStarted { handler, actions } => {
                f.put("handler", handler)?;
                f.put("actions", actions)
            }
            EventKind::BranchTaken {
                branch,
                arm,
                taken,
                item,
                skipped,
            } => {
                f.put("branch", branch)?;
                f.put("arm", arm)?;
                f.put("taken", taken)?;
                f.opt("item", item)?;
                f.put("skipped", skipped)
            }
            EventKind::AttemptAbandoned {
                ladder,
                attempt,
                label,
                step,
                reason,
                plan,
                not_undone,
            } => {
                f.put("ladder", ladder)?;
                f.put("attempt", attempt)?;
                f.put("label", label)?;
                f.put("step", step)?;
                f.put("reason", reason)?;
                f.put("plan", plan)?;
                f.put("not_undone", not_undone)
            }
            EventKind::AttemptUndone {
                ladder,
                attempt,
                clean,
                failed_undos,
                next,
            } => {
                f.put("ladder", ladder)?;
                f.put("attempt", attempt)?;
                f.put("clean", clean)?;
                f.list("failed_undos", failed_undos)?;
                f.opt("next", next)
            }
            EventKind::CancelRequested { stage } => f.put("stage", stage),
            EventKind::Warning { message } => f.put("message", message),
            EventKind::RunTakenOver {
                by,
                host,
                pid,
                from_host,
                from_user,
                from_pid,
                silent_ms,
                owner_gone,
                old_epoch,
                new_epoch,
            } => {
                f.put("by", by)?;
                f.put("host", host)?;
                f.put("pid", pid)?;
                f.put("from_host", from_host)?;
                f.put("from_user", from_user)?;
                f.put("from_pid", from_pid)?;
                f.put("silent_ms", silent_ms)?;
                f.put("owner_gone", owner_gone)?;
                f.put("old_epoch", old_epoch)?;
                f.put("new_epoch", new_epoch)
            }
            EventKind::RunFinished {
                outcome,
                exit_code,
                elapsed_ms,
                failed_step,
                failure_reason,
                counts,
            } => {
                f.put("outcome", outcome)?;
                f.put("exit_code", exit_code)?;
                f.put("elapsed_ms", elapsed_ms)?;
                f.opt("failed_step", failed_step)?;
                f.opt("failure_reason", failure_reason)?;
                f.put("counts", counts)
            }
        }
    }
}

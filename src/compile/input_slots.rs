//! Durations and counts that name an input (`wait soak`, `retry attempts`,
//! `parallel batch`): the name must be a declared input of the right type
//! (`duration`, or `int` for a count). A value known when compiling (the
//! input's default, or the run's value: [`super::compile_with_inputs`]) is
//! in the AST, and the clause's own rules check it there, pointing at the
//! name; a value not known yet (a required input under `runbook check`)
//! is left out of those rules until the run starts.

use super::scope::Sym;
use super::Compiler;
use crate::ast::{self, SlotKind, SlotValue, SlotValues};
use crate::diagnostics::{did_you_mean, Code, Diag};
use crate::plan::{Type, Value};

impl Compiler<'_> {
    /// Checks every slot; returns the inputs they read, in order, once each.
    pub(super) fn input_slots(&mut self, rb: &ast::Runbook) -> Vec<String> {
        let mut read: Vec<String> = Vec::new();
        for slot in &rb.input_slots {
            let name = &slot.input.node;
            if !slot.bound {
                // Zero stands in for the value: the clause's rules (`retry
                // 0`, `every 0s`) must not judge it.
                self.invalid_literals.insert(slot.input.span);
            }
            let wanted = match slot.kind {
                SlotKind::Duration => Type::Duration,
                SlotKind::Count => Type::Int,
            };
            match self.globals.syms.get(name) {
                Some((Sym::Input(ty), _)) if *ty == wanted => {
                    super::mark_used(&mut self.used, name);
                    if !read.contains(name) {
                        read.push(name.clone());
                    }
                }
                Some((Sym::Input(ty), decl)) => {
                    super::mark_used(&mut self.used, name);
                    self.diags.push(
                        Diag::error(
                            Code::TypeMismatch,
                            format!(
                                "input `{name}` is {}, but {} is needed here",
                                super::an(ty),
                                slot.kind.noun()
                            ),
                        )
                        .label(slot.input.span, format!("needs {}", slot.kind.noun()))
                        .label(*decl, format!("declared as {}", super::an(ty)))
                        .help(format!("declare it `input {name}: {wanted}`")),
                    );
                }
                other => {
                    let mut d = Diag::error(Code::UnknownName, format!("no input named `{name}`"))
                        .label(
                            slot.input.span,
                            format!(
                                "{} or the name of {} input",
                                slot.kind.noun(),
                                super::an(&wanted)
                            ),
                        );
                    let fitting = rb
                        .inputs
                        .iter()
                        .map(|i| i.name.node.as_str())
                        .filter(|n| {
                            matches!(self.globals.syms.get(*n), Some((Sym::Input(t), _)) if *t == wanted)
                        });
                    d = match (other, did_you_mean(name, fitting)) {
                        (Some((sym, _)), _) => d.help(format!(
                            "`{name}` is a {}; declare an input, e.g. `input {name}_value: {wanted}`, or write a value like `{}`",
                            sym.describe(),
                            example(slot.kind)
                        )),
                        (None, Some(h)) => d.help(h),
                        (None, None) => d.help(format!(
                            "declare it, e.g. `input {name}: {wanted} = {}`, or write a value like `{}`",
                            example(slot.kind),
                            example(slot.kind)
                        )),
                    };
                    self.diags.push(d);
                }
            }
        }
        read
    }
}

fn example(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Duration => "5m",
        SlotKind::Count => "3",
    }
}

/// The values slots read: each input's default, replaced by the run's
/// value when given.
pub(super) fn slot_values<S: std::hash::BuildHasher>(
    rb: &ast::Runbook,
    given: Option<&indexmap::IndexMap<String, Value, S>>,
) -> SlotValues {
    // The run's inputs hold every default too (resolved): a value equal
    // to the default is reported as the default.
    let mut values = SlotValues::new();
    for i in &rb.inputs {
        let v = match i.default.as_ref().map(|l| &l.kind) {
            Some(ast::LiteralKind::Duration(d)) => Some(SlotValue::Duration(*d)),
            Some(ast::LiteralKind::Int(n)) => Some(SlotValue::Int(*n)),
            _ => None,
        };
        if let Some(v) = v {
            values.insert(i.name.node.clone(), v);
        }
    }
    for (k, v) in given.into_iter().flatten() {
        match v {
            Value::Duration(d) => values.insert(k.clone(), SlotValue::Duration(*d)),
            Value::Int(n) => values.insert(k.clone(), SlotValue::Int(*n)),
            _ => None,
        };
    }
    values
}

/// An error about a clause whose value came from an input says so: the
/// input's name and value, and how to give another.
pub(super) fn name_inputs(rb: &ast::Runbook, values: &SlotValues, diags: &mut [Diag]) {
    let defaults = slot_values::<std::hash::RandomState>(rb, None);
    for slot in rb.input_slots.iter().filter(|s| s.bound) {
        let name = &slot.input.node;
        let Some(v) = values.get(name) else { continue };
        let shown = match v {
            SlotValue::Duration(d) => humantime::format_duration(*d).to_string(),
            SlotValue::Int(n) => n.to_string(),
        };
        for d in diags
            .iter_mut()
            .filter(|d| d.is_error() && d.primary_span() == Some(slot.input.span))
        {
            let from = if defaults.get(name) == Some(v) {
                format!("{shown} is the default of input `{name}`: change the default (or give another value, `--input {name}=...`)")
            } else {
                format!("{shown} is the value of input `{name}` in this run: give another (`--input {name}=...`)")
            };
            d.help = Some(match d.help.take() {
                Some(h) => format!("{from}; {h}"),
                None => from,
            });
        }
    }
}

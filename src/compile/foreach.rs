//! `for X in [...] parallel N max_failures N { steps }`: per-item bodies.
//!
//! The list is written out in the runbook, so the body is unrolled here:
//! each step becomes one node per item, `STEP[ITEM]`, and everything that
//! works on nodes (journal, rollback in reverse completion order, keep
//! points, resume, drills, coverage, `plan`, `graph`) works on them. An
//! item's nodes depend on each other in order; the first node of item `i`
//! also depends on the last node of item `i - parallel`, so at most
//! `parallel` items run at once; the block's successors depend on the last
//! node of every item. The executor binds the loop variable from
//! [`plan::ForBlock`], keeps each item's captures apart, and counts failed
//! items against `max_failures` (`exec::scheduler`).

use super::scope::Scope;
use super::{an, Compiler};
use crate::ast;
use crate::diagnostics::{Code, Diag};
use crate::plan::{self, Type, Value};

impl Compiler<'_> {
    /// The nodes of a `for` block starting at scope index `start`, after
    /// the nodes `prev`. Returns the last node of each item.
    pub(super) fn for_to_nodes(
        &mut self,
        f: &ast::ForBlock,
        start: usize,
        prev: &[usize],
        nodes: &mut Vec<plan::Node>,
        edges: &mut Vec<plan::Edge>,
    ) -> Vec<usize> {
        let (items, elem) = self.for_items(f);
        self.for_var_name(&f.var);
        if let Some(p) = f.parallel.as_ref().filter(|p| p.node == 0) {
            self.diags.push(
                Diag::error(Code::InvalidParallel, "`parallel 0` would never run anything")
                    .label(p.span, "must be at least 1")
                    .help("`parallel N` runs up to N items at once; leave it out to run them one after another"),
            );
        }
        if f.steps.is_empty() {
            self.diags.push(
                Diag::error(Code::EmptyStep, "this `for` block has no steps")
                    .label(f.span, "nothing to run for each item")
                    .help("put the steps to run for each item inside: `for host in [\"a\", \"b\"] { step drain { run \"...\" } }`"),
            );
        }
        // Each step compiled once, with the loop variable in scope.
        self.for_var = Some((f.var.node.clone(), elem));
        let body: Vec<plan::Node> = f
            .steps
            .iter()
            .enumerate()
            .map(|(k, s)| self.step(s, start + k, false))
            .collect();
        self.for_var = None;

        let block = self.for_blocks.len();
        let parallel = f.parallel.as_ref().map_or(1, |p| p.node.max(1) as usize);
        let fb = plan::ForBlock {
            var: f.var.node.clone(),
            items,
            parallel,
            max_failures: f.max_failures.as_ref().map(|m| m.node as usize),
            steps: body.iter().map(|n| n.id.clone()).collect(),
            span: f.span,
        };
        let mut last: Vec<usize> = Vec::with_capacity(fb.items.len());
        for index in 0..fb.items.len() {
            let label = fb.item_label(index);
            let mut before: Vec<usize> = prev.to_vec();
            if index >= parallel {
                if let Some(&l) = last.get(index - parallel) {
                    before.push(l);
                }
            }
            for template in &body {
                let mut node = template.clone();
                node.id = format!("{}[{label}]", template.id);
                node.item = Some(plan::ItemRef { block, index });
                node.deps = before.iter().map(|&p| nodes[p].id.clone()).collect();
                for d in &node.deps {
                    edges.push(plan::Edge {
                        from: d.clone(),
                        to: node.id.clone(),
                    });
                }
                before = vec![nodes.len()];
                nodes.push(node);
            }
            if !body.is_empty() {
                last.push(nodes.len() - 1);
            }
        }
        self.for_blocks.push(fb);
        last
    }

    /// The items of the block's list: a list written out, of distinct
    /// strings or integers (they name the nodes).
    fn for_items(&mut self, f: &ast::ForBlock) -> (Vec<Value>, Type) {
        let scope = Scope {
            no_secrets: Some("the items of a `for` block are shown in step names"),
            ..Scope::default()
        };
        let (lowered, ty) = self.lowering().expr(&f.list, &scope);
        let items = match &lowered.kind {
            plan::ExprKind::Literal {
                value: Value::List(items),
            } => items.clone(),
            _ => {
                let what = match &ty {
                    Some(t) => an(t),
                    None => "a value".into(),
                };
                self.diags.push(
                    Diag::error(
                        Code::ForBodyList,
                        "the list of a `for` block with steps must be written out",
                    )
                    .label(f.list.span, format!("{what} known only when the run starts"))
                    .help("each step becomes one step per item, so the items are needed to build the plan: write them, `for member in [\"etcd-1\", \"etcd-2\"] { ... }`; a list known only at run time can drive a one-action `for` inside a step"),
                );
                return (Vec::new(), Type::String);
            }
        };
        let mut seen: Vec<String> = Vec::new();
        let mut elem = Type::String;
        for (i, v) in items.iter().enumerate() {
            let shown = match v {
                Value::String(s) if !s.is_empty() && !s.contains([']', '[']) => s.clone(),
                Value::Int(n) => {
                    elem = Type::Int;
                    n.to_string()
                }
                _ => {
                    self.diags.push(
                        Diag::error(
                            Code::ForBodyList,
                            format!("item {} of this `for` block cannot name a step", i + 1),
                        )
                        .label(f.list.span, "items must be non-empty strings without brackets, or integers")
                        .help("each item names the steps it runs (`defrag[etcd-2]`): use plain words such as `\"etcd-2\"`"),
                    );
                    continue;
                }
            };
            if seen.contains(&shown) {
                self.diags.push(
                    Diag::error(
                        Code::DuplicateName,
                        format!("item `{shown}` is listed twice"),
                    )
                    .label(f.list.span, "each item once")
                    .help("each item names the steps it runs: remove the repeated item"),
                );
            }
            seen.push(shown);
        }
        if items.is_empty() {
            self.diags.push(
                Diag::error(Code::ForBodyList, "this `for` block has no items")
                    .label(f.list.span, "empty list")
                    .help("list the items to run the steps for, or remove the block"),
            );
        }
        (items, elem)
    }

    /// A loop variable's name: not reserved, not hiding a runbook name.
    pub(super) fn for_var_name(&mut self, var: &ast::Ident) {
        if var.node == "now" {
            self.diags.push(
                Diag::error(Code::ReservedName, "`now` is a reserved name")
                    .label(var.span, "reserved for the current time in conditions")
                    .help("choose another name for the loop variable"),
            );
        } else if self.globals.syms.contains_key(&var.node) {
            self.diags.push(
                Diag::error(
                    Code::ShadowedName,
                    format!("loop variable `{}` hides a runbook name", var.node),
                )
                .label(var.span, "choose another name")
                .help(
                    "a loop variable must not reuse the name of an input, secret, check or capture",
                ),
            );
        }
    }
}

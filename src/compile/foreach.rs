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

use super::scope::{Scope, Sym};
use super::steps::{width, Lay};
use super::{an, Compiler};
use crate::ast;
use crate::diagnostics::{Code, Diag};
use crate::plan::{self, Type, Value};

impl Compiler<'_> {
    /// The nodes of a `for` block starting at scope index `start`, after
    /// the nodes `prev`, in the arm `arm` (if any). Returns the last nodes
    /// of each item.
    pub(super) fn for_to_nodes(
        &mut self,
        f: &ast::ForBlock,
        start: usize,
        prev: &[usize],
        lay: &mut Lay,
        arm: Option<plan::BranchRef>,
    ) -> Vec<usize> {
        let items = self.for_items(f);
        self.for_var_name(&f.var);
        if let Some(p) = f.parallel.as_ref().filter(|p| p.node == 0) {
            self.diags.push(
                Diag::error(Code::InvalidParallel, "`parallel 0` would never run anything")
                    .label(p.span, "must be at least 1")
                    .help("`parallel N` runs up to N items at once; leave it out to run them one after another"),
            );
        }
        if f.body.is_empty() {
            self.diags.push(
                Diag::error(Code::EmptyStep, "this `for` block has no steps")
                    .label(f.span, "nothing to run for each item")
                    .help("put the steps to run for each item inside: `for host in [\"a\", \"b\"] { step drain { run \"...\" } }`"),
            );
        }
        // The body compiled once, with the loop variable in scope, into a
        // template: its nodes depend on each other (a node with no
        // dependency is where an item starts), its branches on each other.
        self.for_var = Some((f.var.node.clone(), items.elem.clone()));
        let mut body = Lay {
            nodes: Vec::new(),
            edges: Vec::new(),
            branches: Vec::new(),
            ladders: Vec::new(),
        };
        let mut body_last = Vec::new();
        let mut at = start;
        for b in &f.body {
            body_last = self.nested_to_nodes(b, at, body_last, &mut body, None);
            at += width(b);
        }
        self.for_var = None;

        let block = self.for_blocks.len();
        let parallel = f.parallel.as_ref().map_or(1, |p| p.node.max(1) as usize);
        let fb = plan::ForBlock {
            var: f.var.node.clone(),
            items: items.values,
            input: items.input,
            pending: items.pending,
            parallel,
            max_failures: f.max_failures.as_ref().map(|m| m.node as usize),
            steps: body.nodes.iter().map(|n| n.id.clone()).collect(),
            span: f.span,
        };
        // Each item's last nodes: the first nodes of item `i` also wait
        // for those of item `i - parallel`.
        let mut item_last: Vec<Vec<usize>> = Vec::with_capacity(fb.items.len());
        for index in 0..fb.item_count() {
            let label = fb.item_label(index);
            let named = |id: &str| format!("{id}[{label}]");
            let item = Some(plan::ItemRef { block, index });
            let mut entry: Vec<String> = prev.iter().map(|&p| lay.nodes[p].id.clone()).collect();
            if let Some(l) = index.checked_sub(parallel).and_then(|i| item_last.get(i)) {
                entry.extend(l.iter().map(|&p| lay.nodes[p].id.clone()));
            }
            // The body's branches, one set per item.
            let base = lay.branches.len();
            let at = |r: Option<plan::BranchRef>| match r {
                Some(r) => Some(plan::BranchRef {
                    branch: base + r.branch,
                    arm: r.arm,
                }),
                None => arm,
            };
            for t in &body.branches {
                let mut br = t.clone();
                br.parent = at(t.parent);
                br.item = item;
                for a in &mut br.arms {
                    a.nodes = a.nodes.iter().map(|n| named(n)).collect();
                }
                lay.branches.push(br);
            }
            let first = lay.nodes.len();
            for template in &body.nodes {
                let mut node = template.clone();
                node.id = named(&template.id);
                node.item = item;
                node.branch = at(template.branch);
                node.deps = if template.deps.is_empty() {
                    entry.clone()
                } else {
                    template.deps.iter().map(|d| named(d)).collect()
                };
                for d in &node.deps {
                    lay.edges.push(plan::Edge {
                        from: d.clone(),
                        to: node.id.clone(),
                    });
                }
                lay.nodes.push(node);
            }
            item_last.push(body_last.iter().map(|&i| first + i).collect());
        }
        self.for_blocks.push(fb);
        item_last.into_iter().flatten().collect()
    }

    /// The items of the block's list: a list written out, or a list input
    /// (its value in this run, else its default; `pending` when neither is
    /// known, as under `runbook check`), of distinct strings or integers
    /// (they name the nodes).
    fn for_items(&mut self, f: &ast::ForBlock) -> Items {
        let scope = Scope {
            no_secrets: Some("the items of a `for` block are shown in step names"),
            ..Scope::default()
        };
        // A capture (`listed.members`, `pods[0]`...) is refused as such,
        // before the scope rules would call it out of reach.
        if let Some(step) = self.captured_root(&f.list) {
            self.diags.push(
                Diag::error(
                    Code::ForBodyList,
                    "the list of a `for` block with steps must be known before the run starts",
                )
                .label(
                    f.list.span,
                    format!("captured by step `{step}`: known only once it has run"),
                )
                .help("the steps of every item are laid out before the run starts (the journal, `resume` and drills name them), so the items must be known then: write them out, `for member in [\"etcd-1\", \"etcd-2\"] { ... }`, or take them as an input (`input members: list<string>`, given with `--input`); a list known only at run time can drive a one-action `for` inside a step"),
            );
            return Items {
                values: Vec::new(),
                elem: Type::String,
                input: None,
                pending: false,
            };
        }
        let (lowered, ty) = self.lowering().expr(&f.list, &scope);
        let elem_of = |ty: &Option<Type>| match ty {
            Some(Type::List(e)) if **e == Type::Int => Type::Int,
            _ => Type::String,
        };
        let mut input = None;
        let items = match &lowered.kind {
            plan::ExprKind::Literal {
                value: Value::List(items),
            } => items.clone(),
            plan::ExprKind::Ref(r)
                if r.root == plan::RefRoot::Input
                    && r.path.is_empty()
                    && matches!(ty, Some(Type::List(_))) =>
            {
                if !self.list_inputs.contains(&r.name) {
                    self.list_inputs.push(r.name.clone());
                }
                input = Some(r.name.clone());
                match self.given.get(&r.name) {
                    Some(Value::List(items)) => items.clone(),
                    _ => {
                        return Items {
                            values: Vec::new(),
                            elem: elem_of(&ty),
                            input,
                            pending: true,
                        }
                    }
                }
            }
            _ => {
                let what = match &ty {
                    Some(t) => an(t),
                    None => "a value".into(),
                };
                self.diags.push(
                    Diag::error(
                        Code::ForBodyList,
                        "the list of a `for` block with steps must be known before the run starts",
                    )
                    .label(f.list.span, format!("{what}, not a list written out or a list input"))
                    .help("write the items out, `for member in [\"etcd-1\", \"etcd-2\"] { ... }`, or name a list input (`input members: list<string>`)"),
                );
                return Items {
                    values: Vec::new(),
                    elem: Type::String,
                    input: None,
                    pending: false,
                };
            }
        };
        let from = |help: &str| {
            match &input {
            Some(name) => format!("{help} (the items are the value of input `{name}`: give another with `--input {name}=...`, or change its default)"),
            None => help.to_owned(),
        }
        };
        let mut seen: Vec<String> = Vec::new();
        let mut elem = elem_of(&ty);
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
                        .help(from("each item names the steps it runs (`defrag[etcd-2]`): use plain words such as `\"etcd-2\"`")),
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
                    .help(from(
                        "each item names the steps it runs: remove the repeated item",
                    )),
                );
            }
            seen.push(shown);
        }
        if items.is_empty() {
            self.diags.push(
                Diag::error(Code::ForBodyList, "this `for` block has no items")
                    .label(f.list.span, "empty list")
                    .help(from(
                        "list the items to run the steps for, or remove the block",
                    )),
            );
        }
        Items {
            values: items,
            elem,
            input,
            pending: false,
        }
    }

    /// The step that captures the value `e` is read from, if any.
    fn captured_root(&self, e: &ast::Expr) -> Option<String> {
        match &e.kind {
            ast::ExprKind::Path(p) => {
                match p.first().and_then(|n| self.globals.syms.get(&n.node)) {
                    Some((Sym::Capture { step, .. }, _)) => Some(step.clone()),
                    _ => None,
                }
            }
            ast::ExprKind::Index(v, _) | ast::ExprKind::Field(v, _) => self.captured_root(v),
            ast::ExprKind::Call(_, args) => args.iter().find_map(|a| self.captured_root(a)),
            _ => None,
        }
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

/// A `for` block's items, as [`Compiler::for_items`] found them.
struct Items {
    values: Vec<Value>,
    elem: Type,
    /// The list input they come from, if any.
    input: Option<String>,
    /// From an input whose value is not known yet: the body is laid out
    /// once, for the item `*`.
    pending: bool,
}

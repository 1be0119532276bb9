//! Checking the network: neuron types, groups, pathways (connectivity, summed
//! variables, delays, initial values), monitors and the environment binding.

use super::dynamics::{self, BodyKind, Sides};
use super::expr::{Checker, Decl, Place, Scope, eval_const};
use super::suggest::did_you_mean;
use crate::ast::{self, AssignOp, BodyItemKind, Item};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{
    Connectivity, Constant, Decision, EnvCode, Environment, Expr, Group, GroupKind, GroupSlice, Link, Monitor,
    MonitorKind, MonitorTarget, NeuronType, Object, Pathway, Period, Summed, Type, VarKind, VarRef, Variable,
};
use crate::span::Span;
use crate::units::Dimension;
use std::ops::Div;

/// Built-in group kinds besides neuron types.
const GENERATORS: [&str; 2] = ["PoissonGroup", "SpikeGeneratorGroup"];
/// Blocks of an environment binding.
const ENV_BLOCKS: [&str; 3] = ["sense", "act", "reward"];
/// Monitor kinds.
const MONITORS: [&str; 4] = ["spikes", "state", "rate", "weights"];

/// What the network check produces.
pub(crate) struct Checked {
    pub neuron_types: Vec<NeuronType>,
    pub groups: Vec<Group>,
    pub pathways: Vec<Pathway>,
    pub monitors: Vec<Monitor>,
    pub environment: Option<Environment>,
}

pub(crate) struct Network<'a> {
    constants: &'a [Constant],
    shared: &'a [Decl],
    pub neuron_types: Vec<NeuronType>,
    neuron_decls: Vec<Vec<Decl>>,
    pub groups: Vec<Group>,
    pub pathways: Vec<Pathway>,
    pub monitors: Vec<Monitor>,
    pub environment: Option<Environment>,
    /// The environments a binding may name.
    environments: &'a [crate::env::EnvironmentSpec],
    /// Neuron parameters already receiving a summed variable: (group, var, where).
    summed_targets: Vec<(usize, usize, Span)>,
    /// Groups and pathways whose definitions had errors: later uses are not reported again.
    failed: Vec<String>,
    /// Every group defined in the file, for "defined later" hints.
    all_groups: Vec<(String, Span)>,
}

impl<'a> Network<'a> {
    pub fn new(
        constants: &'a [Constant],
        shared: &'a [Decl],
        environments: &'a [crate::env::EnvironmentSpec],
    ) -> Network<'a> {
        Network {
            constants,
            shared,
            environments,
            neuron_types: Vec::new(),
            neuron_decls: Vec::new(),
            groups: Vec::new(),
            pathways: Vec::new(),
            monitors: Vec::new(),
            environment: None,
            summed_targets: Vec::new(),
            failed: Vec::new(),
            all_groups: Vec::new(),
        }
    }

    pub fn finish(self) -> Checked {
        Checked {
            neuron_types: self.neuron_types,
            groups: self.groups,
            pathways: self.pathways,
            monitors: self.monitors,
            environment: self.environment,
        }
    }

    pub fn check(&mut self, file: &ast::File, diags: &mut Diagnostics) {
        let no_sides = Sides::NONE;
        self.all_groups = file
            .items
            .iter()
            .filter_map(|i| if let Item::Group(g) = i { Some((g.name.name.clone(), g.name.span)) } else { None })
            .collect();
        for item in &file.items {
            if let Item::Neuron(def) = item {
                let checked = dynamics::check_body(def, BodyKind::Neuron, self.constants, self.shared, no_sides, diags);
                self.neuron_decls.push(checked.decls);
                self.neuron_types.push(NeuronType {
                    name: def.name.name.clone(),
                    dynamics: checked.dynamics,
                    threshold: checked.threshold,
                    reset: checked.reset,
                    refractory: checked.refractory,
                    span: def.span,
                });
            }
        }
        let synapse_defs: Vec<&ast::TypeDef> =
            file.items.iter().filter_map(|i| if let Item::Synapse(d) = i { Some(d) } else { None }).collect();
        let mut used = vec![false; synapse_defs.len()];
        for item in &file.items {
            match item {
                Item::Group(g) => self.group(g, diags),
                Item::Connect(c) => {
                    if let Some(k) = self.pathway(c, &synapse_defs, diags) {
                        used[k] = true;
                    }
                }
                _ => {}
            }
        }
        // A synapse type no pathway uses is still checked (its pre/post names unchecked).
        let mut unused = Vec::new();
        for (def, _) in synapse_defs.iter().zip(&used).filter(|(_, u)| !**u) {
            dynamics::check_body(def, BodyKind::Synapse, self.constants, self.shared, no_sides, diags);
            unused.push(
                Diagnostic::warning(
                    "W0002",
                    def.name.span,
                    format!("synapse type `{}` is not used by any `connect`", def.name.name),
                )
                .with_note("its code is checked, but names that may be postsynaptic variables can not be"),
            );
        }
        for item in &file.items {
            match item {
                Item::Monitor(m) => self.monitor(m, diags),
                Item::Environment(env) => self.environment(env, diags),
                _ => {}
            }
        }
        // Only worth saying about a file that is otherwise correct.
        if !diags.has_errors() {
            unused.into_iter().for_each(|w| diags.push(w));
        }
    }

    /// Checks a constant expression and returns its value and dimension.
    fn constant(&self, e: &ast::Expr, diags: &mut Diagnostics) -> Option<(f64, Type, Span)> {
        let scope = Scope::constant(self.constants);
        let checked = Checker::new(&scope, diags).expr(e)?;
        match eval_const(&checked, self.constants) {
            Some(v) => Some((v, checked.ty, checked.span)),
            None => {
                diags.push(
                    Diagnostic::error("E0412", checked.span, "expected a constant")
                        .with_label_message("not a constant"),
                );
                None
            }
        }
    }

    /// A dimensionless whole number in `min..=max`.
    fn count(&self, e: &ast::Expr, what: &str, min: f64, max: f64, diags: &mut Diagnostics) -> Option<u32> {
        let (value, ty, span) = self.constant(e, diags)?;
        if ty != Type::NUMBER {
            diags.push(Diagnostic::error("E0301", span, format!("{what} must be a number, found unit `{ty}`")));
            return None;
        }
        if value.fract() != 0.0 || value < min || value > max {
            let (message, label) = if value.fract() != 0.0 {
                (format!("{what} must be a whole number, found {value}"), "not a whole number")
            } else {
                (format!("{what} must be from {min} to {max}, found {value}"), "out of range")
            };
            diags.push(Diagnostic::error("E0411", span, message).with_label_message(label));
            return None;
        }
        // A whole number in u32 range, checked above.
        Some(value as u32)
    }

    fn find_group(&self, name: &ast::Ident, diags: &mut Diagnostics) -> Option<usize> {
        if let Some(k) = self.groups.iter().position(|g| g.name == name.name) {
            return Some(k);
        }
        if self.failed.contains(&name.name) {
            return None;
        }
        if let Some((_, span)) = self.all_groups.iter().find(|(n, s)| *n == name.name && s.start > name.span.start) {
            diags.push(
                Diagnostic::error("E0202", name.span, format!("group `{}` is used before it is defined", name.name))
                    .with_label_message("used here")
                    .with_secondary(*span, "defined here")
                    .with_note("define a group before the connects, monitors and links that use it"),
            );
            return None;
        }
        let mut d = Diagnostic::error("E0202", name.span, format!("unknown group `{}`", name.name))
            .with_label_message("no such group");
        if let Some(hint) = did_you_mean(&name.name, self.groups.iter().map(|g| g.name.as_str())) {
            d = d.with_note(hint);
        }
        diags.push(d.with_note("groups are defined with `group Name = Type(size)` before they are used"));
        None
    }

    /// The variables of a group (none for generators).
    fn group_variables(&self, group: usize) -> &[Variable] {
        match self.groups[group].kind {
            GroupKind::Neurons(t) => &self.neuron_types[t].dynamics.variables,
            _ => &[],
        }
    }

    fn group_decls(&self, group: usize) -> &[Decl] {
        match self.groups[group].kind {
            GroupKind::Neurons(t) => &self.neuron_decls[t],
            _ => &[],
        }
    }

    fn group_spikes(&self, group: usize) -> bool {
        match self.groups[group].kind {
            GroupKind::Neurons(t) => self.neuron_types[t].threshold.is_some(),
            _ => true,
        }
    }

    fn group(&mut self, g: &ast::GroupDef, diags: &mut Diagnostics) {
        let size = self.count(&g.size, "the group size", 1.0, f64::from(u32::MAX), diags);
        let type_name = g.type_name.name.as_str();
        let neuron_type = self.neuron_types.iter().position(|t| t.name == type_name);
        let kind = match (neuron_type, type_name) {
            (Some(t), _) => Some(GroupKind::Neurons(t)),
            (None, "PoissonGroup") => self.poisson(g, diags),
            (None, "SpikeGeneratorGroup") => size.and_then(|n| self.spike_generator(g, n, diags)),
            (None, _) => {
                let mut d = Diagnostic::error("E0202", g.type_name.span, format!("unknown neuron type `{type_name}`"))
                    .with_label_message("no such neuron type");
                let candidates = self.neuron_types.iter().map(|t| t.name.as_str()).chain(GENERATORS);
                if let Some(hint) = did_you_mean(type_name, candidates) {
                    d = d.with_note(hint);
                }
                diags.push(d.with_note("a group is made of a `neuron` type, `PoissonGroup` or `SpikeGeneratorGroup`"));
                None
            }
        };
        let (Some(kind), Some(size)) = (kind, size) else {
            self.failed.push(g.name.name.clone());
            return;
        };
        let mut group =
            Group { name: g.name.name.clone(), kind, size, init: Vec::new(), links: Vec::new(), span: g.span };
        if let GroupKind::Neurons(t) = group.kind {
            self.group_body(g, t, &mut group, diags);
        }
        self.groups.push(group);
    }

    /// Initial values and links of a neuron group.
    fn group_body(&self, g: &ast::GroupDef, t: usize, group: &mut Group, diags: &mut Diagnostics) {
        let decls = &self.neuron_decls[t];
        let variables = &self.neuron_types[t].dynamics.variables;
        let owner = format!("group `{}`", group.name);
        let scope = Scope {
            random: true,
            init: true,
            list_len: Some(group.size),
            owner: &owner,
            ..Scope::new(Place::Neuron, self.constants, self.shared, decls)
        };
        for stmt in &g.body {
            let var = variables.iter().position(|v| v.name == stmt.target.name.name && stmt.target.group.is_none());
            if let Some(k) = var.filter(|&k| variables[k].flags.linked) {
                if let Some(link) = self.link(stmt, k, &variables[k], group.size, diags) {
                    group.links.push(link);
                }
                continue;
            }
            if let Some(s) = Checker::new(&scope, diags).stmt(stmt, "group") {
                group.init.push(s);
            }
        }
        for (k, v) in variables.iter().enumerate().filter(|(_, v)| v.flags.linked) {
            if !group.links.iter().any(|l| l.var == k) {
                diags.push(
                    Diagnostic::error(
                        "E0419",
                        g.name.span,
                        format!("linked parameter `{}` of group `{}` is not linked", v.name, g.name.name),
                    )
                    .with_secondary(v.span, "declared `(linked)` here")
                    .with_note(format!("bind it in the group's body: `{} = OtherGroup.variable`", v.name)),
                );
            }
        }
    }

    /// `x = Other.y` for a `(linked)` parameter.
    fn link(
        &self,
        stmt: &ast::Stmt,
        var: usize,
        variable: &Variable,
        size: u32,
        diags: &mut Diagnostics,
    ) -> Option<Link> {
        let ast::ExprKind::Name { group: Some(source), name } = &stmt.value.kind else {
            diags.push(
                Diagnostic::error(
                    "E0419",
                    stmt.value.span,
                    format!("linked parameter `{}` must be bound to a variable of another group", variable.name),
                )
                .with_note(format!("write `{} = OtherGroup.variable`", variable.name)),
            );
            return None;
        };
        if stmt.op != AssignOp::Set {
            diags.push(Diagnostic::error("E0419", stmt.span, "a link is written with `=`"));
            return None;
        }
        let source_group = self.find_group(source, diags)?;
        let Some(source_var) = self.group_variables(source_group).iter().position(|v| v.name == name.name) else {
            diags.push(Diagnostic::error(
                "E0205",
                name.span,
                format!("group `{}` has no variable `{}`", source.name, name.name),
            ));
            return None;
        };
        let source_ty = self.group_variables(source_group)[source_var].ty;
        if source_ty != variable.ty {
            diags.push(Diagnostic::error(
                "E0301",
                stmt.value.span,
                format!(
                    "dimension mismatch in link: `{}` is `{}`, `{}.{}` is `{source_ty}`",
                    variable.name, variable.ty, source.name, name.name
                ),
            ));
            return None;
        }
        let source_size = self.groups[source_group].size;
        if source_size != size && source_size != 1 {
            diags.push(Diagnostic::error(
                "E0419",
                stmt.value.span,
                format!("group `{}` has {source_size} neurons, this group {size}: a link needs equal sizes (or a source of one neuron)", source.name),
            ));
            return None;
        }
        Some(Link { var, source_group, source_var })
    }

    fn poisson(&self, g: &ast::GroupDef, diags: &mut Diagnostics) -> Option<GroupKind> {
        let scope = Scope::new(Place::Neuron, self.constants, self.shared, &[]);
        let mut rates = None;
        for stmt in &g.body {
            if stmt.target.name.name != "rates" || stmt.target.group.is_some() || stmt.op != AssignOp::Set {
                diags.push(
                    Diagnostic::error(
                        "E0413",
                        stmt.target.span,
                        format!("unknown `PoissonGroup` setting `{}`", stmt.target.name.name),
                    )
                    .with_note("a PoissonGroup takes `rates = expression` (in Hz; may use `i` and `t`)"),
                );
                continue;
            }
            let Some(e) = Checker::new(&scope, diags).expr(&stmt.value) else {
                continue;
            };
            let hertz = Dimension::ONE.div(Dimension::TIME);
            if e.ty != Type::Float(hertz) {
                diags.push(Diagnostic::error(
                    "E0301",
                    e.span,
                    format!("`rates` must have unit `hertz`, found `{}`", e.ty),
                ));
                continue;
            }
            rates = Some(e);
        }
        if rates.is_none() && !g.body.iter().any(|s| s.target.name.name == "rates") {
            diags.push(
                Diagnostic::error("E0416", g.span, format!("`PoissonGroup` `{}` needs `rates`", g.name.name))
                    .with_note(format!("e.g. `group {} = PoissonGroup(100) {{ rates = 10 Hz }}`", g.name.name)),
            );
        }
        rates.map(|rates| GroupKind::Poisson { rates })
    }

    /// A list of constants, `[a, b, ...]`, optionally times or over a constant: `[5, 10]*ms`.
    fn constant_list(&self, e: &ast::Expr, diags: &mut Diagnostics) -> Option<Vec<(f64, Type, Span)>> {
        use ast::BinaryOp::{Div, Mul};
        match &e.kind {
            ast::ExprKind::List(items) => items.iter().map(|item| self.constant(item, diags)).collect(),
            ast::ExprKind::Binary(op @ (Mul | Div), a, b)
                if matches!(a.kind, ast::ExprKind::List(_)) != matches!(b.kind, ast::ExprKind::List(_)) =>
            {
                let list_first = matches!(a.kind, ast::ExprKind::List(_));
                let (list, scalar) = if list_first { (a, b) } else { (b, a) };
                let items = self.constant_list(list, diags)?;
                let (factor, factor_ty, _) = self.constant(scalar, diags)?;
                let (Some(fd), true) = (factor_ty.dim(), items.iter().all(|(_, t, _)| t.dim().is_some())) else {
                    diags.push(Diagnostic::error("E0311", e.span, "list entries must be numbers"));
                    return None;
                };
                let combine = |(x, ty, span): (f64, Type, Span)| {
                    let d = ty.dim().unwrap_or_default();
                    match (op, list_first) {
                        (Mul, _) => (x * factor, Type::Float(d * fd), span),
                        (_, true) => (x / factor, Type::Float(d / fd), span),
                        (_, false) => (factor / x, Type::Float(fd / d), span),
                    }
                };
                Some(items.into_iter().map(combine).collect())
            }
            _ => {
                diags.push(
                    Diagnostic::error("E0210", e.span, "expected a list `[a, b, ...]`")
                        .with_note("e.g. `times = [5, 10, 30]*ms`"),
                );
                None
            }
        }
    }

    fn index_list(&self, e: &ast::Expr, what: &str, size: u32, diags: &mut Diagnostics) -> Option<Vec<u32>> {
        let items = self.constant_list(e, diags)?;
        let mut out = Vec::with_capacity(items.len());
        for (v, ty, span) in items {
            if ty != Type::NUMBER || v.fract() != 0.0 || v < 0.0 || v >= f64::from(size) {
                diags.push(
                    Diagnostic::error(
                        "E0411",
                        span,
                        format!("{what} must be whole numbers from 0 to {}, found {v}", size.saturating_sub(1)),
                    )
                    .with_label_message("out of range"),
                );
                return None;
            }
            // A whole number below `size`, checked above.
            out.push(v as u32);
        }
        Some(out)
    }

    fn spike_generator(&self, g: &ast::GroupDef, size: u32, diags: &mut Diagnostics) -> Option<GroupKind> {
        let (mut indices, mut times) = (None, None);
        for stmt in &g.body {
            match stmt.target.name.name.as_str() {
                "indices" => indices = self.index_list(&stmt.value, "spike indices", size, diags),
                "times" => {
                    times = self.constant_list(&stmt.value, diags).and_then(|items| {
                        items
                            .into_iter()
                            .map(|(v, ty, span)| {
                                if ty != Type::Float(Dimension::TIME) || v < 0.0 || !v.is_finite() {
                                    diags.push(
                                        Diagnostic::error(
                                            "E0301",
                                            span,
                                            format!(
                                                "spike times must be non-negative durations, found `{v}` of unit `{ty}`"
                                            ),
                                        )
                                        .with_label_message("not a time"),
                                    );
                                    None
                                } else {
                                    Some(v)
                                }
                            })
                            .collect::<Option<Vec<f64>>>()
                    })
                }
                other => diags.push(
                    Diagnostic::error(
                        "E0413",
                        stmt.target.span,
                        format!("unknown `SpikeGeneratorGroup` setting `{other}`"),
                    )
                    .with_note("a SpikeGeneratorGroup takes `indices = [...]` and `times = [...]`"),
                ),
            }
        }
        match (indices, times) {
            (Some(indices), Some(times)) if indices.len() == times.len() => {
                Some(GroupKind::SpikeGenerator { indices, times })
            }
            (Some(indices), Some(times)) => {
                diags.push(Diagnostic::error(
                    "E0416",
                    g.span,
                    format!("`indices` has {} entries but `times` has {}", indices.len(), times.len()),
                ));
                None
            }
            _ => {
                if !g.body.iter().any(|s| s.target.name.name == "indices")
                    || !g.body.iter().any(|s| s.target.name.name == "times")
                {
                    diags.push(Diagnostic::error(
                        "E0416",
                        g.span,
                        format!("`SpikeGeneratorGroup` `{}` needs `indices` and `times`", g.name.name),
                    ));
                }
                None
            }
        }
    }

    fn endpoint(&self, e: &ast::Endpoint, diags: &mut Diagnostics) -> Option<GroupSlice> {
        let group = self.find_group(&e.group, diags)?;
        let size = self.groups[group].size;
        let (start, end) = match &e.slice {
            None => (0, size),
            Some((lo, hi)) => {
                let lo = self.count(lo, "a slice bound", 0.0, f64::from(size), diags)?;
                let hi = self.count(hi, "a slice bound", 0.0, f64::from(size), diags)?;
                if lo >= hi {
                    diags.push(
                        Diagnostic::error("E0411", e.span, format!("empty slice `{lo}:{hi}`"))
                            .with_label_message("no neurons"),
                    );
                    return None;
                }
                (lo, hi)
            }
        };
        Some(GroupSlice { group, start, end })
    }

    fn pathway(
        &mut self,
        c: &ast::ConnectDef,
        synapse_defs: &[&ast::TypeDef],
        diags: &mut Diagnostics,
    ) -> Option<usize> {
        let (source, target) = (self.endpoint(&c.source, diags), self.endpoint(&c.target, diags));
        let Some(def_index) = synapse_defs.iter().position(|d| d.name.name == c.synapse.name) else {
            let mut d =
                Diagnostic::error("E0202", c.synapse.span, format!("unknown synapse type `{}`", c.synapse.name))
                    .with_label_message("no such synapse type");
            if self.neuron_types.iter().any(|t| t.name == c.synapse.name) {
                d = d.with_note(format!("`{}` is a neuron type; `with` takes a synapse type", c.synapse.name));
            } else if let Some(hint) = did_you_mean(&c.synapse.name, synapse_defs.iter().map(|d| d.name.name.as_str()))
            {
                d = d.with_note(hint);
            }
            diags.push(d);
            return None;
        };
        let (Some(source), Some(target)) = (source, target) else {
            if let Some(name) = &c.name {
                self.failed.push(name.name.clone());
            }
            return Some(def_index);
        };
        let def = synapse_defs[def_index];
        let pre = self.group_decls(source.group).to_vec();
        let post = self.group_decls(target.group).to_vec();
        let (pre_group, post_group) = (self.groups[source.group].name.clone(), self.groups[target.group].name.clone());
        let sides = Sides {
            pre: Some(&pre),
            post: Some(&post),
            pre_group: &pre_group,
            post_group: &post_group,
            pathway: Some(c.span),
        };
        let checked = dynamics::check_body(def, BodyKind::Synapse, self.constants, self.shared, sides, diags);

        for (present, group, endpoint, what) in [
            (has_item(def, |k| matches!(k, BodyItemKind::OnPre(_))), source.group, &c.source, "on_pre"),
            (has_item(def, |k| matches!(k, BodyItemKind::OnPost(_))), target.group, &c.target, "on_post"),
        ] {
            if present && !self.group_spikes(group) {
                diags.push(
                    Diagnostic::error(
                        "E0410",
                        endpoint.span,
                        format!("group `{}` never spikes, so `{what}` never runs", self.groups[group].name),
                    )
                    .with_label_message("its neuron type has no threshold")
                    .with_note("add `threshold <condition>` to the neuron type"),
                );
            }
        }

        let summed = self.summed(&checked.dynamics.variables, &source, &target, c.span, diags);
        let scope_decls = checked.decls;
        let (connectivity, delay, init) = self.connect_body(c, &scope_decls, &pre, &post, &source, &target, diags);

        let base = c.name.as_ref().map_or_else(
            || format!("{}_{}", self.groups[source.group].name, self.groups[target.group].name),
            |n| n.name.clone(),
        );
        let mut name = base.clone();
        let mut k = 2;
        while self.pathways.iter().any(|p| p.name == name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        let mut dynamics = checked.dynamics;
        dynamics.init.extend(init);
        self.pathways.push(Pathway {
            name,
            synapse_type: def.name.name.clone(),
            source,
            target,
            dynamics,
            on_pre: checked.on_pre,
            on_post: checked.on_post,
            summed,
            connectivity,
            delay,
            span: c.span,
        });
        Some(def_index)
    }

    /// `x_post = expr : unit (summed)`: the target must be a parameter of the group, with the same unit,
    /// and no other summed variable may write it.
    fn summed(
        &mut self,
        variables: &[Variable],
        source: &GroupSlice,
        target: &GroupSlice,
        connect: Span,
        diags: &mut Diagnostics,
    ) -> Vec<crate::model::Summed> {
        let mut out = Vec::new();
        for (k, v) in variables.iter().enumerate().filter(|(_, v)| v.flags.summed) {
            let (base, group, side) = if let Some(b) = v.name.strip_suffix("_post") {
                (b, target.group, "postsynaptic")
            } else if let Some(b) = v.name.strip_suffix("_pre") {
                (b, source.group, "presynaptic")
            } else {
                diags.push(
                    Diagnostic::error(
                        "E0417",
                        v.span,
                        format!("summed variable `{}` must end in `_post` or `_pre`", v.name),
                    )
                    .with_note(format!("name the neuron parameter it sets, e.g. `{}_post`", v.name)),
                );
                continue;
            };
            let group_name = self.groups[group].name.clone();
            let Some(var) = self.group_variables(group).iter().position(|x| x.name == base) else {
                diags.push(
                    Diagnostic::error(
                        "E0417",
                        v.span,
                        format!(
                            "the {side} group `{group_name}` has no parameter `{base}` for summed variable `{}`",
                            v.name
                        ),
                    )
                    .with_note(format!("declare `{base} : unit` in the neuron type")),
                );
                continue;
            };
            let target_var = &self.group_variables(group)[var];
            if !matches!(target_var.kind, VarKind::Parameter) {
                diags.push(
                    Diagnostic::error(
                        "E0417",
                        v.span,
                        format!(
                            "summed variable `{}` needs `{base}` to be a parameter of group `{group_name}`",
                            v.name
                        ),
                    )
                    .with_secondary(target_var.span, "declared here as an equation")
                    .with_note(format!("declare it as `{base} : {}`", target_var.ty)),
                );
                continue;
            }
            if target_var.ty != v.ty {
                diags.push(Diagnostic::error(
                    "E0301",
                    v.span,
                    format!(
                        "dimension mismatch: summed variable `{}` is `{}`, `{base}` of group `{group_name}` is `{}`",
                        v.name, v.ty, target_var.ty
                    ),
                ));
                continue;
            }
            if let Some((_, _, first)) = self.summed_targets.iter().find(|(g, x, _)| *g == group && *x == var) {
                diags.push(
                    Diagnostic::error(
                        "E0417",
                        connect,
                        format!("`{base}` of group `{group_name}` is already set by another summed variable"),
                    )
                    .with_label_message(format!("this pathway's `{}` also sets it", v.name))
                    .with_secondary(*first, "first set by this pathway"),
                );
                continue;
            }
            self.summed_targets.push((group, var, connect));
            let target =
                if group == target.group && v.name.ends_with("_post") { VarRef::Post(var) } else { VarRef::Pre(var) };
            out.push(Summed { var: k, target });
        }
        out
    }

    #[expect(clippy::too_many_arguments, reason = "the scope of a connect body is made of all of these")]
    fn connect_body(
        &self,
        c: &ast::ConnectDef,
        local: &[Decl],
        pre: &[Decl],
        post: &[Decl],
        source: &GroupSlice,
        target: &GroupSlice,
        diags: &mut Diagnostics,
    ) -> (Connectivity, Option<Expr>, Vec<crate::model::Stmt>) {
        let scope = Scope {
            pre: Some(pre),
            post: Some(post),
            random: true,
            init: true,
            ..Scope::new(Place::Synapse, self.constants, self.shared, local)
        };
        let mut connectivity = Connectivity::default();
        let mut delay = None;
        let mut init = Vec::new();
        let mut seen: Vec<(&str, Span)> = Vec::new();
        let mut lists: (Option<Vec<u32>>, Option<Vec<u32>>) = (None, None);
        const SETTINGS: [&str; 8] = ["p", "condition", "fan_in", "fan_out", "delay", "sources", "targets", "j"];
        for stmt in &c.body {
            let name = stmt.target.name.name.as_str();
            if !SETTINGS.contains(&name) || stmt.target.group.is_some() {
                // A per-synapse initial value; it must name a synapse variable.
                if stmt.target.group.is_none() && !local.iter().any(|d| d.name == name) {
                    let mut d = Diagnostic::error("E0205", stmt.target.name.span, format!("synapse type `{}` has no variable `{name}`", c.synapse.name))
                        .with_label_message("not a synapse variable")
                        .with_note("a connect body sets `p`, `condition`, `fan_in`, `fan_out`, `delay`, `sources`, `targets`, and synapse variables");
                    let candidates = local.iter().map(|d| d.name.as_str()).chain(SETTINGS);
                    if let Some(hint) = did_you_mean(name, candidates) {
                        d = d.with_note(hint);
                    }
                    diags.push(d);
                    continue;
                }
                if let Some(s) = Checker::new(&scope, diags).stmt(stmt, "connect") {
                    init.push(s);
                }
                continue;
            }
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                diags.push(
                    Diagnostic::error("E0201", stmt.target.span, format!("`{name}` is given twice"))
                        .with_secondary(*first, "first given here"),
                );
                continue;
            }
            seen.push((name, stmt.target.span));
            if stmt.op != AssignOp::Set {
                diags.push(Diagnostic::error(
                    "E0100",
                    stmt.span,
                    format!("`{name}` is set with `=`, not `{}`", stmt.op.as_str()),
                ));
                continue;
            }
            let source_size = source.end - source.start;
            let target_size = target.end - target.start;
            match name {
                "p" => {
                    let Some(e) = Checker::new(&scope, diags).expr(&stmt.value) else {
                        continue;
                    };
                    if e.ty != Type::NUMBER {
                        diags.push(Diagnostic::error(
                            "E0301",
                            e.span,
                            format!("`p` must be a dimensionless probability, found unit `{}`", e.ty),
                        ));
                        continue;
                    }
                    if let Some(p) = eval_const(&e, self.constants)
                        && !(0.0..=1.0).contains(&p)
                    {
                        diags.push(
                            Diagnostic::error("E0412", e.span, format!("`p` must be between 0 and 1, found {p}"))
                                .with_label_message("not a probability"),
                        );
                        continue;
                    }
                    connectivity.p = Some(e);
                }
                "condition" => {
                    let Some(e) = Checker::new(&scope, diags).expr(&stmt.value) else {
                        continue;
                    };
                    if e.ty != Type::Bool {
                        diags.push(
                            Diagnostic::error(
                                "E0311",
                                e.span,
                                format!("`condition` must be a condition, found unit `{}`", e.ty),
                            )
                            .with_note("e.g. `condition = i != j`"),
                        );
                        continue;
                    }
                    connectivity.condition = Some(e);
                }
                "j" => {
                    // Brian2's `connect(j='...')`: the target of each presynaptic `i`.
                    let generator = Scope { post: Some(&[]), ..scope_with_pre(&scope) };
                    let Some(e) = Checker::new(&generator, diags).expr(&stmt.value) else { continue };
                    if e.ty != Type::NUMBER {
                        diags.push(Diagnostic::error(
                            "E0301",
                            e.span,
                            format!("`j` must be a postsynaptic index (a number), found unit `{}`", e.ty),
                        ));
                        continue;
                    }
                    connectivity.j = Some(e);
                }
                "fan_in" => {
                    connectivity.fan_in = self.count(&stmt.value, "`fan_in`", 0.0, f64::from(source_size), diags)
                }
                "fan_out" => {
                    connectivity.fan_out = self.count(&stmt.value, "`fan_out`", 0.0, f64::from(target_size), diags)
                }
                "sources" => lists.0 = self.index_list(&stmt.value, "`sources`", source_size, diags),
                "targets" => lists.1 = self.index_list(&stmt.value, "`targets`", target_size, diags),
                _ => {
                    let Some(e) = Checker::new(&scope, diags).expr(&stmt.value) else {
                        continue;
                    };
                    if e.ty != Type::Float(Dimension::TIME) {
                        diags.push(Diagnostic::error(
                            "E0301",
                            e.span,
                            format!("`delay` must be a duration, found unit `{}`", e.ty),
                        ));
                        continue;
                    }
                    if let Some(d) = eval_const(&e, self.constants)
                        && (d < 0.0 || !d.is_finite())
                    {
                        diags.push(
                            Diagnostic::error("E0414", e.span, format!("the delay must not be negative, found {d} s"))
                                .with_label_message("negative delay"),
                        );
                        continue;
                    }
                    delay = Some(e);
                }
            }
        }
        let given = |n: &str| seen.iter().find(|(s, _)| *s == n).map(|(_, sp)| *sp);
        match lists {
            (Some(s), Some(t)) if s.len() == t.len() => connectivity.explicit = Some((s, t)),
            (Some(s), Some(t)) => diags.push(Diagnostic::error(
                "E0416",
                c.span,
                format!("`sources` has {} entries but `targets` has {}", s.len(), t.len()),
            )),
            (Some(_), None) | (None, Some(_)) => {
                diags.push(Diagnostic::error("E0416", c.span, "explicit connections need both `sources` and `targets`"))
            }
            (None, None) => {}
        }
        let explicit = given("sources").or(given("targets"));
        for other in ["p", "condition", "fan_in", "fan_out", "j"] {
            if let (Some(first), Some(span)) = (explicit, given(other)) {
                diags.push(
                    Diagnostic::error("E0415", span, format!("`{other}` conflicts with explicit `sources`/`targets`"))
                        .with_secondary(first, "explicit connections given here"),
                );
            }
        }
        for fan in ["fan_in", "fan_out"] {
            if let (Some(a), Some(b)) = (given("j"), given(fan)) {
                diags.push(
                    Diagnostic::error("E0415", b, format!("`{fan}` conflicts with `j`"))
                        .with_secondary(a, "`j` gives each presynaptic neuron one target"),
                );
            }
        }
        if let (Some(a), Some(b)) = (given("fan_in"), given("fan_out")) {
            diags.push(
                Diagnostic::error("E0415", b, "`fan_in` and `fan_out` can not both be given")
                    .with_secondary(a, "`fan_in` given here"),
            );
        }
        (connectivity, delay, init)
    }

    fn monitor(&mut self, m: &ast::MonitorDef, diags: &mut Diagnostics) {
        let kind = match m.kind.name.as_str() {
            "spikes" => MonitorKind::Spikes,
            "state" => MonitorKind::State,
            "rate" => MonitorKind::Rate,
            "weights" => MonitorKind::Weights,
            other => {
                let mut d = Diagnostic::error("E0418", m.kind.span, format!("unknown monitor `{other}`"))
                    .with_note("monitors: `spikes`, `state`, `rate`, `weights`");
                if let Some(hint) = did_you_mean(other, MONITORS) {
                    d = d.with_note(hint);
                }
                diags.push(d);
                return;
            }
        };
        let mut targets = Vec::new();
        for t in &m.targets {
            if let Some(target) = self.monitor_target(kind, t, diags) {
                targets.push(target);
            }
        }
        let every = m.every.as_ref().and_then(|e| dynamics::period(e, self.constants, diags));
        if targets.len() == m.targets.len() && (m.every.is_none() || every.is_some()) {
            self.monitors.push(Monitor { kind, targets, every, span: m.span });
        }
    }

    fn monitor_target(
        &self,
        kind: MonitorKind,
        t: &ast::MonitorTarget,
        diags: &mut Diagnostics,
    ) -> Option<MonitorTarget> {
        let name = t.object.name.as_str();
        let group = self.groups.iter().position(|g| g.name == name);
        let pathway = self.pathways.iter().position(|p| p.name == name);
        let shared_var = self.shared.iter().position(|d| d.name == name);
        let (object, var_name, size) = match (group, pathway) {
            (Some(g), _) => (Object::Group(g), t.var.as_ref(), Some(self.groups[g].size)),
            (None, Some(p)) => (Object::Pathway(p), t.var.as_ref(), None),
            _ if name == "shared" => (Object::Shared, t.var.as_ref(), Some(1)),
            _ if shared_var.is_some() && t.var.is_none() => (Object::Shared, Some(&t.object), Some(1)),
            _ => {
                let mut d = Diagnostic::error("E0202", t.object.span, format!("unknown group or pathway `{name}`"))
                    .with_label_message("nothing to record");
                let candidates =
                    self.groups.iter().map(|g| g.name.as_str()).chain(self.pathways.iter().map(|p| p.name.as_str()));
                if let Some(hint) = did_you_mean(name, candidates) {
                    d = d.with_note(hint);
                }
                diags.push(d);
                return None;
            }
        };
        let wants_var = matches!(kind, MonitorKind::State | MonitorKind::Weights);
        match (kind, object) {
            (MonitorKind::Spikes | MonitorKind::Rate, Object::Group(_)) if var_name.is_none() => {}
            (MonitorKind::State, _) if var_name.is_some() => {}
            (MonitorKind::Weights, Object::Pathway(_)) if var_name.is_some() => {}
            _ => {
                let expected = match kind {
                    MonitorKind::Spikes | MonitorKind::Rate => "a group, e.g. `S`",
                    MonitorKind::State => "a variable, e.g. `S.v` or a shared variable",
                    MonitorKind::Weights => "a pathway variable, e.g. `SM.w`",
                };
                let found = match (object, var_name) {
                    (Object::Pathway(_), None) => format!("`{name}` is a pathway"),
                    (Object::Group(_), None) => format!("`{name}` is a group"),
                    (Object::Shared, _) if var_name.is_some_and(|v| v.name == name) => {
                        format!("`{name}` is a shared variable")
                    }
                    _ => "a variable".to_string(),
                };
                diags.push(
                    Diagnostic::error("E0419", t.span, format!("`monitor {}` records {expected}", kind_name(kind)))
                        .with_label_message(found),
                );
                return None;
            }
        }
        let var = match var_name.filter(|_| wants_var) {
            None => None,
            Some(v) => {
                let names: Vec<&str> = match object {
                    Object::Group(g) => self.group_variables(g).iter().map(|x| x.name.as_str()).collect(),
                    Object::Pathway(p) => self.pathways[p].dynamics.variables.iter().map(|x| x.name.as_str()).collect(),
                    Object::Shared => self.shared.iter().map(|d| d.name.as_str()).collect(),
                };
                match names.iter().position(|n| *n == v.name) {
                    Some(k) => Some(k),
                    None => {
                        let owner = if matches!(object, Object::Shared) {
                            "the shared block".to_string()
                        } else {
                            format!("`{name}`")
                        };
                        let mut d = Diagnostic::error("E0205", v.span, format!("{owner} has no variable `{}`", v.name))
                            .with_label_message("no such variable");
                        if let Some(hint) = did_you_mean(&v.name, names.iter().copied()) {
                            d = d.with_note(hint);
                        }
                        diags.push(d);
                        return None;
                    }
                }
            }
        };
        let indices = match &t.indices {
            None => None,
            Some(items) => {
                let mut ranges = Vec::new();
                for item in items {
                    let limit = f64::from(size.unwrap_or(u32::MAX));
                    let start = self.count(&item.start, "a recorded index", 0.0, limit - 1.0, diags)?;
                    let end = match &item.end {
                        Some(e) => self.count(e, "a recorded index", 0.0, limit, diags)?,
                        None => start + 1,
                    };
                    if start >= end {
                        diags.push(Diagnostic::error("E0411", item.span, format!("empty range `{start}:{end}`")));
                        return None;
                    }
                    ranges.push((start, end));
                }
                Some(ranges)
            }
        };
        Some(MonitorTarget { object, var, indices })
    }

    /// `environment Kind { settings; sense G { ... }; act G every n steps { ... }; reward { ... } }`.
    fn environment(&mut self, env: &ast::EnvironmentDef, diags: &mut Diagnostics) {
        if let Some(first) = &self.environment {
            diags.push(
                Diagnostic::error("E0409", env.kind.span, "`environment` is given twice")
                    .with_secondary(first.span, "first given here"),
            );
            return;
        }
        let Some(spec) = self.environments.iter().find(|e| e.name == env.kind.name) else {
            let names: Vec<&str> = self.environments.iter().map(|e| e.name).collect();
            let mut d = Diagnostic::error("E0421", env.kind.span, format!("unknown environment `{}`", env.kind.name))
                .with_note(format!("environments: {}", names.join(", ")));
            if let Some(hint) = did_you_mean(&env.kind.name, names) {
                d = d.with_note(hint);
            }
            diags.push(d);
            return;
        };
        let mut settings: Vec<f64> = spec.settings.iter().map(|s| s.default).collect();
        let mut given: Vec<(&str, Span)> = Vec::new();
        for setting in &env.settings {
            let Some(k) = spec.settings.iter().position(|s| s.name == setting.name.name) else {
                let names: Vec<&str> = spec.settings.iter().map(|s| s.name).collect();
                let mut d = Diagnostic::error(
                    "E0421",
                    setting.name.span,
                    format!("`{}` has no setting `{}`", spec.name, setting.name.name),
                )
                .with_note(format!("settings: {}", names.join(", ")));
                if let Some(hint) = did_you_mean(&setting.name.name, names) {
                    d = d.with_note(hint);
                }
                diags.push(d);
                continue;
            };
            if let Some((_, first)) = given.iter().find(|(name, _)| *name == setting.name.name) {
                diags.push(
                    Diagnostic::error("E0409", setting.name.span, format!("`{}` is given twice", setting.name.name))
                        .with_secondary(*first, "first given here"),
                );
                continue;
            }
            given.push((&setting.name.name, setting.name.span));
            let s = &spec.settings[k];
            if let Some(value) = self.number_in(&setting.value, s.name, s.min, s.max, s.integer, diags) {
                settings[k] = value;
            }
        }
        let mut checked = Environment {
            spec: *spec,
            settings,
            sense: Vec::new(),
            reward: Vec::new(),
            decision: None,
            span: env.span,
        };
        for block in &env.blocks {
            match block.kind.name.as_str() {
                "sense" | "reward" => {
                    if let Some(code) = self.env_code(block, spec, diags) {
                        if block.kind.name == "sense" { &mut checked.sense } else { &mut checked.reward }.push(code);
                    }
                }
                "act" => {
                    let decision = self.decision(block, spec, diags);
                    if checked.decision.is_some() {
                        diags.push(
                            Diagnostic::error("E0409", block.kind.span, "`act` is given twice")
                                .with_note("the agent takes one action per decision"),
                        );
                    } else {
                        checked.decision = decision;
                    }
                }
                other => {
                    let mut d = Diagnostic::error(
                        "E0421",
                        block.kind.span,
                        format!("unknown environment block `{other}`"),
                    )
                    .with_note(
                        "blocks: `sense <group> { ... }`, `act <group> every <period> { ... }`, `reward { ... }`",
                    );
                    if let Some(hint) = did_you_mean(other, ENV_BLOCKS) {
                        d = d.with_note(hint);
                    }
                    diags.push(d);
                }
            }
        }
        self.environment = Some(checked);
    }

    /// A constant number in `min..=max` (whole if `integer`), for settings.
    fn number_in(
        &self,
        e: &ast::Expr,
        what: &str,
        min: f64,
        max: f64,
        integer: bool,
        diags: &mut Diagnostics,
    ) -> Option<f64> {
        let (value, ty, span) = self.constant(e, diags)?;
        if ty != Type::NUMBER {
            diags.push(
                Diagnostic::error("E0301", span, format!("`{what}` must be a number, found unit `{ty}`"))
                    .with_label_message("has a unit"),
            );
            return None;
        }
        if integer && value.fract() != 0.0 {
            diags.push(
                Diagnostic::error("E0411", span, format!("`{what}` must be a whole number, found {value}"))
                    .with_label_message("not a whole number"),
            );
            return None;
        }
        if !(min..=max).contains(&value) {
            diags.push(
                Diagnostic::error("E0411", span, format!("`{what}` must be from {min} to {max}, found {value}"))
                    .with_label_message("out of range"),
            );
            return None;
        }
        Some(value)
    }

    /// A `sense` or `reward` block: statements over a group's neurons (the block's
    /// group, or the group its targets name as `G.var`), or over shared variables.
    fn env_code(
        &self,
        block: &ast::EnvBlock,
        spec: &crate::env::EnvironmentSpec,
        diags: &mut Diagnostics,
    ) -> Option<EnvCode> {
        if let Some(every) = &block.every {
            diags.push(
                Diagnostic::error("E0421", every.span, format!("`{}` blocks run every step", block.kind.name))
                    .with_label_message("no period here")
                    .with_note("only `act` takes a period"),
            );
        }
        let mut group = match &block.object {
            Some(object) => Some((self.find_group(object, diags)?, object.span)),
            None => None,
        };
        // `G.var = ...` in a block without a group: the statements run for `G`.
        for stmt in &block.body {
            let Some(qualifier) = &stmt.target.group else { continue };
            let g = self.find_group(qualifier, diags)?;
            match group {
                None => group = Some((g, qualifier.span)),
                Some((first, span)) if first != g => {
                    diags.push(
                        Diagnostic::error(
                            "E0208",
                            qualifier.span,
                            format!("this block already writes group `{}`", self.groups[first].name),
                        )
                        .with_secondary(span, "the block's group")
                        .with_note("write each group in a block of its own"),
                    );
                    return None;
                }
                Some(_) => {}
            }
        }
        let group = group.map(|(g, _)| g);
        if let Some(g) = group
            && !matches!(self.groups[g].kind, GroupKind::Neurons(_))
        {
            diags.push(
                Diagnostic::error(
                    "E0208",
                    block.object.as_ref().map_or(block.kind.span, |o| o.span),
                    format!("group `{}` has no variables to write", self.groups[g].name),
                )
                .with_note("environment blocks write variables of neuron groups or shared variables"),
            );
            return None;
        }
        let owner = match group {
            Some(g) => format!("group `{}`", self.groups[g].name),
            None => "the shared block".to_string(),
        };
        let scope = Scope {
            random: true,
            environment: Some(spec),
            owner: &owner,
            ..match group {
                Some(g) => Scope::new(Place::Neuron, self.constants, self.shared, self.group_decls(g)),
                None => Scope::new(Place::Shared, self.constants, self.shared, &[]),
            }
        };
        let mut body = Vec::new();
        let mut checker = Checker::new(&scope, diags);
        for stmt in &block.body {
            let unqualified = ast::Stmt { target: ast::Target { group: None, ..stmt.target.clone() }, ..stmt.clone() };
            body.extend(checker.stmt(&unqualified, &block.kind.name));
        }
        Some(EnvCode { group, body, span: block.span })
    }

    /// `act G every n steps { groups = 4; epsilon = 0.05 }`.
    fn decision(
        &self,
        block: &ast::EnvBlock,
        spec: &crate::env::EnvironmentSpec,
        diags: &mut Diagnostics,
    ) -> Option<Decision> {
        let Some(object) = &block.object else {
            diags.push(
                Diagnostic::error("E0421", block.kind.span, "`act` needs the group whose spikes vote")
                    .with_note("e.g. `act M every 10 steps { epsilon = 0.05 }`"),
            );
            return None;
        };
        let group = self.find_group(object, diags)?;
        let every = match &block.every {
            Some(every) => dynamics::period(every, self.constants, diags)?,
            None => Period::Steps(1),
        };
        let (mut groups, mut epsilon) = (spec.actions, 0.0);
        for stmt in &block.body {
            let name = stmt.target.name.name.as_str();
            if stmt.target.group.is_some() || stmt.op != ast::AssignOp::Set || !matches!(name, "groups" | "epsilon") {
                diags.push(
                    Diagnostic::error("E0421", stmt.target.span, format!("`act` has no setting `{name}`")).with_note(
                        "settings: `groups` (number of action groups), `epsilon` (probability of a random action)",
                    ),
                );
                continue;
            }
            if name == "groups" {
                let Some(value) = self.number_in(&stmt.value, "groups", 1.0, f64::from(u32::MAX), true, diags) else {
                    continue;
                };
                // A whole number in u32 range, checked above.
                groups = value as u32;
                if groups != spec.actions {
                    diags.push(
                        Diagnostic::error(
                            "E0411",
                            stmt.value.span,
                            format!("`{}` takes {} actions, but `groups` is {groups}", spec.name, spec.actions),
                        )
                        .with_label_message("one action group per action"),
                    );
                }
            } else if let Some(value) = self.number_in(&stmt.value, "epsilon", 0.0, 1.0, false, diags) {
                epsilon = value;
            }
        }
        let size = self.groups[group].size;
        if !size.is_multiple_of(groups) {
            diags.push(
                Diagnostic::error(
                    "E0411",
                    object.span,
                    format!(
                        "group `{}` has {size} neurons, which do not split into {groups} equal action groups",
                        object.name
                    ),
                )
                .with_label_message("voting group"),
            );
            return None;
        }
        Some(Decision { group, every, groups, epsilon })
    }
}

/// The connect scope without its local (synapse) variables: for `j = ...`, which is
/// evaluated before any synapse exists.
fn scope_with_pre<'a>(scope: &Scope<'a>) -> Scope<'a> {
    Scope {
        pre: scope.pre,
        pre_group: scope.pre_group,
        post_group: scope.post_group,
        ..Scope::new(Place::Synapse, scope.constants, scope.shared, &[])
    }
}

fn has_item(def: &ast::TypeDef, f: impl Fn(&BodyItemKind) -> bool) -> bool {
    def.body.iter().any(|item| f(&item.kind))
}

fn kind_name(kind: MonitorKind) -> &'static str {
    match kind {
        MonitorKind::Spikes => "spikes",
        MonitorKind::State => "state",
        MonitorKind::Rate => "rate",
        MonitorKind::Weights => "weights",
    }
}

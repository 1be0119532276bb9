//! Lowering of pest's parse tree to the AST.

use super::{MAX_NESTING, Rule, span_of};
use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::LazyLock;

type Result<T> = std::result::Result<T, Vec<Diagnostic>>;

/// Operator precedence, lowest first, as in Python (and so Brian2).
static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::or, Assoc::Left))
        .op(Op::infix(Rule::and, Assoc::Left))
        .op(Op::prefix(Rule::not))
        .op(Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left)
            | Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::floordiv, Assoc::Left)
            | Op::infix(Rule::modulo, Assoc::Left))
        .op(Op::prefix(Rule::neg) | Op::prefix(Rule::pos))
        .op(Op::infix(Rule::pow, Assoc::Right))
        .op(Op::postfix(Rule::subscript))
});

fn ident(pair: Pair<'_, Rule>) -> Ident {
    Ident { name: pair.as_str().to_string(), span: span_of(&pair) }
}

/// The pair's children; the grammar guarantees their shape, so a missing child
/// means the grammar and this file disagree: reported as an internal error, not a panic.
struct Children<'a> {
    inner: Pairs<'a, Rule>,
    span: Span,
}

impl<'a> Children<'a> {
    fn of(pair: Pair<'a, Rule>) -> Children<'a> {
        let span = span_of(&pair);
        Children { inner: pair.into_inner(), span }
    }

    fn next(&mut self) -> Result<Pair<'a, Rule>> {
        self.inner.next().ok_or_else(|| internal(self.span))
    }

    fn peek_rule(&self) -> Option<Rule> {
        self.inner.peek().map(|p| p.as_rule())
    }

    fn next_if(&mut self, rule: Rule) -> Option<Pair<'a, Rule>> {
        if self.peek_rule() == Some(rule) { self.inner.next() } else { None }
    }
}

fn internal(span: Span) -> Vec<Diagnostic> {
    vec![
        Diagnostic::error("E0199", span, "internal error: unexpected parse tree")
            .with_note("please report this model file"),
    ]
}

pub(super) fn file(pair: Pair<'_, Rule>) -> Result<File> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for item_pair in pair.into_inner() {
        if item_pair.as_rule() == Rule::EOI {
            continue;
        }
        match item(item_pair) {
            Ok(item) => items.push(item),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(File { items }) } else { Err(errors) }
}

fn item(pair: Pair<'_, Rule>) -> Result<Item> {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut c = Children::of(pair);
    Ok(match rule {
        Rule::const_def => {
            c.next()?; // keyword
            let name = ident(c.next()?);
            let value = expr(c.next()?)?;
            Item::Const(ConstDef { name, value, span })
        }
        Rule::setting => {
            let name = ident(c.next()?);
            let value = expr(c.next()?)?;
            Item::Setting(Setting { name, value, span })
        }
        Rule::neuron_def | Rule::synapse_def => {
            c.next()?;
            let name = ident(c.next()?);
            let body = body_items(c)?;
            let def = TypeDef { name, body, span };
            if rule == Rule::neuron_def { Item::Neuron(def) } else { Item::Synapse(def) }
        }
        Rule::shared_def => {
            let keyword = c.next()?;
            let name = Ident { name: "shared".into(), span: span_of(&keyword) };
            Item::Shared(TypeDef { name, body: body_items(c)?, span })
        }
        Rule::group_def => {
            c.next()?;
            let name = ident(c.next()?);
            let type_name = ident(c.next()?);
            let size = expr(c.next()?)?;
            let body = match c.next_if(Rule::block) {
                Some(b) => block(b)?,
                None => Vec::new(),
            };
            Item::Group(GroupDef { name, type_name, size, body, span })
        }
        Rule::connect_def => {
            c.next()?;
            let name = c.next_if(Rule::ident).map(ident);
            let source = endpoint(c.next()?)?;
            let target = endpoint(c.next()?)?;
            c.next()?; // with
            let synapse = ident(c.next()?);
            let body = match c.next_if(Rule::block) {
                Some(b) => block(b)?,
                None => Vec::new(),
            };
            Item::Connect(ConnectDef { name, source, target, synapse, body, span })
        }
        Rule::monitor_def => {
            c.next()?;
            let kind = ident(c.next()?);
            let mut targets = Vec::new();
            let mut every = None;
            while let Ok(p) = c.next() {
                match p.as_rule() {
                    Rule::monitor_target => targets.push(monitor_target(p)?),
                    Rule::every_clause => every = Some(every_clause(p)?),
                    _ => return Err(internal(span)),
                }
            }
            Item::Monitor(MonitorDef { kind, targets, every, span })
        }
        Rule::environment_def => {
            c.next()?;
            let kind = ident(c.next()?);
            let mut settings = Vec::new();
            let mut blocks = Vec::new();
            while let Ok(p) = c.next() {
                let item_span = span_of(&p);
                match p.as_rule() {
                    Rule::env_setting => {
                        let mut s = Children::of(p);
                        let name = ident(s.next()?);
                        let value = expr(s.next()?)?;
                        settings.push(Setting { name, value, span: item_span });
                    }
                    Rule::env_block => {
                        let mut b = Children::of(p);
                        let kind = ident(b.next()?);
                        let object = b.next_if(Rule::ident).map(ident);
                        let every = match b.next_if(Rule::every_clause) {
                            Some(e) => Some(every_clause(e)?),
                            None => None,
                        };
                        let body = block(b.next()?)?;
                        blocks.push(EnvBlock { kind, object, every, body, span: item_span });
                    }
                    _ => return Err(internal(item_span)),
                }
            }
            Item::Environment(EnvironmentDef { kind, settings, blocks, span })
        }
        _ => return Err(internal(span)),
    })
}

fn body_items(mut c: Children<'_>) -> Result<Vec<BodyItem>> {
    let mut items = Vec::new();
    while let Ok(pair) = c.next() {
        items.push(body_item(pair)?);
    }
    Ok(items)
}

fn body_item(pair: Pair<'_, Rule>) -> Result<BodyItem> {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut c = Children::of(pair);
    let first = c.next()?;
    let keyword = span_of(&first);
    let kind = match rule {
        Rule::equations_block => {
            let mut equations = Vec::new();
            while let Ok(p) = c.next() {
                equations.push(equation(p)?);
            }
            BodyItemKind::Equations(equations)
        }
        Rule::threshold_def => BodyItemKind::Threshold(expr(c.next()?)?),
        Rule::refractory_def => BodyItemKind::Refractory(expr(c.next()?)?),
        Rule::method_def => BodyItemKind::Method(ident(c.next()?)),
        Rule::reset_def => BodyItemKind::Reset(stmt_body(c.next()?)?),
        Rule::init_def => BodyItemKind::Init(stmt_body(c.next()?)?),
        Rule::on_pre_def => BodyItemKind::OnPre(stmt_body(c.next()?)?),
        Rule::on_post_def => BodyItemKind::OnPost(stmt_body(c.next()?)?),
        Rule::every_step_def => BodyItemKind::EveryStep(stmt_body(c.next()?)?),
        Rule::every_def => {
            let every = every_clause(first)?;
            BodyItemKind::Every(every, stmt_body(c.next()?)?)
        }
        _ => return Err(internal(span)),
    };
    Ok(BodyItem { kind, span, keyword })
}

fn equation(pair: Pair<'_, Rule>) -> Result<Equation> {
    let span = span_of(&pair);
    let rule = pair.as_rule();
    let mut c = Children::of(pair);
    let (kind, var) = match rule {
        Rule::diff_eq => {
            let diff_var = c.next()?;
            let mut inner = Children::of(diff_var);
            (EquationKind::Differential, ident(inner.next()?))
        }
        Rule::sub_eq => (EquationKind::Subexpression, ident(c.next()?)),
        Rule::param_eq => (EquationKind::Parameter, ident(c.next()?)),
        _ => return Err(internal(span)),
    };
    let rhs = if kind == EquationKind::Parameter { None } else { Some(expr(c.next()?)?) };
    let unit = unit_expr(c.next()?)?;
    let flags = match c.next_if(Rule::flags) {
        Some(f) => f
            .into_inner()
            .map(|flag| {
                let span = span_of(&flag);
                let text = flag.into_inner().map(|w| w.as_str()).collect::<Vec<_>>().join(" ");
                Flag { text, span }
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Equation { kind, var, rhs, unit, flags, span })
}

fn unit_expr(pair: Pair<'_, Rule>) -> Result<UnitExpr> {
    let span = span_of(&pair);
    match pair.as_rule() {
        Rule::unit_expr => {
            let mut c = Children::of(pair);
            let mut acc = unit_expr(c.next()?)?;
            while let Some(op) = c.next_if(Rule::unit_op) {
                let rhs = unit_expr(c.next()?)?;
                let span = acc.span.to(rhs.span);
                let kind = if op.as_str() == "*" {
                    UnitExprKind::Mul(Box::new(acc), Box::new(rhs))
                } else {
                    UnitExprKind::Div(Box::new(acc), Box::new(rhs))
                };
                acc = UnitExpr { kind, span };
            }
            Ok(acc)
        }
        Rule::unit_term => {
            let mut c = Children::of(pair);
            let base = unit_expr(c.next()?)?;
            match c.next_if(Rule::unit_exponent) {
                Some(exponent) => {
                    let text: String = exponent.as_str().chars().filter(|ch| !matches!(ch, '(' | ')' | ' ')).collect();
                    let value = parse_number(&text, span_of(&exponent))?;
                    Ok(UnitExpr { kind: UnitExprKind::Pow(Box::new(base), value), span })
                }
                None => Ok(base),
            }
        }
        Rule::unit_one => Ok(UnitExpr { kind: UnitExprKind::One, span }),
        Rule::unit_name => Ok(UnitExpr { kind: UnitExprKind::Name(pair.as_str().to_string()), span }),
        _ => Err(internal(span)),
    }
}

fn stmt_body(pair: Pair<'_, Rule>) -> Result<Vec<Stmt>> {
    match pair.as_rule() {
        Rule::block => block(pair),
        Rule::stmt => Ok(vec![stmt(pair)?]),
        _ => Err(internal(span_of(&pair))),
    }
}

fn block(pair: Pair<'_, Rule>) -> Result<Vec<Stmt>> {
    pair.into_inner().map(stmt).collect()
}

fn stmt(pair: Pair<'_, Rule>) -> Result<Stmt> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let target_pair = c.next()?;
    let target_span = span_of(&target_pair);
    let mut t = Children::of(target_pair);
    let first = ident(t.next()?);
    let target = match t.next() {
        Ok(second) => Target { group: Some(first), name: ident(second), span: target_span },
        Err(_) => Target { group: None, name: first, span: target_span },
    };
    let op = match c.next()?.as_str().trim() {
        "=" => AssignOp::Set,
        "+=" => AssignOp::Add,
        "-=" => AssignOp::Sub,
        "*=" => AssignOp::Mul,
        "/=" => AssignOp::Div,
        _ => return Err(internal(span)),
    };
    let value = expr(c.next()?)?;
    Ok(Stmt { target, op, value, span })
}

fn endpoint(pair: Pair<'_, Rule>) -> Result<Endpoint> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let group = ident(c.next()?);
    let slice = match c.next() {
        Ok(lo) => Some((expr(lo)?, expr(c.next()?)?)),
        Err(_) => None,
    };
    Ok(Endpoint { group, slice, span })
}

fn monitor_target(pair: Pair<'_, Rule>) -> Result<MonitorTarget> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    let object = ident(c.next()?);
    let var = c.next_if(Rule::ident).map(ident);
    let indices = match c.next_if(Rule::index_list) {
        Some(list) => Some(
            list.into_inner()
                .map(|item| {
                    let span = span_of(&item);
                    let mut i = Children::of(item);
                    let start = expr(i.next()?)?;
                    let end = match i.next() {
                        Ok(e) => Some(expr(e)?),
                        Err(_) => None,
                    };
                    Ok(IndexItem { start, end, span })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    Ok(MonitorTarget { object, var, indices, span })
}

fn every_clause(pair: Pair<'_, Rule>) -> Result<Every> {
    let span = span_of(&pair);
    let mut c = Children::of(pair);
    c.next()?; // `every`
    let period = expr(c.next()?)?;
    let steps = c.next_if(Rule::kw_steps).is_some();
    Ok(Every { period, steps, span })
}

fn parse_number(text: &str, span: Span) -> Result<f64> {
    text.parse::<f64>().map_err(|_| vec![Diagnostic::error("E0102", span, format!("invalid number `{text}`"))])
}

/// Builds a node, refusing trees deeper than `MAX_NESTING` (left-leaning chains
/// such as `1+1+...+1` are built without recursion but would make every later pass recurse).
fn node(kind: ExprKind, span: Span) -> Result<Expr> {
    let e = Expr { kind, span };
    if depth(&e, 0) > MAX_NESTING {
        return Err(vec![
            Diagnostic::error("E0101", span, "expression nested too deeply")
                .with_label_message(format!("more than {MAX_NESTING} levels of operations"))
                .with_note("split the expression with subexpressions or constants"),
        ]);
    }
    Ok(e)
}

/// The depth of `e`, stopping early once past the limit.
fn depth(e: &Expr, at: usize) -> usize {
    if at > MAX_NESTING {
        return at;
    }
    let child = |c: &Expr| depth(c, at + 1);
    match &e.kind {
        ExprKind::Number(_) | ExprKind::Quantity { .. } | ExprKind::Bool(_) | ExprKind::Name { .. } => at + 1,
        ExprKind::Call { args, .. } | ExprKind::List(args) => args.iter().map(child).max().unwrap_or(at + 1),
        ExprKind::Unary(_, a) => child(a),
        ExprKind::Binary(_, a, b) | ExprKind::Index(a, b) => child(a).max(child(b)),
        ExprKind::Cond { cond, then, otherwise } => child(cond).max(child(then)).max(child(otherwise)),
    }
}

pub(super) fn expr(pair: Pair<'_, Rule>) -> Result<Expr> {
    let span = span_of(&pair);
    match pair.as_rule() {
        Rule::expr => {
            let mut c = Children::of(pair);
            let value = operation(c.next()?)?;
            if c.next_if(Rule::kw_if).is_none() {
                return Ok(value);
            }
            let cond = operation(c.next()?)?;
            c.next()?; // else
            let otherwise = expr(c.next()?)?;
            node(ExprKind::Cond { cond: Box::new(cond), then: Box::new(value), otherwise: Box::new(otherwise) }, span)
        }
        Rule::operation => operation(pair),
        _ => primary(pair),
    }
}

fn operation(pair: Pair<'_, Rule>) -> Result<Expr> {
    PRATT
        .map_primary(primary)
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            let span = span_of(&op).to(rhs.span);
            let op = match op.as_rule() {
                Rule::neg => UnaryOp::Neg,
                Rule::pos => UnaryOp::Pos,
                _ => UnaryOp::Not,
            };
            node(ExprKind::Unary(op, Box::new(rhs)), span)
        })
        .map_postfix(|lhs, op| {
            let lhs = lhs?;
            let span = lhs.span.to(span_of(&op));
            let mut c = Children::of(op);
            let index = expr(c.next()?)?;
            node(ExprKind::Index(Box::new(lhs), Box::new(index)), span)
        })
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
            let span = lhs.span.to(rhs.span);
            let op = match op.as_rule() {
                Rule::add => BinaryOp::Add,
                Rule::sub => BinaryOp::Sub,
                Rule::mul => BinaryOp::Mul,
                Rule::div => BinaryOp::Div,
                Rule::floordiv => BinaryOp::FloorDiv,
                Rule::modulo => BinaryOp::Mod,
                Rule::pow => BinaryOp::Pow,
                Rule::lt => BinaryOp::Lt,
                Rule::le => BinaryOp::Le,
                Rule::gt => BinaryOp::Gt,
                Rule::ge => BinaryOp::Ge,
                Rule::eq => BinaryOp::Eq,
                Rule::ne => BinaryOp::Ne,
                Rule::and => BinaryOp::And,
                Rule::or => BinaryOp::Or,
                _ => return Err(internal(span)),
            };
            node(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span)
        })
        .parse(pair.into_inner())
}

fn primary(pair: Pair<'_, Rule>) -> Result<Expr> {
    let span = span_of(&pair);
    match pair.as_rule() {
        Rule::expr | Rule::operation => expr(pair),
        Rule::quantity => {
            let mut c = Children::of(pair);
            let number = c.next()?;
            let value = parse_number(number.as_str(), span_of(&number))?;
            match c.next_if(Rule::unit_word) {
                None => node(ExprKind::Number(value), span),
                Some(unit) => {
                    let unit = Ident { name: unit.as_str().to_string(), span: span_of(&unit) };
                    let power = match c.next_if(Rule::unit_power) {
                        Some(p) => {
                            let text = p.as_str().trim_start_matches("**");
                            text.parse::<i32>().map_err(|_| {
                                vec![Diagnostic::error("E0102", span_of(&p), format!("invalid exponent `{text}`"))]
                            })?
                        }
                        None => 1,
                    };
                    node(ExprKind::Quantity { value, unit, power }, span)
                }
            }
        }
        Rule::boolean => node(ExprKind::Bool(matches!(pair.as_str(), "True" | "true")), span),
        Rule::name_ref => {
            let mut c = Children::of(pair);
            let first = ident(c.next()?);
            match c.next() {
                Ok(second) => node(ExprKind::Name { group: Some(first), name: ident(second) }, span),
                Err(_) => node(ExprKind::Name { group: None, name: first }, span),
            }
        }
        Rule::call => {
            let mut c = Children::of(pair);
            let func = ident(c.next()?);
            let mut args = Vec::new();
            while let Ok(arg) = c.next() {
                args.push(expr(arg)?);
            }
            node(ExprKind::Call { func, args }, span)
        }
        Rule::list => {
            let items = pair.into_inner().map(expr).collect::<Result<Vec<_>>>()?;
            node(ExprKind::List(items), span)
        }
        _ => Err(internal(span)),
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::*;
    use crate::syntax::parse;

    fn parse_expr(text: &str) -> Expr {
        let file = parse(&format!("const x = {text}")).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        match file.items.into_iter().next() {
            Some(Item::Const(c)) => c.value,
            other => panic!("{other:?}"),
        }
    }

    /// A compact prefix form for precedence tests.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(v) => format!("{v}"),
            ExprKind::Quantity { value, unit, power } => format!("{value}[{}^{power}]", unit.name),
            ExprKind::Bool(b) => format!("{b}"),
            ExprKind::Name { group: Some(g), name } => format!("{}.{}", g.name, name.name),
            ExprKind::Name { group: None, name } => name.name.clone(),
            ExprKind::Call { func, args } => {
                format!("{}({})", func.name, args.iter().map(show).collect::<Vec<_>>().join(","))
            }
            ExprKind::Unary(op, a) => format!("({op:?} {})", show(a)),
            ExprKind::Binary(op, a, b) => format!("({} {} {})", show(a), op.as_str(), show(b)),
            ExprKind::Cond { cond, then, otherwise } => {
                format!("({} if {} else {})", show(then), show(cond), show(otherwise))
            }
            ExprKind::Index(a, i) => format!("{}[{}]", show(a), show(i)),
            ExprKind::List(items) => {
                format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(","))
            }
        }
    }

    #[test]
    fn precedence_follows_python() {
        let cases = [
            ("1 + 2 * 3", "(1 + (2 * 3))"),
            ("-x**2", "(Neg (x ** 2))"),
            ("2**-1", "(2 ** (Neg 1))"),
            ("2**3**2", "(2 ** (3 ** 2))"),
            ("a - b - c", "((a - b) - c)"),
            ("a / b * c", "((a / b) * c)"),
            ("not a > b and c < d or e == f", "(((Not (a > b)) and (c < d)) or (e == f))"),
            ("i // 16 % 4", "((i // 16) % 4)"),
            ("a if c > 0 else b", "(a if (c > 0) else b)"),
            ("g[i // 16]", "g[(i // 16)]"),
            ("S.v + v_post", "(S.v + v_post)"),
            ("clip(w + x, 0 mV, w_max)", "clip((w + x),0[mV^1],w_max)"),
        ];
        for (text, expected) in cases {
            assert_eq!(show(&parse_expr(text)), expected, "{text}");
        }
    }

    #[test]
    fn quantities_take_a_unit_on_the_same_line_only() {
        assert_eq!(show(&parse_expr("-65 mV")), "(Neg 65[mV^1])");
        assert_eq!(show(&parse_expr("0.5 mV/s")), "(0.5[mV^1] / s)");
        assert_eq!(show(&parse_expr("1 um**2")), "1[um^2]");
        assert_eq!(show(&parse_expr("20mV")), "20[mV^1]");
        assert_eq!(show(&parse_expr("4.")), "4");
        assert_eq!(show(&parse_expr(".5e-3")), "0.0005");
        assert_eq!(show(&parse_expr("2 Hz")), "2[Hz^1]");
        assert_eq!(show(&parse_expr("3 MOhm")), "3[MOhm^1]");
        assert_eq!(show(&parse_expr("1 molar")), "1[molar^1]");
        assert_eq!(show(&parse_expr("1 ampere")), "1[ampere^1]");
        // Every unit of the table, newton and tesla included (they were missing).
        assert_eq!(show(&parse_expr("5 newton")), "5[newton^1]");
        assert_eq!(show(&parse_expr("2 T")), "2[T^1]");
        assert_eq!(show(&parse_expr("3 mT")), "3[mT^1]");
        assert_eq!(show(&parse_expr("2 tesla")), "2[tesla^1]");
        let (value, dim) = crate::eval_quantity("3 mT").expect("a quantity");
        assert_eq!((value, dim), (3e-3, crate::units::Dimension::from_exponents([0, 1, -2, -1, 0, 0, 0])));
        // Not a unit word: an error, not a silent product.
        assert!(parse("const x = 2 w").is_err());
        // A newline ends the quantity: `m` starts the next statement.
        let file = parse("neuron N { reset { w = 0.5\n m += 1 } }").expect("parses");
        let Some(Item::Neuron(def)) = file.items.first() else { panic!() };
        let BodyItemKind::Reset(stmts) = &def.body[0].kind else { panic!() };
        assert_eq!(stmts.len(), 2);
    }

    #[test]
    fn equations_parse_like_brian2() {
        let src = "neuron N { equations {
            dv/dt = (v_rest - v +
                     I)/tau : volt (unless refractory)
            I = g*(E - v) : amp
            g : siemens (constant, shared)
            dx/dt = -x/tau : 1
        } }";
        let file = parse(src).expect("parses");
        let Some(Item::Neuron(def)) = file.items.first() else { panic!() };
        let BodyItemKind::Equations(eqs) = &def.body[0].kind else { panic!() };
        assert_eq!(eqs.len(), 4);
        assert_eq!(eqs[0].kind, EquationKind::Differential);
        assert_eq!(eqs[0].var.name, "v");
        assert_eq!(eqs[0].flags[0].text, "unless refractory");
        assert_eq!(eqs[1].kind, EquationKind::Subexpression);
        assert_eq!(eqs[2].kind, EquationKind::Parameter);
        assert_eq!(eqs[2].flags.len(), 2);
        assert_eq!(eqs[3].var.name, "x");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("const x = {}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&deep).is_err());
        let long = format!("const x = 1{}", "+1".repeat(100_000));
        assert!(parse(&long).is_err());
        let prefix = format!("const x = {}1", "-".repeat(100_000));
        assert!(parse(&prefix).is_err());
        let pow = format!("const x = 2{}", "**2".repeat(100_000));
        assert!(parse(&pow).is_err());
    }
}

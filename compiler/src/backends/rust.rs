//! The Rust back end: every kernel of an IR module becomes an `unsafe extern "C" fn`,
//! as a `proc_macro2::TokenStream` built with `quote!`, for the `model!` proc-macro
//! (AOT) and `snnc emit --rust` (the same tokens, formatted by `prettyplease` with
//! feature `rust-format`).
//!
//! The translation is literal, like the Cranelift back end's: one Rust operation per
//! IR operation, in the IR's order (rustc neither reassociates floating point nor
//! forms FMAs), the same `abi` functions for transcendentals and random numbers. So
//! AOT and JIT kernels compute the same bits. Every decision is the IR's: this
//! module only spells it.
//!
//! The generated code names the ABI through a path given by the caller
//! (`::snnc_runtime::abi` in a user's crate, see [`runtime_abi`]).

use crate::ir::{At, Expr, Kernel, KernelKind, Loop, Module, Op1, Op2, Stmt, Ty};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// The path of the ABI module in a crate that uses `snnc_runtime`: `::snnc_runtime::abi`.
pub fn runtime_abi() -> TokenStream {
    quote!(::snnc_runtime::abi)
}

/// Rust items for every kernel: `pub unsafe extern "C" fn kernel_<k>` and
/// `pub static KERNELS: [KernelFn; n]`. `abi` is the path of the ABI module
/// (e.g. [`runtime_abi`]).
pub fn generate(module: &Module, abi: &TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    for (k, kernel) in module.kernels.iter().enumerate() {
        let name = format_ident!("kernel_{}", k);
        let doc = format!(" Kernel `{}`.", kernel.name);
        let body = Gen { module, kernel, abi, lanes: false }.kernel();
        out.extend(quote! {
            #[doc = #doc]
            /// # Safety
            /// `args` must describe arrays laid out as the model's `ir::Module` says (the runtime's `Simulation` does).
            #[allow(unused_variables, unused_mut, unused_unsafe, clippy::all, reason = "generated")]
            pub unsafe extern "C" fn #name(args: *const #abi::KernelArgs) {
                #[inline(always)]
                unsafe fn body(args: *const #abi::KernelArgs) {
                    #body
                }
                // The body compiled twice, for the baseline CPU and for AVX2 (wider
                // vectors, no FMA: the same bits), chosen at run time.
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx2")]
                unsafe fn body_avx2(args: *const #abi::KernelArgs) {
                    unsafe { body(args) }
                }
                #[cfg(target_arch = "x86_64")]
                if ::std::is_x86_feature_detected!("avx2") {
                    return unsafe { body_avx2(args) };
                }
                unsafe { body(args) }
            }
        });
    }
    let names = (0..module.kernels.len()).map(|k| format_ident!("kernel_{}", k));
    let count = Literal::usize_unsuffixed(module.kernels.len());
    out.extend(quote! {
        /// The kernels, in the order of the lowered module.
        pub static KERNELS: [#abi::KernelFn; #count] = [#(#names),*];
    });
    out
}

/// Rust source for `tokens` (the output of [`generate`]), formatted by `prettyplease`;
/// `Err` if the tokens are not a Rust file.
#[cfg(feature = "rust-format")]
pub fn format(tokens: &TokenStream) -> Result<String, FormatError> {
    let file = syn::parse2::<syn::File>(tokens.clone()).map_err(|e| FormatError(e.to_string()))?;
    Ok(prettyplease::unparse(&file))
}

/// [`generate`], formatted: what `snnc emit --rust` prints.
#[cfg(feature = "rust-format")]
pub fn generate_formatted(module: &Module, abi: &TokenStream) -> Result<String, FormatError> {
    format(&generate(module, abi))
}

/// Generated tokens that `syn` does not parse as a Rust file (a bug of this back end).
#[cfg(feature = "rust-format")]
#[derive(Clone, Debug)]
pub struct FormatError(String);

#[cfg(feature = "rust-format")]
impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the generated Rust does not parse: {}", self.0)
    }
}

#[cfg(feature = "rust-format")]
impl std::error::Error for FormatError {}

struct Gen<'a> {
    module: &'a Module,
    kernel: &'a Kernel,
    abi: &'a TokenStream,
    /// Inside `lanes`: item `j` of slices, random numbers from buffers.
    lanes: bool,
}

impl Gen<'_> {
    /// The body of `body`: pointers and parameters, random keys, the scalar block,
    /// the loop.
    fn kernel(&self) -> TokenStream {
        let abi = self.abi;
        // Base pointers, parameters, tables and random streams used by the kernel.
        let crate::ir::Uses { vars, params, tables, streams, .. } = self.kernel.uses();
        let vars = vars.into_iter().map(|v| {
            let (name, v) = (var(v), Literal::usize_unsuffixed(v));
            quote!(let #name: *mut f64 = *a.vars.add(#v);)
        });
        let params = params.into_iter().map(|p| {
            let (name, p) = (format_ident!("p{}", p), Literal::usize_unsuffixed(p));
            quote!(let #name: f64 = *a.params.add(#p);)
        });
        let tables = tables.into_iter().map(|t| {
            let (name, t) = (format_ident!("tb{}", t), Literal::usize_unsuffixed(t));
            quote!(let #name: *const f64 = *a.tables.add(#t);)
        });
        // One key per random stream, computed once per call.
        let keys = streams.into_iter().map(|k| {
            let (name, k) = (format_ident!("key{}", k), Literal::u32_unsuffixed(k));
            quote!(let #name: u64 = #abi::snnc_rng_key(seed, step, #k);)
        });
        let scalar = self.stmts(&self.kernel.scalar);
        let looped = self.looped();
        let n_spikes = if matches!(self.kernel.kind, KernelKind::Threshold | KernelKind::Connect) {
            quote!(*a.n_spikes = count;)
        } else {
            TokenStream::new()
        };
        quote! {
            unsafe {
                let a = &*args;
                let (n, step, t, dt, seed, aux) = (a.n, a.step, a.t, a.dt, a.seed, a.aux);
                let spikes = a.spikes;
                let mut count: u64 = 0;
                let (mut index, mut pre_index, mut post_index): (u64, u64, u64) = (0, 0, 0);
                #(#vars)*
                #(#params)*
                #(#tables)*
                #(#keys)*
                #scalar
                #looped
                #n_spikes
            }
        }
    }

    /// The body over the kernel's items.
    fn looped(&self) -> TokenStream {
        if let Some(lanes) = self.lanes() {
            return lanes;
        }
        let body = self.stmts(&self.kernel.body);
        let items = match self.kernel.looping {
            Loop::Once => return body,
            Loop::Neurons => quote! {
                index = k;
                #body
            },
            Loop::Spikes => quote! {
                index = u64::from(*spikes.add(k as usize));
                #body
            },
            Loop::Synapses => quote! {
                index = k;
                pre_index = u64::from(*a.pre.add(k as usize));
                post_index = u64::from(*a.post.add(k as usize));
                #body
            },
            Loop::SynapseList => quote! {
                index = u64::from(*spikes.add(k as usize));
                pre_index = u64::from(*a.pre.add(index as usize));
                post_index = u64::from(*a.post.add(index as usize));
                #body
            },
            Loop::Pairs => quote! {
                index = k;
                pre_index = aux;
                post_index = k;
                #body
            },
            Loop::PreSpikes => quote! {
                let neuron = u64::from(*spikes.add(k as usize));
                let start = u64::from(*a.pre_offsets.add(neuron as usize));
                let end = u64::from(*a.pre_offsets.add(neuron as usize + 1));
                for m in start..end {
                    index = m;
                    pre_index = neuron;
                    post_index = u64::from(*a.post.add(m as usize));
                    #body
                }
            },
            Loop::PostSpikes => quote! {
                let neuron = u64::from(*spikes.add(k as usize));
                let start = u64::from(*a.post_offsets.add(neuron as usize));
                let end = u64::from(*a.post_offsets.add(neuron as usize + 1));
                for m in start..end {
                    index = u64::from(*a.post_order.add(m as usize));
                    pre_index = u64::from(*a.pre.add(index as usize));
                    post_index = neuron;
                    #body
                }
            },
        };
        quote! {
            for k in 0..n {
                #items
            }
        }
    }

    /// An element-wise loop (every neuron, or every synapse without its neurons) as a
    /// function of slices: the arrays it writes are `&mut [f64]`, so LLVM knows that
    /// no two of them overlap and vectorizes without run-time alias checks. Its random
    /// numbers come from buffers filled a batch at a time (`abi::snnc_normals`, the
    /// same bits as one draw per item), so the loop has no calls. `None` for other
    /// loops, and for bodies that write shared variables or emit spikes.
    fn lanes(&self) -> Option<TokenStream> {
        let kernel = self.kernel;
        let layout = &self.module.layout;
        let scalar = |v: usize| layout.vars.get(v).is_none_or(|info| info.scalar);
        let mut eligible = matches!(kernel.looping, Loop::Neurons | Loop::Synapses);
        // Temporaries of the scalar block that the body reads.
        let mut outer = Vec::new();
        let defined_outside = |t: usize| kernel.scalar.iter().any(|s| matches!(s, Stmt::Let(u, _) if *u == t));
        for s in &kernel.body {
            crate::ir::visit_exprs(s, &mut |e| match e {
                Expr::LoadAt(..) | Expr::IndexAt(_) => eligible = false,
                Expr::Temp(t) if defined_outside(*t) => outer.push(*t),
                _ => {}
            });
            eligible &= !contains(s, &|s| matches!(s, Stmt::EmitSpike | Stmt::StoreAt(..)));
        }
        let mut written = crate::ir::stored_vars(&kernel.body);
        eligible &= !written.iter().any(|&v| scalar(v));
        if !eligible || kernel.body.is_empty() {
            return None;
        }
        outer.sort_unstable();
        outer.dedup();
        written.sort_unstable();
        written.dedup();
        let crate::ir::Uses { vars, params, tables, streams, normals } = crate::ir::Uses::of(&kernel.body);
        let abi = self.abi;

        // Parameters of `lanes` and the arguments of its calls, in the same order.
        let (mut formals, mut actuals) = (Vec::new(), Vec::new());
        for &v in written.iter() {
            let name = var(v);
            formals.push(quote!(#name: &mut [f64]));
            actuals.push(quote!(::core::slice::from_raw_parts_mut(#name.add(first as usize), len)));
        }
        for &v in vars.iter().filter(|v| !written.contains(v)) {
            let name = var(v);
            if scalar(v) {
                // Read once: nothing in the loop writes it.
                formals.push(quote!(#name: f64));
                actuals.push(quote!(*#name));
            } else {
                formals.push(quote!(#name: &[f64]));
                actuals.push(quote!(::core::slice::from_raw_parts(#name.add(first as usize), len)));
            }
        }
        for &t in &tables {
            let name = format_ident!("tb{}", t);
            formals.push(quote!(#name: &[f64]));
            actuals.push(quote!(::core::slice::from_raw_parts(#name.add(first as usize), len)));
        }
        for &k in &streams {
            let name = format_ident!("r{}", k);
            formals.push(quote!(#name: &[f64]));
            actuals.push(quote!(&#name[..len]));
        }
        for &p in &params {
            let name = format_ident!("p{}", p);
            formals.push(quote!(#name: f64));
            actuals.push(quote!(#name));
        }
        for &t in &outer {
            let name = temp(t);
            let ty = if kernel.temps.get(t) == Some(&Ty::Bool) { quote!(bool) } else { quote!(f64) };
            formals.push(quote!(#name: #ty));
            actuals.push(quote!(#name));
        }
        let body = Gen { module: self.module, kernel, abi, lanes: true }.stmts(&kernel.body);
        let lanes = quote! {
            #[inline(always)]
            unsafe fn lanes(first: u64, len: usize, t: f64, dt: f64, env: *const f64, #(#formals),*) {
                unsafe {
                    for j in 0..len {
                        let index: u64 = first + j as u64;
                        #body
                    }
                }
            }
        };
        let call = quote!(lanes(first, len, t, dt, a.env, #(#actuals),*););
        if streams.is_empty() {
            return Some(quote! {
                #lanes
                let (first, len): (u64, usize) = (0, n as usize);
                #call
            });
        }
        let batch = Literal::usize_unsuffixed(crate::abi::BATCH);
        let fills = streams.iter().map(|&k| {
            let (name, key) = (format_ident!("r{}", k), format_ident!("key{}", k));
            let fill = if normals.contains(&k) { quote!(snnc_normals) } else { quote!(snnc_uniforms) };
            quote! {
                let mut #name = [0.0f64; #batch];
                #abi::#fill(#key, first, &mut #name[..len]);
            }
        });
        Some(quote! {
            #lanes
            let mut first: u64 = 0;
            while first < n {
                let len = ::core::cmp::min(n - first, #batch) as usize;
                #(#fills)*
                #call
                first += len as u64;
            }
        })
    }

    fn stmts(&self, stmts: &[Stmt]) -> TokenStream {
        stmts.iter().map(|s| self.stmt(s)).collect()
    }

    /// Where variable `v` of the item at `index` is: `*v3` (a scalar variable) or
    /// `*v3.add(index as usize)`.
    fn place(&self, v: usize, index: &TokenStream) -> TokenStream {
        let scalar = self.module.layout.vars.get(v).is_none_or(|info| info.scalar);
        let name = var(v);
        if self.lanes {
            // Shared variables arrive as values (`lanes` never writes one).
            return if scalar { quote!(#name) } else { quote!(*#name.get_unchecked(j)) };
        }
        if scalar { quote!(*#name) } else { quote!(*#name.add(#index as usize)) }
    }

    fn stmt(&self, s: &Stmt) -> TokenStream {
        match s {
            Stmt::Let(t, e) => {
                let ty = if self.kernel.temps.get(*t) == Some(&Ty::Bool) { quote!(bool) } else { quote!(f64) };
                let (name, value) = (temp(*t), self.expr(e));
                quote!(let #name: #ty = #value;)
            }
            Stmt::Store(v, e) if self.lanes => {
                let (value, name) = (self.expr(e), var(*v));
                quote! {
                    let value: f64 = #value;
                    *#name.get_unchecked_mut(j) = value;
                }
            }
            Stmt::Store(v, e) => {
                let value = self.expr(e);
                let place = self.place(*v, &quote!(index));
                quote!(#place = #value;)
            }
            Stmt::StoreAt(v, at, e) => {
                let value = self.expr(e);
                let place = self.place(*v, &at_index(*at));
                quote!(#place = #value;)
            }
            Stmt::If(c, body) => {
                let (c, body) = (self.expr(c), self.stmts(body));
                quote! {
                    if #c {
                        #body
                    }
                }
            }
            Stmt::EmitSpike => quote! {
                *spikes.add(count as usize) = index as u32;
                count += 1;
            },
        }
    }

    fn expr(&self, e: &Expr) -> TokenStream {
        let abi = self.abi;
        match e {
            // The exact bits, whatever the decimal printing would round to.
            Expr::F64(x) => {
                let bits = hex_u64(x.to_bits());
                quote!(f64::from_bits(#bits))
            }
            Expr::Bool(b) => quote!(#b),
            Expr::Param(p) => {
                let name = format_ident!("p{}", p);
                quote!(#name)
            }
            Expr::Load(v) => {
                let place = self.place(*v, &quote!(index));
                quote!((#place))
            }
            Expr::LoadAt(v, at) => {
                let place = self.place(*v, &at_index(*at));
                quote!((#place))
            }
            Expr::Temp(t) => {
                let name = temp(*t);
                quote!(#name)
            }
            Expr::Table(k) if self.lanes => {
                let name = format_ident!("tb{}", k);
                quote!((*#name.get_unchecked(j)))
            }
            Expr::Table(k) => {
                let name = format_ident!("tb{}", k);
                quote!((*#name.add(index as usize)))
            }
            Expr::Index => quote!((index as f64)),
            Expr::IndexAt(at) => {
                let index = at_index(*at);
                quote!((#index as f64))
            }
            Expr::Time => quote!(t),
            Expr::Dt => quote!(dt),
            Expr::Unary(op, a) => {
                let a = self.expr(a);
                match op {
                    Op1::Neg => quote!((-#a)),
                    Op1::Not => quote!((!#a)),
                    Op1::Abs => quote!(#a.abs()),
                    // Without SSE4.1 `f64::floor` etc. are library calls: the abi's
                    // integer versions give the same bits, inline.
                    Op1::Floor => quote!(#abi::snnc_floor(#a)),
                    Op1::Ceil => quote!(#abi::snnc_ceil(#a)),
                    Op1::Trunc => quote!(#abi::snnc_trunc(#a)),
                    Op1::Sqrt => quote!(#a.sqrt()),
                    Op1::BoolToF64 => quote!((if #a { 1.0f64 } else { 0.0f64 })),
                }
            }
            Expr::Binary(op, a, b) => {
                let (x, y) = (self.expr(a), self.expr(b));
                match op {
                    Op2::Add => quote!((#x + #y)),
                    Op2::Sub => quote!((#x - #y)),
                    Op2::Mul => quote!((#x * #y)),
                    Op2::Div => quote!((#x / #y)),
                    Op2::Lt => quote!((#x < #y)),
                    Op2::Le => quote!((#x <= #y)),
                    Op2::Gt => quote!((#x > #y)),
                    Op2::Ge => quote!((#x >= #y)),
                    Op2::Eq => quote!((#x == #y)),
                    Op2::Ne => quote!((#x != #y)),
                    // Both sides evaluated, as the IR says.
                    Op2::And => quote!((#x & #y)),
                    Op2::Or => quote!((#x | #y)),
                    Op2::Min => quote!({
                        let x: f64 = #x;
                        let y: f64 = #y;
                        if x < y { x } else { y }
                    }),
                    Op2::Max => quote!({
                        let x: f64 = #x;
                        let y: f64 = #y;
                        if x > y { x } else { y }
                    }),
                }
            }
            Expr::Call(m, args) => {
                let name = format_ident!("{}", m.symbol());
                let args = args.iter().map(|a| self.expr(a));
                quote!(#abi::#name(#(#args),*))
            }
            Expr::Select(c, a, b) => {
                let (c, x, y) = (self.expr(c), self.expr(a), self.expr(b));
                quote!({
                    let c: bool = #c;
                    let x = #x;
                    let y = #y;
                    if c { x } else { y }
                })
            }
            // The index is a whole number within the observation (see `ir::Expr::Env`).
            Expr::Env { offset, index } => {
                let (offset, index) = (Literal::u32_unsuffixed(*offset), self.expr(index));
                let env = if self.lanes { quote!(env) } else { quote!((*args).env) };
                quote!((*#env.add(#offset + (#index) as usize)))
            }
            Expr::Rand(s) | Expr::Randn(s) if self.lanes => {
                let buffer = format_ident!("r{}", s);
                quote!((*#buffer.get_unchecked(j)))
            }
            Expr::Rand(s) => {
                let key = format_ident!("key{}", s);
                quote!(#abi::snnc_uniform(#key, index))
            }
            Expr::Randn(s) => {
                let key = format_ident!("key{}", s);
                quote!(#abi::snnc_normal(#key, index))
            }
        }
    }
}

/// Whether `s` or a statement nested in it satisfies `f`.
fn contains(s: &Stmt, f: &impl Fn(&Stmt) -> bool) -> bool {
    f(s) || matches!(s, Stmt::If(_, body) if body.iter().any(|s| contains(s, f)))
}

/// The base pointer of variable `v`.
fn var(v: usize) -> proc_macro2::Ident {
    format_ident!("v{}", v)
}

/// Temporary `t`.
fn temp(t: usize) -> proc_macro2::Ident {
    format_ident!("t{}", t)
}

fn at_index(at: At) -> TokenStream {
    if at == At::Pre { quote!(pre_index) } else { quote!(post_index) }
}

/// `bits` as an unsuffixed hexadecimal literal (`0x3ff0000000000000`), which reads
/// better next to `f64::from_bits` than decimal; the same value either way.
fn hex_u64(bits: u64) -> Literal {
    format!("{bits:#x}").parse().unwrap_or_else(|_| Literal::u64_unsuffixed(bits))
}

#[cfg(all(test, feature = "rust-format"))]
mod tests {
    use super::*;
    use proc_macro2::{Delimiter, TokenTree};
    use std::path::PathBuf;

    /// Every model of `models/` and `tests/conformance/`, lowered.
    fn modules() -> Vec<(PathBuf, Module)> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["models", "tests/conformance"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("a model folder") {
                let path = entry.expect("an entry").path();
                if path.extension().is_some_and(|e| e == "snn") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let source = std::fs::read_to_string(&path).expect("read a model");
                let (model, diagnostics) = crate::check(&source);
                let model = model.unwrap_or_else(|| panic!("{}: {diagnostics:?}", path.display()));
                let module = crate::ir::lower(&model).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                (path, module)
            })
            .collect()
    }

    /// The tokens as text, blind to what formatting may change without changing
    /// the code: spacing of punctuation, a trailing comma, `r"..."` for `"..."`
    /// in doc attributes.
    fn normalized(tokens: TokenStream) -> String {
        let mut out = String::new();
        for tree in tokens {
            match tree {
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    let inner = normalized(group.stream());
                    let inner = inner.strip_suffix(", ").unwrap_or(&inner);
                    out.push_str(&format!("{open}{inner}{close} "));
                }
                TokenTree::Literal(literal) => {
                    let text = literal.to_string();
                    let text = match text.strip_prefix("r\"").and_then(|t| t.strip_suffix('"')) {
                        Some(raw) => format!("{raw:?}"),
                        None => text,
                    };
                    out.push_str(&format!("{text} "));
                }
                tree => out.push_str(&format!("{tree} ")),
            }
        }
        out
    }

    #[test]
    fn formatted_output_parses_back_as_the_same_code() {
        let modules = modules();
        assert!(modules.len() >= 15, "models found: {}", modules.len());
        for (path, module) in modules {
            let tokens = generate(&module, &runtime_abi());
            let text = format(&tokens).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
            assert_eq!(file.items.len(), module.kernels.len() + 1, "{}", path.display());
            let reread: TokenStream = text.parse().expect("formatted code lexes");
            assert_eq!(normalized(reread), normalized(tokens), "{}: formatting changed the code", path.display());
        }
    }

    #[test]
    fn constants_keep_their_bits_and_the_abi_path_is_the_callers() {
        let (_, module) = modules().into_iter().find(|(p, _)| p.ends_with("models/cuba.snn")).expect("cuba.snn");
        let text = generate_formatted(&module, &quote!(crate::abi)).expect("formats");
        assert!(text.contains("pub unsafe extern \"C\" fn kernel_0(args: *const crate::abi::KernelArgs)"), "{text}");
        assert!(text.contains("pub static KERNELS: [crate::abi::KernelFn;"), "{text}");
        assert!(text.contains("#[target_feature(enable = \"avx2\")]"), "{text}");
        assert!(!text.contains("snnc_runtime"), "{text}");
        // The connection probability, 0.02, exactly.
        assert!(text.contains(&format!("f64::from_bits({:#x})", 0.02f64.to_bits())), "{text}");
    }

    #[test]
    fn tokens_that_are_not_a_file_are_an_error() {
        let error = format(&quote!(fn)).expect_err("not a file");
        assert!(error.to_string().starts_with("the generated Rust does not parse: "), "{error}");
    }
}

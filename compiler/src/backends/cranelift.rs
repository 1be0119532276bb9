//! The Cranelift back end: every kernel of an IR module becomes one native function
//! (`abi::KernelFn`) in a JIT module that lives as long as the `JitKernels`.
//!
//! The translation is literal: one Cranelift instruction per IR operation, in the
//! IR's order (Cranelift neither reassociates floating point nor forms FMAs), and
//! transcendental functions and random numbers are calls of the `abi` functions.

use super::avx2;
use crate::abi::{self, KernelFn, offsets};
use crate::ir::{Expr, Kernel, Loop, MathFn, Module, Op1, Op2, Stmt, Ty};
use cranelift_codegen::Context;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, Block, BlockArg, FuncRef, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind, Value,
    types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module as _};
use std::collections::BTreeMap;
use std::fmt;

/// Why compilation failed (a bug in the compiler, not in the model: a validated IR
/// never fails here, but the failure is reported, never a panic).
#[derive(Debug, Clone)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code generation failed: {}", self.0)
    }
}

impl std::error::Error for Error {}

fn err(e: impl fmt::Display) -> Error {
    Error(e.to_string())
}

/// Compiled kernels, in the order of `Module::kernels`. The code lives as long as this value.
pub struct JitKernels {
    module: Option<JITModule>,
    functions: Vec<KernelFn>,
}

impl JitKernels {
    /// The compiled functions, indexed like `Module::kernels`.
    pub fn functions(&self) -> &[KernelFn] {
        &self.functions
    }
}

impl Drop for JitKernels {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the function pointers die with `self`; nothing can call them after this.
            unsafe { module.free_memory() };
        }
    }
}

impl fmt::Debug for JitKernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JitKernels({} functions)", self.functions.len())
    }
}

/// Options of the back end.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Run Cranelift's verifier (slower to compile; on in debug builds).
    pub verify: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { verify: cfg!(debug_assertions) }
    }
}

fn new_module(options: Options) -> Result<JITModule, Error> {
    let mut flags = settings::builder();
    flags.set("use_colocated_libcalls", "false").map_err(err)?;
    flags.set("is_pic", "false").map_err(err)?;
    // `none`: Cranelift's e-graph optimizer would re-elaborate the values the IR
    // hoisted into the scalar block back into the loop (measured: a division and a
    // rounding per neuron). The IR is already folded, hoisted and CSE'd.
    flags.set("opt_level", "none").map_err(err)?;
    flags.set("enable_verifier", if options.verify { "true" } else { "false" }).map_err(err)?;
    let isa = cranelift_native::builder().map_err(err)?.finish(settings::Flags::new(flags)).map_err(err)?;
    let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    for (name, address) in abi::symbols() {
        builder.symbol(name, address);
    }
    Ok(JITModule::new(builder))
}

/// Compiles every kernel of the module.
pub fn compile(module: &Module, options: Options) -> Result<JitKernels, Error> {
    let mut jit = new_module(options)?;
    let mut ids = Vec::with_capacity(module.kernels.len());
    let mut ctx = jit.make_context();
    let mut builder_ctx = FunctionBuilderContext::new();
    for kernel in &module.kernels {
        let id = build(&mut jit, &mut ctx, &mut builder_ctx, module, kernel)?;
        jit.define_function(id, &mut ctx).map_err(|e| Error(format!("{}: {e:?}", kernel.name)))?;
        jit.clear_context(&mut ctx);
        ids.push(id);
    }
    jit.finalize_definitions().map_err(err)?;
    let functions = ids
        .iter()
        .map(|&id| {
            let code = jit.get_finalized_function(id);
            // SAFETY: every kernel was built with the `KernelFn` signature (one pointer argument, no result).
            unsafe { std::mem::transmute::<*const u8, KernelFn>(code) }
        })
        .collect();
    Ok(JitKernels { module: Some(jit), functions })
}

/// The machine code of every kernel, as Cranelift's disassembly (`snnc emit --asm`).
pub fn asm_text(module: &Module) -> Result<String, Error> {
    let mut jit = new_module(Options { verify: false })?;
    let mut ctx = jit.make_context();
    let mut builder_ctx = FunctionBuilderContext::new();
    let mut out = String::new();
    for kernel in &module.kernels {
        let id = build(&mut jit, &mut ctx, &mut builder_ctx, module, kernel)?;
        ctx.set_disasm(true);
        jit.define_function(id, &mut ctx).map_err(|e| Error(format!("{}: {e:?}", kernel.name)))?;
        let text = ctx.compiled_code().and_then(|c| c.vcode.clone()).unwrap_or_default();
        out.push_str(&format!("; kernel {}\n{text}\n", kernel.name));
        if let Some(routine) = avx2_routine(kernel, module) {
            // Cranelift can not disassemble it: the bytes, for `objdump -b binary -m i386:x86-64 -D`.
            let hex: Vec<String> = routine.code.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(
                "; kernel {}_avx2 ({} bytes)\n{}\n\n",
                kernel.name,
                routine.code.len(),
                hex.join(" ")
            ));
        }
        jit.clear_context(&mut ctx);
    }
    // SAFETY: nothing was finalized; no function pointer exists.
    unsafe { jit.free_memory() };
    Ok(out)
}

/// The Cranelift IR of every kernel, as text (`snnc emit --clif`).
pub fn clif_text(module: &Module) -> Result<String, Error> {
    let mut jit = new_module(Options { verify: true })?;
    let mut ctx = jit.make_context();
    let mut builder_ctx = FunctionBuilderContext::new();
    let mut out = String::new();
    for kernel in &module.kernels {
        build(&mut jit, &mut ctx, &mut builder_ctx, module, kernel)?;
        out.push_str(&format!("; kernel {}\n{}\n", kernel.name, ctx.func.display()));
        jit.clear_context(&mut ctx);
    }
    // SAFETY: nothing was finalized; no function pointer exists.
    unsafe { jit.free_memory() };
    Ok(out)
}

/// Builds one kernel's function into `ctx` and declares it.
fn build(
    jit: &mut JITModule,
    ctx: &mut Context,
    builder_ctx: &mut FunctionBuilderContext,
    module: &Module,
    kernel: &Kernel,
) -> Result<FuncId, Error> {
    let pointer = jit.target_config().pointer_type();
    let mut signature = jit.make_signature();
    signature.params.push(AbiParam::new(pointer));
    let id = jit.declare_function(&kernel.name, Linkage::Local, &signature).map_err(err)?;
    ctx.func.signature = signature;

    // Imports: the math functions and random numbers this kernel calls.
    let mut imports: BTreeMap<&'static str, FuncRef> = BTreeMap::new();
    let mut wanted: Vec<(&'static str, Vec<types::Type>, Option<types::Type>)> = Vec::new();
    collect_calls(kernel, pointer, &mut wanted);
    for (symbol, params, ret) in wanted {
        if imports.contains_key(symbol) {
            continue;
        }
        let mut sig = Signature::new(jit.isa().default_call_conv());
        sig.params.extend(params.into_iter().map(AbiParam::new));
        sig.returns.extend(ret.map(AbiParam::new));
        let f = jit.declare_function(symbol, Linkage::Import, &sig).map_err(err)?;
        imports.insert(symbol, jit.declare_func_in_func(f, &mut ctx.func));
    }

    // An element-wise loop's four-item part: AVX2 code of our own (see `avx2`).
    let avx2 = match avx2_routine(kernel, module) {
        Some(routine) => {
            let mut sig = Signature::new(jit.isa().default_call_conv());
            sig.params.extend([AbiParam::new(pointer), AbiParam::new(types::I64), AbiParam::new(types::I64)]);
            let f = jit.declare_function(&format!("{}_avx2", kernel.name), Linkage::Local, &sig).map_err(err)?;
            jit.define_function_bytes(f, 16, &routine.code, &[]).map_err(err)?;
            Some((jit.declare_func_in_func(f, &mut ctx.func), routine))
        }
        None => None,
    };

    let mut b = FunctionBuilder::new(&mut ctx.func, builder_ctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let args = b.block_params(entry)[0];
    let flags = MemFlagsData::trusted();
    let field = |b: &mut FunctionBuilder<'_>, ty, offset: i32| b.ins().load(ty, flags, args, offset);
    let n = field(&mut b, types::I64, offsets::N);
    let step = field(&mut b, types::I64, offsets::STEP);
    let t = field(&mut b, types::F64, offsets::T);
    let dt = field(&mut b, types::F64, offsets::DT);
    let vars = field(&mut b, pointer, offsets::VARS);
    let params = field(&mut b, pointer, offsets::PARAMS);
    let tables = field(&mut b, pointer, offsets::TABLES);
    let spikes = field(&mut b, pointer, offsets::SPIKES);
    let n_spikes = field(&mut b, pointer, offsets::N_SPIKES);
    let seed = field(&mut b, types::I64, offsets::SEED);
    let indices = SynapseIndices {
        pre: field(&mut b, pointer, offsets::PRE),
        post: field(&mut b, pointer, offsets::POST),
        pre_offsets: field(&mut b, pointer, offsets::PRE_OFFSETS),
        post_offsets: field(&mut b, pointer, offsets::POST_OFFSETS),
        post_order: field(&mut b, pointer, offsets::POST_ORDER),
    };
    let aux = field(&mut b, types::I64, offsets::AUX);
    let env = field(&mut b, pointer, offsets::ENV);

    // Base pointers, parameters and tables, loaded once.
    let uses = kernel.uses();
    let load_each = |b: &mut FunctionBuilder<'_>, ids: &[usize], ty, base| -> Result<BTreeMap<usize, Value>, Error> {
        ids.iter().map(|&id| Ok((id, b.ins().load(ty, flags, base, i32::try_from(id * 8).map_err(err)?)))).collect()
    };
    let bases = load_each(&mut b, &uses.vars, pointer, vars)?;
    let param_values = load_each(&mut b, &uses.params, types::F64, params)?;
    let table_bases = load_each(&mut b, &uses.tables, pointer, tables)?;
    let temps: Vec<Variable> =
        kernel.temps.iter().map(|ty| b.declare_var(if *ty == Ty::Bool { types::I8 } else { types::F64 })).collect();
    let spike_count = b.declare_var(types::I64);
    let zero = b.ins().iconst(types::I64, 0);
    b.def_var(spike_count, zero);

    let mut code = Gen {
        b,
        module,
        pointer,
        flags,
        index: zero,
        pre_index: zero,
        post_index: zero,
        t,
        dt,
        step,
        seed,
        spikes,
        env,
        spike_count,
        bases,
        params: param_values,
        tables: table_bases,
        temps,
        temp_types: kernel.temps.clone(),
        imports,
        keys: BTreeMap::new(),
        avx2,
    };
    // One key per random stream, computed once per call.
    for stream in uses.streams {
        let s = code.b.ins().iconst(types::I64, i64::from(stream));
        let (seed, step) = (code.seed, code.step);
        let key = code.call("snnc_rng_key", &[seed, step, s])?;
        code.keys.insert(stream, key);
    }
    for s in &kernel.scalar {
        code.stmt(s)?;
    }
    match kernel.looping {
        Loop::Once => {
            for s in &kernel.body {
                code.stmt(s)?;
            }
        }
        looping => {
            let header = code.b.create_block();
            let body = code.b.create_block();
            let exit = code.b.create_block();
            code.b.append_block_param(header, types::I64);
            // Element-wise loops run two items at a time (f64x2), then the rest one by one.
            let start = if matches!(looping, Loop::Neurons | Loop::Synapses) && vectorizable(kernel, module) {
                code.vector_loop(&kernel.body, n)?
            } else if let Some(condition) = guard(kernel) {
                code.pre_index = aux;
                code.guarded_pairs(condition, &kernel.body, n)?
            } else {
                zero
            };
            code.b.ins().jump(header, &[BlockArg::from(start)]);
            code.b.switch_to_block(header);
            let k = code.b.block_params(header)[0];
            let more = code.b.ins().icmp(IntCC::UnsignedLessThan, k, n);
            code.b.ins().brif(more, body, &[], exit, &[]);
            code.b.switch_to_block(body);
            match looping {
                Loop::Neurons => {
                    code.index = k;
                    code.body(&kernel.body)?;
                }
                Loop::Spikes => {
                    code.index = code.load_u32(spikes, k);
                    code.body(&kernel.body)?;
                }
                Loop::Synapses => {
                    code.index = k;
                    // Only the neuron indices the body uses are loaded.
                    let (pre, post) = uses_neurons(kernel);
                    if pre {
                        code.pre_index = code.load_u32(indices.pre, k);
                    }
                    if post {
                        code.post_index = code.load_u32(indices.post, k);
                    }
                    code.body(&kernel.body)?;
                }
                Loop::SynapseList => {
                    let synapse = code.load_u32(spikes, k);
                    code.index = synapse;
                    code.pre_index = code.load_u32(indices.pre, synapse);
                    code.post_index = code.load_u32(indices.post, synapse);
                    code.body(&kernel.body)?;
                }
                Loop::Pairs => {
                    code.index = k;
                    code.pre_index = aux;
                    code.post_index = k;
                    code.body(&kernel.body)?;
                }
                Loop::PreSpikes | Loop::PostSpikes => {
                    // The synapses of spiking neuron `neuron`: a range of the CSR index.
                    let neuron = code.load_u32(spikes, k);
                    let offsets = if looping == Loop::PreSpikes { indices.pre_offsets } else { indices.post_offsets };
                    let start = code.load_u32(offsets, neuron);
                    let after = code.b.ins().iadd_imm_u(neuron, 1);
                    let end = code.load_u32(offsets, after);
                    let inner = code.b.create_block();
                    let inner_body = code.b.create_block();
                    let inner_exit = code.b.create_block();
                    code.b.append_block_param(inner, types::I64);
                    code.b.ins().jump(inner, &[BlockArg::from(start)]);
                    code.b.switch_to_block(inner);
                    let m = code.b.block_params(inner)[0];
                    let more = code.b.ins().icmp(IntCC::UnsignedLessThan, m, end);
                    code.b.ins().brif(more, inner_body, &[], inner_exit, &[]);
                    code.b.switch_to_block(inner_body);
                    if looping == Loop::PreSpikes {
                        code.index = m;
                        code.pre_index = neuron;
                        code.post_index = code.load_u32(indices.post, m);
                    } else {
                        let synapse = code.load_u32(indices.post_order, m);
                        code.index = synapse;
                        code.pre_index = code.load_u32(indices.pre, synapse);
                        code.post_index = neuron;
                    }
                    code.body(&kernel.body)?;
                    let next = code.b.ins().iadd_imm_u(m, 1);
                    code.b.ins().jump(inner, &[BlockArg::from(next)]);
                    code.b.switch_to_block(inner_exit);
                }
                Loop::Once => {}
            }
            let next = code.b.ins().iadd_imm_u(k, 1);
            code.b.ins().jump(header, &[BlockArg::from(next)]);
            code.b.switch_to_block(exit);
        }
    }
    if matches!(kernel.kind, crate::ir::KernelKind::Threshold | crate::ir::KernelKind::Connect) {
        let count = code.b.use_var(spike_count);
        code.b.ins().store(flags, count, n_spikes, 0);
    }
    code.b.ins().return_(&[]);
    code.b.seal_all_blocks();
    code.b.finalize(jit.target_config());
    Ok(id)
}

/// The AVX2 routine of an element-wise loop, where this machine has AVX2.
fn avx2_routine(kernel: &Kernel, module: &Module) -> Option<avx2::Routine> {
    let per_item = |v: usize| module.layout.vars.get(v).is_some_and(|info| !info.scalar);
    let eligible = matches!(kernel.looping, Loop::Neurons | Loop::Synapses) && vectorizable(kernel, module);
    if eligible && avx2::available() { avx2::compile(&kernel.body, &per_item) } else { None }
}

/// Whether a synapse kernel's body reads its presynaptic and postsynaptic neurons.
fn uses_neurons(kernel: &Kernel) -> (bool, bool) {
    fn stores(s: &Stmt, mark: &mut impl FnMut(crate::ir::At)) {
        match s {
            Stmt::StoreAt(_, at, _) => mark(*at),
            Stmt::If(_, body) => body.iter().for_each(|s| stores(s, mark)),
            _ => {}
        }
    }
    let (mut pre, mut post) = (false, false);
    let mut mark = |at: crate::ir::At| *(if at == crate::ir::At::Pre { &mut pre } else { &mut post }) = true;
    for s in kernel.scalar.iter().chain(&kernel.body) {
        stores(s, &mut mark);
        crate::ir::visit_exprs(s, &mut |e| {
            if let Expr::LoadAt(_, at) | Expr::IndexAt(at) = e {
                mark(*at);
            }
        });
    }
    (pre, post)
}

/// The condition of a body that is one `if` (a threshold: `if v > v_th { ... }`,
/// or a Poisson group's `if rand() < p*dt { ... }`) when two items can test it at
/// once: element-wise (random numbers come from batch buffers).
fn guard(kernel: &Kernel) -> Option<&Expr> {
    let [Stmt::If(condition, _)] = kernel.body.as_slice() else { return None };
    let looping = matches!(kernel.looping, Loop::Neurons | Loop::Pairs);
    (looping && condition.ty(&kernel.temps) == Ty::Bool && lane_wise(condition, kernel)).then_some(condition)
}

/// The ABI functions of a uniform or `normal` draw: one item, and a batch into a buffer.
fn draw_symbols(normal: bool) -> (&'static str, &'static str) {
    if normal { ("snnc_normal", "snnc_fill_normals") } else { ("snnc_uniform", "snnc_fill_uniforms") }
}

/// Whether a loop body is element-wise code that runs the same, bit for bit,
/// two items at a time: `Let`s and stores of the current item's variables (none
/// shared), of loads, constants, parameters, temporaries, `+ - * /`, negation,
/// `abs`, `sqrt`, `min`, `max`, comparisons of numbers, `and`/`or`/`not`, selects
/// and random numbers (drawn a batch at a time into buffers); no calls, `if`s or
/// indices. Booleans are lane masks.
fn vectorizable(kernel: &Kernel, module: &Module) -> bool {
    let scalar = |v: usize| module.layout.vars.get(v).is_none_or(|info| info.scalar);
    !kernel.body.is_empty()
        && kernel.body.iter().all(|s| match s {
            Stmt::Let(_, e) => lane_wise(e, kernel),
            Stmt::Store(v, e) => !scalar(*v) && lane_wise(e, kernel),
            _ => false,
        })
}

/// Whether a leaf of a lane-wise expression is splatted (the same for every item)
/// where it is not a per-item variable or a temporary of the loop body. `i`, the
/// presynaptic neuron, is the same for a whole loop over candidate targets.
pub(super) fn splattable(e: &Expr) -> bool {
    matches!(
        e,
        Expr::F64(_)
            | Expr::Bool(_)
            | Expr::Param(_)
            | Expr::Load(_)
            | Expr::Temp(_)
            | Expr::Time
            | Expr::Dt
            | Expr::IndexAt(crate::ir::At::Pre)
    )
}

/// Whether an expression of a kernel's loop computes the same, bit for bit, for
/// two items at once (see `vectorizable`). The item's index is the loop counter in
/// loops over neurons, synapses or candidate targets (`j`, the counter, and `i`,
/// the same for the whole loop).
fn lane_wise(e: &Expr, kernel: &Kernel) -> bool {
    let temps = &kernel.temps;
    let lane_wise = |e| lane_wise(e, kernel);
    match e {
        Expr::Index => matches!(kernel.looping, Loop::Neurons | Loop::Synapses | Loop::Pairs),
        Expr::IndexAt(_) => kernel.looping == Loop::Pairs,
        Expr::Rand(_) | Expr::Randn(_) => true,
        e if splattable(e) => true,
        Expr::Unary(Op1::Neg | Op1::Abs | Op1::Sqrt | Op1::Not | Op1::BoolToF64, a) => lane_wise(a),
        Expr::Binary(Op2::Add | Op2::Sub | Op2::Mul | Op2::Div | Op2::Min | Op2::Max | Op2::And | Op2::Or, a, b) => {
            lane_wise(a) && lane_wise(b)
        }
        // Comparisons of numbers (of booleans, `==` and `!=`, are not lane masks).
        Expr::Binary(op, a, b) if op.is_comparison() => a.ty(temps) == Ty::F64 && lane_wise(a) && lane_wise(b),
        Expr::Select(c, a, b) => lane_wise(c) && lane_wise(a) && lane_wise(b),
        _ => false,
    }
}

/// The functions a kernel calls, with their signatures, and its random streams.
fn collect_calls(
    kernel: &Kernel,
    pointer: types::Type,
    out: &mut Vec<(&'static str, Vec<types::Type>, Option<types::Type>)>,
) {
    for s in kernel.scalar.iter().chain(&kernel.body) {
        crate::ir::visit_exprs(s, &mut |e| match e {
            Expr::Call(m, _) => out.push((m.symbol(), vec![types::F64; m.arity()], Some(types::F64))),
            Expr::Rand(_) | Expr::Randn(_) => {
                let (one, batch) = draw_symbols(matches!(e, Expr::Randn(_)));
                out.push((one, vec![types::I64; 2], Some(types::F64)));
                out.push((batch, vec![types::I64, types::I64, pointer, types::I64], None));
                out.push(("snnc_rng_key", vec![types::I64; 3], Some(types::I64)));
            }
            _ => {}
        });
    }
}

/// What a batch of a vector loop runs: element-wise code, or a guarded body.
#[derive(Clone, Copy)]
enum Pass<'a> {
    Vector(&'a [Stmt]),
    Guarded(&'a Expr, &'a [Stmt]),
}

/// What the vector loops of a kernel share: splatted invariants (by the `Debug` text
/// of their expression), the buffer of each random stream, and the byte offset of
/// the current batch's first item.
struct Lanes {
    /// The argument block of the AVX2 routine, when there is one.
    block: Option<Value>,
    splats: BTreeMap<String, (Expr, Value)>,
    buffers: BTreeMap<u32, Value>,
    first_bytes: Option<Value>,
}

/// Pointers to a pathway's synapse index arrays.
#[derive(Clone, Copy)]
struct SynapseIndices {
    pre: Value,
    post: Value,
    pre_offsets: Value,
    post_offsets: Value,
    post_order: Value,
}

/// The code generator of one kernel.
struct Gen<'a, 'm> {
    b: FunctionBuilder<'a>,
    module: &'m Module,
    /// The target's pointer type.
    pointer: types::Type,
    flags: MemFlagsData,
    /// The current item's index (i64).
    index: Value,
    /// In synapse kernels: the current synapse's presynaptic and postsynaptic neuron.
    pre_index: Value,
    post_index: Value,
    t: Value,
    dt: Value,
    step: Value,
    seed: Value,
    spikes: Value,
    /// `KernelArgs::env`.
    env: Value,
    spike_count: Variable,
    bases: BTreeMap<usize, Value>,
    params: BTreeMap<usize, Value>,
    tables: BTreeMap<usize, Value>,
    temps: Vec<Variable>,
    temp_types: Vec<Ty>,
    imports: BTreeMap<&'static str, FuncRef>,
    /// The key of each random stream (`abi::snnc_rng_key`).
    keys: BTreeMap<u32, Value>,
    /// The AVX2 routine of an element-wise loop, if it has one.
    avx2: Option<(FuncRef, avx2::Routine)>,
}

impl Gen<'_, '_> {
    /// `base[index]` of a `u32` array, widened to i64.
    fn load_u32(&mut self, base: Value, index: Value) -> Value {
        let offset = self.b.ins().imul_imm_u(index, 4);
        let address = self.b.ins().iadd(base, offset);
        let value = self.b.ins().load(types::I32, self.flags, address, 0);
        self.b.ins().uextend(types::I64, value)
    }

    fn body(&mut self, stmts: &[Stmt]) -> Result<(), Error> {
        stmts.iter().try_for_each(|s| self.stmt(s))
    }

    /// Runs `body` (element-wise, see `vectorizable`) over items `0..n` as f64x2:
    /// four items per iteration (two vectors), then two; returns the first item
    /// left for the scalar loop. Values the same for every item are splatted once,
    /// before the loops. A body with random numbers runs in batches of
    /// `abi::BATCH` items, each drawing its numbers into stack buffers first
    /// (`abi::snnc_fill_normals`: the same bits as one call per item).
    fn vector_loop(&mut self, body: &[Stmt], n: Value) -> Result<Value, Error> {
        self.batched(Pass::Vector(body), n)
    }

    /// Runs `pass` over items `0..n` (see `vector_loop`), in batches with buffers of
    /// random numbers if its vector code draws any; returns the first item left
    /// for the scalar loop.
    fn batched(&mut self, pass: Pass<'_>, n: Value) -> Result<Value, Error> {
        let mut lanes = Lanes { block: None, splats: BTreeMap::new(), buffers: BTreeMap::new(), first_bytes: None };
        if let (Pass::Vector(_), Some((_, routine))) = (pass, &self.avx2) {
            lanes.block = Some(self.routine_block(&routine.slots.clone())?);
        }
        // The random streams of the code that runs two items at a time.
        let uses = match pass {
            Pass::Vector(body) => crate::ir::Uses::of(body),
            Pass::Guarded(condition, _) => crate::ir::Uses::of_expr(condition),
        };
        let streams: Vec<(u32, &'static str)> =
            uses.streams.iter().map(|&k| (k, draw_symbols(uses.normals.contains(&k)).1)).collect();
        let zero = self.b.ins().iconst(types::I64, 0);
        if streams.is_empty() {
            self.splat_pass(pass, &mut lanes.splats)?;
            let rest = self.run_pass(pass, zero, n, &lanes)?;
            self.rebind_to_splats(&lanes.splats)?;
            return Ok(rest);
        }
        let batch = i64::try_from(abi::BATCH).map_err(err)?;
        for &(k, _) in &streams {
            let bytes = u32::try_from(abi::BATCH * 8).map_err(err)?;
            let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes, 4));
            let address = self.b.ins().stack_addr(self.pointer, slot, 0);
            lanes.buffers.insert(k, address);
        }
        // Batches from item `first` while two or more items remain.
        let (header, first, _, done) = self.open_loop(zero, n, 2);
        let remaining = self.b.ins().isub(n, first);
        let whole = self.b.ins().iconst(types::I64, batch);
        let len = self.b.ins().umin(remaining, whole);
        for &(k, symbol) in &streams {
            let key = *self.keys.get(&k).ok_or_else(|| Error(format!("no key for stream {k}")))?;
            self.call_void(symbol, &[key, first, lanes.buffers[&k], len])?;
        }
        // Splatted after the calls, which keep no vector register: made before them,
        // the splats would be reloaded from the stack in every iteration.
        self.splat_pass(pass, &mut lanes.splats)?;
        let even = self.b.ins().band_imm_u(len, !1);
        let end = self.b.ins().iadd(first, even);
        lanes.first_bytes = Some(self.b.ins().ishl_imm_u(first, 3));
        let rest = self.run_pass(pass, first, end, &lanes)?;
        Ok(self.close_loop(header, rest, done))
    }

    /// Opens a loop over items from `start`, `step` at a time, while `step` more fit
    /// before `end`: makes its blocks, enters it and leaves the builder in its body.
    /// Returns the loop's header, the current item, the item `step` after it and the
    /// exit block.
    fn open_loop(&mut self, start: Value, end: Value, step: i64) -> (Block, Value, Value, Block) {
        let header = self.b.create_block();
        let block = self.b.create_block();
        let done = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        self.b.append_block_param(done, types::I64);
        self.b.ins().jump(header, &[BlockArg::from(start)]);
        self.b.switch_to_block(header);
        let k = self.b.block_params(header)[0];
        let next = self.b.ins().iadd_imm_u(k, step);
        let fits = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, end);
        self.b.ins().brif(fits, block, &[], done, &[BlockArg::from(k)]);
        self.b.switch_to_block(block);
        (header, k, next, done)
    }

    /// Closes a loop of `open_loop`, going on at item `next`; returns the first item
    /// the loop left undone.
    fn close_loop(&mut self, header: Block, next: Value, done: Block) -> Value {
        self.b.ins().jump(header, &[BlockArg::from(next)]);
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    /// Makes the scalar loop after a vector one read its invariant numbers from the
    /// first lanes of their splats, so that the scalars die where they are splatted:
    /// kept alive for the scalar loop, they took registers from the vector loop and
    /// its splats were reloaded from the stack at every use.
    fn rebind_to_splats(&mut self, splats: &BTreeMap<String, (Expr, Value)>) -> Result<(), Error> {
        for (e, splat) in splats.values() {
            if self.b.func.dfg.value_type(*splat) != types::F64X2 {
                continue;
            }
            let lane = self.b.ins().extractlane(*splat, 0);
            match e {
                Expr::Temp(t) => {
                    let var = *self.temps.get(*t).ok_or_else(|| Error(format!("temporary %{t} has no type")))?;
                    self.b.def_var(var, lane);
                }
                Expr::Param(p) => {
                    self.params.insert(*p, lane);
                }
                Expr::Time => self.t = lane,
                Expr::Dt => self.dt = lane,
                _ => {}
            }
        }
        Ok(())
    }

    /// The argument block of an AVX2 routine, with the slots that stay the same for
    /// the whole kernel filled in (array bases, invariants, constants).
    fn routine_block(&mut self, slots: &[avx2::Slot]) -> Result<Value, Error> {
        let bytes = u32::try_from(slots.len() * 8).map_err(err)?;
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes, 3));
        let block = self.b.ins().stack_addr(self.pointer, slot, 0);
        for (k, s) in slots.iter().enumerate() {
            let value = match s {
                avx2::Slot::Array(v) => {
                    *self.bases.get(v).ok_or_else(|| Error(format!("variable {v} has no base pointer")))?
                }
                avx2::Slot::Value(e) => {
                    let x = self.expr(e)?;
                    if self.b.func.dfg.value_type(x) == types::I8 {
                        let wide = self.b.ins().uextend(types::I64, x);
                        self.b.ins().ineg(wide)
                    } else {
                        x
                    }
                }
                avx2::Slot::Bits(bits) => self.b.ins().iconst(types::I64, i64::from_ne_bytes(bits.to_ne_bytes())),
                avx2::Slot::Buffer(_) | avx2::Slot::First(_) => continue,
            };
            self.b.ins().store(MemFlagsData::trusted(), value, block, i32::try_from(k * 8).map_err(err)?);
        }
        Ok(block)
    }

    /// Calls an AVX2 routine over the items from `start` that fill whole vectors of
    /// four before `end`; returns the first item after them.
    fn call_routine(
        &mut self,
        f: FuncRef,
        slots: &[avx2::Slot],
        block: Value,
        start: Value,
        end: Value,
        lanes: &Lanes,
    ) -> Result<Value, Error> {
        for (k, s) in slots.iter().enumerate() {
            let value = match s {
                avx2::Slot::Buffer(stream) => {
                    let (buffer, first) = match (lanes.buffers.get(stream), lanes.first_bytes) {
                        (Some(&buffer), Some(first)) => (buffer, first),
                        _ => return Err(Error(format!("no buffer of random stream {stream}"))),
                    };
                    self.b.ins().isub(buffer, first)
                }
                avx2::Slot::First(lane) => {
                    let item = self.b.ins().iadd_imm_u(start, i64::from(*lane));
                    self.b.ins().fcvt_from_uint(types::F64, item)
                }
                _ => continue,
            };
            self.b.ins().store(MemFlagsData::trusted(), value, block, i32::try_from(k * 8).map_err(err)?);
        }
        let count = self.b.ins().isub(end, start);
        let whole = self.b.ins().band_imm_u(count, !3);
        let stop = self.b.ins().iadd(start, whole);
        self.b.ins().call(f, &[block, start, stop]);
        Ok(stop)
    }

    /// The splats a pass uses.
    fn splat_pass(&mut self, pass: Pass<'_>, splats: &mut BTreeMap<String, (Expr, Value)>) -> Result<(), Error> {
        match pass {
            Pass::Vector(body) => self.splat_all(body, splats),
            Pass::Guarded(condition, body) => self.splat_invariants(condition, body, splats),
        }
    }

    /// A pass over items `start..end` (an even count); returns `end`.
    fn run_pass(&mut self, pass: Pass<'_>, start: Value, end: Value, lanes: &Lanes) -> Result<Value, Error> {
        match pass {
            Pass::Vector(body) => {
                let rest = match (lanes.block, &self.avx2) {
                    (Some(block), Some((f, routine))) => {
                        let (f, slots) = (*f, routine.slots.clone());
                        self.call_routine(f, &slots, block, start, end, lanes)?
                    }
                    _ => self.vector_pass(body, start, end, 2, lanes)?,
                };
                self.vector_pass(body, rest, end, 1, lanes)
            }
            Pass::Guarded(condition, body) => self.pair_pass(condition, body, start, end, lanes),
        }
    }

    /// `splat_invariants` of every expression of an element-wise body.
    fn splat_all(&mut self, body: &[Stmt], splats: &mut BTreeMap<String, (Expr, Value)>) -> Result<(), Error> {
        for s in body {
            if let Stmt::Let(_, e) | Stmt::Store(_, e) = s {
                self.splat_invariants(e, body, splats)?;
            }
        }
        Ok(())
    }

    /// A value the same in both lanes: a float splatted, a boolean as a lane mask.
    fn splat(&mut self, x: Value) -> Value {
        if self.b.func.dfg.value_type(x) == types::I8 {
            let wide = self.b.ins().uextend(types::I64, x);
            let mask = self.b.ins().ineg(wide);
            self.b.ins().splat(types::I64X2, mask)
        } else {
            self.b.ins().splat(types::F64X2, x)
        }
    }

    /// Splats of the loop-invariant leaves of `e` (not temporaries the body defines),
    /// and of 1.0 and 0.0 where a boolean becomes a number.
    fn splat_invariants(
        &mut self,
        e: &Expr,
        body: &[Stmt],
        splats: &mut BTreeMap<String, (Expr, Value)>,
    ) -> Result<(), Error> {
        let defined = |t: usize| body.iter().any(|s| matches!(s, Stmt::Let(u, _) if *u == t));
        match e {
            Expr::Load(v) if self.module.layout.vars.get(*v).is_some_and(|info| !info.scalar) => {}
            Expr::Temp(t) if defined(*t) => {}
            e if splattable(e) => {
                if let std::collections::btree_map::Entry::Vacant(slot) = splats.entry(format!("{e:?}")) {
                    let x = self.expr(e)?;
                    slot.insert((e.clone(), self.splat(x)));
                }
            }
            _ => {
                if let Expr::Unary(Op1::BoolToF64, _) = e {
                    self.splat_invariants(&Expr::F64(1.0), body, splats)?;
                    self.splat_invariants(&Expr::F64(0.0), body, splats)?;
                }
                for c in e.children() {
                    self.splat_invariants(c, body, splats)?;
                }
            }
        }
        Ok(())
    }

    /// One vector loop from item `start` while the items fit before `end`, `copies`
    /// f64x2 vectors per iteration; returns the first item not done.
    fn vector_pass(
        &mut self,
        body: &[Stmt],
        start: Value,
        end: Value,
        copies: i64,
        lanes: &Lanes,
    ) -> Result<Value, Error> {
        let (header, k, next, done) = self.open_loop(start, end, 2 * copies);
        let base_offset = self.b.ins().ishl_imm_u(k, 3);
        for copy in 0..copies {
            let offset = self.b.ins().iadd_imm_u(base_offset, 16 * copy);
            let mut temps: BTreeMap<usize, Value> = BTreeMap::new();
            for s in body {
                match s {
                    Stmt::Let(t, e) => {
                        let value = self.vector_expr(e, offset, &temps, lanes)?;
                        temps.insert(*t, value);
                    }
                    Stmt::Store(v, e) => {
                        let value = self.vector_expr(e, offset, &temps, lanes)?;
                        let base =
                            *self.bases.get(v).ok_or_else(|| Error(format!("variable {v} has no base pointer")))?;
                        let address = self.b.ins().iadd(base, offset);
                        self.b.ins().store(MemFlagsData::new().with_notrap(), value, address, 0);
                    }
                    _ => return Err(Error("a statement that can not be vectorized".into())),
                }
            }
        }
        Ok(self.close_loop(header, next, done))
    }

    /// Runs a body that is one `if` (see `guard`) two items at a time: the condition
    /// of both at once (its random numbers drawn a batch at a time), and only when it
    /// holds for one of them, the body for each in turn (the scalar code, so effects
    /// keep their order). Returns the first item left for the scalar loop.
    fn guarded_pairs(&mut self, condition: &Expr, body: &[Stmt], n: Value) -> Result<Value, Error> {
        self.batched(Pass::Guarded(condition, body), n)
    }

    /// The pairs of `guarded_pairs` from item `start` while they fit before `end`.
    fn pair_pass(
        &mut self,
        condition: &Expr,
        body: &[Stmt],
        start: Value,
        end: Value,
        lanes: &Lanes,
    ) -> Result<Value, Error> {
        let (header, k, next, done) = self.open_loop(start, end, 2);
        let each = self.b.create_block();
        let offset = self.b.ins().ishl_imm_u(k, 3);
        let mask = self.vector_expr(condition, offset, &BTreeMap::new(), lanes)?;
        let any = self.b.ins().vany_true(mask);
        self.b.ins().brif(any, each, &[], header, &[BlockArg::from(next)]);
        self.b.switch_to_block(each);
        let items = [k, self.b.ins().iadd_imm_u(k, 1)];
        match body {
            // The mask's lanes decide, unless the first item's effects could change
            // the second's condition: no calls (random numbers come from the buffers)
            // and nothing live across one in the loop.
            [Stmt::If(_, then)] if self.lanes_decide(condition, then) => {
                for (lane, item) in (0u8..).zip(items) {
                    let taken = self.b.ins().extractlane(mask, lane);
                    let run = self.b.create_block();
                    let after = self.b.create_block();
                    self.b.ins().brif(taken, run, &[], after, &[]);
                    self.b.switch_to_block(run);
                    (self.index, self.post_index) = (item, item);
                    self.body(then)?;
                    self.b.ins().jump(after, &[]);
                    self.b.switch_to_block(after);
                }
            }
            _ => {
                for item in items {
                    (self.index, self.post_index) = (item, item);
                    self.body(body)?;
                }
            }
        }
        Ok(self.close_loop(header, next, done))
    }

    /// Whether a guard's lane mask can stand for its condition item by item: `then`
    /// stores no shared variable the condition reads (per-item ones are the item's own).
    fn lanes_decide(&self, condition: &Expr, then: &[Stmt]) -> bool {
        let read = crate::ir::Uses::of_expr(condition).vars;
        let shared = |v: &usize| self.module.layout.vars.get(*v).is_none_or(|info| info.scalar);
        !crate::ir::stored_vars(then).iter().any(|v| shared(v) && read.contains(v))
    }

    /// `mask` (i64x2) as f64x2 bits, for `bitselect` between floats.
    fn float_mask(&mut self, mask: Value) -> Value {
        self.b.ins().bitcast(types::F64X2, MemFlagsData::new(), mask)
    }

    /// An element-wise expression for two items at `offset` bytes: f64x2 for numbers,
    /// an i64x2 lane mask for booleans.
    fn vector_expr(
        &mut self,
        e: &Expr,
        offset: Value,
        temps: &BTreeMap<usize, Value>,
        lanes: &Lanes,
    ) -> Result<Value, Error> {
        let splat = |e: &Expr| {
            lanes.splats.get(&format!("{e:?}")).map(|&(_, v)| v).ok_or_else(|| Error(format!("no splat of {e:?}")))
        };
        Ok(match e {
            Expr::Load(v) if self.module.layout.vars.get(*v).is_some_and(|info| !info.scalar) => {
                let base = *self.bases.get(v).ok_or_else(|| Error(format!("variable {v} has no base pointer")))?;
                let address = self.b.ins().iadd(base, offset);
                self.b.ins().load(types::F64X2, MemFlagsData::new().with_notrap(), address, 0)
            }
            Expr::Temp(t) if temps.contains_key(t) => temps[t],
            e if splattable(e) => splat(e)?,
            // The counter: items `offset / 8` and the next (exact as floats below 2^53).
            Expr::Index | Expr::IndexAt(crate::ir::At::Post) => {
                let k = self.b.ins().ushr_imm_u(offset, 3);
                let first = self.b.ins().fcvt_from_uint(types::F64, k);
                let after = self.b.ins().iadd_imm_u(k, 1);
                let second = self.b.ins().fcvt_from_uint(types::F64, after);
                let both = self.b.ins().splat(types::F64X2, first);
                self.b.ins().insertlane(both, second, 1)
            }
            Expr::Rand(k) | Expr::Randn(k) => {
                let (buffer, first) = match (lanes.buffers.get(k), lanes.first_bytes) {
                    (Some(&buffer), Some(first)) => (buffer, first),
                    _ => return Err(Error(format!("no buffer of random stream {k}"))),
                };
                let within = self.b.ins().isub(offset, first);
                let address = self.b.ins().iadd(buffer, within);
                self.b.ins().load(types::F64X2, MemFlagsData::new().with_notrap(), address, 0)
            }
            Expr::Unary(op, a) => {
                let x = self.vector_expr(a, offset, temps, lanes)?;
                match op {
                    Op1::Neg => self.b.ins().fneg(x),
                    Op1::Abs => self.b.ins().fabs(x),
                    Op1::Sqrt => self.b.ins().sqrt(x),
                    Op1::Not => self.b.ins().bnot(x),
                    Op1::BoolToF64 => {
                        let (one, zero) = (splat(&Expr::F64(1.0))?, splat(&Expr::F64(0.0))?);
                        let mask = self.float_mask(x);
                        self.b.ins().bitselect(mask, one, zero)
                    }
                    _ => return Err(Error("a unary operation that can not be vectorized".into())),
                }
            }
            Expr::Select(c, a, d) => {
                let mask = self.vector_expr(c, offset, temps, lanes)?;
                let x = self.vector_expr(a, offset, temps, lanes)?;
                let y = self.vector_expr(d, offset, temps, lanes)?;
                let mask = if self.b.func.dfg.value_type(x) == types::F64X2 { self.float_mask(mask) } else { mask };
                self.b.ins().bitselect(mask, x, y)
            }
            Expr::Binary(op, a, c) => {
                let x = self.vector_expr(a, offset, temps, lanes)?;
                let y = self.vector_expr(c, offset, temps, lanes)?;
                match op {
                    Op2::Add => self.b.ins().fadd(x, y),
                    Op2::Sub => self.b.ins().fsub(x, y),
                    Op2::Mul => self.b.ins().fmul(x, y),
                    Op2::Div => self.b.ins().fdiv(x, y),
                    Op2::And => self.b.ins().band(x, y),
                    Op2::Or => self.b.ins().bor(x, y),
                    Op2::Lt => self.b.ins().fcmp(FloatCC::LessThan, x, y),
                    Op2::Le => self.b.ins().fcmp(FloatCC::LessThanOrEqual, x, y),
                    Op2::Gt => self.b.ins().fcmp(FloatCC::GreaterThan, x, y),
                    Op2::Ge => self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, y),
                    Op2::Eq => self.b.ins().fcmp(FloatCC::Equal, x, y),
                    Op2::Ne => self.b.ins().fcmp(FloatCC::NotEqual, x, y),
                    // `x if x < y else y` (max: `x if y < x else y`, the same as `x > y`)
                    // lane by lane, as the scalar code. Written with `<` so that both
                    // match Cranelift's patterns for `minpd`/`maxpd`.
                    Op2::Min | Op2::Max => {
                        let mask = if *op == Op2::Min {
                            self.b.ins().fcmp(FloatCC::LessThan, x, y)
                        } else {
                            self.b.ins().fcmp(FloatCC::LessThan, y, x)
                        };
                        let mask = self.float_mask(mask);
                        self.b.ins().bitselect(mask, x, y)
                    }
                }
            }
            _ => return Err(Error("an expression that can not be vectorized".into())),
        })
    }

    fn address(&mut self, v: usize) -> Result<Value, Error> {
        self.address_at(v, self.index)
    }

    /// The address of variable `v` at `index` (index 0 for scalar variables).
    fn address_at(&mut self, v: usize, index: Value) -> Result<Value, Error> {
        let base = *self.bases.get(&v).ok_or_else(|| Error(format!("variable {v} has no base pointer")))?;
        let scalar = self.module.layout.vars.get(v).is_none_or(|info| info.scalar);
        if scalar {
            return Ok(base);
        }
        let offset = self.b.ins().imul_imm_u(index, 8);
        Ok(self.b.ins().iadd(base, offset))
    }

    fn at(&self, at: crate::ir::At) -> Value {
        if at == crate::ir::At::Pre { self.pre_index } else { self.post_index }
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), Error> {
        match s {
            Stmt::Let(t, e) => {
                let value = self.expr(e)?;
                let var = *self.temps.get(*t).ok_or_else(|| Error(format!("temporary %{t} has no type")))?;
                self.b.def_var(var, value);
            }
            Stmt::Store(v, e) => {
                let value = self.expr(e)?;
                let address = self.address(*v)?;
                self.b.ins().store(self.flags, value, address, 0);
            }
            Stmt::StoreAt(v, at, e) => {
                let value = self.expr(e)?;
                let address = self.address_at(*v, self.at(*at))?;
                self.b.ins().store(self.flags, value, address, 0);
            }
            Stmt::If(c, body) => {
                let condition = self.expr(c)?;
                let then = self.b.create_block();
                let merge = self.b.create_block();
                self.b.ins().brif(condition, then, &[], merge, &[]);
                self.b.switch_to_block(then);
                for s in body {
                    self.stmt(s)?;
                }
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(merge);
            }
            Stmt::EmitSpike => {
                let count = self.b.use_var(self.spike_count);
                let offset = self.b.ins().imul_imm_u(count, 4);
                let address = self.b.ins().iadd(self.spikes, offset);
                let index = self.b.ins().ireduce(types::I32, self.index);
                self.b.ins().store(self.flags, index, address, 0);
                let next = self.b.ins().iadd_imm_u(count, 1);
                self.b.def_var(self.spike_count, next);
            }
        }
        Ok(())
    }

    fn call(&mut self, symbol: &'static str, args: &[Value]) -> Result<Value, Error> {
        let call = self.call_void(symbol, args)?;
        self.b.inst_results(call).first().copied().ok_or_else(|| Error(format!("`{symbol}` returns nothing")))
    }

    /// Calls `symbol`, returning the call instruction.
    fn call_void(&mut self, symbol: &'static str, args: &[Value]) -> Result<cranelift_codegen::ir::Inst, Error> {
        let f = *self.imports.get(symbol).ok_or_else(|| Error(format!("`{symbol}` was not imported")))?;
        Ok(self.b.ins().call(f, args))
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, Error> {
        Ok(match e {
            Expr::F64(x) => self.b.ins().f64const(*x),
            Expr::Bool(v) => self.b.ins().iconst(types::I8, i64::from(*v)),
            Expr::Param(p) => *self.params.get(p).ok_or_else(|| Error(format!("parameter {p} not loaded")))?,
            Expr::Load(v) => {
                let address = self.address(*v)?;
                self.b.ins().load(types::F64, self.flags, address, 0)
            }
            Expr::Temp(t) => {
                let var = *self.temps.get(*t).ok_or_else(|| Error(format!("temporary %{t} has no type")))?;
                self.b.use_var(var)
            }
            Expr::Table(k) => {
                let base = *self.tables.get(k).ok_or_else(|| Error(format!("table {k} not loaded")))?;
                let offset = self.b.ins().imul_imm_u(self.index, 8);
                let address = self.b.ins().iadd(base, offset);
                self.b.ins().load(types::F64, self.flags, address, 0)
            }
            Expr::Index => self.b.ins().fcvt_from_uint(types::F64, self.index),
            Expr::IndexAt(at) => {
                let index = self.at(*at);
                self.b.ins().fcvt_from_uint(types::F64, index)
            }
            Expr::LoadAt(v, at) => {
                let address = self.address_at(*v, self.at(*at))?;
                self.b.ins().load(types::F64, self.flags, address, 0)
            }
            Expr::Time => self.t,
            Expr::Dt => self.dt,
            Expr::Unary(op, a) => {
                let x = self.expr(a)?;
                match op {
                    Op1::Neg => self.b.ins().fneg(x),
                    Op1::Not => self.b.ins().icmp_imm_u(IntCC::Equal, x, 0),
                    Op1::Abs => self.b.ins().fabs(x),
                    Op1::Floor => self.b.ins().floor(x),
                    Op1::Ceil => self.b.ins().ceil(x),
                    Op1::Trunc => self.b.ins().trunc(x),
                    Op1::Sqrt => self.b.ins().sqrt(x),
                    Op1::BoolToF64 => {
                        let (one, zero) = (self.b.ins().f64const(1.0), self.b.ins().f64const(0.0));
                        self.b.ins().select(x, one, zero)
                    }
                }
            }
            Expr::Binary(op, a, c) => {
                let bool_operands = a.ty(&self.temp_types) == Ty::Bool;
                let (x, y) = (self.expr(a)?, self.expr(c)?);
                let ins = self.b.ins();
                match op {
                    Op2::Add => ins.fadd(x, y),
                    Op2::Sub => ins.fsub(x, y),
                    Op2::Mul => ins.fmul(x, y),
                    Op2::Div => ins.fdiv(x, y),
                    Op2::And => ins.band(x, y),
                    Op2::Or => ins.bor(x, y),
                    Op2::Eq if bool_operands => ins.icmp(IntCC::Equal, x, y),
                    Op2::Ne if bool_operands => ins.icmp(IntCC::NotEqual, x, y),
                    Op2::Lt => ins.fcmp(FloatCC::LessThan, x, y),
                    Op2::Le => ins.fcmp(FloatCC::LessThanOrEqual, x, y),
                    Op2::Gt => ins.fcmp(FloatCC::GreaterThan, x, y),
                    Op2::Ge => ins.fcmp(FloatCC::GreaterThanOrEqual, x, y),
                    Op2::Eq => ins.fcmp(FloatCC::Equal, x, y),
                    Op2::Ne => ins.fcmp(FloatCC::NotEqual, x, y),
                    Op2::Min => {
                        let less = self.b.ins().fcmp(FloatCC::LessThan, x, y);
                        self.b.ins().select(less, x, y)
                    }
                    Op2::Max => {
                        let greater = self.b.ins().fcmp(FloatCC::GreaterThan, x, y);
                        self.b.ins().select(greater, x, y)
                    }
                }
            }
            Expr::Call(m, args) => {
                let values = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
                let symbol = MathFn::symbol(*m);
                self.call(symbol, &values)?
            }
            Expr::Select(c, a, d) => {
                let (cond, x, y) = (self.expr(c)?, self.expr(a)?, self.expr(d)?);
                self.b.ins().select(cond, x, y)
            }
            Expr::Env { offset, index } => {
                // The index is a whole number within the observation (see `ir::Expr::Env`).
                let x = self.expr(index)?;
                let k = self.b.ins().fcvt_to_sint_sat(types::I64, x);
                let bytes = self.b.ins().imul_imm_u(k, 8);
                let address = self.b.ins().iadd(self.env, bytes);
                let offset = i32::try_from(*offset * 8).map_err(|e| Error(e.to_string()))?;
                self.b.ins().load(types::F64, self.flags, address, offset)
            }
            Expr::Rand(stream) | Expr::Randn(stream) => {
                let key = *self.keys.get(stream).ok_or_else(|| Error(format!("no key for stream {stream}")))?;
                let args = [key, self.index];
                self.call(draw_symbols(matches!(e, Expr::Randn(_))).0, &args)?
            }
        })
    }
}

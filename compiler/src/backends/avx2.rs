//! AVX2 machine code for the JIT's element-wise loops, four items at a time.
//!
//! Cranelift's x64 back end stops at 128-bit vectors, so an element-wise loop under
//! the JIT did half the work per instruction of the same loop under LLVM (AOT).
//! This module writes such a loop itself, as a leaf function in 256-bit AVX
//! instructions, which the Cranelift kernel calls for the items that fill whole
//! vectors of four (`cranelift::Gen::run_pass`); its f64x2 and scalar code do the
//! rest. Every lane computes what the scalar code computes, bit for bit: the same
//! IEEE operations in the same order (no FMA), `min`/`max` as `vminpd`/`vmaxpd`
//! (`a < b ? a : b`, like the scalar select), comparisons with the same ordered or
//! unordered predicate as Cranelift's `fcmp`.
//!
//! The routine is `extern "sysv64" fn(args: *const u64, start: u64, end: u64)` over
//! items `start..end` (a multiple of four of them). `args` points to one 8-byte slot
//! per `Slot` (see `Routine::slots`), which the kernel fills before the call.
//!
//! Code generation: the body becomes a list of operations in the IR's order; values
//! live in the 16 ymm registers, the longest-unused spilled to the stack frame when
//! they run out; loop-invariant values stay in registers where the body leaves room,
//! else they are 256-bit memory operands in the frame; a load used once is folded
//! into the instruction that uses it.

use crate::ir::{Expr, Op1, Op2, Stmt, VarId};
use std::collections::BTreeMap;

/// What the kernel writes into one 8-byte slot of the argument block.
#[derive(Clone, Debug, PartialEq)]
pub enum Slot {
    /// The base address of a per-item variable's array.
    Array(VarId),
    /// The address of random stream `k`'s batch buffer minus 8 × the batch's first
    /// item: item `k`'s number is at `8*k` from it.
    Buffer(u32),
    /// A loop-invariant leaf (see `cranelift::splattable`), computed in scalar code:
    /// a float, or a boolean as all ones or zero.
    Value(Expr),
    /// Raw bits (masks and constants of the generated code).
    Bits(u64),
    /// The call's first item plus `lane`, as a float.
    First(u8),
}

/// A compiled loop: its machine code and the slots of its argument block.
#[derive(Clone, Debug)]
pub struct Routine {
    pub code: Vec<u8>,
    pub slots: Vec<Slot>,
}

/// Whether this machine runs the routines.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

// Registers (x86-64 numbering).
const RAX: u8 = 0;
const RCX: u8 = 1;
const RBX: u8 = 3;
const RSP: u8 = 4;
const RSI: u8 = 6;
const RDI: u8 = 7;
/// Registers for array base addresses: the caller-saved ones not holding arguments,
/// then the callee-saved ones (saved in the prologue).
const BASES: [u8; 11] = [RAX, RCX, 8, 9, 10, 11, RBX, 12, 13, 14, 15];
const CALLEE_SAVED: [u8; 5] = [RBX, 12, 13, 14, 15];

/// A vector operation of two operands (VEX.256.66.0F opcode).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Vop {
    Add = 0x58,
    Mul = 0x59,
    Sub = 0x5C,
    Min = 0x5D,
    Div = 0x5E,
    Max = 0x5F,
    And = 0x54,
    Or = 0x56,
    Xor = 0x57,
}

impl Vop {
    /// `a op b == b op a`, bit for bit (not `min`/`max`: they return the second
    /// operand when the comparison fails).
    fn commutes(self) -> bool {
        matches!(self, Vop::Add | Vop::Mul | Vop::And | Vop::Or | Vop::Xor)
    }
}

/// An operation of the loop body; values are named by their operation's position.
#[derive(Clone, Debug)]
enum Op {
    /// The current item of an array slot (variables and random buffers alike).
    Load(usize),
    /// A loop-invariant value, from its slot.
    Invariant(usize),
    /// The items' indices as floats.
    Iota,
    Bin(Vop, usize, usize),
    Cmp(u8, usize, usize),
    Sqrt(usize),
    /// `mask ? a : b`, lane by lane.
    Blend(usize, usize, usize),
    /// Writes the value to the current item of an array slot.
    Store(usize, usize),
}

impl Op {
    fn operands(&self) -> Vec<usize> {
        match *self {
            Op::Load(_) | Op::Invariant(_) | Op::Iota => vec![],
            Op::Bin(_, a, b) | Op::Cmp(_, a, b) => vec![a, b],
            Op::Sqrt(a) => vec![a],
            Op::Blend(c, a, b) => vec![c, a, b],
            Op::Store(_, v) => vec![v],
        }
    }
}

/// The body as operations, with its slots.
struct Lowering<'a> {
    per_item: &'a dyn Fn(VarId) -> bool,
    ops: Vec<Op>,
    slots: Vec<Slot>,
    /// The slot of each invariant, and the operation standing for it.
    invariants: Vec<(usize, usize)>,
    /// The value of each temporary (assigned once).
    temps: BTreeMap<usize, usize>,
    /// The `Iota` operation, once used.
    iota: Option<usize>,
}

impl Lowering<'_> {
    /// The slot's index, added if new. Compared by their `Debug` text, like the
    /// Cranelift back end's splats: `0.0 == -0.0`, but they are different slots.
    fn slot(&mut self, slot: Slot) -> usize {
        let key = format!("{slot:?}");
        if let Some(k) = self.slots.iter().position(|s| format!("{s:?}") == key) {
            return k;
        }
        self.slots.push(slot);
        self.slots.len() - 1
    }

    fn push(&mut self, op: Op) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// The value of an invariant slot (one operation per invariant).
    fn invariant(&mut self, slot: Slot) -> usize {
        let s = self.slot(slot);
        if let Some(&(_, v)) = self.invariants.iter().find(|&&(t, _)| t == s) {
            return v;
        }
        let v = self.push(Op::Invariant(s));
        self.invariants.push((s, v));
        v
    }

    fn bits(&mut self, bits: u64) -> usize {
        self.invariant(Slot::Bits(bits))
    }

    fn expr(&mut self, e: &Expr) -> Option<usize> {
        Some(match e {
            Expr::Load(v) if (self.per_item)(*v) => {
                let s = self.slot(Slot::Array(*v));
                self.push(Op::Load(s))
            }
            Expr::Temp(t) if self.temps.contains_key(t) => self.temps[t],
            Expr::Rand(k) | Expr::Randn(k) => {
                let s = self.slot(Slot::Buffer(*k));
                self.push(Op::Load(s))
            }
            Expr::Index | Expr::IndexAt(crate::ir::At::Post) => {
                if let Some(v) = self.iota {
                    return Some(v);
                }
                // Four consecutive slots, read as one vector.
                (0..4).for_each(|lane| {
                    self.slot(Slot::First(lane));
                });
                let v = self.push(Op::Iota);
                self.iota = Some(v);
                v
            }
            e if super::cranelift::splattable(e) => self.invariant(Slot::Value(e.clone())),
            Expr::Unary(op, a) => {
                let x = self.expr(a)?;
                match op {
                    Op1::Neg => {
                        let sign = self.bits(1 << 63);
                        self.push(Op::Bin(Vop::Xor, x, sign))
                    }
                    Op1::Abs => {
                        let magnitude = self.bits(!(1 << 63));
                        self.push(Op::Bin(Vop::And, x, magnitude))
                    }
                    Op1::Not => {
                        let ones = self.bits(!0);
                        self.push(Op::Bin(Vop::Xor, x, ones))
                    }
                    Op1::BoolToF64 => {
                        let one = self.bits(1f64.to_bits());
                        self.push(Op::Bin(Vop::And, x, one))
                    }
                    Op1::Sqrt => self.push(Op::Sqrt(x)),
                    Op1::Floor | Op1::Ceil | Op1::Trunc => return None,
                }
            }
            Expr::Binary(op, a, b) => {
                let (x, y) = (self.expr(a)?, self.expr(b)?);
                // Predicates: ordered and false on NaN, except `!=` (unordered), as `fcmp`.
                let compare = |p: u8| Op::Cmp(p, x, y);
                self.push(match op {
                    Op2::Add => Op::Bin(Vop::Add, x, y),
                    Op2::Sub => Op::Bin(Vop::Sub, x, y),
                    Op2::Mul => Op::Bin(Vop::Mul, x, y),
                    Op2::Div => Op::Bin(Vop::Div, x, y),
                    Op2::Min => Op::Bin(Vop::Min, x, y),
                    Op2::Max => Op::Bin(Vop::Max, x, y),
                    Op2::And => Op::Bin(Vop::And, x, y),
                    Op2::Or => Op::Bin(Vop::Or, x, y),
                    Op2::Eq => compare(0x00),
                    Op2::Lt => compare(0x01),
                    Op2::Le => compare(0x02),
                    Op2::Ne => compare(0x04),
                    Op2::Ge => compare(0x0D),
                    Op2::Gt => compare(0x0E),
                })
            }
            Expr::Select(c, a, b) => {
                let (m, x, y) = (self.expr(c)?, self.expr(a)?, self.expr(b)?);
                self.push(Op::Blend(m, x, y))
            }
            _ => return None,
        })
    }
}

/// Compiles an element-wise body (`cranelift::vectorizable`): `per_item` tells the
/// variables with one value per item from shared ones. `None` when some part has no
/// vector form here or the arrays outnumber the registers for their addresses.
pub fn compile(body: &[Stmt], per_item: &dyn Fn(VarId) -> bool) -> Option<Routine> {
    let mut lowering = Lowering {
        per_item,
        ops: Vec::new(),
        slots: Vec::new(),
        invariants: Vec::new(),
        temps: BTreeMap::new(),
        iota: None,
    };
    for s in body {
        match s {
            Stmt::Let(t, e) => {
                let v = lowering.expr(e)?;
                lowering.temps.insert(*t, v);
            }
            Stmt::Store(v, e) if per_item(*v) => {
                let x = lowering.expr(e)?;
                let s = lowering.slot(Slot::Array(*v));
                lowering.push(Op::Store(s, x));
            }
            _ => return None,
        }
    }
    let four = if lowering.iota.is_some() { Some(lowering.bits(4f64.to_bits())) } else { None };
    let Lowering { ops, slots, .. } = lowering;
    let arrays: Vec<usize> =
        (0..slots.len()).filter(|&s| matches!(slots[s], Slot::Array(_) | Slot::Buffer(_))).collect();
    if arrays.len() > BASES.len() {
        return None;
    }
    let code = Emitter::new(&ops, &slots, &arrays, four).run()?;
    Some(Routine { code, slots })
}

/// Where a value is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Loc {
    Reg(u8),
    Mem(Mem),
}

/// A memory operand: `[base + index*8 + disp]`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Mem {
    base: u8,
    index: Option<u8>,
    disp: i32,
}

impl Mem {
    fn frame(disp: i32) -> Mem {
        Mem { base: RSP, index: None, disp }
    }
}

/// An instruction writing a register chosen after its operands.
enum Instruction {
    /// `vmovupd d, [m]`.
    Load(Mem),
    /// `op d, s1, s2` (opcode, VEX map, s1, s2, and a trailing byte: a comparison's
    /// predicate, or a blend's mask register in bits 7..4).
    Vex(u8, u8, u8, Loc, Option<u8>),
}

/// What a busy register holds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Held {
    /// A value of the body (spillable).
    Value(usize),
    /// An invariant or `Iota`, for the whole loop.
    Pinned,
    /// A spilled value reloaded for one instruction.
    Reload,
}

/// The machine code of one routine.
struct Emitter<'a> {
    ops: &'a [Op],
    slots: &'a [Slot],
    /// The base register of each array slot.
    base_of: Vec<Option<u8>>,
    /// The value `4.0` (the step of `Iota`).
    four: Option<usize>,
    code: Vec<u8>,
    /// Uses of each value (positions of the operations that read it).
    uses: Vec<Vec<usize>>,
    /// Loads read straight from memory by their one use.
    folded: Vec<bool>,
    /// Values kept in a register for the whole loop (invariants and `Iota`).
    pinned: Vec<Option<u8>>,
    /// Where each computed value is, while it lives.
    place: Vec<Option<Loc>>,
    /// What each register holds.
    holder: [Option<Held>; 16],
    frame_bytes: i32,
}

impl<'a> Emitter<'a> {
    fn new(ops: &'a [Op], slots: &'a [Slot], arrays: &[usize], four: Option<usize>) -> Self {
        let mut base_of = vec![None; slots.len()];
        for (&s, &r) in arrays.iter().zip(BASES.iter()) {
            base_of[s] = Some(r);
        }
        let mut uses = vec![Vec::new(); ops.len()];
        for (p, op) in ops.iter().enumerate() {
            for v in op.operands() {
                uses[v].push(p);
            }
        }
        Emitter {
            ops,
            slots,
            base_of,
            four,
            code: Vec::new(),
            uses,
            folded: vec![false; ops.len()],
            pinned: vec![None; ops.len()],
            place: vec![None; ops.len()],
            holder: [None; 16],
            frame_bytes: 0,
        }
    }

    fn element(&self, slot: usize) -> Option<Mem> {
        Some(Mem { base: self.base_of[slot]?, index: Some(RSI), disp: 0 })
    }

    /// Whether the load at `p` can be read by its one use instead: the use takes a
    /// memory operand there and no store to the same array comes between.
    fn foldable(&self, p: usize) -> bool {
        let Op::Load(slot) = self.ops[p] else { return false };
        let [user] = self.uses[p][..] else { return false };
        let stored_between = self.ops[p + 1..user].iter().any(|op| matches!(op, Op::Store(s, _) if *s == slot));
        let memory_operand = match self.ops[user] {
            Op::Bin(op, a, b) => b == p || (a == p && op.commutes() && a != b),
            Op::Cmp(_, _, b) | Op::Blend(_, b, _) => b == p,
            Op::Sqrt(_) => true,
            _ => false,
        };
        memory_operand && !stored_between
    }

    /// The most values the body keeps in registers at once (not counting pinned ones).
    fn pressure(&self) -> usize {
        let mut most = 0;
        for p in 0..self.ops.len() {
            let live = (0..p.min(self.ops.len()))
                .filter(|&v| self.computed(v) && self.uses[v].iter().any(|&u| u >= p))
                .count();
            most = most.max(live + 1);
        }
        most
    }

    /// Whether a value is computed in the loop (not invariant, not folded).
    fn computed(&self, v: usize) -> bool {
        !matches!(self.ops[v], Op::Invariant(_) | Op::Iota) && !self.folded[v]
    }

    fn run(mut self) -> Option<Vec<u8>> {
        for p in 0..self.ops.len() {
            self.folded[p] = self.foldable(p);
        }
        // Registers for invariants, most used first, where the body leaves room (two
        // kept for reloads); `Iota` first, as it changes every iteration.
        let room = 16usize.saturating_sub(self.pressure() + 2);
        let mut loop_values: Vec<usize> =
            (0..self.ops.len()).filter(|&v| matches!(self.ops[v], Op::Invariant(_) | Op::Iota)).collect();
        loop_values.sort_by_key(|&v| (!matches!(self.ops[v], Op::Iota), std::cmp::Reverse(self.uses[v].len())));
        let four = self.four;
        let mut next_reg = 0u8;
        for &v in loop_values.iter() {
            if usize::from(next_reg) < room {
                self.pinned[v] = Some(next_reg);
                self.holder[usize::from(next_reg)] = Some(Held::Pinned);
                next_reg += 1;
            } else {
                self.place[v] = Some(Loc::Mem(Mem::frame(self.frame_bytes)));
                self.frame_bytes += 32;
            }
        }

        // Prologue: frame pointer, callee-saved registers in use, a 32-byte aligned frame.
        let saved: Vec<u8> = CALLEE_SAVED.iter().copied().filter(|r| self.base_of.contains(&Some(*r))).collect();
        self.code.push(0x55); // push rbp
        self.code.extend([0x48, 0x89, 0xE5]); // mov rbp, rsp
        for &r in &saved {
            self.push_gpr(r);
        }
        self.code.extend([0x48, 0x83, 0xE4, 0xE0]); // and rsp, -32
        self.code.extend([0x48, 0x81, 0xEC]); // sub rsp, imm32
        let frame_patch = self.code.len();
        self.code.extend([0; 4]);
        // Array bases, then the invariants.
        for s in 0..self.slots.len() {
            if let Some(r) = self.base_of[s] {
                self.mov_load_gpr(r, Mem { base: RDI, index: None, disp: slot_disp(s)? });
            }
        }
        let scratch = 15u8;
        for &v in &loop_values {
            let (into, memory) = match (self.pinned[v], self.place[v]) {
                (Some(r), _) => (r, None),
                (None, Some(Loc::Mem(m))) => (scratch, Some(m)),
                _ => return None,
            };
            match self.ops[v] {
                Op::Invariant(slot) => {
                    let from = Mem { base: RDI, index: None, disp: slot_disp(slot)? };
                    self.vex_mem(0x19, 2, into, 0, from); // vbroadcastsd
                }
                _ => {
                    let first = self.slots.iter().position(|s| *s == Slot::First(0))?;
                    self.vex_mem(0x10, 1, into, 0, Mem { base: RDI, index: None, disp: slot_disp(first)? });
                }
            }
            if let Some(m) = memory {
                self.vex_mem(0x11, 1, into, 0, m); // vmovupd [frame], ymm
            }
        }

        // The loop.
        let top = self.code.len();
        self.code.extend([0x48, 0x39, 0xD6]); // cmp rsi, rdx
        self.code.extend([0x0F, 0x83]); // jae done
        let exit_patch = self.code.len();
        self.code.extend([0; 4]);
        for p in 0..self.ops.len() {
            self.op(p)?;
        }
        if let Some(iota) = self.ops.iter().position(|op| matches!(op, Op::Iota)) {
            let step = self.operand(four?)?;
            match self.pinned[iota] {
                Some(r) => self.vex_map(Vop::Add as u8, 1, r, r, step),
                None => {
                    let Some(Loc::Mem(m)) = self.place[iota] else { return None };
                    let r = self.free_register(usize::MAX, &[])?;
                    self.vex_mem(0x10, 1, r, 0, m);
                    self.vex_map(Vop::Add as u8, 1, r, r, step);
                    self.vex_mem(0x11, 1, r, 0, m);
                }
            }
        }
        self.code.extend([0x48, 0x83, 0xC6, 0x04]); // add rsi, 4
        self.code.push(0xE9); // jmp top
        let back = i32::try_from(top).ok()? - i32::try_from(self.code.len() + 4).ok()?;
        self.code.extend(back.to_le_bytes());
        let forward = i32::try_from(self.code.len() - (exit_patch + 4)).ok()?;
        self.code[exit_patch..exit_patch + 4].copy_from_slice(&forward.to_le_bytes());

        // Epilogue.
        self.code.extend([0xC5, 0xF8, 0x77]); // vzeroupper
        let below = -8 * i32::try_from(saved.len()).ok()?;
        self.code.extend([0x48, 0x8D, 0xA5]); // lea rsp, [rbp + disp32]
        self.code.extend(below.to_le_bytes());
        for &r in saved.iter().rev() {
            self.pop_gpr(r);
        }
        self.code.push(0x5D); // pop rbp
        self.code.push(0xC3); // ret
        let frame = (self.frame_bytes + 31) / 32 * 32;
        self.code[frame_patch..frame_patch + 4].copy_from_slice(&frame.to_le_bytes());
        Some(self.code)
    }

    /// Where an operand is now, as a register or memory.
    fn operand(&self, v: usize) -> Option<Loc> {
        if let Some(r) = self.pinned[v] {
            return Some(Loc::Reg(r));
        }
        if self.folded[v] {
            let Op::Load(slot) = self.ops[v] else { return None };
            return Some(Loc::Mem(self.element(slot)?));
        }
        self.place[v]
    }

    /// A register holding `v` (reloaded from memory into a free one if needed; the
    /// register is busy until the caller frees it).
    fn in_register(&mut self, v: usize, p: usize, keep: &[u8]) -> Option<(u8, bool)> {
        match self.operand(v)? {
            Loc::Reg(r) => Some((r, false)),
            Loc::Mem(m) => {
                let r = self.free_register(p, keep)?;
                self.vex_mem(0x10, 1, r, 0, m);
                self.holder[usize::from(r)] = Some(Held::Reload);
                Some((r, true))
            }
        }
    }

    /// A free register, spilling the value whose next use is furthest from `p` if
    /// there is none (never one in `keep`).
    fn free_register(&mut self, p: usize, keep: &[u8]) -> Option<u8> {
        if let Some(r) = (0..16u8).find(|&r| self.holder[usize::from(r)].is_none() && !keep.contains(&r)) {
            return Some(r);
        }
        let victim = (0..16u8)
            .filter(|r| !keep.contains(r))
            .filter_map(|r| {
                let Some(Held::Value(v)) = self.holder[usize::from(r)] else { return None };
                let next = self.uses[v].iter().copied().find(|&u| u >= p)?;
                Some((next, r, v))
            })
            .max()?;
        let (_, r, v) = victim;
        let slot = Mem::frame(self.frame_bytes);
        self.frame_bytes += 32;
        self.vex_mem(0x11, 1, r, 0, slot); // vmovupd [frame], ymm
        self.place[v] = Some(Loc::Mem(slot));
        self.holder[usize::from(r)] = None;
        Some(r)
    }

    /// Frees the registers of values last used at `p`.
    fn release(&mut self, p: usize) {
        for r in 0..16 {
            if let Some(Held::Value(v)) = self.holder[r]
                && self.uses[v].last().is_none_or(|&u| u <= p)
            {
                self.holder[r] = None;
                self.place[v] = None;
            }
        }
    }

    fn op(&mut self, p: usize) -> Option<()> {
        let op = self.ops[p].clone();
        if !self.computed(p) {
            return Some(());
        }
        // Operands: the first (and a blend's mask and false value) in registers.
        let mut keep = Vec::new();
        let mut temporaries = Vec::new();
        let mut reg = |this: &mut Self, v: usize, keep: &mut Vec<u8>| -> Option<u8> {
            let (r, temporary) = this.in_register(v, p, keep)?;
            keep.push(r);
            if temporary {
                temporaries.push(r);
            }
            Some(r)
        };
        let instruction = match op {
            Op::Load(slot) => Instruction::Load(self.element(slot)?),
            Op::Bin(vop, a, b) => {
                let (a, b) = if vop.commutes() && self.operand(a).is_some_and(|l| matches!(l, Loc::Mem(_))) {
                    (b, a)
                } else {
                    (a, b)
                };
                let x = reg(self, a, &mut keep)?;
                let y = self.operand(b)?;
                if let Loc::Reg(r) = y {
                    keep.push(r);
                }
                Instruction::Vex(vop as u8, 1, x, y, None)
            }
            Op::Cmp(predicate, a, b) => {
                let x = reg(self, a, &mut keep)?;
                let y = self.operand(b)?;
                if let Loc::Reg(r) = y {
                    keep.push(r);
                }
                Instruction::Vex(0xC2, 1, x, y, Some(predicate))
            }
            Op::Sqrt(a) => {
                let y = self.operand(a)?;
                if let Loc::Reg(r) = y {
                    keep.push(r);
                }
                Instruction::Vex(0x51, 1, 0, y, None)
            }
            Op::Blend(mask, yes, no) => {
                let m = reg(self, mask, &mut keep)?;
                let n = reg(self, no, &mut keep)?;
                let y = self.operand(yes)?;
                if let Loc::Reg(r) = y {
                    keep.push(r);
                }
                // vblendvpd d, n, y, m: y where the mask's sign bit is set, else n.
                Instruction::Vex(0x4B, 3, n, y, Some(m << 4))
            }
            Op::Store(slot, v) => {
                let x = reg(self, v, &mut keep)?;
                let m = self.element(slot)?;
                self.vex_mem(0x11, 1, x, 0, m);
                for r in temporaries {
                    self.holder[usize::from(r)] = None;
                }
                self.release(p);
                return Some(());
            }
            Op::Invariant(_) | Op::Iota => return Some(()),
        };
        // Registers of operands used for the last time here (and reloads) are free
        // for the result: VEX instructions read all operands before writing.
        for r in temporaries {
            self.holder[usize::from(r)] = None;
        }
        self.release(p);
        let d = self.free_register(p, &keep_live(&keep, &self.holder))?;
        match instruction {
            Instruction::Load(m) => self.vex_mem(0x10, 1, d, 0, m),
            Instruction::Vex(opcode, map, s1, s2, imm) => {
                self.vex_map(opcode, map, d, s1, s2);
                self.code.extend(imm);
            }
        }
        if self.uses[p].is_empty() {
            return Some(());
        }
        self.holder[usize::from(d)] = Some(Held::Value(p));
        self.place[p] = Some(Loc::Reg(d));
        Some(())
    }

    fn push_gpr(&mut self, r: u8) {
        if r >= 8 {
            self.code.push(0x41);
        }
        self.code.push(0x50 + (r & 7));
    }

    fn pop_gpr(&mut self, r: u8) {
        if r >= 8 {
            self.code.push(0x41);
        }
        self.code.push(0x58 + (r & 7));
    }

    /// `mov r64, [m]`.
    fn mov_load_gpr(&mut self, r: u8, m: Mem) {
        let rex = 0x48 | ((r >> 3) << 2) | (m.index.map_or(0, |i| i >> 3) << 1) | (m.base >> 3);
        self.code.push(rex);
        self.code.push(0x8B);
        self.modrm_mem(r, m);
    }

    /// A VEX.256.66 instruction of map `map` (1: 0F, 2: 0F38, 3: 0F3A) with a
    /// register or memory second source.
    fn vex_map(&mut self, opcode: u8, map: u8, d: u8, s1: u8, s2: Loc) {
        match s2 {
            Loc::Reg(r) => {
                self.vex_prefix(map, d, s1, 0, r);
                self.code.push(opcode);
                self.code.push(0xC0 | ((d & 7) << 3) | (r & 7));
            }
            Loc::Mem(m) => self.vex_mem(opcode, map, d, s1, m),
        }
    }

    fn vex_mem(&mut self, opcode: u8, map: u8, reg: u8, s1: u8, m: Mem) {
        self.vex_prefix(map, reg, s1, m.index.unwrap_or(0), m.base);
        self.code.push(opcode);
        self.modrm_mem(reg, m);
    }

    /// The three-byte VEX prefix: L = 256 bits, pp = 66, W = 0; `vvvv` names `s1`.
    fn vex_prefix(&mut self, map: u8, reg: u8, s1: u8, index: u8, base: u8) {
        let r = (!reg >> 3) & 1;
        let x = (!index >> 3) & 1;
        let b = (!base >> 3) & 1;
        self.code.push(0xC4);
        self.code.push((r << 7) | (x << 6) | (b << 5) | map);
        self.code.push(((!s1 & 0xF) << 3) | 0b100 | 0b01);
    }

    /// ModRM (and SIB) with a 32-bit displacement.
    fn modrm_mem(&mut self, reg: u8, m: Mem) {
        let reg = (reg & 7) << 3;
        match m.index {
            Some(i) => {
                self.code.push(0x80 | reg | 0b100);
                self.code.push(0xC0 | ((i & 7) << 3) | (m.base & 7));
            }
            None if m.base & 7 == RSP => {
                self.code.push(0x80 | reg | 0b100);
                self.code.push(0x20 | (m.base & 7));
            }
            None => self.code.push(0x80 | reg | (m.base & 7)),
        }
        self.code.extend(m.disp.to_le_bytes());
    }
}

/// The registers an instruction may not write: its operands that still live on.
fn keep_live(keep: &[u8], holder: &[Option<Held>; 16]) -> Vec<u8> {
    keep.iter().copied().filter(|&r| holder[usize::from(r)].is_some()).collect()
}

fn slot_disp(slot: usize) -> Option<i32> {
    i32::try_from(slot * 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Ty;
    use cranelift_jit::{JITBuilder, JITModule};
    use cranelift_module::{Linkage, Module as _};

    /// The routine as a callable function in a JIT module's memory.
    fn load(code: &[u8]) -> (JITModule, extern "sysv64" fn(*const u64, u64, u64)) {
        let isa = cranelift_native::builder()
            .expect("host ISA")
            .finish(cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder()))
            .expect("flags");
        let mut jit = JITModule::new(JITBuilder::with_isa(isa, cranelift_module::default_libcall_names()));
        let sig = jit.make_signature();
        let id = jit.declare_function("routine", Linkage::Local, &sig).expect("declared");
        jit.define_function_bytes(id, 16, code, &[]).expect("defined");
        jit.finalize_definitions().expect("finalized");
        let address = jit.get_finalized_function(id);
        // SAFETY: the bytes are a routine with this signature (see the module docs).
        (jit, unsafe { std::mem::transmute::<*const u8, extern "sysv64" fn(*const u64, u64, u64)>(address) })
    }

    /// The scalar meaning of an expression for item `k` (numbers as f64, booleans
    /// as 0.0 and 1.0), the reference the routine must match bit for bit.
    fn scalar(e: &Expr, k: usize, arrays: &[Vec<f64>], temps: &[(usize, f64)]) -> f64 {
        let f = |e: &Expr| scalar(e, k, arrays, temps);
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        match e {
            Expr::F64(x) => *x,
            Expr::Bool(x) => b(*x),
            Expr::Load(v) => arrays[*v][k],
            Expr::Temp(t) => temps.iter().rev().find(|(u, _)| u == t).map(|&(_, x)| x).expect("defined"),
            Expr::Index => k as f64,
            Expr::Unary(op, a) => {
                let x = f(a);
                match op {
                    Op1::Neg => -x,
                    Op1::Abs => x.abs(),
                    Op1::Sqrt => x.sqrt(),
                    Op1::Not => b(x == 0.0),
                    Op1::BoolToF64 => x,
                    _ => unreachable!("not generated"),
                }
            }
            Expr::Binary(op, a, c) => {
                let (x, y) = (f(a), f(c));
                match op {
                    Op2::Add => x + y,
                    Op2::Sub => x - y,
                    Op2::Mul => x * y,
                    Op2::Div => x / y,
                    Op2::Min => {
                        if x < y {
                            x
                        } else {
                            y
                        }
                    }
                    Op2::Max => {
                        if x > y {
                            x
                        } else {
                            y
                        }
                    }
                    Op2::Lt => b(x < y),
                    Op2::Le => b(x <= y),
                    Op2::Gt => b(x > y),
                    Op2::Ge => b(x >= y),
                    Op2::Eq => b(x == y),
                    Op2::Ne => b(x != y),
                    Op2::And => b(x != 0.0 && y != 0.0),
                    Op2::Or => b(x != 0.0 || y != 0.0),
                }
            }
            Expr::Select(c, a, d) => {
                if f(c) != 0.0 {
                    f(a)
                } else {
                    f(d)
                }
            }
            _ => unreachable!("not generated"),
        }
    }

    /// An expression as text, for failure messages.
    fn text(e: &Expr) -> String {
        match e {
            Expr::F64(x) => format!("{x:?}"),
            Expr::Load(v) => format!("x{v}"),
            Expr::Temp(t) => format!("%{t}"),
            Expr::Index => "i".into(),
            Expr::Unary(op, a) => format!("{op:?}({})", text(a)),
            Expr::Binary(op, a, b) => format!("{op:?}({}, {})", text(a), text(b)),
            Expr::Select(c, a, b) => format!("({} if {} else {})", text(a), text(c), text(b)),
            other => format!("{other:?}"),
        }
    }

    fn body_text(body: &[Stmt]) -> String {
        let line = |s: &Stmt| match s {
            Stmt::Let(t, e) => format!("%{t} = {}", text(e)),
            Stmt::Store(v, e) => format!("x{v} <- {}", text(e)),
            other => format!("{other:?}"),
        };
        body.iter().map(line).collect::<Vec<_>>().join("\n")
    }

    /// A small deterministic generator.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A random expression of type `ty` over per-item variables `0..vars`, numbers,
    /// the item index and earlier temporaries.
    fn random(rng: &mut Rng, ty: Ty, depth: u32, vars: usize, temps: &[(usize, Ty)]) -> Expr {
        let leaf = depth == 0 || rng.below(4) == 0;
        if ty == Ty::Bool {
            let number = |rng: &mut Rng| random(rng, Ty::F64, depth.saturating_sub(1), vars, temps);
            return match if leaf { 0 } else { rng.below(4) } {
                0 => {
                    let ops = [Op2::Lt, Op2::Le, Op2::Gt, Op2::Ge, Op2::Eq, Op2::Ne];
                    let op = ops[rng.below(6) as usize];
                    Expr::bin(op, number(rng), number(rng))
                }
                1 => Expr::Unary(Op1::Not, Box::new(random(rng, Ty::Bool, depth - 1, vars, temps))),
                k => Expr::bin(
                    if k == 2 { Op2::And } else { Op2::Or },
                    random(rng, Ty::Bool, depth - 1, vars, temps),
                    random(rng, Ty::Bool, depth - 1, vars, temps),
                ),
            };
        }
        if leaf {
            let numbered: Vec<usize> = temps.iter().filter(|t| t.1 == Ty::F64).map(|t| t.0).collect();
            return match rng.below(5) {
                0 => Expr::F64([0.0, -0.0, 1.5, -2.25, 1e-3, 3.0][rng.below(6) as usize]),
                1 => Expr::Index,
                2 if !numbered.is_empty() => Expr::Temp(numbered[rng.below(numbered.len() as u64) as usize]),
                _ => Expr::Load(rng.below(vars as u64) as usize),
            };
        }
        let sub = |rng: &mut Rng| random(rng, Ty::F64, depth - 1, vars, temps);
        match rng.below(12) {
            0 => Expr::Unary(Op1::Neg, Box::new(sub(rng))),
            1 => Expr::Unary(Op1::Abs, Box::new(sub(rng))),
            2 => Expr::Unary(Op1::Sqrt, Box::new(sub(rng))),
            3 => Expr::Unary(Op1::BoolToF64, Box::new(random(rng, Ty::Bool, depth - 1, vars, temps))),
            4 => {
                let c = random(rng, Ty::Bool, depth - 1, vars, temps);
                Expr::Select(Box::new(c), Box::new(sub(rng)), Box::new(sub(rng)))
            }
            k => {
                let ops = [Op2::Add, Op2::Sub, Op2::Mul, Op2::Div, Op2::Min, Op2::Max, Op2::Add];
                Expr::bin(ops[(k - 5) as usize], sub(rng), sub(rng))
            }
        }
    }

    /// Random element-wise bodies, from a few operations to enough live values to
    /// spill, against the scalar reference: every bit of every item.
    #[test]
    fn random_bodies_compute_what_scalar_code_computes() {
        if !available() {
            return;
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (vars, items) = (6usize, 24usize);
        let specials = [0.0, -0.0, 1.0, f64::NAN, f64::INFINITY, -1.0, 2.0, 1e-300];
        let mut spilled = 0;
        for case in 0..300 {
            let mut body = Vec::new();
            let mut temps: Vec<(usize, Ty)> = Vec::new();
            let statements = 1 + rng.below(if case % 10 == 0 { 30 } else { 8 });
            for _ in 0..statements {
                if rng.below(3) == 0 {
                    let depth = 1 + rng.below(4) as u32;
                    let e = random(&mut rng, Ty::F64, depth, vars, &temps);
                    body.push(Stmt::Store(rng.below(vars as u64) as usize, e));
                } else {
                    let depth = 1 + rng.below(5) as u32;
                    let e = random(&mut rng, Ty::F64, depth, vars, &temps);
                    let t = temps.len();
                    body.push(Stmt::Let(t, e));
                    temps.push((t, Ty::F64));
                }
            }
            // Every temporary ends up in memory, keeping them all alive to the end.
            let sum = temps.iter().fold(Expr::F64(0.0), |s, t| Expr::bin(Op2::Add, s, Expr::Temp(t.0)));
            body.push(Stmt::Store(0, sum));

            let mut arrays: Vec<Vec<f64>> = (0..vars)
                .map(|_| {
                    (0..items)
                        .map(|_| match rng.below(3) {
                            0 => specials[rng.below(specials.len() as u64) as usize],
                            _ => (rng.below(2001) as f64 - 1000.0) / 97.0,
                        })
                        .collect()
                })
                .collect();
            let mut expected = arrays.clone();
            for k in 0..items {
                let mut values: Vec<(usize, f64)> = Vec::new();
                for s in &body {
                    match s {
                        Stmt::Let(t, e) => values.push((*t, scalar(e, k, &expected, &values))),
                        Stmt::Store(v, e) => expected[*v][k] = scalar(e, k, &expected, &values),
                        _ => unreachable!(),
                    }
                }
            }

            let routine = compile(&body, &|v| v < vars).expect("every generated body compiles");
            // `sub rsp, imm32` in the prologue: a frame means spills or invariants in memory.
            let sub = routine.code.windows(3).position(|w| w == [0x48, 0x81, 0xEC]).expect("a prologue") + 3;
            spilled += usize::from(routine.code[sub..sub + 4] != [0, 0, 0, 0]);
            let (start, end) = (4usize, 20usize);
            let block: Vec<u64> = routine
                .slots
                .iter()
                .map(|slot| match slot {
                    Slot::Array(v) => arrays[*v].as_mut_ptr() as u64,
                    Slot::Value(Expr::F64(x)) => x.to_bits(),
                    Slot::Bits(bits) => *bits,
                    Slot::First(lane) => (start as f64 + f64::from(*lane)).to_bits(),
                    other => panic!("not generated: {other:?}"),
                })
                .collect();
            let (_jit, run) = load(&routine.code);
            run(block.as_ptr(), start as u64, end as u64);
            for v in 0..vars {
                for k in 0..items {
                    let want = if (start..end).contains(&k) { expected[v][k] } else { arrays[v][k] };
                    // NaNs are equal whatever their sign and payload: which operand's NaN
                    // an operation passes on is not defined the same way by LLVM (AOT),
                    // and a NaN stops a run (exit status 3) anyway.
                    let same = arrays[v][k].to_bits() == want.to_bits() || (arrays[v][k].is_nan() && want.is_nan());
                    if (start..end).contains(&k) && !same {
                        assert_eq!(
                            arrays[v][k].to_bits(),
                            want.to_bits(),
                            "case {case}, variable {v}, item {k}: {} against {want}\n{}",
                            arrays[v][k],
                            body_text(&body)
                        );
                    }
                }
            }
        }
        assert!(spilled > 5, "only {spilled} bodies spilled: the test does not reach the spilling code");
    }

    #[test]
    fn encodes_a_decay_loop() {
        // w = min(max(w + c*(e*d), 0), m) and e = e*d: the forager's synapse update.
        let body = vec![
            Stmt::Let(0, Expr::bin(Op2::Mul, Expr::Load(0), Expr::Temp(1))),
            Stmt::Store(0, Expr::Temp(0)),
            Stmt::Store(
                1,
                Expr::bin(
                    Op2::Min,
                    Expr::bin(
                        Op2::Max,
                        Expr::bin(Op2::Add, Expr::Load(1), Expr::bin(Op2::Mul, Expr::Temp(2), Expr::Temp(0))),
                        Expr::F64(0.0),
                    ),
                    Expr::Param(0),
                ),
            ),
        ];
        let r = compile(&body, &|v| v < 2).expect("compiles");
        // The loop: e*d with e read from memory, stored; c*(e*d) + w (w from memory),
        // max, min, store. Checked against `objdump -D -b binary -m i386:x86-64`.
        let expected: &[&[u8]] = &[
            &[0xC4, 0xE1, 0x7D, 0x59, 0xA4, 0xF0, 0, 0, 0, 0], // vmulpd 0x0(%rax,%rsi,8),%ymm0,%ymm4
            &[0xC4, 0xE1, 0x7D, 0x11, 0xA4, 0xF0, 0, 0, 0, 0], // vmovupd %ymm4,0x0(%rax,%rsi,8)
            &[0xC4, 0xE1, 0x75, 0x59, 0xE4],                   // vmulpd %ymm4,%ymm1,%ymm4
            &[0xC4, 0xE1, 0x5D, 0x58, 0xA4, 0xF1, 0, 0, 0, 0], // vaddpd 0x0(%rcx,%rsi,8),%ymm4,%ymm4
            &[0xC4, 0xE1, 0x5D, 0x5F, 0xE2],                   // vmaxpd %ymm2,%ymm4,%ymm4
            &[0xC4, 0xE1, 0x5D, 0x5D, 0xE3],                   // vminpd %ymm3,%ymm4,%ymm4
            &[0xC4, 0xE1, 0x7D, 0x11, 0xA4, 0xF1, 0, 0, 0, 0], // vmovupd %ymm4,0x0(%rcx,%rsi,8)
        ];
        let body_bytes: Vec<u8> = expected.concat();
        assert!(r.code.windows(body_bytes.len()).any(|w| w == body_bytes.as_slice()), "{:02x?}", r.code);
    }
}

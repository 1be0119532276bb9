//! The kernel ABI: the contract between generated kernels (JIT or AOT) and the runtime.
//!
//! Every kernel is an `extern "C" fn(*const KernelArgs)`; it loops over its items
//! itself. The functions below (random numbers, the transcendental functions) are
//! the only code kernels call: both back ends call these same functions, so
//! results are identical bit for bit, and (being pure Rust, from the `libm` crate)
//! identical across machines.

/// The arguments of every kernel call.
#[repr(C)]
#[derive(Debug)]
pub struct KernelArgs {
    /// How many items the kernel loops over: the population's size, or (for
    /// spike-driven kernels) the number of spikes in `spikes`.
    pub n: u64,
    /// The step number (time = step * dt).
    pub step: u64,
    /// Time at the start of the step, in seconds.
    pub t: f64,
    /// The time step, in seconds.
    pub dt: f64,
    /// Base pointers of the model's state arrays, indexed by `ir::VarId`.
    pub vars: *const *mut f64,
    /// Values of the model's constants, indexed by `ir::ParamId`.
    pub params: *const f64,
    /// Per-neuron value tables (`ir::Module::tables`), indexed by table id.
    pub tables: *const *const f64,
    /// The population's spike list: written by threshold kernels, read by spike-driven kernels.
    pub spikes: *mut u32,
    /// Where threshold kernels write the number of spikes.
    pub n_spikes: *mut u64,
    /// The seed of the counter-based random number generator.
    pub seed: u64,
    /// Synapse kernels: the presynaptic neuron of every synapse.
    pub pre: *const u32,
    /// Synapse kernels: the postsynaptic neuron of every synapse.
    pub post: *const u32,
    /// Synapse kernels: the synapses of presynaptic neuron `i` are `pre_offsets[i]..pre_offsets[i+1]`.
    pub pre_offsets: *const u32,
    /// Synapse kernels: the synapses of postsynaptic neuron `j` are
    /// `post_order[post_offsets[j]..post_offsets[j+1]]`.
    pub post_offsets: *const u32,
    /// Synapse kernels: synapse ids ordered by postsynaptic neuron.
    pub post_order: *const u32,
    /// A kernel-specific value: the presynaptic neuron of `Loop::Pairs` kernels.
    pub aux: u64,
    /// The environment's observations (`ir::Expr::Env`); may dangle when the model
    /// reads none.
    pub env: *const f64,
}

/// A compiled kernel.
pub type KernelFn = unsafe extern "C" fn(args: *const KernelArgs);

/// Byte offsets of `KernelArgs` fields, for code generators.
pub mod offsets {
    /// `n`
    pub const N: i32 = 0;
    /// `step`
    pub const STEP: i32 = 8;
    /// `t`
    pub const T: i32 = 16;
    /// `dt`
    pub const DT: i32 = 24;
    /// `vars`
    pub const VARS: i32 = 32;
    /// `params`
    pub const PARAMS: i32 = 40;
    /// `tables`
    pub const TABLES: i32 = 48;
    /// `spikes`
    pub const SPIKES: i32 = 56;
    /// `n_spikes`
    pub const N_SPIKES: i32 = 64;
    /// `seed`
    pub const SEED: i32 = 72;
    /// `pre`
    pub const PRE: i32 = 80;
    /// `post`
    pub const POST: i32 = 88;
    /// `pre_offsets`
    pub const PRE_OFFSETS: i32 = 96;
    /// `post_offsets`
    pub const POST_OFFSETS: i32 = 104;
    /// `post_order`
    pub const POST_ORDER: i32 = 112;
    /// `aux`
    pub const AUX: i32 = 120;
    /// `env`
    pub const ENV: i32 = 128;
}

// ---------------------------------------------------------------- random numbers
//
// Counter-based: every number is a pure function of (seed, step, index, stream),
// so results do not depend on the back end, the order of evaluation or threads.
// A kernel computes one key per (seed, step, stream) with `snnc_rng_key`, then
// draws item `index` with `snnc_uniform(key, index)` / `snnc_normal(key, index)`:
// for a fixed key the draws over `index` are a SplitMix64 sequence (Steele, Lea
// and Flood 2014; passes BigCrush) started at a hashed, step-dependent point.

/// SplitMix64's increment (the golden ratio in 64 bits).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Stafford's Mix13, SplitMix64's output function: a bijection of 64-bit words.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of the draws of one stream at one step.
#[inline]
pub extern "C" fn snnc_rng_key(seed: u64, step: u64, stream: u64) -> u64 {
    let key = mix(seed.wrapping_add(mix(stream.wrapping_add(1).wrapping_mul(GOLDEN))));
    mix(key.wrapping_add(step.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// 64 random bits: draw `attempt` of item `index` under `key`.
#[inline]
fn bits(key: u64, index: u64, attempt: u64) -> u64 {
    mix(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GOLDEN)) ^ (attempt << 56))
}

/// The top 53 bits as a float in [0, 1).
#[inline]
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform number in [0, 1) for item `index`.
#[inline]
pub extern "C" fn snnc_uniform(key: u64, index: u64) -> f64 {
    unit(bits(key, index, 0))
}

/// A uniform number in [0, 1): a pure function of its arguments.
pub extern "C" fn snnc_rand(seed: u64, step: u64, index: u64, stream: u64) -> f64 {
    snnc_uniform(snnc_rng_key(seed, step, stream), index)
}

/// A standard normal number: a pure function of its arguments.
pub extern "C" fn snnc_randn(seed: u64, step: u64, index: u64, stream: u64) -> f64 {
    snnc_normal(snnc_rng_key(seed, step, stream), index)
}

/// Layers of the ziggurat (`build.rs` makes the tables; tests check them).
#[cfg(test)]
const LAYERS: usize = 256;
/// Where the base layer's tail starts, and the area of every layer (Marsaglia and
/// Tsang 2000, 256 layers).
const ZIGGURAT_R: f64 = 3.654_152_885_361_009;
#[cfg(test)]
const ZIGGURAT_AREA: f64 = 0.004_928_673_233_99;

// The layer edges `ZIGGURAT_X[0..=256]` (x[0] the base layer's equivalent width,
// x[1] = r, decreasing to x[256] = 0) and the density there, `ZIGGURAT_F[i] =
// exp(-x[i]^2/2)`: computed by `build.rs` with libm (the same on every machine).
include!(concat!(env!("OUT_DIR"), "/ziggurat.rs"));

/// A standard normal number for item `index` (the ziggurat method: one draw of 64
/// bits in about 99 % of calls; more, numbered by attempt, when rejected).
#[inline]
pub extern "C" fn snnc_normal(key: u64, index: u64) -> f64 {
    // The common case inline: the point falls inside its layer's rectangle.
    let u = bits(key, index, 0);
    let layer = (u & 0xFF) as usize;
    let x = unit(u) * ZIGGURAT_X[layer];
    if x < ZIGGURAT_X[layer + 1] {
        // Bit 8 of `u` is the sign: moved to the float's sign bit, without a branch
        // (the same bits as `-x`; a branch here would be mispredicted half the time).
        return f64::from_bits(x.to_bits() ^ ((u & 0x100) << 55));
    }
    normal_rejected(key, index, u)
}

/// Draws per batch of [`snnc_normals`] / [`snnc_uniforms`]: a kernel's buffer of
/// random numbers holds this many (the generated loops run in chunks of it).
pub const BATCH: usize = 64;

/// `out[j] = snnc_normal(key, first + j)` for every `j`, the same bits. The first
/// attempt of every draw is made for the whole slice in a loop without calls or
/// branches (four draws at a time with AVX2, which has every operation of it:
/// integer arithmetic, exact conversions, a multiplication and a comparison), and
/// notes which draws missed their layer's rectangle; the ~1% that missed then
/// continue one by one.
#[inline]
pub fn snnc_normals(key: u64, first: u64, out: &mut [f64]) {
    let mut index = first;
    for chunk in out.chunks_mut(BATCH) {
        #[cfg(target_arch = "x86_64")]
        let missed = if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { avx2::first_attempts(key, index, chunk) }
        } else {
            first_attempts(key, index, chunk)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let missed = first_attempts(key, index, chunk);
        let mut rest = missed;
        while rest != 0 {
            let j = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let at = index + j as u64;
            chunk[j] = normal_rejected(key, at, bits(key, at, 0));
        }
        index += chunk.len() as u64;
    }
}

/// The first attempt of the draws `first..` into `out` (at most [`BATCH`] of them):
/// the signed point of every draw that fell inside its layer's rectangle, and a bit
/// mask of those that did not.
#[inline]
fn first_attempts(key: u64, first: u64, out: &mut [f64]) -> u64 {
    let mut missed = 0u64;
    for (j, o) in out.iter_mut().enumerate() {
        let u = bits(key, first + j as u64, 0);
        let layer = (u & 0xFF) as usize;
        let x = unit(u) * ZIGGURAT_X[layer];
        // Bit 8 of `u` is the sign, as in `snnc_normal`.
        *o = f64::from_bits(x.to_bits() ^ ((u & 0x100) << 55));
        missed |= u64::from(x >= ZIGGURAT_X[layer + 1]) << j;
    }
    missed
}

/// `out[j] = snnc_uniform(key, first + j)` for every `j` (four at a time with AVX2).
#[inline]
pub fn snnc_uniforms(key: u64, first: u64, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2::uniforms(key, first, out) };
    }
    uniforms_scalar(key, first, out);
}

#[inline]
fn uniforms_scalar(key: u64, first: u64, out: &mut [f64]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = snnc_uniform(key, first + j as u64);
    }
}

/// `first_attempts` and `snnc_uniforms` four lanes at a time. Every operation is
/// exact or one correctly rounded IEEE operation, as in the scalar code, so the
/// bits are the same.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{GOLDEN, ZIGGURAT_X};
    use std::arch::x86_64::*;

    /// Layer `l`'s edges `[x[l], x[l + 1]]`, side by side.
    static EDGES: [[f64; 2]; 256] = {
        let mut edges = [[0.0; 2]; 256];
        let mut l = 0;
        while l < 256 {
            edges[l] = [ZIGGURAT_X[l], ZIGGURAT_X[l + 1]];
            l += 1;
        }
        edges
    };

    /// The low 64 bits of `a * b` in every lane (AVX2 multiplies 32-bit halves).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mul64(a: __m256i, b: __m256i) -> __m256i {
        let low = _mm256_mul_epu32(a, b);
        let cross = _mm256_add_epi64(
            _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), b),
            _mm256_mul_epu32(a, _mm256_srli_epi64::<32>(b)),
        );
        _mm256_add_epi64(low, _mm256_slli_epi64::<32>(cross))
    }

    /// `super::mix` in every lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mix(z: __m256i) -> __m256i {
        let c1 = _mm256_set1_epi64x(0xBF58_476D_1CE4_E5B9_u64 as i64);
        let c2 = _mm256_set1_epi64x(0x94D0_49BB_1331_11EB_u64 as i64);
        let z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64::<30>(z)), c1);
        let z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64::<27>(z)), c2);
        _mm256_xor_si256(z, _mm256_srli_epi64::<31>(z))
    }

    /// `super::unit` in every lane: the top 53 bits converted exactly (as two exact
    /// halves whose sum is representable), times 2^-53.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn unit(u: __m256i) -> __m256d {
        let v = _mm256_srli_epi64::<11>(u);
        // 2^52 + (low 32 bits) and 2^84 + (high 21 bits) * 2^32: both exact.
        let low = _mm256_or_si256(
            _mm256_and_si256(v, _mm256_set1_epi64x(0xFFFF_FFFF)),
            _mm256_set1_epi64x(0x4330_0000_0000_0000),
        );
        let high = _mm256_or_si256(_mm256_srli_epi64::<32>(v), _mm256_set1_epi64x(0x4530_0000_0000_0000));
        let offset = _mm256_set1_pd(f64::from_bits(0x4530_0000_0010_0000)); // 2^84 + 2^52
        let value = _mm256_add_pd(_mm256_sub_pd(_mm256_castsi256_pd(high), offset), _mm256_castsi256_pd(low));
        _mm256_mul_pd(value, _mm256_set1_pd(1.0 / (1u64 << 53) as f64))
    }

    /// The counters of draws `first..first + 4` (`bits` mixes `key + (index + 1) * GOLDEN`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn counters(key: u64, first: u64) -> __m256i {
        let at = |j: u64| key.wrapping_add(first.wrapping_add(j + 1).wrapping_mul(GOLDEN)) as i64;
        _mm256_set_epi64x(at(3), at(2), at(1), at(0))
    }

    /// `super::first_attempts`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn first_attempts(key: u64, first: u64, out: &mut [f64]) -> u64 {
        let mut missed = 0u64;
        let mut z = counters(key, first);
        let step = _mm256_set1_epi64x(GOLDEN.wrapping_mul(4) as i64);
        let mut quads = out.chunks_exact_mut(4);
        let mut j = 0u32;
        for quad in &mut quads {
            let u = mix(z);
            z = _mm256_add_epi64(z, step);
            // Each lane's layer edges (one 16-byte load each: faster than two gathers).
            let layer = _mm256_and_si256(u, _mm256_set1_epi64x(0xFF));
            let (low, high) = (_mm256_castsi256_si128(layer), _mm256_extracti128_si256::<1>(layer));
            // SAFETY: a load of two f64s from a `[f64; 2]`.
            let edges = |l: i64| unsafe { _mm_loadu_pd(EDGES[l as usize & 0xFF].as_ptr()) };
            let (e0, e1) = (edges(_mm_cvtsi128_si64(low)), edges(_mm_extract_epi64::<1>(low)));
            let (e2, e3) = (edges(_mm_cvtsi128_si64(high)), edges(_mm_extract_epi64::<1>(high)));
            let (even, odd) = (_mm256_set_m128d(e2, e0), _mm256_set_m128d(e3, e1));
            let (width, next) = (_mm256_unpacklo_pd(even, odd), _mm256_unpackhi_pd(even, odd));
            let x = _mm256_mul_pd(unit(u), width);
            let sign = _mm256_slli_epi64::<55>(_mm256_and_si256(u, _mm256_set1_epi64x(0x100)));
            let signed = _mm256_castsi256_pd(_mm256_xor_si256(_mm256_castpd_si256(x), sign));
            // SAFETY: `quad` holds four f64s.
            unsafe { _mm256_storeu_pd(quad.as_mut_ptr(), signed) };
            let outside = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(x, next)) as u64;
            missed |= outside << j;
            j += 4;
        }
        // The rest (fewer than four); nothing when `out` was whole quads (`j` may be 64).
        let rest = super::first_attempts(key, first + u64::from(j), quads.into_remainder());
        missed | rest.checked_shl(j).unwrap_or(0)
    }

    /// `super::snnc_uniforms`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn uniforms(key: u64, first: u64, out: &mut [f64]) {
        let mut z = counters(key, first);
        let step = _mm256_set1_epi64x(GOLDEN.wrapping_mul(4) as i64);
        let mut quads = out.chunks_exact_mut(4);
        let mut j = 0;
        for quad in &mut quads {
            // SAFETY: `quad` holds four f64s.
            unsafe { _mm256_storeu_pd(quad.as_mut_ptr(), unit(mix(z))) };
            z = _mm256_add_epi64(z, step);
            j += 4;
        }
        super::uniforms_scalar(key, first + j as u64, quads.into_remainder());
    }
}

/// [`snnc_normals`] for JIT code: fills `len` values at `out`.
///
/// # Safety
/// `out` must be valid for writes of `len` `f64`s.
pub unsafe extern "C" fn snnc_fill_normals(key: u64, first: u64, out: *mut f64, len: u64) {
    // SAFETY: the caller's contract.
    snnc_normals(key, first, unsafe { std::slice::from_raw_parts_mut(out, len as usize) });
}

/// [`snnc_uniforms`] for JIT code: fills `len` values at `out`.
///
/// # Safety
/// `out` must be valid for writes of `len` `f64`s.
pub unsafe extern "C" fn snnc_fill_uniforms(key: u64, first: u64, out: *mut f64, len: u64) {
    // SAFETY: the caller's contract.
    snnc_uniforms(key, first, unsafe { std::slice::from_raw_parts_mut(out, len as usize) });
}

/// The rest of `snnc_normal` after its first draw `u` fell outside the rectangle:
/// the wedge test, the tail, and further draws numbered by attempt.
#[cold]
#[inline(never)]
fn normal_rejected(key: u64, index: u64, mut u: u64) -> f64 {
    let mut attempt = 1;
    loop {
        let layer = (u & 0xFF) as usize;
        let negative = u & 0x100 != 0;
        let x = unit(u) * ZIGGURAT_X[layer];
        let signed = |x: f64| if negative { -x } else { x };
        if x < ZIGGURAT_X[layer + 1] {
            return signed(x);
        }
        if layer == 0 {
            // The tail beyond r (Marsaglia 1964), from two more draws in (0, 1].
            loop {
                let a = -libm::log(1.0 - unit(bits(key, index, attempt))) / ZIGGURAT_R;
                let b = -libm::log(1.0 - unit(bits(key, index, attempt + 1)));
                attempt += 2;
                if b + b > a * a {
                    return signed(ZIGGURAT_R + a);
                }
            }
        }
        // The wedge between the layer's rectangle and the density.
        let y = ZIGGURAT_F[layer] + unit(bits(key, index, attempt)) * (ZIGGURAT_F[layer + 1] - ZIGGURAT_F[layer]);
        attempt += 1;
        if y < libm::exp(-0.5 * x * x) {
            return signed(x);
        }
        u = bits(key, index, attempt);
        attempt += 1;
    }
}

// ---------------------------------------------------------------- mathematics

/// Below this magnitude a float may have a fraction; above, it is a whole number.
const FRACTIONAL: f64 = 4_503_599_627_370_496.0;

/// `x.trunc()`, bit for bit, without a library call (for generated Rust code).
#[inline]
pub fn snnc_trunc(x: f64) -> f64 {
    // `as i64` is exact below 2^52; `copysign` keeps -0.0 for -0.5 and -0.0.
    if x.abs() < FRACTIONAL { ((x as i64) as f64).copysign(x) } else { x }
}

/// `x.floor()`, bit for bit, without a library call.
#[inline]
pub fn snnc_floor(x: f64) -> f64 {
    if x.abs() < FRACTIONAL {
        let t = (x as i64) as f64;
        (if t > x { t - 1.0 } else { t }).copysign(x)
    } else {
        x
    }
}

/// `x.ceil()`, bit for bit, without a library call.
#[inline]
pub fn snnc_ceil(x: f64) -> f64 {
    if x.abs() < FRACTIONAL {
        let t = (x as i64) as f64;
        (if t < x { t + 1.0 } else { t }).copysign(x)
    } else {
        x
    }
}

macro_rules! unary {
    ($($name:ident => $f:path),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($f), "` for generated code.")]
            pub extern "C" fn $name(x: f64) -> f64 {
                $f(x)
            }
        )*
    };
}

unary! {
    snnc_exp => libm::exp,
    snnc_log => libm::log,
    snnc_log10 => libm::log10,
    snnc_sin => libm::sin,
    snnc_cos => libm::cos,
    snnc_tan => libm::tan,
    snnc_sinh => libm::sinh,
    snnc_cosh => libm::cosh,
    snnc_tanh => libm::tanh,
    snnc_asin => libm::asin,
    snnc_acos => libm::acos,
    snnc_atan => libm::atan,
    snnc_expm1 => libm::expm1,
    snnc_log1p => libm::log1p,
}

/// `x ** y`.
pub extern "C" fn snnc_pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// `exprel(x) = (exp(x) - 1)/x`, as Brian2 computes it: 1 near 0, inf above 717.
pub extern "C" fn snnc_exprel(x: f64) -> f64 {
    if x.abs() < 1e-16 {
        1.0
    } else if x > 717.0 {
        f64::INFINITY
    } else {
        libm::expm1(x) / x
    }
}

/// `x % y` as in Python and NumPy: the result has the sign of `y`.
pub extern "C" fn snnc_mod(x: f64, y: f64) -> f64 {
    let r = libm::fmod(x, y);
    if r != 0.0 && ((y < 0.0) != (r < 0.0)) { r + y } else { r }
}

/// The least `x` (not NaN) with `x / d >= n` in floating point, for `d > 0`: then
/// `x / d >= n` holds exactly when `x >= snnc_quotient_at_least(n, d)`, so a
/// kernel compares instead of dividing (`x / d` rounds correctly, hence never
/// decreases as `x` grows, and the set where it holds starts at one float). NaN
/// when no `x` qualifies or `d` is not positive (every comparison is then false).
pub extern "C" fn snnc_quotient_at_least(n: f64, d: f64) -> f64 {
    least_with(|x| x / d >= n, d)
}

/// The least `x` with `x / d > n` (see [`snnc_quotient_at_least`]).
pub extern "C" fn snnc_quotient_above(n: f64, d: f64) -> f64 {
    least_with(|x| x / d > n, d)
}

/// The least float (by value; NaN excluded) where `holds`, a property that never
/// turns false as `x` grows, holds: a binary search over the floats in order.
fn least_with(holds: impl Fn(f64) -> bool, d: f64) -> f64 {
    // Floats in order of value as integers: -inf ... -0 = +0 ... +inf.
    let key = |x: f64| {
        let bits = x.to_bits();
        if bits >> 63 == 1 { -((bits & !(1 << 63)) as i64) } else { bits as i64 }
    };
    let float = |k: i64| if k < 0 { f64::from_bits(k.unsigned_abs() | (1 << 63)) } else { f64::from_bits(k as u64) };
    if d.is_nan() || d <= 0.0 || !holds(f64::INFINITY) {
        return f64::NAN;
    }
    let (mut low, mut high) = (key(f64::NEG_INFINITY), key(f64::INFINITY));
    if holds(float(low)) {
        return f64::NEG_INFINITY;
    }
    // `holds` is false at `low` and true at `high`.
    while i128::from(high) - i128::from(low) > 1 {
        let middle = ((i128::from(low) + i128::from(high)).div_euclid(2)) as i64;
        if holds(float(middle)) { high = middle } else { low = middle }
    }
    float(high)
}

/// The name and address of every function generated code may call.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    let unary: [(&str, extern "C" fn(f64) -> f64); 15] = [
        ("snnc_exp", snnc_exp),
        ("snnc_log", snnc_log),
        ("snnc_log10", snnc_log10),
        ("snnc_sin", snnc_sin),
        ("snnc_cos", snnc_cos),
        ("snnc_tan", snnc_tan),
        ("snnc_sinh", snnc_sinh),
        ("snnc_cosh", snnc_cosh),
        ("snnc_tanh", snnc_tanh),
        ("snnc_asin", snnc_asin),
        ("snnc_acos", snnc_acos),
        ("snnc_atan", snnc_atan),
        ("snnc_expm1", snnc_expm1),
        ("snnc_log1p", snnc_log1p),
        ("snnc_exprel", snnc_exprel),
    ];
    let mut out: Vec<(&'static str, *const u8)> = unary.iter().map(|(n, f)| (*n, *f as *const u8)).collect();
    out.push(("snnc_pow", snnc_pow as *const u8));
    out.push(("snnc_mod", snnc_mod as *const u8));
    out.push(("snnc_quotient_at_least", snnc_quotient_at_least as *const u8));
    out.push(("snnc_quotient_above", snnc_quotient_above as *const u8));
    out.push(("snnc_rng_key", snnc_rng_key as *const u8));
    out.push(("snnc_uniform", snnc_uniform as *const u8));
    out.push(("snnc_normal", snnc_normal as *const u8));
    out.push(("snnc_fill_uniforms", snnc_fill_uniforms as *const u8));
    out.push(("snnc_fill_normals", snnc_fill_normals as *const u8));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparing_with_the_least_quotient_is_dividing() {
        let mut state = 12345u64;
        let mut next = || {
            state = mix(state.wrapping_add(GOLDEN));
            state
        };
        for _ in 0..2000 {
            // Steps, refractory periods and times as the refractory check meets them,
            // and arbitrary floats.
            let d = [1e-4, 1e-3, 0.1e-3, 0.25e-3, 3.7e-5, unit(next()) + 1e-9][(next() % 6) as usize];
            let n = [0.0, 1.0, 2.0, 20.0, 49.0, -1.0, 0.5, (next() % 1000) as f64][(next() % 8) as usize];
            let (at_least, above) = (snnc_quotient_at_least(n, d), snnc_quotient_above(n, d));
            for _ in 0..20 {
                let x = match next() % 4 {
                    0 => n * d,
                    1 => f64::from_bits((n * d).to_bits().wrapping_add(next() % 5).wrapping_sub(2)),
                    2 => (unit(next()) - 0.2) * 100.0 * d * n.abs().max(1.0),
                    _ => f64::from_bits(next()),
                };
                if x.is_nan() {
                    continue;
                }
                assert_eq!(x / d >= n, x >= at_least, "{x:e} / {d:e} >= {n}");
                assert_eq!(x / d > n, x >= above, "{x:e} / {d:e} > {n}");
            }
        }
        assert!(snnc_quotient_at_least(1.0, 0.0).is_nan());
        assert!(snnc_quotient_at_least(f64::NAN, 1.0).is_nan());
        assert_eq!(snnc_quotient_at_least(f64::NEG_INFINITY, 1.0), f64::NEG_INFINITY);
    }

    #[test]
    fn batches_of_draws_are_the_single_draws() {
        let mut rejected = 0;
        for (key, first, len) in [(snnc_rng_key(1, 0, 2), 0, 1000), (snnc_rng_key(7, 9, 3), 123, 65), (42, 5, 0)] {
            let mut normals = vec![f64::NAN; len];
            let mut uniforms = vec![f64::NAN; len];
            snnc_normals(key, first, &mut normals);
            // SAFETY: `uniforms` holds `len` values.
            unsafe { snnc_fill_uniforms(key, first, uniforms.as_mut_ptr(), len as u64) };
            for j in 0..len {
                let index = first + j as u64;
                assert_eq!(normals[j].to_bits(), snnc_normal(key, index).to_bits(), "normal {index}");
                assert_eq!(uniforms[j].to_bits(), snnc_uniform(key, index).to_bits(), "uniform {index}");
                let u = bits(key, index, 0);
                rejected +=
                    usize::from(unit(u) * ZIGGURAT_X[(u & 0xFF) as usize] >= ZIGGURAT_X[(u & 0xFF) as usize + 1]);
            }
        }
        // The slow path was exercised (about 1% of 1,065 draws).
        assert!(rejected > 0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_pass_is_the_scalar_pass() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for step in 0..50 {
            let key = snnc_rng_key(3, step, 1);
            for len in [64, 61, 3] {
                let (mut scalar, mut vector) = (vec![0.0; len], vec![0.0; len]);
                let missed = first_attempts(key, step * 7, &mut scalar);
                // SAFETY: the CPU has AVX2 (checked above).
                assert_eq!(unsafe { avx2::first_attempts(key, step * 7, &mut vector) }, missed);
                let (mut u_scalar, mut u_vector) = (vec![0.0; len], vec![0.0; len]);
                uniforms_scalar(key, step, &mut u_scalar);
                // SAFETY: as above.
                unsafe { avx2::uniforms(key, step, &mut u_vector) };
                for j in 0..len {
                    assert_eq!(scalar[j].to_bits(), vector[j].to_bits(), "normal {j} of step {step}");
                    assert_eq!(u_scalar[j].to_bits(), u_vector[j].to_bits(), "uniform {j} of step {step}");
                }
            }
        }
    }

    #[test]
    fn random_numbers_are_pure_functions_of_their_coordinates() {
        assert_eq!(snnc_rand(1, 2, 3, 4).to_bits(), snnc_rand(1, 2, 3, 4).to_bits());
        assert_ne!(snnc_rand(1, 2, 3, 4), snnc_rand(2, 2, 3, 4));
        assert_ne!(snnc_rand(1, 2, 3, 4), snnc_rand(1, 3, 3, 4));
        assert_ne!(snnc_rand(1, 2, 3, 4), snnc_rand(1, 2, 4, 4));
        assert_ne!(snnc_rand(1, 2, 3, 4), snnc_rand(1, 2, 3, 5));
    }

    #[test]
    fn uniform_and_normal_moments() {
        let n = 200_000u64;
        let (mut s, mut s2, mut g, mut g2) = (0.0, 0.0, 0.0, 0.0);
        for k in 0..n {
            let u = snnc_rand(7, k, 0, 1);
            assert!((0.0..1.0).contains(&u));
            s += u;
            s2 += u * u;
            let z = snnc_randn(7, 0, k, 2);
            g += z;
            g2 += z * z;
        }
        let nf = n as f64;
        // Means within 4 standard errors.
        assert!((s / nf - 0.5).abs() < 4.0 * (1.0 / 12.0f64).sqrt() / nf.sqrt());
        assert!((s2 / nf - 1.0 / 3.0).abs() < 0.005);
        assert!((g / nf).abs() < 4.0 / nf.sqrt());
        assert!((g2 / nf - 1.0).abs() < 4.0 * 2.0f64.sqrt() / nf.sqrt());
    }

    #[test]
    fn integer_rounding_matches_the_library_bit_for_bit() {
        let mut values = vec![0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 2.5, -2.5, 1e-300, -1e-300, f64::INFINITY];
        values.extend([f64::NEG_INFINITY, f64::NAN, FRACTIONAL, -FRACTIONAL, FRACTIONAL - 0.5, 0.5 - FRACTIONAL]);
        values.extend([1e300, -1e300, 4_503_599_627_370_497.0, 0.999_999_999_999_999_9, -0.999_999_999_999_999_9]);
        let key = snnc_rng_key(3, 1, 1);
        values.extend((0..10_000).map(|i| (snnc_uniform(key, i) - 0.5) * 10f64.powi((i % 40) as i32 - 20)));
        for x in values {
            assert_eq!(snnc_trunc(x).to_bits(), x.trunc().to_bits(), "trunc {x}");
            assert_eq!(snnc_floor(x).to_bits(), x.floor().to_bits(), "floor {x}");
            assert_eq!(snnc_ceil(x).to_bits(), x.ceil().to_bits(), "ceil {x}");
        }
    }

    #[test]
    fn the_ziggurat_is_built_right() {
        let (x, f) = (&ZIGGURAT_X, &ZIGGURAT_F);
        // Every layer has the same area; the top one ends at 0.
        for i in 1..LAYERS - 1 {
            let area = x[i] * (f[i + 1] - f[i]);
            assert!((area - ZIGGURAT_AREA).abs() < 1e-12, "layer {i}: {area}");
        }
        assert!(x[LAYERS - 1] > 0.0 && x[LAYERS - 1] < 0.3, "{}", x[LAYERS - 1]);
        assert!(x.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(x[1], ZIGGURAT_R);
        assert!(x.iter().zip(f).all(|(&x, &f)| f.to_bits() == libm::exp(-0.5 * x * x).to_bits()));
    }

    #[test]
    fn normals_follow_the_normal_distribution() {
        // Kolmogorov-Smirnov against the normal CDF, and the tails beyond r.
        let n = 400_000u64;
        let key = snnc_rng_key(11, 3, 5);
        let mut draws: Vec<f64> = (0..n).map(|i| snnc_normal(key, i)).collect();
        draws.sort_by(f64::total_cmp);
        let cdf = |x: f64| 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let nf = n as f64;
        let d = draws
            .iter()
            .enumerate()
            .map(|(k, &x)| (cdf(x) - k as f64 / nf).abs().max((cdf(x) - (k + 1) as f64 / nf).abs()))
            .fold(0.0, f64::max);
        // The 1 % critical value is 1.63/sqrt(n).
        assert!(d < 1.63 / nf.sqrt(), "KS distance {d}");
        let tail = draws.iter().filter(|x| x.abs() > ZIGGURAT_R).count() as f64 / nf;
        let expected = 2.0 * (1.0 - cdf(ZIGGURAT_R));
        assert!((tail - expected).abs() < 5.0 * (expected / nf).sqrt(), "{tail} vs {expected}");
        assert!(draws.iter().any(|&x| x > 4.0) && draws.iter().any(|&x| x < -4.0));
    }

    #[test]
    fn uniform_draws_of_neighbouring_steps_and_items_are_uncorrelated() {
        let n = 100_000u64;
        let (k1, k2) = (snnc_rng_key(1, 7, 2), snnc_rng_key(1, 8, 2));
        let c = |a: &dyn Fn(u64) -> f64, b: &dyn Fn(u64) -> f64| {
            (0..n).map(|i| (a(i) - 0.5) * (b(i) - 0.5)).sum::<f64>() / n as f64 * 12.0
        };
        // Correlation coefficients within 4 standard errors of 0.
        let bound = 4.0 / (n as f64).sqrt();
        assert!(c(&|i| snnc_uniform(k1, i), &|i| snnc_uniform(k2, i)).abs() < bound);
        assert!(c(&|i| snnc_uniform(k1, i), &|i| snnc_uniform(k1, i + 1)).abs() < bound);
        assert!(c(&|i| snnc_uniform(k1, i), &|i| snnc_uniform(snnc_rng_key(1, 7, 3), i)).abs() < bound);
    }

    #[test]
    fn python_modulo_and_exprel() {
        assert_eq!(snnc_mod(5.0, 3.0), 2.0);
        assert_eq!(snnc_mod(-5.0, 3.0), 1.0);
        assert_eq!(snnc_mod(5.0, -3.0), -1.0);
        assert_eq!(snnc_exprel(0.0), 1.0);
        assert_eq!(snnc_exprel(1000.0), f64::INFINITY);
        assert!((snnc_exprel(1e-3) - 1.000_500_166_708_341_7).abs() < 1e-15);
    }

    #[test]
    fn offsets_match_the_struct() {
        let a = KernelArgs {
            n: 0,
            step: 0,
            t: 0.0,
            dt: 0.0,
            vars: std::ptr::null(),
            params: std::ptr::null(),
            tables: std::ptr::null(),
            spikes: std::ptr::null_mut(),
            n_spikes: std::ptr::null_mut(),
            seed: 0,
            pre: std::ptr::null(),
            post: std::ptr::null(),
            pre_offsets: std::ptr::null(),
            post_offsets: std::ptr::null(),
            post_order: std::ptr::null(),
            aux: 0,
            env: std::ptr::null(),
        };
        let base = &a as *const KernelArgs as usize;
        let at = |p: usize| (p - base) as i32;
        assert_eq!(at(&a.step as *const u64 as usize), offsets::STEP);
        assert_eq!(at(&a.t as *const f64 as usize), offsets::T);
        assert_eq!(at(&a.dt as *const f64 as usize), offsets::DT);
        assert_eq!(at(&a.vars as *const _ as usize), offsets::VARS);
        assert_eq!(at(&a.params as *const _ as usize), offsets::PARAMS);
        assert_eq!(at(&a.tables as *const _ as usize), offsets::TABLES);
        assert_eq!(at(&a.spikes as *const _ as usize), offsets::SPIKES);
        assert_eq!(at(&a.n_spikes as *const _ as usize), offsets::N_SPIKES);
        assert_eq!(at(&a.seed as *const u64 as usize), offsets::SEED);
        assert_eq!(at(&a.pre as *const _ as usize), offsets::PRE);
        assert_eq!(at(&a.post as *const _ as usize), offsets::POST);
        assert_eq!(at(&a.pre_offsets as *const _ as usize), offsets::PRE_OFFSETS);
        assert_eq!(at(&a.post_offsets as *const _ as usize), offsets::POST_OFFSETS);
        assert_eq!(at(&a.post_order as *const _ as usize), offsets::POST_ORDER);
        assert_eq!(at(&a.aux as *const u64 as usize), offsets::AUX);
    }
}

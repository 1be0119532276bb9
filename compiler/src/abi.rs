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

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// Philox4x32-10 (Salmon et al. 2011, Random123): a bijection of the 128-bit
/// counter under a 64-bit key.
pub fn philox4x32(mut counter: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            key[0] = key[0].wrapping_add(PHILOX_W0);
            key[1] = key[1].wrapping_add(PHILOX_W1);
        }
        let p0 = u64::from(PHILOX_M0) * u64::from(counter[0]);
        let p1 = u64::from(PHILOX_M1) * u64::from(counter[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        counter = [hi1 ^ counter[1] ^ key[0], lo1, hi0 ^ counter[3] ^ key[1], lo0];
    }
    counter
}

/// The 128 random bits for (seed, step, index, stream): the key is the seed, the
/// counter holds the index (low 48 bits), the stream (16 bits) and the step.
fn bits(seed: u64, step: u64, index: u64, stream: u64) -> [u32; 4] {
    let counter =
        [index as u32, ((index >> 32) as u32 & 0xFFFF) | ((stream as u32) << 16), step as u32, (step >> 32) as u32];
    philox4x32(counter, [seed as u32, (seed >> 32) as u32])
}

/// 53 random bits as a float in [0, 1).
fn unit(hi: u32, lo: u32) -> f64 {
    let x = ((u64::from(hi) << 32) | u64::from(lo)) >> 11;
    x as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform number in [0, 1): a pure function of its arguments.
pub extern "C" fn snnc_rand(seed: u64, step: u64, index: u64, stream: u64) -> f64 {
    let b = bits(seed, step, index, stream);
    unit(b[0], b[1])
}

/// A standard normal number: a pure function of its arguments (the inverse normal
/// distribution function of a uniform draw in (0, 1)).
pub extern "C" fn snnc_randn(seed: u64, step: u64, index: u64, stream: u64) -> f64 {
    let b = bits(seed, step, index, stream);
    let x = ((u64::from(b[0]) << 32) | u64::from(b[1])) >> 11;
    // Strictly inside (0, 1): the midpoint of one of 2^53 equal cells.
    let p = (x as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    inverse_normal(p)
}

/// Evaluates a polynomial with coefficients from the constant term up (Horner).
fn poly(c: &[f64; 8], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * x + k)
}

/// The standard normal quantile of `p` in (0, 1): Wichura's algorithm AS 241
/// (PPND16, relative error about 1e-16). Rational functions only; a logarithm and a
/// square root in the tails (|p - 0.5| > 0.425, 15 % of draws).
pub fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 8] = [
        3.387_132_872_796_366_5,
        133.141_667_891_784_38,
        1_971.590_950_306_551_4,
        13_731.693_765_509_46,
        45_921.953_931_549_87,
        67_265.770_927_008_7,
        33_430.575_583_588_13,
        2_509.080_928_730_122_7,
    ];
    const B: [f64; 8] = [
        1.0,
        42.313_330_701_600_91,
        687.187_007_492_057_9,
        5_394.196_021_424_751,
        21_213.794_301_586_597,
        39_307.895_800_092_71,
        28_729.085_735_721_943,
        5_226.495_278_852_546,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_6,
        4.630_337_846_156_545,
        5.769_497_221_460_691,
        3.647_848_324_763_204_5,
        1.270_458_252_452_368_4,
        0.241_780_725_177_450_6,
        0.022_723_844_989_269_184,
        7.745_450_142_783_414e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_759,
        1.676_384_830_183_803_8,
        0.689_767_334_985_1,
        0.148_103_976_427_480_07,
        0.015_198_666_563_616_457,
        5.475_938_084_995_345e-4,
        1.050_750_071_644_416_8e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103,
        5.463_784_911_164_114,
        1.784_826_539_917_291_3,
        0.296_560_571_828_504_9,
        0.026_532_189_526_576_124,
        0.001_242_660_947_388_078_4,
        2.711_555_568_743_487_6e-5,
        2.010_334_399_292_288_1e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        0.599_832_206_555_887_9,
        0.136_929_880_922_735_8,
        0.014_875_361_290_850_615,
        7.868_691_311_456_133e-4,
        1.846_318_317_510_054_8e-5,
        1.421_511_758_316_446e-7,
        2.044_263_103_389_939_8e-15,
    ];
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = libm::sqrt(-libm::log(tail));
    let z = if r <= 5.0 {
        let r = r - 1.6;
        poly(&C, r) / poly(&D, r)
    } else {
        let r = r - 5.0;
        poly(&E, r) / poly(&F, r)
    };
    if q < 0.0 { -z } else { z }
}

// ---------------------------------------------------------------- mathematics

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
    out.push(("snnc_rand", snnc_rand as *const u8));
    out.push(("snnc_randn", snnc_randn as *const u8));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answers() {
        // Random123's kat_vectors for philox4x32_10.
        assert_eq!(philox4x32([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
        assert_eq!(philox4x32([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
        assert_eq!(
            philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
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
    fn inverse_normal_matches_known_quantiles() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_963_984_540_054),
            (0.841_344_746_068_542_9, 1.0),
            (0.001, -3.090_232_306_167_813_6),
            (1e-10, -6.361_340_902_404_056),
            // Python's `statistics.NormalDist().inv_cdf`, the same algorithm:
            (1e-300, -37.047_096_299_361_2),
            (1e-20, -9.262_340_089_798_405),
            (0.3, -0.524_400_512_708_040_7),
            (0.07, -1.475_791_028_179_170_2),
        ] {
            let got = inverse_normal(p);
            assert!((got - z).abs() <= 1e-15 * z.abs().max(1.0), "p = {p}: {got} vs {z}");
        }
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

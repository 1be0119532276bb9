//! A hand-written, single-threaded, f64 Rust implementation of the reference forager
//! (`shared/reference-agent.md`): 256 LIF neurons in a closed loop with a 16 x 16 GridWorld,
//! three-factor learning on the 7,168 plastic synapses, a decision every 10 steps, all
//! monitors on. It is the baseline the compiled model is timed against, included (with
//! `#[path]`) by the benches `forager_hand` (the hand loop alone, and its learning curve) and
//! `forager` (hand, AOT and JIT interleaved in one run).
//!
//! Units: mV and ms throughout (so `dt = 1`, and `eta = 0.5 mV/s = 5e-4 mV/ms`).

// ------------------------------------------------------------------------------ parameters

const DT: f64 = 1.0; // ms
const TAU_M: f64 = 20.0;
const TAU_SYN: f64 = 5.0;
const V_REST: f64 = -65.0;
const V_TH: f64 = -50.0;
const V_RESET: f64 = -65.0;
const SIGMA: f64 = 6.0;
/// Refractory period in steps (2 ms): a neuron spiking at step s may spike again at s + 2.
const REFRACTORY_STEPS: f64 = 2.0;

/// Euler steps as multiplications: `dt * (x / tau) = x * (dt / tau)` up to rounding.
const DT_OVER_TAU_M: f64 = DT / TAU_M;
const DT_OVER_TAU_SYN: f64 = DT / TAU_SYN;

const TAU_E: f64 = 500.0;
const TAU_PLUS: f64 = 20.0;
const TAU_MINUS: f64 = 20.0;
const A_PLUS: f64 = 1.0;
const A_MINUS: f64 = 1.05;
/// 0.5 mV/s in mV/ms.
const ETA: f64 = 0.5e-3;
const W_MAX: f64 = 4.0;
const TAU_DA: f64 = 200.0;

const N_S: usize = 64;
const N_H: usize = 160;
const N_EXC: usize = 128;
const N_M: usize = 32;
const N: usize = N_S + N_H + N_M;
/// First index of H and of M in the one array of all neurons.
const H0: usize = N_S;
const M0: usize = N_S + N_H;
/// Presynaptic neurons of the plastic pathways (S and H, indices 0..224).
const N_PRE: usize = N_S + N_H;
/// Plastic synapses, pre-major: synapse `pre * N_M + post`; SM is `[..2048]`, HM `[2048..]`.
pub const N_PLASTIC: usize = N_PRE * N_M;

const P_SH: f64 = 0.2;
const W_SH: f64 = 3.0;
const P_HH: f64 = 0.1;
const W_HH_EXC: f64 = 1.5;
const W_HH_INH: f64 = -4.0;
const W_MM: f64 = -3.0;
const W_INIT_MAX: f64 = 1.0;

const INPUT_GAIN: f64 = 20.0;
const GRADIENT_SCALE: f64 = 0.05;

const GRID: i32 = 16;
const CELLS: u32 = (GRID * GRID) as u32;
const ODOUR_LENGTH: f64 = 4.0;
const FOOD_REWARD: f64 = 1.0;
const WALL_PENALTY: f64 = -0.1;
const SHAPING: f64 = 2.0;
const N_ACTIONS: usize = 4;
const GROUP: usize = N_M / N_ACTIONS;
pub const DECISION_PERIOD: u32 = 10;
const EPSILON: f64 = 0.05;
const STATE_PERIOD: u32 = 100;

pub const EPISODE_STEPS: u32 = 50_000;
/// The seed of the benchmarked episodes.
pub const SEED: u64 = 1;

/// Gaps (in steps) up to which trace decay factors come from a table.
const DECAY_TABLE: usize = 1024;

// ------------------------------------------------------------------------------ random numbers

/// xoshiro256++ seeded through SplitMix64.
#[derive(Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    #[inline(always)]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Advances the state by 2^128 steps (the reference `jump`): non-overlapping streams.
    fn jump(&mut self) {
        const JUMP: [u64; 4] =
            [0x180e_c6d3_3cfd_0aba, 0xd5a6_1266_f0c9_392c, 0xa958_2618_e03f_c9aa, 0x39ab_dc45_29b1_661c];
        let mut t = [0u64; 4];
        for word in JUMP {
            for b in 0..64 {
                if word & (1u64 << b) != 0 {
                    for (t, s) in t.iter_mut().zip(self.s) {
                        *t ^= s;
                    }
                }
                self.next_u64();
            }
        }
        self.s = t;
    }

    /// Uniform in [0, 1), 53 bits.
    #[inline(always)]
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1), for logarithms.
    #[inline(always)]
    fn uniform_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` without bias (Lemire's multiply-and-reject).
    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        let mut m = (self.next_u64() >> 32) * u64::from(n);
        if (m as u32) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u32) < threshold {
                m = (self.next_u64() >> 32) * u64::from(n);
            }
        }
        (m >> 32) as u32
    }
}

/// Four xoshiro256++ streams (2^128 steps apart) stepped in lock-step, lane-wise, so that
/// the compiler keeps them in vector registers.
#[derive(Clone)]
pub struct Rng4 {
    s: [[u64; 4]; 4],
}

impl Rng4 {
    fn new(rng: &Rng) -> Self {
        let mut lane = rng.clone();
        let mut s = [[0u64; 4]; 4];
        for l in 0..4 {
            for (w, state) in s.iter_mut().zip(lane.s) {
                w[l] = state;
            }
            lane.jump();
        }
        Rng4 { s }
    }

    #[inline(always)]
    fn next4(&mut self) -> [u64; 4] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; 4];
        for l in 0..4 {
            out[l] = s0[l].wrapping_add(s3[l]).rotate_left(23).wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }
}

/// Standard normal deviates by the 256-layer ziggurat (Marsaglia and Tsang, with Doornik's
/// independent layer bits and Marsaglia's tail).
struct Ziggurat {
    /// Layer edges, decreasing: `x[0] = V / f(R)` (base layer), `x[1] = R`, ..., `x[256] = 0`.
    x: [f64; 257],
    /// `f[i] = exp(-x[i]^2 / 2)`.
    f: [f64; 257],
}

const ZIG_R: f64 = 3.654_152_885_361_009;
const ZIG_V: f64 = 0.004_928_673_233_99;

#[inline(always)]
fn gauss_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

impl Ziggurat {
    fn new() -> Self {
        let mut x = [0.0; 257];
        x[0] = ZIG_V / gauss_pdf(ZIG_R);
        x[1] = ZIG_R;
        for i in 2..256 {
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + gauss_pdf(x[i - 1])).ln()).sqrt();
        }
        x[256] = 0.0;
        let f = x.map(gauss_pdf);
        Ziggurat { x, f }
    }

    /// One draw.
    fn sample(&self, rng: &mut Rng) -> f64 {
        loop {
            let bits = rng.next_u64();
            let i = (bits & 0xff) as usize;
            let u = f64::from_bits((bits >> 12) | 0x4000_0000_0000_0000) - 3.0;
            let x = u * self.x[i];
            // Inside the part of layer i that lies wholly under the curve (~99%).
            if x.abs() < self.x[i + 1] {
                return x;
            }
            if i == 0 {
                return Self::tail(rng, u < 0.0);
            }
            // Layer i spans heights f[i]..f[i + 1] over 0..x[i]: accept under the curve.
            if self.f[i] + (self.f[i + 1] - self.f[i]) * rng.uniform() < gauss_pdf(x) {
                return x;
            }
        }
    }

    /// Fills `out` with independent N(0, 1) draws. The first attempt of every draw is made for
    /// the whole batch at once from `bits` (branch-free, vectorizable); the ~1% of draws that
    /// fall outside the layers' inner rectangles then continue the ziggurat one by one.
    #[inline(always)]
    fn fill(&self, rng4: &mut Rng4, rng: &mut Rng, bits: &mut [u64; N], miss: &mut [u8; N], out: &mut [f64; N]) {
        for chunk in bits.chunks_exact_mut(4) {
            chunk.copy_from_slice(&rng4.next4());
        }
        let mut misses = 0u32;
        for k in 0..N {
            let b = bits[k];
            let i = (b & 0xff) as usize;
            // Uniform in [-1, 1) with 52 bits: a float in [2, 4) from the top bits, minus 3.
            let u = f64::from_bits((b >> 12) | 0x4000_0000_0000_0000) - 3.0;
            let x = u * self.x[i];
            out[k] = x;
            let m = u8::from(x.abs() >= self.x[i + 1]);
            miss[k] = m;
            misses += u32::from(m);
        }
        if misses > 0 {
            for k in 0..N {
                if miss[k] != 0 {
                    out[k] = self.finish(bits[k], rng);
                }
            }
        }
    }

    /// The rest of a ziggurat draw whose first bits `b` missed the inner rectangle.
    #[cold]
    #[inline(never)]
    fn finish(&self, b: u64, rng: &mut Rng) -> f64 {
        let i = (b & 0xff) as usize;
        let u = f64::from_bits((b >> 12) | 0x4000_0000_0000_0000) - 3.0;
        let x = u * self.x[i];
        if i == 0 {
            return Self::tail(rng, u < 0.0);
        }
        if self.f[i] + (self.f[i + 1] - self.f[i]) * rng.uniform() < gauss_pdf(x) {
            return x;
        }
        self.sample(rng)
    }

    #[cold]
    fn tail(rng: &mut Rng, negative: bool) -> f64 {
        loop {
            let x = -rng.uniform_open().ln() / ZIG_R;
            let y = -rng.uniform_open().ln();
            if 2.0 * y >= x * x {
                let r = ZIG_R + x;
                return if negative { -r } else { r };
            }
        }
    }
}

// ------------------------------------------------------------------------------ monitors

/// What the run records, preallocated so that the step loop never allocates.
pub struct Monitors {
    /// Trajectory, every step (episode step, position after the move, action or -1, reward).
    pub traj_step: Vec<u32>,
    pub traj_x: Vec<u8>,
    pub traj_y: Vec<u8>,
    pub traj_action: Vec<i8>,
    pub traj_reward: Vec<f64>,
    /// Every 100 steps (episode steps 0, 100, ...): `v` of all 256 neurons (row-major) and `da`.
    pub state_step: Vec<u32>,
    pub state_v: Vec<f64>,
    pub state_da: Vec<f64>,
    /// Every spike: episode step and neuron index (S 0..64, H 64..224, M 224..256).
    pub spike_step: Vec<u32>,
    pub spike_index: Vec<u16>,
    /// At the episode's end: SM.w (64 x 32, pre-major) then HM.w (160 x 32), in mV.
    pub weights: Vec<f64>,
}

impl Monitors {
    pub fn with_capacity(steps: u32) -> Self {
        let mut monitors = Monitors {
            traj_step: Vec::new(),
            traj_x: Vec::new(),
            traj_y: Vec::new(),
            traj_action: Vec::new(),
            traj_reward: Vec::new(),
            state_step: Vec::new(),
            state_v: Vec::new(),
            state_da: Vec::new(),
            spike_step: Vec::new(),
            spike_index: Vec::new(),
            weights: Vec::new(),
        };
        monitors.reserve(steps);
        monitors
    }

    /// Room for an episode of `steps` steps. The spike capacity is the hard bound set by
    /// refractoriness (one spike per neuron every 2 steps), so no push can reallocate.
    fn reserve(&mut self, steps: u32) {
        let steps = steps as usize;
        let states = steps.div_ceil(STATE_PERIOD as usize);
        let spikes = N * steps.div_ceil(2);
        self.traj_step.reserve(steps);
        self.traj_x.reserve(steps);
        self.traj_y.reserve(steps);
        self.traj_action.reserve(steps);
        self.traj_reward.reserve(steps);
        self.state_step.reserve(states);
        self.state_v.reserve(states * N);
        self.state_da.reserve(states);
        self.spike_step.reserve(spikes);
        self.spike_index.reserve(spikes);
        self.weights.reserve(N_PLASTIC);
    }

    fn clear(&mut self) {
        self.traj_step.clear();
        self.traj_x.clear();
        self.traj_y.clear();
        self.traj_action.clear();
        self.traj_reward.clear();
        self.state_step.clear();
        self.state_v.clear();
        self.state_da.clear();
        self.spike_step.clear();
        self.spike_index.clear();
        self.weights.clear();
    }
}

// ------------------------------------------------------------------------------ the agent

/// Network, learning state, dopamine and world: everything that carries over between episodes.
pub struct Agent {
    /// Construction draws, and the membrane noise that misses the ziggurat's fast path.
    rng: Rng,
    /// Membrane noise, first attempts.
    rng4: Rng4,
    /// World placement, food respawn and decisions.
    env_rng: Rng,
    zig: Ziggurat,

    // Neurons, structure of arrays over all 256 (S, then H, then M).
    v: [f64; N],
    i_syn: [f64; N],
    /// Input from the environment (non-zero only for S).
    i_env: [f64; N],
    /// First global step at which the neuron is no longer refractory (last spike + 2).
    free_from: [f64; N],
    /// This step's N(0, 1) draws, and the scratch of drawing them.
    z: [f64; N],
    bits: [u64; N],
    miss: [u8; N],

    // Static synapses (SH, HH, MM) in CSR by presynaptic neuron; the weight is one per source.
    row_start: Vec<u32>,
    targets: Vec<u16>,
    row_w: [f64; N],

    // Plastic synapses (SM, HM), contiguous, pre-major.
    w: Vec<f64>,
    e: Vec<f64>,
    /// One presynaptic trace per S/H neuron and one postsynaptic trace per M neuron, with the
    /// global step of their last update (event-driven, decayed exactly when next used).
    x_pre: [f64; N_PRE],
    x_pre_t: [u64; N_PRE],
    x_post: [f64; N_M],
    x_post_t: [u64; N_M],
    /// `exp(-n dt / tau_plus)` and `exp(-n dt / tau_minus)` for gaps `n < DECAY_TABLE`.
    decay_plus: Vec<f64>,
    decay_minus: Vec<f64>,
    decay_e: f64,
    decay_da: f64,
    da: f64,

    /// Global step count (over all episodes): the time base of refractoriness and traces.
    t: u64,

    // World.
    agent: (i32, i32),
    food: (i32, i32),
    /// `exp(-d / 4)` by `|dx|`, `|dy|`.
    odour: [[f64; GRID as usize]; GRID as usize],
    /// Whether `i_env` must be recomputed (the agent or the food moved).
    sense_stale: bool,
}

/// Summary of one episode.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpisodeStats {
    pub steps: u32,
    pub food: u32,
    pub wall_bumps: u32,
    /// Spikes of S, H and M.
    pub spikes: [u64; 3],
    pub total_reward: f64,
}

impl EpisodeStats {
    pub fn food_per_1000(&self) -> f64 {
        f64::from(self.food) * 1000.0 / f64::from(self.steps)
    }

    /// Mean rates in Hz of S, H and M.
    pub fn rates_hz(&self) -> [f64; 3] {
        let seconds = f64::from(self.steps) * DT / 1000.0;
        let sizes = [N_S, N_H, N_M];
        std::array::from_fn(|p| self.spikes[p] as f64 / sizes[p] as f64 / seconds)
    }
}

fn decay_table(tau: f64) -> Vec<f64> {
    (0..DECAY_TABLE).map(|n| (-(n as f64) * DT / tau).exp()).collect()
}

#[inline(always)]
fn decay(table: &[f64], tau: f64, gap: u64) -> f64 {
    match table.get(gap as usize) {
        Some(&d) => d,
        None => (-(gap as f64) * DT / tau).exp(),
    }
}

impl Agent {
    /// Connectivity, initial weights and initial `v`, all drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let env_rng = Rng::new(seed ^ 0x5eed_0fe4_f1a0_e5e5);

        // Static synapses, drawn pathway by pathway, pre-major.
        let mut rows: Vec<Vec<u16>> = vec![Vec::new(); N];
        let mut row_w = [0.0; N];
        for (i, row) in rows.iter_mut().enumerate().take(N_S) {
            for j in 0..N_H {
                if rng.uniform() < P_SH {
                    row.push((H0 + j) as u16);
                }
            }
            row_w[i] = W_SH;
        }
        for i in 0..N_H {
            for j in 0..N_H {
                if i != j && rng.uniform() < P_HH {
                    rows[H0 + i].push((H0 + j) as u16);
                }
            }
            row_w[H0 + i] = if i < N_EXC { W_HH_EXC } else { W_HH_INH };
        }
        for i in 0..N_M {
            for j in 0..N_M {
                if i / GROUP != j / GROUP {
                    rows[M0 + i].push((M0 + j) as u16);
                }
            }
            row_w[M0 + i] = W_MM;
        }
        let mut row_start = Vec::with_capacity(N + 1);
        let mut targets = Vec::new();
        row_start.push(0);
        for row in &rows {
            targets.extend_from_slice(row);
            row_start.push(targets.len() as u32);
        }

        // Plastic: SM then HM, uniform in [0, 1 mV).
        let w: Vec<f64> = (0..N_PLASTIC).map(|_| rng.uniform() * W_INIT_MAX).collect();

        let mut v = [0.0; N];
        for v in &mut v {
            *v = V_RESET + rng.uniform() * (V_TH - V_RESET);
        }

        let mut odour = [[0.0; GRID as usize]; GRID as usize];
        for (dx, row) in odour.iter_mut().enumerate() {
            for (dy, c) in row.iter_mut().enumerate() {
                let d = ((dx * dx + dy * dy) as f64).sqrt();
                *c = (-d / ODOUR_LENGTH).exp();
            }
        }

        Agent {
            rng,
            rng4: Rng4::new(&Rng::new(seed ^ 0x15e0_fa11_4e55_0015)),
            env_rng,
            zig: Ziggurat::new(),
            v,
            i_syn: [0.0; N],
            i_env: [0.0; N],
            free_from: [0.0; N],
            z: [0.0; N],
            bits: [0; N],
            miss: [0; N],
            row_start,
            targets,
            row_w,
            e: vec![0.0; N_PLASTIC],
            w,
            x_pre: [0.0; N_PRE],
            x_pre_t: [0; N_PRE],
            x_post: [0.0; N_M],
            x_post_t: [0; N_M],
            decay_plus: decay_table(TAU_PLUS),
            decay_minus: decay_table(TAU_MINUS),
            decay_e: (-DT / TAU_E).exp(),
            decay_da: (-DT / TAU_DA).exp(),
            da: 0.0,
            t: 0,
            agent: (0, 0),
            food: (0, 0),
            odour,
            sense_stale: true,
        }
    }

    /// The plastic weights (mV): SM (64 x 32) then HM (160 x 32), pre-major.
    pub fn weights(&self) -> &[f64] {
        &self.w
    }

    #[inline(always)]
    fn odour_at(&self, (x, y): (i32, i32)) -> f64 {
        self.odour[(x - self.food.0).unsigned_abs() as usize][(y - self.food.1).unsigned_abs() as usize]
    }

    /// `I_env` of S from the odour gradient at the agent (a neighbour outside the grid counts 0).
    #[inline(always)]
    fn sense(&mut self) {
        let here = self.odour_at(self.agent);
        for a in 0..N_ACTIONS {
            let next = neighbour(self.agent, a);
            let c = if inside(next) { self.odour_at(next) } else { 0.0 };
            let g = c - here;
            let input = INPUT_GAIN * (g / GRADIENT_SCALE).clamp(0.0, 1.0);
            self.i_env[a * 16..(a + 1) * 16].fill(input);
        }
        self.sense_stale = false;
    }

    /// Places the agent and the food on uniformly drawn distinct cells.
    fn place(&mut self) {
        let agent = self.env_rng.below(CELLS);
        let food = self.env_rng.below(CELLS - 1);
        let food = if food >= agent { food + 1 } else { food };
        self.agent = cell(agent);
        self.food = cell(food);
        self.sense_stale = true;
    }

    /// One move: returns the reward and whether food was eaten and whether it bumped a wall.
    #[inline]
    fn act(&mut self, action: usize) -> (f64, bool, bool) {
        let before = self.odour_at(self.agent);
        let next = neighbour(self.agent, action);
        let bump = !inside(next);
        if !bump {
            self.agent = next;
        }
        // The food's place at the time of the move.
        let after = self.odour_at(self.agent);
        let eaten = self.agent == self.food;
        let base = if eaten {
            FOOD_REWARD
        } else if bump {
            WALL_PENALTY
        } else {
            0.0
        };
        let reward = base + SHAPING * (after - before);
        if eaten {
            let here = (self.agent.0 * GRID + self.agent.1) as u32;
            let food = self.env_rng.below(CELLS - 1);
            self.food = cell(if food >= here { food + 1 } else { food });
        }
        self.sense_stale = true;
        (reward, eaten, bump)
    }

    /// The action with most spikes (random tie-break); random with probability 0.05 or when silent.
    #[inline]
    fn decide(&mut self, counts: &[u32; N_ACTIONS]) -> usize {
        let u = self.env_rng.uniform();
        let most = counts.iter().copied().max().unwrap_or(0);
        if u < EPSILON || most == 0 {
            return self.env_rng.below(N_ACTIONS as u32) as usize;
        }
        let mut tied = [0usize; N_ACTIONS];
        let mut n_tied = 0;
        for (a, &c) in counts.iter().enumerate() {
            if c == most {
                tied[n_tied] = a;
                n_tied += 1;
            }
        }
        if n_tied == 1 { tied[0] } else { tied[self.env_rng.below(n_tied as u32) as usize] }
    }
}

fn cell(index: u32) -> (i32, i32) {
    ((index / GRID as u32) as i32, (index % GRID as u32) as i32)
}

#[inline(always)]
fn neighbour((x, y): (i32, i32), action: usize) -> (i32, i32) {
    match action {
        0 => (x, y + 1),
        1 => (x + 1, y),
        2 => (x, y - 1),
        _ => (x - 1, y),
    }
}

#[inline(always)]
fn inside((x, y): (i32, i32)) -> bool {
    (0..GRID).contains(&x) && (0..GRID).contains(&y)
}

// ------------------------------------------------------------------------------ the loop

/// Runs one episode of `steps` steps: places agent and food, then steps the closed loop,
/// recording into `monitors` (cleared first). Network, learning state and dopamine carry over
/// from the previous episode of the same agent.
pub fn run_episode(agent: &mut Agent, steps: u32, monitors: &mut Monitors) -> EpisodeStats {
    monitors.clear();
    monitors.reserve(steps);
    agent.place();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { episode_avx2(agent, steps, monitors) };
    }
    episode(agent, steps, monitors)
}

/// The same code compiled with AVX2 (chosen at run time; no change of arithmetic: Rust never
/// contracts `a * b + c`, so results are bit for bit those of the baseline build).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn episode_avx2(agent: &mut Agent, steps: u32, monitors: &mut Monitors) -> EpisodeStats {
    episode(agent, steps, monitors)
}

#[inline(always)]
fn episode(a: &mut Agent, steps: u32, mon: &mut Monitors) -> EpisodeStats {
    let mut stats = EpisodeStats { steps, ..EpisodeStats::default() };
    let noise_amp = SIGMA * (2.0 * DT / TAU_M).sqrt();
    let mut counts = [0u32; N_ACTIONS];
    let mut spiked = [0u16; N];
    let mut x_post_now = [0.0; N_M];
    let mut x_pre_now = [0.0; N_PRE];

    for step in 0..steps {
        let t = a.t;
        let tf = t as f64;

        // 1. Environment sensing.
        if a.sense_stale {
            a.sense();
        }

        // 2. Neuron state update (Euler-Maruyama, from the step-start values), 3. threshold.
        a.zig.fill(&mut a.rng4, &mut a.rng, &mut a.bits, &mut a.miss, &mut a.z);
        for k in 0..N {
            let v = a.v[k];
            let i = a.i_syn[k];
            let v_new = v + (V_REST - v + i + a.i_env[k]) * DT_OVER_TAU_M + noise_amp * a.z[k];
            a.v[k] = if tf >= a.free_from[k] { v_new } else { v };
            a.i_syn[k] = i - i * DT_OVER_TAU_SYN;
        }
        let mut n_spiked = 0;
        for k in 0..N {
            if a.v[k] > V_TH && tf >= a.free_from[k] {
                spiked[n_spiked] = k as u16;
                n_spiked += 1;
            }
        }
        let spiked = &spiked[..n_spiked];

        // 4. Propagation, on_pre then on_post. 5. Reset (v only; propagation touches I_syn only).
        let mut have_x_post = false;
        let mut m_spiked = false;
        for &k in spiked {
            let k = k as usize;
            mon.spike_step.push(step);
            mon.spike_index.push(k as u16);
            a.v[k] = V_RESET;
            a.free_from[k] = tf + REFRACTORY_STEPS;

            let w_k = a.row_w[k];
            let (start, end) = (a.row_start[k] as usize, a.row_start[k + 1] as usize);
            for &j in &a.targets[start..end] {
                a.i_syn[j as usize] += w_k;
            }

            if k < N_PRE {
                stats.spikes[if k < H0 { 0 } else { 1 }] += 1;
                // on_pre: I_syn_post += w; x_pre += 1; e -= A_minus * x_post.
                if !have_x_post {
                    for ((now, &x), &last) in x_post_now.iter_mut().zip(&a.x_post).zip(&a.x_post_t) {
                        *now = x * decay(&a.decay_minus, TAU_MINUS, t - last);
                    }
                    have_x_post = true;
                }
                let pre = a.x_pre[k] * decay(&a.decay_plus, TAU_PLUS, t - a.x_pre_t[k]);
                a.x_pre[k] = pre + 1.0;
                a.x_pre_t[k] = t;
                let row = k * N_M;
                let w = &a.w[row..row + N_M];
                let e = &mut a.e[row..row + N_M];
                let i_m = &mut a.i_syn[M0..];
                for j in 0..N_M {
                    i_m[j] += w[j];
                    e[j] -= A_MINUS * x_post_now[j];
                }
            } else {
                stats.spikes[2] += 1;
                counts[(k - M0) / GROUP] += 1;
                m_spiked = true;
            }
        }
        if m_spiked {
            // on_post: x_post += 1; e += A_plus * x_pre (x_pre already includes this step's on_pre).
            for (p, x) in x_pre_now.iter_mut().enumerate() {
                *x = a.x_pre[p] * decay(&a.decay_plus, TAU_PLUS, t - a.x_pre_t[p]);
            }
            for &k in spiked.iter().filter(|&&k| k as usize >= M0) {
                let j = k as usize - M0;
                let post = a.x_post[j] * decay(&a.decay_minus, TAU_MINUS, t - a.x_post_t[j]);
                a.x_post[j] = post + 1.0;
                a.x_post_t[j] = t;
                for (p, &x) in x_pre_now.iter().enumerate() {
                    a.e[p * N_M + j] += A_PLUS * x;
                }
            }
        }

        // 6. Clock-driven synapse updates: e decays exactly, then w = clip(w + eta*da*e*dt, 0, w_max).
        eligibility_and_weights(&mut a.e, &mut a.w, a.decay_e, ETA * a.da);

        // 7. Dopamine.
        a.da *= a.decay_da;

        // 8. Decision, 9. move and reward.
        let mut action = -1i8;
        let mut reward = 0.0;
        if step % DECISION_PERIOD == DECISION_PERIOD - 1 {
            let chosen = a.decide(&counts);
            counts = [0; N_ACTIONS];
            let (r, eaten, bump) = a.act(chosen);
            action = chosen as i8;
            reward = r;
            a.da += r;
            stats.food += u32::from(eaten);
            stats.wall_bumps += u32::from(bump);
            stats.total_reward += r;
        }

        // 10. Monitors.
        mon.traj_step.push(step);
        mon.traj_x.push(a.agent.0 as u8);
        mon.traj_y.push(a.agent.1 as u8);
        mon.traj_action.push(action);
        mon.traj_reward.push(reward);
        if step % STATE_PERIOD == 0 {
            mon.state_step.push(step);
            mon.state_v.extend_from_slice(&a.v);
            mon.state_da.push(a.da);
        }

        a.t += 1;
    }
    mon.weights.extend_from_slice(&a.w);
    stats
}

/// The every-step pass over the 7,168 plastic synapses; `eta_da = eta * da` (dt = 1 ms).
#[inline(always)]
fn eligibility_and_weights(e: &mut [f64], w: &mut [f64], decay_e: f64, eta_da: f64) {
    let w = &mut w[..e.len()];
    for (e, w) in e.iter_mut().zip(w.iter_mut()) {
        let en = *e * decay_e;
        *e = en;
        *w = (*w + eta_da * en * DT).clamp(0.0, W_MAX);
    }
}

// ------------------------------------------------------------------------------ baseline

/// Food per 1,000 steps of a uniformly random policy (the world alone, same rules).
pub fn random_policy_food(seed: u64, steps: u32) -> f64 {
    let mut agent = Agent::new(seed);
    agent.place();
    let mut food = 0u32;
    for step in 0..steps {
        if step % DECISION_PERIOD == DECISION_PERIOD - 1 {
            let action = agent.env_rng.below(N_ACTIONS as u32) as usize;
            food += u32::from(agent.act(action).1);
        }
    }
    f64::from(food) * 1000.0 / f64::from(steps)
}

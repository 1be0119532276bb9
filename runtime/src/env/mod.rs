//! Environments for closed-loop runs, and the loop that binds one to a model.
//!
//! An environment is a Rust type implementing [`Environment`]; the model's
//! `environment Kind { ... }` binding names it, and the compiler checks the
//! binding against its [`EnvironmentSpec`]. Each step the runtime writes the
//! environment's observations into a flat array that the model's `sense` kernels
//! read, decides an action from spikes every `act` period, lets the environment
//! move, and runs the `reward` kernels with the move's reward.
//!
//! Randomness comes from the counter-based generator (`abi::snnc_rand`) keyed by
//! the run's seed, so runs are reproducible and independent of the back end.

mod gridworld;

use crate::checkpoint::{Reader, Writer, expect_equal};
pub use gridworld::GridWorld;
use snnc_compiler::abi;
use snnc_compiler::env::EnvironmentSpec;

/// A world an agent acts in.
pub trait Environment: Send {
    /// What the checker knows of it: settings, observations, number of actions.
    fn spec(&self) -> &'static EnvironmentSpec;

    /// Starts an episode (places the agent, the food, ...).
    fn reset(&mut self, rng: &mut EnvRng);

    /// Writes the observations, laid out as `spec().observations` (flat). They
    /// may change only in `reset` and `act`: the runtime reads them after those.
    fn observe(&self, out: &mut [f64]);

    /// Takes action `action` (below `spec().actions`) and returns its reward.
    fn act(&mut self, action: u32, rng: &mut EnvRng) -> f64;

    /// Names of the per-step values recorded in the trajectory (e.g. `x`, `y`).
    fn trajectory_fields(&self) -> &'static [&'static str];

    /// The per-step values, in the order of `trajectory_fields`.
    fn trajectory(&self, out: &mut [f64]);

    /// Per-episode counters for summaries (e.g. `food`), reset by `reset`.
    fn episode_summary(&self) -> Vec<(&'static str, f64)>;

    /// Writes the world's state into a checkpoint (`snnc run --checkpoint-every`):
    /// everything that `observe`, `act`, `trajectory` and `episode_summary` depend
    /// on. An environment that does not implement it can not be checkpointed.
    fn save(&self, w: &mut Writer) -> Result<(), String> {
        let _ = w;
        Err(format!("environment `{}` does not support checkpoints (it does not implement `save`)", self.spec().name))
    }

    /// Reads back what [`save`](Environment::save) wrote.
    fn restore(&mut self, r: &mut Reader) -> Result<(), String> {
        let _ = r;
        Err(format!(
            "environment `{}` does not support checkpoints (it does not implement `restore`)",
            self.spec().name
        ))
    }
}

/// Makes the built-in environment `spec.name` with the given settings.
pub fn create(spec: &EnvironmentSpec, settings: &[f64]) -> Result<Box<dyn Environment>, String> {
    match spec.name {
        "GridWorld" => Ok(Box::new(GridWorld::from_settings(spec, settings)?)),
        other => Err(format!(
            "environment `{other}` is not built in: construct it in Rust and pass it to `Simulation::set_environment`"
        )),
    }
}

/// A stream of uniform numbers from the counter-based generator.
#[derive(Clone, Debug)]
pub struct EnvRng {
    seed: u64,
    stream: u64,
    counter: u64,
}

impl EnvRng {
    /// The stream `stream` of the run seeded `seed`.
    pub fn new(seed: u64, stream: u64) -> EnvRng {
        EnvRng { seed, stream, counter: 0 }
    }

    /// How many numbers were drawn (the position in the stream).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Continues the stream at `counter` (from a checkpoint).
    pub fn set_counter(&mut self, counter: u64) {
        self.counter = counter;
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        let u = abi::snnc_rand(self.seed, self.counter, 0, self.stream);
        self.counter += 1;
        u
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u32) -> u32 {
        // `u < 1`, so the product is below `n`; `min` guards rounding.
        ((self.uniform() * f64::from(n)) as u32).min(n.saturating_sub(1))
    }
}

/// Random streams of the closed loop (far from the kernels' call-site streams).
const ENVIRONMENT_STREAM: u64 = 1 << 20;
const DECISION_STREAM: u64 = (1 << 20) + 1;

/// How actions are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// From the spikes of the voting group (the model's `act` block).
    #[default]
    Spikes,
    /// Uniformly random at every decision (a baseline for comparison).
    Random,
}

/// The decision rule of `act G every n steps`.
#[derive(Clone, Debug)]
struct Decision {
    population: usize,
    every: u64,
    groups: u32,
    /// Neurons per action group.
    per_group: u32,
    epsilon: f64,
    /// Spikes per action group since the last decision.
    counts: Vec<u64>,
}

/// An environment bound to a running model: the runtime's side of the binding.
pub struct ClosedLoop {
    env: Box<dyn Environment>,
    /// The observation array the `sense` and `reward` kernels read.
    pub(crate) observations: Vec<f64>,
    /// Whether the observations changed since the `sense` kernels last ran.
    pub(crate) fresh: bool,
    decision: Option<Decision>,
    policy: Policy,
    env_rng: EnvRng,
    decision_rng: EnvRng,
    /// Step within the current episode.
    episode_step: u64,
    episode: u32,
    /// The action taken this step (-1: none) and its reward.
    action: i32,
    reward: f64,
    /// Reward summed over the current episode.
    episode_reward: f64,
}

impl std::fmt::Debug for ClosedLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClosedLoop({}, episode {}, step {})", self.env.spec().name, self.episode, self.episode_step)
    }
}

impl ClosedLoop {
    /// Binds `env` to a model lowered into `module` (its `act` rule, if any), and
    /// starts the first episode.
    pub fn new(
        mut env: Box<dyn Environment>,
        info: &snnc_compiler::ir::EnvironmentInfo,
        sizes: &[u32],
        seed: u64,
    ) -> Result<ClosedLoop, String> {
        if env.spec().name != info.spec.name {
            return Err(format!("the model is bound to `{}`, not to `{}`", info.spec.name, env.spec().name));
        }
        let decision = match &info.decision {
            Some(d) => {
                let size = *sizes.get(d.population).ok_or("the voting group does not exist")?;
                if d.groups == 0 || !size.is_multiple_of(d.groups) {
                    return Err(format!("{size} voting neurons do not split into {} action groups", d.groups));
                }
                Some(Decision {
                    population: d.population,
                    every: d.every.max(1),
                    groups: d.groups,
                    per_group: size / d.groups,
                    epsilon: d.epsilon,
                    counts: vec![0; d.groups as usize],
                })
            }
            None => None,
        };
        let mut env_rng = EnvRng::new(seed, ENVIRONMENT_STREAM);
        env.reset(&mut env_rng);
        let mut observations = vec![0.0; info.spec.observation_len() as usize];
        env.observe(&mut observations);
        Ok(ClosedLoop {
            env,
            observations,
            fresh: true,
            decision,
            policy: Policy::Spikes,
            env_rng,
            decision_rng: EnvRng::new(seed, DECISION_STREAM),
            episode_step: 0,
            episode: 0,
            action: -1,
            reward: 0.0,
            episode_reward: 0.0,
        })
    }

    /// Chooses how actions are decided.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The environment.
    pub fn environment(&self) -> &dyn Environment {
        self.env.as_ref()
    }

    /// The current episode (from 0) and the step within it.
    pub fn position(&self) -> (u32, u64) {
        (self.episode, self.episode_step)
    }

    /// The action of the last step (-1: no move) and its reward.
    pub fn last_move(&self) -> (i32, f64) {
        (self.action, self.reward)
    }

    /// Reward summed over the current episode.
    pub fn episode_reward(&self) -> f64 {
        self.episode_reward
    }

    /// Starts a new episode: the environment is reset, the network is not.
    pub fn start_episode(&mut self) {
        self.env.reset(&mut self.env_rng);
        self.env.observe(&mut self.observations);
        self.fresh = true;
        self.episode += 1;
        self.episode_step = 0;
        self.episode_reward = 0.0;
        if let Some(d) = &mut self.decision {
            d.counts.iter_mut().for_each(|c| *c = 0);
        }
    }

    /// Writes the loop's state into a checkpoint, the environment's included.
    pub(crate) fn save(&self, w: &mut Writer) -> Result<(), String> {
        w.tag("closed loop");
        w.str(self.env.spec().name);
        w.f64s(&self.observations);
        w.bool(self.fresh);
        w.u64s(self.decision.as_ref().map_or(&[][..], |d| &d.counts));
        w.bool(self.policy == Policy::Random);
        w.u64(self.env_rng.counter());
        w.u64(self.decision_rng.counter());
        w.u64(self.episode_step);
        w.u64(u64::from(self.episode));
        w.i64(i64::from(self.action));
        w.f64(self.reward);
        w.f64(self.episode_reward);
        w.tag("environment");
        self.env.save(w)
    }

    /// Reads back what `save` wrote (into a loop bound to the same environment kind).
    pub(crate) fn restore(&mut self, r: &mut Reader) -> Result<(), String> {
        r.tag("closed loop")?;
        expect_equal("the environment", r.str()?.as_str(), self.env.spec().name)?;
        r.f64s_into(&mut self.observations, "the observations")?;
        self.fresh = r.bool()?;
        let counts = r.u64s()?;
        match &mut self.decision {
            Some(d) => {
                expect_equal("the number of action groups", counts.len(), d.counts.len())?;
                d.counts = counts;
            }
            None => expect_equal("the number of action groups", counts.len(), 0)?,
        }
        self.policy = if r.bool()? { Policy::Random } else { Policy::Spikes };
        self.env_rng.set_counter(r.u64()?);
        self.decision_rng.set_counter(r.u64()?);
        self.episode_step = r.u64()?;
        self.episode = u32::try_from(r.u64()?).map_err(|_| "the checkpoint is corrupt: episode")?;
        self.action = i32::try_from(r.i64()?).map_err(|_| "the checkpoint is corrupt: action")?;
        self.reward = r.f64()?;
        self.episode_reward = r.f64()?;
        r.tag("environment")?;
        self.env.restore(r)
    }

    /// Counts this step's spikes of the voting group.
    pub(crate) fn count_spikes(&mut self, population: usize, spikes: &[u32]) {
        if let Some(d) = &mut self.decision
            && d.population == population
        {
            for &k in spikes {
                let group = (k / d.per_group).min(d.groups - 1);
                d.counts[group as usize] += 1;
            }
        }
    }

    /// The voting population, if the model acts.
    pub(crate) fn voting_population(&self) -> Option<usize> {
        self.decision.as_ref().map(|d| d.population)
    }

    /// Ends a step: decides and moves when a decision is due. Returns whether the
    /// agent moved (then the `reward` kernels must run; the observations are
    /// already refreshed).
    pub(crate) fn end_step(&mut self) -> bool {
        self.action = -1;
        self.reward = 0.0;
        let step = self.episode_step;
        self.episode_step += 1;
        let Some(d) = &mut self.decision else { return false };
        if !(step + 1).is_multiple_of(d.every) {
            return false;
        }
        let action = decide(&d.counts, d.epsilon, self.policy, &mut self.decision_rng);
        d.counts.iter_mut().for_each(|c| *c = 0);
        let reward = self.env.act(action, &mut self.env_rng);
        self.action = action as i32;
        self.reward = reward;
        self.episode_reward += reward;
        self.env.observe(&mut self.observations);
        self.fresh = true;
        true
    }
}

/// One decision: with probability `epsilon`, or when no neuron voted, a uniformly
/// drawn action; otherwise the action with most votes, a tie going to a uniformly
/// drawn one of the tied. Two uniform draws per decision, whatever the outcome.
fn decide(counts: &[u64], epsilon: f64, policy: Policy, rng: &mut EnvRng) -> u32 {
    let explore = rng.uniform() < epsilon;
    let u = rng.uniform();
    let n = counts.len() as u32;
    let pick = |k: u32| ((u * f64::from(k)) as u32).min(k.saturating_sub(1));
    let most = counts.iter().copied().max().unwrap_or(0);
    if policy == Policy::Random || explore || most == 0 {
        return pick(n);
    }
    let mut tied = (0..n).filter(|&a| counts[a as usize] == most);
    let k = pick(tied.clone().count() as u32);
    tied.nth(k as usize).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_votes() {
        let mut rng = EnvRng::new(1, 7);
        for _ in 0..100 {
            assert_eq!(decide(&[0, 3, 1, 0], 0.0, Policy::Spikes, &mut rng), 1);
        }
        // Ties go to either of the tied, both seen.
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[decide(&[2, 0, 2, 1], 0.0, Policy::Spikes, &mut rng) as usize] += 1;
        }
        assert!(seen[0] > 100 && seen[2] > 100 && seen[1] == 0 && seen[3] == 0, "{seen:?}");
        // Silence and epsilon = 1 give uniformly random actions.
        let mut seen = [0; 4];
        for _ in 0..4000 {
            seen[decide(&[0, 0, 0, 0], 0.0, Policy::Spikes, &mut rng) as usize] += 1;
            seen[decide(&[9, 0, 0, 0], 1.0, Policy::Spikes, &mut rng) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (1800..2200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn epsilon_explores_at_its_rate() {
        let mut rng = EnvRng::new(3, 9);
        let trials = 20000;
        let off = (0..trials).filter(|_| decide(&[0, 0, 5, 0], 0.05, Policy::Spikes, &mut rng) != 2).count();
        // Exploration picks action 2 a quarter of the time: 0.05 * 0.75 of decisions differ.
        let rate = off as f64 / f64::from(trials);
        assert!((rate - 0.0375).abs() < 0.006, "{rate}");
    }
}

//! The foraging GridWorld of `../shared/reference-agent.md`: an n x n grid walled
//! at its border, one agent, one food, an odour that falls off with the distance
//! to the food.

use super::{EnvRng, Environment};
use crate::checkpoint::{Reader, Writer, expect_equal};
use snnc_compiler::abi;
use snnc_compiler::env::{EnvironmentSpec, GRIDWORLD};

/// Moves of the four actions: north (y+1), east (x+1), south (y-1), west (x-1).
const MOVES: [(i64, i64); 4] = [(0, 1), (1, 0), (0, -1), (-1, 0)];

/// The world and its per-episode counters.
#[derive(Clone, Debug, PartialEq)]
pub struct GridWorld {
    size: i64,
    food_reward: f64,
    wall_penalty: f64,
    shaping: f64,
    odour_length: f64,
    agent: (i64, i64),
    food: (i64, i64),
    /// Food eaten, wall bumps and moves in this episode.
    eaten: u64,
    bumps: u64,
    moves: u64,
    /// The last move's reward.
    reward: f64,
}

impl GridWorld {
    /// A world with the spec's default settings.
    pub fn new() -> GridWorld {
        let defaults: Vec<f64> = GRIDWORLD.settings.iter().map(|s| s.default).collect();
        // The defaults are valid settings.
        GridWorld::from_settings(&GRIDWORLD, &defaults).unwrap_or_else(|_| unreachable!())
    }

    /// A world from the binding's settings (in `GRIDWORLD.settings` order).
    pub fn from_settings(spec: &EnvironmentSpec, settings: &[f64]) -> Result<GridWorld, String> {
        let get = |name: &str| {
            let k = spec.settings.iter().position(|s| s.name == name);
            k.and_then(|k| settings.get(k).copied()).ok_or_else(|| format!("GridWorld: setting `{name}` is missing"))
        };
        let size = get("size")?;
        if !(2.0..=4096.0).contains(&size) || size.fract() != 0.0 {
            return Err(format!("GridWorld: `size` must be a whole number from 2 to 4096, not {size}"));
        }
        Ok(GridWorld {
            // A whole number in range, checked above.
            size: size as i64,
            food_reward: get("food_reward")?,
            wall_penalty: get("wall_penalty")?,
            shaping: get("shaping")?,
            odour_length: get("odour_length")?,
            agent: (0, 0),
            food: (0, 1),
            eaten: 0,
            bumps: 0,
            moves: 0,
            reward: 0.0,
        })
    }

    /// The agent's cell.
    pub fn agent(&self) -> (i64, i64) {
        self.agent
    }

    /// The food's cell.
    pub fn food(&self) -> (i64, i64) {
        self.food
    }

    /// Places the agent and the food (distinct cells) for tests.
    pub fn place(&mut self, agent: (i64, i64), food: (i64, i64)) {
        self.agent = agent;
        self.food = food;
    }

    fn inside(&self, (x, y): (i64, i64)) -> bool {
        (0..self.size).contains(&x) && (0..self.size).contains(&y)
    }

    /// The odour at a cell: `exp(-d / odour_length)`, 0 outside the grid.
    pub fn odour(&self, cell: (i64, i64)) -> f64 {
        if !self.inside(cell) {
            return 0.0;
        }
        let (dx, dy) = ((cell.0 - self.food.0) as f64, (cell.1 - self.food.1) as f64);
        abi::snnc_exp(-(dx * dx + dy * dy).sqrt() / self.odour_length)
    }

    /// For each direction, the odour of the neighbour minus the odour here.
    pub fn gradient(&self) -> [f64; 4] {
        let here = self.odour(self.agent);
        MOVES.map(|(dx, dy)| self.odour((self.agent.0 + dx, self.agent.1 + dy)) - here)
    }

    /// A uniformly drawn cell other than `not`.
    fn cell_except(&self, not: (i64, i64), rng: &mut EnvRng) -> (i64, i64) {
        let cells = (self.size * self.size) as u32;
        let skip = (not.1 * self.size + not.0) as u32;
        let mut k = rng.below(cells - 1);
        if k >= skip {
            k += 1;
        }
        let k = i64::from(k);
        (k % self.size, k / self.size)
    }
}

impl Default for GridWorld {
    fn default() -> GridWorld {
        GridWorld::new()
    }
}

impl Environment for GridWorld {
    fn spec(&self) -> &'static EnvironmentSpec {
        &GRIDWORLD
    }

    fn reset(&mut self, rng: &mut EnvRng) {
        let cells = (self.size * self.size) as u32;
        let k = i64::from(rng.below(cells));
        self.agent = (k % self.size, k / self.size);
        self.food = self.cell_except(self.agent, rng);
        self.eaten = 0;
        self.bumps = 0;
        self.moves = 0;
        self.reward = 0.0;
    }

    fn observe(&self, out: &mut [f64]) {
        // Laid out as GRIDWORLD.observations: gradient[4], odour, agent_x, agent_y, reward.
        let values = self.gradient();
        let rest = [self.odour(self.agent), self.agent.0 as f64, self.agent.1 as f64, self.reward];
        for (slot, value) in out.iter_mut().zip(values.into_iter().chain(rest)) {
            *slot = value;
        }
    }

    fn act(&mut self, action: u32, rng: &mut EnvRng) -> f64 {
        let (dx, dy) = MOVES[(action as usize).min(3)];
        let target = (self.agent.0 + dx, self.agent.1 + dy);
        self.moves += 1;
        let before = self.odour(self.agent);
        let mut reward = 0.0;
        if self.inside(target) {
            self.agent = target;
        } else {
            self.bumps += 1;
            reward += self.wall_penalty;
        }
        // The shaping term uses the food's place at the time of the move.
        let after = self.odour(self.agent);
        if self.agent == self.food {
            reward += self.food_reward;
            self.eaten += 1;
            self.food = self.cell_except(self.agent, rng);
        }
        reward += self.shaping * (after - before);
        self.reward = reward;
        reward
    }

    fn trajectory_fields(&self) -> &'static [&'static str] {
        &["x", "y"]
    }

    fn trajectory(&self, out: &mut [f64]) {
        if let [x, y, ..] = out {
            *x = self.agent.0 as f64;
            *y = self.agent.1 as f64;
        }
    }

    fn episode_summary(&self) -> Vec<(&'static str, f64)> {
        vec![("food", self.eaten as f64), ("wall_bumps", self.bumps as f64), ("moves", self.moves as f64)]
    }

    fn save(&self, w: &mut Writer) -> Result<(), String> {
        // The settings are the binding's (rebuilt from the model); saved to check them.
        w.i64(self.size);
        w.f64s(&[self.food_reward, self.wall_penalty, self.shaping, self.odour_length]);
        w.i64s(&[self.agent.0, self.agent.1, self.food.0, self.food.1]);
        w.u64s(&[self.eaten, self.bumps, self.moves]);
        w.f64(self.reward);
        Ok(())
    }

    fn restore(&mut self, r: &mut Reader) -> Result<(), String> {
        expect_equal("the GridWorld's size", r.i64()?, self.size)?;
        let settings = r.f64s()?;
        let now = [self.food_reward, self.wall_penalty, self.shaping, self.odour_length];
        expect_equal(
            "the GridWorld's settings",
            settings.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            now.map(f64::to_bits).to_vec(),
        )?;
        let cells = r.i64s()?;
        let [ax, ay, fx, fy] = cells[..] else { return Err("the checkpoint is corrupt: GridWorld cells".into()) };
        if !self.inside((ax, ay)) || !self.inside((fx, fy)) {
            return Err("the checkpoint is corrupt: a GridWorld cell is outside the grid".into());
        }
        let counters = r.u64s()?;
        let [eaten, bumps, moves] = counters[..] else {
            return Err("the checkpoint is corrupt: GridWorld counters".into());
        };
        (self.agent, self.food) = ((ax, ay), (fx, fy));
        (self.eaten, self.bumps, self.moves) = (eaten, bumps, moves);
        self.reward = r.f64()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> GridWorld {
        let mut w = GridWorld::new();
        w.place((5, 5), (8, 9));
        w
    }

    #[test]
    fn odour_and_gradient_follow_the_spec() {
        let w = world();
        // Distance 5 from (5,5) to (8,9).
        assert_eq!(w.odour((5, 5)), abi::snnc_exp(-5.0 / 4.0));
        assert_eq!(w.odour((8, 9)), 1.0);
        assert_eq!(w.odour((-1, 3)), 0.0);
        assert_eq!(w.odour((16, 3)), 0.0);
        let g = w.gradient();
        let here = w.odour((5, 5));
        assert_eq!(g, [w.odour((5, 6)) - here, w.odour((6, 5)) - here, w.odour((5, 4)) - here, w.odour((4, 5)) - here]);
        assert!(g[0] > 0.0 && g[1] > 0.0 && g[2] < 0.0 && g[3] < 0.0, "{g:?}");
        // At the border the outside neighbour counts as odour 0.
        let mut w = world();
        w.place((0, 0), (3, 3));
        let g = w.gradient();
        assert_eq!(g[2], -w.odour((0, 0)));
        assert_eq!(g[3], -w.odour((0, 0)));
    }

    #[test]
    fn moves_walls_and_shaping() {
        let mut rng = EnvRng::new(1, 1);
        let mut w = world();
        let before = w.odour((5, 5));
        let r = w.act(0, &mut rng);
        assert_eq!(w.agent(), (5, 6));
        assert_eq!(r, 2.0 * (w.odour((5, 6)) - before));
        // A wall bump: no move, the penalty, no shaping.
        w.place((15, 0), (3, 3));
        let r = w.act(1, &mut rng);
        assert_eq!(w.agent(), (15, 0));
        assert_eq!(r, -0.1);
        let r = w.act(2, &mut rng);
        assert_eq!((w.agent(), r), ((15, 0), -0.1));
        assert_eq!(w.episode_summary()[1], ("wall_bumps", 2.0));
    }

    #[test]
    fn eating_rewards_and_respawns_elsewhere() {
        let mut rng = EnvRng::new(5, 1);
        for trial in 0..500 {
            let mut w = world();
            w.place((7, 9), (8, 9));
            let before = w.odour((7, 9));
            let r = w.act(1, &mut rng);
            assert_eq!(w.agent(), (8, 9));
            assert_eq!(r, 1.0 + 2.0 * (1.0 - before), "trial {trial}");
            assert_ne!(w.food(), w.agent(), "the food never reappears on the agent");
            assert!(w.inside(w.food()));
            assert_eq!(w.episode_summary()[0], ("food", 1.0));
        }
    }

    #[test]
    fn resets_place_agent_and_food_on_distinct_uniform_cells() {
        let mut rng = EnvRng::new(11, 1);
        let mut w = GridWorld::new();
        let mut counts = vec![0u32; 256];
        for _ in 0..25600 {
            w.reset(&mut rng);
            assert_ne!(w.agent(), w.food());
            assert!(w.inside(w.agent()) && w.inside(w.food()));
            counts[(w.agent().1 * 16 + w.agent().0) as usize] += 1;
        }
        // About 100 per cell.
        assert!(counts.iter().all(|&c| (50..160).contains(&c)), "{counts:?}");
    }

    #[test]
    fn observations_are_laid_out_as_the_spec_says() {
        let w = world();
        let mut out = vec![f64::NAN; GRIDWORLD.observation_len() as usize];
        w.observe(&mut out);
        assert_eq!(&out[..4], &w.gradient());
        let at = |name| GRIDWORLD.observation(name).map(|(_, offset)| out[offset as usize]);
        assert_eq!(at("odour"), Some(w.odour((5, 5))));
        assert_eq!(at("agent_x"), Some(5.0));
        assert_eq!(at("agent_y"), Some(5.0));
        assert_eq!(at("reward"), Some(0.0));
    }
}

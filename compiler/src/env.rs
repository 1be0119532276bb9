//! What the checker knows about environments: their settings, the observations
//! code can read, and how many actions they take. The environments themselves
//! (their dynamics) live in the runtime; a new one is a Rust type there plus an
//! `EnvironmentSpec` here (or passed to `check_in`).

/// A setting of an environment (`size = 16` in the binding).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SettingSpec {
    /// Its name.
    pub name: &'static str,
    /// Its value when the binding does not give one.
    pub default: f64,
    /// The smallest value allowed.
    pub min: f64,
    /// The largest value allowed.
    pub max: f64,
    /// Whether it must be a whole number.
    pub integer: bool,
    /// What it means (for messages and documentation).
    pub doc: &'static str,
}

/// A vector of numbers the environment shows the model every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObservationSpec {
    /// Its name in binding code (`gradient`).
    pub name: &'static str,
    /// How many values (read as `gradient[k]`; a single value is read by its name).
    pub len: u32,
    /// What it means.
    pub doc: &'static str,
}

/// An environment kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnvironmentSpec {
    /// Its name in `environment <Name> { ... }`.
    pub name: &'static str,
    /// Its settings.
    pub settings: &'static [SettingSpec],
    /// Its observations, in the order of the observation array the kernels read.
    pub observations: &'static [ObservationSpec],
    /// Number of actions (`0..actions`).
    pub actions: u32,
}

impl EnvironmentSpec {
    /// An observation's index and its offset in the flat observation array.
    pub fn observation(&self, name: &str) -> Option<(usize, u32)> {
        let k = self.observations.iter().position(|o| o.name == name)?;
        Some((k, self.observations[..k].iter().map(|o| o.len).sum()))
    }

    /// The length of the flat observation array.
    pub fn observation_len(&self) -> u32 {
        self.observations.iter().map(|o| o.len).sum()
    }
}

/// The 16 x 16 foraging world of `../shared/reference-agent.md` (any size).
pub const GRIDWORLD: EnvironmentSpec = EnvironmentSpec {
    name: "GridWorld",
    settings: &[
        SettingSpec { name: "size", default: 16.0, min: 2.0, max: 4096.0, integer: true, doc: "cells per side" },
        SettingSpec {
            name: "food_reward",
            default: 1.0,
            min: -1e9,
            max: 1e9,
            integer: false,
            doc: "reward for landing on the food",
        },
        SettingSpec {
            name: "wall_penalty",
            default: -0.1,
            min: -1e9,
            max: 1e9,
            integer: false,
            doc: "reward for a move into the border",
        },
        SettingSpec {
            name: "shaping",
            default: 2.0,
            min: -1e9,
            max: 1e9,
            integer: false,
            doc: "factor of the odour change added to each move's reward",
        },
        SettingSpec {
            name: "odour_length",
            default: 4.0,
            min: 1e-9,
            max: 1e9,
            integer: false,
            doc: "length scale of the odour, in cells: exp(-distance/odour_length)",
        },
    ],
    observations: &[
        ObservationSpec {
            name: "gradient",
            len: 4,
            doc: "odour of the neighbour in each direction (north, east, south, west) minus odour here",
        },
        ObservationSpec { name: "odour", len: 1, doc: "odour at the agent's cell" },
        ObservationSpec { name: "agent_x", len: 1, doc: "the agent's column" },
        ObservationSpec { name: "agent_y", len: 1, doc: "the agent's row" },
        ObservationSpec { name: "reward", len: 1, doc: "reward of the last move (0 before the first)" },
    ],
    actions: 4,
};

/// The environments `check` knows.
pub const BUILTIN: &[EnvironmentSpec] = &[GRIDWORLD];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observation_offsets_are_flat() {
        assert_eq!(GRIDWORLD.observation("gradient"), Some((0, 0)));
        assert_eq!(GRIDWORLD.observation("odour"), Some((1, 4)));
        assert_eq!(GRIDWORLD.observation("reward"), Some((4, 7)));
        assert_eq!(GRIDWORLD.observation("nope"), None);
        assert_eq!(GRIDWORLD.observation_len(), 8);
    }
}

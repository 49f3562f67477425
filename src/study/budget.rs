//! What a study may spend: budgets, racing and screening (`Exploration`), and the twin's
//! prediction a search starts from.

use crate::objective::{Goal, Quantities};
use crate::space::Space;
use serde::{Deserialize, Serialize};

/// How a study spends board time on configurations it will not recommend. The recommendation
/// is always confirmed at the full protocol, so what a report states meets it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Exploration {
    /// Racing: a configuration gets one run first, and more only while its interval overlaps
    /// the incumbent's (or to reach the CV target once it is the recommendation).
    pub race: bool,
    /// Inferences per run while exploring (`None`: the protocol's); a screened figure is never
    /// reported as a final one.
    pub screen_inferences: Option<u32>,
}

impl Exploration {
    /// What a study may use of what was asked for. A study of the whole grid measures it at the
    /// full protocol. A recorded row is a run of its own length (`recorded`), which screening
    /// would only scale. A Pareto front is mapped from full measurements, and limits need the
    /// runs' spread for their noise margin, so neither races (a Pareto study does not screen
    /// either; limits are judged on screened runs scaled to full length). A strategy that
    /// compares readings one by one (`!pools_readings`: coordinate descent, annealing, random)
    /// cannot judge short runs, whose noise and settling bias would decide its comparisons: it
    /// explores at full length.
    pub fn for_study(
        self,
        goal: &Goal,
        whole_grid: bool,
        recorded: bool,
        pools_readings: bool,
    ) -> Exploration {
        if whole_grid || goal.pareto {
            return Exploration::default();
        }
        Exploration {
            race: self.race && goal.limits_info().is_empty(),
            screen_inferences: self
                .screen_inferences
                .filter(|_| !recorded && pools_readings),
        }
    }
}

/// Default budget: 10 % of the grid, at least 10 (or the whole grid when smaller).
pub fn default_budget(grid: usize) -> usize {
    grid.div_ceil(10).max(10).min(grid)
}

/// Configurations of a recorded table searched whole by default: reading a table costs no board
/// time, so stopping early saves nothing there.
pub const TABLE_WHOLE: usize = 60;

/// Default budget on a recorded table: the whole table up to [`TABLE_WHOLE`] configurations,
/// else the larger of that and [`default_budget`].
pub fn table_budget(grid: usize) -> usize {
    if grid <= TABLE_WHOLE {
        grid
    } else {
        default_budget(grid).max(TABLE_WHOLE)
    }
}

/// Shortest screening run, seconds at the DVFS baseline's pace.
pub const MIN_SCREEN_S: f64 = 20.0;

/// Standard errors either side of a mean that a racing interval spans.
pub(super) const RACE_Z: f64 = 0.5;

/// Runs at most while exploring: one for a strategy whose surrogate pools neighbouring
/// configurations (a second run of a near-tie costs more than it tells it), two for one that
/// compares readings one by one; the recommendation and its rivals are confirmed at the full
/// protocol anyway.
pub(super) fn race_max_runs(pools_readings: bool) -> usize {
    if pools_readings {
        1
    } else {
        2
    }
}

/// Configurations measured first that get a second exploring run whatever racing says: the
/// replicated runs give the surrogate the noise of one exploring run, which three baseline runs
/// tell poorly, and a second run of a configuration costs one window (no clock change, no
/// warm-up).
pub(super) const REPLICATED: usize = 4;

/// Smallest per-run CV the race assumes (a baseline's three runs may agree by chance).
pub(super) const RACE_MIN_CV: f64 = 0.01;

/// The twin's predictions for every configuration of `space`: the goal's value and the time of
/// a run (what `--prior twin` gives a strategy).
pub fn twin_prior(
    b: &crate::catalog::Board,
    m: &crate::catalog::Model,
    space: &Space,
    goal: &Goal,
    inferences: u32,
) -> crate::strategy::GridPrior {
    let grid = crate::twin::true_grid(b, m, space, inferences);
    let value = grid
        .iter()
        .zip(space.points())
        .map(|(t, p)| {
            let c = space.config(&p);
            goal.value(&Quantities {
                energy_j: t.energy_j,
                time_s: t.time_s,
                inferences,
                batch_size: c.batch_size,
                idle_power_w: goal
                    .needs_idle_power()
                    .then(|| crate::twin::idle_power_at_mw(b, &c.setting()) / 1e3),
            })
        })
        .collect();
    crate::strategy::GridPrior {
        value,
        time_s: grid.iter().map(|t| t.time_s).collect(),
    }
}

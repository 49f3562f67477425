//! `edgetune bench`: strategies x models x boards x seeds on the twin (noise on), judged against
//! the noiseless grid. The quality figures live here, not in timed tests.

use crate::app::true_grid;
use crate::catalog::Catalog;
use crate::device::sim::{Noise, SimBoard};
use crate::measure::{stats, ProtocolSettings};
use crate::space::Space;
use crate::strategy::{self, StrategyInit};
use crate::study::{Prior, Study};
use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Options of `bench`.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Strategy names.
    pub strategies: Vec<String>,
    /// Model names (empty: all).
    pub models: Vec<String>,
    /// Board names (empty: all).
    pub devices: Vec<String>,
    /// Seeds 0..seeds.
    pub seeds: u64,
    /// Fixed budget; `None` uses `budget_fraction` of each grid.
    pub budget: Option<usize>,
    /// Budget as a fraction of the grid.
    pub budget_fraction: f64,
    /// Protocol.
    pub protocol: ProtocolSettings,
}

/// Result of one study in the bench.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRun {
    /// Strategy.
    pub strategy: String,
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Seed.
    pub seed: u64,
    /// Budget.
    pub budget: usize,
    /// Grid size.
    pub grid_size: usize,
    /// Measurements made.
    pub measurements: usize,
    /// True (noiseless) regret of the final recommendation, percent above the grid minimum.
    pub final_regret_pct: f64,
    /// Measurements until the recommendation was within 1 / 2 / 5 % (the budget if never).
    pub to_1pct: usize,
    /// See `to_1pct`.
    pub to_2pct: usize,
    /// See `to_1pct`.
    pub to_5pct: usize,
    /// Time spent measuring over the time of a full-grid sweep with the same protocol.
    pub tuning_time_fraction: f64,
}

/// Median and 90th percentile.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl Summary {
    fn of(x: &[f64]) -> Summary {
        Summary {
            median: stats::median(x),
            p90: stats::percentile(x, 0.9),
        }
    }
}

/// Aggregate per strategy (or per strategy and board).
#[derive(Debug, Clone, Serialize)]
pub struct StrategySummary {
    /// Studies aggregated.
    pub runs: usize,
    /// Measurements to within 1 %.
    pub to_1pct: Summary,
    /// Measurements to within 2 %.
    pub to_2pct: Summary,
    /// Measurements to within 5 %.
    pub to_5pct: Summary,
    /// Final regret, percent.
    pub final_regret_pct: Summary,
    /// Measurements made.
    pub measurements: Summary,
    /// Measurements as a share of the grid, percent.
    pub grid_share_pct: Summary,
    /// Tuning time over a full sweep's.
    pub tuning_time_fraction: Summary,
    /// Share of studies whose recommendation was within 3 % of the grid minimum.
    pub within_3pct_share: f64,
}

/// bench.json.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Seeds per cell.
    pub seeds: u64,
    /// Budget rule.
    pub budget: String,
    /// Models.
    pub models: Vec<String>,
    /// Boards.
    pub devices: Vec<String>,
    /// Per strategy.
    pub strategies: BTreeMap<String, StrategySummary>,
    /// Per strategy and board: `strategy/board`.
    pub by_device: BTreeMap<String, StrategySummary>,
    /// Per strategy, board and model: `strategy/board/model`, final regret median and
    /// measurements median.
    pub by_model: BTreeMap<String, StrategySummary>,
    /// Every study.
    pub runs: Vec<BenchRun>,
}

fn summarise(runs: &[&BenchRun]) -> StrategySummary {
    let f =
        |g: &dyn Fn(&BenchRun) -> f64| Summary::of(&runs.iter().map(|r| g(r)).collect::<Vec<_>>());
    StrategySummary {
        runs: runs.len(),
        to_1pct: f(&|r| r.to_1pct as f64),
        to_2pct: f(&|r| r.to_2pct as f64),
        to_5pct: f(&|r| r.to_5pct as f64),
        final_regret_pct: f(&|r| r.final_regret_pct),
        measurements: f(&|r| r.measurements as f64),
        grid_share_pct: f(&|r| 100.0 * r.measurements as f64 / r.grid_size as f64),
        tuning_time_fraction: f(&|r| r.tuning_time_fraction),
        within_3pct_share: runs.iter().filter(|r| r.final_regret_pct <= 3.0).count() as f64
            / runs.len().max(1) as f64,
    }
}

/// Runs the benchmark.
pub fn run(cat: &Catalog, o: &BenchOptions) -> Result<BenchReport> {
    for s in &o.strategies {
        strategy::make(s, &StrategyInit::new(vec![1, 1, 1], 0, 1))?;
    }
    let models: Vec<_> = if o.models.is_empty() {
        cat.models.iter().collect()
    } else {
        o.models
            .iter()
            .map(|m| cat.model(m))
            .collect::<Result<_, _>>()?
    };
    let boards: Vec<_> = if o.devices.is_empty() {
        cat.boards.iter().collect()
    } else {
        o.devices
            .iter()
            .map(|d| cat.board(d))
            .collect::<Result<_, _>>()?
    };
    // Ground truth per (board, model): the noiseless grid and a full sweep's cost.
    let mut cells = Vec::new();
    for b in &boards {
        for m in &models {
            m.twin_for(&b.board.id)?;
            let space = Space::new(b, m, None, &[])?;
            let truth = true_grid(b, m, &space, o.protocol.inferences);
            let min = truth.iter().copied().fold(f64::INFINITY, f64::min);
            let sweep_s: f64 = space
                .points()
                .map(|p| {
                    let c = space.config(&p);
                    let t = crate::device::sim::truth(
                        b,
                        m,
                        &c.setting(),
                        c.batch_size,
                        o.protocol.inferences,
                    );
                    let warm = t.time_s * o.protocol.warmup_inferences as f64
                        / o.protocol.inferences as f64;
                    t.time_s * o.protocol.min_runs as f64 + warm
                })
                .sum();
            cells.push((*b, *m, space, truth, min, sweep_s));
        }
    }
    let jobs: Vec<(usize, String, u64)> = (0..cells.len())
        .flat_map(|c| {
            o.strategies
                .iter()
                .flat_map(move |s| (0..o.seeds).map(move |seed| (c, s.clone(), seed)))
        })
        .collect();
    let runs: Vec<BenchRun> = jobs
        .par_iter()
        .map(|(c, sname, seed)| {
            let (b, m, space, truth, min, sweep_s) = &cells[*c];
            let budget = o
                .budget
                .unwrap_or(((space.size() as f64) * o.budget_fraction).floor() as usize)
                .max(1);
            let strat = strategy::make(sname, &StrategyInit::for_space(space, *seed, budget))?;
            let sim = SimBoard::new(b, Noise::Seeded(seed.wrapping_mul(7919) + *c as u64));
            let (mut dev, mut wl) = (sim.device(), sim.workload(m)?);
            let mut study = Study {
                space,
                device: &mut dev,
                workload: &mut wl,
                strategy: strat,
                budget,
                protocol: o.protocol,
                baseline_batch: m.paper.batch_sizes[0],
                journal: None,
                prior: Prior::default(),
                interrupt: None,
            };
            let outcome = study.run(|_| {})?;
            // Regret of the best-so-far recommendation after each measurement.
            let mut best_val = f64::INFINITY;
            let mut regrets = Vec::new();
            let mut best_true = f64::INFINITY;
            for x in &outcome.measured {
                if x.measurement.energy_j < best_val {
                    best_val = x.measurement.energy_j;
                    let p = space.point_of(&x.config).expect("measured in the space");
                    best_true = truth[space.index(&p)];
                }
                regrets.push((best_true / min - 1.0) * 100.0);
            }
            let to = |pct: f64| {
                regrets
                    .iter()
                    .position(|r| *r <= pct)
                    .map(|i| i + 1)
                    .unwrap_or(budget)
            };
            Ok(BenchRun {
                strategy: study.strategy.name().to_string(),
                model: m.model.id.clone(),
                device: b.board.id.clone(),
                seed: *seed,
                budget,
                grid_size: space.size(),
                measurements: outcome.measured.len(),
                final_regret_pct: regrets.last().copied().unwrap_or(f64::INFINITY),
                to_1pct: to(1.0),
                to_2pct: to(2.0),
                to_5pct: to(5.0),
                tuning_time_fraction: outcome.tuning_time_s() / sweep_s,
            })
        })
        .collect::<Result<_>>()?;
    let mut strategies = BTreeMap::new();
    let mut by_device = BTreeMap::new();
    let mut by_model = BTreeMap::new();
    for s in &o.strategies {
        let name = strategy::make(s, &StrategyInit::new(vec![1, 1, 1], 0, 1))?
            .name()
            .to_string();
        let mine: Vec<&BenchRun> = runs.iter().filter(|r| r.strategy == name).collect();
        strategies.insert(name.clone(), summarise(&mine));
        for b in &boards {
            let d: Vec<&BenchRun> = mine
                .iter()
                .copied()
                .filter(|r| r.device == b.board.id)
                .collect();
            by_device.insert(format!("{name}/{}", b.board.id), summarise(&d));
            for m in &models {
                let x: Vec<&BenchRun> = d
                    .iter()
                    .copied()
                    .filter(|r| r.model == m.model.id)
                    .collect();
                by_model.insert(
                    format!("{name}/{}/{}", b.board.id, m.model.id),
                    summarise(&x),
                );
            }
        }
    }
    Ok(BenchReport {
        seeds: o.seeds,
        budget: match o.budget {
            Some(b) => format!("{b} measurements"),
            None => format!("{:.0} % of each grid", o.budget_fraction * 100.0),
        },
        models: models.iter().map(|m| m.model.id.clone()).collect(),
        devices: boards.iter().map(|b| b.board.id.clone()).collect(),
        strategies,
        by_device,
        by_model,
        runs,
    })
}

/// The bench table in Markdown.
pub fn markdown(r: &BenchReport) -> String {
    let mut s = format!(
        "# edgetune bench (digital twin, noise on)\n\n{} seeds x {} models x {} boards, budget {}. Regret is the true (noiseless) energy of the recommendation above the grid minimum.\n\n",
        r.seeds,
        r.models.len(),
        r.devices.len(),
        r.budget
    );
    s += "| strategy | scope | studies | measurements (median) | % of grid (median) | to 1 % (med/p90) | to 2 % (med/p90) | to 5 % (med/p90) | final regret % (med/p90) | within 3 % | tuning time / sweep (median) |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    let line = |name: &str, scope: &str, x: &StrategySummary| {
        format!(
            "| {name} | {scope} | {} | {:.0} | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} / {:.2} | {:.0} % | {:.3} |\n",
            x.runs,
            x.measurements.median,
            x.grid_share_pct.median,
            x.to_1pct.median,
            x.to_1pct.p90,
            x.to_2pct.median,
            x.to_2pct.p90,
            x.to_5pct.median,
            x.to_5pct.p90,
            x.final_regret_pct.median,
            x.final_regret_pct.p90,
            x.within_3pct_share * 100.0,
            x.tuning_time_fraction.median
        )
    };
    for (name, x) in &r.strategies {
        s += &line(name, "all", x);
        for (key, d) in &r.by_device {
            if let Some(dev) = key.strip_prefix(&format!("{name}/")) {
                s += &line(name, dev, d);
            }
        }
    }
    s += "\n## Per model (median over seeds)\n\n| strategy | board | model | measurements | final regret % (median) | final regret % (p90) |\n|---|---|---|---|---|---|\n";
    for (key, x) in &r.by_model {
        let parts: Vec<&str> = key.splitn(3, '/').collect();
        s += &format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} |\n",
            parts[0],
            parts[1],
            parts[2],
            x.measurements.median,
            x.final_regret_pct.median,
            x.final_regret_pct.p90
        );
    }
    s
}

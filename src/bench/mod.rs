//! `edgetune bench`: strategies x models x boards x seeds on the twin (noise on), judged against
//! the noiseless grid. The quality figures live here, not in timed tests.

use crate::backend::replay::{ReplayBoard, ReplayTable};
use crate::backend::sim::{Noise, SimBoard};
use crate::catalog::{Board, Catalog, Model};
use crate::device::Device;
use crate::landscape::{RealRanges, Roughness, Stats};
use crate::measure::{stats, ProtocolSettings};
use crate::objective::{hypervolume, pareto_front, violation, Goal, Quantities};
use crate::space::Config;
use crate::space::Space;
use crate::strategy::GridPrior;
use crate::strategy::{self, StrategyInit, StrategyOptions};
use crate::study::{twin_prior, Exploration, Prior, Study};
use crate::workload::Workload;
use anyhow::Result;

mod tables;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
pub use tables::{perturbed, synthetic_table};

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
    /// Replay tables to bench on instead of the twin (one cell each).
    pub tables: Vec<std::path::PathBuf>,
    /// Objective, constraints, Pareto mode (the twin only).
    pub goal: Goal,
    /// Racing and screening runs.
    pub exploration: Exploration,
    /// Give the strategies the catalogue twin's predictions as their prior (twin cells only).
    pub prior: bool,
    /// `--prior DIR` (refused: the bench's priors are the twin's).
    pub prior_dir: Option<std::path::PathBuf>,
    /// Measure each study on a perturbed twin ([`perturbed`]) judged against that board's own
    /// noiseless grid, while the prior stays the catalogue twin.
    pub mismatch: bool,
    /// Replay each study from a table generated from the twin ([`synthetic_table`]): one reading
    /// per configuration with this relative noise, judged against the noiseless twin.
    pub table_noise: Option<f64>,
    /// With `table_noise`: the share of configurations the generated tables leave out (holes).
    pub table_holes: f64,
    /// Give each study a rough board ([`Roughness::of_study`]), judged against its own noiseless
    /// rough grid, while the prior stays the smooth catalogue twin.
    pub rough: bool,
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
    /// True regret of the best configuration the study measured, percent: what a perfect final
    /// choice among the measured configurations would have recommended.
    pub best_measured_regret_pct: f64,
    /// Measurements until the recommendation was within 1 / 2 / 5 % (the budget if never).
    pub to_1pct: usize,
    /// See `to_1pct`.
    pub to_2pct: usize,
    /// See `to_1pct`.
    pub to_5pct: usize,
    /// Time spent measuring over the time of a full-grid sweep with the same protocol.
    pub tuning_time_fraction: f64,
    /// Everything the study spent on the board, DVFS baseline included, hours (NaN for a
    /// replayed table without times).
    pub board_time_h: f64,
    /// Whether the final recommendation truly meets the constraints (true without any).
    pub final_feasible: bool,
    /// The final recommendation.
    pub recommended: Option<Config>,
    /// With `--pareto`: measurements until the true hypervolume of the measured configurations
    /// reached 95 % of the true front's (the budget if never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_95pct_hypervolume: Option<usize>,
    /// Configurations the final choice considered (the recommendation and its rivals).
    pub candidates: usize,
    /// How well the strategy's model described the measurements at the end, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surrogate: Option<crate::strategy::ModelCheck>,
    /// With `--rough`: the statistics of the study's noiseless rough energy grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landscape: Option<Stats>,
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
    /// Regret of the best configuration measured, percent.
    pub best_measured_regret_pct: Summary,
    /// Measurements made.
    pub measurements: Summary,
    /// Measurements as a share of the grid, percent.
    pub grid_share_pct: Summary,
    /// Tuning time over a full sweep's.
    pub tuning_time_fraction: Summary,
    /// Board time per study, hours, DVFS baseline included.
    pub board_time_h: Summary,
    /// The sum over model x board cells of the median board time per cell, hours: what tuning
    /// every cell once costs.
    pub board_time_h_cells: f64,
    /// Share of studies whose recommendation was within 3 % of the grid minimum.
    pub within_3pct_share: f64,
    /// Share of studies whose recommendation truly met the constraints.
    pub feasible_share: f64,
    /// With `--pareto`: measurements to 95 % of the true front's hypervolume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_95pct_hypervolume: Option<Summary>,
}

/// bench.json.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// What was measured: "twin" (noise on) or the replay table's path.
    pub source: String,
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
    /// Objective and constraints judged.
    pub goal: Goal,
    /// With `--rough`: each statistic of the study boards' noiseless rough grids beside the
    /// range the real tables of `real-landscapes.md` span.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub landscape: Vec<LandscapeRow>,
    /// Every study.
    pub runs: Vec<BenchRun>,
}

/// One statistic of the rough boards' grids against the real tables' range.
#[derive(Debug, Clone, Serialize)]
pub struct LandscapeRow {
    /// The statistic (a field of [`Stats`]).
    pub statistic: String,
    /// Lowest over the boards.
    pub lowest: f64,
    /// Median over the boards.
    pub median: f64,
    /// Highest over the boards.
    pub highest: f64,
    /// The real tables' range, lowest and highest.
    pub real: [f64; 2],
    /// Whether every board's value lies inside the real range.
    pub inside: bool,
}

/// Each statistic over the distinct boards among `runs` (one per cell and seed), against the
/// real tables' ranges.
fn landscape_rows(runs: &[BenchRun]) -> Vec<LandscapeRow> {
    let mut boards: BTreeMap<(&str, &str, u64), &Stats> = BTreeMap::new();
    for r in runs {
        if let Some(s) = &r.landscape {
            boards.insert((&r.device, &r.model, r.seed), s);
        }
    }
    if boards.is_empty() {
        return Vec::new();
    }
    RealRanges::load()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, (name, real))| {
            let v: Vec<f64> = boards.values().map(|s| s.fields()[i].1).collect();
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(*x), b.max(*x))
                });
            LandscapeRow {
                statistic: name.to_string(),
                lowest: lo,
                median: stats::median(&v),
                highest: hi,
                real: *real,
                inside: lo >= real[0] && hi <= real[1],
            }
        })
        .collect()
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
        best_measured_regret_pct: f(&|r| r.best_measured_regret_pct),
        measurements: f(&|r| r.measurements as f64),
        grid_share_pct: f(&|r| 100.0 * r.measurements as f64 / r.grid_size as f64),
        tuning_time_fraction: f(&|r| r.tuning_time_fraction),
        board_time_h: f(&|r| r.board_time_h),
        board_time_h_cells: cells_sum(runs),
        within_3pct_share: runs.iter().filter(|r| r.final_regret_pct <= 3.0).count() as f64
            / runs.len().max(1) as f64,
        feasible_share: runs.iter().filter(|r| r.final_feasible).count() as f64
            / runs.len().max(1) as f64,
        to_95pct_hypervolume: runs
            .iter()
            .map(|r| r.to_95pct_hypervolume.map(|x| x as f64))
            .collect::<Option<Vec<f64>>>()
            .filter(|v| !v.is_empty())
            .map(|v| Summary::of(&v)),
    }
}

/// The sum over the (board, model) cells among `runs` of each cell's median board time.
fn cells_sum(runs: &[&BenchRun]) -> f64 {
    let mut cells: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for r in runs {
        cells
            .entry((&r.device, &r.model))
            .or_default()
            .push(r.board_time_h);
    }
    cells.values().map(|v| stats::median(v)).sum()
}

/// Where a bench cell's measurements come from.
enum Source<'a> {
    /// The twin of a board running a model.
    Twin(&'a Board, &'a Model),
    /// A recorded table.
    Table(Box<ReplayTable>),
}

/// One (board, model) or table: its space, ground truth and what a full sweep would cost.
struct Cell<'a> {
    device: String,
    model: String,
    source: Source<'a>,
    space: Space,
    baseline_batch: u32,
    /// True objective of every configuration.
    truth: Vec<f64>,
    /// Whether each configuration truly meets the constraints.
    feasible: Vec<bool>,
    /// The true constrained minimum.
    min: f64,
    sweep_s: f64,
    /// True (latency ms, energy per inference mJ) of every configuration, scaled so the true
    /// Pareto front spans [0, 1] on each axis, and the front's hypervolume against (1.1, 1.1).
    front: Option<(Vec<(f64, f64)>, f64)>,
    /// What the strategies are told before measuring: the catalogue twin's predictions with
    /// `--prior twin` on a twin cell (computed once per cell), else nothing.
    prior: GridPrior,
    /// A rough board's structure, which its sim device measures too.
    rough: Option<Roughness>,
    /// With a rough board: its noiseless energy grid's statistics.
    landscape: Option<Stats>,
}

/// Objective and feasibility of every configuration from its true quantities.
fn judge(goal: &Goal, q: &[Quantities], baseline_time_s: f64) -> (Vec<f64>, Vec<bool>, f64) {
    let truth: Vec<f64> = q.iter().map(|x| goal.value(x)).collect();
    let feasible: Vec<bool> = q
        .iter()
        .map(|x| violation(&goal.constraints(x, baseline_time_s)) <= 0.0)
        .collect();
    let min = feasible_min(&truth, &feasible);
    (truth, feasible, min)
}

/// The lowest true value among the feasible configurations.
fn feasible_min(truth: &[f64], feasible: &[bool]) -> f64 {
    truth
        .iter()
        .zip(feasible)
        .filter(|(_, f)| **f)
        .map(|(v, _)| *v)
        .fold(f64::INFINITY, f64::min)
}

/// The true front's frame: each configuration's (latency, energy per inference) scaled by the
/// true front's ideal and nadir points, and the front's hypervolume.
fn front_frame(q: &[Quantities]) -> (Vec<(f64, f64)>, f64) {
    let pts: Vec<(f64, f64)> = q
        .iter()
        .map(|x| (x.latency_ms(), x.energy_per_inference_mj()))
        .collect();
    let front = pareto_front(&pts);
    let (mut lo, mut hi) = (
        (f64::INFINITY, f64::INFINITY),
        (f64::NEG_INFINITY, f64::NEG_INFINITY),
    );
    for i in &front {
        lo = (lo.0.min(pts[*i].0), lo.1.min(pts[*i].1));
        hi = (hi.0.max(pts[*i].0), hi.1.max(pts[*i].1));
    }
    let span = ((hi.0 - lo.0).max(1e-12), (hi.1 - lo.1).max(1e-12));
    let scaled: Vec<(f64, f64)> = pts
        .iter()
        .map(|p| ((p.0 - lo.0) / span.0, (p.1 - lo.1) / span.1))
        .collect();
    let hv = hypervolume(&scaled, HV_REFERENCE);
    (scaled, hv)
}

/// Reference point of the scaled hypervolume.
const HV_REFERENCE: (f64, f64) = (1.1, 1.1);

/// A twin cell: the board's noiseless grid (its rough grid with `rough`) is the ground truth.
fn twin_cell<'a>(
    b: &'a Board,
    m: &'a Model,
    p: &ProtocolSettings,
    goal: &Goal,
    rough: Option<Roughness>,
) -> Result<Cell<'a>> {
    m.twin_for(&b.board.id)?;
    let space = Space::new(b, m, None, &[])?;
    let grid = match &rough {
        Some(r) => crate::twin::rough_grid(b, m, &space, p.inferences, r),
        None => crate::twin::true_grid(b, m, &space, p.inferences),
    };
    let landscape = rough.map(|_| {
        let e: Vec<f64> = grid.iter().map(|t| t.energy_j).collect();
        Stats::of(&space.dims(), &e)
    });
    let q: Vec<Quantities> = grid
        .into_iter()
        .zip(space.points())
        .map(|(t, pt)| Quantities {
            energy_j: t.energy_j,
            time_s: t.time_s,
            inferences: p.inferences,
            batch_size: space.config(&pt).batch_size,
            idle_power_w: None,
        })
        .collect();
    let baseline_batch = m.paper.batch_sizes[0];
    let baseline_time_s = crate::twin::truth(
        b,
        m,
        &crate::device::FreqSetting::Dvfs,
        baseline_batch,
        p.inferences,
    )
    .time_s;
    let (truth, feasible, min) = judge(goal, &q, baseline_time_s);
    // What a full sweep would cost: every configuration's runs and warm-up.
    let sweep_s = q
        .iter()
        .map(|x| {
            x.time_s * p.min_runs as f64
                + x.time_s * p.warmup_inferences as f64 / p.inferences as f64
        })
        .sum();
    Ok(Cell {
        device: b.board.id.clone(),
        model: m.model.id.clone(),
        source: Source::Twin(b, m),
        baseline_batch,
        min,
        truth,
        feasible,
        space,
        sweep_s,
        front: goal.pareto.then(|| front_frame(&q)),
        prior: GridPrior::default(),
        rough,
        landscape,
    })
}

/// The cell of the `i`-th table: `--devices`/`--models` label it (the i-th name, else the
/// first; catalogue entries or any names), else the file's name does.
fn table_cell<'a>(cat: &Catalog, o: &BenchOptions, i: usize) -> Result<Cell<'a>> {
    let path = &o.tables[i];
    let pick = |v: &[String]| v.get(i).or(v.first()).cloned();
    let device = match pick(&o.devices) {
        Some(d) => cat.board_label(&d)?.id(|b| &b.board.id),
        None => "table".into(),
    };
    let model = match pick(&o.models) {
        Some(m) => cat.model_label(&m)?.id(|m| m.id()),
        None => path
            .file_stem()
            .map_or("table".into(), |s| s.to_string_lossy().into()),
    };
    let table = ReplayTable::load(path)?;
    let space = table.space.clone();
    let truth = table.mean_energies(o.protocol.inferences);
    // A sweep of the table measures every row it holds once per run.
    let sweep_s = table
        .rows
        .values()
        .map(|rows| rows.iter().filter_map(|r| r.time_s).sum::<f64>() / rows.len() as f64)
        .sum::<f64>()
        * o.protocol.min_runs as f64;
    let baseline_batch = space.batch_sizes()[0];
    Ok(Cell {
        device,
        model,
        source: Source::Table(Box::new(table)),
        baseline_batch,
        min: truth.iter().copied().fold(f64::INFINITY, f64::min),
        feasible: vec![true; truth.len()],
        truth,
        space,
        sweep_s,
        front: None,
        prior: GridPrior::default(),
        rough: None,
        landscape: None,
    })
}

/// Runs one study of a bench cell and judges it against the cell's ground truth.
fn run_one(cell: &Cell<'_>, c: usize, name: &str, seed: u64, o: &BenchOptions) -> Result<BenchRun> {
    let Source::Twin(b, m) = &cell.source else {
        return study_one(cell, c, name, seed, o);
    };
    if !o.mismatch && !o.rough && o.table_noise.is_none() {
        return study_one(cell, c, name, seed, o);
    }
    // The study's own board (perturbed, rough, or both), judged against its own noiseless grid,
    // with the catalogue's smooth twin as the prior.
    let (pb, pm) = if o.mismatch {
        perturbed(b, m, seed.wrapping_mul(31) + c as u64)
    } else {
        ((*b).clone(), (*m).clone())
    };
    let rough = o
        .rough
        .then(|| Roughness::of_study(pb.twin.rough, seed, &b.board.id, &m.model.id));
    let own = Cell {
        source: Source::Twin(&pb, &pm),
        prior: cell.prior.clone(),
        ..twin_cell(&pb, &pm, &o.protocol, &o.goal, rough)?
    };
    let Some(noise) = o.table_noise else {
        return study_one(&own, c, name, seed, o);
    };
    // A generated single-shot table of that board, judged against its noiseless grid.
    let salt = seed.wrapping_mul(7919) + c as u64;
    let (table, holes) = synthetic_table(
        &pb,
        &pm,
        &own.space,
        o.protocol.inferences,
        noise,
        o.table_holes,
        salt,
        rough.as_ref(),
    )?;
    let feasible: Vec<bool> = own
        .feasible
        .iter()
        .zip(&holes)
        .map(|(f, h)| *f && !h)
        .collect();
    // A table of a catalogue board and model gets the twin's prior, as tune gives it.
    let mine = Cell {
        source: Source::Table(Box::new(table)),
        min: feasible_min(&own.truth, &feasible),
        feasible,
        front: None,
        rough: None,
        ..own
    };
    study_one(&mine, c, name, seed, o)
}

/// One study on `cell`, its strategy given the cell's prior.
fn study_one(
    cell: &Cell<'_>,
    c: usize,
    name: &str,
    seed: u64,
    o: &BenchOptions,
) -> Result<BenchRun> {
    let space = &cell.space;
    let budget = o.budget.unwrap_or_else(|| match cell.source {
        // A recorded table of its own is read as tune reads one: whole when small.
        Source::Table(_) if !o.tables.is_empty() => crate::study::table_budget(space.size()),
        _ => (((space.size() as f64) * o.budget_fraction).floor() as usize).max(1),
    });
    let options = StrategyOptions {
        pareto: o.goal.pareto,
        ..StrategyOptions::default()
    };
    let strategy = strategy::make(
        name,
        &StrategyInit::for_space(space, seed, budget)
            .with_options(options)
            .with_prior(cell.prior.clone()),
    )?;
    let mut protocol = o.protocol;
    let (mut dev, mut wl): (Box<dyn Device>, Box<dyn Workload>) = match &cell.source {
        Source::Twin(b, m) => {
            let mut sim = SimBoard::new(b, Noise::Seeded(seed.wrapping_mul(7919) + c as u64));
            if let Some(r) = cell.rough {
                sim = sim.with_roughness(r);
            }
            (Box::new(sim.device()), Box::new(sim.workload(m)?))
        }
        Source::Table(t) => {
            protocol.warmup_inferences = 0;
            let rb = ReplayBoard::new((**t).clone());
            (Box::new(rb.device()), Box::new(rb.workload(&cell.model)))
        }
    };
    let exploration = o.exploration.for_study(
        &o.goal,
        name == "grid",
        matches!(cell.source, Source::Table(_)),
        strategy.pools_readings(),
    );
    let mut study = Study {
        space,
        device: &mut *dev,
        workload: &mut *wl,
        strategy,
        budget,
        protocol,
        baseline_batch: cell.baseline_batch,
        journal: None,
        prior: Prior::default(),
        interrupt: None,
        goal: o.goal,
        exploration,
    };
    let outcome = study.run(|_| {})?;
    Ok(score(cell, study.strategy.name(), seed, budget, &outcome))
}

/// A study's outcome judged against its cell's ground truth.
fn score(
    cell: &Cell<'_>,
    strategy: &str,
    seed: u64,
    budget: usize,
    outcome: &crate::study::Outcome,
) -> BenchRun {
    let space = &cell.space;
    // True regret of what the strategy recommended after each measurement.
    let index_of = |c: &Config| space.index(&space.point_of(c).expect("measured in the space"));
    // An infeasible recommendation has no regret to speak of: infinite.
    let regrets: Vec<f64> = outcome
        .recommended
        .iter()
        .map(|i| {
            let k = index_of(&outcome.measured[*i].config);
            if cell.feasible[k] {
                (cell.truth[k] / cell.min - 1.0) * 100.0
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let final_feasible = outcome
        .recommended
        .last()
        .is_some_and(|i| cell.feasible[index_of(&outcome.measured[*i].config)]);
    let to_95pct_hypervolume = cell.front.as_ref().map(|(scaled, hv)| {
        let mut seen = Vec::new();
        outcome
            .measured
            .iter()
            .position(|m| {
                seen.push(scaled[index_of(&m.config)]);
                hypervolume(&seen, HV_REFERENCE) >= 0.95 * hv
            })
            .map(|i| i + 1)
            .unwrap_or(budget)
    });
    let to = |pct: f64| {
        regrets
            .iter()
            .position(|r| *r <= pct)
            .map(|i| i + 1)
            .unwrap_or(budget)
    };
    BenchRun {
        strategy: strategy.to_string(),
        model: cell.model.clone(),
        device: cell.device.clone(),
        seed,
        budget,
        grid_size: space.size(),
        measurements: outcome.measured.len(),
        final_regret_pct: regrets.last().copied().unwrap_or(f64::INFINITY),
        best_measured_regret_pct: outcome
            .measured
            .iter()
            .map(|m| index_of(&m.config))
            .filter(|k| cell.feasible[*k])
            .map(|k| (cell.truth[k] / cell.min - 1.0) * 100.0)
            .fold(f64::INFINITY, f64::min),
        to_1pct: to(1.0),
        to_2pct: to(2.0),
        to_5pct: to(5.0),
        tuning_time_fraction: if cell.sweep_s > 0.0 {
            outcome.tuning_time_s() / cell.sweep_s
        } else {
            f64::NAN
        },
        board_time_h: outcome.tuning_time_s() / 3600.0,
        final_feasible,
        recommended: outcome
            .recommended
            .last()
            .map(|i| outcome.measured[*i].config),
        to_95pct_hypervolume,
        landscape: cell.landscape,
        surrogate: outcome.surrogate,
        candidates: outcome.choice.candidates.len(),
    }
}

/// The cells a bench runs: each board x model of the twin, or each table.
fn cells<'a>(cat: &'a Catalog, o: &BenchOptions) -> Result<Vec<Cell<'a>>> {
    Ok(match o.tables.len() {
        0 => {
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
            let mut cells = Vec::new();
            for b in &boards {
                for m in &models {
                    let mut cell = twin_cell(b, m, &o.protocol, &o.goal, None)?;
                    if o.prior {
                        cell.prior = twin_prior(b, m, &cell.space, &o.goal, o.protocol.inferences);
                    }
                    cells.push(cell);
                }
            }
            cells
        }
        _ if !o.goal.is_plain() => {
            return Err(crate::error::UsageError(
                "bench judges objectives, constraints and --pareto on the twin only (a table has no DVFS baseline time to judge a slowdown against); leave --table out".into(),
            )
            .into())
        }
        n => (0..n)
            .map(|i| table_cell(cat, o, i))
            .collect::<Result<_>>()?,
    })
}

/// Runs the benchmark.
pub fn run(cat: &Catalog, o: &BenchOptions) -> Result<BenchReport> {
    let names = o
        .strategies
        .iter()
        .map(|s| Ok(strategy::make(s, &StrategyInit::new(vec![1, 1, 1], 0, 1))?.name()))
        .collect::<Result<Vec<_>>>()?;
    let cells = cells(cat, o)?;
    let jobs: Vec<(usize, &str, u64)> = (0..cells.len())
        .flat_map(|c| {
            names
                .iter()
                .flat_map(move |s| (0..o.seeds).map(move |seed| (c, *s, seed)))
        })
        .collect();
    let runs: Vec<BenchRun> = jobs
        .par_iter()
        .map(|(c, name, seed)| run_one(&cells[*c], *c, name, *seed, o))
        .collect::<Result<_>>()?;
    let mut devices: Vec<String> = cells.iter().map(|c| c.device.clone()).collect();
    devices.dedup();
    let mut models: Vec<String> = cells.iter().map(|c| c.model.clone()).collect();
    models.sort();
    models.dedup();
    let mut strategies = BTreeMap::new();
    let mut by_device = BTreeMap::new();
    let mut by_model = BTreeMap::new();
    for name in &names {
        let mine: Vec<&BenchRun> = runs.iter().filter(|r| r.strategy == *name).collect();
        strategies.insert(name.to_string(), summarise(&mine));
        for d in &devices {
            let dr: Vec<&BenchRun> = mine.iter().copied().filter(|r| r.device == *d).collect();
            by_device.insert(format!("{name}/{d}"), summarise(&dr));
            for m in &models {
                let x: Vec<&BenchRun> = dr.iter().copied().filter(|r| r.model == *m).collect();
                if !x.is_empty() {
                    by_model.insert(format!("{name}/{d}/{m}"), summarise(&x));
                }
            }
        }
    }
    Ok(BenchReport {
        source: if o.tables.is_empty() && o.rough {
            "rough twin".into()
        } else if o.tables.is_empty() {
            "twin".into()
        } else {
            o.tables
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
        seeds: o.seeds,
        budget: match o.budget {
            Some(b) => format!("{b} measurements"),
            None => format!("{:.0} % of each grid", o.budget_fraction * 100.0),
        },
        models,
        devices,
        strategies,
        by_device,
        by_model,
        goal: o.goal,
        landscape: landscape_rows(&runs),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mismatch bench is only a test of the prior if the perturbed boards' optima are
    /// elsewhere: most move by a step or more, and their energy differs by several percent.
    #[test]
    fn perturbed_boards_move_the_optimum() {
        let cat = Catalog::load(None).unwrap();
        let (mut moved, mut total, mut steps_sum) = (0, 0, 0usize);
        for b in &cat.boards {
            for m in &cat.models {
                let space = Space::new(b, m, None, &[]).unwrap();
                let argmin = |b: &Board, m: &Model| {
                    let g = crate::twin::true_grid(b, m, &space, 3200);
                    let e: Vec<f64> = g.iter().map(|t| t.energy_j).collect();
                    space.point(stats::argmin(&e).unwrap())
                };
                let home = argmin(b, m);
                for seed in 0..5 {
                    let (pb, pm) = perturbed(b, m, seed);
                    let there = argmin(&pb, &pm);
                    let steps: usize = home.iter().zip(&there).map(|(a, b)| a.abs_diff(*b)).sum();
                    eprintln!(
                        "{} {} seed {seed}: optimum moved {steps} steps",
                        b.board.id, m.model.id
                    );
                    total += 1;
                    steps_sum += steps;
                    moved += usize::from(steps > 0);
                }
            }
        }
        assert!(2 * moved > total, "{moved} of {total} optima moved");
        assert!(
            steps_sum as f64 / total as f64 >= 1.0,
            "mean {steps_sum}/{total} steps"
        );
    }
}

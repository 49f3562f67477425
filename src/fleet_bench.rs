//! `edgetune bench-fleet`: one study measured by 1, 2, 4... workers on the twin, each worker a
//! thread with its own twin board (its own noise; every other one with more static power when
//! asked) sleeping its run times scaled down, so wall time is real. Judged on wall time and on
//! the recommendation's true regret on every board's noiseless twin.

use crate::backend::sim::{Noise, SimBoard};
use crate::catalog::{Board, Catalog, Model};
use crate::measure::stats::{mean, median, percentile};
use crate::measure::ProtocolSettings;
use crate::objective::Goal;
use crate::space::Space;
use crate::strategy::{self, Strategy, StrategyInit};
use crate::study::fleet::{self, Fleet};
use crate::study::storage::{self, Origin};
use crate::study::{Exploration, Prior, Study, StudyHeader};
use anyhow::{Context, Result};
use serde::Serialize;
use std::time::Instant;

/// Options of `bench-fleet`.
#[derive(Debug, Clone)]
pub struct FleetBenchOptions {
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Worker counts to compare (the first is the reference).
    pub workers: Vec<usize>,
    /// Seeds 1..=seeds.
    pub seeds: u64,
    /// Measurements per study.
    pub budget: usize,
    /// Strategy.
    pub strategy: String,
    /// Wall seconds per simulated second of a run.
    pub twin_sleep: f64,
    /// Static power of every other board above the catalogue's, percent.
    pub static_power_pct: f64,
    /// A database for the studies; `None` for a fresh SQLite file per study.
    pub storage: Option<String>,
    /// The protocol.
    pub protocol: ProtocolSettings,
    /// Racing and screening (as `tune` would use them).
    pub exploration: Exploration,
    /// Claim lease, seconds.
    pub lease_s: f64,
    /// Whether the search starts from the catalogue twin's prior (`--prior twin`, the default).
    pub prior: bool,
}

/// One study of the bench.
#[derive(Debug, Clone, Serialize)]
pub struct FleetRun {
    /// Workers.
    pub workers: usize,
    /// Seed.
    pub seed: u64,
    /// Wall time from the first worker's start to the last one's end, seconds.
    pub wall_s: f64,
    /// True regret of the recommendation on each board kind's noiseless twin, percent (the
    /// largest).
    pub regret_pct: f64,
    /// Configurations measured.
    pub measured: usize,
    /// Results dropped as written by another worker first.
    pub duplicates: usize,
    /// Simulated board seconds of every record (baselines included), all workers together.
    pub board_s: f64,
}

/// Per worker count: medians over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    /// Workers.
    pub workers: usize,
    /// Median wall time, seconds.
    pub wall_s: f64,
    /// Median wall time over the first count's.
    pub wall_ratio: f64,
    /// Median final regret, percent.
    pub regret_median_pct: f64,
    /// Mean final regret, percent.
    pub regret_mean_pct: f64,
    /// 90th percentile of final regret, percent (interpolated, as `bench`'s).
    pub regret_p90_pct: f64,
    /// Median simulated board seconds, all workers together.
    pub board_s: f64,
}

/// The bench's result.
#[derive(Debug, Clone, Serialize)]
pub struct FleetBenchReport {
    /// What was run.
    pub model: String,
    /// Board.
    pub device: String,
    /// Strategy.
    pub strategy: String,
    /// Budget.
    pub budget: usize,
    /// Seeds.
    pub seeds: u64,
    /// Twin sleep factor.
    pub twin_sleep: f64,
    /// Static power offset of every other board, percent.
    pub static_power_pct: f64,
    /// Every study.
    pub runs: Vec<FleetRun>,
    /// Per worker count.
    pub summary: Vec<FleetSummary>,
}

struct Setup<'a> {
    board: &'a Board,
    model: &'a Model,
    space: Space,
    init: StrategyInit,
    baseline_batch: u32,
}

fn header(o: &FleetBenchOptions, s: &Setup<'_>, seed: u64) -> StudyHeader {
    StudyHeader {
        model: o.model.clone(),
        device: o.device.clone(),
        backend: crate::device::BackendKind::Sim,
        strategy: o.strategy.clone(),
        seed,
        budget: o.budget,
        baseline_batch: s.baseline_batch,
        protocol: o.protocol,
        space: s.space.clone(),
        goal: Goal::default(),
        exploration: o.exploration,
        prior: if o.prior {
            "the catalogue's digital twin".into()
        } else {
            "none".into()
        },
        prior_grid: None,
        args: tune_args(o, seed),
    }
}

/// The `tune` arguments of one study of the bench, recorded so that `study report` rebuilds it.
fn tune_args(o: &FleetBenchOptions, seed: u64) -> Vec<String> {
    let mut args: Vec<String> = [
        "--model",
        &o.model,
        "--device",
        &o.device,
        "--strategy",
        &o.strategy,
        "--seed",
        &seed.to_string(),
        "--budget",
        &o.budget.to_string(),
        "--screen-inferences",
        &o.exploration.screen_inferences.unwrap_or(0).to_string(),
        "--prior",
        if o.prior { "twin" } else { "none" },
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    if !o.exploration.race {
        args.push("--no-race".into());
    }
    args
}

/// The study of the bench on a device (no records, no prior).
fn study_on<'a>(
    o: &FleetBenchOptions,
    s: &'a Setup<'_>,
    device: &'a mut dyn crate::device::Device,
    workload: &'a mut dyn crate::workload::Workload,
    seed: u64,
) -> Result<Study<'a>> {
    Ok(Study {
        space: &s.space,
        device,
        workload,
        strategy: strategy::make(&o.strategy, &seeded(&s.init, seed))?,
        budget: o.budget,
        protocol: o.protocol,
        baseline_batch: s.baseline_batch,
        journal: None,
        prior: Prior::default(),
        interrupt: None,
        goal: Goal::default(),
        exploration: o.exploration,
    })
}

/// One worker thread's whole life.
fn worker(
    o: &FleetBenchOptions,
    s: &Setup<'_>,
    url: &str,
    name: &str,
    seed: u64,
    i: usize,
) -> Result<usize> {
    let board = if i % 2 == 1 {
        s.board.with_static_power_pct(o.static_power_pct)
    } else {
        s.board.clone()
    };
    let sim = SimBoard::new(&board, Noise::Seeded(seed.wrapping_mul(7919) + i as u64))
        .with_sleep(o.twin_sleep);
    let (mut dev, mut wl) = (sim.device(), sim.workload(s.model)?);
    let make = || -> Box<dyn Strategy> {
        strategy::make(&o.strategy, &seeded(&s.init, seed)).expect("checked")
    };
    let mut study = study_on(o, s, &mut dev, &mut wl, seed)?;
    let mut db = storage::open(url)?;
    let u = url.to_string();
    let reconnect = move || storage::open(&u);
    let mut f = Fleet {
        storage: &mut *db,
        reconnect: &reconnect,
        name,
        origin: Origin {
            board: format!("twin-{i}"),
            worker: format!("bench-{i}"),
            backend: "sim".into(),
        },
        lease_s: o.lease_s,
        make_strategy: &make,
    };
    let rep = fleet::work(&mut study, &mut f, &mut |_| {})?;
    Ok(rep.duplicates)
}

fn one(
    o: &FleetBenchOptions,
    s: &Setup<'_>,
    truths: &[(Vec<f64>, f64)],
    workers: usize,
    seed: u64,
) -> Result<FleetRun> {
    let tmp = std::env::temp_dir().join(format!(
        "edgetune-fleet-{}-{workers}-{seed}.db",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let url = o
        .storage
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", tmp.display()));
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("bench-{}-{workers}w-s{seed}-{stamp:x}", std::process::id());
    storage::create_or_open(&url)?.create_study(&name, &header(o, s, seed))?;
    let t0 = Instant::now();
    let dups: Vec<Result<usize>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..workers)
            .map(|i| {
                let (url, name) = (&url, &name);
                sc.spawn(move || worker(o, s, url, name, seed, i))
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker panicked")))
            })
            .collect()
    });
    let wall_s = t0.elapsed().as_secs_f64();
    let mut duplicates = 0;
    for d in dups {
        duplicates += d?;
    }
    let view = storage::open(&url)?.study(&name)?;
    let sim = SimBoard::new(s.board, Noise::Off);
    let (mut dev, mut wl) = (sim.device(), sim.workload(s.model)?);
    let mut study = study_on(o, s, &mut dev, &mut wl, seed)?;
    let outcome = fleet::outcome(&mut study, &view).context("the study stored no baseline")?;
    let board_s = view
        .records
        .iter()
        .map(|r| match &r.record {
            crate::study::JournalRecord::Baseline { measurement }
            | crate::study::JournalRecord::Measurement { measurement, .. } => measurement.wall_s,
            crate::study::JournalRecord::Confirmed { measurement, .. }
            | crate::study::JournalRecord::Share { measurement, .. } => measurement.wall_s,
            _ => 0.0,
        })
        .sum();
    let best = outcome.best().context("nothing was measured")?.config;
    let k = s
        .space
        .index(&s.space.point_of(&best).expect("in the space"));
    let regret_pct = truths
        .iter()
        .map(|(t, min)| (t[k] / min - 1.0) * 100.0)
        .fold(0.0, f64::max);
    let _ = std::fs::remove_file(&tmp);
    Ok(FleetRun {
        workers,
        seed,
        wall_s,
        regret_pct,
        measured: outcome.measured.len(),
        duplicates,
        board_s,
    })
}

fn seeded(init: &StrategyInit, seed: u64) -> StrategyInit {
    StrategyInit {
        seed,
        ..init.clone()
    }
}

/// Runs the bench; `progress` gets a line per study.
pub fn run(
    cat: &Catalog,
    o: &FleetBenchOptions,
    progress: &mut dyn FnMut(&FleetRun),
) -> Result<FleetBenchReport> {
    let board = cat.board(&o.device)?;
    let model = cat.model(&o.model)?;
    model.twin_for(&board.board.id)?;
    let space = Space::new(board, model, None, &[])?;
    let goal = Goal::default();
    let mut init = StrategyInit::for_space(&space, 0, o.budget);
    if o.prior {
        init = init.with_prior(crate::study::twin_prior(
            board,
            model,
            &space,
            &goal,
            o.protocol.inferences,
        ));
    }
    strategy::make(&o.strategy, &init)?;
    let s = Setup {
        board,
        model,
        space,
        init,
        baseline_batch: model.paper.batch_sizes[0],
    };
    let truth_of = |b: &Board| {
        let t: Vec<f64> = crate::twin::true_grid(b, model, &s.space, o.protocol.inferences)
            .iter()
            .map(|p| p.energy_j)
            .collect();
        let min = t.iter().copied().fold(f64::INFINITY, f64::min);
        (t, min)
    };
    let mut truths = vec![truth_of(board)];
    if o.static_power_pct != 0.0 && o.workers.iter().any(|w| *w > 1) {
        truths.push(truth_of(&board.with_static_power_pct(o.static_power_pct)));
    }
    let mut runs = Vec::new();
    for seed in 1..=o.seeds {
        for &w in &o.workers {
            let r = one(o, &s, &truths, w, seed)?;
            progress(&r);
            runs.push(r);
        }
    }
    let reference = median(
        &runs
            .iter()
            .filter(|r| r.workers == o.workers[0])
            .map(|r| r.wall_s)
            .collect::<Vec<f64>>(),
    );
    let summary = o
        .workers
        .iter()
        .map(|&w| {
            let of = |f: fn(&FleetRun) -> f64| {
                runs.iter()
                    .filter(|r| r.workers == w)
                    .map(f)
                    .collect::<Vec<f64>>()
            };
            let regrets = of(|r| r.regret_pct);
            let wall_s = median(&of(|r| r.wall_s));
            FleetSummary {
                workers: w,
                wall_s,
                wall_ratio: wall_s / reference,
                regret_median_pct: median(&regrets),
                regret_mean_pct: mean(&regrets),
                regret_p90_pct: percentile(&regrets, 0.9),
                board_s: median(&of(|r| r.board_s)),
            }
        })
        .collect();
    Ok(FleetBenchReport {
        model: o.model.clone(),
        device: o.device.clone(),
        strategy: o.strategy.clone(),
        budget: o.budget,
        seeds: o.seeds,
        twin_sleep: o.twin_sleep,
        static_power_pct: o.static_power_pct,
        runs,
        summary,
    })
}

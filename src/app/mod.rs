//! The subcommands, as library functions taking plain option structs (the clap definitions in
//! `cli.rs` only build these). Each writes its human or JSON output to `out` and its notes
//! (which backend, where files went) to stderr.

use crate::catalog::{Board, Catalog, Model};
use crate::device::jetson::{device_tree_model, snapshot, Discovery, JetsonDevice};
use crate::device::replay::{ReplayBoard, ReplayTable};
use crate::device::sim::{truth, Noise, SimBoard};
use crate::device::{Device, FreqSetting, Workload};
use crate::error::{Interrupted, UsageError};
use crate::measure::{measure, Measurement, ProtocolSettings};
use crate::report::plot::{self, PlotInput, Sample};
use crate::report::{self, profile, Report, ReportContext};
use crate::space::{check_freq, Config, Knob, Space};
use crate::strategy::{self, StrategyInit};
use crate::study::{Event, Journal, Prior, Study, StudyHeader};
use crate::workload::command::CommandWorkload;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub mod board;
pub mod emulate;
pub mod nvml;
pub mod torch;

/// Which backend measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The real board when running on it, an NVIDIA GPU when the device names one, else the twin.
    Auto,
    /// The digital twin.
    Sim,
    /// A recorded table (`table`).
    Replay,
    /// A real Jetson through sysfs.
    Jetson,
    /// An NVIDIA GPU through NVML.
    Nvml,
}

/// Options shared by every command that measures.
#[derive(Debug, Clone)]
pub struct Common {
    /// Folder holding `search-spaces/` and `models/`; `None` for the built-in catalogue.
    pub catalog_dir: Option<PathBuf>,
    /// Model name.
    pub model: String,
    /// Device name; `None` to detect the board.
    pub device: Option<String>,
    /// Backend.
    pub backend: Backend,
    /// Protocol settings.
    pub protocol: ProtocolSettings,
    /// Seed (twin noise and strategies).
    pub seed: u64,
    /// Twin measurement noise on.
    pub noise: bool,
    /// No notes on stderr.
    pub quiet: bool,
    /// Replay table (implies the replay backend).
    pub table: Option<PathBuf>,
    /// Where the board's `/sys` and `/proc` are (`/` on a board, a fixture tree in tests).
    pub board: board::BoardOptions,
    /// The external inference program (`--workload-cmd`), with its per-run time limit.
    pub workload_cmd: Option<String>,
    /// Longest a run of `workload_cmd` may take.
    pub workload_timeout_s: f64,
    /// The built-in (or TorchScript) workload, used on a board when `workload_cmd` is absent.
    pub torch: torch::TorchOptions,
    /// `--allow-clock-control`: lock GPU clocks through NVML (root).
    pub allow_clock_control: bool,
    /// `--min-window-s`; `None` for the backend's default (2 s on NVML, else none).
    pub min_window_s: Option<f64>,
}

/// The board, model and backend a command runs on.
pub struct Target {
    /// Catalogue.
    pub catalog: Catalog,
    /// Board.
    pub board: Board,
    /// Model.
    pub model: Model,
    /// Backend name for reports.
    pub backend: &'static str,
    /// The replay table, with the replay backend.
    pub table: Option<ReplayTable>,
    /// What discovery found, with the jetson backend.
    pub jetson: Option<Discovery>,
    /// The GPU, with the nvml backend.
    pub nvml: Option<nvml::NvmlTarget>,
}

impl Target {
    /// The device and workload to measure with.
    pub fn rig(&self, c: &Common) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        if self.jetson.is_some() || self.nvml.is_some() {
            let mut torch_o = c.torch.clone();
            if let (Some(n), "auto") = (&self.nvml, torch_o.device.as_str()) {
                // The GPU being measured (NVML and CUDA number GPUs alike unless
                // CUDA_DEVICE_ORDER or CUDA_VISIBLE_DEVICES say otherwise).
                torch_o.device = format!("cuda:{}", n.gpu.index);
            }
            let w: Box<dyn Workload> = match c.workload_cmd.as_deref() {
                Some(cmd) => Box::new(CommandWorkload::new(
                    cmd,
                    &self.model.model.id,
                    Duration::from_secs_f64(c.workload_timeout_s),
                    Some(interrupt_flag()),
                )?),
                // Built before the device is touched, so a model that cannot load changes nothing.
                None => torch::workload(&self.model, &torch_o, Some(interrupt_flag()), c.quiet)?,
            };
            let d: Box<dyn Device> = match (&self.jetson, &self.nvml) {
                (Some(disc), _) => Box::new(JetsonDevice::open(
                    disc.clone(),
                    &c.board.state_path(),
                    Some(c.board.poll_ms),
                )?),
                (None, Some(n)) => Box::new(
                    crate::device::nvml::NvmlDevice::open(
                        n.api.clone(),
                        n.gpu.clone(),
                        c.allow_clock_control,
                        &c.board.state_path(),
                        Duration::from_millis(c.board.poll_ms.max(1)),
                    )
                    .map_err(|e| UsageError(e.to_string()))?,
                ),
                (None, None) => unreachable!("checked above"),
            };
            return Ok((d, w));
        }
        Ok(match &self.table {
            Some(t) => {
                let b = ReplayBoard::new(t.clone());
                (
                    Box::new(b.device()),
                    Box::new(b.workload(&self.model.model.id)),
                )
            }
            None => {
                let b = SimBoard::new(&self.board, noise_for(c, 0));
                (Box::new(b.device()), Box::new(b.workload(&self.model)?))
            }
        })
    }
}

/// The catalogue board whose detection string matches the device-tree model, if any.
pub fn detect_board<'a>(catalog: &'a Catalog, dt_model: Option<&str>) -> Option<&'a Board> {
    let m = dt_model?;
    catalog
        .boards
        .iter()
        .find(|b| b.board.detect_model.iter().any(|d| m.contains(d.as_str())))
}

/// Loads the catalogue named by the options.
pub fn load_catalog(dir: Option<&Path>) -> Result<Catalog> {
    Catalog::load(dir).context("loading the catalogue")
}

/// Resolves board, model and backend, and says on stderr when the twin stands in for a board.
pub fn target(c: &Common) -> Result<Target> {
    let catalog = load_catalog(c.catalog_dir.as_deref())?;
    let model = catalog.model(&c.model)?.clone();
    if let Some(n) = nvml::choose(c, &catalog)? {
        return nvml_target(c, catalog, model, n);
    }
    if c.allow_clock_control {
        return Err(UsageError(
            "--allow-clock-control locks an NVIDIA GPU's clocks (--backend nvml); on a Jetson edgetune always sets the clocks".into(),
        )
        .into());
    }
    let dt = device_tree_model(&c.board.sysfs_root);
    let detected = detect_board(&catalog, dt.as_deref()).cloned();
    let board = match (&c.device, &detected) {
        (Some(d), _) => catalog.board(d)?.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) if c.backend == Backend::Jetson => {
            return Err(
                board::not_a_known_board(&c.board.sysfs_root, dt.as_deref(), &catalog).into(),
            )
        }
        (None, None) => {
            return Err(UsageError(format!(
                "no Jetson detected here, so name the board to simulate with --device ({})",
                catalog.board_ids().join(", ")
            ))
            .into())
        }
    };
    let on_board = detected.as_ref().map(|b| b.board.id.as_str()) == Some(&board.board.id);
    let backend = match (c.backend, &c.table) {
        (Backend::Replay, None) => {
            return Err(UsageError("--backend replay needs --table FILE.csv".into()).into())
        }
        (Backend::Sim | Backend::Jetson, Some(_)) => {
            return Err(UsageError(
                "--table is for --backend replay; leave --backend out or set it to replay".into(),
            )
            .into())
        }
        (_, Some(_)) => Backend::Replay,
        // On a board, or asked to run a real workload on a detected one.
        (Backend::Auto, None) if on_board || (c.workload_cmd.is_some() && dt.is_some()) => {
            Backend::Jetson
        }
        (b, None) => b,
    };
    if backend != Backend::Jetson
        && (c.torch.torchscript.is_some() || c.torch.input_shape.is_some())
    {
        return Err(UsageError(
            "--torchscript and --input-shape choose a real board's workload (--backend jetson); the twin and replay tables bring their own".into(),
        )
        .into());
    }
    if backend != Backend::Jetson && c.workload_cmd.is_some() {
        return Err(UsageError(
            "--workload-cmd runs on a real board (--backend jetson); the twin and replay tables bring their own workload".into(),
        )
        .into());
    }
    if backend == Backend::Jetson {
        let (board, disc) = board::jetson_target(c, &catalog, board, detected.as_ref(), dt)?;
        return Ok(Target {
            catalog,
            board,
            model,
            backend: "jetson",
            table: None,
            jetson: Some(disc),
            nvml: None,
        });
    }
    if c.board.emc {
        return Err(UsageError(
            "--emc sets a real board's memory clock (--backend jetson); the twin has no memory-clock model".into(),
        )
        .into());
    }
    if let Some(path) = c.table.as_ref().filter(|_| backend == Backend::Replay) {
        let table = ReplayTable::load(path, space_base(&board, &model))?;
        if !c.quiet {
            eprintln!(
                "note: replaying the measurements in {} (backend replay) for {} on {}",
                path.display(),
                model.model.id,
                board.board.id
            );
        }
        return Ok(Target {
            catalog,
            board,
            model,
            backend: "replay",
            table: Some(table),
            jetson: None,
            nvml: None,
        });
    }
    model.twin_for(&board.board.id)?;
    if !c.quiet && c.backend == Backend::Auto {
        eprintln!(
            "note: no {} detected here; using its digital twin (backend sim), calibrated to the paper's measurements",
            board.board.name
        );
    }
    Ok(Target {
        catalog,
        board,
        model,
        backend: "sim",
        table: None,
        jetson: None,
        nvml: None,
    })
}

/// The target on an NVML GPU; says on stderr what it is about to measure.
fn nvml_target(c: &Common, catalog: Catalog, model: Model, n: nvml::NvmlTarget) -> Result<Target> {
    if c.table.is_some() {
        return Err(UsageError("--table is for --backend replay".into()).into());
    }
    if c.board.emc {
        return Err(UsageError(
            "--emc sets a Jetson's memory clock; the nvml backend does not".into(),
        )
        .into());
    }
    torch::check_workload(c, &n.gpu.name, "")?;
    if c.allow_clock_control && !nvml::is_root() && std::env::var_os("EDGETUNE_FAKE_NVML").is_none()
    {
        return Err(UsageError(
            "--allow-clock-control locks GPU clocks, which NVML allows root only: run with sudo, or leave the flag out to tune the batch size at the default clocks".into(),
        )
        .into());
    }
    let board = nvml::board(&catalog.boards[0], &n, c.allow_clock_control);
    if !c.quiet {
        eprintln!(
            "note: measuring {} (gpu:{}) through NVML ({}); {}",
            n.gpu.name,
            n.gpu.index,
            if n.gpu.energy_counter {
                "its energy counter"
            } else {
                "polling its power"
            },
            if c.allow_clock_control {
                "GPU clocks are locked per configuration and reset at the end"
            } else {
                "GPU clocks stay at their defaults (--allow-clock-control to tune them)"
            }
        );
    }
    Ok(Target {
        catalog,
        board,
        model,
        backend: "nvml",
        table: None,
        jetson: None,
        nvml: Some(n),
    })
}

/// Values of knobs a space does not vary: where the governors spend most of their time (the top
/// clocks), and the model's smallest batch size.
fn space_base(board: &Board, model: &Model) -> Config {
    Config::new(
        *board
            .cpu
            .frequencies_khz
            .last()
            .expect("validated non-empty"),
        *board
            .gpu
            .frequencies_hz
            .last()
            .expect("validated non-empty"),
        model.paper.batch_sizes[0],
    )
}

/// The target of a command that runs on the twin only (measure, baseline).
fn twin_target(c: &Common) -> Result<Target> {
    let t = twin_or_gpu_target(c)?;
    if t.nvml.is_some() {
        return Err(UsageError(
            "`measure` and `baseline` run on the twin (--backend sim); on a GPU, `sweep --batch-sizes` measures each batch size and `tune` searches".into(),
        )
        .into());
    }
    Ok(t)
}

/// The target of `sweep`: the twin, or an NVML GPU (measured one configuration at a time).
fn twin_or_gpu_target(c: &Common) -> Result<Target> {
    if c.table.is_some() || c.backend == Backend::Replay {
        return Err(UsageError(
            "a replay table is used by `tune` and `bench`; `sweep`, `measure` and `baseline` run on the twin".into(),
        )
        .into());
    }
    let t = target(c)?;
    if t.jetson.is_some() {
        return Err(UsageError(
            "`sweep`, `measure` and `baseline` run on the twin (--backend sim); on the board, `tune --strategy grid` measures a grid and `--fix` pins knobs".into(),
        )
        .into());
    }
    Ok(t)
}

/// A GPU clock for tables: MHz, or "default" for the NVML backend's unlocked clocks.
pub fn gpu_clock_words(gpu_freq_hz: u64) -> String {
    if gpu_freq_hz == crate::device::nvml::DEFAULT_CLOCKS {
        "default".into()
    } else {
        format!("{:.0} MHz", gpu_freq_hz as f64 / 1e6)
    }
}

/// Words for a backend in human output.
pub fn backend_words(backend: &str) -> &'static str {
    match backend {
        "sim" => "digital twin",
        "replay" => "replay table",
        "jetson" => "measured on the board",
        "nvml" => "measured through NVML",
        _ => "board",
    }
}

static QUIET_INTERRUPTS: AtomicBool = AtomicBool::new(false);

/// Silences the note the signal handler prints on the first interrupt (`--quiet`).
pub fn quiet_interrupts(quiet: bool) {
    QUIET_INTERRUPTS.store(quiet, std::sync::atomic::Ordering::SeqCst);
}

/// The process-wide interrupt flag, set by SIGINT/SIGTERM once the handler is installed.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let f2 = f.clone();
        // SIGINT, SIGTERM and SIGHUP ("termination" feature). The first stops the study at the
        // next safe point (the running workload is stopped too); a second puts the board back
        // from the snapshot at once and quits. Failing to install a handler only loses graceful
        // interrupts; the study still runs.
        let _ = ctrlc::set_handler(move || {
            if f2.swap(true, std::sync::atomic::Ordering::SeqCst) {
                if let Some(said) = snapshot::emergency_restore() {
                    eprintln!("interrupted again: {said}");
                }
                if let Some(said) = crate::device::nvml::emergency_restore(nvml::load) {
                    eprintln!("interrupted again: {said}");
                }
                std::process::exit(crate::error::EXIT_INTERRUPTED);
            }
            if !QUIET_INTERRUPTS.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!("interrupt: stopping at the next safe point and putting back what was changed (again to quit at once)");
            }
        });
        f
    })
    .clone()
}

fn noise_for(c: &Common, salt: u64) -> Noise {
    if c.noise {
        Noise::Seeded(c.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt)
    } else {
        Noise::Off
    }
}

/// Options of `tune`.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Shared options.
    pub common: Common,
    /// Strategy name.
    pub strategy: String,
    /// Options of the model-based strategies.
    pub strategy_options: crate::strategy::StrategyOptions,
    /// Measurement budget; `None` for 10 % of the grid.
    pub budget: Option<usize>,
    /// Batch sizes to search (subset of the model's).
    pub batch_sizes: Option<Vec<u64>>,
    /// Fixed knobs.
    pub fixes: Vec<(Knob, u64)>,
    /// Batch size of the DVFS baseline; `None` for the model's smallest.
    pub baseline_batch: Option<u32>,
    /// Output folder; `None` for `reports/<model>-<device>-<timestamp>/`.
    pub out: Option<PathBuf>,
    /// Print report.json to stdout instead of the summary.
    pub json: bool,
    /// Folder of an earlier tune to continue.
    pub resume: Option<PathBuf>,
    /// Objective, constraints, Pareto mode.
    pub goal: crate::objective::Goal,
}

/// Default budget: 10 % of the grid, at least 10 (or the whole grid when smaller).
pub fn default_budget(grid: usize) -> usize {
    grid.div_ceil(10).max(10).min(grid)
}

fn fresh_out_dir(base: &Path, stem: &str) -> PathBuf {
    let ts = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let first = match stem {
        "" => base.join(ts.to_string()),
        _ => base.join(format!("{stem}-{ts}")),
    };
    let mut p = first.clone();
    let mut k = 2;
    while p.exists() {
        p = PathBuf::from(format!("{}-{k}", first.display()));
        k += 1;
    }
    p
}

fn create_out_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| {
        UsageError(format!(
            "cannot create the output folder {}: {e}; choose another with --out",
            p.display()
        ))
        .into()
    })
}

fn write_file(dir: &Path, name: &str, body: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, body).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// Runs `tune`: baseline, search, reports. Returns the report and the output folder.
pub fn tune(o: &TuneOptions, out: &mut dyn Write) -> Result<(Report, PathBuf)> {
    o.common.protocol.validate().map_err(UsageError)?;
    let so = &o.strategy_options;
    if !(so.ei_stop.is_finite() && so.ei_stop >= 0.0) {
        return Err(UsageError(format!(
            "--ei-stop must be a fraction of zero or more (0.005 = 0.5 %), got {}",
            so.ei_stop
        ))
        .into());
    }
    if let crate::strategy::bayes::Acquisition::Lcb { kappa } = so.acquisition {
        if !(kappa.is_finite() && kappa > 0.0) {
            return Err(UsageError(format!("--kappa must be positive, got {kappa}")).into());
        }
    }
    quiet_interrupts(o.common.quiet);
    o.goal.validate().map_err(UsageError)?;
    let t = target(&o.common)?;
    let mut protocol = o.common.protocol;
    // The given --min-window-s was validated with the rest; the default is 2 s or none.
    protocol.min_window_s = nvml::min_window_s(&o.common, t.nvml.is_some());
    let space = match &t.table {
        Some(table) => {
            if o.batch_sizes.is_some() || !o.fixes.is_empty() {
                return Err(UsageError(
                    "--batch-sizes and --fix do not apply to a replay table: its columns define the space; narrow the table instead".into(),
                )
                .into());
            }
            // A recorded row is a measured run; there is nothing to warm up.
            protocol.warmup_inferences = 0;
            table.space.clone()
        }
        None if t.nvml.is_some() => {
            nvml::space(&t.board, &t.model, o.batch_sizes.as_deref(), &o.fixes)?
        }
        None => {
            let s = Space::new(&t.board, &t.model, o.batch_sizes.as_deref(), &o.fixes)?;
            match (&t.jetson, &t.board.emc) {
                // --emc on a board: the memory clock is a fourth axis.
                (Some(d), Some(emc)) if d.emc.is_some() => {
                    let mut axes = s.axes;
                    axes.push(crate::space::Axis {
                        knob: Knob::EmcFreqHz,
                        values: emc.frequencies_hz.clone(),
                    });
                    let base = space_base(&t.board, &t.model);
                    Space::from_axes(axes, base)
                }
                _ => s,
            }
        }
    };
    let grid = space.size();
    let exhaustive = o.strategy.trim().eq_ignore_ascii_case("grid");
    let budget = o.budget.unwrap_or_else(|| {
        if exhaustive {
            grid
        } else {
            default_budget(grid)
        }
    });
    if budget == 0 {
        return Err(UsageError("--budget must be at least 1".into()).into());
    }
    let batches: Vec<u32> = match space.axis(Knob::BatchSize) {
        Some(a) => a.values.iter().map(|b| *b as u32).collect(),
        None => vec![space.config(&vec![0; space.dims().len()]).batch_size],
    };
    // Default: the model's smallest batch size, or the space's smallest when it lacks that one.
    let smallest = t.model.paper.batch_sizes[0];
    let baseline_batch = o.baseline_batch.unwrap_or(if batches.contains(&smallest) {
        smallest
    } else {
        batches[0]
    });
    if !batches.contains(&baseline_batch) {
        return Err(UsageError(format!(
            "--baseline-batch {baseline_batch} is not a batch size of {} here ({batches:?})",
            t.model.model.id
        ))
        .into());
    }
    let strategy_name = o.strategy.trim().to_ascii_lowercase();
    let strat = strategy::make(
        &strategy_name,
        &StrategyInit::for_space(&space, o.common.seed, budget).with_options(
            crate::strategy::StrategyOptions {
                pareto: o.goal.pareto,
                ..o.strategy_options
            },
        ),
    )?;
    let header = StudyHeader {
        model: t.model.model.id.clone(),
        device: t.board.board.id.clone(),
        backend: t.backend.into(),
        strategy: strat.name().into(),
        seed: o.common.seed,
        budget,
        baseline_batch,
        protocol,
        space: space.clone(),
        goal: o.goal,
    };
    let (dir, journal, prior) = match &o.resume {
        Some(d) => {
            let (j, p) = Journal::resume(&d.join("journal.jsonl"), &header)?;
            (d.clone(), j, p)
        }
        None => {
            let dir = o.out.clone().unwrap_or_else(|| {
                fresh_out_dir(
                    Path::new("reports"),
                    &format!("{}-{}", t.model.model.id, t.board.board.id),
                )
            });
            create_out_dir(&dir)?;
            let j = Journal::create(&dir.join("journal.jsonl"), &header)?;
            (dir, j, Prior::default())
        }
    };
    let (mut device, mut workload) = t.rig(&o.common)?;
    if let Some(json) = device.restore_record() {
        // A record of what the board was before; the live snapshot is the state file.
        write_file(&dir, "restore.json", &json)?;
    }
    let baseline_kind = device.baseline_kind();
    let quiet = o.common.quiet;
    let mut study = Study {
        space: &space,
        device: &mut *device,
        workload: &mut *workload,
        strategy: strat,
        budget,
        protocol,
        baseline_batch,
        journal: Some(journal),
        prior,
        interrupt: Some(interrupt_flag()),
        goal: o.goal,
    };
    let progress = Progress::new(quiet, budget);
    let outcome = study.run(|e| progress.event(&e)).with_context(|| {
        format!(
            "tuning stopped; what was measured is in {}",
            dir.join("journal.jsonl").display()
        )
    })?;
    let ctx = ReportContext {
        model: &t.model.model.id,
        device: &t.board.board.id,
        backend: t.backend,
        strategy: study.strategy.name(),
        seed: o.common.seed,
        protocol,
        grid_size: grid,
        budget,
        baseline_kind,
        goal: o.goal,
    };
    progress.finish();
    let mut rep = Report::build(&ctx, &outcome);
    rep.notes = study.device.notes();
    if t.nvml.is_some() && !o.common.allow_clock_control {
        // Same clocks as the baseline: a "frequency saving" would only be run-to-run noise.
        rep.saving_same_batch_pct = None;
        rep.baseline_same_batch = None;
    }
    if !quiet {
        for n in &rep.notes {
            eprintln!("note: {n}");
        }
    }
    // Plots: the grid's ground truth when it is known (the twin's noiseless energies, a table's
    // means), the surrogate's prediction when the strategy has one.
    let points: Vec<_> = space.points().collect();
    let grid: Vec<Sample> = match &t.table {
        // On a real board the grid's truth is what is being searched for.
        None if t.jetson.is_some() || t.nvml.is_some() => Vec::new(),
        Some(table) => table
            .mean_energy_time(protocol.inferences)
            .into_iter()
            .zip(&points)
            .map(|((energy_j, time_s), p)| Sample {
                config: space.config(p),
                energy_j,
                time_s,
            })
            .collect(),
        None => points
            .iter()
            .map(|p| {
                let c = space.config(p);
                let tp = truth(
                    &t.board,
                    &t.model,
                    &c.setting(),
                    c.batch_size,
                    protocol.inferences,
                );
                Sample {
                    config: c,
                    energy_j: tp.energy_j,
                    time_s: tp.time_s,
                }
            })
            .collect(),
    };
    let surrogate: Option<Vec<Sample>> = study
        .strategy
        .predict(&outcome.history(&space), &points)
        .map(|v| {
            v.into_iter()
                .zip(&points)
                .map(|(energy_j, p)| Sample {
                    config: space.config(p),
                    energy_j,
                    time_s: 0.0,
                })
                .collect()
        });
    let measured: Vec<Sample> = outcome
        .measured
        .iter()
        .map(|m| Sample {
            config: m.config,
            energy_j: m.measurement.energy_j,
            time_s: m.measurement.time_s,
        })
        .collect();
    let trace = outcome.trace_j();
    let input = PlotInput {
        title: format!("{} on {}", rep.model, rep.device),
        inferences: protocol.inferences,
        measured: &measured,
        best: outcome.best().map(|b| b.config),
        trace_j: &trace,
        baseline: Some((
            outcome.baseline.energy_j,
            format!("{} at batch {}", rep.baseline.kind, rep.baseline.batch_size),
        )),
        grid: (!grid.is_empty()).then_some((
            grid.as_slice(),
            if t.table.is_some() {
                "table means"
            } else {
                "twin, noiseless"
            },
        )),
        surrogate: surrogate.as_deref(),
    };
    rep.plots = plot::draw_all(&input, &dir, &[0, 1, 2, 3])
        .map_err(|e| anyhow::anyhow!("drawing the plots in {}: {e}", dir.display()))?;
    if plot::pareto(&rep, &dir.join("pareto.svg"))
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", dir.join("pareto.svg").display()))?
    {
        rep.plots.push("pareto.svg".into());
    }
    write_reports(&rep, &t.board, &dir)?;
    if o.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(out, "{}", summary(&rep))?;
    }
    if !quiet {
        eprintln!("reports written to {}", dir.display());
    }
    if outcome.measured.is_empty() && !outcome.failed.is_empty() {
        return Err(anyhow::anyhow!(
            "the workload failed at every configuration tried ({}); the errors are in {}",
            outcome.failed.len(),
            dir.join("report.md").display()
        ));
    }
    if outcome.interrupted {
        return Err(Interrupted(format!(
            "stopped after {} measurements; partial reports are in {}; continue with --resume {}",
            outcome.measured.len(),
            dir.display(),
            dir.display()
        ))
        .into());
    }
    Ok((rep, dir))
}

/// Progress while a study measures: an indicatif bar on a terminal, a line every ten
/// measurements in a log, nothing with `--quiet`.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    wall_s: std::cell::Cell<f64>,
}

impl Progress {
    fn new(quiet: bool, budget: usize) -> Progress {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(budget as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} configurations  {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        });
        Progress {
            bar,
            quiet,
            wall_s: std::cell::Cell::new(0.0),
        }
    }

    fn event(&self, e: &Event<'_>) {
        match e {
            Event::Baseline(m) => {
                self.wall_s.set(self.wall_s.get() + m.wall_s);
                if let Some(b) = &self.bar {
                    b.set_message(format!("DVFS baseline {:.1} J", m.energy_j));
                }
            }
            Event::Measured {
                n,
                budget,
                measured,
                best,
            } => {
                let m = &measured.measurement;
                self.wall_s.set(self.wall_s.get() + m.wall_s);
                // Device time left if every remaining configuration costs what they did so far.
                let left_s = self.wall_s.get() / (*n as f64 + 1.0) * (budget - n) as f64;
                let msg = format!(
                    "last {} ({} runs, CV {:.1} %); recommended {:.1} J; at most {} of device time left",
                    measured.config,
                    m.runs.len(),
                    m.cv * 100.0,
                    best.measurement.energy_j,
                    report::human_duration(left_s)
                );
                match &self.bar {
                    Some(b) => {
                        b.set_position(*n as u64);
                        b.set_message(msg);
                    }
                    None if !self.quiet && (n % 10 == 0 || n == budget) => {
                        eprintln!(
                            "  measured {n}/{budget}: recommended so far {:.1} J at {}",
                            best.measurement.energy_j, best.config
                        )
                    }
                    None => {}
                }
            }
            Event::Failed { config, error } => {
                let first = error.lines().next().unwrap_or("");
                match &self.bar {
                    Some(b) => b.println(format!("  failed at {config}: {first}")),
                    None if !self.quiet => eprintln!("  failed at {config}: {first}"),
                    None => {}
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Writes report.json, report.md, profile.toml, nvpmodel.conf and apply-profile.sh into `dir`
/// (on an NVML GPU, an apply-profile.sh for nvidia-smi and no nvpmodel.conf).
pub fn write_reports(rep: &Report, board: &Board, dir: &Path) -> Result<()> {
    write_file(dir, "report.json", &serde_json::to_string_pretty(rep)?)?;
    write_file(dir, "report.md", &report::markdown::render(rep))?;
    if let Some(p) = profile::profile_toml(rep) {
        write_file(dir, "profile.toml", &p)?;
    }
    if board.board.soc == "nvml" {
        // A GPU, not a Jetson: no nvpmodel, and nvidia-smi instead of sysfs.
        if let Some(b) = profile::nvml_snippet(rep, board) {
            write_file(dir, "apply-profile.sh", &b)?;
        }
    } else {
        if let Some(b) = profile::nvpmodel_block(rep, board, 10) {
            write_file(dir, "nvpmodel.conf", &b)?;
        }
        if let Some(b) = profile::shell_snippet(rep, board) {
            write_file(dir, "apply-profile.sh", &b)?;
        }
    }
    if !rep.pareto.is_empty() {
        let mut w = csv::Writer::from_writer(Vec::new());
        for p in &rep.pareto {
            w.serialize(p)?;
        }
        let body = String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
        write_file(dir, "pareto.csv", &body)?;
    }
    Ok(())
}

/// The human summary `tune` prints.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let source = backend_words(&r.backend);
    s += &format!(
        "edgetune tune: {} on {} ({}), strategy {}\n",
        r.model, r.device, source, r.strategy
    );
    match &r.best {
        Some(b) => {
            let cpu = match b.cpu_freq_khz {
                0 => String::new(),
                khz => format!("CPU {:.1} MHz ({khz} kHz), ", khz as f64 / 1e3),
            };
            let gpu = match b.gpu_freq_hz {
                0 => "GPU default clocks".to_string(),
                hz => format!("GPU {:.1} MHz ({hz} Hz)", hz as f64 / 1e6),
            };
            s += &format!(
                "recommended: {cpu}{gpu},{} batch {}\n",
                b.emc_freq_hz.map_or(String::new(), |f| format!(
                    " memory {:.1} MHz ({f} Hz),",
                    f as f64 / 1e6
                )),
                b.batch_size
            );
            s += &format!(
                "energy: {:.1} J per {} inferences ({:.1} mJ each), time {:.1} s, average power {:.2} W\n",
                b.energy_j, r.inferences, b.energy_per_inference_mj, b.time_s, b.avg_power_w
            );
            // On a GPU the baseline is its default clocks, not a governor.
            let base_name = if r.baseline.kind == "dvfs" {
                "DVFS"
            } else {
                "default clocks"
            };
            if let (Some(p), Some(base)) = (r.saving_same_batch_pct, &r.baseline_same_batch) {
                s += &format!(
                    "saving vs {base_name} at batch {} (frequencies only): {p:.1} % ({base_name} {:.1} J)\n",
                    base.batch_size, base.energy_j
                );
            }
            if let Some(p) = r.saving_pct {
                let what = if r.baseline_same_batch.is_some() {
                    "frequencies and batch size"
                } else {
                    "batch size"
                };
                s += &format!(
                    "saving vs {base_name} at batch {} ({what}): {p:.1} % ({base_name} {:.1} J)\n",
                    r.baseline.batch_size, r.baseline.energy_j
                );
            }
        }
        None => s += "no configuration was measured, so there is no recommendation\n",
    }
    if r.objective != "energy" {
        s += &format!("objective: {} (lower is better)\n", r.objective);
    }
    if !r.constraints.is_empty() {
        let list: Vec<String> = r
            .constraints
            .iter()
            .map(|c| format!("{} {} {}", c.name, c.limit, c.unit))
            .collect();
        s += &format!(
            "constraints: {}; {}\n",
            list.join(", "),
            match r.best_feasible {
                Some(true) => "the recommendation meets them (with a 99 % one-sided margin for run-to-run noise)",
                Some(false) => "NO measured configuration met them; the recommendation is the least infeasible one",
                None => "nothing was measured",
            }
        );
    }
    if !r.failed.is_empty() {
        s += &format!(
            "the workload failed at {} configuration(s); their errors are in report.json and report.md\n",
            r.failed.len()
        );
    }
    if !r.pareto.is_empty() {
        s += &format!(
            "energy-latency Pareto front: {} of the measured configurations (pareto.csv, pareto.svg)\n",
            r.pareto.len()
        );
    }
    s += &format!(
        "measured {} of {} configurations ({:.1} % of the grid); {}\n",
        r.measured_configs,
        r.grid_size,
        100.0 * r.measured_configs as f64 / r.grid_size.max(1) as f64,
        r.stop_reason
    );
    s += &format!(
        "time spent measuring: {}{}\n",
        report::human_duration(r.tuning_time_s),
        if r.backend == "sim" {
            " (simulated: what the board would have taken)"
        } else {
            ""
        }
    );
    s
}

/// Every configuration of `space` on the twin, in parallel, and the DVFS baseline per batch.
fn sweep_on_twin(
    t: &Target,
    c: &Common,
    space: &Space,
) -> Result<(Vec<SweepRow>, Vec<SweepBaseline>)> {
    let points: Vec<_> = space.points().collect();
    let grid: Vec<SweepRow> = points
        .par_iter()
        .map(|p| {
            let cfg = space.config(p);
            // Each configuration gets its own noise stream, so results do not depend on
            // the order threads take them in.
            let m = measure_on_twin(
                t,
                noise_for(c, space.index(p) as u64 + 1),
                &cfg.setting(),
                cfg.batch_size,
                &c.protocol,
            )?;
            Ok(SweepRow::of(&cfg, &m))
        })
        .collect::<Result<_>>()?;
    let baseline = batch_values(space)
        .iter()
        .map(|b| {
            let m = measure_on_twin(
                t,
                noise_for(c, u64::MAX - *b as u64),
                &FreqSetting::Dvfs,
                *b,
                &c.protocol,
            )?;
            Ok(SweepBaseline::of(&m))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((grid, baseline))
}

fn batch_values(space: &Space) -> Vec<u32> {
    space
        .axis(Knob::BatchSize)
        .map(|a| a.values.iter().map(|b| *b as u32).collect())
        .unwrap_or_default()
}

/// Every configuration of `space` measured one after another on a real device (an NVML GPU),
/// with progress on stderr. A configuration whose workload fails (out of memory at a large
/// batch) is reported and skipped. The baseline is the default clocks: re-measured per batch
/// only when clocks are locked in the grid.
fn sweep_on_device(
    t: &Target,
    c: &Common,
    space: &Space,
) -> Result<(Vec<SweepRow>, Vec<SweepBaseline>, Option<String>)> {
    quiet_interrupts(c.quiet);
    let stop = interrupt_flag();
    let mut protocol = c.protocol;
    protocol.min_window_s = nvml::min_window_s(c, true);
    let (mut device, mut workload) = t.rig(c)?;
    let points: Vec<_> = space.points().collect();
    let mut grid = Vec::new();
    let started = std::time::Instant::now();
    for (i, p) in points.iter().enumerate() {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            device.restore()?;
            let why = format!(
                "the sweep stopped after {i} of {} configurations; they are in sweep.json",
                points.len()
            );
            return Ok((grid, Vec::new(), Some(why)));
        }
        let cfg = space.config(p);
        match measure(
            &mut *device,
            &mut *workload,
            &cfg.setting(),
            cfg.batch_size,
            &protocol,
        ) {
            Ok(m) => {
                if !c.quiet {
                    eprintln!(
                        "  {}/{}: {cfg}: {:.2} J, {:.3} s per {} inferences (CV {:.1} %, {} runs{}) [{:.0} s]",
                        i + 1,
                        points.len(),
                        m.energy_j,
                        m.time_s,
                        m.inferences,
                        100.0 * m.cv,
                        m.runs.len(),
                        if m.window_repeats > 1 {
                            format!(", {}x per window", m.window_repeats)
                        } else {
                            String::new()
                        },
                        started.elapsed().as_secs_f64()
                    );
                }
                grid.push(SweepRow::of(&cfg, &m));
            }
            Err(crate::device::DeviceError::Workload(e)) => {
                eprintln!(
                    "  {}/{}: {cfg}, batch {}: failed, skipped: {e}",
                    i + 1,
                    points.len(),
                    cfg.batch_size
                );
            }
            Err(crate::device::DeviceError::Interrupted) => {
                device.restore()?;
                let why = format!(
                    "the sweep stopped after {} of {} configurations; they are in sweep.json",
                    grid.len(),
                    points.len()
                );
                return Ok((grid, Vec::new(), Some(why)));
            }
            Err(e) => {
                let _ = device.restore();
                return Err(e.into());
            }
        }
    }
    let locked = space.axis(Knob::GpuFreqHz).is_some_and(|a| {
        a.values
            .iter()
            .any(|v| *v != crate::device::nvml::DEFAULT_CLOCKS)
    });
    let mut baseline = Vec::new();
    for b in batch_values(space) {
        if !locked {
            // The grid ran at the default clocks already: that row is the baseline.
            if let Some(r) = grid.iter().find(|r| r.batch_size == b) {
                baseline.push(SweepBaseline {
                    batch_size: b,
                    energy_j: r.energy_j,
                    time_s: r.time_s,
                });
            }
            continue;
        }
        match measure(
            &mut *device,
            &mut *workload,
            &FreqSetting::Dvfs,
            b,
            &protocol,
        ) {
            Ok(m) => baseline.push(SweepBaseline::of(&m)),
            Err(crate::device::DeviceError::Workload(_)) => {}
            Err(e) => {
                let _ = device.restore();
                return Err(e.into());
            }
        }
    }
    device.restore()?;
    for n in device.notes() {
        if !c.quiet {
            eprintln!("note: {n}");
        }
    }
    Ok((grid, baseline, None))
}

/// Options of `sweep`.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Shared options.
    pub common: Common,
    /// Only this batch size.
    pub batch: Option<u32>,
    /// Only these batch sizes (any positive sizes on an NVML GPU; the model's elsewhere).
    pub batch_sizes: Option<Vec<u64>>,
    /// Output folder; `None` for `reports/sweep-<model>-<device>-<timestamp>/`.
    pub out: Option<PathBuf>,
    /// Print sweep.json to stdout.
    pub json: bool,
}

/// One grid entry of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// CPU frequency, kHz.
    pub cpu_freq_khz: u64,
    /// GPU frequency, Hz.
    pub gpu_freq_hz: u64,
    /// Batch size.
    pub batch_size: u32,
    /// Energy for `inferences` inferences.
    pub energy_j: f64,
    /// Time.
    pub time_s: f64,
    /// Average power.
    pub avg_power_w: f64,
    /// CV of the runs.
    pub cv: f64,
    /// Runs.
    pub runs: usize,
}

/// A DVFS entry of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepBaseline {
    /// Batch size.
    pub batch_size: u32,
    /// Energy.
    pub energy_j: f64,
    /// Time.
    pub time_s: f64,
}

impl SweepRow {
    fn of(c: &Config, m: &Measurement) -> SweepRow {
        SweepRow {
            cpu_freq_khz: c.cpu_freq_khz,
            gpu_freq_hz: c.gpu_freq_hz,
            batch_size: c.batch_size,
            energy_j: m.energy_j,
            time_s: m.time_s,
            avg_power_w: m.avg_power_w,
            cv: m.cv,
            runs: m.runs.len(),
        }
    }
}

impl SweepBaseline {
    fn of(m: &Measurement) -> SweepBaseline {
        SweepBaseline {
            batch_size: m.batch_size,
            energy_j: m.energy_j,
            time_s: m.time_s,
        }
    }
}

/// sweep.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Backend.
    pub backend: String,
    /// Inferences per run.
    pub inferences: u32,
    /// Whether the twin's noise was on.
    pub noise: bool,
    /// Every configuration.
    pub grid: Vec<SweepRow>,
    /// The grid's best entry.
    pub min: SweepRow,
    /// DVFS per batch size.
    pub baseline: Vec<SweepBaseline>,
}

fn measure_on_twin(
    t: &Target,
    noise: Noise,
    setting: &FreqSetting,
    batch: u32,
    p: &ProtocolSettings,
) -> Result<Measurement> {
    let sim = SimBoard::new(&t.board, noise);
    let (mut d, mut w) = (sim.device(), sim.workload(&t.model)?);
    let m = measure(&mut d, &mut w, setting, batch, p);
    d.restore()?;
    Ok(m?)
}

/// Runs `sweep`: every configuration (or one batch size), in parallel on the twin.
pub fn sweep(o: &SweepOptions, out: &mut dyn Write) -> Result<(SweepReport, PathBuf)> {
    o.common.protocol.validate().map_err(UsageError)?;
    let t = twin_or_gpu_target(&o.common)?;
    let batches: Option<Vec<u64>> = match (&o.batch_sizes, o.batch) {
        (Some(_), Some(_)) => {
            return Err(UsageError("give --batch or --batch-sizes, not both".into()).into())
        }
        (Some(v), None) => Some(v.clone()),
        (None, Some(b)) => Some(vec![b as u64]),
        (None, None) => None,
    };
    let (grid, baseline, interrupted) = if t.nvml.is_some() {
        let space = nvml::space(&t.board, &t.model, batches.as_deref(), &[])?;
        sweep_on_device(&t, &o.common, &space)?
    } else {
        let space = Space::new(&t.board, &t.model, batches.as_deref(), &[])?;
        let (g, b) = sweep_on_twin(&t, &o.common, &space)?;
        (g, b, None)
    };
    if grid.is_empty() {
        match interrupted {
            Some(why) => return Err(Interrupted(why).into()),
            None => anyhow::bail!("no configuration could be measured (the errors are above)"),
        }
    }
    let min = grid
        .iter()
        .min_by(|a, b| a.energy_j.total_cmp(&b.energy_j))
        .expect("the space is never empty")
        .clone();
    let rep = SweepReport {
        model: t.model.model.id.clone(),
        device: t.board.board.id.clone(),
        backend: t.backend.into(),
        inferences: o.common.protocol.inferences,
        noise: o.common.noise,
        grid,
        min,
        baseline,
    };
    let dir = o.out.clone().unwrap_or_else(|| {
        fresh_out_dir(
            Path::new("reports"),
            &format!("sweep-{}-{}", rep.model, rep.device),
        )
    });
    create_out_dir(&dir)?;
    write_file(&dir, "sweep.json", &serde_json::to_string_pretty(&rep)?)?;
    let mut csv =
        String::from("cpu_freq_khz,gpu_freq_hz,batch_size,energy_j,time_s,avg_power_w,cv,runs\n");
    for r in &rep.grid {
        csv += &format!(
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{}\n",
            r.cpu_freq_khz,
            r.gpu_freq_hz,
            r.batch_size,
            r.energy_j,
            r.time_s,
            r.avg_power_w,
            r.cv,
            r.runs
        );
    }
    write_file(&dir, "sweep.csv", &csv)?;
    if let Some(why) = interrupted {
        // What was measured is written; the exit code says it is not the whole grid.
        return Err(Interrupted(why).into());
    }
    let grid: Vec<Sample> = rep
        .grid
        .iter()
        .map(|r| Sample {
            config: Config::new(r.cpu_freq_khz, r.gpu_freq_hz, r.batch_size),
            energy_j: r.energy_j,
            time_s: r.time_s,
        })
        .collect();
    let input = PlotInput {
        title: format!("{} on {}", rep.model, rep.device),
        inferences: rep.inferences,
        measured: &[],
        best: Some(Config::new(
            rep.min.cpu_freq_khz,
            rep.min.gpu_freq_hz,
            rep.min.batch_size,
        )),
        trace_j: &[],
        baseline: None,
        grid: Some((&grid, "sweep")),
        surrogate: None,
    };
    plot::draw_all(&input, &dir, &[0, 1, 3])
        .map_err(|e| anyhow::anyhow!("drawing the plots in {}: {e}", dir.display()))?;
    if o.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        writeln!(
            out,
            "edgetune sweep: {} on {} ({}), {} configurations{}",
            rep.model,
            rep.device,
            backend_words(&rep.backend),
            rep.grid.len(),
            if rep.backend == "sim" {
                format!(", noise {}", if rep.noise { "on" } else { "off" })
            } else {
                String::new()
            }
        )?;
        writeln!(
            out,
            "minimum: {:.1} J at {}",
            rep.min.energy_j,
            Config::new(
                rep.min.cpu_freq_khz,
                rep.min.gpu_freq_hz,
                rep.min.batch_size
            )
        )?;
        if rep.backend != "sim" {
            // Measured on hardware: every row, as measured.
            writeln!(
                out,
                "batch | GPU clock | energy (J) | time (s) | power (W) | CV (%) | runs"
            )?;
            for r in &rep.grid {
                writeln!(
                    out,
                    "{:>5} | {:>9} | {:>10.2} | {:>8.3} | {:>9.1} | {:>6.1} | {:>4}",
                    r.batch_size,
                    gpu_clock_words(r.gpu_freq_hz),
                    r.energy_j,
                    r.time_s,
                    r.avg_power_w,
                    100.0 * r.cv,
                    r.runs
                )?;
            }
        }
        let unlocked = rep
            .grid
            .iter()
            .all(|r| r.gpu_freq_hz == crate::device::nvml::DEFAULT_CLOCKS);
        if unlocked {
            // The grid ran at the baseline's clocks: the table above is all there is.
            if !o.common.quiet {
                eprintln!("sweep written to {}", dir.display());
            }
            return Ok((rep, dir));
        }
        writeln!(out, "batch | DVFS (J) | best pinned (J) | saving (%)")?;
        for b in &rep.baseline {
            let best = rep
                .grid
                .iter()
                .filter(|r| r.batch_size == b.batch_size)
                .map(|r| r.energy_j)
                .fold(f64::INFINITY, f64::min);
            writeln!(
                out,
                "{:>5} | {:>8.1} | {:>15.1} | {:>10.1}",
                b.batch_size,
                b.energy_j,
                best,
                report::saving_pct(b.energy_j, best)
            )?;
        }
    }
    if !o.common.quiet {
        eprintln!("sweep written to {}", dir.display());
    }
    Ok((rep, dir))
}

/// Options of `measure` and `baseline`.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// Shared options.
    pub common: Common,
    /// CPU frequency, kHz (`None` with `gpu` `None` means DVFS).
    pub cpu_freq_khz: Option<u64>,
    /// GPU frequency, Hz.
    pub gpu_freq_hz: Option<u64>,
    /// Batch sizes (one for `measure`; `baseline` takes several).
    pub batches: Vec<u32>,
    /// JSON output.
    pub json: bool,
}

/// Output of `measure` / `baseline` in JSON.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureReport {
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Backend.
    pub backend: String,
    /// One measurement per batch size.
    pub measurements: Vec<Measurement>,
}

/// Runs `measure` (pinned clocks) or `baseline` (DVFS) through the protocol.
pub fn measure_cmd(o: &MeasureOptions, out: &mut dyn Write) -> Result<MeasureReport> {
    o.common.protocol.validate().map_err(UsageError)?;
    let t = twin_target(&o.common)?;
    let setting = match (o.cpu_freq_khz, o.gpu_freq_hz) {
        (None, None) => FreqSetting::Dvfs,
        (Some(c), Some(g)) => {
            check_freq(Knob::CpuFreqKhz, c, &t.board)?;
            check_freq(Knob::GpuFreqHz, g, &t.board)?;
            Config::new(c, g, 0).setting()
        }
        _ => {
            return Err(UsageError(
                "give both --cpu-freq and --gpu-freq to pin the clocks (or neither for the DVFS governors)".into(),
            )
            .into())
        }
    };
    let batches = if o.batches.is_empty() {
        t.model.paper.batch_sizes.clone()
    } else {
        o.batches.clone()
    };
    for b in &batches {
        crate::space::check_model_batch(&t.model, *b as u64)?;
    }
    let sim = SimBoard::new(&t.board, noise_for(&o.common, 0));
    let (mut d, mut w) = (sim.device(), sim.workload(&t.model)?);
    let mut ms = Vec::new();
    let result = (|| -> Result<()> {
        for b in &batches {
            ms.push(measure(&mut d, &mut w, &setting, *b, &o.common.protocol)?);
        }
        Ok(())
    })();
    d.restore()?;
    result?;
    let rep = MeasureReport {
        model: t.model.model.id.clone(),
        device: t.board.board.id.clone(),
        backend: t.backend.into(),
        measurements: ms,
    };
    if o.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        let what = match setting {
            FreqSetting::Dvfs => "DVFS governors".to_string(),
            FreqSetting::Pinned {
                cpu_freq_khz,
                gpu_freq_hz,
                ..
            } => format!(
                "CPU {:.1} MHz, GPU {:.1} MHz",
                cpu_freq_khz as f64 / 1e3,
                gpu_freq_hz as f64 / 1e6
            ),
        };
        writeln!(
            out,
            "{} on {} ({}), {what}, {} inferences per run",
            rep.model,
            rep.device,
            if t.backend == "sim" {
                "digital twin"
            } else {
                "board"
            },
            o.common.protocol.inferences
        )?;
        writeln!(
            out,
            "batch | energy (J) | time (s) | power (W) | mJ/inf | runs | CV (%)"
        )?;
        for m in &rep.measurements {
            writeln!(
                out,
                "{:>5} | {:>10.1} | {:>8.1} | {:>9.2} | {:>6.1} | {:>4} | {:>6.2}",
                m.batch_size,
                m.energy_j,
                m.time_s,
                m.avg_power_w,
                m.energy_per_inference_mj,
                m.runs.len(),
                m.cv * 100.0
            )?;
        }
    }
    Ok(rep)
}

/// Runs `models`: the catalogue's models with the paper's rows.
pub fn models_cmd(catalog_dir: Option<&Path>, json: bool, out: &mut dyn Write) -> Result<()> {
    let cat = load_catalog(catalog_dir)?;
    if json {
        let v: Vec<_> = cat
            .models
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.model.id, "name": m.model.name, "aliases": m.model.aliases,
                    "layers": m.paper.layers, "params_m": m.paper.params_m, "gflops": m.paper.gflops,
                    "batch_sizes": m.paper.batch_sizes, "input": m.paper.input,
                    "framework": m.paper.framework, "twin_boards": m.twin.keys().collect::<Vec<_>>(),
                    "built": m.built.as_ref().map(|b| serde_json::json!({
                        "arch": b.arch, "params": b.params, "macs": b.macs,
                    })),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<13} {:<13} {:>6} {:>8} {:>7}  {:<18} {:<27} aliases",
        "id", "name", "layers", "params", "GFLOPs", "batch sizes", "input"
    )?;
    for m in &cat.models {
        writeln!(
            out,
            "{:<13} {:<13} {:>6} {:>7.1}M {:>7.4}  {:<18} {:<27} {}",
            m.model.id,
            m.model.name,
            m.paper.layers,
            m.paper.params_m,
            m.paper.gflops,
            format!("{:?}", m.paper.batch_sizes),
            m.paper.input,
            m.model.aliases.join(", ")
        )?;
    }
    Ok(())
}

/// Runs `devices`: the catalogue's boards, and which one (if any) this machine is.
pub fn devices_cmd(
    catalog_dir: Option<&Path>,
    bo: &board::BoardOptions,
    explicit_root: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let cat = load_catalog(catalog_dir)?;
    let dt = device_tree_model(&bo.sysfs_root);
    let detected = detect_board(&cat, dt.as_deref()).map(|b| b.board.id.clone());
    let live = board::live_board(bo, &cat, explicit_root)?;
    let backends = |id: &str| match detected.as_deref() == Some(id) && live.is_some() {
        true => vec!["jetson", "sim"],
        false => vec!["sim"],
    };
    if json {
        let v: Vec<_> = cat
            .boards
            .iter()
            .map(|b| {
                serde_json::json!({
                    "id": b.board.id, "name": b.board.name, "aliases": b.board.aliases,
                    "cpu_freq_khz": b.cpu.frequencies_khz, "gpu_freq_hz": b.gpu.frequencies_hz,
                    "cpu_governor": b.cpu.default_governor, "gpu_governor": b.gpu.default_governor,
                    "cpu_clusters": b.cpu.clusters.iter().map(|c| &c.cpus).collect::<Vec<_>>(),
                    "rails": b.sensors.rails, "total_rail": b.sensors.total_rail,
                    "detected": detected.as_deref() == Some(b.board.id.as_str()),
                    "backends": backends(&b.board.id),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "this_machine": live,
            "gpus": nvml::gpus().unwrap_or_default(),
            "catalog": v,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    if let Some(l) = &live {
        writeln!(out, "{}", board::live_text(l))?;
    }
    let root = nvml::is_root();
    for g in nvml::gpus().unwrap_or_default() {
        writeln!(out, "{}", nvml::gpu_text(&g, root))?;
    }
    writeln!(out, "catalogue:")?;
    for b in &cat.boards {
        let (c, g) = (&b.cpu.frequencies_khz, &b.gpu.frequencies_hz);
        writeln!(
            out,
            "{} ({}){}\n  aliases: {}\n  CPU: {} steps, {:.1}-{:.1} MHz, {} cluster(s), governor {}\n  GPU: {} steps, {:.1}-{:.1} MHz, devfreq {}, governor {}\n  rails: {} (total {})\n  backends: {}",
            b.board.id,
            b.board.name,
            if detected.as_deref() == Some(b.board.id.as_str()) { " [this machine]" } else { "" },
            b.board.aliases.join(", "),
            c.len(),
            c[0] as f64 / 1e3,
            c[c.len() - 1] as f64 / 1e3,
            b.cpu.clusters.len(),
            b.cpu.default_governor,
            g.len(),
            g[0] as f64 / 1e6,
            g[g.len() - 1] as f64 / 1e6,
            b.gpu.devfreq,
            b.gpu.default_governor,
            b.sensors.rails.join(", "),
            b.sensors.total_rail,
            backends(&b.board.id).join(", ")
        )?;
    }
    if live.is_none() {
        writeln!(
            out,
            "this machine: {}",
            dt.map(|m| format!("`{m}`, not a board in the catalogue"))
                .unwrap_or_else(|| format!(
                    "not a Jetson (no {})",
                    bo.sysfs_root.join("proc/device-tree/model").display()
                ))
        )?;
    }
    Ok(())
}

/// Noiseless energy of every configuration of a space on the twin (ground truth).
pub fn true_grid(board: &Board, model: &Model, space: &Space, inferences: u32) -> Vec<f64> {
    space
        .points()
        .map(|p| {
            let c = space.config(&p);
            let s = c.setting();
            truth(board, model, &s, c.batch_size, inferences).energy_j
        })
        .collect()
}

/// Runs `bench` and writes bench.json and bench.md to `out_dir` (default
/// `reports/bench/<timestamp>/`).
pub fn bench_cmd(
    catalog_dir: Option<&Path>,
    o: &crate::bench::BenchOptions,
    out_dir: Option<PathBuf>,
    json: bool,
    out: &mut dyn Write,
) -> Result<PathBuf> {
    o.protocol.validate().map_err(UsageError)?;
    if o.seeds == 0 || o.strategies.is_empty() {
        return Err(UsageError("--seeds and --strategies must not be empty".into()).into());
    }
    if o.budget.is_none() && !(o.budget_fraction > 0.0 && o.budget_fraction <= 1.0) {
        return Err(UsageError("--budget-fraction must lie in (0, 1]".into()).into());
    }
    let cat = load_catalog(catalog_dir)?;
    let rep = crate::bench::run(&cat, o)?;
    let dir = out_dir.unwrap_or_else(|| fresh_out_dir(Path::new("reports/bench"), ""));
    create_out_dir(&dir)?;
    write_file(&dir, "bench.json", &serde_json::to_string_pretty(&rep)?)?;
    let md = crate::bench::markdown(&rep);
    write_file(&dir, "bench.md", &md)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(out, "{md}")?;
    }
    eprintln!("bench written to {}", dir.display());
    Ok(dir)
}

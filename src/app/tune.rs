//! `edgetune tune`: the DVFS baseline, the search, the reports. Options are resolved into a
//! target and a plan (space, budget, baseline batch, strategy); the study measures; report/
//! renders what it found.

use super::output::{create_dir, fresh_dir, new_out_dir, write_file, write_json};
use super::prior::{PriorChoice, PriorUsed};
use super::progress::Progress;
use super::signals::{interrupt_flag, quiet_interrupts};
use super::target::Target;
use super::Common;
use crate::backend::replay::ReplayTable;
use crate::backend::Rig;
use crate::device::Device;
use crate::error::{Interrupted, UsageError};
use crate::measure::ProtocolSettings;
use crate::objective::Goal;
use crate::report::plot::{self, PlotInput, Sample};
use crate::report::{self, profile, summary::summary, Report, ReportContext};
use crate::space::{Knob, Space};
use crate::strategy::{self, bayes::Acquisition, Strategy, StrategyInit, StrategyOptions};
use crate::study::storage::OpenedStudy;
use crate::study::{Exploration, Journal, Outcome, Prior, Study, StudyHeader, StudyLog};
use crate::workload::Workload;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `tune`.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Shared options.
    pub common: Common,
    /// The command-line arguments of the study, recorded in its journal for `--resume DIR`.
    pub args: Vec<String>,
    /// Strategy name.
    pub strategy: String,
    /// Options of the model-based strategies.
    pub strategy_options: StrategyOptions,
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
    pub goal: Goal,
    /// Racing and screening runs.
    pub exploration: Exploration,
    /// `--prior`.
    pub prior: PriorChoice,
    /// `--storage URL --study NAME`: the study's state lives in a database (or `journal:DIR`)
    /// instead of the output folder's journal.jsonl.
    pub storage: Option<StoredStudy>,
}

/// A study kept in a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStudy {
    /// `--storage`.
    pub url: String,
    /// `--study`.
    pub name: String,
    /// `--resume` given: continue it rather than create it.
    pub resume: bool,
}

/// What a tune will do, resolved from the options and the target.
pub(super) struct Plan {
    pub(super) protocol: ProtocolSettings,
    pub(super) space: Space,
    pub(super) budget: usize,
    pub(super) baseline_batch: u32,
    /// The strategy's name and what it was built from: a fleet's workers build it anew.
    pub(super) strategy_name: String,
    pub(super) init: StrategyInit,
    pub(super) prior: PriorUsed,
    pub(super) exploration: Exploration,
}

/// Runs `tune`: baseline, search, reports. Returns the report and the output folder.
pub fn run(
    o: &TuneOptions,
    opened: Option<OpenedStudy>,
    out: &mut dyn Write,
) -> Result<(Report, PathBuf)> {
    validate(o)?;
    quiet_interrupts(o.common.quiet);
    let t = Target::resolve(&o.common)?;
    let opened = match (opened, &o.storage) {
        (Some(d), _) => Some(d),
        (None, Some(s)) if s.resume => Some(OpenedStudy::open(&s.url, &s.name)?),
        _ => None,
    };
    let o = &with_stored_prior(o, opened.as_ref())?;
    let plan = Plan::new(&t, o)?;
    let header = plan.header(&t, o);
    let Started {
        dir,
        mut device,
        mut workload,
        log,
        prior,
    } = start(&t, o, &header, opened)?;
    let place = log.place();
    let facts = DeviceFacts {
        baseline_kind: device.baseline_kind(),
        notes: Vec::new(),
        emulated: device.emulated(),
        backend: t.kind(),
        boards: Vec::new(),
        row_boards: Vec::new(),
    };
    let mut study = Study {
        journal: Some(log),
        prior,
        ..plan.study(&mut *device, &mut *workload, o, plan.budget)
    };
    let progress = Progress::new(o.common.quiet, plan.budget);
    let outcome = study
        .run(|e| progress.event(&e))
        .with_context(|| format!("tuning stopped; what was measured is in {place}"))?;
    progress.finish();
    let facts = DeviceFacts {
        notes: study.device.notes(),
        ..facts
    };
    let rep = reports(&t, &plan, o, &outcome, &mut *study.strategy, facts, &dir)?;
    print(o, &rep, out)?;
    if !o.common.quiet {
        eprintln!("reports written to {}", dir.display());
    }
    finish(&outcome, &dir, &machine_local(o))?;
    Ok((rep, dir))
}

/// What the device (or a stored study's records) said of a study, for its report.
pub(super) struct DeviceFacts {
    pub(super) baseline_kind: crate::device::BaselineKind,
    pub(super) notes: Vec<String>,
    pub(super) emulated: bool,
    pub(super) backend: crate::device::BackendKind,
    /// The boards of a study measured by several (empty for one).
    pub(super) boards: Vec<crate::report::BoardShare>,
    /// With several boards: the board whose figure each measured configuration's row shows.
    pub(super) row_boards: Vec<String>,
}

/// Builds the report of `outcome` and writes its files and plots into `dir`.
pub(super) fn reports(
    t: &Target,
    plan: &Plan,
    o: &TuneOptions,
    outcome: &Outcome,
    strategy: &mut dyn Strategy,
    facts: DeviceFacts,
    dir: &Path,
) -> Result<Report> {
    let prior_words = plan.prior.words();
    let ctx = ReportContext {
        model: t.model_id(),
        device: t.device_id(),
        backend: facts.backend,
        strategy: strategy.name(),
        seed: o.common.seed,
        protocol: plan.protocol,
        grid_size: plan.space.size(),
        budget: plan.budget,
        baseline_kind: facts.baseline_kind,
        goal: o.goal,
        exploration: plan.exploration,
        prior: &prior_words,
    };
    let mut rep = Report::build(&ctx, outcome);
    rep.notes = facts.notes;
    rep.emulated = facts.emulated;
    rep.board_spread_pct = crate::report::spread_pct(&facts.boards);
    if facts.boards.len() > 1 {
        for (row, board) in rep.measurements.iter_mut().zip(facts.row_boards) {
            row.board = Some(board);
        }
    }
    rep.boards = facts.boards;
    rep.notes.extend(board_file_note(t, &rep));
    if !t.rig.sets_clocks() {
        // Same clocks as the baseline: a "frequency saving" would only be run-to-run noise.
        rep.saving_same_batch_pct = None;
        rep.baseline_same_batch = None;
    }
    if !o.common.quiet {
        for n in &rep.notes {
            eprintln!("note: {n}");
        }
    }
    let surrogate = surrogate(strategy, outcome, &plan.space);
    let known = known_grid(t, &plan.space, plan.protocol.inferences);
    draw(&mut rep, outcome, &known, surrogate.as_deref(), dir)?;
    write_reports(&rep, t.rig.as_ref(), dir)?;
    Ok(rep)
}

/// What `tune` prints on stdout: report.json with `--json`, else the summary (after a line
/// saying what a resumed study took from its journal).
fn print(o: &TuneOptions, rep: &Report, out: &mut dyn Write) -> Result<()> {
    if o.json {
        writeln!(out, "{}", serde_json::to_string_pretty(rep)?)?;
        return Ok(());
    }
    let resumed = match (&o.resume, &o.storage) {
        (Some(d), _) => Some((format!("in {}", d.display()), "its journal")),
        (None, Some(s)) if s.resume => Some((
            format!("`{}` in {}", s.name, crate::study::storage::redact(&s.url)),
            "the storage",
        )),
        _ => None,
    };
    if let Some((place, from)) = resumed {
        let now = rep.measured_configs.saturating_sub(rep.resumed_configs);
        writeln!(
            out,
            "resumed the study {place}: {} measurement{} from {from}, {}",
            rep.resumed_configs,
            if rep.resumed_configs == 1 { "" } else { "s" },
            match now {
                // A finished study: the reports are written again from what it holds.
                0 => "nothing left to measure (the reports are written again from them)".into(),
                n => format!("{n} measured now"),
            }
        )?;
    }
    write!(out, "{}", summary(rep))?;
    Ok(())
}

/// `--prior stored` (what a study made with `--prior DIR` records) filled in from the study it
/// resumes: its journal's header, or the storage's (`opened`).
fn with_stored_prior(o: &TuneOptions, opened: Option<&OpenedStudy>) -> Result<TuneOptions> {
    if o.prior != PriorChoice::Stored(None) {
        return Ok(o.clone());
    }
    let header = match (&o.resume, opened) {
        (Some(d), _) => crate::study::journal::recorded_header(d)?,
        (None, Some(d)) => Some(d.view.header.clone()),
        _ => None,
    };
    Ok(TuneOptions {
        prior: header.map_or(o.prior.clone(), |h| o.prior.from_study(&h)),
        ..o.clone()
    })
}

/// A tune ready to measure: its folder, device, workload and where its records go.
struct Started {
    dir: PathBuf,
    device: Box<dyn Device>,
    workload: Box<dyn Workload>,
    log: Box<dyn StudyLog>,
    prior: Prior,
}

/// Opens the study's records and the device. A resumed study is read (and checked) before the
/// board is touched; a fresh one is made once the device has opened, so a refused start leaves
/// nothing behind.
fn start(
    t: &Target,
    o: &TuneOptions,
    header: &StudyHeader,
    opened: Option<OpenedStudy>,
) -> Result<Started> {
    if let Some(s) = &o.storage {
        return start_stored(t, o, s, header, opened);
    }
    let resumed = match &o.resume {
        Some(d) => Some(Journal::resume(&d.join("journal.jsonl"), header)?),
        None => None,
    };
    let dir = match &o.resume {
        Some(d) => d.clone(),
        None => default_out_dir(t, o)?,
    };
    let (device, workload) = t.open(&o.common)?;
    let (journal, prior) = match resumed {
        Some(jp) => jp,
        None => {
            create_dir(&dir)?;
            (
                Journal::create(&dir.join("journal.jsonl"), header)?,
                Prior::default(),
            )
        }
    };
    started(o, dir, device, workload, Box::new(journal), prior)
}

/// `--out`, else a fresh reports/<model>-<device>-<timestamp>/.
fn default_out_dir(t: &Target, o: &TuneOptions) -> Result<PathBuf> {
    new_out_dir(o.out.as_deref(), || {
        fresh_dir(
            Path::new("reports"),
            &format!("{}-{}", t.model_id(), t.device_id()),
        )
    })
}

/// `start` for a study in a storage: its records there, its reports in the output folder. A
/// resumed study comes `opened` (read once, by the command line's merge or by `run`).
fn start_stored(
    t: &Target,
    o: &TuneOptions,
    s: &StoredStudy,
    header: &StudyHeader,
    opened: Option<OpenedStudy>,
) -> Result<Started> {
    use crate::study::storage;
    storage::check_name(&s.name)?;
    let (mut db, view) = match opened {
        Some(d) => (d.storage, Some(d.view)),
        None => (storage::create_or_open(&s.url)?, None),
    };
    let prior = if let Some(v) = view {
        let place = PathBuf::from(format!("study `{}` in {}", s.name, storage::redact(&s.url)));
        Prior::from_records(
            &place,
            &v.header,
            v.records.iter().map(|r| &r.record),
            header,
        )?
    } else {
        Prior::default()
    };
    let dir = default_out_dir(t, o)?;
    let (device, workload) = t.open(&o.common)?;
    if !s.resume {
        db.create_study(&s.name, header)?;
    }
    create_dir(&dir)?;
    let log = storage::StoredLog {
        storage: db,
        name: s.name.clone(),
        origin: storage::Origin {
            board: storage::machine_identity(&o.common.board.sysfs_root),
            worker: crate::study::storage::process_identity(),
            backend: t.kind().to_string(),
        },
    };
    started(o, dir, device, workload, Box::new(log), prior)
}

fn started(
    o: &TuneOptions,
    dir: PathBuf,
    device: Box<dyn Device>,
    workload: Box<dyn Workload>,
    log: Box<dyn StudyLog>,
    prior: Prior,
) -> Result<Started> {
    if !o.common.quiet {
        for w in &prior.warnings {
            eprintln!("warning: {w}");
        }
    }
    if let Some(json) = device.restore_record() {
        // A record of what the board was before; the live snapshot is the state file.
        write_file(&dir, "restore.json", &json)?;
    }
    Ok(Started {
        dir,
        device,
        workload,
        log,
        prior,
    })
}

/// Checks the options no target is needed for.
fn validate(o: &TuneOptions) -> Result<()> {
    super::check_common(&o.common)?;
    let so = &o.strategy_options;
    if !(so.ei_stop.is_finite() && so.ei_stop >= 0.0) {
        return Err(UsageError(format!(
            "--ei-stop must be a fraction of zero or more (0.002 = 0.2 %), got {}",
            so.ei_stop
        ))
        .into());
    }
    if let Acquisition::Lcb { kappa } = so.acquisition {
        if !(kappa.is_finite() && kappa > 0.0) {
            return Err(UsageError(format!("--kappa must be positive, got {kappa}")).into());
        }
    }
    super::check_goal(&o.goal)?;
    super::check_budget(o.budget)?;
    Ok(())
}

impl Plan {
    pub(super) fn new(t: &Target, o: &TuneOptions) -> Result<Plan> {
        let mut protocol = super::options::protocol_on(&o.common, t.kind());
        let recorded = t.rig.recorded().is_some();
        if recorded {
            // A recorded row is a measured run; there is nothing to warm up, and no window to
            // lengthen (asking to would run out of readings).
            protocol.warmup_inferences = 0;
            if protocol.min_window_s > 0.0 {
                return Err(UsageError(format!(
                    "--min-window-s {}: a recorded table's rows are runs as they were recorded, and none can be lengthened; leave --min-window-s out with --table",
                    protocol.min_window_s
                ))
                .into());
            }
        }
        if o.goal.needs_idle_power() {
            if recorded {
                return Err(UsageError(
                    "--rate counts the idle power between inferences, and a recorded table has none; tune at a rate on the twin, a board, a GPU or a host".into(),
                )
                .into());
            }
            if protocol.idle_window_s == 0.0 {
                protocol.idle_window_s = crate::measure::protocol::IDLE_WINDOW_S;
            }
        }
        let space = space(t, o)?;
        let grid = space.size();
        let exhaustive = o.strategy.trim().eq_ignore_ascii_case("grid");
        let budget = o.budget.unwrap_or(match (exhaustive, recorded) {
            (true, _) => grid,
            (false, true) => crate::study::table_budget(grid),
            (false, false) => crate::study::default_budget(grid),
        });
        let baseline_batch = baseline_batch(t, o, &space)?;
        let (grid_prior, prior) =
            super::prior::resolve(&o.prior, t, &space, &o.goal, protocol.inferences)?;
        let init = StrategyInit::for_space(&space, o.common.seed, budget)
            .with_options(StrategyOptions {
                pareto: o.goal.pareto,
                ..o.strategy_options
            })
            .with_prior(grid_prior);
        let strategy_name = o.strategy.trim().to_ascii_lowercase();
        strategy::make(&strategy_name, &init)?;
        let pools = strategy::pools_readings(&strategy_name);
        let exploration = o
            .exploration
            .for_study(&o.goal, exhaustive, recorded, pools);
        Ok(Plan {
            protocol,
            space,
            budget,
            baseline_batch,
            strategy_name,
            init,
            prior,
            exploration,
        })
    }

    /// The study of this plan on `device` (budget `budget`; no records, no prior yet).
    pub(super) fn study<'a>(
        &'a self,
        device: &'a mut dyn Device,
        workload: &'a mut dyn Workload,
        o: &TuneOptions,
        budget: usize,
    ) -> Study<'a> {
        Study {
            space: &self.space,
            device,
            workload,
            strategy: self.make_strategy(),
            budget,
            protocol: self.protocol,
            baseline_batch: self.baseline_batch,
            journal: None,
            prior: Prior::default(),
            interrupt: Some(interrupt_flag()),
            goal: o.goal,
            exploration: self.exploration,
        }
    }

    /// A fresh strategy of the plan (the same every time).
    pub(super) fn make_strategy(&self) -> Box<dyn Strategy> {
        strategy::make(&self.strategy_name, &self.init).expect("checked by Plan::new")
    }

    /// What identifies the study this plan runs.
    pub(super) fn header(&self, t: &Target, o: &TuneOptions) -> StudyHeader {
        StudyHeader {
            model: t.model_id().into(),
            device: t.device_id().into(),
            backend: t.kind(),
            strategy: self.make_strategy().name().into(),
            seed: o.common.seed,
            budget: self.budget,
            baseline_batch: self.baseline_batch,
            protocol: self.protocol,
            space: self.space.clone(),
            goal: o.goal,
            exploration: self.exploration,
            prior: self.prior.words(),
            prior_grid: self.prior.to_store(),
            args: o.args.clone(),
        }
    }
}

/// The search space: the table's columns on replay, the GPU's clocks and batch sizes on NVML,
/// the board's tables (and its memory clock with `--emc`) otherwise.
fn space(t: &Target, o: &TuneOptions) -> Result<Space> {
    if let Some(table) = t.rig.recorded() {
        check_table_goal(table, &o.goal)?;
    }
    t.rig.space(o.batch_sizes.as_deref(), &o.fixes)
}

/// A goal a table can judge: time for anything but plain energy, the batch size for a batch's
/// latency.
fn check_table_goal(table: &ReplayTable, goal: &Goal) -> Result<(), UsageError> {
    if goal.needs_time() && !table.has_times() {
        return Err(UsageError(
            "--objective edp/time, the limits and --pareto need each row's time: the table has no `time_s` for every row (give `time_s`, or `power_w` and `time_s`)".into(),
        ));
    }
    if goal.needs_batch_latency() && !table.knobs.contains(&Knob::BatchSize) {
        return Err(UsageError(
            "--max-latency-ms and --pareto are about one batch's latency, and the table has no `batch_size` column; --min-throughput limits the time per inference".into(),
        ));
    }
    Ok(())
}

/// `--baseline-batch`, by default the model's smallest batch size, or the space's smallest when
/// it lacks that one (a table without a batch column has batch 0: none).
fn baseline_batch(t: &Target, o: &TuneOptions, space: &Space) -> Result<u32> {
    let batches = space.batch_sizes();
    let smallest = t.model().map(|m| m.paper.batch_sizes[0]);
    let b = o.baseline_batch.unwrap_or(
        smallest
            .filter(|b| batches.contains(b))
            .unwrap_or(batches[0]),
    );
    if !batches.contains(&b) {
        return Err(UsageError(format!(
            "--baseline-batch {b} is not a batch size of {} here ({batches:?})",
            t.model_id()
        ))
        .into());
    }
    Ok(b)
}

/// The grid's ground truth when it is known (the twin's noiseless energies, a table's means);
/// on real hardware it is what is being searched for.
fn known_grid(t: &Target, space: &Space, inferences: u32) -> Option<(Vec<Sample>, &'static str)> {
    let (known, words) = t.rig.known_grid(space, inferences)?;
    let grid = space
        .points()
        .zip(known)
        // A hole in a table has no energy to draw.
        .filter(|(_, (e, _))| e.is_finite())
        .map(|(p, (energy_j, time_s))| Sample {
            config: space.config(&p),
            energy_j,
            time_s,
        })
        .collect();
    Some((grid, words))
}

/// The strategy's prediction at every configuration, when it has a model.
fn surrogate(strategy: &mut dyn Strategy, outcome: &Outcome, space: &Space) -> Option<Vec<Sample>> {
    let points: Vec<_> = space.points().collect();
    let energies = strategy.predict(&outcome.history(space), &points)?;
    Some(
        energies
            .into_iter()
            .zip(&points)
            .map(|(energy_j, p)| Sample {
                config: space.config(p),
                energy_j,
                time_s: 0.0,
            })
            .collect(),
    )
}

/// Draws the plots into `dir` and lists them in the report.
fn draw(
    rep: &mut Report,
    outcome: &Outcome,
    known: &Option<(Vec<Sample>, &'static str)>,
    surrogate: Option<&[Sample]>,
    dir: &Path,
) -> Result<()> {
    let measured: Vec<Sample> = outcome
        .measured
        .iter()
        .map(|m| {
            // Screened runs drawn at the full run's length, like everything else.
            let full = m.measurement.at_length(outcome.inferences);
            Sample {
                config: m.config,
                energy_j: full.energy_j,
                time_s: full.time_s,
            }
        })
        .collect();
    let trace = outcome.trace_j();
    let input = PlotInput {
        title: format!("{} on {}", rep.model, rep.device),
        inferences: rep.inferences,
        measured: &measured,
        best: outcome.best().map(|b| b.config),
        trace_j: &trace,
        baseline: Some((
            outcome.baseline.energy_j,
            format!(
                "{}{}",
                rep.baseline.kind.short(),
                report::at_batch(rep.baseline.batch_size)
            ),
        )),
        grid: known
            .as_ref()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, what)| (g.as_slice(), *what)),
        surrogate,
    };
    rep.plots = plot::draw_all(&input, dir, &[0, 1, 2, 3])
        .map_err(|e| anyhow::anyhow!("drawing the plots in {}: {e}", dir.display()))?;
    let pareto = dir.join("pareto.svg");
    if plot::pareto(rep, &pareto)
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", pareto.display()))?
    {
        rep.plots.push("pareto.svg".into());
    }
    Ok(())
}

/// Why a replayed recommendation gets no board files: its values are not the board's, or the
/// catalogue does not know the board.
fn board_file_note(t: &Target, rep: &Report) -> Option<String> {
    t.rig.recorded()?;
    rep.best.as_ref()?;
    match t.board() {
        None => Some(format!(
            "{} is not a catalogue board, so no nvpmodel.conf or apply-profile.sh was written (profile.toml records the recommendation)",
            rep.device
        )),
        Some(b) => {
            let off = profile::off_the_board(rep, b);
            (!off.is_empty()).then(|| format!(
                "the recommendation's {} {} not in the {}'s tables, so no nvpmodel.conf or apply-profile.sh was written, and `edgetune apply` refuses profile.toml (the values are the table's)",
                off.join(", "),
                if off.len() == 1 { "is" } else { "are" },
                b.board.name
            ))
        }
    }
}

/// Writes report.json, report.md, profile.toml, and for a board nvpmodel.conf and
/// apply-profile.sh (for a GPU an apply-profile.sh for nvidia-smi), and pareto.csv.
fn write_reports(rep: &Report, rig: &dyn Rig, dir: &Path) -> Result<()> {
    write_json(dir, "report.json", rep)?;
    write_file(dir, "report.md", &report::markdown::render(rep))?;
    // A table's values need not be the board's: board files only for values it has.
    let board = rig
        .board()
        .filter(|b| rig.recorded().is_none() || profile::off_the_board(rep, b).is_empty());
    let (nvpmodel, script) = match (rig.gpu(), board) {
        (Some(spec), _) => (None, profile::nvml_snippet(rep, spec)),
        (_, Some(b)) => (
            profile::nvpmodel_block(rep, b, 10),
            profile::shell_snippet(rep, b),
        ),
        (_, None) => (None, None),
    };
    // The profile's header names only the files written beside it.
    let beside = profile::Beside {
        script: script.is_some(),
        nvpmodel: nvpmodel.is_some(),
        appliable: board.is_some() && rig.gpu().is_none(),
    };
    if let Some(p) = profile::profile_toml(rep, beside) {
        write_file(dir, "profile.toml", &p)?;
    }
    if let Some(b) = nvpmodel {
        write_file(dir, "nvpmodel.conf", &b)?;
    }
    if let Some(b) = script {
        write_file(dir, "apply-profile.sh", &b)?;
    }
    if !rep.pareto.is_empty() {
        write_file(dir, "pareto.csv", &report::pareto_csv(&rep.pareto)?)?;
    }
    Ok(())
}

/// The options of this run that a journal does not keep (what runs, where it writes), as a
/// resume must give them again; empty when there are none.
fn machine_local(o: &TuneOptions) -> String {
    let mut again = String::new();
    let mut add = |flag: &str, v: &str| {
        // A value a shell cannot take as one word (a NUL) is left for the user to give.
        if let Ok(q) = shlex::try_quote(v) {
            again += &format!(" {flag} {q}");
        }
    };
    if let Some(c) = &o.common.workload_cmd {
        add("--workload-cmd", c);
    }
    let root = &o.common.board.sysfs_root;
    if root != Path::new("/") {
        add("--sysfs-root", &root.display().to_string());
    }
    if let Some(f) = &o.common.board.state_file {
        add("--state-file", &f.display().to_string());
    }
    if let Some(c) = &o.common.catalog_dir {
        add("--catalog", &c.display().to_string());
    }
    again
}

/// The exit status of a tune whose reports are written: a failure when the workload failed
/// everywhere, an interrupt when one stopped it.
fn finish(outcome: &Outcome, dir: &Path, again: &str) -> Result<()> {
    if outcome.measured.is_empty() && !outcome.failed.is_empty() {
        return Err(anyhow::anyhow!(
            "the workload failed at every configuration tried ({}); the errors are in {}",
            outcome.failed.len(),
            dir.join("report.md").display()
        ));
    }
    if outcome.interrupted() {
        return Err(Interrupted(format!(
            "stopped after {} measurement{}; partial reports are in {}; continue with --resume {}{again}",
            outcome.measured.len(),
            if outcome.measured.len() == 1 { "" } else { "s" },
            dir.display(),
            dir.display()
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sim::{Noise, SimBoard};
    use crate::catalog::Catalog;
    use crate::device::FreqSetting;
    use crate::study::{Measured, StopReason};

    #[test]
    fn an_interrupted_tune_counts_its_measurements_in_words() {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let sim = SimBoard::new(b, Noise::Off);
        let (mut d, mut w) = (sim.device(), sim.workload(m).unwrap());
        let p = ProtocolSettings {
            inferences: 64,
            ..Default::default()
        };
        let baseline = crate::measure::measure(&mut d, &mut w, &FreqSetting::Dvfs, 4, &p).unwrap();
        let one = Measured {
            config: crate::space::Config::new(1_479_000, 921_600_000, 4),
            measurement: baseline.clone(),
            from_journal: false,
        };
        let mut o = Outcome {
            baseline,
            baseline_same_batch: None,
            measured: vec![one.clone()],
            best: Some(0),
            recommended: vec![0],
            stop_reason: StopReason::Interrupted,
            resumed: 0,
            failed: Vec::new(),
            inferences: 64,
            best_full: true,
            choice: Default::default(),
            surrogate: None,
        };
        let said = |o: &Outcome| finish(o, Path::new("out"), "").unwrap_err().to_string();
        assert!(
            said(&o).contains("stopped after 1 measurement;"),
            "{}",
            said(&o)
        );
        o.measured.push(one);
        assert!(
            said(&o).contains("stopped after 2 measurements;"),
            "{}",
            said(&o)
        );
    }
}

//! `edgetune worker`: one board's part in a study kept in a database. The study's options come
//! from the storage (recorded by `study create`); the worker brings its own backend, workload
//! and board identity, checks that it measures the same study, and claims, measures and writes
//! configurations until the study is done (see [`crate::study::fleet`]).

use super::signals::quiet_interrupts;
use super::target::Target;
use super::tune::{Plan, TuneOptions};
use crate::error::{Interrupted, UsageError};
use crate::study::fleet::{self, Fleet, WorkerReport};
use crate::study::storage::{self, OpenedStudy, Origin, StorageUrl, StudyView};
use crate::study::Prior;
use anyhow::{Context, Result};
use std::io::Write;

/// Default lease of a claim: a heartbeat every 20 s; a worker silent for a minute is gone.
pub const DEFAULT_LEASE_S: f64 = 60.0;

/// Options of `worker`.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The study's options (from the storage, with this worker's own given now); its
    /// `storage` names the study.
    pub tune: TuneOptions,
    /// `--board-id`: this board's name in the study; else its serial number or machine id.
    pub board_id: Option<String>,
    /// `--lease-s`.
    pub lease_s: f64,
}

/// FNV-1a of a board's name: its own noise stream on the twin.
fn salt(board: &str) -> u64 {
    board.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `--board-id`, checked, else the machine's identity.
fn board_name(o: &WorkerOptions) -> Result<String> {
    match &o.board_id {
        Some(b) => {
            storage::check_name(b).map_err(|_| {
                UsageError(format!(
                    "--board-id `{b}`: 1-64 of letters, digits, `.`, `_`, `-`"
                ))
            })?;
            Ok(b.clone())
        }
        None => Ok(storage::machine_identity(&o.tune.common.board.sysfs_root)),
    }
}

/// This board's tune options for the stored study `view`: its own noise stream on the twin,
/// the prior stored with the study, and no budget but the study's.
fn tune_options(o: &WorkerOptions, view: &StudyView, board: &str) -> Result<TuneOptions> {
    let mut tune = o.tune.clone();
    tune.common.noise_salt = salt(board);
    tune.prior = tune.prior.from_study(&view.header);
    // The budget is the study's: a worker's own is refused, as its help says.
    if let Some(b) = tune.budget.filter(|b| *b != view.header.budget) {
        return Err(UsageError(format!(
            "--budget {b}: study `{}` has a budget of {} measurements, and a worker takes it from the study; leave --budget out",
            view.name, view.header.budget
        ))
        .into());
    }
    Ok(tune)
}

/// Runs a worker until its study is done; prints what it measured. `opened`: the stored study
/// as the command line's merge read it (else it is opened here).
pub fn run(
    o: &WorkerOptions,
    opened: Option<OpenedStudy>,
    out: &mut dyn Write,
) -> Result<WorkerReport> {
    let Some(s) = o.tune.storage.clone() else {
        return Err(UsageError(
            "worker needs --storage URL and --study NAME (made by `edgetune study create`)".into(),
        )
        .into());
    };
    if !StorageUrl::parse(&s.url)?.shared() {
        return Err(storage::StorageError::NoClaims(storage::redact(&s.url)).into());
    }
    if !(o.lease_s.is_finite() && o.lease_s >= 0.3) {
        return Err(UsageError(format!(
            "--lease-s must be 0.3 s or more, got {}",
            o.lease_s
        ))
        .into());
    }
    quiet_interrupts(o.tune.common.quiet);
    let OpenedStudy {
        storage: mut db,
        view,
    } = match opened {
        Some(o) => o,
        None => OpenedStudy::open(&s.url, &s.name)?,
    };
    let board = board_name(o)?;
    let tune = tune_options(o, &view, &board)?;
    let t = Target::resolve(&tune.common)?;
    let plan = Plan::new(&t, &tune)?;
    let mut header = plan.header(&t, &tune);
    // Workers bring their own backend: everything else must be the study's. A GPU is named by
    // its index on its own host (gpu:0, gpu:1); the space (its clocks, the batch sizes) says
    // whether it is the same kind.
    header.backend = view.header.backend;
    if t.kind() == crate::device::BackendKind::Nvml && view.header.device.starts_with("gpu:") {
        header.device = view.header.device.clone();
    }
    let place =
        std::path::PathBuf::from(format!("study `{}` in {}", s.name, storage::redact(&s.url)));
    Prior::from_records(&place, &view.header, std::iter::empty(), &header)
        .context("this worker's options make another study than the stored one")?;
    let origin = Origin {
        board,
        worker: crate::study::storage::process_identity(),
        backend: t.kind().to_string(),
    };
    let (mut device, mut workload) = t.open(&tune.common)?;
    let mut study = plan.study(&mut *device, &mut *workload, &tune, view.header.budget);
    let url = s.url.clone();
    let reconnect = move || storage::open(&url);
    let make = || plan.make_strategy();
    let mut f = Fleet {
        storage: &mut *db,
        reconnect: &reconnect,
        name: &s.name,
        origin: origin.clone(),
        lease_s: o.lease_s,
        make_strategy: &make,
    };
    let quiet = tune.common.quiet;
    let rep = fleet::work(&mut study, &mut f, &mut |line| {
        if !quiet {
            eprintln!("{}: {line}", origin.board);
        }
    })
    .with_context(|| {
        format!(
            "worker stopped; what it measured is in study `{}` in {}",
            s.name,
            storage::redact(&s.url)
        )
    })?;
    writeln!(
        out,
        "{}",
        crate::report::summary::worker_line(&origin.board, &s.name, &rep)
    )?;
    if rep.interrupted {
        return Err(Interrupted(format!(
            "worker stopped; its claim went back to the study; start it again to go on: edgetune worker --storage {} --study {}",
            storage::redact(&s.url), s.name
        ))
        .into());
    }
    Ok(rep)
}

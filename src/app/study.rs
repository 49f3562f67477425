//! `edgetune study create|list|report`: make a study in a storage for workers to measure, list
//! a storage's studies with their progress, and write a study's report files (the same files
//! `tune` writes, from the stored measurements).

use super::output::create_dir;
use super::target::Target;
use super::tune::{self, DeviceFacts, Plan, TuneOptions};
use crate::device::BackendKind;
use crate::error::UsageError;
use crate::report::{summary::summary, Report};
use crate::study::fleet;
use crate::study::storage::{self, StudyView};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

fn stored(o: &TuneOptions) -> Result<&tune::StoredStudy> {
    o.storage
        .as_ref()
        .ok_or_else(|| UsageError("give --storage URL and --study NAME".into()).into())
}

/// `study create`: records the study's header (its options as `tune` takes them) without
/// measuring anything.
pub fn create(o: &TuneOptions, out: &mut dyn Write) -> Result<()> {
    let s = stored(o)?;
    if !storage::StorageUrl::parse(&s.url)?.shared() {
        return Err(storage::StorageError::NoClaims(storage::redact(&s.url)).into());
    }
    super::check_common(&o.common)?;
    super::check_goal(&o.goal)?;
    super::check_budget(o.budget)?;
    // It measures nothing: which backend a worker will measure with is the worker's to say.
    let quiet = super::Common {
        quiet: true,
        ..o.common.clone()
    };
    let t = Target::resolve(&quiet)?;
    let plan = Plan::new(&t, o)?;
    let header = plan.header(&t, o);
    let mut db = storage::create_or_open(&s.url)?;
    db.create_study(&s.name, &header)?;
    writeln!(
        out,
        "created study `{}` in {}: {} on {}, {} strategy, {} measurements of a {}-configuration grid\nstart a worker on each board: edgetune worker --storage {} --study {}",
        s.name,
        storage::redact(&s.url),
        header.model,
        header.device,
        header.strategy,
        header.budget,
        plan.space.size(),
        storage::redact(&s.url),
        s.name
    )?;
    Ok(())
}

/// `study list`: every study in the storage with its progress.
pub fn list(url: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut db = storage::open(url)?;
    let studies = db.list()?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&studies)?)?;
        return Ok(());
    }
    if studies.is_empty() {
        writeln!(
            out,
            "no studies in {}; make one with `edgetune study create`",
            storage::redact(url)
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<24} {:<14} {:<12} {:<10} {:>9} {:>8} {:>6}",
        "study", "model", "device", "strategy", "measured", "running", "boards"
    )?;
    for s in studies {
        if let Some(why) = &s.unreadable {
            writeln!(out, "{:<24} unreadable: {why}", s.name)?;
            continue;
        }
        writeln!(
            out,
            "{:<24} {:<14} {:<12} {:<10} {:>9} {:>8} {:>6}",
            s.name,
            s.model,
            s.device,
            s.strategy,
            format!("{}/{}", s.measured, s.budget),
            s.in_progress,
            s.boards
        )?;
    }
    Ok(())
}

/// The backend that measured a study: its records' (the first record's when workers differ).
fn measured_by(view: &StudyView) -> BackendKind {
    view.records
        .first()
        .and_then(|r| {
            serde_json::from_value(serde_json::Value::String(r.origin.backend.clone())).ok()
        })
        .unwrap_or(view.header.backend)
}

/// `study report`: the report files of the stored study `view` (`o`: its options), in
/// `out_dir` (default reports/study-<name>-<timestamp>/, never an existing folder with files).
pub fn report(
    o: &TuneOptions,
    view: &StudyView,
    out_dir: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(Report, PathBuf)> {
    let s = stored(o)?;
    let (rep, dir) = build_report(o, view, &mut || {
        let dir = super::output::new_out_dir(out_dir, || {
            super::output::fresh_dir(Path::new("reports"), &format!("study-{}", s.name))
        })?;
        create_dir(&dir)?;
        Ok(dir)
    })?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(out, "{}", summary(&rep))?;
    }
    eprintln!("reports written to {}", dir.display());
    Ok((rep, dir))
}

/// With several boards: how their figures were put together.
fn judged_on(outcome: &crate::study::Outcome, boards: usize) -> Option<String> {
    (boards > 1).then(|| {
        let how = "figures are in the fleet's common units: each board's readings divided by its fitted offset (the boards table), and the runs at the full protocol (the DVFS baselines, the confirmations) pooled over the boards that measured them";
        match outcome.best_full {
            true => format!("{how}; the savings compare the pooled recommendation with the pooled DVFS baselines"),
            false => format!("{how}; the savings compare the recommendation's exploring figure with the pooled DVFS baselines (the fleet has not measured it at the full protocol yet)"),
        }
    })
}

fn no_baseline(s: &tune::StoredStudy) -> UsageError {
    UsageError(format!(
        "study `{}` in {} has no baseline yet: start a worker first",
        s.name,
        storage::redact(&s.url)
    ))
}

/// The report of the stored study `view` (`o`: its options) and the folder its files were
/// written into, which `make_dir` makes once there is a report to write (a study without a
/// baseline gets no folder): what `study report` writes and `serve` shows.
pub fn build_report(
    o: &TuneOptions,
    view: &StudyView,
    make_dir: &mut dyn FnMut() -> Result<PathBuf>,
) -> Result<(Report, PathBuf)> {
    let s = stored(o)?;
    let backend = measured_by(view);
    let mut common = o.common.clone();
    // Only the catalogue's board and model are needed here, never the hardware.
    if matches!(backend, BackendKind::Jetson | BackendKind::Sim) {
        common.backend = Some(BackendKind::Sim);
    }
    common.quiet = true;
    let t =
        Target::resolve(&common).context("resolving the study's board and model for its report")?;
    let o = TuneOptions {
        common,
        prior: o.prior.from_study(&view.header),
        ..o.clone()
    };
    let plan = Plan::new(&t, &o)?;
    let (mut device, mut workload) = t.open(&o.common)?;
    let mut study = crate::study::Study {
        interrupt: None,
        ..plan.study(&mut *device, &mut *workload, &o, view.header.budget)
    };
    let outcome = fleet::outcome(&mut study, view).ok_or_else(|| no_baseline(s))?;
    let dir = make_dir()?;
    let boards = crate::report::boards(view, plan.baseline_batch, &plan.space, &plan.protocol);
    let facts = DeviceFacts {
        baseline_kind: crate::device::BaselineKind::Dvfs,
        notes: judged_on(&outcome, boards.len()).into_iter().collect(),
        emulated: false,
        backend,
        row_boards: crate::report::row_boards(view, &plan.space),
        // One board's study reports as `tune` does.
        boards: if boards.len() > 1 { boards } else { Vec::new() },
    };
    let rep = tune::reports(&t, &plan, &o, &outcome, &mut *study.strategy, facts, &dir)?;
    Ok((rep, dir))
}

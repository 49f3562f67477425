//! `edgetune sweep`: every configuration (or some batch sizes), in parallel on the twin; on an
//! NVIDIA GPU one after another through the study with the grid strategy, so a device sweep has
//! the study's rules for interrupts, restoring and failing workloads.

use super::output::{create_dir, fresh_dir, new_out_dir, write_file, write_json};
use super::progress::SweepLog;
use super::signals::{interrupt_flag, quiet_interrupts};
use super::target::Target;
use super::Common;
use crate::backend::sim::SimBoard;
use crate::catalog::{Board, Model};
use crate::device::{BackendKind, Device, FreqSetting};
use crate::error::{Interrupted, UsageError};
use crate::measure::protocol::measure_or_stop;
use crate::measure::{measure, Measurement, ProtocolSettings};
use crate::report::plot::{self, PlotInput, Sample};
use crate::report::sweep::{self as render, SweepBaseline, SweepReport, SweepRow};
use crate::space::{Knob, Space};
use crate::strategy::{self, StrategyInit};
use crate::study::{Prior, StopReason, Study};
use crate::workload::Workload;
use anyhow::Result;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `sweep`.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Shared options.
    pub common: Common,
    /// Only this batch size.
    pub batch: Option<u32>,
    /// Only these batch sizes (any positive sizes on an NVML GPU; the model's elsewhere).
    pub batch_sizes: Option<Vec<u64>>,
    /// Knobs held at one value (`--fix`): a slice of the grid.
    pub fixes: Vec<(Knob, u64)>,
    /// Output folder; `None` for `reports/sweep-<model>-<device>-<timestamp>/`.
    pub out: Option<PathBuf>,
    /// Print sweep.json to stdout.
    pub json: bool,
}

/// What a sweep measured: the grid rows, the DVFS entries, and why it stopped early if it did.
struct Swept {
    grid: Vec<SweepRow>,
    baseline: Vec<SweepBaseline>,
    interrupted: Option<String>,
}

/// Runs `sweep`; returns sweep.json's content and the folder it is in.
pub fn run(o: &SweepOptions, out: &mut dyn Write) -> Result<(SweepReport, PathBuf)> {
    super::check_common(&o.common)?;
    let t = Target::resolve_measuring(&o.common)?;
    let batches: Option<Vec<u64>> = match (&o.batch_sizes, o.batch) {
        (Some(_), Some(_)) => {
            return Err(UsageError("give --batch or --batch-sizes, not both".into()).into())
        }
        (Some(v), None) => Some(v.clone()),
        (None, Some(b)) => Some(vec![b as u64]),
        (None, None) => None,
    };
    let out_dir = new_out_dir(o.out.as_deref(), || {
        fresh_dir(
            Path::new("reports"),
            &format!("sweep-{}-{}", t.model_id(), t.device_id()),
        )
    })?;
    let space = t.rig.space(batches.as_deref(), &o.fixes)?;
    // On the twin itself the grid runs in parallel; elsewhere one configuration at a time.
    let swept = match t.rig.twin() {
        Some((board, model)) if t.kind() == BackendKind::Sim => {
            on_twin(board, model, &o.common, &space)?
        }
        _ => on_device(&t, &o.common, &space)?,
    };
    let Some(min) = swept
        .grid
        .iter()
        .min_by(|a, b| a.energy_j.total_cmp(&b.energy_j))
        .cloned()
    else {
        return Err(match swept.interrupted {
            Some(why) => Interrupted(why).into(),
            None => anyhow::anyhow!("no configuration could be measured (the errors are above)"),
        });
    };
    let rep = SweepReport {
        model: t.model_id().into(),
        device: t.device_id().into(),
        backend: t.kind(),
        inferences: o.common.protocol.inferences,
        noise: o.common.noise,
        grid: swept.grid,
        min,
        baseline: swept.baseline,
    };
    let dir = write(&rep, out_dir)?;
    if let Some(why) = swept.interrupted {
        // What was measured is written; the exit code says it is not the whole grid.
        return Err(Interrupted(why).into());
    }
    draw(&rep, &dir)?;
    if o.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(out, "{}", render::text(&rep))?;
    }
    if !o.common.quiet {
        eprintln!("sweep written to {}", dir.display());
    }
    Ok((rep, dir))
}

/// Every configuration of `space` on the twin, in parallel, and the DVFS baseline per batch.
fn on_twin(board: &Board, model: &Model, c: &Common, space: &Space) -> Result<Swept> {
    // SIGINT and SIGTERM stop it between runs (exit 130), as they stop a tune.
    quiet_interrupts(c.quiet);
    let stop = interrupt_flag();
    let once = |salt: u64, setting: &FreqSetting, batch: u32| -> Result<Measurement> {
        let sim = SimBoard::new(board, c.noise(salt));
        let (mut d, mut w) = (sim.device(), sim.workload(model)?);
        let m = measure_or_stop(&mut d, &mut w, setting, batch, &c.protocol, Some(&stop));
        d.restore()?;
        Ok(m?)
    };
    let points: Vec<_> = space.points().collect();
    let grid = points
        .par_iter()
        .map(|p| {
            let cfg = space.config(p);
            // Each configuration gets its own noise stream, so results do not depend on the
            // order threads take them in.
            let m = once(space.index(p) as u64 + 1, &cfg.setting(), cfg.batch_size)?;
            Ok(SweepRow::of(&cfg, &m))
        })
        .collect::<Result<_>>()?;
    let baseline = space
        .batch_sizes()
        .iter()
        .map(|b| {
            let m = once(u64::MAX - *b as u64, &FreqSetting::Dvfs, *b)?;
            Ok(SweepBaseline::of(&m))
        })
        .collect::<Result<_>>()?;
    Ok(Swept {
        grid,
        baseline,
        interrupted: None,
    })
}

/// Every configuration of `space` measured one after another on a real device (an NVML GPU)
/// by a study with the grid strategy, with a line per configuration on stderr. The study's DVFS
/// baseline is at the smallest batch; with clocks locked in the grid, the default clocks are
/// measured at the other batch sizes afterwards, else the grid's rows are the baseline.
fn on_device(t: &Target, c: &Common, space: &Space) -> Result<Swept> {
    quiet_interrupts(c.quiet);
    let protocol = super::options::protocol_on(c, t.kind());
    let (mut device, mut workload) = t.open(c)?;
    let batches = space.batch_sizes();
    let total = space.size();
    let log = SweepLog::new(c.quiet, total);
    let mut study = Study {
        space,
        device: &mut *device,
        workload: &mut *workload,
        strategy: strategy::make("grid", &StrategyInit::for_space(space, c.seed, total))?,
        budget: total,
        protocol,
        baseline_batch: batches[0],
        journal: None,
        prior: Prior::default(),
        interrupt: Some(interrupt_flag()),
        goal: Default::default(),
        exploration: Default::default(),
    };
    let outcome = study.run(|e| log.event(&e))?;
    let grid: Vec<SweepRow> = outcome
        .measured
        .iter()
        .map(|m| SweepRow::of(&m.config, &m.measurement))
        .collect();
    if outcome.interrupted() {
        let why = format!(
            "the sweep stopped after {} of {total} configurations; they are in sweep.json",
            grid.len()
        );
        return Ok(Swept {
            grid,
            baseline: Vec::new(),
            interrupted: Some(why),
        });
    }
    if let StopReason::FailuresInARow { .. } = outcome.stop_reason {
        eprintln!("note: the sweep stopped early: {}", outcome.stop_reason);
    }
    let locked = grid.iter().any(|r| r.config.pins_a_clock());
    let mut baseline = vec![SweepBaseline::of(&outcome.baseline)];
    for b in batches.into_iter().skip(1) {
        let entry = match locked {
            true => dvfs_at(&mut *device, &mut *workload, b, &protocol)?,
            // The grid ran at the default clocks already: that row is the baseline.
            false => grid
                .iter()
                .find(|r| r.config.batch_size == b)
                .map(|r| SweepBaseline {
                    batch_size: b,
                    energy_j: r.energy_j,
                    time_s: r.time_s,
                    cv: r.cv,
                    runs: r.runs,
                }),
        };
        baseline.extend(entry);
    }
    device.restore()?;
    if !c.quiet {
        for n in device.notes() {
            eprintln!("note: {n}");
        }
    }
    Ok(Swept {
        grid,
        baseline,
        interrupted: None,
    })
}

/// DVFS (the default clocks) at batch `b`; `None` when the workload fails there.
fn dvfs_at(
    device: &mut dyn Device,
    workload: &mut dyn Workload,
    b: u32,
    protocol: &ProtocolSettings,
) -> Result<Option<SweepBaseline>> {
    match measure(device, workload, &FreqSetting::Dvfs, b, protocol) {
        Ok(m) => Ok(Some(SweepBaseline::of(&m))),
        Err(crate::device::DeviceError::Workload(_)) => Ok(None),
        Err(e) => {
            let _ = device.restore();
            Err(e.into())
        }
    }
}

/// Writes sweep.json and sweep.csv into `dir`; returns it.
fn write(rep: &SweepReport, dir: PathBuf) -> Result<PathBuf> {
    create_dir(&dir)?;
    write_json(&dir, "sweep.json", rep)?;
    write_file(&dir, "sweep.csv", &render::csv(rep)?)?;
    Ok(dir)
}

/// The energy-vs-GPU, heat-map and batch plots of the grid.
fn draw(rep: &SweepReport, dir: &Path) -> Result<()> {
    let grid: Vec<Sample> = rep
        .grid
        .iter()
        .map(|r| Sample {
            config: r.config,
            energy_j: r.energy_j,
            time_s: r.time_s,
        })
        .collect();
    let input = PlotInput {
        title: format!("{} on {}", rep.model, rep.device),
        inferences: rep.inferences,
        measured: &[],
        best: Some(rep.min.config),
        trace_j: &[],
        baseline: None,
        grid: Some((&grid, "sweep")),
        surrogate: None,
    };
    plot::draw_all(&input, dir, &[0, 1, 3])
        .map_err(|e| anyhow::anyhow!("drawing the plots in {}: {e}", dir.display()))?;
    Ok(())
}

//! `emulate` (a virtual Jetson under a folder) and `emulate-infer` (its workload).

use super::load_catalog;
use super::signals::{interrupt_flag, on_interrupt, quiet_interrupts};
use crate::emulator::{self, EmulatorConfig, EmulatorError};
use crate::error::UsageError;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// Options of `emulate`.
#[derive(Debug, Clone)]
pub struct EmulateOptions {
    /// Board id.
    pub board: String,
    /// Root folder to build the tree in.
    pub root: std::path::PathBuf,
    /// Sensor refresh period, ms.
    pub sensor_refresh_ms: u64,
    /// Real seconds per twin second.
    pub time_scale: f64,
    /// No notes on stderr.
    pub quiet: bool,
}

fn usage(e: EmulatorError) -> anyhow::Error {
    match e {
        EmulatorError::Usage(m) => UsageError(m).into(),
        e => e.into(),
    }
}

/// Builds the virtual board and keeps it alive until SIGINT/SIGTERM/SIGHUP.
pub fn emulate_cmd(catalog_dir: Option<&Path>, o: &EmulateOptions) -> Result<()> {
    if !(o.time_scale.is_finite() && o.time_scale > 0.0) {
        return Err(UsageError(format!(
            "--time-scale must be a positive factor (0.01 runs the twin 100 times faster), got {}",
            o.time_scale
        ))
        .into());
    }
    if o.sensor_refresh_ms == 0 {
        return Err(UsageError("--sensor-refresh-ms must be at least 1".into()).into());
    }
    let catalog = load_catalog(catalog_dir)?;
    let board = catalog.board(&o.board)?.clone();
    let config = EmulatorConfig {
        board: board.board.id.clone(),
        time_scale: o.time_scale,
        sensor_refresh_ms: o.sensor_refresh_ms,
    };
    if o.root.exists() && !o.root.is_dir() {
        return Err(UsageError(format!(
            "--root {} is a file; give emulate a new or empty folder",
            o.root.display()
        ))
        .into());
    }
    let layout = emulator::create_tree(&o.root, &board, &config).map_err(usage)?;
    quiet_interrupts(o.quiet);
    on_interrupt("stopping the virtual board (its files stay under --root)");
    let stop = interrupt_flag();
    if !o.quiet {
        eprintln!(
            "virtual {} at {} (sensor refresh {} ms, time scale {}); run edgetune with --sysfs-root {} and --workload-cmd 'edgetune emulate-infer --root {} --model {{model}} --batch {{batch}} --inferences {{inferences}}'; stop with Ctrl-C or SIGTERM",
            board.board.name,
            o.root.display(),
            o.sensor_refresh_ms,
            o.time_scale,
            o.root.display(),
            o.root.display()
        );
    }
    let refreshes = emulator::run(&layout, &board, &catalog, &config, &stop).map_err(usage)?;
    if !o.quiet {
        eprintln!("virtual board stopped after {refreshes} sensor refreshes");
    }
    Ok(())
}

/// Runs the virtual board's workload once.
pub fn emulate_infer_cmd(
    catalog_dir: Option<&Path>,
    root: &Path,
    model: &str,
    batch_size: u32,
    inferences: u32,
    out: &mut dyn Write,
) -> Result<()> {
    let catalog = load_catalog(catalog_dir)?;
    let model = catalog.model(model)?.clone();
    let r = emulator::infer(root, &catalog, &model, batch_size, inferences, out).map_err(usage)?;
    eprintln!(
        "emulate-infer: {inferences} inferences of {} at batch {batch_size}: twin {:.3} s, {:.3} J ({:.0} inferences/s); slept {:.3} s",
        model.id(),
        r.twin_time_s,
        r.twin_energy_j,
        inferences as f64 / r.twin_time_s,
        r.slept_s
    );
    Ok(())
}

//! `edgetune measure` (pinned clocks) and `edgetune baseline` (the DVFS governors): one
//! configuration at some batch sizes through the protocol, on the twin.

use super::target::Target;
use super::Common;
use crate::backend::sim::SimBoard;
use crate::device::{BackendKind, Device, FreqSetting};
use crate::error::UsageError;
use crate::measure::protocol::measure_or_stop;
use crate::report::measure::{text, MeasureReport};
use crate::space::{check_freq, check_model_batch, Config, Knob};
use anyhow::Result;
use std::io::Write;

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

/// Runs `measure` (pinned clocks) or `baseline` (DVFS) through the protocol.
pub fn run(o: &MeasureOptions, out: &mut dyn Write) -> Result<MeasureReport> {
    super::check_common(&o.common)?;
    let t = Target::resolve_twin_or_gpu(&o.common)?;
    let (BackendKind::Sim, Some((board, model))) = (t.kind(), t.rig.twin()) else {
        return Err(UsageError(
            "`measure` and `baseline` run on the twin (--backend sim); on a GPU, `sweep --batch-sizes` measures each batch size and `tune` searches".into(),
        )
        .into());
    };
    let setting = match (o.cpu_freq_khz, o.gpu_freq_hz) {
        (None, None) => FreqSetting::Dvfs,
        (Some(c), Some(g)) => {
            check_freq(Knob::CpuFreqKhz, c, board.into())?;
            check_freq(Knob::GpuFreqHz, g, board.into())?;
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
        model.paper.batch_sizes.clone()
    } else {
        o.batches.clone()
    };
    for b in &batches {
        check_model_batch(model, *b as u64)?;
    }
    let sim = SimBoard::new(board, o.common.noise(0));
    let (mut d, mut w) = (sim.device(), sim.workload(model)?);
    // SIGINT and SIGTERM stop it between runs (exit 130), as they stop a tune.
    super::signals::quiet_interrupts(o.common.quiet);
    let stop = super::signals::interrupt_flag();
    let p = &o.common.protocol;
    let measured: Result<Vec<_>, _> = batches
        .iter()
        .map(|b| measure_or_stop(&mut d, &mut w, &setting, *b, p, Some(&stop)))
        .collect();
    d.restore()?;
    let rep = MeasureReport {
        model: t.model_id().into(),
        device: t.device_id().into(),
        backend: t.kind(),
        measurements: measured?,
    };
    if o.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(
            out,
            "{}",
            text(&rep, &setting, o.common.protocol.inferences)
        )?;
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_clocks_must_be_in_the_table_and_come_in_pairs() {
        let d = tempfile::tempdir().unwrap();
        let mut common = Common::new("resnet18");
        common.device = Some("nano".into());
        common.quiet = true;
        common.board.sysfs_root = d.path().to_path_buf();
        let mut o = MeasureOptions {
            common,
            cpu_freq_khz: Some(1_479_000),
            gpu_freq_hz: None,
            batches: vec![4],
            json: true,
        };
        let e = run(&o, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("give both --cpu-freq and --gpu-freq"), "{e}");
        o.gpu_freq_hz = Some(1);
        let e = run(&o, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("not in the nano table"), "{e}");
        o.gpu_freq_hz = Some(921_600_000);
        o.common.protocol.inferences = 64;
        let r = run(&o, &mut Vec::new()).unwrap();
        assert_eq!(r.measurements.len(), 1);
        assert_eq!(r.backend, crate::device::BackendKind::Sim);
    }
}

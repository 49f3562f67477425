//! `edgetune measure` (pinned clocks) and `edgetune baseline` (the DVFS governors): one
//! configuration at some batch sizes through the protocol, on whatever the options resolve to
//! (the twin, a Jetson, an NVIDIA GPU, a host CPU), restored on every way out as `tune` is.

use super::options::protocol_on;
use super::target::Target;
use super::Common;
use crate::device::FreqSetting;
use crate::error::UsageError;
use crate::measure::protocol::measure_or_stop;
use crate::opt::Opt;
use crate::report::measure::{text, MeasureReport};
use crate::space::{Config, Knob, Space};
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
    if o.common.board.emc {
        return Err(UsageError(format!(
            "`measure` pins the CPU and GPU clocks and leaves the memory clock as found; {} searches the memory clock in `tune`",
            Opt::Emc
        ))
        .into());
    }
    let t = Target::resolve_measuring(&o.common)?;
    let (setting, space) = setting(o, &t)?;
    // SIGINT and SIGTERM stop it between runs (exit 130), as they stop a tune.
    super::signals::quiet_interrupts(o.common.quiet);
    let stop = super::signals::interrupt_flag();
    let p = protocol_on(&o.common, t.kind());
    let (mut d, mut w) = t.open(&o.common)?;
    let measured: Result<Vec<_>, _> = space
        .batch_sizes()
        .into_iter()
        .map(|b| measure_or_stop(&mut *d, &mut *w, &setting, b, &p, Some(&stop)))
        .collect();
    d.restore()?;
    let baseline = d.baseline_kind();
    if !o.common.quiet {
        for n in d.notes() {
            eprintln!("note: {n}");
        }
    }
    let rep = MeasureReport {
        model: t.model_id().into(),
        device: t.device_id().into(),
        backend: t.kind(),
        measurements: measured?,
    };
    if o.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
    } else {
        write!(out, "{}", text(&rep, &setting, baseline, p.inferences))?;
    }
    Ok(rep)
}

/// The clocks to measure at and the batch sizes (the space's, so a board or a GPU takes any
/// batch size and the twin the model's): every clock given is checked against the device's
/// tables; a clock the device has no knob for (an axis of one 0) stays 0, and every clock it
/// has must be given, or none for the DVFS governors.
fn setting(o: &MeasureOptions, t: &Target) -> Result<(FreqSetting, Space)> {
    let given = [
        (Knob::CpuFreqKhz, o.cpu_freq_khz),
        (Knob::GpuFreqHz, o.gpu_freq_hz),
    ];
    let fixes: Vec<(Knob, u64)> = given
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect();
    let batches: Vec<u64> = o.batches.iter().map(|b| *b as u64).collect();
    let batches = (!batches.is_empty()).then_some(&batches[..]);
    let unpinned = t.rig.space(batches, &[])?;
    for (k, _) in &fixes {
        if !has_knob(&unpinned, *k) {
            return Err(no_knob(t, *k).into());
        }
    }
    let space = t.rig.space(batches, &fixes)?;
    if fixes.is_empty() {
        return Ok((FreqSetting::Dvfs, space));
    }
    let clocks: Vec<Knob> = given
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| has_knob(&unpinned, *k))
        .collect();
    if clocks.iter().any(|k| !fixes.iter().any(|(f, _)| f == k)) {
        let flags: Vec<&str> = clocks.iter().map(|k| clock_flag(*k)).collect();
        let what = match flags.len() {
            2 => format!("both {}", flags.join(" and ")),
            _ => flags.join(" and "),
        };
        return Err(UsageError(format!(
            "give {what} to pin the clocks (or neither for the DVFS governors)"
        ))
        .into());
    }
    let at = |k: Knob| fixes.iter().find(|(f, _)| *f == k).map_or(0, |(_, v)| *v);
    let config = Config::new(at(Knob::CpuFreqKhz), at(Knob::GpuFreqHz), 0);
    Ok((config.setting(), space))
}

/// Whether the device has clock `k` to pin (a knob it lacks is an axis of one 0).
fn has_knob(space: &Space, k: Knob) -> bool {
    space.axes.iter().any(|a| a.knob == k && a.values != [0])
}

/// Why a clock given cannot be pinned on `t`.
fn no_knob(t: &Target, k: Knob) -> UsageError {
    let device = t.device_id();
    UsageError(match (k, t.rig.gpu()) {
        (Knob::GpuFreqHz, Some(_)) => format!(
            "{device}'s clocks stay at their defaults without --allow-clock-control (root): `edgetune baseline` measures them there, or add the flag to lock them"
        ),
        (Knob::CpuFreqKhz, _) => format!("{device} has no CPU clock to pin here; leave out --cpu-freq"),
        _ => format!("{device} has no GPU clock to pin; leave out --gpu-freq"),
    })
}

/// `--cpu-freq` or `--gpu-freq`.
fn clock_flag(k: Knob) -> &'static str {
    match k {
        Knob::CpuFreqKhz => "--cpu-freq",
        _ => "--gpu-freq",
    }
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

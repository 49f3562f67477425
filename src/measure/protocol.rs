//! The measurement protocol, one function for every backend: apply the setting, warm up, then
//! measure runs of `inferences` inferences until the coefficient of variation of their energy is
//! under the target (at least `min_runs`, at most `max_runs`).
//!
//! A run shorter than `min_window_s` is too short for a meter that moves in steps (a data-centre
//! GPU's energy counter; 3200 inferences of a small model take 0.2 s there): the protocol then
//! repeats the workload inside one window until the window is long enough, and reports energy and
//! time per `inferences`.

use super::stats;
use crate::device::{Device, DeviceError, EnergyWindow, FreqSetting};
use crate::opt::Opt;
use crate::workload::{Meter, Workload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Protocol settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProtocolSettings {
    /// Inferences per run (the paper: 3200).
    pub inferences: u32,
    /// Inferences run before measuring, not measured (0 for none).
    pub warmup_inferences: u32,
    /// Stop once the CV of the runs' energy is below this.
    pub cv_target: f64,
    /// Runs at least.
    pub min_runs: u32,
    /// Runs at most.
    pub max_runs: u32,
    /// Shortest energy window, seconds (0: any); shorter runs repeat the workload in one window.
    #[serde(default)]
    pub min_window_s: f64,
    /// After the runs, an energy window this long with the workload idle at the same setting
    /// gives the idle power (0: none; a study at a rate needs it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_window_s: f64,
}

/// Idle window of a study at a rate: several refreshes of the slowest sensor (a Jetson's INA3221
/// averages over about 0.43 s), so the window's edges do not dominate it.
pub const IDLE_WINDOW_S: f64 = 3.0;

/// Whether `idle_window_s` is the default (left out of JSON).
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for ProtocolSettings {
    fn default() -> Self {
        ProtocolSettings {
            inferences: 3200,
            warmup_inferences: 64,
            cv_target: 0.05,
            min_runs: 3,
            max_runs: 10,
            min_window_s: 0.0,
            idle_window_s: 0.0,
        }
    }
}

/// Longest `min_window_s`: an hour per energy window is already far beyond any meter's need.
pub const MAX_MIN_WINDOW_S: f64 = 3600.0;

/// Most inferences one window may hold (a run of `inferences` repeated).
const MAX_WINDOW_INFERENCES: u64 = 100_000_000;

/// A protocol setting, as the library names it (the command line names it by its flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Inferences per run.
    Inferences,
    /// Fewest runs.
    MinRuns,
    /// Most runs.
    MaxRuns,
    /// Shortest energy window.
    MinWindowS,
    /// Idle window at a rate.
    IdleWindowS,
    /// CV the runs must reach.
    CvTarget,
}

impl Setting {
    /// The option it is, as messages name it.
    pub fn opt(self) -> Opt {
        match self {
            Setting::Inferences => Opt::Inferences,
            Setting::MinRuns => Opt::MinRuns,
            Setting::MaxRuns => Opt::MaxRuns,
            Setting::MinWindowS => Opt::MinWindowS,
            Setting::IdleWindowS => Opt::IdleWindowS,
            Setting::CvTarget => Opt::CvTarget,
        }
    }

    /// Its field name in [`ProtocolSettings`].
    pub fn name(self) -> &'static str {
        self.opt().field()
    }
}

/// Protocol settings that make no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render(&Setting::name))]
pub enum ProtocolError {
    /// A count of zero.
    Zero(Setting),
    /// Fewer runs at most than at least.
    MaxBelowMin {
        /// `max_runs`.
        max: u32,
        /// `min_runs`.
        min: u32,
    },
    /// A negative or infinite window.
    Window(f64),
    /// An idle window that is negative or longer than the longest window.
    IdleWindow(f64),
    /// A CV target that is not a positive fraction.
    CvTarget(f64),
}

impl ProtocolError {
    /// The message, each setting named by `name` (the command line passes its flags).
    pub fn render(&self, name: &dyn Fn(Setting) -> &'static str) -> String {
        match self {
            ProtocolError::Zero(s) => format!("{} must be at least 1", name(*s)),
            ProtocolError::MaxBelowMin { max, min } => format!(
                "{} ({max}) must be at least {} ({min})",
                name(Setting::MaxRuns),
                name(Setting::MinRuns)
            ),
            ProtocolError::Window(v) => format!(
                "{} must be zero or more seconds (at most {MAX_MIN_WINDOW_S}), got {v}",
                name(Setting::MinWindowS)
            ),
            ProtocolError::IdleWindow(v) => format!(
                "{} must be zero or more seconds (at most {MAX_MIN_WINDOW_S}), got {v}",
                name(Setting::IdleWindowS)
            ),
            ProtocolError::CvTarget(v) => format!(
                "{} must be a positive fraction (0.05 = 5 %), got {v}",
                name(Setting::CvTarget)
            ),
        }
    }
}

impl ProtocolSettings {
    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.inferences == 0 {
            return Err(ProtocolError::Zero(Setting::Inferences));
        }
        if self.min_runs == 0 {
            return Err(ProtocolError::Zero(Setting::MinRuns));
        }
        if self.max_runs < self.min_runs {
            return Err(ProtocolError::MaxBelowMin {
                max: self.max_runs,
                min: self.min_runs,
            });
        }
        if !(0.0..=MAX_MIN_WINDOW_S).contains(&self.min_window_s) {
            return Err(ProtocolError::Window(self.min_window_s));
        }
        if !(0.0..=MAX_MIN_WINDOW_S).contains(&self.idle_window_s) {
            return Err(ProtocolError::IdleWindow(self.idle_window_s));
        }
        if !(self.cv_target > 0.0 && self.cv_target.is_finite()) {
            return Err(ProtocolError::CvTarget(self.cv_target));
        }
        Ok(())
    }
}

/// One measured run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Energy of the run.
    pub energy_j: f64,
    /// Time of the run.
    pub time_s: f64,
}

/// The protocol's result for one setting and batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Clocks used.
    pub setting: FreqSetting,
    /// Batch size.
    pub batch_size: u32,
    /// Inferences per run.
    pub inferences: u32,
    /// Mean energy per run.
    pub energy_j: f64,
    /// Mean time per run.
    pub time_s: f64,
    /// Mean energy over mean time.
    pub avg_power_w: f64,
    /// Mean energy per inference, mJ.
    pub energy_per_inference_mj: f64,
    /// Coefficient of variation of the runs' energy.
    pub cv: f64,
    /// Whether the CV reached the target.
    pub converged: bool,
    /// Every run.
    pub runs: Vec<Run>,
    /// Time spent, warm-up included (what the measurement cost).
    pub wall_s: f64,
    /// Mean energy per run of each sensor rail, where the device has rails (a Jetson's INA3221).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rail_energy_j: BTreeMap<String, f64>,
    /// Times the workload ran inside each window to make it at least `min_window_s` long (1: a
    /// run was long enough); energy and time are per `inferences` all the same.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub window_repeats: u32,
    /// Power while idle at the same setting, where the settings asked for an idle window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_power_w: Option<f64>,
}

impl Measurement {
    /// The same measurement stated for runs of `inferences` (energy and time scale with the
    /// count; per-inference figures, power and CV do not): screening runs compared with full ones.
    pub fn at_length(&self, inferences: u32) -> Measurement {
        let k = inferences as f64 / self.inferences.max(1) as f64;
        Measurement {
            inferences,
            energy_j: self.energy_j * k,
            time_s: self.time_s * k,
            runs: self
                .runs
                .iter()
                .map(|r| Run {
                    energy_j: r.energy_j * k,
                    time_s: r.time_s * k,
                })
                .collect(),
            rail_energy_j: self
                .rail_energy_j
                .iter()
                .map(|(n, e)| (n.clone(), e * k))
                .collect(),
            ..self.clone()
        }
    }
}

/// Serde default of `window_repeats` (also the report's).
pub(crate) fn one() -> u32 {
    1
}

/// Whether `window_repeats` is the default (left out of JSON).
pub(crate) fn is_one(n: &u32) -> bool {
    *n == 1
}

/// The device's energy window as the workload opens and closes it.
struct DeviceMeter<'a> {
    device: &'a mut dyn Device,
    open: bool,
    window: Option<EnergyWindow>,
}

impl Meter for DeviceMeter<'_> {
    fn begin(&mut self) -> Result<(), DeviceError> {
        // A second begin restarts the window: the latest begin..end pair counts.
        if self.open {
            self.device.window_end()?;
        }
        self.window = None;
        self.device.window_begin()?;
        self.open = true;
        Ok(())
    }
    fn end(&mut self) -> Result<(), DeviceError> {
        if !self.open {
            return Err(DeviceError::Failed(
                "the workload closed an energy window it had not opened".into(),
            ));
        }
        self.open = false;
        self.window = Some(self.device.window_end()?);
        Ok(())
    }
}

/// One workload run inside the device's energy window.
fn one_run(
    device: &mut dyn Device,
    workload: &mut dyn Workload,
    batch_size: u32,
    inferences: u32,
) -> Result<(EnergyWindow, Option<f64>), DeviceError> {
    let mut meter = DeviceMeter {
        device,
        open: false,
        window: None,
    };
    let ran = workload.run(batch_size, inferences, &mut meter);
    if meter.open {
        // The run failed with the window open: close it so a poller thread stops.
        let _ = meter.device.window_end();
    }
    let reported = ran?;
    let w = meter.window.take().ok_or_else(|| {
        DeviceError::Failed("the workload finished without opening an energy window".into())
    })?;
    Ok((w, reported.time_s))
}

/// Measures one setting at one batch size on `device` running `workload`.
pub fn measure(
    device: &mut dyn Device,
    workload: &mut dyn Workload,
    setting: &FreqSetting,
    batch_size: u32,
    settings: &ProtocolSettings,
) -> Result<Measurement, DeviceError> {
    measure_or_stop(device, workload, setting, batch_size, settings, None)
}

/// [`measure`], giving up with [`DeviceError::Interrupted`] before any run once `stop` is set
/// (a signal): however many runs the settings allow, a stop request is seen between them.
pub fn measure_or_stop(
    device: &mut dyn Device,
    workload: &mut dyn Workload,
    setting: &FreqSetting,
    batch_size: u32,
    settings: &ProtocolSettings,
    stop: Option<&AtomicBool>,
) -> Result<Measurement, DeviceError> {
    let how = How {
        stop,
        ..How::default()
    };
    measure_how(device, workload, setting, batch_size, settings, &how)
}

/// Racing's question after each run: can this configuration still be the best?
pub type KeepGoing = dyn Fn(&[Run]) -> bool;

/// What a caller of the protocol may add to its settings.
#[derive(Default, Clone, Copy)]
pub struct How<'a> {
    /// Set by a signal: no run starts once it is.
    pub stop: Option<&'a AtomicBool>,
    /// Runs of the same setting, batch and length measured earlier: they count as runs of this
    /// measurement (a configuration confirmed after it was screened at full length).
    pub earlier: &'a [Run],
    /// Inference counts per window the `earlier` runs were measured at (0 or 1: single
    /// runs): the protocol goes on at that window instead of starting again from one run.
    pub earlier_window_repeats: u32,
    /// Racing: asked after each run whether the configuration can still be the best; on `false`
    /// the protocol stops early and the measurement is not converged (unless it already was).
    pub keep_going: Option<&'a KeepGoing>,
}

/// A window whose energy is not a positive number is a broken meter, not a measurement.
fn check_energy(w: &EnergyWindow, settings: &ProtocolSettings) -> Result<(), DeviceError> {
    if w.energy_j.is_finite() && w.energy_j > 0.0 {
        return Ok(());
    }
    Err(DeviceError::Failed(format!(
        "the device measured {} J for a run of {:.3} s; the energy meter is not working{}",
        w.energy_j,
        w.time_s,
        if settings.min_window_s == 0.0 {
            format!(
                " (or moves in steps longer than the run: set {})",
                Opt::MinWindowS
            )
        } else {
            String::new()
        }
    )))
}

/// The protocol with the additions of [`How`]; where the settings ask for it, an idle window
/// after the runs gives the idle power at the same setting.
pub fn measure_how(
    device: &mut dyn Device,
    workload: &mut dyn Workload,
    setting: &FreqSetting,
    batch_size: u32,
    settings: &ProtocolSettings,
    how: &How<'_>,
) -> Result<Measurement, DeviceError> {
    let mut m = measure_runs(device, workload, setting, batch_size, settings, how)?;
    if settings.idle_window_s > 0.0 {
        if how.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(DeviceError::Interrupted);
        }
        m.idle_power_w = Some(idle_power(device, settings.idle_window_s)?);
        m.wall_s += settings.idle_window_s;
    }
    Ok(m)
}

/// The runs of [`measure_how`].
fn measure_runs(
    device: &mut dyn Device,
    workload: &mut dyn Workload,
    setting: &FreqSetting,
    batch_size: u32,
    settings: &ProtocolSettings,
    how: &How<'_>,
) -> Result<Measurement, DeviceError> {
    let stop = how.stop;
    let stopped = || stop.is_some_and(|s| s.load(Ordering::SeqCst));
    device.apply(setting)?;
    let mut wall_s = 0.0;
    if settings.warmup_inferences > 0 {
        let warm = settings.warmup_inferences.max(batch_size);
        let t = one_run(device, workload, batch_size, warm)?.0.time_s;
        wall_s += t;
        if t < settings.min_window_s {
            // Hardware that needs long windows also needs time for its clocks to ramp up from
            // idle: warm up for one window's length too.
            let k = (settings.min_window_s / t.max(1e-4)).ceil() as u64;
            let n = (warm as u64 * k).min(MAX_WINDOW_INFERENCES) as u32;
            wall_s += one_run(device, workload, batch_size, n)?.0.time_s;
        }
    }
    let mut runs = how.earlier.to_vec();
    let mut earlier = runs.len();
    let mut rails: BTreeMap<String, f64> = BTreeMap::new();
    let mut repeats: u32 = how.earlier_window_repeats.max(1);
    loop {
        if stopped() {
            return Err(DeviceError::Interrupted);
        }
        let inferences = settings.inferences * repeats;
        let (w, reported_time_s) = match one_run(device, workload, batch_size, inferences) {
            // A recorded source ran out of readings: the runs so far are the measurement.
            Err(DeviceError::NoMoreReadings) if !runs.is_empty() => {
                let rails = per_run(rails, runs.len() - earlier);
                return Ok(finish(
                    setting, batch_size, settings, runs, rails, wall_s, repeats,
                ));
            }
            // None at all: the caller decides (a fleet's confirmation keeps what it had).
            Err(DeviceError::NoMoreReadings) => return Err(DeviceError::NoMoreReadings),
            other => other?,
        };
        wall_s += w.time_s;
        if w.time_s < settings.min_window_s {
            // Too short for the meter: lengthen every run and start counting again. Aim a
            // quarter above the minimum so run-to-run jitter does not fall under it.
            let per_run_s = w.time_s.max(1e-4) / repeats as f64;
            let wanted = (1.25 * settings.min_window_s / per_run_s).ceil() as u64;
            let cap = (MAX_WINDOW_INFERENCES / u64::from(settings.inferences.max(1))).max(1);
            // At the cap the window cannot grow: measure it as it is.
            let next = wanted.max(repeats as u64 + 1).min(cap) as u32;
            if next > repeats {
                repeats = next;
                runs.clear();
                earlier = 0;
                rails.clear();
                continue;
            }
        }
        check_energy(&w, settings)?;
        let per = repeats as f64;
        for (name, e) in &w.rail_energy_j {
            *rails.entry(name.clone()).or_default() += e / per;
        }
        runs.push(Run {
            energy_j: w.energy_j / per,
            time_s: reported_time_s.unwrap_or(w.time_s) / per,
        });
        let n = runs.len() as u32;
        let energies: Vec<f64> = runs.iter().map(|r| r.energy_j).collect();
        let cv = stats::cv(&energies);
        let converged = n >= settings.min_runs && cv < settings.cv_target;
        let raced_out = !converged && how.keep_going.is_some_and(|k| !k(&runs));
        if n >= settings.max_runs || converged || raced_out {
            let rails = per_run(rails, runs.len() - earlier);
            return Ok(finish(
                setting, batch_size, settings, runs, rails, wall_s, repeats,
            ));
        }
    }
}

/// Rail energies summed over this call's `fresh` runs, per run.
fn per_run(rails: BTreeMap<String, f64>, fresh: usize) -> BTreeMap<String, f64> {
    let n = fresh.max(1) as f64;
    rails.into_iter().map(|(k, e)| (k, e / n)).collect()
}

/// The measurement of `runs`.
fn finish(
    setting: &FreqSetting,
    batch_size: u32,
    settings: &ProtocolSettings,
    runs: Vec<Run>,
    rail_energy_j: BTreeMap<String, f64>,
    wall_s: f64,
    window_repeats: u32,
) -> Measurement {
    let energies: Vec<f64> = runs.iter().map(|r| r.energy_j).collect();
    let energy_j = stats::mean(&energies);
    let time_s = stats::mean(&runs.iter().map(|r| r.time_s).collect::<Vec<_>>());
    let cv = stats::cv(&energies);
    Measurement {
        setting: *setting,
        batch_size,
        inferences: settings.inferences,
        energy_j,
        time_s,
        // A replay table may record energy without time.
        avg_power_w: if time_s > 0.0 { energy_j / time_s } else { 0.0 },
        energy_per_inference_mj: energy_j / settings.inferences as f64 * 1e3,
        cv,
        converged: runs.len() as u32 >= settings.min_runs && cv < settings.cv_target,
        rail_energy_j,
        runs,
        wall_s,
        window_repeats,
        idle_power_w: None,
    }
}

/// The idle power at the setting the runs left applied: one energy window with the workload idle.
fn idle_power(device: &mut dyn Device, time_s: f64) -> Result<f64, DeviceError> {
    device.window_begin()?;
    let idled = device.idle(time_s);
    let w = device.window_end()?;
    idled?;
    if !(w.energy_j.is_finite() && w.energy_j >= 0.0 && w.time_s > 0.0) {
        return Err(DeviceError::Failed(format!(
            "the device measured {} J over {:.3} s of idle; the energy meter is not working",
            w.energy_j, w.time_s
        )));
    }
    Ok(w.energy_j / w.time_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadRun;
    use std::sync::atomic::AtomicU32;
    use std::sync::{Arc, Mutex};

    /// A scripted device: each run returns the next energy from a list.
    struct Scripted {
        energies: Arc<Mutex<Vec<f64>>>,
        applied: Vec<FreqSetting>,
        next: f64,
    }
    impl Device for Scripted {
        fn backend(&self) -> crate::device::BackendKind {
            crate::device::BackendKind::Sim
        }
        fn apply(&mut self, s: &FreqSetting) -> Result<(), DeviceError> {
            self.applied.push(*s);
            Ok(())
        }
        fn window_begin(&mut self) -> Result<(), DeviceError> {
            self.next = self.energies.lock().unwrap().remove(0);
            Ok(())
        }
        fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
            Ok(EnergyWindow {
                energy_j: self.next,
                time_s: 2.0,
                ..Default::default()
            })
        }
        fn restore(&mut self) -> Result<(), DeviceError> {
            Ok(())
        }
    }
    struct Counting(u32);
    impl Workload for Counting {
        fn name(&self) -> String {
            "counting".into()
        }
        fn run(&mut self, _: u32, _: u32, m: &mut dyn Meter) -> Result<WorkloadRun, DeviceError> {
            self.0 += 1;
            m.begin()?;
            m.end()?;
            Ok(WorkloadRun::default())
        }
    }

    fn run_with(energies: Vec<f64>, s: ProtocolSettings) -> (Measurement, u32) {
        let mut d = Scripted {
            energies: Arc::new(Mutex::new(energies)),
            applied: vec![],
            next: 0.0,
        };
        let mut w = Counting(0);
        let m = measure(&mut d, &mut w, &FreqSetting::Dvfs, 8, &s).unwrap();
        assert_eq!(d.applied, vec![FreqSetting::Dvfs]);
        (m, w.0)
    }

    /// The protocol with `how`'s additions on a scripted device; returns the measurement and
    /// the workload runs it took.
    fn run_how(energies: Vec<f64>, how: &How<'_>) -> (Measurement, u32) {
        let mut d = Scripted {
            energies: Arc::new(Mutex::new(energies)),
            applied: vec![],
            next: 0.0,
        };
        let mut w = Counting(0);
        let s = ProtocolSettings {
            warmup_inferences: 0,
            ..Default::default()
        };
        let m = measure_how(&mut d, &mut w, &FreqSetting::Dvfs, 8, &s, how).unwrap();
        (m, w.0)
    }

    #[test]
    fn racing_stops_a_configuration_that_cannot_be_the_best() {
        // Out of the race after its first run: one run, not converged.
        let out = |_: &[Run]| false;
        let (m, calls) = run_how(
            vec![150.0, 100.0, 100.0],
            &How {
                keep_going: Some(&out),
                ..How::default()
            },
        );
        assert_eq!((m.runs.len(), calls), (1, 1));
        assert!(!m.converged);
        // A contender runs until the protocol is met, as without racing.
        let contender = |_: &[Run]| true;
        let (m, _) = run_how(
            vec![100.0, 101.0, 99.0, 500.0],
            &How {
                keep_going: Some(&contender),
                ..How::default()
            },
        );
        assert_eq!(m.runs.len(), 3);
        assert!(m.converged);
    }

    #[test]
    fn earlier_runs_count_towards_the_protocol() {
        let earlier = [Run {
            energy_j: 100.0,
            time_s: 2.0,
        }];
        let (m, calls) = run_how(
            vec![101.0, 99.0, 500.0],
            &How {
                earlier: &earlier,
                ..How::default()
            },
        );
        // One earlier run and two new ones make the three the protocol asks for.
        assert_eq!((m.runs.len(), calls), (3, 2));
        assert!((m.energy_j - 100.0).abs() < 1e-9);
    }

    #[test]
    fn stops_at_min_runs_when_steady() {
        let s = ProtocolSettings {
            warmup_inferences: 0,
            ..Default::default()
        };
        let (m, calls) = run_with(vec![100.0, 101.0, 99.0, 500.0], s);
        assert_eq!(m.runs.len(), 3);
        assert_eq!(calls, 3);
        assert!((m.energy_j - 100.0).abs() < 1e-9);
        assert!(m.converged);
        assert!((m.avg_power_w - 50.0).abs() < 1e-9);
        assert!((m.energy_per_inference_mj - 100.0 / 3200.0 * 1e3).abs() < 1e-9);
    }

    #[test]
    fn repeats_until_the_cv_is_under_target_and_caps_at_max_runs() {
        let s = ProtocolSettings {
            warmup_inferences: 0,
            ..Default::default()
        };
        // Noisy start, then steady: stops once the CV over all runs drops under 5 %.
        let (m, _) = run_with(
            vec![
                100.0, 112.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0,
            ],
            s,
        );
        assert_eq!(m.runs.len(), 6);
        assert!(m.runs.len() > 3 && m.runs.len() <= 10, "{}", m.runs.len());
        assert!(m.cv < 0.05);
        let (m, _) = run_with([100.0, 200.0].repeat(6), s);
        assert_eq!(m.runs.len(), 10);
        assert!(!m.converged);
    }

    #[test]
    fn warm_up_runs_but_is_not_counted() {
        let (m, calls) = run_with(
            vec![999.0, 100.0, 100.0, 100.0],
            ProtocolSettings::default(),
        );
        assert_eq!(calls, 4);
        assert_eq!(m.runs.len(), 3);
        assert!((m.energy_j - 100.0).abs() < 1e-9);
    }

    #[test]
    fn zero_energy_is_an_error_not_a_result() {
        let mut d = Scripted {
            energies: Arc::new(Mutex::new(vec![0.0])),
            applied: vec![],
            next: 0.0,
        };
        let s = ProtocolSettings {
            warmup_inferences: 0,
            ..Default::default()
        };
        let e = measure(&mut d, &mut Counting(0), &FreqSetting::Dvfs, 8, &s).unwrap_err();
        // A counter that did not move at all may move in steps longer than the run.
        assert!(e.to_string().contains("min_window_s"), "{e}");
    }

    /// A GPU-like meter that moves in steps: a window lasts 0.2 s per 3200 inferences (the
    /// count comes from the workload through `n`) and the counter counts whole 50 ms steps at
    /// 300 W.
    struct Stepped {
        n: Arc<AtomicU32>,
        windows: Vec<u32>,
    }
    impl Device for Stepped {
        fn backend(&self) -> crate::device::BackendKind {
            crate::device::BackendKind::Sim
        }
        fn apply(&mut self, _: &FreqSetting) -> Result<(), DeviceError> {
            Ok(())
        }
        fn window_begin(&mut self) -> Result<(), DeviceError> {
            Ok(())
        }
        fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
            let n = self.n.load(Ordering::SeqCst);
            self.windows.push(n);
            let t = n as f64 * 0.2 / 3200.0;
            Ok(EnergyWindow {
                energy_j: (t / 0.05).floor() * 0.05 * 300.0,
                time_s: t,
                ..Default::default()
            })
        }
        fn restore(&mut self) -> Result<(), DeviceError> {
            Ok(())
        }
    }
    /// Tells the device how many inferences the window holds.
    struct Announces(Arc<AtomicU32>);
    impl Workload for Announces {
        fn name(&self) -> String {
            "announces".into()
        }
        fn run(&mut self, _: u32, n: u32, m: &mut dyn Meter) -> Result<WorkloadRun, DeviceError> {
            self.0.store(n, Ordering::SeqCst);
            m.begin()?;
            m.end()?;
            Ok(WorkloadRun::default())
        }
    }

    #[test]
    fn a_window_that_cannot_grow_any_more_is_measured_as_it_is() {
        // Runs of 2 s whatever their length, against a one-hour minimum: the repeats reach
        // the cap (1e8 inferences a window) and the run is taken (this panicked in a clamp).
        let s = ProtocolSettings {
            warmup_inferences: 0,
            min_window_s: MAX_MIN_WINDOW_S,
            ..Default::default()
        };
        let (m, _) = run_with(vec![10.0; 20], s);
        assert_eq!(m.window_repeats as u64, MAX_WINDOW_INFERENCES / 3200);
    }

    /// Counts runs and raises `stop` at the `at`-th.
    struct Stops(Arc<AtomicBool>, u32, u32);
    impl Workload for Stops {
        fn name(&self) -> String {
            "stops".into()
        }
        fn run(&mut self, _: u32, _: u32, m: &mut dyn Meter) -> Result<WorkloadRun, DeviceError> {
            self.1 += 1;
            if self.1 == self.2 {
                self.0.store(true, Ordering::SeqCst);
            }
            m.begin()?;
            m.end()?;
            Ok(WorkloadRun::default())
        }
    }

    #[test]
    fn a_stop_request_is_seen_between_runs_however_many_are_allowed() {
        let stop = Arc::new(AtomicBool::new(false));
        let mut d = Scripted {
            energies: Arc::new(Mutex::new((0..100).map(|i| 10.0 + i as f64).collect())),
            applied: vec![],
            next: 0.0,
        };
        let s = ProtocolSettings {
            warmup_inferences: 0,
            max_runs: u32::MAX,
            cv_target: 1e-12,
            ..Default::default()
        };
        let mut w = Stops(stop.clone(), 0, 3);
        let e = measure_or_stop(&mut d, &mut w, &FreqSetting::Dvfs, 8, &s, Some(&stop));
        assert!(matches!(e, Err(DeviceError::Interrupted)), "{e:?}");
        assert_eq!(w.1, 3, "no run after the stop request");
    }

    fn stepped(min_window_s: f64) -> (Measurement, Vec<u32>) {
        let n = Arc::new(AtomicU32::new(0));
        let mut d = Stepped {
            n: n.clone(),
            windows: vec![],
        };
        let s = ProtocolSettings {
            warmup_inferences: 0,
            min_window_s,
            ..Default::default()
        };
        let m = measure(&mut d, &mut Announces(n), &FreqSetting::Dvfs, 8, &s).unwrap();
        (m, d.windows)
    }

    #[test]
    fn short_runs_are_repeated_inside_one_window_and_reported_per_run() {
        let (m, windows) = stepped(2.0);
        // The first 0.2 s run is discarded; then each window holds 13 runs (2.6 s >= 2 s).
        assert_eq!(windows[0], 3200);
        assert_eq!(m.window_repeats, 13);
        assert!(windows[1..].iter().all(|n| *n == 13 * 3200), "{windows:?}");
        assert_eq!(m.inferences, 3200);
        // Per 3200 inferences: 0.2 s at 300 W = 60 J, within the counter's step.
        assert!((m.time_s - 0.2).abs() < 1e-9, "{}", m.time_s);
        assert!(
            (m.energy_j - 60.0).abs() < 300.0 * 0.05 / 13.0 + 1e-9,
            "{}",
            m.energy_j
        );
        assert!(m.runs.iter().all(|r| (r.time_s - 0.2).abs() < 1e-9));
    }

    #[test]
    fn with_a_minimum_window_the_warm_up_lasts_one_window_too() {
        let n = Arc::new(AtomicU32::new(0));
        let mut d = Stepped {
            n: n.clone(),
            windows: vec![],
        };
        let s = ProtocolSettings {
            min_window_s: 2.0,
            ..Default::default()
        };
        measure(&mut d, &mut Announces(n), &FreqSetting::Dvfs, 8, &s).unwrap();
        // 64 inferences take 4 ms: then 500 x 64 (2 s) before the first measured run.
        assert_eq!(d.windows[..2], [64, 500 * 64]);
    }

    #[test]
    fn without_a_minimum_window_runs_are_not_lengthened() {
        // 0.2 s runs on a 50 ms counter: 0.2 s -> 4 steps -> 60 J, fine; the CV decides.
        let (m, windows) = stepped(0.0);
        assert_eq!(m.window_repeats, 1);
        assert!(windows.iter().all(|n| *n == 3200), "{windows:?}");
    }

    #[test]
    fn settings_are_validated() {
        let mut s = ProtocolSettings::default();
        assert!(s.validate().is_ok());
        s.max_runs = 2;
        let e = s.validate().unwrap_err();
        assert_eq!(e, ProtocolError::MaxBelowMin { max: 2, min: 3 });
        assert!(e.to_string().contains("max_runs"));
        s = ProtocolSettings {
            cv_target: 0.0,
            ..Default::default()
        };
        assert!(s.validate().is_err());
        s = ProtocolSettings {
            min_window_s: -1.0,
            ..Default::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("min_window_s"));
    }
}

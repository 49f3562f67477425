//! The `sim` backend: the digital twin as a device. A [`SimBoard`] holds the board's state (the
//! clocks last applied, a virtual clock, a cumulative energy counter, the noise generator); the
//! [`SimDevice`] sets the clocks and reads the counter; the [`SimWorkload`] runs a model on the
//! board, which advances the clock and the counter by what the twin says, with seeded noise.

pub mod rig;

use crate::catalog::{Board, Model};
use crate::device::{Device, DeviceError, EnergyWindow, FreqSetting, VirtualMeter};
use crate::twin::truth;
use crate::workload::{Meter, Workload, WorkloadRun};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::sync::{Arc, Mutex};

/// Measurement noise of the twin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// Noiseless: the ground truth.
    Off,
    /// Seeded noise with the board's per-run CV.
    Seeded(u64),
}

struct State {
    board: Board,
    setting: FreqSetting,
    meter: VirtualMeter,
    rng: Option<ChaCha8Rng>,
    /// Simulated seconds since the clocks last changed (the settling transient's age).
    since_change_s: f64,
    /// Wall seconds slept per simulated second of a run (0: none).
    sleep_scale: f64,
    /// A rough board's persistent structure (none: the twin's smooth landscape).
    rough: Option<crate::landscape::Roughness>,
    /// Windows that begin in the board's first [`WARMING_S`] read this factor high (a real
    /// board just started: warming up, or still settling from another program), then 1.
    first_run_factor: f64,
    /// Simulated seconds the board has run.
    elapsed_s: f64,
    /// The factor the open window reads.
    window_factor: f64,
}

impl State {
    /// One draw of the board's run-to-run spread, half its energy CV (time and power each carry
    /// half); 1 without noise.
    fn spread(&mut self) -> f64 {
        let sigma = self.board.twin.noise_cv / std::f64::consts::SQRT_2;
        match self.rng.as_mut() {
            Some(rng) if sigma > 0.0 => Normal::new(1.0, sigma)
                .expect("sigma is finite and positive")
                .sample(rng)
                .clamp(0.5, 1.5),
            _ => 1.0,
        }
    }

    /// Moves the virtual clock and counter on; the wall seconds to sleep for it.
    fn advance(&mut self, time_s: f64, energy_j: f64) -> f64 {
        self.since_change_s += time_s;
        self.elapsed_s += time_s;
        self.meter.advance(time_s, energy_j);
        time_s * self.sleep_scale
    }
}

/// How long a board reads high after it starts (`with_first_run_pct`), simulated seconds: the
/// warm-up and the first run of its baseline.
const WARMING_S: f64 = 60.0;

/// Sleeps `s` wall seconds (at most a minute), for a twin that takes time.
fn pace(s: f64) {
    if s > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(s.min(60.0)));
    }
}

/// The simulated board shared by the device and the workload.
#[derive(Clone)]
pub struct SimBoard {
    state: Arc<Mutex<State>>,
}

impl SimBoard {
    /// A board at its default governors, clock and counter at zero.
    pub fn new(board: &Board, noise: Noise) -> SimBoard {
        SimBoard {
            state: Arc::new(Mutex::new(State {
                board: board.clone(),
                setting: FreqSetting::Dvfs,
                meter: VirtualMeter::default(),
                rng: match noise {
                    Noise::Off => None,
                    Noise::Seeded(s) => Some(ChaCha8Rng::seed_from_u64(s)),
                },
                sleep_scale: 0.0,
                rough: None,
                first_run_factor: 1.0,
                elapsed_s: 0.0,
                window_factor: 1.0,
                // The board has been at its governors for long.
                since_change_s: f64::INFINITY,
            })),
        }
    }

    /// Makes the windows that begin in the board's first minute read `pct` percent high: the
    /// warm-up and the first run of its baseline (a fleet's board whose first baseline window
    /// is off).
    pub fn with_first_run_pct(self, pct: f64) -> SimBoard {
        self.lock().first_run_factor = 1.0 + pct / 100.0;
        self
    }

    /// Makes each run take `scale` wall seconds per simulated second (demos, and tests that
    /// interrupt or kill a study part-way).
    pub fn with_sleep(self, scale: f64) -> SimBoard {
        self.lock().sleep_scale = scale;
        self
    }

    /// Makes the board rough: every pinned configuration's energy carries its persistent factor
    /// (measured again, it reads the same structure; only the run-to-run noise differs).
    pub fn with_roughness(self, rough: crate::landscape::Roughness) -> SimBoard {
        self.lock().rough = Some(rough);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of plain numbers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The setting currently applied.
    pub fn setting(&self) -> FreqSetting {
        self.lock().setting
    }

    /// A device handle.
    pub fn device(&self) -> SimDevice {
        SimDevice {
            board: self.clone(),
        }
    }

    /// A workload handle running `model`.
    pub fn workload(&self, model: &Model) -> Result<SimWorkload, crate::catalog::CatalogError> {
        let id = self.lock().board.board.id.clone();
        model.twin_for(&id)?;
        Ok(SimWorkload {
            board: self.clone(),
            model: model.clone(),
        })
    }
}

/// The twin as a device.
pub struct SimDevice {
    board: SimBoard,
}

impl Device for SimDevice {
    fn backend(&self) -> crate::device::BackendKind {
        crate::device::BackendKind::Sim
    }

    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError> {
        let mut s = self.board.lock();
        if let FreqSetting::Pinned {
            cpu_freq_khz,
            gpu_freq_hz,
            ..
        } = setting
        {
            if !s.board.cpu.frequencies_khz.contains(cpu_freq_khz) {
                return Err(DeviceError::Unsupported(format!(
                    "CPU frequency {cpu_freq_khz} kHz is not in the {} table",
                    s.board.board.id
                )));
            }
            if !s.board.gpu.frequencies_hz.contains(gpu_freq_hz) {
                return Err(DeviceError::Unsupported(format!(
                    "GPU frequency {gpu_freq_hz} Hz is not in the {} table",
                    s.board.board.id
                )));
            }
        }
        if s.setting != *setting {
            s.since_change_s = 0.0;
        }
        s.setting = *setting;
        Ok(())
    }

    fn window_begin(&mut self) -> Result<(), DeviceError> {
        let mut s = self.board.lock();
        s.window_factor = if s.elapsed_s < WARMING_S {
            s.first_run_factor
        } else {
            1.0
        };
        s.meter.begin();
        Ok(())
    }

    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
        let mut s = self.board.lock();
        let mut w = s.meter.end()?;
        w.energy_j *= std::mem::replace(&mut s.window_factor, 1.0);
        Ok(w)
    }

    fn restore(&mut self) -> Result<(), DeviceError> {
        self.board.lock().setting = FreqSetting::Dvfs;
        Ok(())
    }

    fn idle(&mut self, time_s: f64) -> Result<(), DeviceError> {
        let mut s = self.board.lock();
        let power_mw = crate::twin::idle_power_at_mw(&s.board, &s.setting);
        // The power half of the run-to-run spread: an idle window has no work to time.
        let f = s.spread();
        let sleep_s = s.advance(time_s, power_mw * f * time_s / 1000.0);
        drop(s);
        pace(sleep_s);
        Ok(())
    }
}

/// A model running on the simulated board.
pub struct SimWorkload {
    board: SimBoard,
    model: Model,
}

impl Workload for SimWorkload {
    fn name(&self) -> String {
        self.model.id().to_string()
    }

    fn run(
        &mut self,
        batch_size: u32,
        inferences: u32,
        meter: &mut dyn Meter,
    ) -> Result<WorkloadRun, DeviceError> {
        if batch_size == 0 || inferences == 0 {
            return Err(DeviceError::Failed(
                "batch size and inference count must be positive".into(),
            ));
        }
        meter.begin()?;
        let mut s = self.board.lock();
        let mut p = truth(&s.board, &self.model, &s.setting, batch_size, inferences);
        p.power_mw *= rough_factor(s.rough.as_ref(), &s.setting, batch_size);
        // Split the energy CV evenly between time and power, which vary independently.
        let ft = s.spread();
        let fp = s.spread();
        let time_s = p.time_s * ft;
        // What the window itself gets wrong: the settling transient and the sensor's steps.
        let w = crate::twin::window_error(
            &s.board.twin.measurement,
            time_s,
            s.since_change_s,
            p.power_mw,
            crate::twin::idle_power_mw(&s.board),
        );
        // Noiseless means the ground truth: no bias either.
        let error = match s.rng.as_mut() {
            Some(rng) if w.edge_sd > 0.0 => {
                let edge = Normal::new(0.0, w.edge_sd).expect("edge_sd is finite and positive");
                w.bias + edge.sample(rng).clamp(-0.5, 0.5)
            }
            Some(_) => w.bias,
            None => 0.0,
        };
        let energy_j = p.power_mw * fp * time_s / 1000.0 * (1.0 + error);
        let sleep_s = s.advance(time_s, energy_j);
        drop(s);
        pace(sleep_s);
        meter.end()?;
        Ok(WorkloadRun { time_s: None })
    }
}

/// A rough board's factor at a setting and batch size: 1 on a smooth board and under the
/// governors (which mix many operating points).
fn rough_factor(
    rough: Option<&crate::landscape::Roughness>,
    setting: &FreqSetting,
    batch_size: u32,
) -> f64 {
    match (rough, setting) {
        (
            Some(r),
            FreqSetting::Pinned {
                cpu_freq_khz,
                gpu_freq_hz,
                ..
            },
        ) => r.factor(&crate::space::Config::new(
            *cpu_freq_khz,
            *gpu_freq_hz,
            batch_size,
        )),
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn workload_advances_clock_and_counter_by_the_twin() {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("alexnet").unwrap());
        let board = SimBoard::new(b, Noise::Off);
        let mut dev = board.device();
        let mut w = board.workload(m).unwrap();
        let set = crate::space::Config::new(921_600, 614_400_000, 0).setting();
        dev.apply(&set).unwrap();
        dev.window_begin().unwrap();
        w.run(8, 3200, &mut crate::workload::NoMeter).unwrap();
        let win = dev.window_end().unwrap();
        let t = truth(b, m, &set, 8, 3200);
        assert!((win.energy_j - t.energy_j).abs() < 1e-9);
        assert!((win.time_s - t.time_s).abs() < 1e-12);
        dev.restore().unwrap();
        assert_eq!(board.setting(), FreqSetting::Dvfs);
    }

    #[test]
    fn the_protocol_s_idle_window_reads_the_twin_s_idle_power_at_the_setting() {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let board = SimBoard::new(b, Noise::Off);
        let (mut dev, mut w) = (board.device(), board.workload(m).unwrap());
        let set = crate::space::Config::new(921_600, 614_400_000, 0).setting();
        let p = crate::measure::ProtocolSettings {
            idle_window_s: 3.0,
            ..Default::default()
        };
        let with = crate::measure::measure(&mut dev, &mut w, &set, 8, &p).unwrap();
        let idle_w = with.idle_power_w.unwrap();
        assert!((idle_w - crate::twin::idle_power_at_mw(b, &set) / 1e3).abs() < 1e-9);
        let without = crate::measure::measure(&mut dev, &mut w, &set, 8, &Default::default());
        let without = without.unwrap();
        assert_eq!(without.idle_power_w, None);
        assert!((with.wall_s - without.wall_s - 3.0).abs() < 1e-6);
    }

    #[test]
    fn noise_has_the_configured_spread_and_is_seeded() {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let sample = |seed| {
            let board = SimBoard::new(b, Noise::Seeded(seed));
            let (mut dev, mut w) = (board.device(), board.workload(m).unwrap());
            (0..400)
                .map(|_| {
                    dev.window_begin().unwrap();
                    // Full-length runs: the sensor's edges add little to the run-to-run CV.
                    w.run(8, 3200, &mut crate::workload::NoMeter).unwrap();
                    dev.window_end().unwrap().energy_j
                })
                .collect::<Vec<_>>()
        };
        let a = sample(7);
        assert_eq!(a, sample(7));
        assert_ne!(a, sample(8));
        let cv = crate::measure::stats::cv(&a);
        assert!((0.015..0.025).contains(&cv), "cv {cv}");
    }

    /// CV and bias of single runs of `n` inferences taken as the protocol takes them: a clock
    /// change, a warm-up of 64 inferences, then the run.
    fn short_runs(board: &str, n: u32) -> (f64, f64, f64) {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board(board).unwrap(), cat.model("resnet18").unwrap());
        let sim = SimBoard::new(b, Noise::Seeded(3));
        let (mut dev, mut w) = (sim.device(), sim.workload(m).unwrap());
        let set = crate::space::Config::new(b.cpu.frequencies_khz[8], b.gpu.frequencies_hz[6], 0)
            .setting();
        let truth_j = truth(b, m, &set, 8, n).energy_j;
        let e: Vec<f64> = (0..400)
            .map(|_| {
                dev.apply(&FreqSetting::Dvfs).unwrap();
                dev.apply(&set).unwrap();
                w.run(8, 64, &mut crate::workload::NoMeter).unwrap();
                dev.window_begin().unwrap();
                w.run(8, n, &mut crate::workload::NoMeter).unwrap();
                dev.window_end().unwrap().energy_j / truth_j
            })
            .collect();
        let t = truth(b, m, &set, 8, n).time_s;
        (
            crate::measure::stats::cv(&e),
            crate::measure::stats::mean(&e) - 1.0,
            t,
        )
    }

    #[test]
    fn shorter_runs_are_noisier_and_biased() {
        for board in ["nano", "xavier-nx"] {
            let rows: Vec<(u32, f64, f64)> = [3200, 800, 200, 50]
                .into_iter()
                .map(|n| {
                    let (cv, bias, t) = short_runs(board, n);
                    eprintln!(
                        "| {board} | {n} | {t:.1} s | {:.2} % | {:+.2} % |",
                        cv * 100.0,
                        bias * 100.0
                    );
                    (n, cv, bias)
                })
                .collect();
            for pair in rows.windows(2) {
                assert!(pair[1].1 > pair[0].1, "{board}: CV {rows:?}");
                assert!(pair[1].2 > pair[0].2, "{board}: bias {rows:?}");
            }
            // At the full protocol's length the run-to-run spread dominates and the bias is
            // under 2 %; at 50 inferences the window is mostly transient.
            assert!(rows[0].1 < 0.03 && rows[0].2 < 0.02, "{board}: {rows:?}");
            assert!(rows[3].2 > 0.03, "{board}: {rows:?}");
        }
    }

    #[test]
    fn frequencies_outside_the_table_are_refused() {
        let cat = Catalog::load(None).unwrap();
        let board = SimBoard::new(cat.board("nano").unwrap(), Noise::Off);
        let e = board
            .device()
            .apply(&crate::space::Config::new(1_000_000, 921_600_000, 0).setting());
        assert!(e.is_err());
    }
}

//! The digital twin's physics: time and power of a board running a model at one operating point,
//! and under its default DVFS governors. Pure functions of the catalogue's parameters; the
//! `sim` device ([`crate::backend::sim`]) adds a virtual clock and measurement noise on top.
//!
//! Per batch of `B` inferences:
//! - GPU compute time `gflops * B / (cores * flops_per_cycle * f_gpu * eff(B))`, with the batch
//!   efficiency `eff(B) = gpu_efficiency * B / (B + batch_half)`;
//! - DRAM time `(weights + activations * B) / bandwidth` (independent of the GPU clock);
//! - CPU time `(mcycles_per_batch + mcycles_per_inference * B) / f_cpu`;
//! - batch time `max(gpu, cpu) + (1 - overlap) * min(gpu, cpu)`.
//!
//! Power is board base + CPU and GPU dynamic power `C * f * V(f)^2 * activity` + leakage
//! `L * V^3` + DRAM power per GB/s; energy is power x time. `V(f)` comes from the voltage table
//! of each board (the T210 CVB tables for the Nano, an empirical fit for the Xavier NX). Under
//! DVFS the governors' residencies mix operating points in time.

use crate::catalog::{Board, BoardTwin, Model, ModelTwin};
use crate::device::FreqSetting;
use crate::space::Space;

/// Result of running `inferences` inferences at one operating point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwinPoint {
    /// Time of one batch.
    pub batch_time_s: f64,
    /// Time for all inferences.
    pub time_s: f64,
    /// Average board power.
    pub power_mw: f64,
    /// Energy for all inferences.
    pub energy_j: f64,
    /// Share of the time the GPU computes.
    pub gpu_util: f64,
    /// Share of the time the CPU does useful work.
    pub cpu_util: f64,
}

/// One batch at one operating point, with board power split into the parts the rails see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchParts {
    /// Time of the batch.
    pub batch_time_s: f64,
    /// Workload-independent board power.
    pub base_mw: f64,
    /// GPU dynamic power and leakage.
    pub gpu_mw: f64,
    /// CPU dynamic power and leakage.
    pub cpu_mw: f64,
    /// DRAM and memory-controller power.
    pub dram_mw: f64,
    /// Share of the time the GPU computes.
    pub gpu_util: f64,
    /// Share of the time the CPU does useful work.
    pub cpu_util: f64,
}

impl BatchParts {
    /// Board power.
    pub fn power_mw(&self) -> f64 {
        self.base_mw + self.gpu_mw + self.cpu_mw + self.dram_mw
    }
}

/// A model on a board: everything the physics needs.
#[derive(Debug, Clone, Copy)]
pub struct TwinModel<'a> {
    /// Board parameters.
    pub board: &'a BoardTwin,
    /// Model parameters for that board.
    pub model: &'a ModelTwin,
    /// GFLOPs per inference (the paper's row).
    pub gflops: f64,
}

/// Linear interpolation in a `[MHz, mV]` table, clamped at both ends and to the floor; volts.
pub fn voltage_v(curve: &[[f64; 2]], v_min_mv: f64, mhz: f64) -> f64 {
    let mv = match curve.iter().position(|p| p[0] >= mhz) {
        None => curve[curve.len() - 1][1],
        Some(0) => curve[0][1],
        Some(i) => {
            let (a, b) = (curve[i - 1], curve[i]);
            a[1] + (b[1] - a[1]) * (mhz - a[0]) / (b[0] - a[0])
        }
    };
    mv.max(v_min_mv) / 1000.0
}

impl TwinModel<'_> {
    /// Time and power of one batch of `batch` inferences at pinned frequencies:
    /// `(batch_time_s, power_mw, gpu_util, cpu_util)`.
    pub fn batch(&self, cpu_freq_khz: u64, gpu_freq_hz: u64, batch: u32) -> (f64, f64, f64, f64) {
        let p = self.batch_parts(cpu_freq_khz, gpu_freq_hz, batch);
        (p.batch_time_s, p.power_mw(), p.gpu_util, p.cpu_util)
    }

    /// One batch at pinned frequencies, with board power split into its parts.
    pub fn batch_parts(&self, cpu_freq_khz: u64, gpu_freq_hz: u64, batch: u32) -> BatchParts {
        let (b, m) = (self.board, self.model);
        let bs = batch as f64;
        let f_gpu_mhz = gpu_freq_hz as f64 / 1e6;
        let f_cpu_mhz = cpu_freq_khz as f64 / 1e3;
        let eff = m.gpu_efficiency * bs / (bs + m.batch_half);
        let peak_flops = b.gpu.cores as f64 * b.gpu.flops_per_core_cycle * f_gpu_mhz * 1e6;
        let t_compute = self.gflops * 1e9 * bs / (peak_flops * eff);
        let bytes = (m.weights_mb + m.activations_mb_per_inference * bs) * 1e6;
        let t_mem = bytes / (b.dram_bandwidth_gbps * 1e9);
        let t_gpu = t_compute + t_mem;
        let t_cpu =
            (m.cpu_mcycles_per_batch + m.cpu_mcycles_per_inference * bs) * 1e6 / (f_cpu_mhz * 1e6);
        let t_batch = t_gpu.max(t_cpu) + (1.0 - m.overlap) * t_gpu.min(t_cpu);

        let v_gpu = voltage_v(&b.gpu.voltage_mv_by_mhz, b.gpu.v_min_mv, f_gpu_mhz);
        let v_cpu = voltage_v(&b.cpu.voltage_mv_by_mhz, b.cpu.v_min_mv, f_cpu_mhz);
        let gpu_activity = (t_compute + b.gpu.mem_stall_activity * t_mem) / t_batch;
        let gpu_mw = b.gpu.dyn_mw_per_mhz_v2 * f_gpu_mhz * v_gpu * v_gpu * gpu_activity
            + b.gpu.leak_mw_at_1v * v_gpu.powi(3);
        let cpu_util = (t_cpu / t_batch).min(1.0);
        // The inference thread works for cpu_util of the time and busy-waits on the GPU for part
        // of the rest; the OS keeps a little of every other core busy.
        let busy_cores = cpu_util
            + m.spin * (1.0 - cpu_util)
            + b.background_core_util * (b.cpu.cores as f64 - 1.0);
        let cpu_mw = b.cpu.dyn_mw_per_mhz_v2 * f_cpu_mhz * v_cpu * v_cpu * busy_cores
            + b.cpu.leak_mw_at_1v * v_cpu.powi(3);
        let dram_mw = b.dram_mw_per_gbps * bytes / t_batch / 1e9;
        BatchParts {
            batch_time_s: t_batch,
            base_mw: b.base_power_mw,
            gpu_mw,
            cpu_mw,
            dram_mw,
            gpu_util: (t_compute / t_batch).min(1.0),
            cpu_util,
        }
    }

    /// `inferences` inferences at pinned frequencies (the last batch may be partial but costs a
    /// whole batch, as a padded batch would).
    pub fn pinned(
        &self,
        cpu_freq_khz: u64,
        gpu_freq_hz: u64,
        batch: u32,
        inferences: u32,
    ) -> TwinPoint {
        let (t_batch, power_mw, gpu_util, cpu_util) = self.batch(cpu_freq_khz, gpu_freq_hz, batch);
        let batches = inferences.div_ceil(batch) as f64;
        let time_s = t_batch * batches;
        TwinPoint {
            batch_time_s: t_batch,
            time_s,
            power_mw,
            energy_j: power_mw * time_s / 1000.0,
            gpu_util,
            cpu_util,
        }
    }

    /// The lowest-energy (CPU, GPU) pair at one batch size over the board's whole frequency grid:
    /// `(energy_j, cpu_freq_khz, gpu_freq_hz)`.
    pub fn pinned_min(&self, board: &Board, batch: u32, inferences: u32) -> (f64, u64, u64) {
        let mut best = (f64::INFINITY, 0, 0);
        for c in &board.cpu.frequencies_khz {
            for g in &board.gpu.frequencies_hz {
                let e = self.pinned(*c, *g, batch, inferences).energy_j;
                if e < best.0 {
                    best = (e, *c, *g);
                }
            }
        }
        best
    }

    /// `inferences` inferences under the default governors: the board spends the residency share
    /// of its time at each (CPU, GPU) frequency pair; energy is average power times the time the
    /// mixed throughput needs.
    pub fn dvfs(&self, board: &Board, batch: u32, inferences: u32) -> TwinPoint {
        let cpu = residency(
            &board.cpu.frequencies_khz,
            self.board.dvfs.cpu_top_residency,
            self.board.dvfs.spread_steps,
        );
        let gpu = residency(
            &board.gpu.frequencies_hz,
            self.board.dvfs.gpu_top_residency,
            self.board.dvfs.spread_steps,
        );
        self.mixture(&cpu, &gpu, batch, inferences)
    }

    /// `inferences` inferences while the clocks spend the given time shares at each CPU and GPU
    /// frequency (independently): the default governors' model, or one clock pinned (a single
    /// share of 1) while the other's governor runs.
    pub fn mixture(
        &self,
        cpu: &[(u64, f64)],
        gpu: &[(u64, f64)],
        batch: u32,
        inferences: u32,
    ) -> TwinPoint {
        let (mut rate, mut power, mut gpu_util, mut cpu_util) = (0.0, 0.0, 0.0, 0.0);
        for (fc, wc) in cpu {
            for (fg, wg) in gpu {
                let w = wc * wg;
                let (t, p, gu, cu) = self.batch(*fc, *fg, batch);
                rate += w / t;
                power += w * p;
                gpu_util += w * gu;
                cpu_util += w * cu;
            }
        }
        let batches = inferences.div_ceil(batch) as f64;
        let time_s = batches / rate;
        TwinPoint {
            batch_time_s: 1.0 / rate,
            time_s,
            power_mw: power,
            energy_j: power * time_s / 1000.0,
            gpu_util,
            cpu_util,
        }
    }
}

/// Power of the idle board: base, the OS's background load on CPU cores at their lowest clock,
/// CPU leakage at the floor voltage; the idle GPU is rail-gated.
pub fn idle_power_mw(board: &Board) -> f64 {
    board.twin.base_power_mw + idle_cpu_mw(&board.twin, board.cpu.frequencies_khz[0], 1.0)
}

/// The idle CPU at `cpu_freq_khz`: the OS's background load on every core, and `leak_share` of
/// the leakage at that clock's voltage.
fn idle_cpu_mw(t: &crate::catalog::BoardTwin, cpu_freq_khz: u64, leak_share: f64) -> f64 {
    let f_mhz = cpu_freq_khz as f64 / 1e3;
    let v = voltage_v(&t.cpu.voltage_mv_by_mhz, t.cpu.v_min_mv, f_mhz);
    t.cpu.dyn_mw_per_mhz_v2 * f_mhz * v * v * t.background_core_util * t.cpu.cores as f64
        + leak_share * t.cpu.leak_mw_at_1v * v.powi(3)
}

/// Power of the board idling between inferences that arrive at a rate, at a setting. The gaps
/// are short (33 ms at 30 per second), shorter than the GPU's rail-gate delay, so its rail stays
/// at the voltage of its clock; clock gating stops dynamic power, and power gating (the GPU's
/// engine-level gating, the CPU cores' deepest idle state) leaves `idle_leak_share` of each
/// unit's leakage. The OS's background load runs at the CPU's clock. Pinned clocks hold their
/// voltages through the gaps; the default governors drop to their lowest steps.
pub fn idle_power_at_mw(board: &Board, setting: &FreqSetting) -> f64 {
    let t = &board.twin;
    let (cpu_khz, gpu_hz) = match setting {
        FreqSetting::Pinned {
            cpu_freq_khz,
            gpu_freq_hz,
            ..
        } => (*cpu_freq_khz, *gpu_freq_hz),
        FreqSetting::Dvfs => (board.cpu.frequencies_khz[0], board.gpu.frequencies_hz[0]),
    };
    let v_gpu = voltage_v(
        &t.gpu.voltage_mv_by_mhz,
        t.gpu.v_min_mv,
        gpu_hz as f64 / 1e6,
    );
    t.base_power_mw
        + idle_cpu_mw(t, cpu_khz, t.idle_leak_share)
        + t.idle_leak_share * t.gpu.leak_mw_at_1v * v_gpu.powi(3)
}

/// What one energy window of the twin gets wrong, relative to its true energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowError {
    /// Systematic excess from the settling transient after the last clock change.
    pub bias: f64,
    /// Standard deviation of the error from integrating a sensor that moves in steps.
    pub edge_sd: f64,
}

/// The error of a window `time_s` long that opens `since_change_s` after the last clock change,
/// on a board drawing `busy_mw` (`idle_mw` between windows).
///
/// - Settling: power runs `settle_bias` above steady right after a change, decaying with
///   `settle_tau_s`; the window's share of that excess is the bias.
/// - Edges: the poller sees a new value only every `max(refresh, poll)` seconds, so each edge of
///   the window is placed within one step; the two edges, each uniform over one step of the
///   busy-minus-idle power, give `step / sqrt(6) * (busy - idle) / busy / time_s`.
pub fn window_error(
    m: &crate::catalog::TwinMeasurement,
    time_s: f64,
    since_change_s: f64,
    busy_mw: f64,
    idle_mw: f64,
) -> WindowError {
    let t = time_s.max(1e-6);
    let tau = m.settle_tau_s;
    let bias = m.settle_bias * tau / t
        * ((-since_change_s.max(0.0) / tau).exp() - (-(since_change_s.max(0.0) + t) / tau).exp());
    let step = m.sensor_refresh_s.max(m.poll_s);
    let swing = ((busy_mw - idle_mw) / busy_mw.max(1e-9)).clamp(0.0, 1.0);
    WindowError {
        bias,
        edge_sd: step / 6f64.sqrt() * swing / t,
    }
}

/// Time shares per frequency under a default governor: `top` at the highest step, the rest
/// spread evenly over the `spread` steps below it.
pub fn residency(table: &[u64], top: f64, spread: usize) -> Vec<(u64, f64)> {
    let n = table.len();
    let below = spread.min(n - 1);
    let mut out = vec![(table[n - 1], if below == 0 { 1.0 } else { top })];
    for i in 1..=below {
        out.push((table[n - 1 - i], (1.0 - top) / below as f64));
    }
    out
}

/// Noiseless twin result for a setting (the ground truth the noisy runs scatter around).
pub fn truth(
    board: &Board,
    model: &Model,
    setting: &FreqSetting,
    batch: u32,
    inferences: u32,
) -> TwinPoint {
    let tm = TwinModel {
        board: &board.twin,
        model: model
            .twin
            .get(&board.board.id)
            .expect("twin parameters checked when the workload was made"),
        gflops: model.paper.gflops,
    };
    match setting {
        FreqSetting::Pinned {
            cpu_freq_khz,
            gpu_freq_hz,
            ..
        } => tm.pinned(*cpu_freq_khz, *gpu_freq_hz, batch, inferences),
        FreqSetting::Dvfs => tm.dvfs(board, batch, inferences),
    }
}

/// The noiseless twin at every configuration of a space, in grid order (the ground truth that
/// benches, plots and conformance tests judge against).
pub fn true_grid(board: &Board, model: &Model, space: &Space, inferences: u32) -> Vec<TwinPoint> {
    space
        .points()
        .map(|p| {
            let c = space.config(&p);
            truth(board, model, &c.setting(), c.batch_size, inferences)
        })
        .collect()
}

/// [`true_grid`] of a rough board: every configuration's energy times its persistent factor
/// (the ground truth a rough board's noisy runs scatter around).
pub fn rough_grid(
    board: &Board,
    model: &Model,
    space: &Space,
    inferences: u32,
    rough: &crate::landscape::Roughness,
) -> Vec<TwinPoint> {
    true_grid(board, model, space, inferences)
        .into_iter()
        .zip(space.points())
        .map(|(mut t, p)| {
            let f = rough.factor(&space.config(&p));
            t.power_mw *= f;
            t.energy_j *= f;
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn voltage_interpolates_and_clamps() {
        let c = [[100.0, 800.0], [200.0, 1000.0]];
        assert!((voltage_v(&c, 0.0, 150.0) - 0.9).abs() < 1e-12);
        assert!((voltage_v(&c, 0.0, 50.0) - 0.8).abs() < 1e-12);
        assert!((voltage_v(&c, 0.0, 500.0) - 1.0).abs() < 1e-12);
        assert!((voltage_v(&c, 850.0, 100.0) - 0.85).abs() < 1e-12);
    }

    #[test]
    fn residency_sums_to_one_with_the_top_share() {
        let r = residency(&[1, 2, 3, 4, 5], 0.89, 3);
        assert_eq!(r[0], (5, 0.89));
        assert_eq!(r.len(), 4);
        assert!((r.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(residency(&[7], 0.5, 3), vec![(7, 1.0)]);
    }

    #[test]
    fn idle_power_grows_with_the_pinned_clocks_and_stays_below_busy_power() {
        let cat = Catalog::load(None).unwrap();
        for id in ["nano", "xavier-nx"] {
            let b = cat.board(id).unwrap();
            let (c, g) = (&b.cpu.frequencies_khz, &b.gpu.frequencies_hz);
            let pin = |i: usize, j: usize| crate::space::Config::new(c[i], g[j], 8).setting();
            let (low, high) = (pin(2, 2), pin(c.len() - 1, g.len() - 1));
            let idle = |s: &FreqSetting| idle_power_at_mw(b, s);
            assert!(idle(&low) < idle(&high), "{id}");
            // The governors idle at their lowest steps.
            assert!((idle(&FreqSetting::Dvfs) - idle(&pin(0, 0))).abs() < 1e-9);
            assert!(idle(&FreqSetting::Dvfs) > b.twin.base_power_mw);
            let m = cat.model("resnet18").unwrap();
            let busy = truth(b, m, &high, 8, 3200).power_mw;
            assert!(
                idle(&high) < 0.8 * busy,
                "{id}: idle {} busy {busy}",
                idle(&high)
            );
        }
    }

    #[test]
    fn faster_clocks_shorten_time_and_raise_power() {
        let cat = Catalog::load(None).unwrap();
        let b = cat.board("nano").unwrap();
        let m = cat.model("resnet18").unwrap();
        let t = TwinModel {
            board: &b.twin,
            model: m.twin_for("nano").unwrap(),
            gflops: m.paper.gflops,
        };
        let slow = t.pinned(1_479_000, 307_200_000, 8, 3200);
        let fast = t.pinned(1_479_000, 921_600_000, 8, 3200);
        assert!(fast.time_s < slow.time_s);
        assert!(fast.power_mw > slow.power_mw);
        let e = fast.power_mw * fast.time_s / 1000.0;
        assert!((e - fast.energy_j).abs() < 1e-9);
        // 3200 / 12 is not whole: the partial batch costs a whole one.
        let mb = cat.model("mobilenet-v2").unwrap();
        let t = TwinModel {
            board: &b.twin,
            model: mb.twin_for("nano").unwrap(),
            gflops: mb.paper.gflops,
        };
        let p = t.pinned(1_479_000, 921_600_000, 12, 3200);
        assert!((p.time_s / p.batch_time_s - 267.0).abs() < 1e-9);
    }
}

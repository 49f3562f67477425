//! The summary `tune` prints: the recommendation, its saving, how it was found.

use super::source::Source;
use super::{at_batch, human_duration, Best, Report};
use crate::units::{cpu_mhz, gpu_mhz};

/// The human summary `tune` prints.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let source = r.backend.words_on(r.emulated);
    s += &format!(
        "edgetune tune: {} on {} ({}), strategy {}\n",
        r.model, r.device, source, r.strategy
    );
    match &r.best {
        Some(b) => s += &recommendation(r, b),
        None => s += "no configuration was measured, so there is no recommendation\n",
    }
    for w in r.convergence_warnings() {
        s += &format!("warning: {w}\n");
    }
    if let Some(w) = r.lower_readings_words() {
        s += &format!("note: {w}\n");
    }
    if let Some(w) = r.surrogate_words() {
        s += &format!("note: {w}\n");
    }
    if let Some(w) = r.boards_words() {
        s += &format!("{w}\n");
    }
    match (&r.objective_value, r.objective.as_str()) {
        (Some(v), "edp") => s += &format!(
            "objective edp (energy x time per inference): {:.2} mJ ms at the recommendation, {:.2} mJ ms at the baseline{}: {:.1} % lower\n",
            v.best * 1e6, v.baseline * 1e6, at_batch(r.baseline.batch_size), v.saving_pct
        ),
        // Time is the only other objective with a value: seconds for the workload.
        (Some(v), _) => s += &format!(
            "objective {} (for the workload): {:.2} s at the recommendation, {:.2} s at the baseline{}: {:.1} % lower\n",
            r.objective, v.best, v.baseline, at_batch(r.baseline.batch_size), v.saving_pct
        ),
        (None, "energy") => {}
        (None, o) => s += &format!("objective: {o} (lower is better)\n"),
    }
    if !r.constraints.is_empty() {
        s += &format!(
            "constraints: {}; {}\n",
            r.constraint_list(),
            match r.best_feasible {
                Some(true) => "the recommendation meets them (with a 99 % one-sided margin for run-to-run noise)",
                Some(false) => "NO measured configuration met them; the recommendation is the least infeasible one",
                None => "nothing was measured",
            }
        );
    }
    if !r.failed.is_empty() {
        s += &format!(
            "{} could not be measured (the workload failed there, or the table has no row for them); why is in report.json and report.md\n",
            match r.failed.len() {
                1 => "1 configuration".to_string(),
                n => format!("{n} configurations"),
            }
        );
    }
    if !r.pareto.is_empty() {
        s += &format!(
            "energy-latency Pareto front: {} of the measured configurations (pareto.csv, pareto.svg)\n",
            r.pareto.len()
        );
    }
    s += &format!(
        "measured {} of {} configurations ({:.1} % of the grid); {}\n",
        r.measured_configs,
        r.grid_size,
        100.0 * r.measured_configs as f64 / r.grid_size.max(1) as f64,
        r.stop_reason
    );
    s += &format!("search: {}\n", r.exploration_words());
    s += &format!(
        "time spent measuring: {}{}\n",
        human_duration(r.tuning_time_s),
        if r.backend.is_simulated() {
            " (simulated: what the board would have taken)"
        } else {
            ""
        }
    );
    s
}

/// The recommendation's lines: its knobs, its energy, its savings against the baseline.
fn recommendation(r: &Report, b: &Best) -> String {
    let mut s = String::new();
    s += &format!("recommended: {}\n", knob_words(r, &b.config));
    let time = if b.energy.time_s > 0.0 {
        format!(
            "time {} s, average power {:.2} W",
            figure(b.energy.time_s),
            b.energy.avg_power_w
        )
    } else {
        "time and power not recorded".to_string()
    };
    s += &format!(
        "energy{}: {} J per {} ({:.1} mJ each), {time}\n",
        if r.at_rate.is_some() {
            " while busy"
        } else {
            ""
        },
        figure(b.energy.energy_j),
        crate::units::inferences(r.inferences),
        b.energy.energy_per_inference_mj
    );
    if let Some(a) = &r.at_rate {
        s += &rate_line(r, a);
    }
    let knobs = r.varied_knobs();
    // On a GPU the baseline is its default clocks; a table without DVFS rows has its
    // all-max corner stand in.
    let base_name = r.baseline.kind.short();
    if let (Some(p), Some(base)) = (r.saving_same_batch_pct, &r.baseline_same_batch) {
        s += &format!(
            "saving vs {base_name}{} ({knobs} only): {p:.1} % ({}{base_name} {} J)\n",
            at_batch(base.batch_size),
            interval(r.saving_same_batch_interval_pct),
            figure(r.compared_same_batch_j(base))
        );
    }
    // At the baseline's batch (or with no batch knob) the line above says it all.
    if let Some(p) = r.saving_pct.filter(|_| !r.one_saving()) {
        let what = if r.baseline_same_batch.is_some() {
            format!("{knobs} and batch size")
        } else {
            "batch size".into()
        };
        s += &format!(
            "saving vs {base_name} at batch {} ({what}): {p:.1} % ({}{base_name} {} J)\n",
            r.baseline.batch_size,
            interval(r.saving_interval_pct),
            figure(r.compared_baseline_j())
        );
    }
    s
}

/// A study at a rate: the energy with the idle between arrivals, which the savings compare.
fn rate_line(r: &Report, a: &super::rate::AtRate) -> String {
    let watts = |w: Option<f64>| w.map_or("an unmeasured power".into(), |w| format!("{w:.2} W"));
    format!(
        "at {} inferences/s ({} arrive over {} s): {} J, idle between them at {}; the savings compare energies at this rate ({} idle: {})\n",
        a.rate_hz,
        crate::units::inferences(r.inferences),
        figure(a.arrival_s),
        a.best_energy_j.map_or("?".into(), figure),
        watts(a.best_idle_power_w),
        r.baseline.kind.short(),
        watts(a.baseline_idle_power_w),
    )
}

/// `95 % interval 10.9 to 13.5 %; ` where a saving has one.
fn interval(i: Option<[f64; 2]>) -> String {
    i.map_or(String::new(), |i| {
        format!("{}; ", super::words::interval_words(i))
    })
}

/// A figure with one decimal from 1 up (`791.7`), with three significant digits below it
/// (`0.243`): a table of energy per inference reads 0.2 J otherwise.
fn figure(x: f64) -> String {
    if x.abs() >= 1.0 || x == 0.0 {
        format!("{x:.1}")
    } else {
        let decimals = (2 - x.abs().log10().floor() as i32).clamp(1, 9) as usize;
        format!("{x:.decimals$}")
    }
}

/// The recommendation's knobs as `tune` prints them (clocks with their sysfs values, so they can
/// be typed back to `--fix`); a knob at 0 is not one, except an NVIDIA GPU's default clocks.
fn knob_words(r: &Report, c: &crate::space::Config) -> String {
    let mut parts = Vec::new();
    if let Some(m) = c.power_mode {
        parts.push(format!("power mode {m} (sudo nvpmodel -m {m})"));
    }
    if c.cpu_freq_khz != 0 {
        let khz = c.cpu_freq_khz;
        parts.push(format!("CPU {} MHz ({khz} kHz)", cpu_mhz(khz)));
    }
    match c.gpu_freq_hz {
        0 if r.backend == crate::device::BackendKind::Nvml => {
            parts.push("GPU default clocks".into())
        }
        0 => {}
        hz => parts.push(format!("GPU {} MHz ({hz} Hz)", gpu_mhz(hz))),
    }
    if let Some(f) = c.emc_freq_hz {
        parts.push(format!("memory {} MHz ({f} Hz)", gpu_mhz(f)));
    }
    if let Some(n) = c.cpu_cores {
        parts.push(format!("{n} CPU cores online"));
    }
    if c.batch_size != 0 {
        parts.push(format!("batch {}", c.batch_size));
    }
    parts.join(", ")
}

/// The line a worker prints when it stops: what it measured of the study, and why it stopped.
pub fn worker_line(board: &str, study: &str, rep: &crate::study::fleet::WorkerReport) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "{board}: measured {} configuration{} of study `{study}`{}{}{}{}",
        rep.measured.len(),
        plural(rep.measured.len()),
        match (rep.baseline_runs, rep.shares) {
            (0, 0) => String::new(),
            (b, c) => format!(
                ", {b} run{} of DVFS baselines and {c} run{} of confirmations at the full protocol",
                plural(b),
                plural(c)
            ),
        },
        match rep.confirmed_short {
            0 => String::new(),
            n => format!(
                ", could not confirm {n} candidate{} at the full protocol (the recorded table has no more readings of it)",
                plural(n)
            ),
        },
        match rep.duplicates {
            0 => String::new(),
            n => format!(", {n} dropped (measured by another worker first)"),
        },
        if rep.interrupted {
            "; interrupted"
        } else {
            "; the study is done"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::figure;

    #[test]
    fn figures_below_one_keep_three_significant_digits() {
        assert_eq!(figure(791.66), "791.7");
        assert_eq!(figure(38.09), "38.1");
        assert_eq!(figure(0.243212), "0.243");
        assert_eq!(figure(0.0299), "0.0299");
        assert_eq!(figure(0.0), "0.0");
    }
}

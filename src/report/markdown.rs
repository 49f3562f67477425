//! `report.md`: the recommendation first, then how it was found, then every measurement.

use super::{human_duration, Report};

fn mhz_khz(khz: u64) -> String {
    format!("{:.1}", khz as f64 / 1e3)
}
fn mhz_hz(hz: u64) -> String {
    format!("{:.1}", hz as f64 / 1e6)
}

/// Renders the Markdown report.
pub fn render(r: &Report) -> String {
    let mut s = format!("# edgetune: {} on {}\n\n", r.model, r.device);
    match r.backend.as_str() {
        "sim" => s += "Measured on the **digital twin** of the board (no board was attached), not on hardware.\n\n",
        "replay" => s += "Replayed from a **recorded table**, not measured now.\n\n",
        _ => {}
    }
    if r.baseline.kind != "dvfs" {
        s += &format!("The baseline is `{}`: the table has no rows for the default governors, so the all-max clock corner stands in for them.\n\n", r.baseline.kind);
    }
    match &r.best {
        Some(b) => {
            s += "## Recommendation\n\n| CPU (MHz) | GPU (MHz) | batch | energy (J) | time (s) | avg power (W) | mJ / inference |\n|---|---|---|---|---|---|---|\n";
            s += &format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} |\n\n",
                mhz_khz(b.cpu_freq_khz),
                mhz_hz(b.gpu_freq_hz),
                b.batch_size,
                b.energy_j,
                b.time_s,
                b.avg_power_w,
                b.energy_per_inference_mj
            );
            if let (Some(p), Some(base)) = (r.saving_same_batch_pct, &r.baseline_same_batch) {
                s += &format!(
                    "- Saving against the default DVFS governors at the same batch size ({}): **{p:.1} %** ({:.1} J).\n",
                    base.batch_size, base.energy_j
                );
            }
            if let Some(p) = r.saving_pct {
                s += &format!(
                    "- Saving against DVFS at the baseline batch size ({}), frequencies and batch size together: **{p:.1} %** ({:.1} J).\n",
                    r.baseline.batch_size, r.baseline.energy_j
                );
            }
            s += "\n";
        }
        None => s += "No configuration was measured, so there is no recommendation.\n\n",
    }
    s += &format!(
        "## How it was found\n\n- Strategy `{}` (seed {}), {} of {} configurations measured ({:.1} % of the grid), budget {}.\n- Stopped because: {}.\n- Time spent measuring: {}.\n",
        r.strategy,
        r.seed,
        r.measured_configs,
        r.grid_size,
        100.0 * r.measured_configs as f64 / r.grid_size.max(1) as f64,
        r.budget,
        r.stop_reason,
        human_duration(r.tuning_time_s)
    );
    if r.resumed_configs > 0 {
        s += &format!(
            "- {} measurements were taken from the journal of an earlier run.\n",
            r.resumed_configs
        );
    }
    s += &format!(
        "- Protocol: {} inferences per run, warm-up {} inferences, runs repeated until the CV of energy is under {:.1} % ({}-{} runs).\n\n",
        r.protocol.inferences,
        r.protocol.warmup_inferences,
        r.protocol.cv_target * 100.0,
        r.protocol.min_runs,
        r.protocol.max_runs
    );
    s += "## Measurements\n\n| # | CPU (MHz) | GPU (MHz) | batch | energy (J) | time (s) | power (W) | runs | CV (%) |\n|---|---|---|---|---|---|---|---|---|\n";
    s += &format!(
        "| DVFS | governor | governor | {} | {:.1} | {:.1} | {:.2} | {} | {:.1} |\n",
        r.baseline.batch_size,
        r.baseline.energy_j,
        r.baseline.time_s,
        r.baseline.avg_power_w,
        r.baseline.runs,
        r.baseline.cv * 100.0
    );
    for m in &r.measurements {
        s += &format!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.2} | {} | {:.1} |\n",
            m.n,
            mhz_khz(m.cpu_freq_khz),
            mhz_hz(m.gpu_freq_hz),
            m.batch_size,
            m.energy_j,
            m.time_s,
            m.avg_power_w,
            m.runs,
            m.cv * 100.0
        );
    }
    s
}

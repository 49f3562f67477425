//! The text `bench` and `bench-fleet` write: their Markdown tables.

use crate::bench::{BenchReport, StrategySummary};
use crate::fleet_bench::FleetBenchReport;

/// Hours with two decimals, "not known" without a time model.
fn hours(h: f64, p90: Option<f64>) -> String {
    match p90 {
        _ if !h.is_finite() => "not known".into(),
        Some(p) => format!("{h:.2} / {p:.2}"),
        None => format!("{h:.2}"),
    }
}

/// The bench table in Markdown.
pub fn markdown(r: &BenchReport) -> String {
    let mut s = format!(
        "# edgetune bench ({})\n\n{} seeds x {} models x {} boards, budget {}. Regret is the true energy (noiseless twin, or the table's mean per configuration) of each strategy's recommendation above the grid minimum.\n\n",
        match r.source.as_str() {
            "twin" => "digital twin, noise on".to_string(),
            "rough twin" => "rough boards: the twin with a persistent structure per configuration, noise on".to_string(),
            s => format!("replay table {s}"),
        },
        r.seeds,
        r.models.len(),
        r.devices.len(),
        r.budget
    );
    if !r.goal.is_plain() {
        s += &format!(
            "Objective: {}; constraints: {}; regret is against the true constrained minimum, and an infeasible recommendation counts as never within reach.{}\n\n",
            r.goal.objective.name(),
            serde_json::to_string(&r.goal.limits).unwrap_or_default(),
            if r.goal.pareto {
                " With --pareto: measurements until the true hypervolume of the measured configurations (latency, energy per inference, scaled by the true front's ideal and nadir, reference 1.1, 1.1) reached 95 % of the true front's."
            } else {
                ""
            }
        );
    }
    s += "| strategy | scope | studies | measurements (median) | % of grid (median) | to 1 % (med/p90) | to 2 % (med/p90) | to 5 % (med/p90) | final regret % (med/p90) | within 3 % | feasible | to 95 % hypervolume (med/p90) | tuning time / sweep (median) | board time h (med/p90) | board time h, sum of cell medians |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let line = |name: &str, scope: &str, x: &StrategySummary| {
        format!(
            "| {name} | {scope} | {} | {:.0} | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} | {:.0} % | {:.0} % | {} | {} | {} | {} |\n",
            x.runs,
            x.measurements.median,
            x.grid_share_pct.median,
            x.to_1pct.median,
            x.to_1pct.p90,
            x.to_2pct.median,
            x.to_2pct.p90,
            x.to_5pct.median,
            x.to_5pct.p90,
            // No feasible configuration anywhere (limits nothing meets): no regret to give.
            match (x.final_regret_pct.median, x.final_regret_pct.p90) {
                (m, p) if m.is_finite() && p.is_finite() => format!("{m:.2} / {p:.2}"),
                _ => "- (nothing meets the limits)".into(),
            },
            x.within_3pct_share * 100.0,
            x.feasible_share * 100.0,
            x.to_95pct_hypervolume
                .map_or("-".into(), |h| format!("{:.0} / {:.0}", h.median, h.p90)),
            // A replayed table has no time model, so no sweep to compare with.
            match x.tuning_time_fraction.median {
                m if m.is_finite() => format!("{m:.3}"),
                _ => "not known (no time model)".into(),
            },
            hours(x.board_time_h.median, Some(x.board_time_h.p90)),
            hours(x.board_time_h_cells, None),
        )
    };
    for (name, x) in &r.strategies {
        s += &line(name, "all", x);
        for (key, d) in &r.by_device {
            if let Some(dev) = key.strip_prefix(&format!("{name}/")) {
                s += &line(name, dev, d);
            }
        }
    }
    if !r.landscape.is_empty() {
        s += "\n## The rough boards against real tables\n\nEach study measured a board of its own, rough as real boards are; the statistics of their noiseless grids (lowest, median and highest over the boards) beside the range the eleven real tables of `real-landscapes.md` span.\n\n| statistic | rough boards: lowest | median | highest | real tables | inside |\n|---|---|---|---|---|---|\n";
        for l in &r.landscape {
            s += &format!(
                "| {} | {:.1} | {:.1} | {:.1} | {} - {} | {} |\n",
                l.statistic,
                l.lowest,
                l.median,
                l.highest,
                l.real[0],
                l.real[1],
                if l.inside { "yes" } else { "**no**" }
            );
        }
    }
    s += "\n## Per model (median over seeds)\n\n| strategy | board | model | measurements | final regret % (median) | final regret % (p90) |\n|---|---|---|---|---|---|\n";
    for (key, x) in &r.by_model {
        let parts: Vec<&str> = key.splitn(3, '/').collect();
        let pct = |v: f64| match v.is_finite() {
            true => format!("{v:.2}"),
            false => "-".into(),
        };
        s += &format!(
            "| {} | {} | {} | {:.0} | {} | {} |\n",
            parts[0],
            parts[1],
            parts[2],
            x.measurements.median,
            pct(x.final_regret_pct.median),
            pct(x.final_regret_pct.p90)
        );
    }
    s
}

/// `bench-fleet` as a markdown table.
pub fn fleet_markdown(r: &FleetBenchReport) -> String {
    let mut s = format!(
        "# bench-fleet: {} on {}, {} with {} measurements, seeds 1-{}, twin sleeping {} s per simulated s{}\n\n| workers | median wall time | vs {} worker{} | final regret median | mean | p90 | board time (simulated, all boards) |\n|---|---|---|---|---|---|---|\n",
        r.model, r.device, r.strategy, r.budget, r.seeds, r.twin_sleep,
        if r.static_power_pct != 0.0 { format!(", every other board +{} % static power (regret: the worse of both boards' twins)", r.static_power_pct) } else { String::new() },
        r.summary.first().map_or(1, |x| x.workers),
        if r.summary.first().map_or(1, |x| x.workers) == 1 { "" } else { "s" },
    );
    for x in &r.summary {
        s += &format!(
            "| {} | {:.1} s | {:.2}x | {:.2} % | {:.2} % | {:.2} % | {:.2} h |\n",
            x.workers,
            x.wall_s,
            x.wall_ratio,
            x.regret_median_pct,
            x.regret_mean_pct,
            x.regret_p90_pct,
            x.board_s / 3600.0
        );
    }
    s
}

//! `report.md`: the recommendation first, then how it was found, then every measurement.

use super::{human_duration, Energy, Report};
use crate::device::BaselineKind;
use crate::space::{Config, Knob};

use super::source::Source;
use crate::units::{cpu_cell as mhz_khz, gpu_cell as mhz_hz};

/// Renders the Markdown report.
pub fn render(r: &Report) -> String {
    let mut s = format!("# edgetune: {} on {}\n\n", r.model, r.device);
    s += &provenance(r);
    s += &recommendation(r);
    s += &how_found(r);
    s += &notes_and_plots(r);
    s += &measurements(r);
    s += &boards(r);
    s += &failures_and_front(r);
    s += &rails(r);
    s
}

/// A table's knob columns: a header cell and the separator for each of `knobs`.
fn knob_header(knobs: &[Knob]) -> (String, String) {
    let names: Vec<&str> = knobs
        .iter()
        .map(|k| match k {
            Knob::CpuFreqKhz => "CPU (MHz)",
            Knob::GpuFreqHz => "GPU (MHz)",
            Knob::EmcFreqHz => "memory (MHz)",
            Knob::CpuCores => "CPU cores",
            Knob::PowerMode => "power mode",
            Knob::BatchSize => "batch",
        })
        .collect();
    (
        names.iter().map(|n| format!(" {n} |")).collect(),
        "---|".repeat(knobs.len()),
    )
}

/// A configuration's values of `knobs` as table cells, each followed by ` |`.
fn knob_cells(knobs: &[Knob], c: &Config) -> String {
    knobs
        .iter()
        .map(|k| {
            let v = c.get(*k).unwrap_or(0);
            match k {
                Knob::CpuFreqKhz => format!(" {} |", mhz_khz(v)),
                Knob::GpuFreqHz | Knob::EmcFreqHz => format!(" {} |", mhz_hz(v)),
                Knob::CpuCores | Knob::PowerMode | Knob::BatchSize => format!(" {v} |"),
            }
        })
        .collect()
}

/// ` (95 % interval 8.6 to 15.6 %, from both sides' runs)` where a saving has one.
fn interval(i: Option<[f64; 2]>) -> String {
    i.map_or(String::new(), |i| {
        format!(
            " ({}, from both sides' runs)",
            super::words::interval_words(i)
        )
    })
}

/// A configuration's knobs, energy, time and power as table cells.
fn cells(knobs: &[Knob], c: &Config, e: &Energy) -> String {
    format!(
        "{} {:.1} | {} | {}",
        knob_cells(knobs, c),
        e.energy_j,
        or_not_recorded(e.time_s, 1),
        or_not_recorded(e.avg_power_w, 2)
    )
}

/// A time or power, or "not recorded" where a table gave none (0).
fn or_not_recorded(v: f64, decimals: usize) -> String {
    if v > 0.0 {
        format!("{v:.decimals$}")
    } else {
        "not recorded".into()
    }
}

/// Where the figures came from, and what the baseline is when it is not DVFS.
fn provenance(r: &Report) -> String {
    let mut s = String::new();
    if let Some(d) = r.backend.disclaimer_on(r.emulated) {
        s += &format!("{d}\n\n");
    }
    match r.baseline.kind {
        BaselineKind::Dvfs => {}
        BaselineKind::MaxClocks => s += "The baseline is `max-clocks`: the table has no rows for the default governors, so the all-max clock corner stands in for them.\n\n",
        kind => s += &format!("The baseline is {}.\n\n", kind.words()),
    }
    s
}

/// The recommended configuration and its savings.
fn recommendation(r: &Report) -> String {
    let Some(b) = &r.best else {
        return "No configuration was measured, so there is no recommendation.\n\n".into();
    };
    let knobs = r.knobs();
    let (names, rule) = knob_header(&knobs);
    let mut s = format!("## Recommendation\n\n|{names} energy (J) | time (s) | avg power (W) | mJ / inference |\n|{rule}---|---|---|---|\n");
    s += &format!(
        "|{} | {:.1} |\n\n",
        cells(&knobs, &b.config, &b.energy),
        b.energy.energy_per_inference_mj
    );
    if let (Some(p), Some(base)) = (r.saving_same_batch_pct, &r.baseline_same_batch) {
        s += &format!(
            "- Saving against {}{}: **{p:.1} %**{} ({:.1} J).\n",
            r.baseline.kind.words(),
            match base.batch_size {
                0 => String::new(),
                b => format!(" at the same batch size ({b})"),
            },
            interval(r.saving_same_batch_interval_pct),
            r.compared_same_batch_j(base)
        );
    }
    // At the baseline's batch (or with no batch knob) the line above says it all.
    if let Some(p) = r.saving_pct.filter(|_| !r.one_saving()) {
        let knobs = r.varied_knobs();
        s += &format!(
            "- Saving against {} at the baseline batch size ({}), {knobs} and batch size together: **{p:.1} %**{} ({:.1} J).\n",
            r.baseline.kind.words(), r.baseline.batch_size, interval(r.saving_interval_pct),
            r.compared_baseline_j()
        );
    }
    if let Some(a) = &r.at_rate {
        s += &rate_bullet(r, a);
    }
    if let Some(v) = &r.objective_value {
        let (scale, unit) = match r.objective.as_str() {
            "edp" => (1e6, " mJ ms per inference (energy x time per inference)"),
            _ => (1.0, " s for the workload"),
        };
        s += &format!(
            "- Objective `{}`: {:.2}{unit} at the recommendation, {:.2} at the baseline{}: **{:.1} %** lower.\n",
            r.objective,
            v.best * scale,
            v.baseline * scale,
            super::at_batch(r.baseline.batch_size),
            v.saving_pct
        );
    }
    for w in r.convergence_warnings() {
        s += &format!("- **Warning**: {w}.\n");
    }
    if let Some(w) = r.lower_readings_words() {
        s += &format!("- Note: {w}.\n");
    }
    if let Some(w) = r.surrogate_words() {
        s += &format!("- Note: {w}.\n");
    }
    if let Some(w) = r.boards_words() {
        s += &format!("- Boards: {w}.\n");
    }
    s + "\n"
}

/// Strategy, stop reason, objective and limits, the protocol.
fn how_found(r: &Report) -> String {
    let mut s = format!(
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
    s += &format!("- Board time: {}.\n", r.exploration_words());
    if r.objective != "energy" || !r.constraints.is_empty() {
        let limits = r.constraint_list();
        s += &format!(
            "- Objective: {}{}.\n",
            r.objective,
            match r.best_feasible {
                Some(true) => format!("; constraints {limits} met by the recommendation (with a noise margin)"),
                Some(false) => format!("; constraints {limits}: **no measured configuration met them**, the least infeasible is recommended"),
                None => String::new(),
            }
        );
    }
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
    s
}

/// What the device noted, and the plots.
fn notes_and_plots(r: &Report) -> String {
    let mut s = String::new();
    if !r.notes.is_empty() {
        s += "## Notes from the device\n\n";
        for n in &r.notes {
            s += &format!("- {n}\n");
        }
        s += "\n";
    }
    if !r.plots.is_empty() {
        s += "## Plots\n\n";
        for p in &r.plots {
            let title = p.trim_end_matches(".svg").replace('-', " ");
            s += &format!("![{title}]({p})\n\n");
        }
    }
    s
}

/// The baseline and every measured configuration.
fn measurements(r: &Report) -> String {
    let mut s = String::new();
    // With limits, a column says which measurements met them (with the noise margin).
    let limits = r.measurements.iter().any(|m| m.feasible.is_some());
    let knobs = r.knobs();
    let (names, rule) = knob_header(&knobs);
    // A study measured by several boards says which board each row's figure is from.
    let by_board = r.measurements.iter().any(|m| m.board.is_some());
    let cell = |b: Option<&str>| match by_board {
        true => format!(" {} |", b.unwrap_or("-")),
        false => String::new(),
    };
    s += &format!(
        "## Measurements\n\n| # |{}{names} energy (J) | time (s) | power (W) | mJ / inference | runs | CV (%) |{}\n|---|{}{rule}---|---|---|---|---|---|{}\n",
        if by_board { " board |" } else { "" },
        if limits { " meets the limits |" } else { "" },
        if by_board { "---|" } else { "" },
        if limits { "---|" } else { "" }
    );
    let b = &r.baseline;
    // The baseline's row says what it is: the governors, or the all-max corner standing in.
    let (name, clocks) = match b.kind {
        BaselineKind::Dvfs => (b.kind.short(), "governor"),
        BaselineKind::MaxClocks => ("max clocks (stands in for DVFS)", "max"),
        BaselineKind::DefaultClocks => (b.kind.short(), "default"),
        BaselineKind::AsFound => (b.kind.short(), "as found"),
        BaselineKind::HighestMode => ("highest power mode (stands in for DVFS)", "highest"),
    };
    let setting: String = knobs
        .iter()
        .map(|k| match k {
            Knob::BatchSize => format!(" {} |", b.batch_size),
            _ => format!(" {clocks} |"),
        })
        .collect();
    let first = r.boards.iter().find(|b| b.baseline_energy_j > 0.0);
    s += &format!(
        "| {name} |{}{setting} {:.1} | {} | {} | {:.1} | {} | {} |{}\n",
        cell(first.map(|b| b.board.as_str())),
        b.energy_j,
        or_not_recorded(b.time_s, 1),
        or_not_recorded(b.avg_power_w, 2),
        b.energy_j / f64::from(r.inferences.max(1)) * 1e3,
        b.runs,
        if b.runs < 2 {
            "-".to_string()
        } else {
            format!("{:.1}", b.cv * 100.0)
        },
        if limits { " (reference) |" } else { "" }
    );
    for m in &r.measurements {
        // A single run has no CV; a screened row is for its own, shorter runs.
        let cv = match m.runs {
            0 | 1 => "-".to_string(),
            _ => format!("{:.1}", m.cv * 100.0),
        };
        let screened = m.screened_inferences.map_or(String::new(), |n| {
            format!(" (screening: {n} inferences a run)")
        });
        let meets = match m.feasible {
            Some(true) => " yes |",
            Some(false) => " no |",
            None => "",
        };
        // Per inference, a screened row compares with the full-protocol ones.
        s += &format!(
            "| {}{screened} |{}{} | {:.1} | {} | {cv} |{meets}\n",
            m.n,
            cell(m.board.as_deref()),
            cells(&knobs, &m.config, &m.energy),
            m.energy.energy_per_inference_mj,
            m.runs
        );
    }
    if r.measurements
        .iter()
        .any(|m| m.screened_inferences.is_some())
    {
        s += "\nRows marked *screening* were measured with shorter runs while exploring: their energy and time are for those runs, not final figures (compare rows by mJ / inference); the recommendation above is measured at the full protocol.\n";
    }
    s
}

/// A study at a rate: the energies with the idle between arrivals, which the savings compare.
fn rate_bullet(r: &Report, a: &super::rate::AtRate) -> String {
    let w = |w: Option<f64>| w.map_or("unmeasured".into(), |w| format!("{w:.2} W"));
    format!(
        "- At **{} inferences/s** (the {} arrive over {:.1} s, and the board idles between them): {} J at the recommendation (idle {}), {:.1} J under {} at batch {} (idle {}). The table's energies are the busy runs alone; the savings above compare energies at this rate.\n",
        a.rate_hz,
        r.inferences,
        a.arrival_s,
        a.best_energy_j.map_or("-".into(), |e| format!("{e:.1}")),
        w(a.best_idle_power_w),
        a.baseline_energy_j,
        r.baseline.kind.short(),
        r.baseline.batch_size,
        w(a.baseline_idle_power_w),
    )
}

/// A study measured by several boards: each board's DVFS baseline, offset and share.
fn boards(r: &Report) -> String {
    if r.boards.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n## Boards\n\n| board | backend | DVFS at batch {} (J) | offset (%) | configurations measured |\n|---|---|---|---|---|\n",
        r.baseline.batch_size
    );
    for b in &r.boards {
        let base = match b.baseline_energy_j {
            e if e > 0.0 => format!("{e:.1}"),
            _ => "not measured".into(),
        };
        s += &format!(
            "| {} | {} | {base} | {:+.1} | {} |\n",
            b.board,
            b.backend,
            b.offset_pct,
            b.configs.len()
        );
    }
    s += "\nEvery board's figures were divided by its offset (its DVFS baseline against the boards' geometric mean) before the search compared them; the rows above are as each board measured them.\n";
    s
}

/// Where the workload failed, and the Pareto front.
fn failures_and_front(r: &Report) -> String {
    let mut s = String::new();
    if !r.failed.is_empty() {
        s += "\n## Configurations not measured (the workload failed there, or the table has no row)\n\n";
        for f in &r.failed {
            s += &format!("- {}:\n\n```\n{}\n```\n\n", f.config, f.error);
        }
    }
    if !r.pareto.is_empty() {
        let knobs = r.knobs();
        let (names, rule) = knob_header(&knobs);
        s += &format!("\n## Energy-latency Pareto front\n\n| # |{names} latency (ms per batch) | mJ / inference |\n|---|{rule}---|---|\n");
        for p in &r.pareto {
            s += &format!(
                "| {} |{} {:.1} | {:.1} |\n",
                p.n,
                knob_cells(&knobs, &p.config),
                p.latency_ms,
                p.energy_per_inference_mj
            );
        }
    }
    s
}

/// Per-rail energies, where the board has rails (one column per rail, in name order).
fn rails(r: &Report) -> String {
    let mut s = String::new();
    let rails: Vec<&String> = r
        .measurements
        .first()
        .map(|m| m.rail_energy_j.keys().collect())
        .unwrap_or_default();
    if !rails.is_empty() {
        s += &format!(
            "\n## Energy per rail (J)\n\n| # | {} |\n|---|{}\n",
            rails
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(rails.len())
        );
        for m in &r.measurements {
            let cells: Vec<String> = rails
                .iter()
                .map(|k| {
                    m.rail_energy_j
                        .get(*k)
                        .map_or("".into(), |e| format!("{e:.2}"))
                })
                .collect();
            s += &format!("| {} | {} |\n", m.n, cells.join(" | "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::ProtocolSettings;
    use crate::report::{Baseline, Best, Row};

    /// A fixed report, so the snapshot pins the layout and nothing else.
    fn sample() -> Report {
        let row = |n, cpu, gpu, b, e: f64| Row {
            n,
            config: Config::new(cpu, gpu, b),
            energy: Energy {
                energy_j: e,
                time_s: e / 3.0,
                avg_power_w: 3.0,
                energy_per_inference_mj: e / 3.2,
                idle_power_w: None,
            },
            runs: 3,
            cv: 0.012,
            run_energies_j: vec![e, e, e],
            rail_energy_j: Default::default(),
            window_repeats: 1,
            latency_ms: 10.0,
            feasible: None,
            screened_inferences: None,
            board: None,
        };
        let base = |b, e| Baseline {
            kind: BaselineKind::Dvfs,
            batch_size: b,
            energy_j: e,
            time_s: e / 4.0,
            avg_power_w: 4.0,
            cv: 0.02,
            runs: 3,
            converged: true,
            idle_power_w: None,
        };
        Report {
            edgetune_version: "0.1.0".into(),
            model: "yolov4-tiny".into(),
            device: "nano".into(),
            backend: crate::device::BackendKind::Sim,
            strategy: "bayes".into(),
            seed: 42,
            inferences: 3200,
            protocol: ProtocolSettings::default(),
            grid_size: 900,
            measured_configs: 2,
            budget: 90,
            stop_reason: "the budget of 2 measurements was used".into(),
            resumed_configs: 0,
            tuning_time_s: 7200.0,
            best: Some(Best {
                config: Config::new(825_600, 537_600_000, 64),
                energy: Energy {
                    energy_j: 800.0,
                    time_s: 300.0,
                    avg_power_w: 2.667,
                    energy_per_inference_mj: 250.0,
                    idle_power_w: None,
                },
            }),
            baseline: base(4, 1150.0),
            baseline_same_batch: Some(base(64, 890.0)),
            saving_pct: Some(30.4),
            saving_same_batch_pct: Some(10.1),
            saving_interval_pct: Some([25.0, 33.1]),
            saving_same_batch_interval_pct: None,
            measurements: vec![
                row(1, 1_479_000, 921_600_000, 64, 890.0),
                row(2, 825_600, 537_600_000, 64, 800.0),
            ],
            plots: vec!["energy-vs-gpu.svg".into(), "convergence.svg".into()],
            notes: Vec::new(),
            objective: "energy".into(),
            constraints: Vec::new(),
            best_feasible: None,
            pareto: Vec::new(),
            failed: Vec::new(),
            exploration: crate::study::Exploration {
                race: true,
                screen_inferences: Some(400),
            },
            prior: "the catalogue's digital twin".into(),
            best_confirmed: true,
            objective_value: None,
            lower_readings: Vec::new(),
            final_choice: Some(crate::report::FinalChoiceReport {
                candidates: vec![2],
                unresolved: Vec::new(),
            }),
            surrogate: None,
            emulated: false,
            boards: Vec::new(),
            board_spread_pct: None,
            at_rate: None,
        }
    }

    #[test]
    fn report_md_layout() {
        insta::assert_snapshot!(render(&sample()));
    }

    #[test]
    fn lower_single_readings_than_the_recommendation_are_found_and_explained() {
        let mut r = sample();
        let goal = crate::objective::Goal::default();
        let best = crate::objective::Quantities {
            energy_j: 800.0,
            time_s: 300.0,
            inferences: 3200,
            batch_size: 64,
            idle_power_w: None,
        };
        // The sample's rows read 890 J and 800 J (the recommendation); a third reads 780 J.
        let mut lower_row = r.measurements[1].clone();
        (lower_row.n, lower_row.energy.energy_j) = (3, 780.0);
        r.measurements.push(lower_row);
        let lower = crate::report::build::lower_readings(&goal, &r.measurements, &best);
        assert_eq!(lower, [3]);
        let expect = lower;
        // A screened row is for shorter runs: never compared.
        r.measurements
            .iter_mut()
            .for_each(|m| m.screened_inferences = Some(400));
        assert!(crate::report::build::lower_readings(&goal, &r.measurements, &best).is_empty());
        r.lower_readings = expect;
        let md = render(&r);
        assert!(
            md.contains("measurements reading lower on the objective (energy) than the recommendation: #3 (2.5 % lower) of fewer runs than the protocol's 3"),
            "{md}"
        );
        // At the full protocol, a lower reading is within the noise of the comparison.
        r.measurements[2].runs = 3;
        r.measurements[2].screened_inferences = None;
        r.measurements[2].cv = 0.01;
        let md = render(&r);
        assert!(
            md.contains("#3 (2.5 % lower) at the full protocol, within two standard errors"),
            "{md}"
        );
    }

    #[test]
    fn an_unconverged_baseline_and_a_table_without_times_are_said_so() {
        let mut r = sample();
        r.baseline.converged = false;
        r.baseline.cv = 0.54;
        r.baseline.runs = 10;
        r.baseline.kind = BaselineKind::MaxClocks;
        r.measurements[0].energy.time_s = 0.0;
        r.measurements[0].energy.avg_power_w = 0.0;
        let md = render(&r);
        assert!(
            md.contains("did not converge (CV 54.0 % after 10 runs"),
            "{md}"
        );
        assert!(md.contains("the savings against it are uncertain"));
        assert!(
            md.contains("| max clocks (stands in for DVFS) | max | max |"),
            "{md}"
        );
        assert!(!md.contains("default DVFS governors"), "{md}");
        assert!(md.contains("not recorded"), "{md}");
        let sum = crate::report::summary::summary(&r);
        assert!(
            sum.contains("warning: the baseline at batch 4 did not converge"),
            "{sum}"
        );
        assert!(sum.contains("saving vs max clocks"), "{sum}");
    }
}

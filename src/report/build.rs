//! Building a [`Report`] from a study's outcome: its rows, the recommendation, the front and the
//! objective's value.

use super::*;
use crate::study::Outcome;

impl Report {
    /// Builds the report of a study.
    pub fn build(ctx: &ReportContext<'_>, o: &Outcome) -> Report {
        // A recommendation not yet confirmed (a signal) is stated at full length, and flagged.
        let best_m = o.best().map(|b| b.measurement.at_length(o.inferences));
        let best = o
            .best()
            .zip(best_m.as_ref())
            .map(|(b, m)| best_of(&b.config, m));
        let goal = &ctx.goal;
        let compared = |m: &Measurement| rate::compared_energy_j(goal, m);
        let limits = ctx.goal.limits_info();
        let rows = rows_of(ctx, o, !limits.is_empty());
        let best_feasible = o.best.and_then(|i| rows[i].feasible);
        let lower_readings = o.best().map_or(Vec::new(), |b| {
            let at_best = Quantities::of(&b.measurement.at_length(o.inferences));
            lower_readings(&ctx.goal, &rows, &at_best)
        });
        let pareto = if ctx.goal.pareto {
            pareto_points(&rows)
        } else {
            Vec::new()
        };
        let same = o
            .baseline_same_batch
            .as_ref()
            .map(|m| Baseline::of(m, ctx.baseline_kind));
        Report {
            edgetune_version: env!("CARGO_PKG_VERSION").into(),
            model: ctx.model.into(),
            device: ctx.device.into(),
            backend: ctx.backend,
            strategy: ctx.strategy.into(),
            seed: ctx.seed,
            inferences: ctx.protocol.inferences,
            protocol: ctx.protocol,
            grid_size: ctx.grid_size,
            measured_configs: o.measured.len(),
            budget: ctx.budget,
            stop_reason: o.stop_reason.to_string(),
            resumed_configs: o.resumed,
            tuning_time_s: o.tuning_time_s(),
            saving_pct: best_m
                .as_ref()
                .map(|b| saving_pct(compared(&o.baseline), compared(b))),
            saving_same_batch_pct: best_m
                .as_ref()
                .zip(o.baseline_same_batch.as_ref())
                .map(|(b, s)| saving_pct(compared(s), compared(b))),
            saving_interval_pct: best_m.as_ref().and_then(|b| {
                saving_interval_pct(
                    MeanOf::compared(goal, &o.baseline),
                    MeanOf::compared(goal, b),
                )
            }),
            saving_same_batch_interval_pct: best_m
                .as_ref()
                .zip(o.baseline_same_batch.as_ref())
                .and_then(|(b, s)| {
                    saving_interval_pct(MeanOf::compared(goal, s), MeanOf::compared(goal, b))
                }),
            at_rate: rate::at_rate(
                goal,
                o.inferences,
                best_m.as_ref(),
                &o.baseline,
                o.baseline_same_batch.as_ref(),
            ),
            best,
            baseline: Baseline::of(&o.baseline, ctx.baseline_kind),
            baseline_same_batch: same,
            measurements: rows,
            plots: Vec::new(),
            notes: Vec::new(),
            objective: ctx.goal.objective.name().into(),
            constraints: limits,
            best_feasible,
            pareto,
            failed: o
                .failed
                .iter()
                .map(|(config, error)| Failed {
                    config: *config,
                    error: error.clone(),
                })
                .collect(),
            exploration: ctx.exploration,
            prior: ctx.prior.into(),
            best_confirmed: o.best_full,
            objective_value: objective_value(ctx, o),
            lower_readings,
            final_choice: o.best().map(|_| FinalChoiceReport {
                candidates: o.choice.candidates.iter().map(|i| i + 1).collect(),
                unresolved: o.choice.unresolved.clone(),
            }),
            surrogate: o.surrogate,
            emulated: false,
            boards: Vec::new(),
            board_spread_pct: None,
        }
    }
}

/// Every measurement once, with its feasibility when there are limits; the recommendation's
/// and the front are read off these rows.
fn rows_of(ctx: &ReportContext<'_>, o: &Outcome, limited: bool) -> Vec<Row> {
    o.measured
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut r = row(i + 1, &m.config, &m.measurement);
            r.screened_inferences =
                (m.measurement.inferences != o.inferences).then_some(m.measurement.inferences);
            if limited {
                let full = m.measurement.at_length(o.inferences);
                let g = ctx.goal.measured_constraints(&full, &o.baseline);
                r.feasible = Some(crate::objective::violation(&g) <= 0.0);
            }
            r
        })
        .collect()
}

/// The rows on the latency-energy Pareto front.
fn pareto_points(rows: &[Row]) -> Vec<ParetoPoint> {
    let q: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r.latency_ms, r.energy.energy_per_inference_mj))
        .collect();
    crate::objective::pareto_front(&q)
        .into_iter()
        .map(|i| {
            let r = &rows[i];
            ParetoPoint {
                n: r.n,
                config: r.config,
                energy_j: r.energy.energy_j,
                time_s: r.energy.time_s,
                energy_per_inference_mj: r.energy.energy_per_inference_mj,
                latency_ms: r.latency_ms,
            }
        })
        .collect()
}

/// The full-length rows that meet the limits and read lower on the objective than `best`.
pub(crate) fn lower_readings(
    goal: &crate::objective::Goal,
    rows: &[Row],
    best: &Quantities,
) -> Vec<usize> {
    let at_best = goal.value(best);
    rows.iter()
        .filter(|r| r.screened_inferences.is_none() && r.feasible != Some(false))
        .filter(|r| {
            let q = Quantities {
                energy_j: r.energy.energy_j,
                time_s: r.energy.time_s,
                inferences: best.inferences,
                batch_size: r.config.batch_size,
                idle_power_w: r.energy.idle_power_w,
            };
            goal.value(&q) < at_best
        })
        .map(|r| r.n)
        .collect()
}

/// The objective's value at the recommendation and the baseline, when it is not energy.
fn objective_value(ctx: &ReportContext<'_>, o: &Outcome) -> Option<ObjectiveValue> {
    if ctx.goal.objective == crate::objective::Objective::Energy {
        return None;
    }
    let best = o.best()?.measurement.at_length(o.inferences);
    let (b, base) = (
        ctx.goal.value(&Quantities::of(&best)),
        ctx.goal.value(&Quantities::of(&o.baseline)),
    );
    Some(ObjectiveValue {
        best: b,
        baseline: base,
        saving_pct: saving_pct(base, b),
    })
}

//! The sentences a [`Report`] says about itself, which report.md and the summary both print.

use super::*;

impl Report {
    /// Which boards measured the study, in words (none for one board).
    pub fn boards_words(&self) -> Option<String> {
        if self.boards.len() < 2 {
            return None;
        }
        let each: Vec<String> = self
            .boards
            .iter()
            .map(|b| format!("{} {} ({:+.1} %)", b.board, b.configs.len(), b.offset_pct))
            .collect();
        Some(format!(
            "measured by {} boards (configurations each, offset against their mean): {}; their DVFS baselines spread {:.1} %, and every value was divided by its board's offset before the search saw it",
            self.boards.len(),
            each.join(", "),
            self.board_spread_pct.unwrap_or(0.0)
        ))
    }

    /// Why measurements that read lower than the recommendation were not recommended, when
    /// there are any: each is within the noise of a full-protocol comparison, or a reading of
    /// fewer runs than the protocol's.
    pub fn lower_readings_words(&self) -> Option<String> {
        let best = self.best.as_ref()?;
        if self.lower_readings.is_empty() {
            return None;
        }
        let rows: Vec<&Row> = self
            .lower_readings
            .iter()
            .filter_map(|n| self.measurements.get(n - 1))
            .collect();
        let full = |r: &Row| self.meets_protocol(r);
        let list = |rs: Vec<&&Row>| {
            rs.iter()
                .map(|r| {
                    format!(
                        "#{} ({:.1} % lower)",
                        r.n,
                        (1.0 - r.energy.energy_j / best.energy.energy_j) * 100.0
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        let (within, short): (Vec<&&Row>, Vec<&&Row>) = rows.iter().partition(|r| full(r));
        if !within.is_empty() {
            parts.push(format!(
                "{} at the full protocol, within two standard errors of the recommendation's figure (run-to-run noise can order them either way)",
                list(within)
            ));
        }
        if !short.is_empty() {
            parts.push(format!(
                "{} of fewer runs than the protocol's {} (single readings{}), which {} weighs against the readings around them; {}",
                list(short),
                self.protocol.min_runs,
                if self.backend == crate::device::BackendKind::Replay { " a table cannot repeat" } else { " or racing's two" },
                self.strategy,
                if self.backend == crate::device::BackendKind::Replay {
                    "the final choice compared the table's lowest readings and the surrogate's best"
                } else {
                    "the final choice measured the candidates it found likely to beat the recommendation at the full protocol, and these were not"
                }
            ));
        }
        Some(format!(
            "measurements reading lower on the objective ({}) than the recommendation: {}",
            self.objective,
            parts.join("; ")
        ))
    }

    /// Whether a row meets the full protocol (its length, at least the fewest runs, converged or
    /// out of runs).
    pub fn meets_protocol(&self, r: &Row) -> bool {
        let p = &self.protocol;
        r.screened_inferences.is_none()
            && r.runs as u32 >= p.min_runs
            && (r.cv < p.cv_target || r.runs as u32 >= p.max_runs)
    }

    /// What the surrogate's own check says when it describes the measurements poorly.
    pub fn surrogate_words(&self) -> Option<String> {
        let c = self.surrogate.as_ref().filter(|c| c.poor)?;
        Some(format!(
            "the surrogate describes the measurements poorly (its leave-one-out errors are {:.1} times their expected size; structure fitted {:.1} %, noise {:.1} % per run from {:.0} degrees of freedom): its estimates are uncertain, and the recommendation rests on the full-protocol comparison of the final choice",
            c.loo_rms, c.structure_pct, c.noise_pct, c.noise_df
        ))
    }

    /// What the saving at the same batch size varies: a table's power mode, or the clocks.
    pub fn varied_knobs(&self) -> &'static str {
        match self.best.as_ref().and_then(|b| b.config.power_mode) {
            Some(_) => "power mode",
            None => "frequencies",
        }
    }

    /// The baseline energy the saving at the baseline batch compares: at the rate, where the
    /// study has one.
    pub fn compared_baseline_j(&self) -> f64 {
        self.at_rate
            .map_or(self.baseline.energy_j, |a| a.baseline_energy_j)
    }

    /// The same for the baseline at the recommended batch, `base`.
    pub fn compared_same_batch_j(&self, base: &super::Baseline) -> f64 {
        self.at_rate
            .and_then(|a| a.baseline_same_batch_energy_j)
            .unwrap_or(base.energy_j)
    }

    /// Whether the saving against the baseline at the recommended batch is the only one: the
    /// batch size is not a knob, or the recommendation is at the baseline's batch.
    pub fn one_saving(&self) -> bool {
        self.baseline_same_batch
            .as_ref()
            .is_some_and(|b| b.batch_size == self.baseline.batch_size)
    }

    /// The knobs of the study's configurations, in [`Knob::EVERY`] order: a knob at 0 (or
    /// absent) in every configuration is not one (see [`Config`]), and no output shows it.
    pub fn knobs(&self) -> Vec<Knob> {
        let configs: Vec<&Config> = self
            .measurements
            .iter()
            .map(|m| &m.config)
            .chain(self.best.iter().map(|b| &b.config))
            .collect();
        Knob::EVERY
            .into_iter()
            // A power mode's id may be 0.
            .filter(|k| {
                configs
                    .iter()
                    .any(|c| c.get(*k).is_some_and(|v| v != 0 || *k == Knob::PowerMode))
            })
            .collect()
    }

    /// Warnings about figures that did not converge (the baselines' runs above the CV target),
    /// one sentence each; the savings against such a baseline are uncertain.
    pub fn convergence_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let min_runs = self.protocol.min_runs as usize;
        let mut check = |name: &str, b: &Baseline| {
            if !b.converged && b.runs < min_runs && b.cv < self.protocol.cv_target {
                // A table's few readings: not a spread seen, a spread not known.
                w.push(format!(
                    "the {name}{} rests on {} reading{} (the protocol takes {min_runs}): its spread is unknown, so the savings against it are uncertain",
                    at_batch(b.batch_size),
                    b.runs,
                    if b.runs == 1 { "" } else { "s" },
                ));
            } else if !b.converged {
                w.push(format!(
                    "the {name}{} did not converge (CV {:.1} % after {} run{}, target {:.1} %): the savings against it are uncertain",
                    at_batch(b.batch_size),
                    b.cv * 100.0,
                    b.runs,
                    if b.runs == 1 { "" } else { "s" },
                    self.protocol.cv_target * 100.0
                ));
            }
        };
        check("baseline", &self.baseline);
        if let Some(s) = &self.baseline_same_batch {
            if s.batch_size != self.baseline.batch_size {
                check("baseline", s);
            }
        }
        w
    }

    /// How the search spent board time, in one sentence: racing, screening runs, the prior,
    /// and whether the recommendation was confirmed at the full protocol.
    pub fn exploration_words(&self) -> String {
        let e = &self.exploration;
        let mut parts = Vec::new();
        if e.race && crate::strategy::pools_readings(&self.strategy) {
            parts.push(
                "one exploring run a configuration (two for the first four: the noise of one run, measured)"
                    .to_string(),
            );
        } else if e.race {
            parts.push(
                "racing (one run first, a second only while a configuration could still be the best)"
                    .to_string(),
            );
        }
        if let Some(n) = e.screen_inferences {
            parts.push(format!(
                "screening runs of at least {n} inferences (whole batches, at least 20 s at the baseline's pace)"
            ));
        }
        let how = if parts.is_empty() {
            "every configuration measured at the full protocol".to_string()
        } else {
            parts.join(", ")
        };
        let prior = match self.prior.as_str() {
            "" | "none" => String::new(),
            p => format!("; prior: {p}"),
        };
        let compared = match self.final_choice.as_ref().map(|c| &c.candidates[..]) {
            Some(c) if c.len() > 1 => Some(
                c.iter()
                    .map(|n| format!("#{n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => None,
        };
        let replay = self.backend == crate::device::BackendKind::Replay;
        let confirmed = match (self.best.is_some(), self.best_confirmed, compared) {
            (false, _, _) => String::new(),
            (true, full, Some(c)) if replay => format!(
                "; final choice: {c} compared by their readings (a table cannot be measured again), the lowest recommended{}",
                if full { "" } else { "; its figure rests on fewer readings than the protocol's runs" }
            ),
            (true, true, Some(c)) => format!(
                "; final choice: {c} measured at the full protocol, one run of each in turn, the lowest confirmed figure recommended"
            ),
            (true, _, _) if self.exploration == Default::default() && self.best_confirmed => {
                String::new()
            }
            (true, true, None) => "; the recommendation was confirmed at the full protocol".into(),
            (true, false, _) if replay => "; the recommendation does NOT meet the full protocol: the table holds fewer readings of it than the protocol's runs (or their CV is above the target)".into(),
            (true, false, _) => format!(
                "; the recommendation is NOT confirmed at the full protocol: {}, so its figure comes from exploring runs",
                // Only a signal should leave it unconfirmed; anything else is said as it was.
                if self.stop_reason == StopReason::Interrupted.to_string() {
                    "a signal stopped the study first".to_string()
                } else {
                    format!("its confirmation did not finish (the study: {})", self.stop_reason)
                }
            ),
        };
        format!("{how}{prior}{confirmed}")
    }

    /// The constraints as people write them (`max_slowdown 1.2 x, max_power_w 10 W`).
    pub fn constraint_list(&self) -> String {
        self.constraints
            .iter()
            .map(|c| {
                // A slowdown is against the baseline at its batch size: say which.
                let at = if c.name == "max_slowdown" {
                    at_batch(self.baseline.batch_size)
                } else {
                    String::new()
                };
                format!("{} {} {}{at}", c.name, c.limit, c.unit)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A saving's interval in words: `95 % interval 8.6 to 15.6 %`.
pub fn interval_words([lo, hi]: [f64; 2]) -> String {
    format!("95 % interval {lo:.1} to {hi:.1} %")
}

//! The engine: the one study loop. The strategy proposes, the engine measures through the
//! protocol, records (journal or storage), tells the strategy and reports an [`Event`]; the
//! final choice ([`super::choice`]) confirms the recommendation. A fleet's worker
//! ([`super::fleet`]) drives the same steps for its claims, and `study report` replays stored
//! records through the same `tell_*` steps, so the bookkeeping exists once.

use super::*;

/// What [`Study::take`] got for a configuration.
pub(super) enum Taken {
    /// Its measurement, and whether it came from the journal.
    Measured(Measurement, bool),
    /// The workload failed there (with its error), or a recorded table has no row for it
    /// (`false`: a hole says nothing of whether the workload works).
    Failed(String, bool),
    /// A signal stopped the measurement.
    Interrupted,
}

impl Study<'_> {
    /// Tells the strategy of an exploring measurement and keeps it: `told` is what the strategy
    /// sees (a fleet's figure in the study's common units), `kept` what the study reports.
    pub(super) fn tell_measured(
        &mut self,
        f: &mut Found,
        point: Point,
        told: &Measurement,
        kept: Measured,
        baseline: &Measurement,
    ) {
        let obs = self.observe(point, told, baseline, self.run_cv(baseline));
        self.strategy.tell(&obs);
        f.add(obs, kept);
    }

    /// Tells the strategy of a confirmation at the full protocol of measurement `i`; the
    /// caller keeps its figure.
    pub(super) fn tell_confirmed(
        &mut self,
        f: &mut Found,
        point: Point,
        told: &Measurement,
        baseline: &Measurement,
    ) {
        let obs = self.observe(point, told, baseline, self.run_cv(baseline));
        self.strategy.tell(&obs);
        f.history.push(obs);
    }

    /// Tells the strategy that the workload failed at `point` (or a table has a hole there): a
    /// penalised value, never asked again.
    pub(super) fn tell_failed(&mut self, f: &mut Found, point: Point) {
        let obs = Observation {
            point,
            value: penalised(1e6),
            failed: true,
            ..Default::default()
        };
        self.strategy.tell(&obs);
        f.history.push(obs);
    }

    pub(super) fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    pub(super) fn baseline_at(&mut self, batch: u32) -> Result<(Measurement, bool), StudyError> {
        if let Some(m) = self.prior.baselines.get(&batch) {
            return Ok((m.clone(), true));
        }
        let m = measure_or_stop(
            self.device,
            self.workload,
            &FreqSetting::Dvfs,
            batch,
            &self.protocol,
            self.interrupt.as_deref(),
        )
        .map_err(|source| StudyError::Device {
            what: format!("the DVFS baseline at batch {batch}"),
            source,
        })?;
        if let Some(j) = self.journal.as_mut() {
            j.record(&JournalRecord::Baseline {
                measurement: m.clone(),
            })?;
        }
        Ok((m, false))
    }

    /// What the strategy is told of a measurement: the objective's value, the constraints
    /// (conservative), the batch latency, all for runs of the protocol's length (a screened
    /// measurement scaled up). A strategy that does not model constraints sees an infeasible
    /// point as worse than any feasible one. `run_cv` stands in for the CV of a single run.
    pub(super) fn observe(
        &self,
        point: Point,
        m: &Measurement,
        baseline: &Measurement,
        run_cv: f64,
    ) -> Observation {
        let screened = m.inferences != self.protocol.inferences;
        let m = &m.at_length(self.protocol.inferences);
        let q = Quantities::of(m);
        let constraints = self.goal.measured_constraints(m, baseline);
        let v = violation(&constraints);
        let value = if v > 0.0 && !self.strategy.handles_constraints() {
            penalised(v)
        } else {
            self.goal.value(&q)
        };
        Observation {
            point,
            value,
            cv: if m.runs.len() < 2 { run_cv } else { m.cv },
            runs: m.runs.len() as u32,
            constraints,
            latency_ms: q.latency_ms(),
            failed: false,
            cost_s: m.wall_s,
            spread_unknown: m.runs.len() < 2 && baseline.runs.len() < 2,
            first_run_excess: first_run_excess(&m.runs),
            screened,
            pending: false,
        }
    }

    /// The protocol's settings while exploring at `batch`: screening runs where asked for,
    /// whole batches, and never shorter than [`MIN_SCREEN_S`] at the baseline's pace (a short
    /// window is noisy and biased by the settling after the clock change).
    pub(super) fn explore_settings(&self, batch: u32, baseline: &Measurement) -> ProtocolSettings {
        let mut p = self.protocol;
        if let Some(n) = self.exploration.screen_inferences {
            let per_inference_s = baseline.time_s / baseline.inferences.max(1) as f64;
            let long_enough = if per_inference_s > 0.0 {
                (MIN_SCREEN_S / per_inference_s).ceil().min(u32::MAX as f64) as u32
            } else {
                0
            };
            // In u64: a workload whose time does not grow with its count asks for ~2^32.
            let b = u64::from(batch.max(1));
            let n = u64::from(n.max(long_enough)).div_ceil(b) * b;
            p.inferences = n.min(u64::from(p.inferences)).max(1) as u32;
        }
        p
    }

    /// CV of one exploring run: the baseline's, floored. Screening windows are held to at least
    /// [`MIN_SCREEN_S`], where the run-to-run spread dominates what the window adds.
    pub(super) fn run_cv(&self, baseline: &Measurement) -> f64 {
        baseline.cv.max(RACE_MIN_CV)
    }

    /// Whether a measurement meets the full protocol (what a report may state).
    pub(super) fn is_full(&self, m: &Measurement) -> bool {
        let p = &self.protocol;
        m.inferences == p.inferences
            && m.runs.len() as u32 >= p.min_runs
            && (m.converged || m.runs.len() as u32 >= p.max_runs)
    }

    /// Runs the study. The device is restored on every path out of this function.
    pub fn run(&mut self, mut on_event: impl FnMut(Event<'_>)) -> Result<Outcome, StudyError> {
        self.restoring(|s| s.run_inner(&mut on_event))
    }

    /// Runs `f` on the study, then restores the device whatever `f` returned: the one way a
    /// driver of the engine (the loop, a fleet's worker) ends.
    pub(super) fn restoring<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StudyError>,
    ) -> Result<T, StudyError> {
        let result = f(self);
        let restored = self.device.restore();
        let value = result?;
        restored.map_err(|source| StudyError::Device {
            what: "restoring the device".into(),
            source,
        })?;
        Ok(value)
    }

    /// A configuration's measurement: from the journal of an earlier run, or measured now
    /// (exploring: screening runs, raced against `incumbent`, its value and relative standard
    /// error) and journaled (a failure of the workload too).
    pub(super) fn take(
        &mut self,
        config: Config,
        incumbent: Option<(f64, f64)>,
        replicate: bool,
        baseline: &Measurement,
    ) -> Result<Taken, StudyError> {
        if let Some(m) = self.prior.measurements.get(&config) {
            return Ok(Taken::Measured(m.clone(), true));
        }
        let settings = self.explore_settings(config.batch_size, baseline);
        let run_cv = self.run_cv(baseline);
        let (goal, full, batch_size) = (self.goal, self.protocol.inferences, config.batch_size);
        let max_runs = race_max_runs(self.strategy.pools_readings());
        // Racing: more runs only while this configuration's interval overlaps the incumbent's.
        let keep = move |runs: &[Run]| -> bool {
            // A second run of the first few configurations: the noise of one exploring run,
            // measured where it is, tells the surrogate how much of what differs between
            // configurations is noise and how much is the board's own structure.
            if replicate && runs.len() < 2 {
                return true;
            }
            // The first configuration has nothing to race: one run tells the search enough.
            let Some((inc, inc_se)) = incumbent else {
                return false;
            };
            let k = full as f64 / settings.inferences as f64;
            let q = Quantities {
                energy_j: stats::mean(&runs.iter().map(|r| r.energy_j).collect::<Vec<_>>()) * k,
                time_s: stats::mean(&runs.iter().map(|r| r.time_s).collect::<Vec<_>>()) * k,
                inferences: full,
                batch_size,
                idle_power_w: None,
            };
            if runs.len() >= max_runs {
                return false;
            }
            let se = run_cv / (runs.len() as f64).sqrt();
            goal.value(&q) * (1.0 - RACE_Z * se) <= inc * (1.0 + RACE_Z * inc_se)
        };
        let how = How {
            stop: self.interrupt.as_deref(),
            earlier: &[],
            earlier_window_repeats: 1,
            keep_going: self.exploration.race.then_some(&keep as &KeepGoing),
        };
        let m = match measure_how(
            self.device,
            self.workload,
            &config.setting(),
            config.batch_size,
            &settings,
            &how,
        ) {
            Ok(m) => m,
            Err(DeviceError::Interrupted) => return Ok(Taken::Interrupted),
            Err(e @ (DeviceError::Workload(_) | DeviceError::NotRecorded(_))) => {
                let workload = matches!(e, DeviceError::Workload(_));
                let error = e.to_string();
                if let Some(j) = self.journal.as_mut() {
                    j.record(&JournalRecord::Failed {
                        config,
                        error: error.clone(),
                    })?;
                }
                return Ok(Taken::Failed(error, workload));
            }
            Err(source) => {
                return Err(StudyError::Device {
                    what: config.to_string(),
                    source,
                })
            }
        };
        if let Some(j) = self.journal.as_mut() {
            j.record(&JournalRecord::Measurement {
                config,
                measurement: m.clone(),
            })?;
        }
        Ok(Taken::Measured(m, false))
    }

    /// `config` measured through the protocol from its `earlier` runs (until `keep_going` says
    /// stop, or the protocol is met), as a confirmation; `None` when a signal stopped it.
    pub(super) fn at_full_protocol(
        &mut self,
        config: Config,
        (earlier, earlier_window_repeats): (&[crate::measure::Run], u32),
        keep_going: Option<&KeepGoing>,
    ) -> Result<Option<Measurement>, StudyError> {
        let how = How {
            stop: self.interrupt.as_deref(),
            earlier,
            earlier_window_repeats,
            keep_going,
        };
        match measure_how(
            self.device,
            self.workload,
            &config.setting(),
            config.batch_size,
            &self.protocol,
            &how,
        ) {
            Ok(m) => Ok(Some(m)),
            Err(DeviceError::Interrupted) => Ok(None),
            Err(source) => Err(StudyError::Device {
                what: format!("confirming {config}"),
                source,
            }),
        }
    }

    /// One full-length run at `setting` and `batch` (a fleet's share of a confirmation or of a
    /// DVFS baseline: [`super::pool`]); `None` when a signal stopped it. Not journaled.
    pub(super) fn one_run(
        &mut self,
        setting: &FreqSetting,
        batch: u32,
    ) -> Result<Option<Measurement>, DeviceError> {
        let once = |runs: &[crate::measure::Run]| runs.is_empty();
        let how = How {
            stop: self.interrupt.as_deref(),
            keep_going: Some(&once),
            ..How::default()
        };
        match measure_how(
            self.device,
            self.workload,
            setting,
            batch,
            &self.protocol,
            &how,
        ) {
            Ok(m) => Ok(Some(m)),
            Err(DeviceError::Interrupted) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn run_inner(
        &mut self,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<Outcome, StudyError> {
        let (baseline, _) = self.baseline_at(self.baseline_batch)?;
        on_event(Event::Baseline(&baseline));
        let mut f = Found::default();
        let mut resumed = 0;
        let mut failed: Vec<(Config, String)> = Vec::new();
        let mut in_a_row = 0;
        let stop_reason = loop {
            if self.interrupted() {
                break StopReason::Interrupted;
            }
            if f.measured.len() + failed.len() >= self.budget {
                break StopReason::Budget(self.budget);
            }
            if in_a_row >= MAX_FAILURES_IN_A_ROW {
                let last_error = failed.last().map_or(String::new(), |(_, e)| e.clone());
                break StopReason::FailuresInARow { last_error };
            }
            let Some(point) = self.strategy.ask(&f.history) else {
                break StopReason::Strategy(self.strategy.stop_reason());
            };
            let config = self.space.config(&point);
            let incumbent = f
                .history
                .best()
                .filter(|o| o.feasible())
                .map(|o| (o.value, o.rel_se()));
            let replicate = f.measured.len() < REPLICATED;
            let (measurement, from_journal) =
                match self.take(config, incumbent, replicate, &baseline)? {
                    Taken::Measured(m, from_journal) => (m, from_journal),
                    // A signal cut the measurement short: keep what was measured before it.
                    Taken::Interrupted => break StopReason::Interrupted,
                    // The workload failed here (or the table has a hole): never ask again, go on.
                    Taken::Failed(error, workload) => {
                        self.tell_failed(&mut f, point);
                        on_event(Event::Failed {
                            config: &config,
                            error: &error,
                        });
                        failed.push((config, error));
                        in_a_row += usize::from(workload);
                        continue;
                    }
                };
            resumed += from_journal as usize;
            in_a_row = 0;
            let told = measurement.clone();
            let kept = Measured {
                config,
                measurement,
                from_journal,
            };
            self.tell_measured(&mut f, point, &told, kept, &baseline);
            let best = self.recommend(&mut f);
            on_event(Event::Measured {
                n: f.measured.len(),
                budget: self.budget,
                measured: &f.measured[f.measured.len() - 1],
                best: &f.measured[best],
                best_energy_j: f.measured[best]
                    .measurement
                    .at_length(self.protocol.inferences)
                    .energy_j,
            });
        };
        resumed += self.take_leftovers(&mut f, &baseline);
        let choice = if stop_reason != StopReason::Interrupted {
            self.final_choice(&mut f, &baseline, on_event)?
        } else {
            FinalChoice::default()
        };
        let baseline_same_batch =
            self.baseline_same_batch(f.best.map(|b| f.measured[b].config.batch_size), &baseline)?;
        let end = Ending {
            baseline,
            baseline_same_batch,
            stop_reason,
            resumed,
            failed,
            choice,
        };
        Ok(self.outcome(f, end))
    }

    /// The outcome of a study whose loop (or replay of records) has ended: what it found, how
    /// it ended, and what the strategy's surrogate says of itself.
    pub(super) fn outcome(&mut self, f: Found, end: Ending) -> Outcome {
        let surrogate = self.strategy.check(&f.history);
        let best_full = f
            .best
            .is_some_and(|b| self.is_full(&f.measured[b].measurement));
        Outcome {
            baseline: end.baseline,
            baseline_same_batch: end.baseline_same_batch,
            measured: f.measured,
            best: f.best,
            recommended: f.recommended,
            stop_reason: end.stop_reason,
            resumed: end.resumed,
            failed: end.failed,
            inferences: self.protocol.inferences,
            best_full,
            choice: end.choice,
            surrogate,
        }
    }

    /// The DVFS baseline at the recommended batch size `batch`, for the frequency-only saving;
    /// `None` without a recommendation, after a signal, or where a table holds no baseline at
    /// that batch.
    pub(super) fn baseline_same_batch(
        &mut self,
        batch: Option<u32>,
        baseline: &Measurement,
    ) -> Result<Option<Measurement>, StudyError> {
        match batch {
            Some(b) if b == self.baseline_batch => Ok(Some(baseline.clone())),
            Some(b) if !self.interrupted() => match self.baseline_at(b) {
                Ok((m, _)) => Ok(Some(m)),
                Err(StudyError::Device {
                    source: DeviceError::NotRecorded(_),
                    ..
                }) => Ok(None),
                Err(e) => Err(e),
            },
            _ => Ok(None),
        }
    }

    /// Journaled measurements this run did not ask for (a lower budget, another stop rule, a
    /// signal this time): they are the study's all the same, told to the strategy and
    /// reported, never dropped. How many there were.
    pub(super) fn take_leftovers(&mut self, f: &mut Found, baseline: &Measurement) -> usize {
        let taken: std::collections::HashSet<Config> =
            f.measured.iter().map(|m| m.config).collect();
        let left: Vec<Config> = (self.prior.order.iter())
            .filter(|c| !taken.contains(c))
            .copied()
            .collect();
        let mut n = 0;
        for config in left {
            let Some(point) = self.space.point_of(&config) else {
                continue;
            };
            let measurement = self.prior.measurements[&config].clone();
            let obs = self.observe(point, &measurement, baseline, self.run_cv(baseline));
            self.strategy.tell(&obs);
            f.add(
                obs,
                Measured {
                    config,
                    measurement,
                    from_journal: true,
                },
            );
            n += 1;
        }
        if n > 0 {
            self.recommend(f);
        }
        n
    }

    /// What the strategy would recommend now (a surrogate's best mean, or the lowest
    /// measurement), recorded in `f`; returns its index.
    pub(super) fn recommend(&mut self, f: &mut Found) -> usize {
        let best = self
            .strategy
            .recommend(&f.history)
            .and_then(|p| f.index.get(&p).copied())
            .or(f.best)
            .unwrap_or(f.measured.len() - 1);
        f.best = Some(best);
        f.recommended.push(best);
        best
    }
}

/// ln of a measurement's first run over the mean of its later runs (two runs or more).
pub(super) fn first_run_excess(runs: &[Run]) -> Option<f64> {
    let (first, rest) = runs.split_first()?;
    let later = stats::mean(&rest.iter().map(|r| r.energy_j).collect::<Vec<_>>());
    (!rest.is_empty() && first.energy_j > 0.0 && later > 0.0).then(|| (first.energy_j / later).ln())
}

/// How a study ended, for its [`Outcome`].
pub(super) struct Ending {
    pub(super) baseline: Measurement,
    pub(super) baseline_same_batch: Option<Measurement>,
    pub(super) stop_reason: StopReason,
    pub(super) resumed: usize,
    pub(super) failed: Vec<(Config, String)>,
    pub(super) choice: FinalChoice,
}

/// What a study found so far.
#[derive(Default)]
pub(super) struct Found {
    pub(super) history: History,
    pub(super) measured: Vec<Measured>,
    /// Index into `measured` of each point.
    pub(super) index: HashMap<Point, usize>,
    pub(super) best: Option<usize>,
    /// The recommendation after each measurement.
    pub(super) recommended: Vec<usize>,
}

impl Found {
    /// A measurement and the observation the strategy was told of it.
    pub(super) fn add(&mut self, obs: Observation, measured: Measured) {
        self.index.insert(obs.point.clone(), self.measured.len());
        self.history.push(obs);
        self.measured.push(measured);
    }
}

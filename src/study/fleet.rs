//! One study measured by many boards at once. Each worker runs [`work`]: it measures its own
//! DVFS baseline, then claims a configuration in a transaction ([`Storage::claim`]), measures it
//! through the same protocol and study code as `tune` (heartbeating its lease from a thread),
//! and writes the result once. The strategy is rebuilt from the stored records at each claim,
//! with the configurations other workers are measuring told as lies (Ginsbourger, Le Riche &
//! Carraro 2010): the kriging believer, each pending point given the surrogate's own prediction
//! there (the constant liar's best value so far for a strategy without a surrogate), so the next
//! proposal moves away from it. Boards of one kind differ by a few
//! percent in power: every value the strategy sees is divided by its board's offset, fitted from
//! its baseline and everything it measured ([`super::offsets`]), so the search is about
//! configurations, not about which board measured them. The final choice's candidates are
//! confirmed by one board, which then measures its DVFS baseline at the recommendation's batch
//! for the frequencies-only saving. [`outcome`] rebuilds
//! what a study found from its records (`study report`), exactly as `tune` would have found it
//! for the same records in the same order.

use super::boards::{baseline_by, baselines, figure_board};
use super::choice;
use super::engine::{Ending, Found, Taken};
use super::storage::{ActiveClaim, Choice, ClaimKey, Origin, Storage, StoredRecord, StudyView};
use super::{FinalChoice, Measured, Outcome, StopReason, Study, StudyError};
use crate::measure::Measurement;
use crate::space::Config;
use crate::strategy::{penalised, History, Observation, Strategy};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::Duration;

/// How a worker takes part in a study.
pub struct Fleet<'a> {
    /// The storage (this worker's connection).
    pub storage: &'a mut dyn Storage,
    /// Opens another connection to the same storage, for the heartbeat thread.
    pub reconnect: &'a (dyn Fn() -> Result<Box<dyn Storage>, super::StorageError> + Sync),
    /// Study name.
    pub name: &'a str,
    /// This worker and its board.
    pub origin: Origin,
    /// Seconds a claim lives without a heartbeat (heartbeats every third of it).
    pub lease_s: f64,
    /// A fresh strategy of the study (the same seed and options every time).
    pub make_strategy: &'a dyn Fn() -> Box<dyn Strategy>,
}

/// What one worker did.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// This board's DVFS baseline.
    pub baseline: Option<Measurement>,
    /// Configurations this worker measured (and wrote).
    pub measured: Vec<super::Config>,
    /// Recommendations this worker confirmed at the full protocol.
    pub confirmed: usize,
    /// Confirmations that could not reach the full protocol (a recorded table ran out).
    pub confirmed_short: usize,
    /// Results not written: another worker wrote them first (this one's lease had run out).
    pub duplicates: usize,
    /// Configurations at which the workload failed here.
    pub failed: usize,
    /// Whether a signal stopped the worker (its claim was given back).
    pub interrupted: bool,
}

/// Each board's offset, ln(its values / the fleet's), fitted from its baseline and every
/// configuration it measured ([`super::offsets::fitted`]).
pub fn board_offsets(
    records: &[StoredRecord],
    batch: u32,
    space: &crate::space::Space,
) -> HashMap<String, f64> {
    super::offsets::fitted(records, batch, space)
}

/// `m` with its energies divided by `e^offset`.
fn normalised(m: &Measurement, offset: f64) -> Measurement {
    let k = (-offset).exp();
    let mut m = m.clone();
    m.energy_j *= k;
    m.avg_power_w *= k;
    m.energy_per_inference_mj *= k;
    for r in &mut m.runs {
        r.energy_j *= k;
    }
    m
}

/// What [`replay`] found: the study's state, its failures, and each board's offset.
struct Replayed {
    f: Found,
    failed: Vec<(super::Config, String)>,
    offsets: HashMap<String, f64>,
    /// The offset of the board behind each of `f.measured` (its latest record).
    measured_offsets: Vec<f64>,
    /// Indices into `f.measured` of the configurations confirmed, in order.
    confirmed: Vec<usize>,
}

impl Replayed {
    /// An exploring measurement told as the loop tells it (asked for first when `asks`); a
    /// report's trace (`asks`) records the recommendation after it.
    fn measured(
        &mut self,
        study: &mut Study,
        r: (&Config, &Measurement),
        by: (f64, &Measurement),
        asks: bool,
    ) {
        let ((config, measurement), (off, base)) = (r, by);
        let Some(point) = study.space.point_of(config) else {
            return;
        };
        let f = &mut self.f;
        if asks {
            study.strategy.ask(&f.history);
        }
        let kept = Measured {
            config: *config,
            measurement: measurement.clone(),
            from_journal: false,
        };
        study.tell_measured(f, point, &normalised(measurement, off), kept, base);
        self.measured_offsets.push(off);
        if asks {
            study.recommend(f);
        }
    }

    /// A confirmation at the full protocol: its figure replaces the exploring one.
    fn confirmed(
        &mut self,
        study: &mut Study,
        r: (&Config, &Measurement),
        by: (f64, &Measurement),
        asks: bool,
    ) {
        let ((config, measurement), (off, base)) = (r, by);
        let f = &mut self.f;
        let Some((point, i)) = study
            .space
            .point_of(config)
            .and_then(|p| f.index.get(&p).map(|i| (p, *i)))
        else {
            return;
        };
        study.tell_confirmed(f, point, &normalised(measurement, off), base);
        f.measured[i].measurement = measurement.clone();
        self.measured_offsets[i] = off;
        if !self.confirmed.contains(&i) {
            self.confirmed.push(i);
        }
        if asks {
            f.recommended.pop();
            study.recommend(f);
        }
    }

    /// A configuration at which the workload failed, told as a penalised value.
    fn failed(&mut self, study: &mut Study, config: &Config, error: &str, asks: bool) {
        let Some(point) = study.space.point_of(config) else {
            return;
        };
        if asks {
            study.strategy.ask(&self.f.history);
        }
        study.tell_failed(&mut self.f, point);
        self.failed.push((*config, error.to_string()));
    }
}

/// Replays stored records into the study's strategy in order, as its loop would have told
/// them; `asks`: ask before each and recommend after each, as the loop does (the strategy's
/// state and the report's trace then match a study that measured them itself); without it (a
/// claim) only the last recommendation is made, since each one is a surrogate fit.
fn replay(study: &mut Study, records: &[StoredRecord], asks: bool) -> Replayed {
    use super::JournalRecord as R;
    let bases = baselines(records, study.baseline_batch);
    let offsets = super::offsets::fitted(records, study.baseline_batch, study.space);
    // Each board's offset and its baseline in the study's common units, computed once.
    let normal: HashMap<&str, (f64, Measurement)> = bases
        .iter()
        .map(|(b, m)| (b.as_str(), (offsets[b], normalised(m, offsets[b]))))
        .collect();
    let mut out = Replayed {
        f: Found::default(),
        failed: Vec::new(),
        offsets,
        measured_offsets: Vec::new(),
        confirmed: Vec::new(),
    };
    // A board without a baseline yet is judged by another's, as it is (none: nothing to judge by).
    let fallback = bases.values().next().map(|m| (0.0, m.clone()));
    for r in records {
        let Some((off, base)) = normal.get(r.origin.board.as_str()).or(fallback.as_ref()) else {
            continue;
        };
        match &r.record {
            R::Measurement {
                config,
                measurement,
            } => out.measured(study, (config, measurement), (*off, base), asks),
            R::Confirmed {
                config,
                measurement,
            } => out.confirmed(study, (config, measurement), (*off, base), asks),
            R::Failed { config, error } => out.failed(study, config, error, asks),
            R::Baseline { .. } | R::Study(_) => {}
        }
    }
    if !asks && !out.f.measured.is_empty() {
        study.recommend(&mut out.f);
    }
    out
}

/// The final choice over what a fleet confirmed: the same rule as a study's, judged on every
/// board's figures in the study's common units.
fn settle(study: &mut Study, r: &mut Replayed, baseline: &Measurement) -> FinalChoice {
    let mut choice = FinalChoice {
        candidates: r.confirmed.clone(),
        ..FinalChoice::default()
    };
    // Once a worker confirmed the final choice, its confirmed figures are the candidates, as
    // in `tune`; an exploring reading wins only by the noise margin `Study::settle` keeps.
    if let Some(b) = r.f.best.filter(|_| choice.candidates.is_empty()) {
        choice.candidates.push(b);
    }
    let raw: Vec<Measurement> = r.f.measured.iter().map(|m| m.measurement.clone()).collect();
    for (m, off) in r.f.measured.iter_mut().zip(&r.measured_offsets) {
        m.measurement = normalised(&m.measurement, *off);
    }
    study.settle(&mut r.f, &mut choice, baseline);
    for (m, raw) in r.f.measured.iter_mut().zip(raw) {
        m.measurement = raw;
    }
    choice
}

/// What a study found, rebuilt from its stored records: the report `study report` writes. The
/// baselines shown are those of the board whose figure the recommendation is (the first
/// board's where it has none); a study short of its budget says so. `None` before any baseline
/// is stored.
pub fn outcome(study: &mut Study, view: &StudyView) -> Option<Outcome> {
    let mut replayed = replay(study, &view.records, true);
    let first_board = savings_board(view, study.baseline_batch, None)?;
    let baseline = baseline_by(view, &first_board, study.baseline_batch)?;
    let choice = settle(study, &mut replayed, &baseline);
    let Replayed { f, failed, .. } = replayed;
    let done = f.measured.len() + failed.len();
    let stop_reason = if done >= study.budget {
        StopReason::Budget(study.budget)
    } else {
        StopReason::Strategy(format!(
            "the study holds {done} of its {} measurements (workers may still be measuring)",
            study.budget
        ))
    };
    let best = f.best.map(|b| f.measured[b].config);
    let judge = savings_board(view, study.baseline_batch, best.as_ref()).unwrap_or(first_board);
    let baseline = baseline_by(view, &judge, study.baseline_batch).unwrap_or(baseline);
    let baseline_same_batch = best.and_then(|c| baseline_by(view, &judge, c.batch_size));
    let end = Ending {
        baseline,
        baseline_same_batch,
        stop_reason,
        resumed: 0,
        failed,
        choice,
    };
    Some(study.outcome(f, end))
}

/// The board whose DVFS baselines a stored study's savings compare with, so that they compare
/// one board's figures: the board whose figure the recommendation `best` is, where it stored a
/// baseline at `batch`; else the first board that stored one there (none: no baseline yet).
pub fn savings_board(view: &StudyView, batch: u32, best: Option<&Config>) -> Option<String> {
    best.and_then(|c| figure_board(view, c).cloned())
        .filter(|b| baseline_by(view, b, batch).is_some())
        .or_else(|| {
            view.records.iter().find_map(|r| match &r.record {
                super::JournalRecord::Baseline { measurement }
                    if measurement.batch_size == batch =>
                {
                    Some(r.origin.board.clone())
                }
                _ => None,
            })
        })
}

/// What a worker claims next, inside the claiming transaction.
struct Decision {
    choice: Choice,
    /// Racing's incumbent in this board's units (value, relative standard error).
    incumbent: Option<(f64, f64)>,
    /// The stored measurement a confirmation starts from.
    confirming: Option<Measurement>,
}

impl Decision {
    fn only(choice: Choice) -> Decision {
        Decision {
            choice,
            incumbent: None,
            confirming: None,
        }
    }

    /// Done when nobody is measuring any more, else wait for them.
    fn done_or_wait(view: &StudyView) -> Decision {
        Decision::only(if view.claims.is_empty() {
            Choice::Done
        } else {
            Choice::Wait
        })
    }
}

/// What a worker claims next: an orphaned claim first, then the strategy's proposal with the
/// configurations being measured elsewhere told as lies; once the budget is measured, the
/// recommendation's confirmation.
fn decide(
    study: &mut Study,
    view: &StudyView,
    board: &str,
    make: &dyn Fn() -> Box<dyn Strategy>,
) -> Decision {
    study.strategy = make();
    let Replayed {
        f,
        failed,
        offsets,
        confirmed,
        ..
    } = replay(study, &view.records, false);
    let done = f.measured.len() + failed.len();
    let claimed: HashSet<ClaimKey> = view.claims.iter().map(|c| c.key).collect();
    let unmeasured = |c: &&ActiveClaim| {
        !c.key.confirm
            && study
                .space
                .point_of(&c.key.config)
                .is_some_and(|p| !f.history.contains(&p))
    };
    let exploring: Vec<&ActiveClaim> = view.claims.iter().filter(unmeasured).collect();
    if done >= study.budget {
        // Every exploring measurement is in: confirm the recommendation if it was raced or screened.
        return if exploring.is_empty() {
            confirmation(study, view, board, &f, &confirmed, &claimed)
        } else {
            Decision::only(Choice::Wait)
        };
    }
    if done + exploring.len() >= study.budget {
        return Decision::only(Choice::Wait);
    }
    let own = offsets.get(board).copied().unwrap_or(0.0);
    let incumbent = f
        .history
        .best()
        .filter(|o| o.feasible())
        .map(|o| (o.value * own.exp(), o.rel_se()));
    // A claim whose worker vanished mid-measurement is measured first, by whoever asks next.
    let orphan = view
        .expired
        .iter()
        .find(|c| !claimed.contains(&c.key) && unmeasured(c));
    let key = match orphan {
        Some(c) => c.key,
        None => {
            let history = with_lies(study, &f.history, &exploring);
            let Some(point) = study.strategy.ask(&history) else {
                return Decision::done_or_wait(view);
            };
            let key = ClaimKey {
                config: study.space.config(&point),
                confirm: false,
            };
            if f.history.contains(&point) || claimed.contains(&key) {
                return Decision::only(Choice::Wait);
            }
            key
        }
    };
    Decision {
        choice: Choice::Measure(key),
        incumbent,
        confirming: None,
    }
}

/// The next candidate of the final choice to confirm at the full protocol (the recommendation,
/// then its rivals: see [`choice`]), one claim each and at most as many as a study confirms; done
/// when every candidate meets the protocol. One board confirms them all, as `tune` does: figures
/// of one board compare without the error of two boards' offsets, and drift hits them alike.
fn confirmation(
    study: &mut Study,
    view: &StudyView,
    board: &str,
    f: &Found,
    confirmed: &[usize],
    claimed: &HashSet<ClaimKey>,
) -> Decision {
    let Some(b) = f.best else {
        return Decision::done_or_wait(view);
    };
    if confirming_elsewhere(view, board) {
        return Decision::only(Choice::Wait);
    }
    let limit = choice::MAX_ROUNDS * (1 + choice::MAX_RIVALS);
    // As a study's final choice: first the recommendation and its rivals, then only what may
    // beat the best confirmed figure (the values the strategy saw, in the study's units).
    let value = |i: &usize| {
        study
            .space
            .point_of(&f.measured[*i].config)
            .and_then(|p| f.history.get(&p))
            .map_or(f64::INFINITY, |o| o.value)
    };
    let leader = confirmed
        .iter()
        .filter(|i| study.is_full(&f.measured[**i].measurement))
        .min_by(|a, b| value(a).total_cmp(&value(b)))
        .copied();
    let anchor = leader.unwrap_or(b);
    let point = study.space.point_of(&f.measured[anchor].config);
    let model = study.strategy.estimates(&f.history);
    let rivals = point.map_or(Vec::new(), |p| {
        choice::rivals(&f.history, model.as_ref(), &p)
    });
    let key = |i: usize| ClaimKey {
        config: f.measured[i].config,
        confirm: true,
    };
    // Every candidate not yet at the full protocol; each is a claim of its own, so several
    // boards confirm candidates at once.
    let open: Vec<usize> = leader
        .map_or(Some(b), |_| None)
        .into_iter()
        .chain(rivals.iter().filter_map(|p| f.index.get(p).copied()))
        // One confirmation each: one that could not reach the full protocol (a table ran out)
        // is not claimed again.
        .filter(|i| !study.is_full(&f.measured[*i].measurement) && !confirmed.contains(i))
        .collect();
    match open.iter().find(|i| !claimed.contains(&key(**i))) {
        Some(&i) if confirmed.len() < limit => Decision {
            choice: Choice::Measure(key(i)),
            incumbent: None,
            confirming: Some(f.measured[i].measurement.clone()),
        },
        None if !open.is_empty() && confirmed.len() < limit => Decision::only(Choice::Wait),
        _ => Decision::done_or_wait(view),
    }
}

/// Whether another board owns the final choice and is measuring now: it holds a confirming
/// claim, or wrote the latest confirmation and holds a claim. A board that vanished holds none
/// (its lease runs out), and whoever asks next goes on with the candidates.
fn confirming_elsewhere(view: &StudyView, board: &str) -> bool {
    let owner = view
        .claims
        .iter()
        .find(|c| c.key.confirm)
        .map(|c| &c.origin.board)
        .or_else(|| {
            view.records
                .iter()
                .rev()
                .find(|r| matches!(r.record, super::JournalRecord::Confirmed { .. }))
                .map(|r| &r.origin.board)
        });
    owner.is_some_and(|o| o != board && view.claims.iter().any(|c| &c.origin.board == o))
}

/// `measured` with each configuration being measured elsewhere told as measured. The kriging
/// believer: at the surrogate's own prediction there; a strategy without a surrogate gets the
/// constant liar's best value so far. Before anything is measured a pending one is only taken.
fn with_lies(study: &mut Study, measured: &History, exploring: &[&ActiveClaim]) -> History {
    let mut history = measured.clone();
    let best = measured.best().filter(|o| o.feasible()).cloned();
    let pending: Vec<_> = exploring
        .iter()
        .filter_map(|c| study.space.point_of(&c.key.config))
        .collect();
    let believed = match (&best, pending.is_empty()) {
        (Some(_), false) => study.strategy.predict(measured, &pending),
        _ => None,
    };
    for (i, point) in pending.into_iter().enumerate() {
        let lie = match &best {
            Some(b) => Observation {
                point,
                value: believed
                    .as_ref()
                    .and_then(|v| v.get(i).copied())
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .unwrap_or(b.value),
                spread_unknown: false,
                cost_s: 0.0,
                pending: true,
                ..b.clone()
            },
            None => Observation {
                point,
                value: penalised(1e6),
                failed: true,
                pending: true,
                ..Default::default()
            },
        };
        history.push(lie);
    }
    history
}

/// Renews the lease of the claim being measured every third of it, from a thread with its own
/// connection, opened once per worker; stops when dropped.
struct Heartbeat {
    /// The claim to keep alive (`None` between claims).
    now: Option<mpsc::Sender<Option<ClaimKey>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(fleet: &Fleet<'_>) -> Heartbeat {
        let (tx, rx) = mpsc::channel::<Option<ClaimKey>>();
        let (name, origin, lease_s) = (fleet.name.to_string(), fleet.origin.clone(), fleet.lease_s);
        let conn = (fleet.reconnect)();
        let thread = std::thread::spawn(move || {
            let Ok(mut storage) = conn else { return };
            let every = Duration::from_secs_f64((lease_s / 3.0).max(0.05));
            let mut claim = None;
            loop {
                match rx.recv_timeout(every) {
                    Ok(next) => claim = next,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some(key) = &claim {
                            // A failed heartbeat is retried; the lease covers two missed ones.
                            let _ = storage.heartbeat(&name, key, &origin, lease_s);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Heartbeat {
            now: Some(tx),
            thread: Some(thread),
        }
    }

    /// Keeps `claim` alive from now on (`None`: nothing).
    fn keep(&self, claim: Option<ClaimKey>) {
        if let Some(tx) = &self.now {
            let _ = tx.send(claim);
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.now.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs one worker of a study until the study is done or a signal stops it. `study.journal`
/// is not used (results go through the storage's claims); the device is restored on every
/// path out.
pub fn work(
    study: &mut Study,
    fleet: &mut Fleet<'_>,
    on_event: &mut dyn FnMut(&str),
) -> Result<WorkerReport, StudyError> {
    study.restoring(|s| work_inner(s, fleet, on_event))
}

fn work_inner(
    study: &mut Study,
    fleet: &mut Fleet<'_>,
    on_event: &mut dyn FnMut(&str),
) -> Result<WorkerReport, StudyError> {
    let baseline = own_baseline(study, fleet, on_event)?;
    let mut rep = WorkerReport {
        baseline: Some(baseline.clone()),
        ..WorkerReport::default()
    };
    let make = fleet.make_strategy;
    let beat = Heartbeat::start(fleet);
    loop {
        if study.interrupted() {
            rep.interrupted = true;
            break;
        }
        let mut decision = None;
        let (name, origin, lease_s) = (fleet.name, fleet.origin.clone(), fleet.lease_s);
        let board = origin.board.clone();
        let choice = fleet
            .storage
            .claim(name, &origin, lease_s, &mut |v: &StudyView| {
                let d = decide(study, v, &board, make);
                let c = d.choice;
                decision = Some(d);
                c
            })?;
        let key = match choice {
            Choice::Done => break,
            Choice::Wait => {
                std::thread::sleep(Duration::from_secs_f64(
                    (fleet.lease_s / 50.0).clamp(0.02, 0.5),
                ));
                continue;
            }
            Choice::Measure(key) => key,
        };
        let d = decision.expect("decided inside the claim");
        beat.keep(Some(key));
        let record = measure_claim(study, key, d, &baseline)?;
        beat.keep(None);
        let Some(record) = record else {
            // A signal: the claim goes back at once rather than when its lease runs out.
            fleet.storage.release(fleet.name, &key, &fleet.origin)?;
            rep.interrupted = true;
            break;
        };
        rep.failed += usize::from(matches!(record, super::JournalRecord::Failed { .. }));
        if fleet
            .storage
            .complete(fleet.name, &key, &record, &fleet.origin)?
        {
            on_event(&format!(
                "{}{}",
                if key.confirm { "confirmed " } else { "" },
                describe(&record)
            ));
            if let (true, super::JournalRecord::Confirmed { measurement, .. }) =
                (key.confirm, &record)
            {
                match study.is_full(measurement) {
                    true => rep.confirmed += 1,
                    false => rep.confirmed_short += 1,
                }
            } else {
                rep.measured.push(key.config);
            }
        } else {
            on_event(&format!(
                "{} was written by another worker first (this one's lease ran out); dropped",
                key.config
            ));
            rep.duplicates += 1;
        }
    }
    if !rep.interrupted {
        same_batch_baseline(study, fleet, on_event)?;
    }
    Ok(rep)
}

/// Once the study is done: the DVFS baseline at the recommendation's batch, measured by the
/// board whose figure the recommendation is (its confirmation, else its measurement), so that
/// the frequencies-only saving compares two figures of one board. Every other board has
/// nothing to do here.
fn same_batch_baseline(
    study: &mut Study,
    fleet: &mut Fleet<'_>,
    on_event: &mut dyn FnMut(&str),
) -> Result<(), StudyError> {
    let view = fleet.storage.study(fleet.name)?;
    study.strategy = (fleet.make_strategy)();
    let Some(config) = outcome(study, &view).and_then(|o| o.best().map(|b| b.config)) else {
        return Ok(());
    };
    let batch = config.batch_size;
    let me = &fleet.origin.board;
    let measured = baseline_by(&view, me, batch).is_some();
    if batch == 0 || measured || figure_board(&view, &config) != Some(me) {
        return Ok(());
    }
    let (measurement, _) = stored_baseline(study, fleet, batch)?;
    on_event(&format!(
        "baseline at batch {batch}, the recommendation's: {:.1} J",
        measurement.energy_j
    ));
    Ok(())
}

/// This board's DVFS baseline at `batch`: stored earlier (`true`), else measured now and stored.
fn stored_baseline(
    study: &mut Study,
    fleet: &mut Fleet<'_>,
    batch: u32,
) -> Result<(Measurement, bool), StudyError> {
    let (measurement, stored) = study.baseline_at(batch)?;
    if !stored {
        fleet.storage.append(
            fleet.name,
            &super::JournalRecord::Baseline {
                measurement: measurement.clone(),
            },
            &fleet.origin,
        )?;
    }
    Ok((measurement, stored))
}

/// This board's DVFS baseline: from the storage when this board measured it before, else
/// measured now and stored.
fn own_baseline(
    study: &mut Study,
    fleet: &mut Fleet<'_>,
    on_event: &mut dyn FnMut(&str),
) -> Result<Measurement, StudyError> {
    let view = fleet.storage.study(fleet.name)?;
    study.prior = super::Prior::default();
    for r in view
        .records
        .iter()
        .filter(|r| r.origin.board == fleet.origin.board)
    {
        if let super::JournalRecord::Baseline { measurement } = &r.record {
            study
                .prior
                .baselines
                .insert(measurement.batch_size, measurement.clone());
        }
    }
    let (baseline, stored) = stored_baseline(study, fleet, study.baseline_batch)?;
    on_event(&format!(
        "baseline: {:.1} J ({})",
        baseline.energy_j,
        if stored { "stored earlier" } else { "measured" }
    ));
    Ok(baseline)
}

/// Measures a claim through the study's protocol: its record, or `None` when a signal stopped
/// it.
fn measure_claim(
    study: &mut Study,
    key: ClaimKey,
    d: Decision,
    baseline: &Measurement,
) -> Result<Option<super::JournalRecord>, StudyError> {
    let config = key.config;
    if key.confirm {
        let earlier = d
            .confirming
            .expect("a confirmation starts from a measurement");
        // Runs of another board are not this board's: confirm with this board's runs only.
        let fresh = Measurement {
            inferences: 0,
            ..earlier.clone()
        };
        let measurement = match study.confirm(config, &fresh) {
            // A recorded table has no reading of it left for this board: as in `tune`, the
            // confirmation is what there is (not at the full protocol, and reported so).
            Err(StudyError::Device {
                source: crate::device::DeviceError::NoMoreReadings,
                ..
            }) => Some(earlier),
            other => other?,
        };
        return Ok(
            measurement.map(|measurement| super::JournalRecord::Confirmed {
                config,
                measurement,
            }),
        );
    }
    Ok(match study.take(config, d.incumbent, false, baseline)? {
        Taken::Measured(measurement, _) => Some(super::JournalRecord::Measurement {
            config,
            measurement,
        }),
        Taken::Failed(error, _) => Some(super::JournalRecord::Failed { config, error }),
        Taken::Interrupted => None,
    })
}

fn describe(r: &super::JournalRecord) -> String {
    match r {
        super::JournalRecord::Measurement {
            config,
            measurement,
        }
        | super::JournalRecord::Confirmed {
            config,
            measurement,
        } => {
            format!("{config}: {:.1} J", measurement.energy_j)
        }
        super::JournalRecord::Failed { config, error } => format!("{config}: failed: {error}"),
        _ => String::new(),
    }
}

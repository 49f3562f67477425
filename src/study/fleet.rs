//! One study measured by many boards at once. Each worker runs [`work`]: it claims what to
//! measure in a transaction ([`Storage::claim`]), measures it through the same protocol and
//! study code as `tune` (heartbeating its lease from a thread), and writes the result once.
//! The strategy is rebuilt from the stored records at each claim, with the configurations other
//! workers are measuring told as lies (Ginsbourger, Le Riche & Carraro 2010): the kriging
//! believer, each pending point given the surrogate's own prediction there (the constant liar's
//! best value so far for a strategy without a surrogate), so the next proposal moves away from
//! it. Boards of one kind differ by a few percent in power: every value the strategy sees is
//! divided by its board's offset, fitted from its baseline and everything it measured
//! ([`super::offsets`]), so the search is about configurations, not about which board measured
//! them. What must meet the full protocol (the DVFS baselines, the final choice's candidates)
//! is claimed one full-length run at a time by any board and pooled after the offsets
//! ([`super::pool`]): four boards measure a baseline or a confirmation in the time of one run.
//! Every board measures one run of the baseline first, its own level for its offset. The study's
//! figures are in the fleet's common units. [`outcome`] rebuilds what a study found from its
//! records (`study report`), exactly as `tune` would have found it for the same records in the
//! same order.

use super::choice;
use super::engine::{Ending, Found, Taken};
use super::heartbeat::Heartbeat;
use super::lies::with_lies;
use super::pool::{self, normalised};
use super::storage::{
    ActiveClaim, Choice, ClaimKey, ClaimKind, Origin, Storage, StoredRecord, StudyView,
};
use super::{FinalChoice, JournalRecord, Measured, Outcome, StopReason, Study, StudyError};
use crate::device::{DeviceError, FreqSetting};
use crate::measure::Measurement;
use crate::space::Config;
use crate::strategy::Strategy;
use std::collections::{HashMap, HashSet};
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
    /// Runs of DVFS baselines this board measured (its own first, then its shares of pooled ones).
    pub baseline_runs: usize,
    /// Configurations this worker measured (and wrote).
    pub measured: Vec<super::Config>,
    /// Full-length runs this board measured towards confirmations at the full protocol.
    pub shares: usize,
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
    protocol: &crate::measure::ProtocolSettings,
) -> HashMap<String, f64> {
    super::offsets::fitted(records, batch, space, protocol)
}

/// Each board's DVFS baseline at `batch`, its runs pooled in its own units.
pub fn board_baselines(
    records: &[StoredRecord],
    batch: u32,
    protocol: &crate::measure::ProtocolSettings,
) -> HashMap<String, Measurement> {
    pool::board_baselines(records, batch, protocol)
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
    /// Each configuration's full-length runs so far, with its board's factor (`e^-offset`):
    /// its exploring runs where they were full-length, then every board's shares.
    shares: HashMap<Config, Vec<(Measurement, f64)>>,
    /// The DVFS baseline at the study's baseline batch pooled over the boards, common units.
    baseline: Option<Measurement>,
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

    /// A board's share of a configuration's confirmation; once the pooled runs meet the
    /// protocol, the pool is told as its confirmation (common units: offset 0).
    fn shared(
        &mut self,
        study: &mut Study,
        config: &Config,
        part: (&Measurement, f64),
        base: &Measurement,
        asks: bool,
    ) {
        let Some(i) = study
            .space
            .point_of(config)
            .and_then(|p| self.f.index.get(&p).copied())
        else {
            return;
        };
        if self.confirmed.contains(&i) {
            return;
        }
        self.shares
            .entry(*config)
            .or_default()
            .push((part.0.clone(), part.1));
        let Some(mut pooled) = self.pool_of(config, &study.protocol) else {
            return;
        };
        if study.is_full(&pooled) {
            // What the configuration cost in all: exploring it (screened: not in the pool) too.
            let explored = &self.f.measured[i].measurement;
            if explored.inferences != study.protocol.inferences {
                pooled.wall_s += explored.wall_s;
            }
            self.confirmed(study, (config, &pooled), (0.0, base), asks);
        }
    }

    /// The pool of `config`'s full-length runs so far, common units.
    fn pool_of(
        &self,
        config: &Config,
        p: &crate::measure::ProtocolSettings,
    ) -> Option<Measurement> {
        let parts = self.shares.get(config)?;
        let refs: Vec<(&Measurement, f64)> = parts.iter().map(|(m, k)| (m, *k)).collect();
        pool::pooled(&refs, p)
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
    let p = study.protocol;
    let offsets = super::offsets::fitted(records, study.baseline_batch, study.space, &p);
    let baseline = pool::baseline(records, study.baseline_batch, &offsets, &p);
    let mut out = Replayed {
        f: Found::default(),
        failed: Vec::new(),
        offsets,
        measured_offsets: Vec::new(),
        confirmed: Vec::new(),
        shares: HashMap::new(),
        baseline: baseline.clone(),
    };
    // Nothing is judged before a baseline is measured.
    let Some(base) = baseline else {
        return out;
    };
    for r in records {
        let off = out.offsets.get(&r.origin.board).copied().unwrap_or(0.0);
        let k = (-off).exp();
        match &r.record {
            JournalRecord::Measurement {
                config,
                measurement,
            } => {
                out.measured(study, (config, measurement), (off, &base), asks);
                if measurement.inferences == p.inferences {
                    out.shares
                        .entry(*config)
                        .or_default()
                        .push((measurement.clone(), k));
                }
            }
            JournalRecord::Confirmed {
                config,
                measurement,
            } => out.confirmed(study, (config, measurement), (off, &base), asks),
            JournalRecord::Share {
                config,
                measurement,
            } => out.shared(study, config, (measurement, k), &base, asks),
            JournalRecord::Failed { config, error } => out.failed(study, config, error, asks),
            JournalRecord::Baseline { .. } | JournalRecord::Study(_) => {}
        }
    }
    if !asks && !out.f.measured.is_empty() {
        study.recommend(&mut out.f);
    }
    out
}

/// The final choice over what a fleet confirmed: the same rule as a study's, judged on every
/// board's figures in the study's common units (which the figures stay in).
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
    for (m, off) in r.f.measured.iter_mut().zip(&r.measured_offsets) {
        m.measurement = normalised(&m.measurement, *off);
    }
    study.settle(&mut r.f, &mut choice, baseline);
    choice
}

/// What a study found, rebuilt from its stored records: the report `study report` writes. Its
/// figures are in the fleet's common units (each board's divided by its fitted offset; one
/// board's are its own), the savings judged on the DVFS baselines pooled the same way; a study
/// short of its budget says so. `None` before any baseline is stored.
pub fn outcome(study: &mut Study, view: &StudyView) -> Option<Outcome> {
    let mut replayed = replay(study, &view.records, true);
    let baseline = replayed.baseline.clone()?;
    let choice = settle(study, &mut replayed, &baseline);
    let Replayed {
        f, failed, offsets, ..
    } = replayed;
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
    let baseline_same_batch =
        best.and_then(|c| pool::baseline(&view.records, c.batch_size, &offsets, &study.protocol));
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

/// What a worker claims next, inside the claiming transaction.
struct Decision {
    choice: Choice,
    /// Racing's incumbent in this board's units (value, relative standard error).
    incumbent: Option<(f64, f64)>,
    /// The pooled DVFS baseline in this board's units, what exploring is judged by.
    baseline: Option<Measurement>,
    /// A share's configuration as measured so far, in this board's units: what its
    /// confirmation is where a recorded table has no reading of it left.
    confirming: Option<Measurement>,
    /// Waiting to find the final choice, outside the claiming transaction (it replays the
    /// whole study, and other workers would wait for the lock meanwhile).
    find_final: bool,
}

impl Decision {
    fn only(choice: Choice) -> Decision {
        Decision {
            choice,
            incumbent: None,
            baseline: None,
            confirming: None,
            find_final: false,
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

    /// The first free claim of `kind(n)` on `config`.
    fn slot(config: Config, kind: fn(u32) -> ClaimKind, view: &StudyView) -> Decision {
        let taken: HashSet<ClaimKey> = view.claims.iter().map(|c| c.key).collect();
        let key = (0..)
            .map(|n| ClaimKey {
                config,
                kind: kind(n),
            })
            .find(|k| !taken.contains(k))
            .expect("a free slot");
        Decision::only(Choice::Measure(key))
    }
}

/// What one worker keeps between its claims.
struct Worker {
    board: String,
    /// Batches at which this board has no DVFS reading left (a recorded table ran out).
    exhausted: HashSet<u32>,
    /// The final choice's batch, with the record count it was found at.
    final_batch: Option<(usize, Option<u32>)>,
}

/// Runs still wanted of the pool `pool` beyond the claims in flight that `mine` picks out.
fn wanted(
    pool: Option<&Measurement>,
    view: &StudyView,
    study: &Study,
    mine: impl Fn(&ClaimKey) -> bool,
) -> bool {
    let flying = view.claims.iter().filter(|c| mine(&c.key)).count() as u32;
    pool::runs_wanted(pool, &study.protocol) > flying
}

/// A run of the DVFS baseline at `batch` when its pool wants one more than is being measured.
fn baseline_run(
    study: &Study,
    view: &StudyView,
    w: &Worker,
    batch: u32,
    pool: Option<&Measurement>,
) -> Option<Decision> {
    let mine =
        |k: &ClaimKey| matches!(k.kind, ClaimKind::Baseline(_)) && k.config.batch_size == batch;
    (!w.exhausted.contains(&batch) && wanted(pool, view, study, mine))
        .then(|| Decision::slot(Config::new(0, 0, batch), ClaimKind::Baseline, view))
}

/// What a worker claims next: its own run of the DVFS baseline first, then the pooled
/// baseline's runs; an orphaned claim, then the strategy's proposal with the configurations
/// being measured elsewhere told as lies; once the budget is measured, the final choice's
/// confirmations and the baseline at its batch, a run at a time.
fn decide(
    study: &mut Study,
    view: &StudyView,
    w: &Worker,
    make: &dyn Fn() -> Box<dyn Strategy>,
) -> Decision {
    study.strategy = make();
    let r = replay(study, &view.records, false);
    let b0 = study.baseline_batch;
    let own = view.records.iter().any(|x| {
        x.origin.board == w.board
            && matches!(&x.record, JournalRecord::Baseline { measurement } if measurement.batch_size == b0)
    });
    if !own && !w.exhausted.contains(&b0) {
        return Decision::slot(Config::new(0, 0, b0), ClaimKind::Baseline, view);
    }
    if let Some(d) = baseline_run(study, view, w, b0, r.baseline.as_ref()) {
        return d;
    }
    let Some(base) = r.baseline.clone() else {
        return Decision::done_or_wait(view);
    };
    let own_off = r.offsets.get(&w.board).copied().unwrap_or(0.0);
    let done = r.f.measured.len() + r.failed.len();
    let unmeasured = |c: &&ActiveClaim| {
        c.key.kind == ClaimKind::Explore
            && study
                .space
                .point_of(&c.key.config)
                .is_some_and(|p| !r.f.history.contains(&p))
    };
    let exploring: Vec<&ActiveClaim> = view.claims.iter().filter(unmeasured).collect();
    if done >= study.budget {
        // Every exploring measurement is in: confirm the final choice, a run at a time.
        return if exploring.is_empty() {
            confirmation(study, view, w, &r, own_off)
        } else {
            Decision::only(Choice::Wait)
        };
    }
    if done + exploring.len() >= study.budget {
        return Decision::only(Choice::Wait);
    }
    let incumbent =
        r.f.history
            .best()
            .filter(|o| o.feasible())
            .map(|o| (o.value * own_off.exp(), o.rel_se()));
    let claimed: HashSet<ClaimKey> = view.claims.iter().map(|c| c.key).collect();
    // A claim whose worker vanished mid-measurement is measured first, by whoever asks next.
    let orphan = view
        .expired
        .iter()
        .find(|c| !claimed.contains(&c.key) && unmeasured(c));
    let key = match orphan {
        Some(c) => c.key,
        None => {
            let history = with_lies(study, &r.f.history, &exploring);
            let Some(point) = study.strategy.ask(&history) else {
                return Decision::done_or_wait(view);
            };
            let key = ClaimKey::explore(study.space.config(&point));
            if r.f.history.contains(&point) || claimed.contains(&key) {
                return Decision::only(Choice::Wait);
            }
            key
        }
    };
    Decision {
        incumbent,
        baseline: Some(normalised(&base, -own_off)),
        ..Decision::only(Choice::Measure(key))
    }
}

/// The next run of the final choice's candidates at the full protocol (the recommendation, then
/// its rivals: see [`choice`]), at most as many as a study confirms, any board measuring any
/// run; once every candidate meets the protocol, the DVFS baseline at the final choice's batch
/// for the frequencies-only saving.
fn confirmation(
    study: &mut Study,
    view: &StudyView,
    w: &Worker,
    r: &Replayed,
    own_off: f64,
) -> Decision {
    let f = &r.f;
    let Some(b) = f.best else {
        return Decision::done_or_wait(view);
    };
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
    let leader = r
        .confirmed
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
    // Every candidate not yet at the full protocol; one confirmation each: one that could not
    // reach the full protocol (a table ran out) is not claimed again.
    let open: Vec<usize> = leader
        .map_or(Some(b), |_| None)
        .into_iter()
        .chain(rivals.iter().filter_map(|p| f.index.get(p).copied()))
        .filter(|i| !study.is_full(&f.measured[*i].measurement) && !r.confirmed.contains(i))
        .filter(|_| r.confirmed.len() < limit)
        .collect();
    for &i in &open {
        let config = f.measured[i].config;
        let pooled = r.pool_of(&config, &study.protocol);
        let mine = |k: &ClaimKey| matches!(k.kind, ClaimKind::Share(_)) && k.config == config;
        if wanted(pooled.as_ref(), view, study, mine) {
            let so_far = pooled
                .unwrap_or_else(|| normalised(&f.measured[i].measurement, r.measured_offsets[i]));
            return Decision {
                confirming: Some(normalised(&so_far, -own_off)),
                ..Decision::slot(config, ClaimKind::Share, view)
            };
        }
    }
    if !open.is_empty() {
        return Decision::only(Choice::Wait);
    }
    same_batch_baseline(study, view, w, &r.offsets)
}

/// Once every candidate is confirmed: a run of the DVFS baseline at the final choice's batch
/// while its pool wants one, so that the frequencies-only saving compares figures of one batch.
/// The final choice is found outside the transaction, once per state of the records
/// ([`Worker::find_final`]).
fn same_batch_baseline(
    study: &Study,
    view: &StudyView,
    w: &Worker,
    offsets: &HashMap<String, f64>,
) -> Decision {
    let batch = match w.final_batch {
        Some((n, batch)) if n == view.records.len() => batch,
        _ => {
            return Decision {
                find_final: true,
                ..Decision::only(Choice::Wait)
            }
        }
    };
    let pooled = batch.and_then(|b| pool::baseline(&view.records, b, offsets, &study.protocol));
    batch
        .filter(|b| *b != 0)
        .and_then(|b| baseline_run(study, view, w, b, pooled.as_ref()))
        .unwrap_or_else(|| Decision::done_or_wait(view))
}

impl Worker {
    /// The final choice's batch as the stored records stand now (what `study report` would
    /// recommend), kept with their count.
    fn find_final(&mut self, study: &mut Study, fleet: &mut Fleet<'_>) -> Result<(), StudyError> {
        let view = fleet.storage.study(fleet.name)?;
        study.strategy = (fleet.make_strategy)();
        let batch = outcome(study, &view).and_then(|o| o.best().map(|b| b.config.batch_size));
        self.final_batch = Some((view.records.len(), batch));
        Ok(())
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
    let mut rep = WorkerReport::default();
    let mut w = Worker {
        board: fleet.origin.board.clone(),
        exhausted: HashSet::new(),
        final_batch: None,
    };
    let make = fleet.make_strategy;
    let beat = Heartbeat::start(
        (fleet.reconnect)(),
        fleet.name,
        &fleet.origin,
        fleet.lease_s,
    );
    loop {
        if study.interrupted() {
            rep.interrupted = true;
            break;
        }
        let mut decision = None;
        let (name, origin, lease_s) = (fleet.name, fleet.origin.clone(), fleet.lease_s);
        let choice = fleet
            .storage
            .claim(name, &origin, lease_s, &mut |v: &StudyView| {
                let d = decide(study, v, &w, make);
                let c = d.choice;
                decision = Some(d);
                c
            })?;
        let key = match choice {
            Choice::Done => break,
            Choice::Wait if decision.as_ref().is_some_and(|d| d.find_final) => {
                w.find_final(study, fleet)?;
                continue;
            }
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
        let got = measure_claim(study, key, d)?;
        beat.keep(None);
        let record = match got {
            Claimed::Record(record) => record,
            Claimed::Exhausted => {
                fleet.storage.release(fleet.name, &key, &fleet.origin)?;
                w.exhausted.insert(key.config.batch_size);
                on_event(&format!(
                    "no DVFS reading left at batch {}: this board measures no more of that baseline",
                    key.config.batch_size
                ));
                continue;
            }
            Claimed::Interrupted => {
                // A signal: the claim goes back at once rather than when its lease runs out.
                fleet.storage.release(fleet.name, &key, &fleet.origin)?;
                rep.interrupted = true;
                break;
            }
        };
        write(study, fleet, (key, &record), &mut rep, on_event)?;
    }
    Ok(rep)
}

/// Writes a claim's record and counts it in `rep`.
fn write(
    study: &Study,
    fleet: &mut Fleet<'_>,
    (key, record): (ClaimKey, &JournalRecord),
    rep: &mut WorkerReport,
    on_event: &mut dyn FnMut(&str),
) -> Result<(), StudyError> {
    // The workload failed here whether or not the failure is the configuration's record.
    rep.failed += usize::from(matches!(record, JournalRecord::Failed { .. }));
    if !fleet
        .storage
        .complete(fleet.name, &key, record, &fleet.origin)?
    {
        on_event(&format!(
            "{} was written by another worker first (this one's lease ran out); dropped",
            key.config
        ));
        rep.duplicates += 1;
        return Ok(());
    }
    on_event(&describe(record));
    match record {
        JournalRecord::Baseline { .. } => rep.baseline_runs += 1,
        JournalRecord::Share { .. } => rep.shares += 1,
        JournalRecord::Confirmed { measurement, .. } if !study.is_full(measurement) => {
            rep.confirmed_short += 1
        }
        _ => rep.measured.push(key.config),
    }
    Ok(())
}

/// What measuring a claim gave.
enum Claimed {
    /// The record to write.
    Record(Box<JournalRecord>),
    /// A recorded table has no DVFS reading left at the claim's batch.
    Exhausted,
    /// A signal stopped it.
    Interrupted,
}

/// Measures a claim through the study's protocol.
fn measure_claim(study: &mut Study, key: ClaimKey, d: Decision) -> Result<Claimed, StudyError> {
    let config = key.config;
    let record = match key.kind {
        ClaimKind::Explore => {
            let baseline = d.baseline.expect("exploring is judged by a baseline");
            match study.take(config, d.incumbent, false, &baseline)? {
                Taken::Measured(measurement, _) => Some(JournalRecord::Measurement {
                    config,
                    measurement,
                }),
                Taken::Failed(error, _) => Some(JournalRecord::Failed { config, error }),
                Taken::Interrupted => None,
            }
        }
        ClaimKind::Share(_) => match study.one_run(&config.setting(), config.batch_size) {
            Ok(m) => m.map(|measurement| JournalRecord::Share {
                config,
                measurement,
            }),
            // A recorded table has no reading of it left for this board: as in `tune`, the
            // confirmation is what there is (not at the full protocol, and reported so).
            Err(DeviceError::NoMoreReadings) => Some(JournalRecord::Confirmed {
                config,
                measurement: d.confirming.expect("a share starts from a measurement"),
            }),
            Err(source) => {
                let what = format!("confirming {config}");
                return Err(StudyError::Device { what, source });
            }
        },
        ClaimKind::Baseline(_) => match study.one_run(&FreqSetting::Dvfs, config.batch_size) {
            Ok(m) => m.map(|measurement| JournalRecord::Baseline { measurement }),
            Err(DeviceError::NoMoreReadings) => return Ok(Claimed::Exhausted),
            Err(source) => {
                let what = format!("the DVFS baseline at batch {}", config.batch_size);
                return Err(StudyError::Device { what, source });
            }
        },
    };
    Ok(record.map_or(Claimed::Interrupted, |r| Claimed::Record(Box::new(r))))
}

fn describe(r: &JournalRecord) -> String {
    match r {
        JournalRecord::Measurement {
            config,
            measurement,
        } => format!("{config}: {:.1} J", measurement.energy_j),
        JournalRecord::Confirmed {
            config,
            measurement,
        } => format!("confirmed {config}: {:.1} J", measurement.energy_j),
        JournalRecord::Share {
            config,
            measurement,
        } => format!(
            "a run of {config} at the full protocol: {:.1} J",
            measurement.energy_j
        ),
        JournalRecord::Baseline { measurement } => format!(
            "a run of the DVFS baseline at batch {}: {:.1} J",
            measurement.batch_size, measurement.energy_j
        ),
        JournalRecord::Failed { config, error } => format!("{config}: failed: {error}"),
        JournalRecord::Study(_) => String::new(),
    }
}

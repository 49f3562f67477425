//! `--prior DIR`: an earlier tune's measurements (another model on this board, or this model on
//! another board) carried over to this study's space as the surrogate's prior mean and the cost
//! model's prior. Each knob is placed by its log position within the earlier study's range, so
//! "the third-fastest GPU clock" on one board lines up with the same place on another; a GP of the
//! earlier log values over those positions is read at every configuration here.

use crate::error::UsageError;
use crate::measure::Measurement;
use crate::objective::{Goal, Quantities};
use crate::space::{Axis, Config, Space};
use crate::strategy::{bayes, GridPrior};
use crate::study::JournalRecord;
use anyhow::Result;
use std::collections::HashMap;
use std::path::Path;

/// The prior over `space` from the journal of the tune in `dir`.
pub fn prior_from(dir: &Path, space: &Space, goal: &Goal, inferences: u32) -> Result<GridPrior> {
    let path = dir.join("journal.jsonl");
    if !path.exists() {
        return Err(UsageError(format!(
            "--prior {}: there is no {}; --prior takes twin, none, or the folder of an earlier tune",
            dir.display(),
            path.display()
        ))
        .into());
    }
    // Checked as a resume checks it: a journal is input.
    let (header, records) = crate::study::journal::read_records(&path)?;
    crate::study::Prior::check_stored(&header, &records).map_err(|(i, m)| {
        UsageError(format!(
            "--prior {}: {}{}: {m}",
            dir.display(),
            path.display(),
            i.map_or(String::new(), |i| format!(":{}", i + 2))
        ))
    })?;
    let measured = last_of_each(records);
    if measured.len() < 3 {
        return Err(UsageError(format!(
            "{} holds {} measurements; a prior needs at least 3",
            path.display(),
            measured.len()
        ))
        .into());
    }
    let place = |c: &Config| -> Vec<f64> {
        space
            .axes
            .iter()
            .map(|a| {
                let v = c.get(a.knob).unwrap_or(a.values[0]);
                // Positions within the earlier study's range where it searched this knob.
                let range = header
                    .space
                    .axis(a.knob)
                    .filter(|e| e.values.len() > 1)
                    .unwrap_or(a);
                position(v, range)
            })
            .collect()
    };
    let x: Vec<Vec<f64>> = measured.iter().map(|(c, _)| place(c)).collect();
    let q: Vec<Quantities> = measured
        .iter()
        .map(|(_, m)| Quantities::of(&m.at_length(inferences)))
        .collect();
    let ln = |v: f64| v.max(f64::MIN_POSITIVE).ln();
    let value: Vec<f64> = q.iter().map(|q| ln(goal.value(q))).collect();
    let time: Vec<f64> = q.iter().map(|q| ln(q.time_s)).collect();
    let at: Vec<Vec<f64>> = space
        .points()
        .map(|p| {
            let c = space.config(&p);
            space
                .axes
                .iter()
                .map(|a| position(c.get(a.knob).unwrap_or(a.values[0]), a))
                .collect()
        })
        .collect();
    let exp = |v: Vec<f64>| v.into_iter().map(f64::exp).collect::<Vec<_>>();
    let value = bayes::regress(&x, &value, &at).map(exp).unwrap_or_default();
    let time_s = bayes::regress(&x, &time, &at).map(exp).unwrap_or_default();
    Ok(GridPrior { value, time_s })
}

/// Log position of `v` within an axis's range, in [0, 1] (0.5 for a single value).
fn position(v: u64, a: &Axis) -> f64 {
    let (lo, hi) = (a.values[0] as f64, a.values[a.values.len() - 1] as f64);
    if hi <= lo || v == 0 {
        return 0.5;
    }
    ((v as f64).ln() - lo.ln()) / (hi.ln() - lo.ln())
}

/// The last measurement of each configuration, in journal order (a confirmation replaces a
/// screened one).
fn last_of_each(records: Vec<JournalRecord>) -> Vec<(Config, Measurement)> {
    let mut measured: Vec<(Config, Measurement)> = Vec::new();
    let mut index: HashMap<Config, usize> = HashMap::new();
    for rec in records {
        match rec {
            JournalRecord::Measurement {
                config,
                measurement,
            }
            | JournalRecord::Confirmed {
                config,
                measurement,
            } => match index.get(&config) {
                Some(i) => measured[*i].1 = measurement,
                None => {
                    index.insert(config, measured.len());
                    measured.push((config, measurement));
                }
            },
            _ => {}
        }
    }
    measured
}

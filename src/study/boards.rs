//! Which board recorded what in a stored study: each board's DVFS baselines and the board whose
//! figure of a configuration a report shows. A leaf: the fleet and the offsets' fit read it.

use super::storage::{StoredRecord, StudyView};
use super::JournalRecord;
use crate::measure::Measurement;
use crate::space::Config;
use std::collections::HashMap;

/// Each board's DVFS baseline at `batch` (the first recorded).
pub(super) fn baselines(records: &[StoredRecord], batch: u32) -> HashMap<String, Measurement> {
    let mut out = HashMap::new();
    for r in records {
        if let JournalRecord::Baseline { measurement } = &r.record {
            if measurement.batch_size == batch {
                out.entry(r.origin.board.clone())
                    .or_insert_with(|| measurement.clone());
            }
        }
    }
    out
}

/// `board`'s DVFS baseline at `batch`.
pub(super) fn baseline_by(view: &StudyView, board: &str, batch: u32) -> Option<Measurement> {
    view.records.iter().find_map(|r| match &r.record {
        JournalRecord::Baseline { measurement }
            if measurement.batch_size == batch && r.origin.board == board =>
        {
            Some(measurement.clone())
        }
        _ => None,
    })
}

/// The board whose figure of `config` a report shows: the latest confirmation's, else the
/// measurement's.
pub(super) fn figure_board<'v>(view: &'v StudyView, config: &Config) -> Option<&'v String> {
    let by = |confirmed: bool| {
        view.records.iter().rev().find_map(|r| match &r.record {
            JournalRecord::Confirmed { config: c, .. } if confirmed && c == config => {
                Some(&r.origin.board)
            }
            JournalRecord::Measurement { config: c, .. } if !confirmed && c == config => {
                Some(&r.origin.board)
            }
            _ => None,
        })
    };
    by(true).or_else(|| by(false))
}

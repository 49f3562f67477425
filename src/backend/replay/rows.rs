//! A replay table's rows as the device replays them: one recorded run ([`Row`]), the readings a
//! row that summarises its runs stands for, and a power-mode table's folding of its clock
//! columns into each mode's caps. A leaf of `backend/replay/`.

use crate::space::{Config, Knob};
use std::collections::{BTreeMap, HashMap};

/// One recorded run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Energy of the run.
    pub energy_j: f64,
    /// Time of the run, if recorded.
    pub time_s: Option<f64>,
    /// Inferences the run was for, if recorded.
    pub inferences: Option<u32>,
}

/// The knob columns that a `power_mode` column makes the mode's caps rather than knobs.
pub const MODE_CAPS: [Knob; 4] = [
    Knob::CpuFreqKhz,
    Knob::GpuFreqHz,
    Knob::EmcFreqHz,
    Knob::CpuCores,
];

/// An nvpmodel power mode as a table records it: its caps (the clock and core columns of its
/// rows; 0 or `None` where the table has no such column) and its name (`mode_name`).
#[derive(Debug, Clone, PartialEq)]
pub struct PowerMode {
    /// The caps, in a configuration's fields.
    pub caps: Config,
    /// The mode's name, where the table gives one.
    pub name: Option<String>,
}

/// The readings a row stands for: itself, or (a mean of `runs` runs with coefficient of
/// variation `cv`, as `edgetune sweep` writes it) that many readings with exactly that mean and
/// CV, evenly spread, so the protocol sees the spread the row records instead of one reading
/// of unknown spread.
pub fn readings(row: Row, summary: Option<(usize, f64)>) -> Vec<Row> {
    let Some((k, cv)) = summary.filter(|(k, _)| *k >= 2) else {
        return vec![row];
    };
    // Offsets i - (k-1)/2 scaled to a sample standard deviation of 1.
    let sd = (k as f64 * (k as f64 + 1.0) / 12.0).sqrt();
    (0..k)
        .map(|i| Row {
            energy_j: row.energy_j * (1.0 + cv * (i as f64 - (k - 1) as f64 / 2.0) / sd),
            ..row
        })
        .collect()
}

/// The knobs, the rows keyed by their values, and the power modes by id.
pub type Folded = (
    Vec<Knob>,
    HashMap<Vec<u64>, Vec<Row>>,
    BTreeMap<u64, PowerMode>,
);

/// A table with a `power_mode` column: the clock and core columns are each mode's caps (one
/// value per mode, checked), not knobs, so the knobs are the mode and the batch size and each
/// mode's caps and name are kept for the notes. Any other table comes back as it was.
pub fn fold_power_modes(
    knobs: Vec<Knob>,
    rows: HashMap<Vec<u64>, Vec<Row>>,
    names: &[(Vec<u64>, Option<String>)],
) -> Result<Folded, String> {
    let Some(m) = knobs.iter().position(|k| *k == Knob::PowerMode) else {
        return Ok((knobs, rows, Default::default()));
    };
    let kept: Vec<usize> = (0..knobs.len())
        .filter(|j| !MODE_CAPS.contains(&knobs[*j]))
        .collect();
    let caps_of = |key: &[u64]| {
        let mut c = Config::new(0, 0, 0);
        for (j, k) in knobs
            .iter()
            .enumerate()
            .filter(|(_, k)| MODE_CAPS.contains(k))
        {
            c.set(*k, key[j]);
        }
        c
    };
    let mut modes: BTreeMap<u64, PowerMode> = Default::default();
    for (key, name) in names {
        let caps = caps_of(key);
        let mode = modes.entry(key[m]).or_insert(PowerMode {
            caps,
            name: name.clone(),
        });
        if mode.caps != caps {
            return Err(format!(
                "power mode {} has rows with different caps ({} and {}): with a `power_mode` column, the clock and core columns are the mode's caps, one value per mode",
                key[m], mode.caps, caps
            ));
        }
    }
    let mut folded: HashMap<Vec<u64>, Vec<Row>> = HashMap::new();
    for (key, r) in rows {
        let k: Vec<u64> = kept.iter().map(|j| key[*j]).collect();
        folded.entry(k).or_default().extend(r);
    }
    Ok((kept.iter().map(|j| knobs[*j]).collect(), folded, modes))
}

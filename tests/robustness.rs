//! Property tests of the inputs edgetune reads back (issue 18): generated journals for
//! `--resume` (torn lines, missing, moved or repeated headers, duplicates, wrong types, garbage)
//! and generated replay tables for `--table`. Each is taken whole with nothing lost, or refused
//! as bad input naming its line; never a panic. Bounded to a few seconds.

use edgetune::backend::replay::{ReplayError, ReplayTable};
use edgetune::backend::sim::{Noise, SimBoard};
use edgetune::catalog::Catalog;
use edgetune::device::BackendKind;
use edgetune::measure::ProtocolSettings;
use edgetune::space::{Config, Space};
use edgetune::strategy::{make, StrategyInit};
use edgetune::study::{
    Exploration, Journal, JournalError, JournalRecord, Prior, Study, StudyHeader,
};
use proptest::prelude::*;
use std::sync::OnceLock;

/// A finished study's header and journal lines (ResNet-18 on the Nano twin, 8 measurements).
fn journal() -> &'static (StudyHeader, Vec<String>) {
    static J: OnceLock<(StudyHeader, Vec<String>)> = OnceLock::new();
    J.get_or_init(|| {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let space = Space::new(b, m, None, &[]).unwrap();
        let protocol = ProtocolSettings {
            inferences: 320,
            ..Default::default()
        };
        let race = Exploration {
            race: true,
            screen_inferences: None,
        };
        let header = StudyHeader {
            model: "resnet18".into(),
            device: "nano".into(),
            backend: BackendKind::Sim,
            strategy: "random".into(),
            seed: 3,
            budget: 8,
            baseline_batch: 4,
            protocol,
            space: space.clone(),
            goal: Default::default(),
            // Racing leaves single runs and a confirmation in the journal, to break too.
            exploration: race,
            prior: String::new(),
            prior_grid: None,
            args: vec!["-m".into(), "resnet18".into()],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let sim = SimBoard::new(b, Noise::Seeded(3));
        let (mut d, mut w) = (sim.device(), sim.workload(m).unwrap());
        let mut study = Study {
            space: &space,
            device: &mut d,
            workload: &mut w,
            strategy: make("random", &StrategyInit::for_space(&space, 3, 8)).unwrap(),
            budget: 8,
            protocol,
            baseline_batch: 4,
            journal: Some(Box::new(Journal::create(&path, &header).unwrap())),
            prior: Prior::default(),
            interrupt: None,
            goal: Default::default(),
            exploration: race,
        };
        study.run(|_| {}).unwrap();
        let lines = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        (header, lines)
    })
}

/// One change to a journal.
#[derive(Debug, Clone)]
enum Edit {
    /// Cut the file at a byte (a kill mid-write when it falls in the last line).
    Truncate(usize),
    /// Delete line i.
    Delete(usize),
    /// Swap lines i and j.
    Swap(usize, usize),
    /// Repeat line i at the end.
    Repeat(usize),
    /// Replace a number in line i by a string.
    WrongType(usize),
    /// Insert a line of garbage at i.
    Garbage(usize, String),
    /// Drop the final newline.
    NoNewline,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..4000).prop_map(Edit::Truncate),
        (0usize..12).prop_map(Edit::Delete),
        (0usize..12, 0usize..12).prop_map(|(i, j)| Edit::Swap(i, j)),
        (0usize..12).prop_map(Edit::Repeat),
        (0usize..12).prop_map(Edit::WrongType),
        (0usize..12, "[ -~]{0,40}").prop_map(|(i, s)| Edit::Garbage(i, s)),
        Just(Edit::NoNewline),
    ]
}

fn apply(text: &mut String, e: &Edit) {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let n = lines.len().max(1);
    match e {
        Edit::Truncate(at) => {
            let mut at = (*at).min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
            return;
        }
        Edit::NoNewline => {
            let t = text.trim_end_matches('\n').len();
            text.truncate(t);
            return;
        }
        Edit::Delete(i) if !lines.is_empty() => {
            lines.remove(i % n);
        }
        Edit::Swap(i, j) if !lines.is_empty() => lines.swap(i % n, j % n),
        Edit::Repeat(i) if !lines.is_empty() => {
            let l = lines[i % n].clone();
            lines.push(l);
        }
        Edit::WrongType(i) if !lines.is_empty() => {
            let l = &mut lines[i % n];
            if let Some(p) = l.find("\"energy_j\":") {
                l.insert_str(p + 11, "\"many\",\"x\":");
            }
        }
        Edit::Garbage(i, g) => lines.insert(i % (lines.len() + 1), g.clone()),
        _ => {}
    }
    *text = lines.join("\n") + "\n";
}

/// The measurements of the complete, unchanged lines of `text` that come from the study.
fn whole_measurements(text: &str, original: &[String]) -> Vec<Config> {
    let complete = match text.ends_with('\n') {
        true => text.lines().count(),
        false => text.lines().count().saturating_sub(1),
    };
    text.lines()
        .take(complete)
        .filter(|l| original.contains(&l.to_string()))
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(JournalRecord::Measurement { config, .. }) => Some(config),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_changed_journal_is_resumed_whole_or_refused_with_its_line(
        edits in proptest::collection::vec(edit(), 1..4)
    ) {
        let (header, lines) = journal();
        let mut text = lines.join("\n") + "\n";
        for e in &edits {
            apply(&mut text, e);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, &text).unwrap();
        match Journal::resume(&path, header) {
            Ok((mut j, prior)) => {
                // Nothing whole is lost: every unchanged measurement line is in the prior.
                for c in whole_measurements(&text, lines) {
                    prop_assert!(prior.measurements.contains_key(&c), "{c} lost");
                }
                // And the journal goes on: one more record, and it reads back.
                j.append(&JournalRecord::Failed {
                    config: Config::new(102_000, 76_800_000, 1),
                    error: "x".into(),
                })
                .unwrap();
                drop(j);
                let again = Prior::read(&path, header);
                prop_assert!(again.is_ok(), "{:?}", again.err());
            }
            Err(JournalError::Corrupt { line, .. }) => {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1), "line {line}");
            }
            Err(JournalError::Mismatch { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error: {e}"),
        }
    }
}

/// A generated replay table: a valid grid (one or two knobs of two or three values, energies,
/// sometimes times and repeated rows), then up to three corruptions (a cell made extreme,
/// negative, not a number or empty; a row dropped; a cell too many; a column twice).
fn table() -> impl Strategy<Value = String> {
    let hostile = prop_oneof![
        Just("1e308"),
        Just("1e20"),
        Just("-3"),
        Just("NaN"),
        Just(""),
        Just("x"),
        Just("dvfs"),
        Just("0"),
    ];
    let corruption = (0usize..4, 0usize..40, 0usize..4, hostile);
    (
        1usize..3,
        2usize..4,
        any::<bool>(),
        1usize..3,
        proptest::collection::vec(1u32..1000, 9),
        proptest::collection::vec(corruption, 0..4),
    )
        .prop_map(
            |(knobs, values, with_time, repeats, energies, corruptions)| {
                let names = ["gpu_freq_hz", "batch_size"];
                let mut header: Vec<&str> = names[..knobs].to_vec();
                header.push("energy_j");
                if with_time {
                    header.push("time_s");
                }
                let mut rows: Vec<Vec<String>> = Vec::new();
                let combos = values.pow(knobs as u32);
                for r in 0..repeats {
                    for k in 0..combos {
                        let mut row: Vec<String> = (0..knobs)
                            .map(|d| ((k / values.pow(d as u32)) % values * 100 + 100).to_string())
                            .collect();
                        row.push(format!("{}.25", energies[(k + r) % 9]));
                        if with_time {
                            row.push("2.5".into());
                        }
                        rows.push(row);
                    }
                }
                let mut head = header.join(",");
                for (kind, at, col, v) in corruptions {
                    let n = rows.len();
                    match kind {
                        0 => {
                            let row = &mut rows[at % n];
                            let c = col % row.len();
                            row[c] = v.to_string();
                        }
                        1 if n > 1 => {
                            rows.remove(at % n);
                        }
                        2 => rows[at % n].push("7".into()),
                        _ => head = format!("{head},{}", header[col % header.len()]),
                    }
                }
                let mut s = head + "\n";
                for r in rows {
                    s += &(r.join(",") + "\n");
                }
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_generated_replay_table_is_loaded_or_refused_with_its_place(csv in table()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, &csv).unwrap();
        match ReplayTable::load(&path) {
            Ok(t) => {
                // Every configuration of the space has rows or is a counted hole (at most half),
                // and every recorded energy is usable.
                prop_assert_eq!(t.rows.len() + t.holes, t.space.size());
                prop_assert!(2 * t.holes <= t.space.size());
                let means = t.mean_energy_time(3200);
                prop_assert_eq!(means.iter().filter(|(e, _)| e.is_infinite()).count(), t.holes);
                for (e, _) in means.into_iter().filter(|(e, _)| e.is_finite()) {
                    prop_assert!(e > 0.0, "{e}");
                }
            }
            Err(ReplayError::Row { line, .. }) => {
                prop_assert!(line >= 1 && line as usize <= csv.lines().count().max(1));
            }
            Err(ReplayError::Table { .. }) | Err(ReplayError::Io { .. }) => {}
        }
    }
}

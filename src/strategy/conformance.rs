//! The conformance suite every strategy passes, run on the twin with its noise on: proposes only
//! valid, not-yet-measured points; respects the budget; is deterministic for a seed; and (for
//! strategies that search rather than enumerate) beats random search over seeds.

use super::{make, History, Observation, StrategyInit, NAMES};
use crate::backend::sim::{Noise, SimBoard};
use crate::catalog::Catalog;
use crate::measure::{measure, stats, ProtocolSettings};
use crate::space::{Point, Space};

struct Drive {
    points: Vec<Point>,
    regret_pct: f64,
}

/// Runs `name` on `model`/`board` through the real protocol on the twin; checks every proposal.
fn drive(name: &str, board: &str, model: &str, seed: u64, budget: usize) -> Drive {
    let cat = Catalog::load(None).unwrap();
    let (b, m) = (cat.board(board).unwrap(), cat.model(model).unwrap());
    let space = Space::new(b, m, None, &[]).unwrap();
    let dims = space.dims();
    let mut s = make(name, &StrategyInit::for_space(&space, seed, budget)).unwrap();
    let sim = SimBoard::new(b, Noise::Seeded(seed + 1000));
    let (mut dev, mut wl) = (sim.device(), sim.workload(m).unwrap());
    let settings = ProtocolSettings {
        inferences: 320,
        ..Default::default()
    };
    let mut h = History::default();
    let mut points = Vec::new();
    while h.len() < budget {
        let Some(p) = s.ask(&h) else { break };
        assert_eq!(p.len(), dims.len(), "{name}: wrong dimension {p:?}");
        assert!(
            p.iter().zip(&dims).all(|(i, n)| i < n),
            "{name}: {p:?} outside {dims:?}"
        );
        assert!(!h.contains(&p), "{name}: asked again for measured {p:?}");
        let c = space.config(&p);
        let meas = measure(&mut dev, &mut wl, &c.setting(), c.batch_size, &settings).unwrap();
        let o = Observation {
            point: p.clone(),
            value: meas.energy_j,
            cv: meas.cv,
            runs: meas.runs.len() as u32,
            ..Default::default()
        };
        s.tell(&o);
        h.push(o);
        points.push(p);
    }
    assert!(points.len() <= budget);
    let truth: Vec<f64> = crate::twin::true_grid(b, m, &space, settings.inferences)
        .iter()
        .map(|t| t.energy_j)
        .collect();
    let min = truth.iter().copied().fold(f64::INFINITY, f64::min);
    let best = h.best().unwrap();
    Drive {
        regret_pct: (truth[space.index(&best.point)] / min - 1.0) * 100.0,
        points,
    }
}

#[test]
fn every_strategy_proposes_valid_new_points_within_budget_deterministically() {
    for name in NAMES {
        for (board, model) in [("nano", "resnet18"), ("xavier-nx", "mobilenet-v2")] {
            let a = drive(name, board, model, 3, 25);
            let b = drive(name, board, model, 3, 25);
            assert_eq!(a.points, b.points, "{name} is not deterministic for a seed");
            assert!(!a.points.is_empty());
        }
    }
}

#[test]
fn a_strategy_stops_when_the_space_is_exhausted() {
    // A budget larger than a tiny space: no strategy may ask for more than it holds.
    let cat = Catalog::load(None).unwrap();
    let (b, m) = (
        cat.board("nano").unwrap(),
        cat.model("mobilenet-v2").unwrap(),
    );
    let fixes = [(crate::space::Knob::CpuFreqKhz, 1_479_000)];
    let space = Space::new(b, m, Some(&[4, 8]), &fixes).unwrap();
    for name in NAMES {
        let mut s = make(name, &StrategyInit::new(space.dims(), 1, 100)).unwrap();
        let mut h = History::default();
        while let Some(p) = s.ask(&h) {
            assert!(!h.contains(&p));
            let value = 1.0 + p.iter().sum::<usize>() as f64;
            h.push(Observation {
                point: p,
                value,
                cv: 0.01,
                runs: 3,
                ..Default::default()
            });
            assert!(h.len() <= space.size(), "{name} asked past the space");
        }
    }
}

#[test]
fn searching_strategies_beat_random_search_over_seeds() {
    // Grid enumerates in order and random is the reference, so both are exempt.
    let budget = 30;
    let seeds = 0..12;
    let cases = [("nano", "yolov4-tiny"), ("xavier-nx", "resnet18")];
    let regrets = |name: &str| -> f64 {
        let mut r = Vec::new();
        for (board, model) in cases {
            for seed in seeds.clone() {
                r.push(drive(name, board, model, seed, budget).regret_pct);
            }
        }
        stats::median(&r)
    };
    let random = regrets("random");
    for name in NAMES.iter().filter(|n| !matches!(**n, "random" | "grid")) {
        let mine = regrets(name);
        assert!(
            mine < random,
            "{name}: median regret {mine:.2} % is not below random's {random:.2} %"
        );
    }
}

//! The kriging believer (Ginsbourger, Le Riche & Carraro 2010): how a fleet tells its strategy
//! about the configurations other workers are measuring, so the next proposal moves away.

use super::storage::ActiveClaim;
use super::Study;
use crate::strategy::{penalised, History, Observation};

/// `measured` with each configuration being measured elsewhere told as measured. The kriging
/// believer: at the surrogate's own prediction there; a strategy without a surrogate gets the
/// constant liar's best value so far. Before anything is measured a pending one is only taken.
pub(super) fn with_lies(
    study: &mut Study,
    measured: &History,
    exploring: &[&ActiveClaim],
) -> History {
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

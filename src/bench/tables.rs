//! What the bench measures against besides the catalogue's twin: a mismatched twin
//! (`--mismatch`) and noisy recorded tables generated from it.

use crate::backend::replay::ReplayTable;
use crate::catalog::{Board, Model};
use crate::landscape::Roughness;
use crate::space::{Knob, Space};
use anyhow::Result;

/// A board and model unlike the catalogue's twin, seeded: static power, CPU and GPU dynamic
/// power, GPU efficiency and memory traffic each off by up to ±20 %, and both voltage curves
/// stretched along the frequency axis by up to ±15 % (which moves the optimum by a few steps).
pub fn perturbed(b: &Board, m: &Model, seed: u64) -> (Board, Model) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6d69_736d_6174_6368);
    let mut f = |spread: f64| 1.0 + rng.random_range(-spread..=spread);
    let (mut b, mut m) = (b.clone(), m.clone());
    let t = &mut b.twin;
    t.base_power_mw *= f(0.2);
    t.gpu.dyn_mw_per_mhz_v2 *= f(0.2);
    t.cpu.dyn_mw_per_mhz_v2 *= f(0.2);
    t.gpu.leak_mw_at_1v *= f(0.2);
    let (sg, sc) = (f(0.15), f(0.15));
    for p in &mut t.gpu.voltage_mv_by_mhz {
        p[0] *= sg;
    }
    for p in &mut t.cpu.voltage_mv_by_mhz {
        p[0] *= sc;
    }
    if let Some(mt) = m.twin.get_mut(&b.board.id) {
        mt.gpu_efficiency *= f(0.2);
        mt.activations_mb_per_inference *= f(0.2);
        mt.cpu_mcycles_per_batch *= f(0.2);
    }
    (b, m)
}

/// A recorded table as a real single-shot sweep would give it, generated from the twin: one
/// reading per configuration of `space` with seeded relative noise `noise` on its energy, a
/// share `holes` of the configurations left out (never the all-max clock corner of a batch size,
/// which stands in for the baseline), no DVFS rows; of a rough board's grid with `rough`.
/// Returns the table and which configurations are holes.
#[allow(clippy::too_many_arguments)]
pub fn synthetic_table(
    b: &Board,
    m: &Model,
    space: &Space,
    inferences: u32,
    noise: f64,
    holes: f64,
    seed: u64,
    rough: Option<&Roughness>,
) -> Result<(ReplayTable, Vec<bool>)> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7461_626c_6573);
    let normal = rand_distr::Normal::new(0.0, noise.max(0.0))?;
    let knobs: Vec<Knob> = space.axes.iter().map(|a| a.knob).collect();
    let dims = space.dims();
    // The all-max clock corner at each batch size stands in for the baseline: never a hole.
    let corner = |p: &[usize]| {
        space
            .axes
            .iter()
            .enumerate()
            .all(|(a, ax)| ax.knob == Knob::BatchSize || p[a] == dims[a] - 1)
    };
    let mut rows = std::collections::HashMap::new();
    let mut hole = vec![false; space.size()];
    for (i, p) in space.points().enumerate() {
        if !corner(&p) && rng.random::<f64>() < holes {
            hole[i] = true;
            continue;
        }
        let c = space.config(&p);
        let t = crate::twin::truth(b, m, &c.setting(), c.batch_size, inferences);
        let structure = rough.map_or(1.0, |r| r.factor(&c));
        let e: f64 = rand_distr::Distribution::sample(&normal, &mut rng);
        let key: Vec<u64> = knobs.iter().map(|k| c.get(*k).unwrap_or(0)).collect();
        let row = crate::backend::replay::Row {
            energy_j: t.energy_j * structure * (1.0 + e).max(0.05),
            time_s: Some(t.time_s),
            inferences: Some(inferences),
        };
        rows.insert(key, vec![row]);
    }
    let table = ReplayTable {
        path: format!("generated from the twin of {} on {}", m.id(), b.board.id).into(),
        knobs,
        rows,
        dvfs: std::collections::HashMap::new(),
        space: space.clone(),
        holes: hole.iter().filter(|h| **h).count(),
        modes: Default::default(),
        ignored: Vec::new(),
    };
    Ok((table, hole))
}

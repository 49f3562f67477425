//! The twin's calibration tool.
//!
//! `cargo run --example calibrate [-- BATCH]` prints the twin's value for every calibration target
//! (calibration-targets.md): DVFS and minimum energy, saving, the best pair, the spreads and
//! interior minima of the GPU and CPU sweeps, loaded power at low and high GPU clock, and the
//! Nano/NX ratio.
//!
//! `cargo run --example calibrate -- --fit` fits the per-model free parameters to
//! calibration/targets.toml by bisection and writes them back into models/*.toml (comments kept):
//! `spin` (how much the inference thread busy-waits on the GPU) sets the saving against DVFS; on
//! the Nano, YOLOv4-tiny's `gpu_efficiency` sets its absolute energy (T2); on the Xavier NX a
//! speed factor (GPU efficiency up, CPU cycles down) sets the Nano/NX energy ratio (T4).
use edgetune::catalog::{Board, Catalog, Model, ModelTwin};
use edgetune::measure::stats;
use edgetune::twin::TwinModel;
use std::collections::BTreeMap;

const B: u32 = 8;

struct Eval {
    dvfs: f64,
    min: f64,
    cpu: u64,
    gpu: u64,
}

fn eval(b: &Board, m: &Model, mt: &ModelTwin, batch: u32) -> Eval {
    let t = TwinModel {
        board: &b.twin,
        model: mt,
        gflops: m.paper.gflops,
    };
    let dvfs = t.dvfs(b, batch, 3200).energy_j;
    let mut e = Eval {
        dvfs,
        min: f64::INFINITY,
        cpu: 0,
        gpu: 0,
    };
    for c in &b.cpu.frequencies_khz {
        for g in &b.gpu.frequencies_hz {
            let x = t.pinned(*c, *g, batch, 3200).energy_j;
            if x < e.min {
                (e.min, e.cpu, e.gpu) = (x, *c, *g);
            }
        }
    }
    e
}

fn saving(e: &Eval) -> f64 {
    (1.0 - e.min / e.dvfs) * 100.0
}

/// Bisection on a monotonic function over [lo, hi]; clamps when the target is out of reach.
fn bisect(f: impl Fn(f64) -> f64, target: f64, mut lo: f64, mut hi: f64) -> f64 {
    let increasing = f(hi) > f(lo);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if (f(mid) < target) == increasing {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn report(cat: &Catalog, batch: u32) {
    let mut mins = BTreeMap::new();
    for b in &cat.boards {
        println!("== {} (batch {batch})", b.board.id);
        println!(
            "{:<13} {:>8} {:>8} {:>6}  {:>7} {:>7}  {:>6} {:>6}  {:>5} {:>5}  {:>6} {:>6}",
            "model",
            "dvfs J",
            "min J",
            "sav%",
            "cpuMHz",
            "gpuMHz",
            "sprG",
            "sprC",
            "gInt",
            "cInt",
            "P@gmin",
            "P@gmax"
        );
        for m in &cat.models {
            if !m.paper.batch_sizes.contains(&batch) {
                continue;
            }
            let mt = m.twin_for(&b.board.id).unwrap();
            let e = eval(b, m, mt, batch);
            let t = TwinModel {
                board: &b.twin,
                model: mt,
                gflops: m.paper.gflops,
            };
            let cmax = *b.cpu.frequencies_khz.last().unwrap();
            let gcurve: Vec<f64> = b
                .gpu
                .frequencies_hz
                .iter()
                .map(|g| t.pinned(cmax, *g, batch, 3200).energy_j)
                .collect();
            let ccurve: Vec<f64> = b
                .cpu
                .frequencies_khz
                .iter()
                .map(|c| t.pinned(*c, e.gpu, batch, 3200).energy_j)
                .collect();
            let (spr, interior) = (stats::spread, stats::has_interior_min);
            let pmin = t.pinned(
                cmax,
                b.gpu.frequencies_hz[if b.board.id == "nano" { 1 } else { 0 }],
                batch,
                3200,
            );
            let pmax = t.pinned(cmax, *b.gpu.frequencies_hz.last().unwrap(), batch, 3200);
            println!("{:<13} {:>8.1} {:>8.1} {:>6.1}  {:>7.1} {:>7.1}  {:>6.2} {:>6.2}  {:>5} {:>5}  {:>6.0} {:>6.0}",
                m.model.id, e.dvfs, e.min, saving(&e), e.cpu as f64 / 1e3, e.gpu as f64 / 1e6, spr(&gcurve), spr(&ccurve), interior(&gcurve), interior(&ccurve), pmin.power_mw, pmax.power_mw);
            mins.insert((b.board.id.clone(), m.model.id.clone()), e.min);
        }
    }
    println!("== Nano min / NX min (batch {batch})");
    for m in &cat.models {
        if let (Some(n), Some(x)) = (
            mins.get(&("nano".into(), m.model.id.clone())),
            mins.get(&("xavier-nx".into(), m.model.id.clone())),
        ) {
            println!("{:<13} {:.2}", m.model.id, n / x);
        }
    }
}

fn fit(cat: &mut Catalog) {
    let targets: toml::Value =
        toml::from_str(&std::fs::read_to_string("calibration/targets.toml").unwrap()).unwrap();
    let yolo_j = targets["nano_yolov4_tiny_min_energy_j"].as_float().unwrap();
    let sav = |board: &str, model: &str| targets["saving_pct"][board][model].as_float().unwrap();
    let ratio = |model: &str| targets["nano_over_nx"][model].as_float().unwrap();
    let nano = cat.board("nano").unwrap().clone();
    let nx = cat.board("xavier-nx").unwrap().clone();
    for _round in 0..6 {
        for m in cat.models.iter_mut() {
            let id = m.model.id.clone();
            // Nano: energy scale of YOLOv4-tiny, then the saving.
            let mut t = m.twin["nano"].clone();
            if id == "yolov4-tiny" {
                t.gpu_efficiency = bisect(
                    |x| {
                        eval(
                            &nano,
                            m,
                            &ModelTwin {
                                gpu_efficiency: x,
                                ..t.clone()
                            },
                            B,
                        )
                        .min
                    },
                    yolo_j,
                    0.05,
                    4.0,
                );
            }
            t.spin = bisect(
                |x| {
                    saving(&eval(
                        &nano,
                        m,
                        &ModelTwin {
                            spin: x,
                            ..t.clone()
                        },
                        B,
                    ))
                },
                sav("nano", &id),
                0.0,
                1.0,
            );
            m.twin.insert("nano".into(), t.clone());
            let nano_min = eval(&nano, m, &t, B).min;
            // Xavier NX: speed factor for the ratio, then the saving.
            let x0 = m.twin["xavier-nx"].clone();
            let scaled = |k: f64| ModelTwin {
                gpu_efficiency: (x0.gpu_efficiency * k).min(8.0),
                cpu_mcycles_per_inference: x0.cpu_mcycles_per_inference / k,
                cpu_mcycles_per_batch: x0.cpu_mcycles_per_batch / k,
                ..x0.clone()
            };
            let k = bisect(
                |k| nano_min / eval(&nx, m, &scaled(k), B).min,
                ratio(&id),
                0.2,
                5.0,
            );
            let mut x = scaled(k);
            x.spin = bisect(
                |s| {
                    saving(&eval(
                        &nx,
                        m,
                        &ModelTwin {
                            spin: s,
                            ..x.clone()
                        },
                        B,
                    ))
                },
                sav("xavier-nx", &id),
                0.0,
                1.0,
            );
            m.twin.insert("xavier-nx".into(), x);
        }
    }
    for m in &cat.models {
        let path = format!("models/{}.toml", m.model.id);
        let src = std::fs::read_to_string(&path).unwrap();
        let mut doc: toml_edit::DocumentMut = src.parse().unwrap();
        for (board, t) in &m.twin {
            let r = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
            doc["twin"][board.as_str()]["gpu_efficiency"] =
                toml_edit::value(r(t.gpu_efficiency, 4));
            doc["twin"][board.as_str()]["spin"] = toml_edit::value(r(t.spin, 4));
            doc["twin"][board.as_str()]["cpu_mcycles_per_inference"] =
                toml_edit::value(r(t.cpu_mcycles_per_inference, 3));
            doc["twin"][board.as_str()]["cpu_mcycles_per_batch"] =
                toml_edit::value(r(t.cpu_mcycles_per_batch, 3));
        }
        std::fs::write(&path, doc.to_string()).unwrap();
        println!("wrote {path}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cat = Catalog::load(Some(std::path::Path::new("."))).unwrap();
    if args.iter().any(|a| a == "--fit") {
        fit(&mut cat);
        cat = Catalog::load(Some(std::path::Path::new("."))).unwrap();
    }
    let batch = args.iter().find_map(|a| a.parse().ok()).unwrap_or(B);
    report(&cat, batch);
}

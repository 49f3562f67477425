//! What `models` and `devices` print: the catalogue's models and boards, the board this is
//! (its live state), and the NVIDIA GPUs NVML sees.

use crate::backend::jetson::live::Live;
use crate::backend::nvml::GpuInfo;
use crate::catalog::{Board, Catalog};
use crate::units::{cpu_mhz, gpu_mhz, opt_mhz};

/// `models --json`.
pub fn models_json(cat: &Catalog) -> serde_json::Value {
    cat.models
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.model.id, "name": m.model.name, "aliases": m.model.aliases,
                "layers": m.paper.layers, "params_m": m.paper.params_m, "gflops": m.paper.gflops,
                "batch_sizes": m.paper.batch_sizes, "input": m.paper.input,
                "framework": m.paper.framework, "twin_boards": m.twin.keys().collect::<Vec<_>>(),
                "built": m.built.as_ref().map(|b| serde_json::json!({
                    "arch": b.arch, "params": b.params, "macs": b.macs,
                })),
            })
        })
        .collect()
}

/// `models`' table.
pub fn models_text(cat: &Catalog) -> String {
    let mut s = format!(
        "{:<13} {:<13} {:>6} {:>8} {:>7}  {:<18} {:<27} aliases\n",
        "id", "name", "layers", "params", "GFLOPs", "batch sizes", "input"
    );
    for m in &cat.models {
        s += &format!(
            "{:<13} {:<13} {:>6} {:>7.1}M {:>7.4}  {:<18} {:<27} {}\n",
            m.model.id,
            m.model.name,
            m.paper.layers,
            m.paper.params_m,
            m.paper.gflops,
            format!("{:?}", m.paper.batch_sizes),
            m.paper.input,
            m.model.aliases.join(", ")
        );
    }
    s
}

/// One catalogue board in `devices --json`.
pub fn board_json(b: &Board, detected: bool, backends: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "id": b.board.id, "name": b.board.name, "aliases": b.board.aliases,
        "cpu_freq_khz": b.cpu.frequencies_khz, "gpu_freq_hz": b.gpu.frequencies_hz,
        "cpu_governor": b.cpu.default_governor, "gpu_governor": b.gpu.default_governor,
        "cpu_clusters": b.cpu.clusters.iter().map(|c| &c.cpus).collect::<Vec<_>>(),
        "rails": b.sensors.rails, "total_rail": b.sensors.total_rail,
        "detected": detected,
        "backends": backends,
    })
}

/// One catalogue board in `devices`.
pub fn board_text(b: &Board, detected: bool, backends: &[&str]) -> String {
    let (c, g) = (&b.cpu.frequencies_khz, &b.gpu.frequencies_hz);
    format!(
        "{} ({}){}\n  aliases: {}\n  CPU: {} steps, {}-{} MHz, {} cluster(s), governor {}\n  GPU: {} steps, {}-{} MHz, devfreq {}, governor {}\n  rails: {} (total {})\n  backends: {}",
        b.board.id,
        b.board.name,
        if detected { " [this machine]" } else { "" },
        b.board.aliases.join(", "),
        c.len(),
        cpu_mhz(c[0]),
        cpu_mhz(c[c.len() - 1]),
        b.cpu.clusters.len(),
        b.cpu.default_governor,
        g.len(),
        gpu_mhz(g[0]),
        gpu_mhz(g[g.len() - 1]),
        b.gpu.devfreq,
        b.gpu.default_governor,
        b.sensors.rails.join(", "),
        b.sensors.total_words(),
        backends.join(", ")
    )
}

/// One GPU's lines in `devices`.
pub fn gpu_text(g: &GpuInfo, root: bool) -> String {
    let clocks = match (g.graphics_clocks_mhz.first(), g.graphics_clocks_mhz.last()) {
        (Some(lo), Some(hi)) => format!(
            "{} graphics clocks {lo}-{hi} MHz",
            g.graphics_clocks_mhz.len()
        ),
        _ => "graphics clocks not listed".into(),
    };
    format!(
        "GPU gpu:{} {} (backend nvml): {clocks}, now {}, power {}; energy counter {}; clock control {}",
        g.index,
        g.name,
        g.graphics_clock_mhz
            .map_or("?".into(), |m| format!("{m} MHz")),
        g.power_w.map_or("?".into(), |p| format!("{p:.1} W")),
        if g.energy_counter {
            "yes"
        } else {
            "no (power is polled)"
        },
        if root {
            "permitted (root) with --allow-clock-control"
        } else {
            "needs root and --allow-clock-control"
        }
    )
}

fn cpus(v: &[u32]) -> String {
    v.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Human text for a live board.
pub fn live_text(l: &Live) -> String {
    let mut s = format!(
        "this machine: `{}` ({}), {}\n",
        l.dt_model,
        l.board
            .as_deref()
            .map_or("no search-spaces file matches it".to_string(), |b| format!(
                "board {b}"
            )),
        l.jetpack
    );
    for p in &l.cpu {
        s += &format!(
            "  CPU {} (cpus {}): governor {}, now {} MHz, limits {}-{} MHz, {} steps {}-{} MHz; pinned with {}\n",
            p.dir.file_name().unwrap_or_default().to_string_lossy(),
            cpus(&p.cpus),
            p.governor,
            opt_mhz(p.cur_freq_khz, true),
            opt_mhz(p.min_freq_khz, true),
            opt_mhz(p.max_freq_khz, true),
            p.available_khz.len(),
            cpu_mhz(p.available_khz[0]),
            cpu_mhz(p.available_khz[p.available_khz.len() - 1]),
            p.pin_method
        );
    }
    let g = &l.gpu;
    s += &format!(
        "  GPU {} ({}): governor {}, now {} MHz, limits {}-{} MHz, {} steps {}-{} MHz\n",
        g.name,
        g.node,
        g.governor,
        opt_mhz(g.cur_freq_hz, false),
        opt_mhz(g.min_freq_hz, false),
        opt_mhz(g.max_freq_hz, false),
        g.available_hz.len(),
        gpu_mhz(g.available_hz[0]),
        gpu_mhz(g.available_hz[g.available_hz.len() - 1]),
    );
    let rails: Vec<String> = l
        .rails
        .iter()
        .map(|r| {
            format!(
                "{} {} mW",
                r.name,
                r.power_mw.map_or("?".into(), |p| format!("{p:.0}"))
            )
        })
        .collect();
    s += &format!(
        "  rails: {}; board power = {} ({} mW)\n",
        rails.join(", "),
        l.total,
        l.total_power_mw.map_or("?".into(), |p| format!("{p:.0}"))
    );
    if let Some(p) = &l.pending_restore {
        s += &format!(
            "  a restore snapshot is waiting at {}: run `sudo edgetune restore`\n",
            p.display()
        );
    }
    s
}

//! A board's state now, for `edgetune devices`: every cpufreq policy and the GPU with governor,
//! current clock and limits, each rail's power, and whether a restore snapshot is waiting.

use super::discover::Discovery;
use crate::catalog::Catalog;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A board's state now, for `devices`.
#[derive(Debug, Serialize)]
pub struct Live {
    /// `/proc/device-tree/model`.
    pub dt_model: String,
    /// Catalogue board it matches.
    pub board: Option<String>,
    /// JetPack generation, from the sensor driver.
    pub jetpack: &'static str,
    /// cpufreq policies.
    pub cpu: Vec<LivePolicy>,
    /// GPU.
    pub gpu: LiveGpu,
    /// Rails with their power now.
    pub rails: Vec<LiveRail>,
    /// The rail (or sum) that is board power.
    pub total: String,
    /// Board power now, mW.
    pub total_power_mw: Option<f64>,
    /// A restore snapshot waiting, if any.
    pub pending_restore: Option<PathBuf>,
}

/// One cpufreq policy now.
#[derive(Debug, Serialize)]
pub struct LivePolicy {
    /// Its directory.
    pub dir: PathBuf,
    /// CPUs it clocks.
    pub cpus: Vec<u32>,
    /// Governor.
    pub governor: String,
    /// `scaling_cur_freq`.
    pub cur_freq_khz: Option<u64>,
    /// `scaling_min_freq`.
    pub min_freq_khz: Option<u64>,
    /// `scaling_max_freq`.
    pub max_freq_khz: Option<u64>,
    /// Steps.
    pub available_khz: Vec<u64>,
    /// How edgetune pins it.
    pub pin_method: &'static str,
}

/// The GPU now.
#[derive(Debug, Serialize)]
pub struct LiveGpu {
    /// devfreq directory.
    pub dir: PathBuf,
    /// devfreq name.
    pub name: String,
    /// `of_node/name`.
    pub node: String,
    /// Governor.
    pub governor: String,
    /// `cur_freq`.
    pub cur_freq_hz: Option<u64>,
    /// `min_freq`.
    pub min_freq_hz: Option<u64>,
    /// `max_freq`.
    pub max_freq_hz: Option<u64>,
    /// Steps.
    pub available_hz: Vec<u64>,
}

/// One rail now.
#[derive(Debug, Serialize)]
pub struct LiveRail {
    /// Label.
    pub name: String,
    /// Power now, mW (`None` when the read failed).
    pub power_mw: Option<f64>,
}

/// Reads a discovered board's state.
pub fn live(disc: &Discovery, catalog: &Catalog, state_path: &Path) -> Live {
    let fs = disc.sysfs();
    let num = |p: PathBuf| fs.read_u64(&p).ok();
    let text = |p: PathBuf| fs.read(&p).unwrap_or_else(|_| "?".into());
    let powers = disc.rails.read(&fs).ok();
    Live {
        dt_model: disc.dt_model.clone(),
        board: catalog
            .detect(Some(&disc.dt_model))
            .map(|b| b.board.id.clone()),
        jetpack: disc.rails.driver.jetpack(),
        cpu: disc
            .cpu
            .iter()
            .map(|p| LivePolicy {
                dir: p.dir.clone(),
                cpus: p.cpus.clone(),
                governor: text(p.dir.join("scaling_governor")),
                cur_freq_khz: num(p.dir.join("scaling_cur_freq")),
                min_freq_khz: num(p.dir.join("scaling_min_freq")),
                max_freq_khz: num(p.dir.join("scaling_max_freq")),
                available_khz: p.available_khz.clone(),
                pin_method: if p.has_userspace() {
                    "userspace governor + scaling_setspeed"
                } else {
                    "scaling_min_freq = scaling_max_freq"
                },
            })
            .collect(),
        gpu: LiveGpu {
            dir: disc.gpu.dir.clone(),
            name: disc.gpu.name.clone(),
            node: disc.gpu.node.clone(),
            governor: text(disc.gpu.dir.join("governor")),
            cur_freq_hz: num(disc.gpu.dir.join("cur_freq")),
            min_freq_hz: num(disc.gpu.dir.join("min_freq")),
            max_freq_hz: num(disc.gpu.dir.join("max_freq")),
            available_hz: disc.gpu.available_hz.clone(),
        },
        rails: disc
            .rails
            .rails
            .iter()
            .enumerate()
            .map(|(i, r)| LiveRail {
                name: r.name.clone(),
                power_mw: powers.as_ref().map(|p| p.1[i]),
            })
            .collect(),
        total: disc.rails.total_name(),
        total_power_mw: powers.map(|p| p.0),
        pending_restore: state_path.exists().then(|| state_path.to_path_buf()),
    }
}

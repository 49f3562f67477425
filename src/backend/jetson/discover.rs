//! Finding a board's knobs under a sysfs root: its cpufreq policies, the GPU's devfreq device,
//! the memory clock's control and the device-tree model.

use super::error::JetsonError;
use super::rails::{self, Rails};
use super::sysfs::{subdirs, Sysfs};
use crate::opt::Opt;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// GPU devfreq device names (`device/of_node/name`) of Jetson GPUs (jetson_clocks, jtop).
pub const GPU_NODE_NAMES: [&str; 5] = ["gp10b", "gv11b", "ga10b", "gb10b", "gpu"];

/// One cpufreq policy (clock domain).
#[derive(Debug, Clone, Serialize)]
pub struct CpuPolicy {
    /// The policy's cpufreq directory (symbolic links resolved).
    pub dir: PathBuf,
    /// CPUs it clocks.
    pub cpus: Vec<u32>,
    /// `scaling_available_frequencies`, kHz, ascending.
    pub available_khz: Vec<u64>,
    /// `scaling_available_governors`.
    pub governors: Vec<String>,
}

impl CpuPolicy {
    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// Whether it can be pinned with the userspace governor and `scaling_setspeed`.
    pub fn has_userspace(&self) -> bool {
        self.governors.iter().any(|g| g == "userspace") && self.file("scaling_setspeed").exists()
    }
}

/// A thermal zone (`/sys/class/thermal/thermal_zoneN`): its `type` and its `temp` file
/// (millidegrees Celsius), read, never written.
#[derive(Debug, Clone, Serialize)]
pub struct ThermalZone {
    /// Its type (`CPU-therm`, `GPU-therm`).
    pub name: String,
    /// Its temperature file.
    pub temp: PathBuf,
}

/// The thermal zones under `fs`'s root, in zone order (none where there are none).
fn discover_thermal(fs: &Sysfs) -> Vec<ThermalZone> {
    let dir = fs.path("/sys/class/thermal");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut zones: Vec<(u32, ThermalZone)> = entries
        .flatten()
        .filter_map(|e| {
            let n: u32 = e
                .file_name()
                .to_str()?
                .strip_prefix("thermal_zone")?
                .parse()
                .ok()?;
            let name = fs.read(&e.path().join("type")).ok()?.trim().to_string();
            Some((
                n,
                ThermalZone {
                    name,
                    temp: e.path().join("temp"),
                },
            ))
        })
        .collect();
    zones.sort_by_key(|(n, _)| *n);
    zones.into_iter().map(|(_, z)| z).collect()
}

/// The GPU's devfreq device.
#[derive(Debug, Clone, Serialize)]
pub struct GpuDevfreq {
    /// The devfreq directory (symbolic links resolved).
    pub dir: PathBuf,
    /// Its name under `/sys/class/devfreq`.
    pub name: String,
    /// `device/of_node/name` (gp10b, gv11b, ga10b, gpu).
    pub node: String,
    /// `available_frequencies`, Hz, ascending.
    pub available_hz: Vec<u64>,
    /// `available_governors`.
    pub governors: Vec<String>,
}

/// Which debugfs interface sets the memory clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmcKind {
    /// T210 (Nano): `clk/override.emc` (`clk_update_rate`, `clk_state`, `clk_rate`).
    Tegra210,
    /// T186/T194/T234: BPMP `clk/emc` (`rate`, `mrq_rate_locked`).
    Bpmp,
}

/// The memory clock's debugfs control (only with `--emc`).
#[derive(Debug, Clone, Serialize)]
pub struct EmcControl {
    /// Interface.
    pub kind: EmcKind,
    /// Its directory.
    pub dir: PathBuf,
    /// Lowest rate the board allows, Hz.
    pub min_hz: u64,
    /// Highest rate the board allows, Hz.
    pub max_hz: u64,
}

impl EmcControl {
    /// (rate file to write, override flag file, file to read the rate back).
    pub(super) fn files(&self) -> (PathBuf, PathBuf, PathBuf) {
        match self.kind {
            EmcKind::Tegra210 => (
                self.dir.join("clk_update_rate"),
                self.dir.join("clk_state"),
                self.dir.join("clk_rate"),
            ),
            EmcKind::Bpmp => (
                self.dir.join("rate"),
                self.dir.join("mrq_rate_locked"),
                self.dir.join("rate"),
            ),
        }
    }
}

/// Finds the memory-clock control in debugfs (jetson_clocks' `do_emc`).
pub fn discover_emc(fs: &Sysfs) -> Result<EmcControl, JetsonError> {
    let t210 = fs.path("/sys/kernel/debug/clk/override.emc");
    let bwmgr = fs.path("/sys/kernel/debug/tegra_bwmgr");
    let bpmp = fs.path("/sys/kernel/debug/bpmp/debug/clk/emc");
    let (kind, dir, min_hz, max_hz) = if t210.join("clk_update_rate").exists() {
        (
            EmcKind::Tegra210,
            t210,
            fs.read_u64(&bwmgr.join("emc_min_rate"))?,
            fs.read_u64(&bwmgr.join("emc_max_rate"))?,
        )
    } else if bpmp.join("mrq_rate_locked").exists() {
        (
            EmcKind::Bpmp,
            bpmp.clone(),
            fs.read_u64(&bpmp.join("min_rate"))?,
            fs.read_u64(&bpmp.join("max_rate"))?,
        )
    } else {
        return Err(JetsonError::NotFound(format!(
            "{}: no memory-clock control in debugfs (looked for {} and {}); debugfs must be mounted (`mount -t debugfs none /sys/kernel/debug`) and readable by root",
            Opt::Emc,
            t210.join("clk_update_rate").display(),
            bpmp.join("mrq_rate_locked").display()
        )));
    };
    let dir = std::fs::canonicalize(&dir).map_err(|e| JetsonError::io(&dir, e))?;
    Ok(EmcControl {
        kind,
        dir,
        min_hz,
        max_hz,
    })
}

/// What discovery found on a board.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    /// Sysfs root.
    pub root: PathBuf,
    /// `/proc/device-tree/model`.
    pub dt_model: String,
    /// cpufreq policies.
    pub cpu: Vec<CpuPolicy>,
    /// GPU devfreq.
    pub gpu: GpuDevfreq,
    /// Power sensors.
    pub rails: Rails,
    /// Memory-clock control, when asked for (`--emc`).
    pub emc: Option<EmcControl>,
    /// Thermal zones, read at the end of each measured run.
    pub thermal: Vec<ThermalZone>,
    /// The nvpmodel power modes, when they are the knob (`--power-modes`).
    pub power_modes: Option<Vec<super::nvpmodel::ModeDef>>,
}

/// A note when the tree under `root` is edgetune's virtual Jetson (`emulate`): its figures are
/// the twin's, and its times and energies are scaled by the emulator's time scale.
pub(super) fn emulated_note(root: &Path) -> Option<String> {
    let c = crate::emulator::load_config(root).ok()?;
    let scale = if (c.time_scale - 1.0).abs() < 1e-12 {
        String::new()
    } else {
        format!(
            "; it runs at time scale {}, so every time and energy here is the twin's multiplied by {}",
            c.time_scale, c.time_scale
        )
    };
    Some(format!(
        "this board is edgetune's virtual Jetson (`edgetune emulate`, root {}): its clocks and sensors are the digital twin's, not a real board's{scale}",
        root.display()
    ))
}

/// `/proc/device-tree/model` under `root` (NULs trimmed), if there is one.
pub fn device_tree_model(root: &Path) -> Option<String> {
    let raw = std::fs::read(root.join("proc/device-tree/model")).ok()?;
    let s = String::from_utf8_lossy(&raw)
        .trim_matches(char::from(0))
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn words(fs: &Sysfs, p: &Path) -> Vec<String> {
    fs.read(p)
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Finds the board's cpufreq policies, GPU devfreq device and power rails under `root`.
pub fn discover(root: &Path) -> Result<Discovery, JetsonError> {
    let fs = Sysfs::new(root);
    let dt_model = device_tree_model(root).ok_or_else(|| {
        JetsonError::NotFound(format!(
            "not a Jetson: {} is missing or empty",
            fs.path("/proc/device-tree/model").display()
        ))
    })?;
    let cpu = discover_cpu(&fs)?;
    let gpu = discover_gpu(&fs)?;
    let rails = rails::discover(&fs)?;
    Ok(Discovery {
        root: root.to_path_buf(),
        dt_model,
        cpu,
        gpu,
        rails,
        emc: None,
        thermal: discover_thermal(&fs),
        power_modes: None,
    })
}

fn discover_cpu(fs: &Sysfs) -> Result<Vec<CpuPolicy>, JetsonError> {
    let base = fs.path("/sys/devices/system/cpu");
    let mut policies: Vec<CpuPolicy> = Vec::new();
    let cpus = subdirs(&base, |n| {
        n.strip_prefix("cpu")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    });
    for cpu_dir in cpus {
        let n: u32 = cpu_dir.file_name().unwrap().to_string_lossy()[3..]
            .parse()
            .expect("digits");
        // cpuN/cpufreq links to the policy shared by the cluster (absent while offline).
        let Ok(dir) = std::fs::canonicalize(cpu_dir.join("cpufreq")) else {
            continue;
        };
        if let Some(p) = policies.iter_mut().find(|p| p.dir == dir) {
            if !p.cpus.contains(&n) {
                p.cpus.push(n);
            }
            continue;
        }
        let avail = dir.join("scaling_available_frequencies");
        let available_khz = fs.read_list(&avail)?;
        if available_khz.is_empty() {
            return Err(JetsonError::NotFound(format!(
                "{} lists no frequencies",
                avail.display()
            )));
        }
        let mut cpus: Vec<u32> = fs
            .read(&dir.join("related_cpus"))
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if !cpus.contains(&n) {
            cpus.push(n);
        }
        policies.push(CpuPolicy {
            governors: words(fs, &dir.join("scaling_available_governors")),
            dir,
            cpus,
            available_khz,
        });
    }
    if policies.is_empty() {
        return Err(JetsonError::NotFound(format!(
            "no cpufreq policy: looked for {}",
            fs.path("/sys/devices/system/cpu/cpu*/cpufreq/scaling_available_frequencies")
                .display()
        )));
    }
    for p in &mut policies {
        p.cpus.sort_unstable();
    }
    Ok(policies)
}

fn discover_gpu(fs: &Sysfs) -> Result<GpuDevfreq, JetsonError> {
    let class = fs.path("/sys/class/devfreq");
    let mut seen = Vec::new();
    for d in subdirs(&class, |_| true) {
        let node = fs
            .read(&d.join("device/of_node/name"))
            .unwrap_or_default()
            .trim_matches(char::from(0))
            .to_string();
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        if !GPU_NODE_NAMES.contains(&node.as_str()) {
            seen.push(format!("{name} ({node})"));
            continue;
        }
        let dir = std::fs::canonicalize(&d).map_err(|e| JetsonError::io(&d, e))?;
        let avail = dir.join("available_frequencies");
        let available_hz = fs.read_list(&avail)?;
        if available_hz.is_empty() {
            return Err(JetsonError::NotFound(format!(
                "{} lists no frequencies",
                avail.display()
            )));
        }
        return Ok(GpuDevfreq {
            governors: words(fs, &dir.join("available_governors")),
            dir,
            name,
            node,
            available_hz,
        });
    }
    Err(JetsonError::NotFound(format!(
        "no GPU devfreq device: none of {}/*/device/of_node/name is one of {} (found: {}). A rail-gated GPU may be missing until it powers up: run a CUDA program once and retry",
        class.display(),
        GPU_NODE_NAMES.join(", "),
        if seen.is_empty() { "nothing".to_string() } else { seen.join(", ") }
    )))
}

impl Discovery {
    /// Adds the board's nvpmodel power modes as the knob (`--power-modes`).
    pub fn with_power_modes(mut self) -> Result<Discovery, JetsonError> {
        self.power_modes = Some(super::nvpmodel::modes(&self.root)?);
        Ok(self)
    }

    /// Adds the memory-clock control (`--emc`).
    pub fn with_emc(mut self) -> Result<Discovery, JetsonError> {
        self.emc = Some(discover_emc(&Sysfs::new(&self.root))?);
        Ok(self)
    }

    /// A sysfs handle allowed to write exactly where this backend writes: the cpufreq policies,
    /// the GPU devfreq directory and, with `--emc`, the memory clock's debugfs directory.
    pub fn sysfs(&self) -> Sysfs {
        let mut fs = Sysfs::new(&self.root);
        for p in &self.cpu {
            fs.allow(&p.dir);
        }
        fs.allow(&self.gpu.dir);
        if let Some(e) = &self.emc {
            fs.allow(&e.dir);
        }
        fs
    }
}

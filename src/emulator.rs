//! A virtual Jetson: a sysfs tree with the real file names, units and governors, kept alive by a
//! loop that plays the kernel and the power monitor. On every sensor refresh it reads the clocks
//! edgetune wrote (or lets the default governors move them as the twin's DVFS model says), reads
//! whether a workload is running, asks the twin for the board's power in that state and writes
//! the INA3221 rail files. `emulate-infer` is the workload: it marks the GPU busy, sleeps for the
//! twin's duration of the inferences at the current clocks (scaled) and prints the markers.
//!
//! With it, the real jetson backend (discovery, pinning, the poller thread, integration,
//! restore) runs end to end on any machine.

use crate::catalog::{Board, Catalog, EmulatorLayout, Model};
use crate::opt::Opt;
use crate::twin::{idle_power_mw, residency, TwinModel};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Where the emulator keeps its own state inside the root (not part of a real board's tree).
pub const RUN_DIR: &str = "run/edgetune-emulator";
/// CPU governors a JetPack kernel offers (§1.2 of the hardware reference).
const CPU_GOVERNORS: &str =
    "interactive conservative ondemand userspace powersave performance schedutil";
/// GPU devfreq governors (§2.3).
const GPU_GOVERNORS: &str =
    "wmark_active wmark_simple nvhost_podgov userspace performance simple_ondemand";
/// Bus voltage the virtual rails report, mV.
const BUS_MV: f64 = 5000.0;

/// What can go wrong with the virtual board.
#[derive(Debug, Error)]
pub enum EmulatorError {
    /// Bad options or a root that cannot be used.
    #[error("{0}")]
    Usage(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EmulatorError + '_ {
    move |source| EmulatorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The virtual board's settings, saved in the root for `emulate-infer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmulatorConfig {
    /// Board id.
    pub board: String,
    /// Twin seconds per real second is 1 / `time_scale` (0.01: a 100 s run takes 1 s).
    pub time_scale: f64,
    /// Sensor refresh period, real ms.
    pub sensor_refresh_ms: u64,
}

/// What `emulate-infer` tells the emulator while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Busy {
    /// Model id.
    pub model: String,
    /// Batch size.
    pub batch_size: u32,
}

fn write(path: &Path, text: &str) -> Result<(), EmulatorError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    std::fs::write(path, format!("{text}\n")).map_err(io(path))
}

/// Replaces a file in one step, so a reader never sees it empty or half written.
fn replace(path: &Path, text: &str) -> Result<(), EmulatorError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, format!("{text}\n")).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn link(path: &Path, target: &str) -> Result<(), EmulatorError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    std::os::unix::fs::symlink(target, path).map_err(io(path))
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The relative path from `from_dir` back up to the root (`../..`).
fn up(from_dir: &str) -> String {
    let n = from_dir.trim_matches('/').split('/').count();
    vec![".."; n].join("/")
}

/// The files of the virtual board, resolved under its root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    policies: Vec<PathBuf>,
    gpu_devfreq: PathBuf,
    gpu_load: PathBuf,
    /// (rail name, files to write: power, or voltage + current).
    rails: Vec<(String, RailOut)>,
}

#[derive(Debug, Clone)]
enum RailOut {
    Iio {
        power: PathBuf,
        voltage: PathBuf,
        current: PathBuf,
    },
    Hwmon {
        voltage: PathBuf,
        current: PathBuf,
    },
}

fn layout_of(board: &Board) -> Result<&EmulatorLayout, EmulatorError> {
    let l = board.emulator.as_ref().ok_or_else(|| {
        EmulatorError::Usage(format!(
            "{} has no [emulator] section in {}, so there is no tree to build for it",
            board.board.id, board.file
        ))
    })?;
    if l.sensor_driver != "iio" && l.sensor_driver != "hwmon" {
        return Err(EmulatorError::Usage(format!(
            "{}: [emulator] sensor_driver must be iio or hwmon, got {}",
            board.file, l.sensor_driver
        )));
    }
    // Every file the tree gets must land under --root's sys/: no `..`, nothing outside /sys.
    let inside_sys = |p: &str| {
        Path::new(p).starts_with("/sys")
            && Path::new(p)
                .components()
                .all(|c| !matches!(c, std::path::Component::ParentDir))
    };
    for (field, p) in [
        ("gpu_device", &l.gpu_device),
        ("sensor_device", &l.sensor_device),
    ] {
        if !inside_sys(p) {
            return Err(EmulatorError::Usage(format!(
                "{}: [emulator] {field} must be a path under /sys without `..`, got {p}",
                board.file
            )));
        }
    }
    for (field, name) in [
        ("gpu.devfreq", &board.gpu.devfreq),
        ("emulator.gpu_node", &l.gpu_node),
    ] {
        if name.is_empty() || name.contains('/') || name == ".." || name == "." {
            return Err(EmulatorError::Usage(format!(
                "{}: {field} must be a single file name, got `{name}`",
                board.file
            )));
        }
    }
    Ok(l)
}

impl Layout {
    /// The layout of `board` under `root` (the files need not exist yet).
    pub fn new(root: &Path, board: &Board) -> Result<Layout, EmulatorError> {
        let l = layout_of(board)?;
        let at = |p: &str| root.join(p.trim_start_matches('/'));
        let policies = board
            .cpu
            .clusters
            .iter()
            .map(|c| {
                at(&format!(
                    "/sys/devices/system/cpu/cpufreq/policy{}",
                    c.cpus[0]
                ))
            })
            .collect();
        let gpu_dev = at(&l.gpu_device);
        let sensor = at(&l.sensor_device);
        let rails = board
            .sensors
            .rails
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let out = if l.sensor_driver == "iio" {
                    let d = sensor.join("iio:device0");
                    RailOut::Iio {
                        power: d.join(format!("in_power{i}_input")),
                        voltage: d.join(format!("in_voltage{i}_input")),
                        current: d.join(format!("in_current{i}_input")),
                    }
                } else {
                    let d = sensor.join("hwmon/hwmon1");
                    RailOut::Hwmon {
                        voltage: d.join(format!("in{}_input", i + 1)),
                        current: d.join(format!("curr{}_input", i + 1)),
                    }
                };
                (name.clone(), out)
            })
            .collect();
        Ok(Layout {
            root: root.to_path_buf(),
            policies,
            gpu_devfreq: gpu_dev.join("devfreq").join(&board.gpu.devfreq),
            gpu_load: gpu_dev.join("load"),
            rails,
        })
    }

    fn run_file(&self, name: &str) -> PathBuf {
        self.root.join(RUN_DIR).join(name)
    }
}

/// Builds the board's tree under `root` (which must be empty or absent) as a board boots:
/// default governors, full frequency ranges, an idle GPU.
pub fn create_tree(
    root: &Path,
    board: &Board,
    config: &EmulatorConfig,
) -> Result<Layout, EmulatorError> {
    if root.exists() && std::fs::read_dir(root).map_err(io(root))?.next().is_some() {
        return Err(EmulatorError::Usage(format!(
            "{} is not empty; give emulate a new or empty folder",
            root.display()
        )));
    }
    let l = layout_of(board)?;
    let layout = Layout::new(root, board)?;
    let model = under(root, "/proc/device-tree/model");
    std::fs::create_dir_all(model.parent().unwrap()).map_err(io(root))?;
    std::fs::write(&model, format!("{}\0", l.dt_model)).map_err(io(&model))?;
    cpu_files(root, board, &layout)?;
    gpu_files(root, board, &layout, l)?;
    sensor_files(root, board, l, config)?;
    write(
        &layout.run_file("config.json"),
        &serde_json::to_string_pretty(config).expect("serialises"),
    )?;
    // Idle power until the loop's first refresh.
    write_rails(
        &layout,
        &board.sensors.rails,
        idle_power_mw(board),
        0.0,
        0.0,
        0.0,
    )?;
    Ok(layout)
}

/// `p`, an absolute path on the board, under the tree's root.
fn under(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// Each cpufreq policy's files, and each CPU's `online` and `cpufreq` link.
fn cpu_files(root: &Path, board: &Board, layout: &Layout) -> Result<(), EmulatorError> {
    let cpu = &board.cpu.frequencies_khz;
    for (c, dir) in board.cpu.clusters.iter().zip(&layout.policies) {
        let cpus = c
            .cpus
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        for (f, v) in [
            ("scaling_available_frequencies", join(cpu)),
            ("scaling_available_governors", CPU_GOVERNORS.into()),
            ("scaling_governor", board.cpu.default_governor.clone()),
            ("scaling_min_freq", cpu[0].to_string()),
            ("scaling_max_freq", cpu[cpu.len() - 1].to_string()),
            ("scaling_cur_freq", cpu[cpu.len() - 1].to_string()),
            ("scaling_setspeed", "<unsupported>".into()),
            ("cpuinfo_min_freq", cpu[0].to_string()),
            ("cpuinfo_max_freq", cpu[cpu.len() - 1].to_string()),
            ("related_cpus", cpus.clone()),
            ("affected_cpus", cpus.clone()),
        ] {
            write(&dir.join(f), &v)?;
        }
        let policy = dir.file_name().unwrap().to_string_lossy().to_string();
        for n in &c.cpus {
            write(
                &under(root, &format!("/sys/devices/system/cpu/cpu{n}/online")),
                "1",
            )?;
            link(
                &under(root, &format!("/sys/devices/system/cpu/cpu{n}/cpufreq")),
                &format!("../cpufreq/{policy}"),
            )?;
        }
    }
    Ok(())
}

/// The GPU's devfreq files and links.
fn gpu_files(
    root: &Path,
    board: &Board,
    layout: &Layout,
    l: &EmulatorLayout,
) -> Result<(), EmulatorError> {
    let gpu = &board.gpu.frequencies_hz;
    let g = &layout.gpu_devfreq;
    for (f, v) in [
        ("available_frequencies", join(gpu)),
        ("available_governors", GPU_GOVERNORS.into()),
        ("governor", board.gpu.default_governor.clone()),
        ("min_freq", gpu[0].to_string()),
        ("max_freq", gpu[gpu.len() - 1].to_string()),
        ("cur_freq", gpu[gpu.len() - 1].to_string()),
    ] {
        write(&g.join(f), &v)?;
    }
    let dev = under(root, &l.gpu_device);
    link(
        &g.join("device"),
        &format!("../../../{}", dev.file_name().unwrap().to_string_lossy()),
    )?;
    write(&dev.join("of_node/name"), &l.gpu_node)?;
    write(&dev.join("load"), "0")?;
    link(
        &under(root, &format!("/sys/class/devfreq/{}", board.gpu.devfreq)),
        &format!(
            "../../{}/devfreq/{}",
            l.gpu_device.trim_start_matches("/sys/"),
            board.gpu.devfreq
        ),
    )?;
    Ok(())
}

/// The INA3221 sensor's files in the layout of its driver (iio or hwmon), and its i2c link.
fn sensor_files(
    root: &Path,
    board: &Board,
    l: &EmulatorLayout,
    config: &EmulatorConfig,
) -> Result<(), EmulatorError> {
    let sensor = under(root, &l.sensor_device);
    let i2c_name = sensor.file_name().unwrap().to_string_lossy().to_string();
    let (driver, sub) = if l.sensor_driver == "iio" {
        ("ina3221x", "iio:device0")
    } else {
        ("ina3221", "hwmon/hwmon1")
    };
    write(&sensor.join("name"), driver)?;
    let s = sensor.join(sub);
    write(&s.join("name"), driver)?;
    for (i, name) in board.sensors.rails.iter().enumerate() {
        if l.sensor_driver == "iio" {
            write(&s.join(format!("rail_name_{i}")), name)?;
        } else {
            write(&s.join(format!("in{}_label", i + 1)), name)?;
        }
    }
    if l.sensor_driver == "hwmon" {
        write(&s.join("samples"), "512")?;
        write(
            &s.join("update_interval"),
            &config.sensor_refresh_ms.to_string(),
        )?;
    }
    let drivers = format!("/sys/bus/i2c/drivers/{driver}");
    link(
        &under(root, &format!("{drivers}/{i2c_name}")),
        &format!(
            "{}/{}",
            up(&drivers),
            l.sensor_device.trim_start_matches('/')
        ),
    )?;
    Ok(())
}

/// How one clock domain is driven right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Drive {
    /// Held at one frequency (userspace governor, or min = max).
    Pinned(u64),
    /// A default governor moves it within its limits: time shares per frequency.
    Governed(Vec<(u64, f64)>),
}

impl Drive {
    /// The time shares (a pinned clock has one share of 1).
    pub fn shares(&self) -> Vec<(u64, f64)> {
        match self {
            Drive::Pinned(f) => vec![(*f, 1.0)],
            Drive::Governed(v) => v.clone(),
        }
    }
    /// The frequency at sensor refresh `k`: pinned, or a low-discrepancy draw from the shares,
    /// so that over many refreshes each frequency gets its share of the time.
    pub fn at(&self, k: u64, salt: f64) -> u64 {
        match self {
            Drive::Pinned(f) => *f,
            Drive::Governed(v) => {
                let u = (k as f64 * 0.618_033_988_749_895 + salt).fract();
                let mut acc = 0.0;
                for (f, w) in v {
                    acc += w;
                    if u < acc {
                        return *f;
                    }
                }
                v[v.len() - 1].0
            }
        }
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn governed(table: &[u64], lo: u64, hi: u64, top: f64, spread: usize) -> Drive {
    let steps: Vec<u64> = table
        .iter()
        .copied()
        .filter(|f| (lo..=hi).contains(f))
        .collect();
    match steps.len() {
        0 => Drive::Pinned(hi),
        1 => Drive::Pinned(steps[0]),
        _ => Drive::Governed(residency(&steps, top, spread)),
    }
}

/// How the CPU (the first policy) and the GPU are driven, from the files edgetune writes.
pub fn read_drive(layout: &Layout, board: &Board) -> (Drive, Drive) {
    let d = &board.twin.dvfs;
    let p = &layout.policies[0];
    let cpu_table = &board.cpu.frequencies_khz;
    let (lo, hi) = (
        read_u64(&p.join("scaling_min_freq")).unwrap_or(cpu_table[0]),
        read_u64(&p.join("scaling_max_freq")).unwrap_or(cpu_table[cpu_table.len() - 1]),
    );
    let gov = std::fs::read_to_string(p.join("scaling_governor")).unwrap_or_default();
    let cpu = match (gov.trim(), read_u64(&p.join("scaling_setspeed"))) {
        ("userspace", Some(f)) => Drive::Pinned(f.clamp(lo, hi)),
        _ => governed(cpu_table, lo, hi, d.cpu_top_residency, d.spread_steps),
    };
    let gpu_table = &board.gpu.frequencies_hz;
    let g = &layout.gpu_devfreq;
    let (glo, ghi) = (
        read_u64(&g.join("min_freq")).unwrap_or(gpu_table[0]),
        read_u64(&g.join("max_freq")).unwrap_or(gpu_table[gpu_table.len() - 1]),
    );
    let gpu = governed(gpu_table, glo, ghi, d.gpu_top_residency, d.spread_steps);
    (cpu, gpu)
}

fn twin_model<'a>(board: &'a Board, model: &'a Model) -> Result<TwinModel<'a>, EmulatorError> {
    Ok(TwinModel {
        board: &board.twin,
        model: model
            .twin_for(&board.board.id)
            .map_err(|e| EmulatorError::Usage(e.to_string()))?,
        gflops: model.paper.gflops,
    })
}

/// Writes the rails for a board power split into GPU, CPU and DRAM parts. Rails are matched by
/// name: the total rail gets everything, a CPU+GPU rail both, a GPU or CPU rail its part, a SoC
/// rail the DRAM part and a quarter of the base (an approximation: only the total is checked
/// against the twin).
fn write_rails(
    layout: &Layout,
    names: &[String],
    total_mw: f64,
    gpu_mw: f64,
    cpu_mw: f64,
    dram_mw: f64,
) -> Result<(), EmulatorError> {
    let base = total_mw - gpu_mw - cpu_mw - dram_mw;
    let soc = dram_mw + 0.25 * base;
    let part = |name: &str| {
        if name.ends_with("_IN") {
            Some(total_mw)
        } else if name.contains("CPU") && name.contains("GPU") {
            Some(cpu_mw + gpu_mw)
        } else if name.contains("GPU") && name.contains("SOC") {
            Some(gpu_mw + soc)
        } else if name.contains("GPU") {
            Some(gpu_mw)
        } else if name.contains("CPU") {
            Some(cpu_mw)
        } else if name.contains("SOC") {
            Some(soc)
        } else {
            None
        }
    };
    // Without a total rail (AGX Orin) board power is the rails' sum: the rails no part names
    // share what the others leave.
    let summed = !names.iter().any(|n| n.ends_with("_IN"));
    let named: f64 = names.iter().filter_map(|n| part(n)).sum();
    let others = names.iter().filter(|n| part(n).is_none()).count().max(1) as f64;
    let rest = if summed {
        ((total_mw - named) / others).max(0.0)
    } else {
        0.0
    };
    for ((name, out), _) in layout.rails.iter().zip(names) {
        let mw = part(name).unwrap_or(rest);
        let ma = mw / BUS_MV * 1000.0;
        match out {
            RailOut::Iio {
                power,
                voltage,
                current,
            } => {
                replace(voltage, &format!("{BUS_MV:.0}"))?;
                replace(current, &format!("{ma:.0}"))?;
                replace(power, &format!("{mw:.0}"))?;
            }
            // hwmon has no power file: readers compute mV x mA, so the current carries it.
            RailOut::Hwmon { voltage, current } => {
                replace(voltage, &format!("{BUS_MV:.0}"))?;
                replace(current, &format!("{ma:.0}"))?;
            }
        }
    }
    Ok(())
}

/// Runs the virtual board until `stop` is set: one refresh every `sensor_refresh_ms`.
pub fn run(
    layout: &Layout,
    board: &Board,
    catalog: &Catalog,
    config: &EmulatorConfig,
    stop: &Arc<AtomicBool>,
) -> Result<u64, EmulatorError> {
    let period = Duration::from_millis(config.sensor_refresh_ms);
    // Clocks follow a write at once, as the kernel's do; only the sensors wait for a refresh.
    let tick = period.min(Duration::from_millis(10));
    let start = Instant::now();
    let (mut k, mut t) = (0u64, 0u32);
    let mut shown = (0u64, 0u64);
    // The settling transient (twin.measurement): power runs high after the drive changes.
    let mut drive = read_drive(layout, board);
    let mut changed = Instant::now() - Duration::from_secs(3600);
    let settle = &board.twin.measurement;
    while !stop.load(Ordering::SeqCst) {
        t += 1;
        let next = start + tick * t;
        let refresh = start.elapsed() >= period * k as u32;
        let (cpu, gpu) = read_drive(layout, board);
        if (&cpu, &gpu) != (&drive.0, &drive.1) {
            drive = (cpu.clone(), gpu.clone());
            changed = Instant::now();
        }
        if refresh {
            k += 1;
        }
        let (fc, fg) = (cpu.at(k, 0.0), gpu.at(k, 0.5));
        if (fc, fg) != shown {
            for p in &layout.policies {
                replace(&p.join("scaling_cur_freq"), &fc.to_string())?;
            }
            replace(&layout.gpu_devfreq.join("cur_freq"), &fg.to_string())?;
            shown = (fc, fg);
        }
        if !refresh {
            sleep_until(next);
            continue;
        }
        // A real sensor's last digits jitter; +-0.1 %, zero on average.
        let age_s = changed.elapsed().as_secs_f64() / config.time_scale.max(1e-9);
        let jitter = (1.0 + 0.002 * ((k as f64 * 0.754_877_666).fract() - 0.5))
            * (1.0 + settle.settle_bias * (-age_s / settle.settle_tau_s).exp());
        let busy: Option<Busy> = std::fs::read_to_string(layout.run_file("busy"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let loaded = read_u64(&layout.gpu_load).unwrap_or(0) > 0;
        match busy.filter(|_| loaded) {
            Some(b) => {
                let model = catalog
                    .model(&b.model)
                    .map_err(|e| EmulatorError::Usage(e.to_string()))?;
                let p = twin_model(board, model)?.batch_parts(fc, fg, b.batch_size);
                write_rails(
                    layout,
                    &board.sensors.rails,
                    p.power_mw() * jitter,
                    p.gpu_mw * jitter,
                    p.cpu_mw * jitter,
                    p.dram_mw * jitter,
                )?;
            }
            None => {
                let idle = idle_power_mw(board) * jitter;
                let cpu_mw = idle - board.twin.base_power_mw * jitter;
                write_rails(layout, &board.sensors.rails, idle, 0.0, cpu_mw, 0.0)?;
            }
        }
        sleep_until(next);
    }
    Ok(k)
}

/// Sleeps to a point on the schedule, so ticks do not drift.
fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Reads the virtual board's settings from its root.
pub fn load_config(root: &Path) -> Result<EmulatorConfig, EmulatorError> {
    let p = root.join(RUN_DIR).join("config.json");
    let text = std::fs::read_to_string(&p).map_err(|_| {
        EmulatorError::Usage(format!(
            "no virtual board at {}: start `edgetune emulate {} nano {} {}` first",
            root.display(),
            Opt::Board,
            Opt::Root,
            root.display()
        ))
    })?;
    let c: EmulatorConfig = serde_json::from_str(&text)
        .map_err(|e| EmulatorError::Usage(format!("{}: {e}", p.display())))?;
    // Stored data is input: a time scale of 1e20 would panic the sleep that uses it.
    let scale_ok = c.time_scale.is_finite() && (1e-4..=1e3).contains(&c.time_scale);
    if !scale_ok || !(1..=60_000).contains(&c.sensor_refresh_ms) {
        return Err(EmulatorError::Usage(format!(
            "{}: time_scale must be 1e-4 to 1000 and sensor_refresh_ms 1 to 60000 (got {} and {}); start the virtual board again",
            p.display(),
            c.time_scale,
            c.sensor_refresh_ms
        )));
    }
    Ok(c)
}

/// What one `emulate-infer` run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InferRun {
    /// Twin time of the inferences at the clocks found.
    pub twin_time_s: f64,
    /// Twin energy.
    pub twin_energy_j: f64,
    /// Real time slept (scaled).
    pub slept_s: f64,
}

/// The workload of a virtual board: marks the GPU busy, waits two sensor refreshes (so the rails
/// show the load, as model loading would), prints `EDGETUNE_BEGIN`, sleeps the twin's time for
/// the inferences at the current clocks times the time scale, prints `EDGETUNE_END`, and marks
/// the GPU idle again.
pub fn infer(
    root: &Path,
    catalog: &Catalog,
    model: &Model,
    batch_size: u32,
    inferences: u32,
    out: &mut dyn Write,
) -> Result<InferRun, EmulatorError> {
    let config = load_config(root)?;
    let board = catalog
        .board(&config.board)
        .map_err(|e| EmulatorError::Usage(e.to_string()))?;
    if batch_size == 0 || inferences == 0 {
        return Err(EmulatorError::Usage(format!(
            "{} and {} must be at least 1",
            Opt::Batch,
            Opt::Inferences
        )));
    }
    let layout = Layout::new(root, board)?;
    let (cpu, gpu) = read_drive(&layout, board);
    let tm = twin_model(board, model)?;
    let point = tm.mixture(&cpu.shares(), &gpu.shares(), batch_size, inferences);
    let busy = Busy {
        model: model.id().to_string(),
        batch_size,
    };
    replace(
        &layout.run_file("busy"),
        &serde_json::to_string(&busy).expect("serialises"),
    )?;
    replace(
        &layout.gpu_load,
        &format!("{:.0}", (point.gpu_util * 1000.0).max(1.0)),
    )?;
    let refresh = Duration::from_millis(config.sensor_refresh_ms);
    std::thread::sleep(refresh * 2);
    let slept_s = point.time_s * config.time_scale;
    let said = (|| {
        writeln!(out, "{}", crate::workload::command::BEGIN_MARKER)?;
        out.flush()?;
        std::thread::sleep(Duration::from_secs_f64(slept_s));
        writeln!(out, "{}", crate::workload::command::END_MARKER)?;
        out.flush()
    })();
    // Idle again whatever happened to stdout.
    let _ = std::fs::remove_file(layout.run_file("busy"));
    replace(&layout.gpu_load, "0")?;
    said.map_err(io(Path::new("stdout")))?;
    Ok(InferRun {
        twin_time_s: point.time_s,
        twin_energy_j: point.energy_j,
        slept_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::jetson::discover;

    #[test]
    fn a_stored_config_out_of_bounds_is_refused_not_slept_on() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join(RUN_DIR);
        std::fs::create_dir_all(&run).unwrap();
        for (scale, ms) in [
            (1e20, 430),
            (f64::MIN_POSITIVE, 430),
            (0.01, 0),
            (1.0, u64::MAX),
        ] {
            let c =
                format!(r#"{{"board":"nano","time_scale":{scale:e},"sensor_refresh_ms":{ms}}}"#);
            std::fs::write(run.join("config.json"), c).unwrap();
            let e = load_config(t.path()).unwrap_err();
            assert!(matches!(e, EmulatorError::Usage(_)), "{e}");
        }
        let ok = r#"{"board":"nano","time_scale":0.01,"sensor_refresh_ms":430}"#;
        std::fs::write(run.join("config.json"), ok).unwrap();
        assert_eq!(load_config(t.path()).unwrap().time_scale, 0.01);
    }

    #[test]
    fn the_tree_is_discovered_as_the_real_board() {
        let cat = Catalog::load(None).unwrap();
        for (id, driver) in [("nano", "iio"), ("xavier-nx", "hwmon")] {
            let t = tempfile::tempdir().unwrap();
            let root = t.path().join("board");
            let board = cat.board(id).unwrap();
            let cfg = EmulatorConfig {
                board: id.into(),
                time_scale: 1.0,
                sensor_refresh_ms: 430,
            };
            create_tree(&root, board, &cfg).unwrap();
            let d = discover(&root).unwrap();
            assert_eq!(d.cpu.len(), board.cpu.clusters.len(), "{id}");
            assert_eq!(d.cpu[0].available_khz, board.cpu.frequencies_khz);
            assert_eq!(d.gpu.available_hz, board.gpu.frequencies_hz);
            assert_eq!(d.gpu.name, board.gpu.devfreq);
            assert_eq!(cat.detect(Some(&d.dt_model)).unwrap().board.id, id);
            assert_eq!(
                format!("{:?}", d.rails.driver).to_lowercase(),
                driver,
                "{id}"
            );
            let names: Vec<_> = d.rails.rails.iter().map(|r| r.name.clone()).collect();
            assert_eq!(names, board.sensors.rails);
            // The idle board reads the twin's idle power (to the rail's resolution).
            let (total, _) = d.rails.read(&d.sysfs()).unwrap();
            assert!((total - idle_power_mw(board)).abs() <= 5.0, "{id}: {total}");
            // A second tree in the same folder is refused.
            assert!(create_tree(&root, board, &cfg).is_err());
        }
    }

    #[test]
    fn governed_clocks_spend_their_residency_share_at_each_step() {
        let d = Drive::Governed(vec![(3, 0.89), (2, 0.055), (1, 0.055)]);
        let n = 10_000;
        let top = (1..=n).filter(|k| d.at(*k, 0.0) == 3).count() as f64 / n as f64;
        assert!((top - 0.89).abs() < 0.005, "{top}");
        assert_eq!(Drive::Pinned(7).at(5, 0.3), 7);
        assert_eq!(governed(&[1, 2, 3], 2, 2, 0.9, 3), Drive::Pinned(2));
    }

    #[test]
    fn a_layout_that_climbs_out_of_the_root_is_refused() {
        let cat = Catalog::load(None).unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let cfg = EmulatorConfig {
            board: "nano".into(),
            time_scale: 1.0,
            sensor_refresh_ms: 20,
        };
        let mut bad = cat.board("nano").unwrap().clone();
        bad.emulator.as_mut().unwrap().gpu_device = "/../../../../elsewhere".into();
        let e = create_tree(&root, &bad, &cfg).unwrap_err().to_string();
        assert!(e.contains("gpu_device") && e.contains(".."), "{e}");
        let mut bad = cat.board("nano").unwrap().clone();
        bad.gpu.devfreq = "../../x".into();
        assert!(create_tree(&root, &bad, &cfg).is_err());
        assert!(!t.path().join("elsewhere").exists() && !root.exists());
    }
}

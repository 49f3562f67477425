//! One resolution step from the options to a typed target: which model, and which rig measures
//! it (the twin, a replay table, a Jetson through sysfs, a GPU through NVML). Every rule that
//! ties a flag to a backend is here, once; the commands only match on [`Rig`].

use super::options::{load_catalog, Backend, Common};
use super::{board, torch};
use crate::backend::jetson::{device_tree_model, Discovery, JetsonDevice};
use crate::backend::nvml::{self, GpuSpec, NvmlDevice, NvmlGpu};
use crate::backend::powercap::{self, HostSpec, PowercapDevice};
use crate::backend::replay::{ReplayBoard, ReplayTable};
use crate::backend::sim::SimBoard;
use crate::catalog::{Board, Catalog, Labelled, Model};
use crate::device::{BackendKind, Device};
use crate::error::UsageError;
use crate::workload::command::CommandWorkload;
use crate::workload::Workload;
use anyhow::Result;
use std::time::Duration;

/// What measures: the backend with everything it needs, and the model it measures.
pub enum Rig {
    /// The digital twin of a catalogue board.
    Sim {
        /// The board.
        board: Board,
        /// The model.
        model: Model,
    },
    /// A recorded table. Its model and board are labels: catalogue entries where they are
    /// (then board files are written for the recommendation), any name otherwise.
    Replay {
        /// The board the table was recorded on, when the catalogue has it.
        board: Option<Board>,
        /// The model, when the catalogue has it.
        model: Option<Model>,
        /// The table.
        table: ReplayTable,
    },
    /// A real Jetson through sysfs.
    Jetson {
        /// The catalogue board, with the frequency lists the board itself lists.
        board: Board,
        /// The model.
        model: Model,
        /// What discovery found under the sysfs root.
        discovery: Discovery,
    },
    /// The host CPU through Linux powercap (RAPL).
    Powercap {
        /// Its id and knob values.
        host: HostSpec,
        /// What discovery found under the sysfs root.
        discovery: powercap::Discovery,
        /// The model.
        model: Model,
    },
    /// An NVIDIA GPU through NVML.
    Nvml {
        /// The GPU and the library handle.
        gpu: NvmlGpu,
        /// Its id and knob values.
        spec: GpuSpec,
        /// The model.
        model: Model,
    },
}

/// The model and the rig a command runs on.
pub struct Target {
    /// The model's id in reports (a catalogue id, or a replay table's label).
    model_id: String,
    /// The device's id in reports (a board's id, `gpu:N`, or a replay table's label).
    device_id: String,
    /// What measures it.
    pub rig: Rig,
}

impl Target {
    /// Resolves model and rig from the options, and says on stderr what it is about to measure
    /// (or that the twin stands in for a board).
    pub fn resolve(c: &Common) -> Result<Target> {
        let catalog = load_catalog(c.catalog_dir.as_deref())?;
        if let Some(path) = &c.table {
            return replay_target(c, &catalog, path);
        }
        let model = catalog.model(&c.model)?.clone();
        if let Some(gpu) = choose_gpu(c, &catalog)? {
            return nvml_rig(c, gpu, model);
        }
        if c.backend == Backend::Powercap {
            return powercap_rig(c, model);
        }
        if c.allow_clock_control {
            return Err(UsageError(
                "--allow-clock-control locks an NVIDIA GPU's clocks (--backend nvml); on a Jetson edgetune always sets the clocks".into(),
            )
            .into());
        }
        board_rig(c, &catalog, model)
    }

    /// As [`Target::resolve`], for the commands that measure on the twin or a GPU only
    /// (`sweep`, `measure`, `baseline`).
    pub fn resolve_twin_or_gpu(c: &Common) -> Result<Target> {
        if c.table.is_some() || c.backend == Backend::Replay {
            return Err(UsageError(
                "a replay table is used by `tune` and `bench`; `sweep`, `measure` and `baseline` run on the twin".into(),
            )
            .into());
        }
        let t = Target::resolve(c)?;
        if let Rig::Jetson { .. } | Rig::Powercap { .. } = t.rig {
            return Err(UsageError(TWIN_OR_GPU.into()).into());
        }
        Ok(t)
    }

    /// Which backend measures.
    pub fn kind(&self) -> BackendKind {
        match &self.rig {
            Rig::Sim { .. } => BackendKind::Sim,
            Rig::Replay { .. } => BackendKind::Replay,
            Rig::Jetson { .. } => BackendKind::Jetson,
            Rig::Nvml { .. } => BackendKind::Nvml,
            Rig::Powercap { .. } => BackendKind::Powercap,
        }
    }

    /// The catalogue board, unless the target is a GPU or a table of a board it does not have.
    pub fn board(&self) -> Option<&Board> {
        match &self.rig {
            Rig::Sim { board, .. } | Rig::Jetson { board, .. } => Some(board),
            Rig::Replay { board, .. } => board.as_ref(),
            Rig::Nvml { .. } | Rig::Powercap { .. } => None,
        }
    }

    /// The catalogue model, unless the target is a table of a model it does not have.
    pub fn model(&self) -> Option<&Model> {
        match &self.rig {
            Rig::Sim { model, .. }
            | Rig::Jetson { model, .. }
            | Rig::Nvml { model, .. }
            | Rig::Powercap { model, .. } => Some(model),
            Rig::Replay { model, .. } => model.as_ref(),
        }
    }

    /// The device id in reports: a board's id, `gpu:N`, or a table's label.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The model's id in reports.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Opens the device and the workload to measure with. On real hardware the workload is
    /// built first, so a model that cannot load changes nothing.
    pub fn open(&self, c: &Common) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        match &self.rig {
            Rig::Sim { board, model } => {
                let board = board.with_static_power_pct(c.twin_static_power_pct);
                let b = SimBoard::new(&board, c.noise(c.noise_salt)).with_sleep(c.twin_sleep);
                Ok((Box::new(b.device()), Box::new(b.workload(model)?)))
            }
            Rig::Replay { table, .. } => {
                let b = ReplayBoard::new(table.clone());
                Ok((Box::new(b.device()), Box::new(b.workload(self.model_id()))))
            }
            Rig::Jetson {
                discovery, model, ..
            } => {
                let w = self.real_workload(c, model, None)?;
                let d = JetsonDevice::open(
                    discovery.clone(),
                    &c.board.state_path(),
                    Some(c.board.poll_ms),
                )?;
                Ok((Box::new(d), w))
            }
            Rig::Powercap {
                discovery, model, ..
            } => {
                // The built-in model runs on the CPU being measured unless told otherwise.
                let w = self.real_workload(c, model, Some("cpu".into()))?;
                let d = PowercapDevice::open(discovery.clone(), &c.board.state_path())
                    .map_err(|e| UsageError(e.to_string()))?;
                Ok((Box::new(d), w))
            }
            Rig::Nvml { gpu, model, .. } => {
                // The GPU being measured (NVML and CUDA number GPUs alike unless
                // CUDA_DEVICE_ORDER or CUDA_VISIBLE_DEVICES say otherwise).
                let on = format!("cuda:{}", gpu.info.index);
                let w = self.real_workload(c, model, Some(on))?;
                let d = NvmlDevice::open(
                    gpu.api.clone(),
                    gpu.info.clone(),
                    c.allow_clock_control,
                    &c.board.state_path(),
                    Duration::from_millis(c.board.poll_ms.max(1)),
                )
                .map_err(|e| UsageError(e.to_string()))?;
                Ok((Box::new(d), w))
            }
        }
    }

    /// `--workload-cmd`, else the built-in (or TorchScript) model, on `measured` (the torch
    /// device of what is measured) where `--torch-device` is `auto`.
    fn real_workload(
        &self,
        c: &Common,
        model: &Model,
        measured: Option<String>,
    ) -> Result<Box<dyn Workload>> {
        let stop = Some(super::signals::interrupt_flag());
        if let Some(cmd) = c.workload_cmd.as_deref() {
            let timeout = Duration::from_secs_f64(c.workload_timeout_s);
            return Ok(Box::new(CommandWorkload::new(
                cmd,
                self.model_id(),
                timeout,
                stop,
            )?));
        }
        let mut torch_o = c.torch.clone();
        if let (Some(on), "auto") = (measured, torch_o.device.as_str()) {
            torch_o.device = on;
        }
        torch::workload(model, &torch_o, stop, c.quiet)
    }
}

/// Why `sweep`, `measure` and `baseline` refuse a board.
pub const TWIN_OR_GPU: &str = "`sweep`, `measure` and `baseline` run on the twin (--backend sim); on the board, `tune --strategy grid` measures a grid and `--fix` pins knobs";

/// Whether the options ask for the nvml backend, and on which GPU: `--backend nvml`, or `auto`
/// with a device that is `gpu`, `gpu:N`, or (not being a catalogue board) a GPU's name.
fn choose_gpu(c: &Common, catalog: &Catalog) -> Result<Option<NvmlGpu>> {
    let device = c.device.as_deref();
    let names_a_gpu = device.is_some_and(nvml::names_a_gpu);
    let wanted = match c.backend {
        Backend::Nvml => true,
        Backend::Auto => names_a_gpu || device.is_some_and(|d| catalog.board(d).is_err()),
        _ => false,
    };
    if !wanted {
        return Ok(None);
    }
    match nvml::find(device.unwrap_or("gpu")) {
        Ok(gpu) => Ok(Some(gpu)),
        // auto with a name that is neither a board nor a GPU: the catalogue's error says more.
        Err(_) if c.backend == Backend::Auto && !names_a_gpu => Ok(None),
        Err(e) => Err(UsageError(e.to_string()).into()),
    }
}

/// The rig on an NVML GPU; says on stderr what it is about to measure.
fn nvml_rig(c: &Common, gpu: NvmlGpu, model: Model) -> Result<Target> {
    if c.board.emc {
        return Err(UsageError(
            "--emc sets a Jetson's memory clock; the nvml backend does not".into(),
        )
        .into());
    }
    torch::check_workload(c, &gpu.info.name, "")?;
    if c.allow_clock_control && !gpu.may_lock_clocks() {
        return Err(UsageError(
            "--allow-clock-control locks GPU clocks, which NVML allows root only: run with sudo, or leave the flag out to tune the batch size at the default clocks".into(),
        )
        .into());
    }
    let spec = GpuSpec::new(&gpu.info, c.allow_clock_control);
    if !c.quiet {
        eprintln!(
            "note: measuring {} (gpu:{}) through NVML ({}); {}",
            spec.name,
            spec.index,
            if gpu.info.energy_counter {
                "its energy counter"
            } else {
                "polling its power"
            },
            if c.allow_clock_control {
                "GPU clocks are locked per configuration and reset at the end"
            } else {
                "GPU clocks stay at their defaults (--allow-clock-control to tune them)"
            }
        );
    }
    Ok(Target {
        model_id: model.id().into(),
        device_id: spec.id.clone(),
        rig: Rig::Nvml { gpu, spec, model },
    })
}

/// The backend a board target gets: a detected board (or a real workload where a device tree
/// names a board) means the board, else what was asked (the twin).
fn board_backend(
    asked: Backend,
    on_board: bool,
    real_workload_on_a_board: bool,
) -> Result<BackendKind, UsageError> {
    Ok(match asked {
        Backend::Replay => {
            return Err(UsageError("--backend replay needs --table FILE.csv".into()))
        }
        Backend::Jetson => BackendKind::Jetson,
        Backend::Auto if on_board || real_workload_on_a_board => BackendKind::Jetson,
        Backend::Auto | Backend::Sim => BackendKind::Sim,
        Backend::Nvml => {
            return Err(UsageError(
                "--backend nvml measures an NVIDIA GPU: name it with --device gpu:N".into(),
            ))
        }
        // Resolved before a board is looked for.
        Backend::Powercap => BackendKind::Powercap,
    })
}

/// The rig on this host's CPU through powercap; says on stderr what it is about to measure.
fn powercap_rig(c: &Common, model: Model) -> Result<Target> {
    if c.board.emc {
        return Err(UsageError(
            "--emc sets a Jetson's memory clock; the powercap backend does not".into(),
        )
        .into());
    }
    let discovery = powercap::discover(&c.board.sysfs_root).map_err(|e| match e {
        powercap::PowercapError::NotFound(m) => UsageError(format!("--backend powercap: {m}")),
        e => UsageError(e.to_string()),
    })?;
    let host = HostSpec::new(&discovery.root, &discovery.cpu_freq_khz);
    torch::check_workload(c, &host.name, "")?;
    if !c.quiet {
        eprintln!(
            "note: measuring this host's CPU ({}) through RAPL ({} counters) while pinning its clock through cpufreq ({} policies)",
            host.name,
            discovery.zones.iter().filter(|z| z.counted).count(),
            discovery.policies.len()
        );
    }
    Ok(Target {
        model_id: model.id().into(),
        device_id: host.id.clone(),
        rig: Rig::Powercap {
            host,
            discovery,
            model,
        },
    })
}

/// Flags that only one kind of backend takes.
fn check_flags(kind: BackendKind, c: &Common) -> Result<(), UsageError> {
    if kind != BackendKind::Jetson {
        if c.torch.torchscript.is_some() || c.torch.input_shape.is_some() {
            return Err(UsageError(
                "--torchscript and --input-shape choose a real board's workload (--backend jetson); the twin and replay tables bring their own".into(),
            ));
        }
        if c.workload_cmd.is_some() {
            return Err(UsageError(
                "--workload-cmd runs on a real board (--backend jetson); the twin and replay tables bring their own workload".into(),
            ));
        }
        if c.board.emc {
            return Err(UsageError(
                "--emc sets a real board's memory clock (--backend jetson); the twin has no memory-clock model".into(),
            ));
        }
    }
    Ok(())
}

/// The target for a catalogue board: the board named by `--device` or detected here, measured
/// on the board or simulated by the twin.
fn board_rig(c: &Common, catalog: &Catalog, model: Model) -> Result<Target> {
    let dt = device_tree_model(&c.board.sysfs_root);
    let detected = catalog.detect(dt.as_deref()).cloned();
    let board = match (&c.device, &detected) {
        (Some(d), _) => catalog.board(d)?.clone(),
        (None, Some(b)) => b.clone(),
        // On a board the catalogue does not know (or asked for the board): say what is missing.
        (None, None) if c.backend == Backend::Jetson || dt.is_some() => {
            return Err(
                board::not_a_known_board(&c.board.sysfs_root, dt.as_deref(), catalog).into(),
            )
        }
        (None, None) => {
            return Err(UsageError(format!(
                "no Jetson detected here, so name the board to simulate with --device ({})",
                catalog.board_ids().join(", ")
            ))
            .into())
        }
    };
    let on_board = detected.as_ref().map(|b| b.board.id.as_str()) == Some(&board.board.id);
    let real_workload_on_a_board = c.workload_cmd.is_some() && dt.is_some();
    let kind = board_backend(c.backend, on_board, real_workload_on_a_board)?;
    check_flags(kind, c)?;
    let (model_id, device_id) = (model.id().to_string(), board.board.id.clone());
    let rig = if kind == BackendKind::Jetson {
        let (board, discovery) = board::jetson_target(c, catalog, board, detected.as_ref(), dt)?;
        Rig::Jetson {
            board,
            model,
            discovery,
        }
    } else {
        model.twin_for(&board.board.id)?;
        if !c.quiet && c.backend == Backend::Auto {
            eprintln!(
                "note: no {} detected here; using its digital twin (backend sim), calibrated to the paper's measurements",
                board.board.name
            );
        }
        Rig::Sim { board, model }
    };
    Ok(Target {
        model_id,
        device_id,
        rig,
    })
}

/// The target for `--table`: the table, and `--model`/`--device` as labels (catalogue entries
/// where they are one, any name otherwise; without `--device`, the board detected here).
fn replay_target(c: &Common, catalog: &Catalog, path: &std::path::Path) -> Result<Target> {
    if !matches!(c.backend, Backend::Auto | Backend::Replay) {
        return Err(UsageError(
            "--table is for --backend replay; leave --backend out or set it to replay".into(),
        )
        .into());
    }
    check_flags(BackendKind::Replay, c)?;
    let model = catalog.model_label(&c.model)?;
    let board = match &c.device {
        Some(d) => catalog.board_label(d)?,
        None => match catalog.detect(device_tree_model(&c.board.sysfs_root).as_deref()) {
            Some(b) => Labelled::Known(b),
            None => Labelled::Label(UNNAMED_BOARD.into()),
        },
    };
    let model_id = model.id(|m| m.id());
    let device_id = board.id(|b| &b.board.id);
    let table = ReplayTable::load(path)?;
    if !c.quiet {
        let unlisted: Vec<&str> = [
            (model.known().is_none(), "model"),
            (board.known().is_none(), "board"),
        ]
        .iter()
        .filter_map(|(u, w)| u.then_some(*w))
        .collect();
        eprintln!(
            "note: replaying the measurements in {} (backend replay) for {model_id} on {device_id}{}",
            path.display(),
            match unlisted[..] {
                [] => String::new(),
                _ => format!(
                    " ({} not in the catalogue: a label only{})",
                    unlisted.join(" and "),
                    if board.known().is_none() {
                        "; no nvpmodel.conf or apply-profile.sh is written"
                    } else {
                        ""
                    }
                ),
            }
        );
    }
    Ok(Target {
        model_id,
        device_id,
        rig: Rig::Replay {
            board: board.known().map(|b| (*b).clone()),
            model: model.known().map(|m| (*m).clone()),
            table,
        },
    })
}

/// The device label of a table recorded on a board that is neither named nor detected.
pub const UNNAMED_BOARD: &str = "unnamed-board";

#[cfg(test)]
mod tests {
    use super::*;

    /// Options on a machine that is not a Jetson (an empty sysfs root), quiet.
    fn common(dir: &std::path::Path) -> Common {
        let mut c = Common::new("resnet18");
        c.device = Some("nano".into());
        c.quiet = true;
        c.board.sysfs_root = dir.to_path_buf();
        c
    }

    fn err(c: &Common) -> String {
        match Target::resolve(c) {
            Ok(_) => panic!("resolved"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_board_off_the_board_is_its_twin() {
        let d = tempfile::tempdir().unwrap();
        let t = Target::resolve(&common(d.path())).unwrap();
        assert_eq!(t.kind(), BackendKind::Sim);
        assert_eq!(t.device_id(), "nano");
        assert_eq!(t.model_id(), "resnet18");
        assert!(t.board().is_some());
    }

    #[test]
    fn without_a_device_off_the_board_the_user_is_asked_to_name_one() {
        let d = tempfile::tempdir().unwrap();
        let mut c = common(d.path());
        c.device = None;
        assert!(err(&c).contains("name the board to simulate with --device"));
        c.backend = Backend::Jetson;
        assert!(err(&c).contains("not a Jetson"));
    }

    /// A two-row table in `dir`.
    fn table(dir: &std::path::Path) -> std::path::PathBuf {
        let p = dir.join("t.csv");
        std::fs::write(&p, "gpu_freq_hz,energy_j\n76800000,10\n921600000,12\n").unwrap();
        p
    }

    #[test]
    fn a_table_means_replay_and_only_replay() {
        let d = tempfile::tempdir().unwrap();
        let mut c = common(d.path());
        c.table = Some(table(d.path()));
        assert_eq!(Target::resolve(&c).unwrap().kind(), BackendKind::Replay);
        c.backend = Backend::Replay;
        assert_eq!(Target::resolve(&c).unwrap().kind(), BackendKind::Replay);
        for asked in [Backend::Sim, Backend::Jetson, Backend::Nvml] {
            c.backend = asked;
            assert!(err(&c).contains("--table is for --backend replay"));
        }
        let e = board_backend(Backend::Replay, false, false).unwrap_err();
        assert!(e.0.contains("needs --table"), "{e}");
    }

    #[test]
    fn a_table_takes_any_label_and_knows_the_catalogue_s_names() {
        let d = tempfile::tempdir().unwrap();
        let mut c = common(d.path());
        c.table = Some(table(d.path()));
        (c.model, c.device) = ("my-net".into(), Some("my-board".into()));
        let t = Target::resolve(&c).unwrap();
        assert_eq!((t.model_id(), t.device_id()), ("my-net", "my-board"));
        assert!(t.board().is_none() && t.model().is_none());
        // Catalogue names (an alias too) are the catalogue's entries.
        (c.model, c.device) = ("ResNet-18".into(), Some("nano".into()));
        let t = Target::resolve(&c).unwrap();
        assert_eq!((t.model_id(), t.device_id()), ("resnet18", "nano"));
        assert!(t.board().is_some() && t.model().is_some());
        // Without --device, off a board: a label says so.
        c.device = None;
        assert_eq!(Target::resolve(&c).unwrap().device_id(), UNNAMED_BOARD);
        // A label names folders: no paths.
        for bad in ["../x", "a/b", ".hidden", ""] {
            c.model = bad.into();
            assert!(err(&c).contains("cannot label a table's model"), "{bad}");
        }
    }

    #[test]
    fn auto_is_the_board_on_the_board_or_with_a_real_workload_where_a_board_is() {
        let b = |on, real| board_backend(Backend::Auto, on, real).unwrap();
        assert_eq!(b(true, false), BackendKind::Jetson);
        assert_eq!(b(false, true), BackendKind::Jetson);
        assert_eq!(b(false, false), BackendKind::Sim);
        assert_eq!(
            board_backend(Backend::Sim, true, true).unwrap(),
            BackendKind::Sim
        );
    }

    #[test]
    fn board_only_flags_are_refused_elsewhere() {
        let d = tempfile::tempdir().unwrap();
        let mut c = common(d.path());
        c.workload_cmd = Some("true".into());
        assert!(err(&c).contains("--workload-cmd runs on a real board"));
        let mut c = common(d.path());
        c.board.emc = true;
        assert!(err(&c).contains("--emc"));
        let mut c = common(d.path());
        c.torch.torchscript = Some("m.pt".into());
        assert!(err(&c).contains("--torchscript"));
        assert!(check_flags(BackendKind::Jetson, &c).is_ok());
    }

    #[test]
    fn clock_control_is_for_gpus() {
        let d = tempfile::tempdir().unwrap();
        let mut c = common(d.path());
        c.allow_clock_control = true;
        assert!(err(&c).contains("--allow-clock-control locks an NVIDIA GPU's clocks"));
    }

    #[test]
    fn an_unknown_model_or_board_is_the_catalogue_s_error() {
        let d = tempfile::tempdir().unwrap();
        let mut c = common(d.path());
        c.model = "no-such-net".into();
        assert!(err(&c).contains("no-such-net"));
        let mut c = common(d.path());
        c.device = Some("no-such-board".into());
        assert!(err(&c).contains("no-such-board"));
    }
}

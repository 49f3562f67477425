//! One resolution step from the options to a typed target: which model, and which rig measures
//! it (the twin, a replay table, a Jetson through sysfs, a GPU through NVML). Every rule that
//! ties a flag to a backend is here, once; the commands only match on [`Rig`].

use super::{board, load_catalog, torch, Backend, Common};
use crate::catalog::{Board, Catalog, Model};
use crate::device::jetson::{device_tree_model, Discovery, JetsonDevice};
use crate::device::nvml::{self, GpuSpec, NvmlDevice, NvmlGpu};
use crate::device::replay::{ReplayBoard, ReplayTable};
use crate::device::sim::SimBoard;
use crate::device::{BackendKind, Device};
use crate::error::UsageError;
use crate::space::{top_corner, ClockTables};
use crate::workload::command::CommandWorkload;
use crate::workload::Workload;
use anyhow::Result;
use std::time::Duration;

/// What measures: the backend with everything it needs.
pub enum Rig {
    /// The digital twin of a catalogue board.
    Sim(Board),
    /// A recorded table, for a catalogue board.
    Replay {
        /// The board the table was recorded on.
        board: Board,
        /// The table.
        table: ReplayTable,
    },
    /// A real Jetson through sysfs.
    Jetson {
        /// The catalogue board, with the frequency lists the board itself lists.
        board: Board,
        /// What discovery found under the sysfs root.
        discovery: Discovery,
    },
    /// An NVIDIA GPU through NVML.
    Nvml {
        /// The GPU and the library handle.
        gpu: NvmlGpu,
        /// Its id and knob values.
        spec: GpuSpec,
    },
}

/// The model and the rig a command runs on.
pub struct Target {
    /// Model.
    pub model: Model,
    /// What measures it.
    pub rig: Rig,
}

impl Target {
    /// Resolves model and rig from the options, and says on stderr what it is about to measure
    /// (or that the twin stands in for a board).
    pub fn resolve(c: &Common) -> Result<Target> {
        let catalog = load_catalog(c.catalog_dir.as_deref())?;
        let model = catalog.model(&c.model)?.clone();
        if let Some(gpu) = choose_gpu(c, &catalog)? {
            let rig = nvml_rig(c, gpu)?;
            return Ok(Target { model, rig });
        }
        if c.allow_clock_control {
            return Err(UsageError(
                "--allow-clock-control locks an NVIDIA GPU's clocks (--backend nvml); on a Jetson edgetune always sets the clocks".into(),
            )
            .into());
        }
        let rig = board_rig(c, &catalog, &model)?;
        Ok(Target { model, rig })
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
        if let Rig::Jetson { .. } = t.rig {
            return Err(UsageError(TWIN_OR_GPU.into()).into());
        }
        Ok(t)
    }

    /// Which backend measures.
    pub fn kind(&self) -> BackendKind {
        match &self.rig {
            Rig::Sim(_) => BackendKind::Sim,
            Rig::Replay { .. } => BackendKind::Replay,
            Rig::Jetson { .. } => BackendKind::Jetson,
            Rig::Nvml { .. } => BackendKind::Nvml,
        }
    }

    /// The catalogue board, unless the target is a GPU.
    pub fn board(&self) -> Option<&Board> {
        match &self.rig {
            Rig::Sim(board) | Rig::Replay { board, .. } | Rig::Jetson { board, .. } => Some(board),
            Rig::Nvml { .. } => None,
        }
    }

    /// The device id in reports: a board's id, or `gpu:N`.
    pub fn device_id(&self) -> &str {
        match &self.rig {
            Rig::Nvml { spec, .. } => &spec.id,
            Rig::Sim(board) | Rig::Replay { board, .. } | Rig::Jetson { board, .. } => {
                &board.board.id
            }
        }
    }

    /// The model's id.
    pub fn model_id(&self) -> &str {
        self.model.id()
    }

    /// The clock tables the space and `--fix` are checked against.
    pub fn tables(&self) -> ClockTables<'_> {
        match &self.rig {
            Rig::Nvml { spec, .. } => spec.tables(),
            Rig::Sim(board) | Rig::Replay { board, .. } | Rig::Jetson { board, .. } => board.into(),
        }
    }

    /// Opens the device and the workload to measure with. On real hardware the workload is
    /// built first, so a model that cannot load changes nothing.
    pub fn open(&self, c: &Common) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        match &self.rig {
            Rig::Sim(board) => {
                let b = SimBoard::new(board, c.noise(0)).with_sleep(c.twin_sleep);
                Ok((Box::new(b.device()), Box::new(b.workload(&self.model)?)))
            }
            Rig::Replay { table, .. } => {
                let b = ReplayBoard::new(table.clone());
                Ok((Box::new(b.device()), Box::new(b.workload(self.model_id()))))
            }
            Rig::Jetson { discovery, .. } => {
                let w = self.real_workload(c, None)?;
                let d = JetsonDevice::open(
                    discovery.clone(),
                    &c.board.state_path(),
                    Some(c.board.poll_ms),
                )?;
                Ok((Box::new(d), w))
            }
            Rig::Nvml { gpu, .. } => {
                let w = self.real_workload(c, Some(gpu.info.index))?;
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

    /// `--workload-cmd`, else the built-in (or TorchScript) model; on GPU `cuda_index` by default.
    fn real_workload(&self, c: &Common, cuda_index: Option<u32>) -> Result<Box<dyn Workload>> {
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
        if let (Some(i), "auto") = (cuda_index, torch_o.device.as_str()) {
            // The GPU being measured (NVML and CUDA number GPUs alike unless
            // CUDA_DEVICE_ORDER or CUDA_VISIBLE_DEVICES say otherwise).
            torch_o.device = format!("cuda:{i}");
        }
        torch::workload(&self.model, &torch_o, stop, c.quiet)
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
fn nvml_rig(c: &Common, gpu: NvmlGpu) -> Result<Rig> {
    if c.table.is_some() {
        return Err(UsageError("--table is for --backend replay".into()).into());
    }
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
    Ok(Rig::Nvml { gpu, spec })
}

/// The backend a board target gets: a table means replay, a detected board (or a real workload
/// where a device tree names a board) means the board, else what was asked (the twin).
fn board_backend(
    asked: Backend,
    table: bool,
    on_board: bool,
    real_workload_on_a_board: bool,
) -> Result<BackendKind, UsageError> {
    Ok(match (asked, table) {
        (Backend::Replay, false) => {
            return Err(UsageError("--backend replay needs --table FILE.csv".into()))
        }
        (Backend::Sim | Backend::Jetson, true) => {
            return Err(UsageError(
                "--table is for --backend replay; leave --backend out or set it to replay".into(),
            ))
        }
        (_, true) => BackendKind::Replay,
        (Backend::Jetson, false) => BackendKind::Jetson,
        (Backend::Auto, false) if on_board || real_workload_on_a_board => BackendKind::Jetson,
        (Backend::Auto | Backend::Sim, false) => BackendKind::Sim,
        (Backend::Nvml, false) => {
            return Err(UsageError(
                "--backend nvml measures an NVIDIA GPU: name it with --device gpu:N".into(),
            ))
        }
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

/// The rig for a catalogue board: the board named by `--device` or detected here, measured on
/// the board, replayed from a table, or simulated by the twin.
fn board_rig(c: &Common, catalog: &Catalog, model: &Model) -> Result<Rig> {
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
    let kind = board_backend(
        c.backend,
        c.table.is_some(),
        on_board,
        real_workload_on_a_board,
    )?;
    check_flags(kind, c)?;
    match (kind, &c.table) {
        (BackendKind::Jetson, _) => {
            let (board, discovery) =
                board::jetson_target(c, catalog, board, detected.as_ref(), dt)?;
            Ok(Rig::Jetson { board, discovery })
        }
        (BackendKind::Replay, Some(path)) => {
            let table = ReplayTable::load(path, top_corner(&board, model))?;
            if !c.quiet {
                eprintln!(
                    "note: replaying the measurements in {} (backend replay) for {} on {}",
                    path.display(),
                    model.id(),
                    board.board.id
                );
            }
            Ok(Rig::Replay { board, table })
        }
        _ => {
            model.twin_for(&board.board.id)?;
            if !c.quiet && c.backend == Backend::Auto {
                eprintln!(
                    "note: no {} detected here; using its digital twin (backend sim), calibrated to the paper's measurements",
                    board.board.name
                );
            }
            Ok(Rig::Sim(board))
        }
    }
}

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
        assert_eq!(t.tables().device, "nano");
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

    #[test]
    fn a_table_means_replay_and_only_replay() {
        assert_eq!(
            board_backend(Backend::Auto, true, false, false).unwrap(),
            BackendKind::Replay
        );
        assert_eq!(
            board_backend(Backend::Replay, true, true, true).unwrap(),
            BackendKind::Replay
        );
        for asked in [Backend::Sim, Backend::Jetson] {
            let e = board_backend(asked, true, false, false).unwrap_err();
            assert!(e.0.contains("--table is for --backend replay"), "{e}");
        }
        let e = board_backend(Backend::Replay, false, false, false).unwrap_err();
        assert!(e.0.contains("needs --table"), "{e}");
    }

    #[test]
    fn auto_is_the_board_on_the_board_or_with_a_real_workload_where_a_board_is() {
        let b = |on, real| board_backend(Backend::Auto, false, on, real).unwrap();
        assert_eq!(b(true, false), BackendKind::Jetson);
        assert_eq!(b(false, true), BackendKind::Jetson);
        assert_eq!(b(false, false), BackendKind::Sim);
        assert_eq!(
            board_backend(Backend::Sim, false, true, true).unwrap(),
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

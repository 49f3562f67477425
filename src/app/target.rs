//! One resolution step from the options to a typed target: the first backend of the registry
//! ([`crate::backend::ALL`]) that takes the options resolves them into a [`Rig`] (the model, and
//! what measures it); the flags only some backends take are checked here, once, against the
//! entry's list. The commands only ask the rig.

use super::options::{load_catalog, Common};
use super::torch;
use crate::backend::rig::Request;
use crate::backend::{entry, Flag, Rig, ALL};
use crate::catalog::{Board, Model};
use crate::device::{BackendKind, Device};
use crate::error::UsageError;
use crate::workload::command::CommandWorkload;
use crate::workload::Workload;
use anyhow::Result;
use std::time::Duration;

/// The model and the rig a command runs on.
pub struct Target {
    /// What measures it.
    pub rig: Box<dyn Rig>,
}

impl Target {
    /// Resolves model and rig from the options, and says on stderr what it is about to measure
    /// (or that the twin stands in for a board).
    pub fn resolve(c: &Common) -> Result<Target> {
        let catalog = load_catalog(c.catalog_dir.as_deref())?;
        let request = Request {
            c,
            catalog: &catalog,
        };
        let mut rig = None;
        for e in ALL {
            if let Some(r) = (e.resolve)(&request)? {
                rig = Some(r);
                break;
            }
        }
        let Some(rig) = rig else {
            // The twin answers `auto` and `sim`; the others refuse what they cannot take.
            return Err(UsageError(format!(
                "no backend takes these options (--backend {})",
                c.backend.map_or("auto", |k| k.name())
            ))
            .into());
        };
        check_flags(rig.kind(), c)?;
        if !c.quiet {
            for n in rig.notes() {
                eprintln!("note: {n}");
            }
        }
        Ok(Target { rig })
    }

    /// As [`Target::resolve`], for the commands that measure one configuration or a grid
    /// (`sweep`, `measure`, `baseline`): anything but a recorded table.
    pub fn resolve_measuring(c: &Common) -> Result<Target> {
        if c.table.is_some() || c.backend == Some(BackendKind::Replay) {
            return Err(UsageError(
                "a replay table is used by `tune` and `bench`; `sweep`, `measure` and `baseline` measure (on the twin, a board or a GPU)".into(),
            )
            .into());
        }
        Target::resolve(c)
    }

    /// Which backend measures.
    pub fn kind(&self) -> BackendKind {
        self.rig.kind()
    }

    /// The catalogue board, unless the target is a GPU or a table of a board it does not have.
    pub fn board(&self) -> Option<&Board> {
        self.rig.board()
    }

    /// The catalogue model, unless the target is a table of a model it does not have.
    pub fn model(&self) -> Option<&Model> {
        self.rig.model()
    }

    /// The device id in reports: a board's id, `gpu:N`, or a table's label.
    pub fn device_id(&self) -> &str {
        self.rig.device_id()
    }

    /// The model's id in reports.
    pub fn model_id(&self) -> &str {
        self.rig.model_id()
    }

    /// Opens the device and the workload to measure with. On real hardware the workload is
    /// built first, so a model that cannot load changes nothing.
    pub fn open(&self, c: &Common) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        self.rig
            .open(c, &|measured| self.real_workload(c, measured))
    }

    /// `--workload-cmd`, else the built-in (or TorchScript) model, on `measured` (the torch
    /// device of what is measured) where `--torch-device` is `auto`.
    fn real_workload(&self, c: &Common, measured: Option<String>) -> Result<Box<dyn Workload>> {
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
        let Some(model) = self.model() else {
            return Err(UsageError(format!("{} is not a catalogue model", self.model_id())).into());
        };
        let mut torch_o = c.torch.clone();
        if let (Some(on), "auto") = (measured, torch_o.device.as_str()) {
            torch_o.device = on;
        }
        torch::workload(model, &torch_o, stop, c.quiet)
    }
}

/// The backends that take `flag`, in words: `jetson, nvml or powercap`.
fn takers(flag: Flag) -> String {
    let mut names: Vec<&str> = ALL
        .iter()
        .filter(|e| e.takes.contains(&flag))
        .map(|e| e.kind.name())
        .collect();
    names.sort_unstable();
    match names.split_last() {
        Some((last, [])) => (*last).into(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "none".into(),
    }
}

/// Flags that only some backends take, refused by the others.
fn check_flags(kind: BackendKind, c: &Common) -> Result<(), UsageError> {
    let given = [
        (Flag::Emc, c.board.emc),
        (Flag::AllowClockControl, c.allow_clock_control),
        (Flag::WorkloadCmd, c.workload_cmd.is_some()),
        (
            Flag::Torchscript,
            c.torch.torchscript.is_some() || c.torch.input_shape.is_some(),
        ),
        (Flag::PowerModes, c.board.power_modes.is_some()),
    ];
    let Some((flag, _)) = given
        .into_iter()
        .find(|(f, on)| *on && !entry(kind).takes.contains(f))
    else {
        return Ok(());
    };
    let who = takers(flag);
    Err(UsageError(match flag {
        Flag::Emc => format!("--emc sets a Jetson's memory clock (--backend {who}); the {kind} backend has no memory-clock control"),
        Flag::AllowClockControl => format!("--allow-clock-control locks an NVIDIA GPU's clocks (--backend {who}); the {kind} backend does not take it"),
        Flag::WorkloadCmd => format!("--workload-cmd runs on a real board or processor (--backend {who}); the {kind} backend brings its own workload"),
        Flag::Torchscript => format!("--torchscript and --input-shape choose a real board's or processor's workload (--backend {who}); the {kind} backend brings its own"),
        Flag::PowerModes => format!("--power-modes switches a Jetson's nvpmodel modes (--backend {who}); the {kind} backend has none (a recorded table's modes are its `power_mode` column)"),
    }))
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
        assert!(t.board().is_some());
    }

    // Unit tests name options by their fields: the flags are the binary's (`app::flags`), and
    // the CLI tests check those.
    #[test]
    fn without_a_device_off_the_board_the_user_is_asked_to_name_one() {
        let d = tempfile::tempdir().unwrap();
        let mut c = common(d.path());
        c.device = None;
        assert!(err(&c).contains("name the board to simulate with device"));
        c.backend = Some(BackendKind::Jetson);
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
        c.backend = Some(BackendKind::Replay);
        assert_eq!(Target::resolve(&c).unwrap().kind(), BackendKind::Replay);
        for asked in [BackendKind::Sim, BackendKind::Jetson, BackendKind::Nvml] {
            c.backend = Some(asked);
            assert!(err(&c).contains("table is for backend replay"));
        }
        c.table = None;
        c.backend = Some(BackendKind::Replay);
        assert!(err(&c).contains("needs table"));
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
        assert_eq!(
            Target::resolve(&c).unwrap().device_id(),
            crate::backend::replay::rig::UNNAMED_BOARD
        );
        // A label names folders: no paths.
        for bad in ["../x", "a/b", ".hidden", ""] {
            c.model = bad.into();
            assert!(err(&c).contains("cannot label a table's model"), "{bad}");
        }
    }

    #[test]
    fn auto_is_the_board_on_the_board_and_the_twin_when_asked() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nano-jp4");
        let mut c = common(&root);
        (c.device, c.workload_cmd) = (None, Some("true".into()));
        assert_eq!(Target::resolve(&c).unwrap().kind(), BackendKind::Jetson);
        c.workload_cmd = None;
        c.device = Some("nano".into());
        c.backend = Some(BackendKind::Sim);
        assert_eq!(Target::resolve(&c).unwrap().kind(), BackendKind::Sim);
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
        let e = check_flags(BackendKind::Sim, &c).unwrap_err();
        assert!(e.0.contains("(--backend jetson, nvml or powercap)"), "{e}");
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

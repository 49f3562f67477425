//! Options a user sets, as the library's messages name them. A lower layer's error says which
//! option to change ([`Opt::WorkloadTimeout`]); how the user typed it is the front end's word:
//! the command line installs its flag names once ([`name_with`], done by `app::flags`), and
//! without that an option shows as its field name (`workload_timeout_s`), as a caller of the
//! library set it.

use std::fmt;
use std::sync::OnceLock;

/// An option named in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opt {
    /// Whether NVML may lock the GPU clocks.
    AllowClockControl,
    /// Which backend measures.
    Backend,
    /// Which board or GPU.
    Device,
    /// Where a board's sysfs tree is mounted.
    SysfsRoot,
    /// Where the clocks' restore record goes.
    StateFile,
    /// A folder of search-space and model files.
    Catalog,
    /// Whether the memory clock is a knob.
    Emc,
    /// nvpmodel power modes as the knob.
    PowerModes,
    /// The nvpmodel program.
    Nvpmodel,
    /// The command that runs the workload.
    WorkloadCmd,
    /// The longest one workload run may take.
    WorkloadTimeout,
    /// Inferences of a measured run.
    Inferences,
    /// Fewest runs of the protocol.
    MinRuns,
    /// Most runs of the protocol.
    MaxRuns,
    /// The shortest energy window.
    MinWindowS,
    /// The idle window of a study at a rate.
    IdleWindowS,
    /// The CV the runs must reach.
    CvTarget,
    /// Where libtorch runs the model.
    TorchDevice,
    /// A TorchScript model file.
    Torchscript,
    /// A TorchScript model's input shape.
    InputShape,
    /// A knob fixed to a value.
    Fix,
    /// The batch sizes searched.
    BatchSizes,
    /// A recorded table to replay.
    Table,
    /// The earlier study to continue.
    Resume,
    /// The output folder.
    Out,
    /// A study storage.
    Storage,
    /// A study's name in a storage.
    Study,
    /// Racing off.
    NoRace,
    /// Inferences of a screening run.
    ScreenInferences,
    /// The prior a study starts from.
    Prior,
    /// One batch size.
    Batch,
    /// The board a virtual board emulates.
    Board,
    /// A virtual board's root folder.
    Root,
}

impl Opt {
    /// Its field name in the library's option structs.
    pub fn field(self) -> &'static str {
        match self {
            Opt::AllowClockControl => "allow_clock_control",
            Opt::Backend => "backend",
            Opt::Device => "device",
            Opt::SysfsRoot => "sysfs_root",
            Opt::StateFile => "state_file",
            Opt::Catalog => "catalog",
            Opt::Emc => "emc",
            Opt::PowerModes => "power_modes",
            Opt::Nvpmodel => "nvpmodel",
            Opt::WorkloadCmd => "workload_cmd",
            Opt::WorkloadTimeout => "workload_timeout_s",
            Opt::Inferences => "inferences",
            Opt::MinRuns => "min_runs",
            Opt::MaxRuns => "max_runs",
            Opt::MinWindowS => "min_window_s",
            Opt::IdleWindowS => "idle_window_s",
            Opt::CvTarget => "cv_target",
            Opt::TorchDevice => "torch_device",
            Opt::Torchscript => "torchscript",
            Opt::InputShape => "input_shape",
            Opt::Fix => "fix",
            Opt::BatchSizes => "batch_sizes",
            Opt::Table => "table",
            Opt::Resume => "resume",
            Opt::Out => "out",
            Opt::Storage => "storage",
            Opt::Study => "study",
            Opt::NoRace => "no_race",
            Opt::ScreenInferences => "screen_inferences",
            Opt::Prior => "prior",
            Opt::Batch => "batch",
            Opt::Board => "board",
            Opt::Root => "root",
        }
    }
}

/// The front end's names for options, once installed.
static NAMES: OnceLock<fn(Opt) -> &'static str> = OnceLock::new();

/// Names options with `names` in every message from now on (the first call wins: a process
/// has one front end).
pub fn name_with(names: fn(Opt) -> &'static str) {
    let _ = NAMES.set(names);
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NAMES.get().map_or(self.field(), |n| n(*self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_is_its_field_until_a_front_end_names_it() {
        // Unit tests of this crate never install names, so this holds in every test binary.
        assert_eq!(Opt::WorkloadTimeout.to_string(), "workload_timeout_s");
        assert_eq!(format!("{}", Opt::Fix), "fix");
    }
}

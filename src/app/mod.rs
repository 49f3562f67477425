//! The subcommands, one file each, as library functions taking plain option structs (the clap
//! definitions in `cli.rs` only build these). A command resolves its options once into a typed
//! [`target::Target`], calls the library, and hands what came back to [`crate::report`] to
//! render; its notes (which backend, where files went) go to stderr.

pub mod bench;
pub mod bench_fleet;
pub mod board;
pub mod earlier;
pub mod emulate;
pub mod flags;
pub mod list;
pub mod measure;
mod options;
pub mod output;
pub mod prior;
pub mod progress;
pub mod serve;
pub mod signals;
pub mod study;
pub mod sweep;
pub mod target;
pub mod torch;
pub mod tune;
pub mod worker;

pub use flags::{check_budget, check_common, check_goal, check_protocol};
pub use options::{load_catalog, Common};
pub use prior::{PriorChoice, DEFAULT_SCREEN_INFERENCES};

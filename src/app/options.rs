//! The options every measuring command shares (defined in `backend/request.rs`, where the rigs
//! read them), the protocol each backend gets, and the catalogue they name. A leaf of `app/`: the
//! commands import it, it imports none of them.

use crate::catalog::Catalog;
use crate::device::BackendKind;
use crate::measure::ProtocolSettings;
use anyhow::{Context, Result};
use std::path::Path;

pub use crate::backend::request::{BoardOptions, Common, TorchOptions};

/// The protocol on `kind`: `--min-window-s` as given, else the backend's shortest window (2 s on
/// NVML, none elsewhere).
pub fn protocol_on(c: &Common, kind: BackendKind) -> ProtocolSettings {
    ProtocolSettings {
        min_window_s: c
            .min_window_s
            .unwrap_or(crate::backend::entry(kind).min_window_s),
        ..c.protocol
    }
}

/// Loads the catalogue named by the options.
pub fn load_catalog(dir: Option<&Path>) -> Result<Catalog> {
    Catalog::load(dir).context("loading the catalogue")
}

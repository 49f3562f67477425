//! The backends: what measures a configuration. Each implements [`crate::device::Device`] and
//! registers one [`Entry`] in [`ALL`]: the digital twin ([`sim`]), a recorded table
//! ([`replay`]), a Jetson through sysfs ([`jetson`]), an NVIDIA GPU through NVML ([`nvml`]) and
//! a host CPU through Linux powercap ([`powercap`]). They sit above the protocol, the twin, the
//! emulator and the workloads, which they use; nothing below them imports them.

pub mod jetson;
pub mod nvml;
pub mod powercap;
pub mod replay;
pub mod request;
pub mod rig;
pub mod sim;

use crate::device::BackendKind;
pub use rig::{Entry, Flag, Rig};

/// Every backend, in the order `--backend auto` tries them: a table means replay, a GPU's name
/// NVML, then a board when running on one, else its twin. Adding a backend is a line here.
pub const ALL: &[&Entry] = &[
    &replay::rig::ENTRY,
    &nvml::rig::ENTRY,
    &powercap::rig::ENTRY,
    &jetson::rig::ENTRY,
    &sim::rig::ENTRY,
];

/// The registry's entry of `kind`.
pub fn entry(kind: BackendKind) -> &'static Entry {
    ALL.iter()
        .find(|e| e.kind == kind)
        .copied()
        // Every kind is registered (the test below); the twin's words are the safe fallback.
        .unwrap_or(&sim::rig::ENTRY)
}

/// The backend named `name` on the command line and in files.
pub fn by_name(name: &str) -> Option<BackendKind> {
    ALL.iter().map(|e| e.kind).find(|k| k.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once() {
        // A new kind fails to compile here until it is listed.
        let kinds = |k: BackendKind| match k {
            BackendKind::Sim
            | BackendKind::Replay
            | BackendKind::Jetson
            | BackendKind::Nvml
            | BackendKind::Powercap => k,
        };
        for k in [
            BackendKind::Sim,
            BackendKind::Replay,
            BackendKind::Jetson,
            BackendKind::Nvml,
            BackendKind::Powercap,
        ] {
            assert_eq!(ALL.iter().filter(|e| e.kind == kinds(k)).count(), 1, "{k}");
            assert_eq!(entry(k).kind, k);
            assert_eq!(by_name(k.name()), Some(k));
        }
        assert_eq!(by_name("auto"), None);
    }
}

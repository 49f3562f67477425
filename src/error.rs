//! Error classification shared by the binary: which failures are the user's to fix (exit 2),
//! which happened at run time (exit 1), and interrupts (exit 130).

use thiserror::Error;

/// A mistake in what the user asked for that is not a catalogue or search-space error: a bad
/// option combination, a missing file, an output folder that cannot be used.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The study was stopped by SIGINT/SIGTERM; what was measured has been kept.
#[derive(Debug, Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// Exit code for bad input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code for a failure at run time.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code after an interrupt (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Maps an error chain to the process exit code of DESIGN.md.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<Interrupted>()
            || matches!(
                cause.downcast_ref::<crate::device::DeviceError>(),
                Some(crate::device::DeviceError::Interrupted)
            )
        {
            return EXIT_INTERRUPTED;
        }
        if cause.is::<UsageError>()
            || cause.is::<crate::backend::rig::Refusal>()
            || cause.is::<crate::catalog::CatalogError>()
            || cause.is::<crate::space::SpaceError>()
            || cause.is::<crate::strategy::StrategyError>()
            || cause.is::<crate::study::JournalError>()
            || cause
                .downcast_ref::<crate::study::StorageError>()
                .is_some_and(|e| e.is_usage())
            || cause.is::<crate::backend::replay::ReplayError>()
            || cause.is::<crate::workload::command::CommandError>()
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(crate::files::is_not_own)
            || cause
                .downcast_ref::<crate::backend::jetson::JetsonError>()
                .is_some_and(|e| e.is_usage())
        {
            return EXIT_BAD_INPUT;
        }
    }
    EXIT_FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_codes_follow_the_cause_through_context() {
        let e = anyhow::Error::new(Interrupted("stopped".into())).context("tuning");
        assert_eq!(exit_code(&e), EXIT_INTERRUPTED);
        let e: anyhow::Result<()> = Err(crate::space::SpaceError::Malformed("x".into()).into());
        assert_eq!(
            exit_code(&e.context("building the space").unwrap_err()),
            EXIT_BAD_INPUT
        );
        assert_eq!(exit_code(&UsageError("bad".into()).into()), EXIT_BAD_INPUT);
        assert_eq!(exit_code(&anyhow::anyhow!("disk full")), EXIT_FAILURE);
    }
}

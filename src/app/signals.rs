//! SIGINT, SIGTERM and SIGHUP: the first stops the running command at its next safe point (the
//! running workload too); a second puts the hardware back from its snapshot at once and quits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static QUIET_INTERRUPTS: AtomicBool = AtomicBool::new(false);

/// What the first interrupt's note says the command does next (a command that changes no
/// board, such as `emulate`, has nothing to put back).
static ON_INTERRUPT: std::sync::Mutex<&str> = std::sync::Mutex::new(
    "stopping at the next safe point and putting back what was changed (again to quit at once)",
);

/// Silences the note the signal handler prints on the first interrupt (`--quiet`).
pub fn quiet_interrupts(quiet: bool) {
    QUIET_INTERRUPTS.store(quiet, Ordering::SeqCst);
}

/// Sets what the first interrupt's note says.
pub fn on_interrupt(words: &'static str) {
    if let Ok(mut w) = ON_INTERRUPT.lock() {
        *w = words;
    }
}

/// The process-wide interrupt flag, set by SIGINT/SIGTERM/SIGHUP once the handler is installed.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let f2 = f.clone();
        // Failing to install a handler only loses graceful interrupts; the command still runs.
        let _ = ctrlc::set_handler(move || {
            if f2.swap(true, Ordering::SeqCst) {
                // Held until exit: no board write starts, or is cut short, after this.
                let mut held = Vec::new();
                for e in crate::backend::ALL {
                    let (said, h) = (e.emergency_restore)();
                    held.push(h);
                    if let Some(said) = said {
                        eprintln!("interrupted again: {said}");
                    }
                }
                std::process::exit(crate::error::EXIT_INTERRUPTED);
            }
            if !QUIET_INTERRUPTS.load(Ordering::SeqCst) {
                let words = ON_INTERRUPT.lock().map_or("stopping", |w| *w);
                eprintln!("interrupt: {words}");
            }
        });
        f
    })
    .clone()
}

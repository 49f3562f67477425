//! A fleet worker's heartbeat: it renews the lease of the claim being measured from a thread
//! with its own connection, so a worker that dies loses its claim after one lease.

use super::storage::{ClaimKey, Origin, Storage, StorageError};
use std::sync::mpsc;
use std::time::Duration;

/// Renews the lease of the claim being measured every third of it, from a thread with its own
/// connection, opened once per worker; stops when dropped.
pub(super) struct Heartbeat {
    /// The claim to keep alive (`None` between claims).
    now: Option<mpsc::Sender<Option<ClaimKey>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts the thread, on `conn`, a new connection to the storage, for `origin`'s claims of
    /// study `name` with leases of `lease_s`.
    pub(super) fn start(
        conn: Result<Box<dyn Storage>, StorageError>,
        name: &str,
        origin: &Origin,
        lease_s: f64,
    ) -> Heartbeat {
        let (tx, rx) = mpsc::channel::<Option<ClaimKey>>();
        let (name, origin) = (name.to_string(), origin.clone());
        let thread = std::thread::spawn(move || {
            let Ok(mut storage) = conn else { return };
            let every = Duration::from_secs_f64((lease_s / 3.0).max(0.05));
            let mut claim = None;
            loop {
                match rx.recv_timeout(every) {
                    Ok(next) => claim = next,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some(key) = &claim {
                            // A failed heartbeat is retried; the lease covers two missed ones.
                            let _ = storage.heartbeat(&name, key, &origin, lease_s);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Heartbeat {
            now: Some(tx),
            thread: Some(thread),
        }
    }

    /// Keeps `claim` alive from now on (`None`: nothing).
    pub(super) fn keep(&self, claim: Option<ClaimKey>) {
        if let Some(tx) = &self.now {
            let _ = tx.send(claim);
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.now.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Where a report's figures came from, in the words of the backend that measured them (its
//! registry entry's), on edgetune's virtual Jetson where it was emulated.

use crate::backend::entry;
use crate::device::BackendKind;

/// A backend's words in reports.
pub trait Source {
    /// A few words for headings.
    fn words(self) -> &'static str;
    /// As [`Source::words`], on edgetune's virtual Jetson when `emulated`.
    fn words_on(self, emulated: bool) -> &'static str;
    /// Where a profile's energy came from (comment lines of profile files), on edgetune's
    /// virtual Jetson when `emulated`.
    fn provenance_on(self, emulated: bool) -> &'static str;
    /// The sentence report.md opens with, where the figures are not a board's measured now.
    fn disclaimer_on(self, emulated: bool) -> Option<&'static str>;
    /// Whether the figures are simulated time and energy rather than measured.
    fn is_simulated(&self) -> bool;
}

impl Source for BackendKind {
    fn words(self) -> &'static str {
        entry(self).words.heading
    }
    fn words_on(self, emulated: bool) -> &'static str {
        match (self, emulated) {
            (BackendKind::Jetson, true) => "edgetune's virtual Jetson: the digital twin",
            _ => self.words(),
        }
    }
    fn provenance_on(self, emulated: bool) -> &'static str {
        match (self, emulated) {
            (BackendKind::Jetson, true) => {
                "measured on edgetune's virtual Jetson (the digital twin), not on a real board"
            }
            _ => entry(self).words.provenance,
        }
    }
    fn disclaimer_on(self, emulated: bool) -> Option<&'static str> {
        match (self, emulated) {
            (BackendKind::Jetson, true) => Some("Measured on edgetune's **virtual Jetson** (`edgetune emulate`): real sysfs files, but the clocks and sensors are the digital twin's, not a board's (its time scale is in the notes)."),
            _ => entry(self).words.disclaimer,
        }
    }
    fn is_simulated(&self) -> bool {
        entry(*self).words.simulated
    }
}

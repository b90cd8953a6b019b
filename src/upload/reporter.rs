//! The progress of one upload, shared by its parts in flight, throttled into reports.

use super::ports::Runtime;
use super::wait::Flag;
use crate::progress::{MIN_REPORT_INTERVAL_MS, ProgressSnapshot, ProgressTracker, UploadState};
use std::cell::RefCell;

/// Progress of one upload, shared by the parts in flight. Borrowed only between awaits.
pub struct ProgressReporter<'a, C> {
    tracker: RefCell<ProgressTracker>,
    key: RefCell<Option<String>>,
    runtime: &'a C,
    sink: &'a dyn Fn(&ProgressSnapshot, Option<&str>),
    /// On while a report is held back by the throttle.
    held: Flag,
}

impl<'a, C: Runtime> ProgressReporter<'a, C> {
    /// A reporter for `total` bytes that hands reports to `sink` (with the key, once known).
    pub fn new(total: u64, runtime: &'a C, sink: &'a dyn Fn(&ProgressSnapshot, Option<&str>)) -> Self {
        ProgressReporter {
            tracker: RefCell::new(ProgressTracker::new(total, runtime.now_ms())),
            key: RefCell::new(None),
            runtime,
            sink,
            held: Flag::default(),
        }
    }

    pub(super) fn set_key(&self, key: &str) {
        *self.key.borrow_mut() = Some(key.to_owned());
    }

    /// Parts a resumed upload finds already stored.
    pub(super) fn already_stored(&self, bytes: u64) {
        self.tracker.borrow_mut().already_stored(bytes);
        self.emit();
    }

    /// `bytes` more of the file were read and hashed.
    pub(super) fn hashed(&self, bytes: u64) {
        self.tracker.borrow_mut().hashed(bytes);
        self.emit();
    }

    pub(super) fn sending(&self, part: u32, sent: u64) {
        self.tracker.borrow_mut().sending(part, sent, self.runtime.now_ms());
        self.emit();
    }

    pub(super) fn stored(&self, part: u32, bytes: u64) {
        self.tracker.borrow_mut().stored(part, bytes, self.runtime.now_ms());
        self.emit();
    }

    /// Takes back what a failed or interrupted attempt of `part` had sent.
    pub(super) fn restart(&self, part: u32) {
        self.tracker.borrow_mut().restart(part);
    }

    /// Moves to `state` and reports it.
    pub fn set_state(&self, state: UploadState) {
        self.tracker.borrow_mut().set_state(state);
        self.emit();
    }

    fn emit(&self) {
        let report = self.tracker.borrow_mut().report(self.runtime.now_ms());
        match report {
            Some(snapshot) => {
                self.held.set(false);
                let key = self.key.borrow().clone();
                (self.sink)(&snapshot, key.as_deref());
            }
            None => self.held.set(true),
        }
    }

    /// Sends a report the throttle held back once it is due. Without this, the last figures
    /// before progress stops (a stall, a pause, a slow part) would never reach the page.
    /// Runs until dropped.
    pub(super) async fn send_held_reports(&self) -> std::convert::Infallible {
        loop {
            self.held.until(true).await;
            self.runtime.sleep(MIN_REPORT_INTERVAL_MS).await;
            if self.held.is_on() {
                self.emit();
            }
        }
    }
}

//! Progress accounting: bytes loaded, speed, time left, and how often to tell the page.
//!
//! Pure: the caller passes the current time in milliseconds, so tests drive the clock.

use std::collections::VecDeque;

/// Least time between two progress reports; the last report is never held back.
pub const MIN_REPORT_INTERVAL_MS: f64 = 100.0;
/// Speed is measured over this much recent history, so it follows changes in the link.
const SPEED_WINDOW_MS: f64 = 5_000.0;

/// Where an upload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Waiting for a request slot.
    Queued,
    /// Sending bytes.
    Uploading,
    /// Paused by the caller; nothing is sent until `resume()`.
    Paused,
    /// The browser is offline; sending continues when it is back.
    WaitingForNetwork,
    /// All bytes sent; asking the backend to assemble the object.
    Completing,
    /// Stored.
    Done,
    /// Ended with an error.
    Failed,
    /// Ended by `abort()`.
    Aborted,
}

impl UploadState {
    /// The state as JS sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Queued => "queued",
            UploadState::Uploading => "uploading",
            UploadState::Paused => "paused",
            UploadState::WaitingForNetwork => "waiting_for_network",
            UploadState::Completing => "completing",
            UploadState::Done => "done",
            UploadState::Failed => "failed",
            UploadState::Aborted => "aborted",
        }
    }
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressSnapshot {
    /// Bytes stored so far.
    pub loaded: u64,
    /// Bytes in the file.
    pub total: u64,
    /// Recent speed; 0 before anything is measured.
    pub bytes_per_second: f64,
    /// Seconds left at the recent speed; `None` while the speed is unknown.
    pub eta_seconds: Option<f64>,
    /// Life-cycle state.
    pub state: UploadState,
}

/// Tracks the bytes of one file and decides when a report is due.
#[derive(Debug)]
pub struct ProgressTracker {
    total: u64,
    loaded: u64,
    state: UploadState,
    /// `(time_ms, loaded)` samples within the speed window, oldest first.
    samples: VecDeque<(f64, u64)>,
    last_report_ms: Option<f64>,
    last_reported_state: Option<UploadState>,
}

impl ProgressTracker {
    /// A tracker for a file of `total` bytes, started at `now_ms`.
    pub fn new(total: u64, now_ms: f64) -> Self {
        ProgressTracker {
            total,
            loaded: 0,
            state: UploadState::Queued,
            samples: VecDeque::from([(now_ms, 0)]),
            last_report_ms: None,
            last_reported_state: None,
        }
    }

    /// Records `bytes` more stored at `now_ms`. `loaded` never passes `total`.
    pub fn add(&mut self, bytes: u64, now_ms: f64) {
        self.loaded = (self.loaded + bytes).min(self.total);
        self.samples.push_back((now_ms, self.loaded));
        while self.samples.len() > 2 && now_ms - self.samples[1].0 >= SPEED_WINDOW_MS {
            self.samples.pop_front();
        }
    }

    /// Moves to a new state.
    pub fn set_state(&mut self, state: UploadState) {
        self.state = state;
    }

    /// The report for `now_ms`, if one is due: the first report, a change of state (so the page
    /// sees "paused" or "done" at once), or at least [`MIN_REPORT_INTERVAL_MS`] since the last one.
    pub fn report(&mut self, now_ms: f64) -> Option<ProgressSnapshot> {
        let due = self.last_reported_state != Some(self.state)
            || self.last_report_ms.is_none_or(|last| now_ms - last >= MIN_REPORT_INTERVAL_MS);
        if !due {
            return None;
        }
        self.last_report_ms = Some(now_ms);
        self.last_reported_state = Some(self.state);
        Some(self.snapshot(now_ms))
    }

    /// The current figures, whether or not a report is due.
    pub fn snapshot(&self, now_ms: f64) -> ProgressSnapshot {
        let (t0, l0) = self.samples.front().copied().unwrap_or((now_ms, 0));
        let elapsed_s = (now_ms - t0) / 1000.0;
        let bytes_per_second = if elapsed_s > 0.0 { (self.loaded - l0) as f64 / elapsed_s } else { 0.0 };
        let remaining = (self.total - self.loaded) as f64;
        let eta_seconds = if remaining == 0.0 {
            Some(0.0)
        } else if bytes_per_second > 0.0 {
            Some(remaining / bytes_per_second)
        } else {
            None
        };
        ProgressSnapshot { loaded: self.loaded, total: self.total, bytes_per_second, eta_seconds, state: self.state }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_throttled_to_ten_a_second() {
        let mut t = ProgressTracker::new(1000, 0.0);
        t.set_state(UploadState::Uploading);
        let mut reports = 0;
        for ms in 0..1000 {
            t.add(1, f64::from(ms));
            if t.report(f64::from(ms)).is_some() {
                reports += 1;
            }
        }
        assert_eq!(reports, 10);
    }

    #[test]
    fn final_report_is_never_held_back_and_reaches_total() {
        let mut t = ProgressTracker::new(10, 0.0);
        t.set_state(UploadState::Uploading);
        assert!(t.report(0.0).is_some());
        t.add(10, 1.0);
        assert!(t.report(2.0).is_none(), "throttled inside 100 ms");
        t.set_state(UploadState::Done);
        let last = t.report(3.0).expect("end state is always reported");
        assert_eq!((last.loaded, last.total, last.state), (10, 10, UploadState::Done));
        assert_eq!(last.eta_seconds, Some(0.0));
    }

    #[test]
    fn state_changes_are_reported_at_once() {
        let mut t = ProgressTracker::new(10, 0.0);
        assert!(t.report(0.0).is_some());
        t.set_state(UploadState::Uploading);
        assert_eq!(t.report(1.0).map(|s| s.state), Some(UploadState::Uploading));
        t.set_state(UploadState::Paused);
        assert_eq!(t.report(2.0).map(|s| s.state), Some(UploadState::Paused));
        assert!(t.report(3.0).is_none(), "same state, inside 100 ms");
    }

    #[test]
    fn speed_and_eta_follow_recent_bytes() {
        let mut t = ProgressTracker::new(100 * 1000, 0.0);
        t.add(10 * 1000, 1000.0);
        let s = t.snapshot(1000.0);
        assert!((s.bytes_per_second - 10_000.0).abs() < 1e-6);
        assert!((s.eta_seconds.unwrap() - 9.0).abs() < 1e-6);
        // After a long pause the old fast sample leaves the window and speed drops.
        t.add(1000, 20_000.0);
        t.add(1000, 21_000.0);
        let s = t.snapshot(21_000.0);
        assert!(s.bytes_per_second < 2_000.0, "{}", s.bytes_per_second);
    }

    #[test]
    fn unknown_speed_gives_no_eta_and_loaded_is_capped() {
        let mut t = ProgressTracker::new(5, 0.0);
        assert_eq!(t.snapshot(0.0).eta_seconds, None);
        t.add(9, 10.0);
        assert_eq!(t.snapshot(10.0).loaded, 5);
    }
}

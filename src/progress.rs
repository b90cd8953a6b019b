//! Progress accounting: bytes loaded, speed, time left, and how often to tell the page.
//!
//! Pure: the caller passes the current time in milliseconds, so tests drive the clock.

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
    /// A request failed and is sent again after a wait.
    Retrying,
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
            UploadState::Retrying => "retrying",
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
    /// Bytes stored, plus bytes of parts on their way (with a transport that reports them).
    pub loaded: u64,
    /// Bytes in the file.
    pub total: u64,
    /// Recent speed; 0 before anything is measured.
    pub bytes_per_second: f64,
    /// Seconds left at the recent speed; `None` while the speed is unknown.
    pub eta_seconds: Option<f64>,
    /// Life-cycle state.
    pub state: UploadState,
    /// `loaded` went back since the last report: a part's attempt failed or was interrupted,
    /// and its bytes will be sent again.
    pub restarted: bool,
    /// Bytes read and checksummed so far (0 without checksums). Hashing runs ahead of sending,
    /// so while it is the slower of the two, this is what moves.
    pub hashed: u64,
}

/// Tracks the bytes of one file and decides when a report is due.
#[derive(Debug)]
pub struct ProgressTracker {
    total: u64,
    /// Bytes of stored parts.
    stored: u64,
    /// Bytes sent so far by each part's current attempt.
    in_flight: Vec<(u32, u64)>,
    /// Every byte put on the wire (retries included): what speed is measured from.
    transferred: u64,
    /// Set when in-flight bytes were dropped; cleared by the next report.
    restarted: bool,
    /// Bytes checksummed.
    hashed: u64,
    state: UploadState,
    /// `(time_ms, transferred)` samples within the speed window, oldest first.
    samples: Vec<(f64, u64)>,
    last_report_ms: Option<f64>,
    last_reported_state: Option<UploadState>,
}

impl ProgressTracker {
    /// A tracker for a file of `total` bytes, started at `now_ms`.
    pub fn new(total: u64, now_ms: f64) -> Self {
        ProgressTracker {
            total,
            stored: 0,
            in_flight: Vec::new(),
            transferred: 0,
            restarted: false,
            hashed: 0,
            state: UploadState::Queued,
            samples: vec![(now_ms, 0)],
            last_report_ms: None,
            last_reported_state: None,
        }
    }

    /// Counts parts stored before this page's upload began (a resumed upload). They are not
    /// part of the speed.
    pub fn already_stored(&mut self, bytes: u64) {
        self.stored += bytes;
    }

    /// Records `bytes` more read and checksummed.
    pub fn hashed(&mut self, bytes: u64) {
        self.hashed += bytes;
    }

    /// Forgets part `part`'s bytes on their way; what they were. (A few parts at a time: a
    /// `Vec` serves.)
    fn take_in_flight(&mut self, part: u32) -> Option<u64> {
        let at = self.in_flight.iter().position(|(p, _)| *p == part)?;
        Some(self.in_flight.swap_remove(at).1)
    }

    /// Records that part `part`'s current attempt has sent `sent` bytes.
    pub fn sending(&mut self, part: u32, sent: u64, now_ms: f64) {
        let before = self.take_in_flight(part).unwrap_or(0);
        self.in_flight.push((part, sent));
        self.count_transfer(sent.saturating_sub(before), now_ms);
    }

    /// Records part `part` stored, `bytes` long.
    pub fn stored(&mut self, part: u32, bytes: u64, now_ms: f64) {
        let counted = self.take_in_flight(part).unwrap_or(0);
        self.stored += bytes;
        self.count_transfer(bytes.saturating_sub(counted), now_ms);
    }

    /// Drops what part `part`'s failed or interrupted attempt had sent: `loaded` goes back, and
    /// the next report says so.
    pub fn restart(&mut self, part: u32) {
        if self.take_in_flight(part).is_some_and(|sent| sent > 0) {
            self.restarted = true;
        }
    }

    fn count_transfer(&mut self, bytes: u64, now_ms: f64) {
        self.transferred += bytes;
        self.samples.push((now_ms, self.transferred));
        // Drop the oldest while the next one still starts a full window (at least 2 kept).
        let stale = self.samples[1..].iter().take_while(|(t, _)| now_ms - t >= SPEED_WINDOW_MS).count();
        self.samples.drain(..stale.min(self.samples.len() - 2));
    }

    /// Stored plus in-flight bytes, never past `total`.
    fn loaded(&self) -> u64 {
        (self.stored + self.in_flight.iter().map(|(_, sent)| sent).sum::<u64>()).min(self.total)
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
        let snapshot = self.snapshot(now_ms);
        self.restarted = false;
        Some(snapshot)
    }

    /// The current figures, whether or not a report is due.
    pub fn snapshot(&self, now_ms: f64) -> ProgressSnapshot {
        let (t0, sent0) = self.samples.first().copied().unwrap_or((now_ms, 0));
        let elapsed_s = (now_ms - t0) / 1000.0;
        let bytes_per_second = if elapsed_s > 0.0 { (self.transferred - sent0) as f64 / elapsed_s } else { 0.0 };
        let loaded = self.loaded();
        let remaining = (self.total - loaded) as f64;
        let eta_seconds = if remaining == 0.0 {
            Some(0.0)
        } else if bytes_per_second > 0.0 {
            Some(remaining / bytes_per_second)
        } else {
            None
        };
        ProgressSnapshot {
            loaded,
            total: self.total,
            bytes_per_second,
            eta_seconds,
            state: self.state,
            restarted: self.restarted,
            hashed: self.hashed.min(self.total),
        }
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
            t.stored(ms, 1, f64::from(ms));
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
        t.stored(1, 10, 1.0);
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
        t.stored(1, 10 * 1000, 1000.0);
        let s = t.snapshot(1000.0);
        assert!((s.bytes_per_second - 10_000.0).abs() < 1e-6);
        assert!((s.eta_seconds.unwrap() - 9.0).abs() < 1e-6);
        // After a long pause the old fast sample leaves the window and speed drops.
        t.stored(2, 1000, 20_000.0);
        t.stored(3, 1000, 21_000.0);
        let s = t.snapshot(21_000.0);
        assert!(s.bytes_per_second < 2_000.0, "{}", s.bytes_per_second);
    }

    #[test]
    fn bytes_in_flight_count_and_a_restart_takes_them_back_and_says_so() {
        let mut t = ProgressTracker::new(100, 0.0);
        t.sending(1, 30, 1.0);
        t.sending(2, 20, 2.0);
        assert_eq!(t.report(2.0).map(|s| (s.loaded, s.restarted)), Some((50, false)));
        t.restart(2); // part 2's attempt failed: its 20 bytes will be sent again
        let s = t.report(200.0).unwrap();
        assert_eq!((s.loaded, s.restarted), (30, true));
        assert!(!t.report(400.0).unwrap().restarted, "said once");
        t.stored(1, 60, 500.0);
        t.sending(2, 40, 600.0);
        t.stored(2, 40, 700.0);
        assert_eq!(t.report(800.0).map(|s| s.loaded), Some(100));
        // Speed counts every byte put on the wire, the retried 20 too: 30 + 20 + 30 + 40.
        assert!((t.snapshot(1000.0).bytes_per_second - 120.0).abs() < 1e-9);
    }

    #[test]
    fn resumed_bytes_count_as_loaded_but_not_as_speed() {
        let mut t = ProgressTracker::new(100, 0.0);
        t.already_stored(50);
        let s = t.snapshot(1000.0);
        assert_eq!((s.loaded, s.bytes_per_second), (50, 0.0));
    }

    #[test]
    fn hashing_is_reported_apart_from_sending() {
        let mut t = ProgressTracker::new(100, 0.0);
        t.hashed(60);
        let s = t.snapshot(10.0);
        assert_eq!((s.hashed, s.loaded, s.bytes_per_second), (60, 0, 0.0));
    }

    #[test]
    fn unknown_speed_gives_no_eta_and_loaded_is_capped() {
        let mut t = ProgressTracker::new(5, 0.0);
        assert_eq!(t.snapshot(0.0).eta_seconds, None);
        t.stored(1, 9, 10.0);
        assert_eq!(t.snapshot(10.0).loaded, 5);
    }
}

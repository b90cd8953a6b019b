//! Retry policy: which failures are tried again, how long to wait, and when to give up.
//!
//! Pure. The edges record what they saw of a failure ([`Observed`]: no answer, a status and S3
//! error code) in the error; the retry loop judges it once, here, in [`classify`], never from
//! message text. Waits are decorrelated jitter with an injected random source, so tests are
//! deterministic.

/// What to do about a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Permanent: report it.
    Fail,
    /// Transient: wait and send the same request again.
    Backoff,
    /// The presigned URL expired: get a new one, then send again (after a short wait).
    Resign,
    /// No answer from a store that has never answered: most likely its CORS rule refuses the
    /// page, which the browser does not tell apart from a network failure. Wait and send again,
    /// but for [`NEVER_ANSWERED_BOUND_S`] only.
    BackoffBriefly,
}

/// How long a request to a store that has never answered is retried before it fails with the
/// CORS explanation, rather than the whole retry budget (minutes) of a request to a store known
/// to be reachable. Time offline does not count.
pub const NEVER_ANSWERED_BOUND_S: u32 = 3;

/// What the edge saw of a failed request, kept in the error for the retry loop to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// No answer: connection refused or reset, DNS, CORS, offline.
    Network,
    /// No answer from a store that has not answered any request of this uploader yet.
    NeverAnswered,
    /// No answer within the time allowed.
    TimedOut,
    /// An HTTP answer with this status and, for S3 XML errors, its `<Code>`. `expired` says the
    /// request is known to have expired without reading any message: S3's answer to an expired
    /// URL carries an `<Expires>` element, or the URL's own `X-Amz-Date` and `X-Amz-Expires`
    /// have run out.
    Status {
        /// The HTTP status.
        status: u16,
        /// S3's error code.
        code: Option<String>,
        /// Known to have expired.
        expired: bool,
    },
    /// The store refused what the page signed with (its credentials, or its clock), and the
    /// signer learnt from the refusal (new credentials, the store's time): signing again helps.
    SignerLearnt,
}

impl Observed {
    /// An HTTP answer without an S3 error code (a backend's).
    pub fn status(status: u16) -> Observed {
        Observed::Status { status, code: None, expired: false }
    }
}

/// S3's error codes that say the credentials or the request expired.
const EXPIRY_CODES: [&str; 3] = ["ExpiredToken", "TokenRefreshRequired", "RequestExpired"];

/// Decides what to do about a failure (nothing observed: it is not a request's, and permanent),
/// from status and S3 error code alone. Network failures (briefly only, from a store that has
/// never answered),
/// time-outs, 5xx, 429 (and S3's `SlowDown`) and 408 are transient, and so is `BadDigest` (the
/// bytes changed on the way: send them again); an expiry code, or an `AccessDenied` for a
/// request known to have expired, means re-signing; every other 4xx is permanent.
pub fn classify(observed: Option<&Observed>) -> RetryAction {
    let Some(observed) = observed else { return RetryAction::Fail };
    match observed {
        Observed::Network | Observed::TimedOut => RetryAction::Backoff,
        Observed::NeverAnswered => RetryAction::BackoffBriefly,
        Observed::SignerLearnt => RetryAction::Resign,
        Observed::Status { status, code, expired } => {
            let code = code.as_deref();
            match status {
                _ if code.is_some_and(|c| EXPIRY_CODES.contains(&c)) => RetryAction::Resign,
                403 if *expired && matches!(code, Some("AccessDenied") | None) => RetryAction::Resign,
                408 | 429 | 500..=599 => RetryAction::Backoff,
                _ if matches!(code, Some("SlowDown" | "RequestTimeout" | "BadDigest")) => RetryAction::Backoff,
                _ => RetryAction::Fail,
            }
        }
    }
}

/// Whether a failure asks for fewer requests at once: the store's throttling (503, 429,
/// `SlowDown`) or a request that stalled. The request budget halves on it.
pub fn asks_to_slow_down(observed: Option<&Observed>) -> bool {
    match observed {
        Some(Observed::TimedOut) => true,
        Some(Observed::Status { status, code, .. }) => {
            matches!(status, 429 | 503) || code.as_deref() == Some("SlowDown")
        }
        _ => false,
    }
}

/// How hard to try. Defaults follow object_store's proven ones, with a shorter time bound that
/// stays well inside the usual presigned-URL lifetime (15 min to 1 h).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Most retries of one request (after the first attempt). Default 10: rides out a few
    /// minutes of flakiness without retrying a dead link forever.
    pub max_retries: u32,
    /// Give up retrying one request after this long since its first attempt. Default 3 min.
    pub retry_timeout_ms: f64,
    /// First wait. Default 100 ms: a blip costs almost nothing.
    pub initial_backoff_ms: f64,
    /// Longest wait. Default 15 s: a store asking to slow down gets room.
    pub max_backoff_ms: f64,
    /// Growth factor of the wait. Default 3, as in AWS's decorrelated jitter: with 2, ten
    /// instant failures (connection refused) could use every retry inside a 2-second outage.
    pub base: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            retry_timeout_ms: 180_000.0,
            initial_backoff_ms: 100.0,
            max_backoff_ms: 15_000.0,
            base: 3.0,
        }
    }
}

/// The waits of one request's retries: decorrelated jitter, each wait drawn between the initial
/// wait and `base` times the previous one, capped.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    previous_ms: f64,
    retries: u32,
    started_ms: f64,
}

impl Backoff {
    /// The retries of a request first sent at `now_ms`.
    pub fn new(policy: RetryPolicy, now_ms: f64) -> Self {
        Backoff { policy, previous_ms: policy.initial_backoff_ms, retries: 0, started_ms: now_ms }
    }

    /// The wait before the next retry, or `None` when the count or the time is used up.
    /// `random` is uniform in `[0, 1)`.
    pub fn next_wait(&mut self, now_ms: f64, random: f64) -> Option<f64> {
        if self.retries >= self.policy.max_retries {
            return None;
        }
        let low = self.policy.initial_backoff_ms;
        let high = (self.previous_ms * self.policy.base).max(low);
        let wait = (low + (high - low) * random).min(self.policy.max_backoff_ms);
        if now_ms + wait - self.started_ms > self.policy.retry_timeout_ms {
            return None;
        }
        self.previous_ms = wait;
        self.retries += 1;
        Some(wait)
    }

    /// Retries so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&'static str>, expired: bool) -> RetryAction {
        classify(Some(&Observed::Status { status, code: code.map(str::to_owned), expired }))
    }

    #[test]
    fn transient_failures_back_off_and_permanent_ones_fail() {
        assert_eq!(classify(Some(&Observed::Network)), RetryAction::Backoff);
        assert_eq!(classify(Some(&Observed::NeverAnswered)), RetryAction::BackoffBriefly);
        assert_eq!(classify(Some(&Observed::TimedOut)), RetryAction::Backoff);
        assert_eq!(classify(None), RetryAction::Fail, "not a request's failure");
        assert_eq!(classify(Some(&Observed::SignerLearnt)), RetryAction::Resign);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(status(s, None, false), RetryAction::Backoff, "{s}");
        }
        assert_eq!(status(503, Some("SlowDown"), false), RetryAction::Backoff);
        for s in [400, 401, 403, 404, 405, 411, 413] {
            assert_eq!(status(s, None, false), RetryAction::Fail, "{s}");
        }
        assert_eq!(status(403, Some("SignatureDoesNotMatch"), false), RetryAction::Fail);
        // A checksum mismatch means corruption on the way: the part is sent again.
        assert_eq!(status(400, Some("BadDigest"), false), RetryAction::Backoff);
        assert_eq!(status(400, Some("InvalidDigest"), false), RetryAction::Fail);
    }

    #[test]
    fn expired_urls_are_resigned_as_codes_and_expiry_say_not_messages() {
        assert_eq!(status(403, Some("AccessDenied"), true), RetryAction::Resign);
        for code in EXPIRY_CODES {
            assert_eq!(status(400, Some(code), false), RetryAction::Resign, "{code}");
        }
        assert_eq!(status(403, Some("AccessDenied"), false), RetryAction::Fail, "denied, not expired");
        assert_eq!(status(403, Some("SignatureDoesNotMatch"), true), RetryAction::Fail);
    }

    #[test]
    fn waits_grow_with_jitter_and_stay_within_bounds() {
        let policy = RetryPolicy::default();
        let mut b = Backoff::new(policy, 0.0);
        assert_eq!(b.next_wait(0.0, 0.0), Some(100.0), "lowest draw is the initial wait");
        let mut b = Backoff::new(policy, 0.0);
        let waits: Vec<f64> = (0..8).map(|_| b.next_wait(0.0, 0.999_999).unwrap()).collect();
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert!(waits.iter().all(|&w| (100.0..=15_000.0).contains(&w)), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), 15_000.0, "capped");
    }

    #[test]
    fn default_retries_outlast_a_short_outage_of_instant_failures() {
        // Median draws: ten retries of a request that fails at once wait well over 10 s in all.
        let mut b = Backoff::new(RetryPolicy::default(), 0.0);
        let total: f64 = (0..10).map(|_| b.next_wait(0.0, 0.5).unwrap()).sum();
        assert!(total > 10_000.0, "{total}");
    }

    #[test]
    fn retries_stop_at_the_count() {
        let policy = RetryPolicy { max_retries: 3, ..RetryPolicy::default() };
        let mut b = Backoff::new(policy, 0.0);
        let n = (0..10).filter_map(|_| b.next_wait(0.0, 0.5)).count();
        assert_eq!((n, b.retries()), (3, 3));
    }

    #[test]
    fn retries_stop_at_the_time_bound() {
        let policy = RetryPolicy { retry_timeout_ms: 1_000.0, ..RetryPolicy::default() };
        let mut b = Backoff::new(policy, 0.0);
        assert!(b.next_wait(500.0, 0.0).is_some());
        assert_eq!(b.next_wait(950.0, 0.0), None, "the wait would end past the bound");
    }
}

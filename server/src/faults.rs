//! Fault injection for the embedded store, mounted only with `--test-hooks`: part PUTs answered
//! with the failures real stores and networks produce, and counts of what reached the store.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A failure to answer a part PUT with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Fault {
    /// 500 `InternalError`.
    #[serde(rename = "500")]
    InternalError,
    /// 503 `SlowDown`, S3's throttling answer.
    #[serde(rename = "slowdown")]
    SlowDown,
    /// The connection is dropped while the body is being received.
    #[serde(rename = "reset")]
    Reset,
    /// No answer for `stallMs`.
    #[serde(rename = "stall")]
    Stall,
    /// 403 `AccessDenied` "Request has expired", as for a presigned URL past its expiry.
    #[serde(rename = "expired")]
    Expired,
    /// One byte of the body is flipped on its way to the store, which stores whatever its
    /// checks let through: a checksum turns it into a 400 `BadDigest`.
    #[serde(rename = "corrupt")]
    Corrupt,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::InternalError => "500",
            Fault::SlowDown => "slowdown",
            Fault::Reset => "reset",
            Fault::Stall => "stall",
            Fault::Expired => "expired",
            Fault::Corrupt => "corrupt",
        }
    }
}

/// What to inject, as the tests post it to `/__test/faults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultPlan {
    /// Share of part PUTs that fail at random, 0 to 1 (ignored with `every`).
    #[serde(default)]
    pub rate: f64,
    /// Fail exactly every `every`-th part PUT instead, cycling through `kinds`: a fixed share
    /// with every kind represented.
    #[serde(default)]
    pub every: Option<u32>,
    /// Failures to choose from, uniformly.
    pub kinds: Vec<Fault>,
    /// Inject no more than this many (none: no limit).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Let the first `skip` part PUTs through untouched.
    #[serde(default)]
    pub skip: u32,
    /// How long a stalled request waits before the store gives up on it.
    #[serde(default = "default_stall_ms")]
    pub stall_ms: u64,
    /// Seed of the dice, so a run can be repeated.
    #[serde(default)]
    pub seed: u64,
    /// Part PUTs beyond this many in flight at once are answered 503 `SlowDown`, as a store
    /// that throttles does (whatever `kinds` says).
    #[serde(default)]
    pub slow_down_above: Option<u32>,
}

fn default_stall_ms() -> u64 {
    60_000
}

#[derive(Default)]
struct State {
    plan: Option<FaultPlan>,
    rng: Option<StdRng>,
    injected: BTreeMap<&'static str, u32>,
    /// Part PUTs the store accepted (2xx), by upload id.
    stored_parts: HashMap<String, u32>,
    /// Part PUTs that arrived at the store, by upload id.
    part_requests: HashMap<String, u32>,
    /// Part PUTs the store is receiving or answering now.
    in_flight: u32,
    /// Connections refused by a store restart, and when the store came back.
    restarts: u32,
    down_until: Option<Instant>,
}

/// The shared fault switchboard of one server.
#[derive(Default)]
pub struct Faults(Mutex<State>);

impl Faults {
    /// Replaces the plan (or clears it with `None`) and zeroes the counts.
    pub fn configure(&self, plan: Option<FaultPlan>) {
        let mut state = self.0.lock().expect("lock");
        let seed = plan.as_ref().map_or(0, |p| p.seed);
        *state = State { plan, rng: Some(StdRng::seed_from_u64(seed)), ..State::default() };
    }

    /// Decides the fate of a part PUT of `upload_id`: a fault, or `None` to let it through.
    /// Every call is to be followed by [`Faults::on_part_done`] once it is answered.
    pub fn on_part_request(&self, upload_id: &str) -> Option<(Fault, Duration)> {
        let mut state = self.0.lock().expect("lock");
        *state.part_requests.entry(upload_id.to_owned()).or_default() += 1;
        state.in_flight += 1;
        let plan = state.plan.clone()?;
        if plan.slow_down_above.is_some_and(|most| state.in_flight > most) {
            *state.injected.entry(Fault::SlowDown.name()).or_default() += 1;
            return Some((Fault::SlowDown, Duration::ZERO));
        }
        let injected: u32 = state.injected.values().sum();
        let requests: u32 = state.part_requests.values().sum();
        if requests <= plan.skip {
            return None;
        }
        if plan.kinds.is_empty() || plan.limit.is_some_and(|limit| injected >= limit) {
            return None;
        }
        let fault = match plan.every {
            Some(every) => {
                if every == 0 || !(requests - plan.skip).is_multiple_of(every) {
                    return None;
                }
                plan.kinds[injected as usize % plan.kinds.len()]
            }
            None => {
                let rng = state.rng.get_or_insert_with(|| StdRng::seed_from_u64(plan.seed));
                if !rng.random_bool(plan.rate.clamp(0.0, 1.0)) {
                    return None;
                }
                plan.kinds[rng.random_range(0..plan.kinds.len())]
            }
        };
        *state.injected.entry(fault.name()).or_default() += 1;
        Some((fault, Duration::from_millis(plan.stall_ms)))
    }

    /// A part PUT was answered.
    pub fn on_part_done(&self) {
        let mut state = self.0.lock().expect("lock");
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    /// Counts a part the store accepted.
    pub fn on_part_stored(&self, upload_id: &str) {
        *self.0.lock().expect("lock").stored_parts.entry(upload_id.to_owned()).or_default() += 1;
    }

    /// Notes a store restart that keeps it down for `down`.
    pub fn on_restart(&self, down: Duration) {
        let mut state = self.0.lock().expect("lock");
        state.restarts += 1;
        state.down_until = Some(Instant::now() + down);
    }

    /// The counts, for `GET /__test/faults`.
    pub fn report(&self) -> Value {
        let state = self.0.lock().expect("lock");
        json!({
            "injected": state.injected,
            "storedParts": state.stored_parts,
            "partRequests": state.part_requests,
            "restarts": state.restarts,
        })
    }
}

/// The S3 error body and status of a fault that answers for the store.
pub fn answer(fault: Fault) -> Option<(u16, &'static str)> {
    match fault {
        Fault::InternalError => Some((
            500,
            "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>",
        )),
        Fault::SlowDown => {
            Some((503, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"))
        }
        // As S3 answers an expired presigned URL: with the expiry and the server's time.
        Fault::Expired => Some((
            403,
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>900</X-Amz-Expires><Expires>2026-01-01T00:15:00Z</Expires><ServerTime>2026-01-01T00:20:00Z</ServerTime></Error>",
        )),
        Fault::Stall => Some((503, "<Error><Code>RequestTimeout</Code><Message>Stalled on purpose.</Message></Error>")),
        Fault::Reset | Fault::Corrupt => None,
    }
}

//! The uploader-wide request budget: how many requests to the store may be in flight at once,
//! adapted to the store as TCP adapts to a link (AIMD). A request the store asks to slow down
//! (503 `SlowDown`, 429) or that stalls halves the budget, once per round of requests; a
//! budget's worth of successes grows it by one; it stays between 1 and the `concurrency` option.
//! Places go to the waiting request of the highest priority first. Beside it, the [`Pacer`]
//! holds the uploader to a bandwidth cap.

use crate::error::UploadError;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// How many store requests may be in flight, now.
#[derive(Debug)]
pub struct Budget {
    /// The `concurrency` option: never more.
    most: usize,
    limit: Cell<usize>,
    in_flight: Cell<usize>,
    /// Successes since the budget last changed.
    successes: Cell<usize>,
    /// Counts decreases: a request started before the last one cannot decrease it again (its
    /// refusal belongs to the round that was already answered).
    round: Cell<u64>,
    /// The requests waiting for a place, in the order they get one: higher priorities first,
    /// then first come. Only the first is woken when a place may be free: with thousands of
    /// files queued, waking every waiter on each release kept the page busy for seconds.
    queue: RefCell<Vec<Waiting>>,
    tickets: Cell<u64>,
}

/// A request waiting for a place.
#[derive(Debug)]
struct Waiting {
    priority: i32,
    ticket: u64,
    waker: Option<Waker>,
}

/// One request's place in the budget, given back when dropped.
pub struct Slot<'a> {
    budget: &'a Budget,
    round: u64,
}

impl Budget {
    /// A budget of `most` requests (at least 1), which it starts at.
    pub fn new(most: usize) -> Self {
        let most = most.max(1);
        Budget {
            most,
            limit: Cell::new(most),
            in_flight: Cell::new(0),
            successes: Cell::new(0),
            round: Cell::new(0),
            queue: RefCell::default(),
            tickets: Cell::new(0),
        }
    }

    /// The budget now.
    pub fn limit(&self) -> usize {
        self.limit.get()
    }

    /// Waits for a place, behind every waiting request of a higher `priority` (and those of the
    /// same priority that came first), and takes it.
    pub async fn acquire(&self, priority: i32) -> Slot<'_> {
        let ticket = self.tickets.get();
        self.tickets.set(ticket + 1);
        {
            let mut queue = self.queue.borrow_mut();
            let at = queue.iter().position(|w| w.priority < priority).unwrap_or(queue.len());
            queue.insert(at, Waiting { priority, ticket, waker: None });
        }
        let queued = Queued { budget: self, ticket };
        poll_fn(|cx| {
            let mut queue = self.queue.borrow_mut();
            if queue[0].ticket == ticket && self.in_flight.get() < self.limit.get() {
                queue.remove(0);
                return Poll::Ready(());
            }
            if let Some(waiting) = queue.iter_mut().find(|w| w.ticket == ticket) {
                waiting.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        std::mem::forget(queued); // out of the queue already
        self.in_flight.set(self.in_flight.get() + 1);
        self.wake_first(); // a place may be left for the next
        Slot { budget: self, round: self.round.get() }
    }

    /// Wakes the first waiting request if a place is free.
    fn wake_first(&self) {
        if self.in_flight.get() < self.limit.get()
            && let Some(waker) = self.queue.borrow_mut().first_mut().and_then(|w| w.waker.take())
        {
            waker.wake();
        }
    }
}

/// A request's place in the queue, left when it gives up waiting (its future is dropped).
struct Queued<'a> {
    budget: &'a Budget,
    ticket: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut queue = self.budget.queue.borrow_mut();
        if let Some(at) = queue.iter().position(|w| w.ticket == self.ticket) {
            queue.remove(at);
        }
        drop(queue);
        // The next request may be first now.
        self.budget.wake_first();
    }
}

/// Holds an uploader to `maxBytesPerSecond` on average: each request's bytes are booked on a
/// timeline running at the cap, after those of the requests before it, and the request starts
/// when its booking begins, so the bytes sent by any time exceed the cap's worth by one request
/// at most.
#[derive(Debug, Default)]
pub struct Pacer {
    bytes_per_second: Option<f64>,
    /// Where the timeline's bookings end (ms, the runtime's clock).
    booked_until_ms: Cell<f64>,
}

impl Pacer {
    /// A pacer for `bytes_per_second`, `None` for no cap.
    pub fn new(bytes_per_second: Option<u64>) -> Self {
        Pacer { bytes_per_second: bytes_per_second.map(|b| b as f64), booked_until_ms: Cell::new(0.0) }
    }

    /// Books `bytes` at `now_ms`: how long to wait before sending them.
    pub fn book(&self, bytes: u64, now_ms: f64) -> f64 {
        let Some(rate) = self.bytes_per_second else { return 0.0 };
        let starts = self.booked_until_ms.get().max(now_ms);
        self.booked_until_ms.set(starts + bytes as f64 / rate * 1000.0);
        starts - now_ms
    }
}

impl Slot<'_> {
    /// Adapts the budget to how the request ended.
    pub fn learn<T>(&self, outcome: &Result<T, UploadError>) {
        match outcome {
            Ok(_) => self.succeeded(),
            Err(error) if error.asks_to_slow_down() => self.slowed_down(),
            Err(_) => {}
        }
    }

    /// The request succeeded: after as many successes as the budget, it grows by one.
    pub fn succeeded(&self) {
        let budget = self.budget;
        let successes = budget.successes.get() + 1;
        if successes < budget.limit.get() {
            budget.successes.set(successes);
            return;
        }
        budget.successes.set(0);
        if budget.limit.get() < budget.most {
            budget.limit.set(budget.limit.get() + 1);
            budget.wake_first();
        }
    }

    /// The store asked to slow down, or the request stalled: the budget halves, unless a request
    /// of the same round halved it already.
    pub fn slowed_down(&self) {
        let budget = self.budget;
        if self.round == budget.round.get() {
            budget.round.set(self.round + 1);
            budget.limit.set((budget.limit.get() / 2).max(1));
            budget.successes.set(0);
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.budget.in_flight.set(self.budget.in_flight.get() - 1);
        self.budget.wake_first();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn the_pacer_books_bytes_at_the_cap() {
        let pacer = Pacer::new(Some(1000));
        assert_eq!(pacer.book(500, 0.0), 0.0, "the first request goes at once");
        assert_eq!(pacer.book(1000, 100.0), 400.0, "the next once the first's half second is over");
        assert_eq!(pacer.book(1000, 200.0), 1300.0, "and the one after it a second later");
        assert_eq!(pacer.book(1000, 10_000.0), 0.0, "an idle pacer saves nothing up");
        assert_eq!(pacer.book(1, 10_000.0), 1000.0);
        assert_eq!(Pacer::new(None).book(u64::MAX, 0.0), 0.0);
    }

    #[test]
    fn places_go_to_the_highest_priority_waiting() {
        use futures::FutureExt;
        let budget = Budget::new(1);
        let held = block_on(budget.acquire(0));
        let mut low = Box::pin(budget.acquire(0));
        let mut high = Box::pin(budget.acquire(5));
        assert!(low.as_mut().now_or_never().is_none() && high.as_mut().now_or_never().is_none());
        drop(held);
        assert!(low.as_mut().now_or_never().is_none(), "the low priority waits behind the high one");
        let high_slot = high.as_mut().now_or_never().expect("the high priority goes first");
        drop(high_slot);
        assert!(low.as_mut().now_or_never().is_some(), "then the low one");
    }

    #[test]
    fn a_free_place_wakes_the_first_waiting_request_only() {
        use futures::FutureExt;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{Context, Wake};
        struct Counting(AtomicUsize);
        impl Wake for Counting {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let budget = Budget::new(1);
        let held = block_on(budget.acquire(0));
        let woken = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut waiting: Vec<_> = (0..1000).map(|_| Box::pin(budget.acquire(0))).collect();
        for request in &mut waiting {
            assert!(request.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        }
        drop(held);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "one wake for one free place, not a thousand");
        let first = waiting[0].as_mut().now_or_never().expect("the first come gets it");
        assert!(waiting[1].as_mut().now_or_never().is_none(), "the next waits");
        drop(first);
        drop(waiting.remove(1)); // a request that gives up leaves the queue
        assert!(waiting[1].as_mut().now_or_never().is_some(), "and the one after it goes next");
    }

    #[test]
    fn the_budget_halves_once_per_round_and_grows_back_one_by_one() {
        let budget = Budget::new(8);
        let slots: Vec<_> = (0..8).map(|_| block_on(budget.acquire(0))).collect();
        for slot in &slots {
            slot.slowed_down(); // a whole round refused: one halving, not eight
        }
        assert_eq!(budget.limit(), 4);
        drop(slots);
        let later = block_on(budget.acquire(0));
        later.slowed_down();
        assert_eq!(budget.limit(), 2, "a request of the next round halves it again");
        drop(later);
        for _ in 0..2 + 3 {
            block_on(budget.acquire(0)).succeeded();
        }
        assert_eq!(budget.limit(), 4, "2 successes grow it to 3, 3 more to 4");
        for _ in 0..100 {
            block_on(budget.acquire(0)).succeeded();
        }
        assert_eq!(budget.limit(), 8, "never above the concurrency option");
        let floor = Budget::new(1);
        block_on(floor.acquire(0)).slowed_down();
        assert_eq!(floor.limit(), 1, "never below one");
    }
}

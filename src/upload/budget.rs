//! The uploader-wide request budget: how many requests to the store may be in flight at once,
//! adapted to the store as TCP adapts to a link (AIMD). A request the store asks to slow down
//! (503 `SlowDown`, 429) or that stalls halves the budget, once per round of requests; a
//! budget's worth of successes grows it by one; it stays between 1 and the `concurrency` option.

use super::wait::Waiters;
use crate::error::UploadError;
use std::cell::Cell;

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
    waiting: Waiters,
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
            waiting: Waiters::default(),
        }
    }

    /// The budget now.
    pub fn limit(&self) -> usize {
        self.limit.get()
    }

    /// Waits for a place, and takes it.
    pub async fn acquire(&self) -> Slot<'_> {
        self.waiting.until(|| self.in_flight.get() < self.limit.get()).await;
        self.in_flight.set(self.in_flight.get() + 1);
        Slot { budget: self, round: self.round.get() }
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
            budget.waiting.wake_all();
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
        self.budget.waiting.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn the_budget_halves_once_per_round_and_grows_back_one_by_one() {
        let budget = Budget::new(8);
        let slots: Vec<_> = (0..8).map(|_| block_on(budget.acquire())).collect();
        for slot in &slots {
            slot.slowed_down(); // a whole round refused: one halving, not eight
        }
        assert_eq!(budget.limit(), 4);
        drop(slots);
        let later = block_on(budget.acquire());
        later.slowed_down();
        assert_eq!(budget.limit(), 2, "a request of the next round halves it again");
        drop(later);
        for _ in 0..2 + 3 {
            block_on(budget.acquire()).succeeded();
        }
        assert_eq!(budget.limit(), 4, "2 successes grow it to 3, 3 more to 4");
        for _ in 0..100 {
            block_on(budget.acquire()).succeeded();
        }
        assert_eq!(budget.limit(), 8, "never above the concurrency option");
        let floor = Budget::new(1);
        block_on(floor.acquire()).slowed_down();
        assert_eq!(floor.limit(), 1, "never below one");
    }
}

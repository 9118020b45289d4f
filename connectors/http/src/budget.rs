//! A request-rate budget: at most `limit` requests in any sliding window of `window`.
//!
//! Why a sliding window and not a token bucket: Business Central counts 6,000 requests per
//! five-minute *sliding* window per user, and a token bucket of the same size lets twice that
//! through in a window (a full bucket, then the refill). Keeping the send times of the last
//! `limit` requests is exact, and small (6,000 instants is under 100 KiB).
//!
//! One budget belongs to one connection (one principal), and every run using that connection
//! draws on it, so scheduled and event-driven work in `serve` share it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The sliding-window budget of one connection.
#[derive(Debug)]
pub struct RequestBudget {
    limit: usize,
    window: Duration,
    /// When each of the last (at most `limit`) requests was let through, oldest first.
    sent: Mutex<VecDeque<Instant>>,
}

impl RequestBudget {
    pub fn new(limit: usize, window: Duration) -> Self {
        RequestBudget { limit: limit.max(1), window, sent: Mutex::new(VecDeque::new()) }
    }

    /// Waits until one more request fits in the window, and counts it. Waiters are served in
    /// order (the lock is fair), so a long wait cannot starve one run for another.
    pub async fn acquire(&self) {
        let mut sent = self.sent.lock().await;
        loop {
            let now = Instant::now();
            while sent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                sent.pop_front();
            }
            if sent.len() < self.limit {
                sent.push_back(now);
                return;
            }
            let oldest = *sent.front().expect("the window is full, so not empty");
            tracing::debug!(
                wait_ms = (oldest + self.window - now).as_millis() as u64,
                "Request budget spent; waiting."
            );
            tokio::time::sleep_until(oldest + self.window).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_window_holds_more_than_the_limit() {
        let budget = RequestBudget::new(3, Duration::from_millis(300));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            budget.acquire().await;
            times.push(start.elapsed());
        }
        // Three at once, the next three one window later, the seventh two windows later.
        assert!(times[2] < Duration::from_millis(100), "{times:?}");
        assert!(times[3] >= Duration::from_millis(300), "{times:?}");
        assert!(times[5] < Duration::from_millis(500), "{times:?}");
        assert!(times[6] >= Duration::from_millis(600), "{times:?}");
        for (i, t) in times.iter().enumerate().skip(3) {
            assert!(
                *t >= times[i - 3] + Duration::from_millis(300),
                "request {i} shares a window with 3 others: {times:?}"
            );
        }
    }
}

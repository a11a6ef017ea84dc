//! What `/healthz` and `/readyz` answer from: a few flags the stages and the Kafka clients'
//! callbacks keep up to date. Liveness asks "is the consume loop turning?"; readiness asks "can
//! this instance do its job now?" (model loaded, partitions assigned, brokers reachable, outputs
//! being acknowledged).
//!
//! The sink: while the producer holds outputs and the broker acknowledges none of them (a
//! refusing or throttled broker), the instance is not ready after a sixth of the stall timeout
//! (5 s by default) and not alive after the whole stall timeout: an instance that consumes but
//! cannot deliver must say so, not answer 200 while nothing is scored.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use crate::clock::now_ms;

/// A Kafka client's view of the brokers, from its statistics and error callbacks.
pub struct BrokerLink {
    up: AtomicBool,
}

impl BrokerLink {
    fn new() -> Self {
        BrokerLink {
            up: AtomicBool::new(false),
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

pub struct HealthState {
    pub model_loaded: AtomicBool,
    pub assigned_partitions: AtomicUsize,
    pub consumer: BrokerLink,
    pub producer: BrokerLink,
    /// Set once shutdown begins: an instance that is draining takes no new traffic.
    pub stopping: AtomicBool,
    heartbeat_ms: AtomicI64,
    stall_timeout_ms: i64,
    /// Outputs the producer holds (queued or in flight), from its latest statistics.
    producer_queue: AtomicI64,
    /// When the producer last went from holding nothing to holding outputs.
    pending_since_ms: AtomicI64,
    /// When the broker last acknowledged an output.
    last_ack_ms: AtomicI64,
}

impl HealthState {
    pub fn new(stall_timeout_ms: u64) -> Self {
        HealthState {
            model_loaded: AtomicBool::new(false),
            assigned_partitions: AtomicUsize::new(0),
            consumer: BrokerLink::new(),
            producer: BrokerLink::new(),
            stopping: AtomicBool::new(false),
            heartbeat_ms: AtomicI64::new(now_ms()),
            stall_timeout_ms: stall_timeout_ms as i64,
            producer_queue: AtomicI64::new(0),
            pending_since_ms: AtomicI64::new(0),
            last_ack_ms: AtomicI64::new(now_ms()),
        }
    }

    /// The producer's statistics: how many outputs it holds now.
    pub fn set_producer_queue(&self, messages: i64) {
        let before = self.producer_queue.swap(messages, Ordering::Relaxed);
        if before <= 0 && messages > 0 {
            self.pending_since_ms.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// The broker acknowledged an output.
    pub fn acknowledged(&self) {
        self.last_ack_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long outputs have waited with no acknowledgement arriving (0 while they flow or
    /// while there are none).
    pub fn undelivered_ms(&self) -> i64 {
        self.undelivered_ms_at(now_ms())
    }

    fn undelivered_ms_at(&self, now_ms: i64) -> i64 {
        if self.producer_queue.load(Ordering::Relaxed) <= 0 {
            return 0;
        }
        let since = self
            .last_ack_ms
            .load(Ordering::Relaxed)
            .max(self.pending_since_ms.load(Ordering::Relaxed));
        (now_ms - since).max(0)
    }

    /// Called by the consume loop each time it turns.
    pub fn heartbeat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Alive unless the consume loop has not turned for the stall timeout.
    pub fn liveness(&self) -> Result<(), String> {
        self.liveness_at(now_ms())
    }

    fn liveness_at(&self, now_ms: i64) -> Result<(), String> {
        let undelivered_ms = self.undelivered_ms_at(now_ms);
        if undelivered_ms > self.stall_timeout_ms {
            return Err(format!(
                "outputs have waited {undelivered_ms} ms with no acknowledgement from the broker (stall timeout {} ms)",
                self.stall_timeout_ms
            ));
        }
        let silent_ms = now_ms - self.heartbeat_ms.load(Ordering::Relaxed);
        if silent_ms > self.stall_timeout_ms {
            Err(format!(
                "the consume loop has not turned for {silent_ms} ms (stall timeout {} ms)",
                self.stall_timeout_ms
            ))
        } else {
            Ok(())
        }
    }

    /// Ready when every condition holds; otherwise each one that fails, in words.
    pub fn readiness(&self) -> Result<(), Vec<&'static str>> {
        let mut not = Vec::new();
        if !self.model_loaded.load(Ordering::Relaxed) {
            not.push("model not loaded");
        }
        if self.assigned_partitions.load(Ordering::Relaxed) == 0 {
            not.push("no partitions assigned");
        }
        if !self.consumer.is_up() {
            not.push("consumer has no broker connection");
        }
        if !self.producer.is_up() {
            not.push("producer has no broker connection");
        }
        if self.undelivered_ms() > self.stall_timeout_ms / 6 {
            not.push("outputs wait for acknowledgements the broker does not send (the sink cannot deliver)");
        }
        if self.stopping.load(Ordering::Relaxed) {
            not.push("shutting down");
        }
        if not.is_empty() {
            Ok(())
        } else {
            Err(not)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_state() -> HealthState {
        let h = HealthState::new(1000);
        h.model_loaded.store(true, Ordering::Relaxed);
        h.assigned_partitions.store(3, Ordering::Relaxed);
        h.consumer.set_up(true);
        h.producer.set_up(true);
        h
    }

    #[test]
    fn ready_only_when_every_condition_holds() {
        let h = ready_state();
        assert_eq!(h.readiness(), Ok(()));
        h.consumer.set_up(false);
        assert_eq!(
            h.readiness(),
            Err(vec!["consumer has no broker connection"])
        );
        h.consumer.set_up(true);
        h.assigned_partitions.store(0, Ordering::Relaxed);
        h.stopping.store(true, Ordering::Relaxed);
        assert_eq!(
            h.readiness(),
            Err(vec!["no partitions assigned", "shutting down"])
        );
        let fresh = HealthState::new(1000);
        assert_eq!(fresh.readiness().unwrap_err().len(), 4);
    }

    #[test]
    fn undelivered_outputs_end_readiness_then_liveness() {
        let h = ready_state();
        let t0 = now_ms();
        h.acknowledged();
        assert_eq!(h.undelivered_ms_at(t0 + 10_000), 0, "nothing waits");
        h.set_producer_queue(10);
        let since = h.pending_since_ms.load(Ordering::Relaxed);
        assert_eq!(h.undelivered_ms_at(since + 100), 100);
        assert!(h.liveness_at(since + 1000).is_ok());
        let err = h.liveness_at(since + 1001).unwrap_err();
        assert!(err.contains("no acknowledgement"), "{err}");
        h.acknowledged();
        assert!(h.undelivered_ms() < 1000);
        h.set_producer_queue(0);
        assert_eq!(h.undelivered_ms(), 0);
        assert_eq!(h.readiness(), Ok(()));
    }

    #[test]
    fn liveness_fails_after_the_stall_timeout() {
        let h = HealthState::new(1000);
        let beat = h.heartbeat_ms.load(Ordering::Relaxed);
        assert!(h.liveness_at(beat + 1000).is_ok());
        let err = h.liveness_at(beat + 1001).unwrap_err();
        assert!(err.contains("1001 ms"), "{err}");
        h.heartbeat();
        assert!(h.liveness().is_ok());
    }
}

//! The by-position rule of the projector (docs/DESIGN.md rule 9) as a small state machine
//! without I/O: which event to skip, apply or precede with a gap fill, what is applied but not
//! stored yet, and when JetStream may be acknowledged. The async runtime (`runtime.rs`) reads
//! messages and the log, writes the store and acknowledges; it asks this type what to do.

/// What to do with an event at some position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// At or below the model's position: a redelivery or an event already read from the log.
    Skip,
    /// The next position: fold it in.
    Apply,
    /// Beyond the next position: positions `from..=to` are missing; read them from the log and
    /// apply them first, then this event.
    FillGap { from: u64, to: u64 },
}

/// The positions of one projection: applied to the model, stored with the checkpoint, and
/// delivered by the consumer but not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequencer {
    applied: u64,
    committed: u64,
    /// Highest position delivered by JetStream since the last acknowledgement.
    unacked: Option<u64>,
}

impl Sequencer {
    /// Starts at the stored checkpoint: the model reflects exactly that position.
    pub fn new(checkpoint: u64) -> Sequencer {
        Sequencer {
            applied: checkpoint,
            committed: checkpoint,
            unacked: None,
        }
    }

    /// The last position folded into the model.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The last position stored with the checkpoint.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// What to do with the event at `position` (from the log or the consumer).
    pub fn classify(&self, position: u64) -> Delivery {
        let next = self.applied + 1;
        if position < next {
            Delivery::Skip
        } else if position == next {
            Delivery::Apply
        } else {
            Delivery::FillGap {
                from: next,
                to: position - 1,
            }
        }
    }

    /// A message from the consumer: like [`classify`](Self::classify), and the message now
    /// waits for an acknowledgement, even when skipped (JetStream must stop redelivering it).
    pub fn deliver(&mut self, position: u64) -> Delivery {
        self.unacked = Some(self.unacked.map_or(position, |p| p.max(position)));
        self.classify(position)
    }

    /// A new consumer session: JetStream redelivers what the earlier one left unacknowledged.
    pub fn restart_deliveries(&mut self) {
        self.unacked = None;
    }

    /// The next position was folded into the model (after [`Delivery::Apply`]); returns it.
    pub fn advance(&mut self) -> u64 {
        self.applied += 1;
        self.applied
    }

    /// The position to store when the model is ahead of the stored checkpoint.
    pub fn uncommitted(&self) -> Option<u64> {
        (self.applied > self.committed).then_some(self.applied)
    }

    /// The model's changes up to `checkpoint` were stored with it, in one atomic write.
    pub fn stored(&mut self, checkpoint: u64) {
        debug_assert!(checkpoint <= self.applied, "only applied events are stored");
        self.committed = self.committed.max(checkpoint);
    }

    /// Whether the delivered messages may be acknowledged now: only once every one of them is
    /// at or below the stored checkpoint, so a crash before the write makes JetStream
    /// redeliver them. `true` means acknowledge; the pending set is then empty.
    pub fn acknowledge(&mut self) -> bool {
        match self.unacked {
            Some(position) if position <= self.committed => {
                self.unacked = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the sequencer as the runtime does: a consumer batch, the gaps filled from a log
    /// that holds every position, one store write, then the acknowledgement. Returns the
    /// positions applied, in order.
    fn batch(seq: &mut Sequencer, delivered: &[u64], store_ok: bool) -> (Vec<u64>, bool) {
        let mut applied = Vec::new();
        for &position in delivered {
            match seq.deliver(position) {
                Delivery::Skip => {}
                Delivery::Apply => applied.push(seq.advance()),
                Delivery::FillGap { from, to } => {
                    for missing in from..=to {
                        assert_eq!(seq.classify(missing), Delivery::Apply);
                        applied.push(seq.advance());
                    }
                    assert_eq!(seq.classify(position), Delivery::Apply);
                    applied.push(seq.advance());
                }
            }
        }
        if store_ok {
            if let Some(checkpoint) = seq.uncommitted() {
                seq.stored(checkpoint);
            }
        }
        (applied, seq.acknowledge())
    }

    #[test]
    fn in_order_events_are_applied_stored_then_acknowledged() {
        let mut seq = Sequencer::new(0);
        assert_eq!(batch(&mut seq, &[1, 2, 3], true), (vec![1, 2, 3], true));
        assert_eq!((seq.applied(), seq.committed()), (3, 3));
        assert!(!seq.acknowledge(), "nothing left to acknowledge");
    }

    #[test]
    fn redeliveries_are_skipped_but_acknowledged() {
        let mut seq = Sequencer::new(5);
        assert_eq!(batch(&mut seq, &[4, 5, 5], true), (vec![], true));
        assert_eq!(batch(&mut seq, &[6, 6, 2], true), (vec![6], true));
        assert_eq!(seq.applied(), 6);
    }

    #[test]
    fn a_gap_is_filled_from_the_log_before_the_event() {
        let mut seq = Sequencer::new(2);
        assert_eq!(seq.classify(6), Delivery::FillGap { from: 3, to: 5 });
        assert_eq!(batch(&mut seq, &[6], true), (vec![3, 4, 5, 6], true));
    }

    #[test]
    fn reordered_events_apply_once_in_position_order() {
        let mut seq = Sequencer::new(0);
        let (applied, acked) = batch(&mut seq, &[3, 1, 2, 5, 4], true);
        assert_eq!(applied, vec![1, 2, 3, 4, 5]);
        assert!(acked);
    }

    #[test]
    fn no_acknowledgement_before_the_store_write() {
        let mut seq = Sequencer::new(0);
        assert_eq!(batch(&mut seq, &[1, 2], false), (vec![1, 2], false));
        assert_eq!(seq.uncommitted(), Some(2));
        // A crash here loses the model; JetStream redelivers 1 and 2 to the restarted
        // projector, which starts from the stored checkpoint.
        let mut restarted = Sequencer::new(seq.committed());
        assert_eq!(batch(&mut restarted, &[1, 2], true), (vec![1, 2], true));
        // Storing only part of what was delivered is not enough either.
        let mut partial = Sequencer::new(0);
        partial.deliver(1);
        partial.advance();
        partial.deliver(2);
        partial.advance();
        partial.stored(1);
        assert!(!partial.acknowledge());
        partial.stored(2);
        assert!(partial.acknowledge());
    }

    #[test]
    fn log_pages_skip_what_the_model_holds() {
        let seq = Sequencer::new(10);
        assert_eq!(seq.classify(10), Delivery::Skip);
        assert_eq!(seq.classify(11), Delivery::Apply);
        assert_eq!(seq.classify(13), Delivery::FillGap { from: 11, to: 12 });
        assert_eq!(seq.uncommitted(), None);
    }
}

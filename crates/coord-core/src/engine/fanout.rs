//! Fan-out to local subscribers through bounded queues.
//!
//! Overflow policy: a subscriber whose queue is full misses the new item (it is
//! counted), never stalls the others, and is told how many it missed by one
//! marker placed exactly where the loss happened.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

/// Items that can say "n items were missed here".
pub trait Missed {
    /// The marker for `n` missed items.
    fn missed(n: u64) -> Self;
}

enum Item<T> {
    Value(T),
    Missed(u64),
}

struct Slot<T> {
    tx: mpsc::Sender<Item<T>>,
    missed: u64,
}

impl<T> Slot<T> {
    /// Offers `value`; returns `false` once the subscriber is gone.
    fn offer(&mut self, value: T, overflowed: &mut u64) -> bool {
        if self.missed > 0 {
            if self.tx.capacity() < 2 {
                self.missed += 1;
                *overflowed += 1;
                return !self.tx.is_closed();
            }
            // Room for the marker and the value was just checked; only this
            // fan-out sends on the queue.
            let _ = self.tx.try_send(Item::Missed(self.missed));
            self.missed = 0;
        }
        match self.tx.try_send(Item::Value(value)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed += 1;
                *overflowed += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Many bounded subscriber queues fed from one place.
pub(crate) struct Fanout<T> {
    slots: Mutex<Option<Vec<Slot<T>>>>,
    capacity: usize,
}

impl<T: Clone> Fanout<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Fanout {
            slots: Mutex::new(Some(Vec::new())),
            capacity: capacity.max(2),
        }
    }

    /// A new subscriber; after [`Fanout::close`] its feed ends at once.
    pub(crate) fn subscribe(&self) -> Feed<T> {
        let (tx, rx) = mpsc::channel(self.capacity);
        if let Some(slots) = self.slots.lock().expect("fanout lock").as_mut() {
            slots.push(Slot { tx, missed: 0 });
        }
        Feed { rx }
    }

    /// Offers every value to every subscriber; returns how many deliveries
    /// overflowed.
    pub(crate) fn send_all(&self, values: &[T]) -> u64 {
        let mut overflowed = 0;
        if let Some(slots) = self.slots.lock().expect("fanout lock").as_mut() {
            slots.retain_mut(|slot| values.iter().all(|v| slot.offer(v.clone(), &mut overflowed)));
        }
        overflowed
    }

    /// Whether anybody subscribed (and was still there at the last send).
    pub(crate) fn is_watched(&self) -> bool {
        self.slots
            .lock()
            .expect("fanout lock")
            .as_ref()
            .is_some_and(|slots| !slots.is_empty())
    }

    /// Ends every feed (after the items already queued) and refuses new ones.
    pub(crate) fn close(&self) {
        self.slots.lock().expect("fanout lock").take();
    }
}

/// A subscriber's stream of items. It ends when the node shuts down.
pub struct Feed<T> {
    rx: mpsc::Receiver<Item<T>>,
}

impl<T: Missed> Stream for Feed<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx).map(|item| {
            item.map(|item| match item {
                Item::Value(value) => value,
                Item::Missed(n) => T::missed(n),
            })
        })
    }
}

impl<T> std::fmt::Debug for Feed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("queued", &self.rx.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    enum Msg {
        V(u32),
        Lost(u64),
    }

    impl Missed for Msg {
        fn missed(n: u64) -> Self {
            Msg::Lost(n)
        }
    }

    #[tokio::test]
    async fn slow_subscriber_gets_a_marker_where_items_were_lost() {
        let fanout = Fanout::new(2);
        let mut slow = fanout.subscribe();
        let mut fast = fanout.subscribe();
        let mut got_fast = Vec::new();
        let mut overflowed = 0;
        for i in 0..4 {
            overflowed += fanout.send_all(&[Msg::V(i)]);
            got_fast.push(fast.next().await.unwrap());
        }
        assert_eq!(overflowed, 2);
        assert_eq!(got_fast, vec![Msg::V(0), Msg::V(1), Msg::V(2), Msg::V(3)]);
        assert_eq!(slow.next().await, Some(Msg::V(0)));
        assert_eq!(slow.next().await, Some(Msg::V(1)));
        fanout.send_all(&[Msg::V(4)]);
        assert_eq!(slow.next().await, Some(Msg::Lost(2)));
        assert_eq!(slow.next().await, Some(Msg::V(4)));
        fanout.close();
        assert_eq!(slow.next().await, None);
        assert_eq!(fanout.subscribe().next().await, None);
    }

    #[tokio::test]
    async fn dropped_subscribers_are_removed() {
        let fanout = Fanout::new(4);
        let gone = fanout.subscribe();
        let mut kept = fanout.subscribe();
        drop(gone);
        fanout.send_all(&[Msg::V(1)]);
        assert_eq!(fanout.slots.lock().unwrap().as_ref().unwrap().len(), 1);
        assert_eq!(kept.next().await, Some(Msg::V(1)));
    }
}

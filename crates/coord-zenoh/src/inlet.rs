//! The bounded handler behind every subscription: Zenoh's receive path hands
//! samples to [`Inlet::offer`], which never blocks; what does not fit is
//! dropped, counted, and reported as one `Lagged` before the next frame.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use coord_core::transport::Received;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};

/// The sending side of one subscription's bounded queue.
pub(crate) struct Inlet {
    tx: mpsc::Sender<Received>,
    /// Frames were lost since the last delivery: send `Lagged` first.
    lost: Mutex<bool>,
    /// Frames dropped for lack of room, counted for the whole transport.
    dropped: Arc<AtomicU64>,
}

impl Inlet {
    /// A queue of `capacity` items, and its receiving side.
    pub(crate) fn new(capacity: usize, dropped: Arc<AtomicU64>) -> (Arc<Inlet>, mpsc::Receiver<Received>) {
        let (tx, rx) = mpsc::channel(capacity);
        let inlet = Inlet {
            tx,
            lost: Mutex::new(false),
            dropped,
        };
        (Arc::new(inlet), rx)
    }

    /// Queues a frame without waiting, preceded by `Lagged` if frames were
    /// lost before it; drops and counts it when the queue is full.
    pub(crate) fn offer(&self, frame: Received) {
        let mut lost = self.lost.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *lost {
            if self.tx.capacity() < 2 {
                self.count_drop();
                return;
            }
            // Room for two was checked, and only this inlet (under the lock) sends.
            let _ = self.tx.try_send(Received::Lagged);
            *lost = false;
        }
        match self.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                *lost = true;
                self.count_drop();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Reports that frames may have been lost (a link was re-established):
    /// queues `Lagged` now, or before the next frame if the queue is full.
    pub(crate) fn lagged(&self) {
        let mut lost = self.lost.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *lost = self.tx.try_send(Received::Lagged).is_err() && !self.tx.is_closed();
    }

    fn count_drop(&self) {
        if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!("a zenoh subscription queue is full: dropping frames (reported as Lagged)");
        }
    }
}

/// The stream of one subscription (or presence watch): ends when the
/// transport is closed; holds `guard` (the Zenoh subscriber) so dropping the
/// stream undeclares it.
pub(crate) fn stream<T: Send + 'static, G: Send + 'static>(
    rx: mpsc::Receiver<T>,
    closed: watch::Receiver<bool>,
    guard: G,
) -> Pin<Box<dyn Stream<Item = T> + Send + 'static>> {
    futures::stream::unfold((rx, closed, guard), |(mut rx, mut closed, guard)| async move {
        let item = tokio::select! {
            biased;
            _ = closed.wait_for(|closed| *closed) => None,
            item = rx.recv() => item,
        };
        item.map(|item| (item, (rx, closed, guard)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(n: u8) -> Received {
        Received::Frame(Bytes::from(vec![n]))
    }

    #[tokio::test]
    async fn overflow_is_counted_and_marked_before_the_next_frame() {
        let dropped = Arc::new(AtomicU64::new(0));
        let (inlet, rx) = Inlet::new(2, dropped.clone());
        let (close, closed) = watch::channel(false);
        let mut sub = stream(rx, closed, ());
        for n in 0..4 {
            inlet.offer(frame(n));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 2);
        assert_eq!(sub.next().await, Some(frame(0)));
        assert_eq!(sub.next().await, Some(frame(1)));
        inlet.offer(frame(9));
        assert_eq!(sub.next().await, Some(Received::Lagged));
        assert_eq!(sub.next().await, Some(frame(9)));
        inlet.lagged();
        assert_eq!(sub.next().await, Some(Received::Lagged));
        close.send_replace(true);
        inlet.offer(frame(10));
        assert_eq!(sub.next().await, None, "closing ends the stream");
    }
}

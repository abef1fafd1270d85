//! The command queue of one socket: many senders (any thread), one receiving
//! task. It costs a few words while empty: its list is allocated by the first
//! command and freed again each time the receiver finds it empty and goes to
//! sleep, so an idle socket holds no queue memory (a tokio mpsc channel
//! allocates its shared state and a 32-slot block with the channel). The
//! receiver waits by leaving its waker here, so waiting needs no future state
//! of its own ([`Queue::poll_recv`]).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::task::{ready, Context, Poll, Waker};

pub struct Queue<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    list: VecDeque<T>,
    closed: bool,
    /// The receiver, while it waits for a value.
    waker: Option<Waker>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(State {
                list: VecDeque::new(),
                closed: false,
                waker: None,
            }),
        }
    }
}

impl<T> Queue<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `v`; gives it back once the queue is closed.
    pub fn send(&self, v: T) -> Result<(), T> {
        let waker = {
            let mut s = self.state.lock();
            if s.closed {
                return Err(v);
            }
            s.list.push_back(v);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// The next value in order; `None` once the queue is closed and empty.
    /// When there is none yet, the task of `cx` is woken by the next send.
    /// Each value taken uses the task's tokio budget, as channels do, so a
    /// busy queue cannot hold the socket thread.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let mut s = self.state.lock();
        if let Some(v) = s.list.pop_front() {
            coop.made_progress();
            return Poll::Ready(Some(v));
        }
        if s.closed {
            coop.made_progress();
            return Poll::Ready(None);
        }
        // Idle from here: give the list's memory back.
        if s.list.capacity() > 0 {
            s.list = VecDeque::new();
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// [`Queue::poll_recv`] as a future. Cancel-safe: a value is only taken
    /// out by a poll that returns it.
    pub async fn recv(&self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    pub fn is_empty(&self) -> bool {
        self.state.lock().list.is_empty()
    }

    /// Refuses further sends and hands back what is still queued, in order.
    pub fn close(&self) -> VecDeque<T> {
        let mut s = self.state.lock();
        s.closed = true;
        s.waker = None;
        std::mem::take(&mut s.list)
    }
}

#[cfg(test)]
mod tests {
    use super::Queue;
    use std::sync::Arc;
    use std::time::Duration;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn keeps_order_across_threads_and_wakes_the_receiver() {
        rt().block_on(async {
            let q = Arc::new(Queue::new());
            let senders: Vec<_> = (0..4u32)
                .map(|t| {
                    let q = q.clone();
                    std::thread::spawn(move || {
                        for i in 0..1000u32 {
                            q.send((t, i)).unwrap();
                        }
                    })
                })
                .collect();
            let mut next = [0u32; 4];
            for _ in 0..4000 {
                let (t, i) = tokio::time::timeout(Duration::from_secs(10), q.recv())
                    .await
                    .expect("receiver woken")
                    .expect("open queue");
                assert_eq!(i, next[t as usize], "sender {t} out of order");
                next[t as usize] += 1;
            }
            for s in senders {
                s.join().unwrap();
            }
            assert!(q.is_empty());
        });
    }

    #[test]
    fn idle_queue_frees_its_list() {
        rt().block_on(async {
            let q = Queue::new();
            q.send(1u64).unwrap();
            assert!(q.state.lock().list.capacity() > 0);
            assert_eq!(q.recv().await, Some(1));
            let r = tokio::time::timeout(Duration::from_millis(20), q.recv()).await;
            assert!(r.is_err(), "nothing queued");
            assert_eq!(q.state.lock().list.capacity(), 0);
        });
    }

    #[test]
    fn close_returns_the_rest_and_refuses_sends() {
        rt().block_on(async {
            let q = Queue::new();
            q.send("a").unwrap();
            q.send("b").unwrap();
            let rest: Vec<_> = q.close().into_iter().collect();
            assert_eq!(rest, ["a", "b"]);
            assert_eq!(q.send("c"), Err("c"));
            assert_eq!(q.recv().await, None);
        });
    }

    #[test]
    fn a_cancelled_recv_loses_nothing() {
        rt().block_on(async {
            let q = Queue::new();
            let r = tokio::time::timeout(Duration::from_millis(5), q.recv()).await;
            assert!(r.is_err());
            q.send(7).unwrap();
            assert_eq!(q.recv().await, Some(7));
        });
    }
}

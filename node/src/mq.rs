//! Per-service message queues and the global run queue of the scheduler.
//!
//! A service queue is in the global queue at most once. The `scheduled` flag stays
//! set while the queue either waits in the global queue or is being dispatched by a
//! worker; it is cleared only by a worker that finds the queue empty. That is what
//! guarantees one worker per service and in-order delivery.

use crate::message::Message;
use parking_lot::Mutex;
use std::collections::VecDeque;

/// Queue length above which skynet logs "May overload"; doubled at each warning
/// and reset once the queue drains.
pub const OVERLOAD_THRESHOLD: usize = 1024;

/// What a push did to the scheduling state of the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The queue was idle: the caller must put it in the global queue.
    NeedsScheduling,
    /// The queue is already scheduled or running.
    AlreadyScheduled,
}

/// One service's FIFO of messages.
pub struct MessageQueue {
    inner: Mutex<Inner>,
}

struct Inner {
    messages: VecDeque<Message>,
    scheduled: bool,
    overload: usize,
    overload_threshold: usize,
}

/// The result of popping one message.
pub struct Popped {
    pub message: Message,
    /// Non-zero when the queue just crossed its overload threshold.
    pub overload: usize,
}

impl Default for MessageQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageQueue {
    /// A new queue starts "scheduled" so nothing dispatches it before its service
    /// has finished `init`; the kernel schedules it afterwards.
    pub fn new() -> Self {
        MessageQueue {
            inner: Mutex::new(Inner {
                messages: VecDeque::new(),
                scheduled: true,
                overload: 0,
                overload_threshold: OVERLOAD_THRESHOLD,
            }),
        }
    }

    pub fn push(&self, msg: Message) -> Pushed {
        let mut q = self.inner.lock();
        q.messages.push_back(msg);
        if q.scheduled {
            Pushed::AlreadyScheduled
        } else {
            q.scheduled = true;
            Pushed::NeedsScheduling
        }
    }

    /// Appends `msgs` in order under one lock (a batch of timeouts).
    pub fn push_batch(&self, msgs: impl IntoIterator<Item = Message>) -> Pushed {
        let mut q = self.inner.lock();
        q.messages.extend(msgs);
        if q.scheduled {
            Pushed::AlreadyScheduled
        } else {
            q.scheduled = true;
            Pushed::NeedsScheduling
        }
    }

    /// Pops the next message. On an empty queue, clears the scheduled flag (the
    /// worker lets go of the queue) and resets the overload threshold.
    pub fn pop(&self) -> Option<Popped> {
        let mut q = self.inner.lock();
        match q.messages.pop_front() {
            Some(message) => {
                let len = q.messages.len();
                let mut overload = 0;
                while len > q.overload_threshold {
                    q.overload = len;
                    q.overload_threshold *= 2;
                }
                if q.overload != 0 {
                    overload = q.overload;
                    q.overload = 0;
                }
                Some(Popped { message, overload })
            }
            None => {
                q.scheduled = false;
                q.overload_threshold = OVERLOAD_THRESHOLD;
                None
            }
        }
    }

    /// Takes every queued message (used to answer them when the service is dead).
    pub fn drain(&self) -> Vec<Message> {
        self.inner.lock().messages.drain(..).collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks an unscheduled queue as scheduled; true when the caller must put it in
    /// the global queue.
    pub fn schedule(&self) -> bool {
        let mut q = self.inner.lock();
        if q.scheduled {
            false
        } else {
            q.scheduled = true;
            true
        }
    }

    /// Clears the flag set by [`MessageQueue::new`]; true when messages arrived in
    /// the meantime and the queue must be put in the global queue now.
    pub fn release_initial(&self) -> bool {
        let mut q = self.inner.lock();
        if q.messages.is_empty() {
            q.scheduled = false;
            false
        } else {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(session: i32) -> Message {
        Message::new(1, session, 0, Vec::new())
    }

    #[test]
    fn fifo_and_scheduling_flag() {
        let q = MessageQueue::new();
        assert!(!q.release_initial());
        assert_eq!(q.push(msg(1)), Pushed::NeedsScheduling);
        assert_eq!(q.push(msg(2)), Pushed::AlreadyScheduled);
        assert_eq!(q.pop().unwrap().message.session, 1);
        assert_eq!(q.pop().unwrap().message.session, 2);
        assert!(q.pop().is_none());
        assert_eq!(q.push(msg(3)), Pushed::NeedsScheduling);
    }

    #[test]
    fn a_batch_keeps_its_order_and_schedules_once() {
        let q = MessageQueue::new();
        assert!(!q.release_initial());
        assert_eq!(q.push(msg(1)), Pushed::NeedsScheduling);
        assert_eq!(q.push_batch((2..5).map(msg)), Pushed::AlreadyScheduled);
        let got: Vec<i32> = std::iter::from_fn(|| q.pop().map(|p| p.message.session)).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(q.push_batch((5..7).map(msg)), Pushed::NeedsScheduling);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn overload_reported_once_per_doubling() {
        let q = MessageQueue::new();
        for i in 0..3000 {
            q.push(msg(i));
        }
        let first = q.pop().unwrap();
        assert_eq!(first.overload, 2999);
        // threshold is now 4096: no more warnings while draining
        let mut warnings = 0;
        while let Some(p) = q.pop() {
            if p.overload != 0 {
                warnings += 1;
            }
        }
        assert_eq!(warnings, 0);
        // drained: threshold back to 1024
        for i in 0..1100 {
            q.push(msg(i));
        }
        assert_eq!(q.pop().unwrap().overload, 1099);
    }
}

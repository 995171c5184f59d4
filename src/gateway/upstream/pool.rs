//! Idle keep-alive connections to a cleartext upstream, most recently used
//! first. A connection is only ever in the pool between two exchanges, with
//! nothing unread: the one request in flight owns it, so there is no
//! hand-off between tasks.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError, Weak},
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::{
    clock::monotonic_millis,
    http1::{KnownNames, READ_CHUNK},
};

/// One connection to the upstream and what has been read from it.
#[derive(Debug)]
pub(super) struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// The header names its answers used.
    pub names: KnownNames,
}

impl Conn {
    /// A connection on `stream`, nothing read yet.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            names: KnownNames::default(),
        }
    }

    /// Whether an idle connection still looks open: nothing has arrived on
    /// it since its last answer, not even the end of the stream. Costs no
    /// system call unless the socket was signalled readable.
    fn looks_open(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                // Readable: the upstream closed it (0 bytes), sent something
                // unasked (unusable), or the flag is left over from the last
                // read (WouldBlock clears it).
                let mut probe = [0u8; 1];
                matches!(
                    self.stream.try_read(&mut probe),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
                )
            }
        }
    }
}

struct Idle {
    conn: Conn,
    /// When it came back, in [`monotonic_millis`].
    since: u64,
}

/// The idle connections of one upstream.
pub(super) struct Pool {
    idle: Mutex<VecDeque<Idle>>,
    idle_timeout: Duration,
    max_idle: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool keeping up to `max_idle` connections, each for up to
    /// `idle_timeout`. Inside a tokio runtime, a task sweeps it twice per
    /// idle timeout for as long as the pool lives.
    pub fn new(max_idle: usize, idle_timeout: Duration) -> Arc<Self> {
        let pool = Arc::new(Self {
            idle: Mutex::new(VecDeque::new()),
            idle_timeout,
            max_idle,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep_while_alive(Arc::downgrade(&pool), idle_timeout / 2));
        }
        pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection that still looks open.
    pub fn checkout(&self) -> Option<Conn> {
        loop {
            let idle = self.lock().pop_back()?;
            if self.fresh(idle.since, monotonic_millis()) && idle.conn.looks_open() {
                return Some(idle.conn);
            }
        }
    }

    /// Takes `conn` back after an exchange: kept if it can serve again and
    /// holds nothing unread, closed otherwise.
    pub fn finish(&self, conn: Conn, reusable: bool) {
        if !reusable || !conn.buf.is_empty() {
            return;
        }
        let now = monotonic_millis();
        let mut idle = self.lock();
        // The oldest sit at the front; those past the idle timeout go.
        while idle
            .front()
            .is_some_and(|oldest| !self.fresh(oldest.since, now))
        {
            idle.pop_front();
        }
        if idle.len() < self.max_idle {
            idle.push_back(Idle { conn, since: now });
        }
    }

    /// Closes the connections past the idle timeout or closed by the
    /// upstream, so that none lingers once traffic stops.
    fn sweep(&self) {
        let now = monotonic_millis();
        self.lock()
            .retain(|idle| self.fresh(idle.since, now) && idle.conn.looks_open());
    }

    /// Whether a connection idle since `since` is still within the idle
    /// timeout at `now` (both from [`monotonic_millis`]).
    fn fresh(&self, since: u64, now: u64) -> bool {
        u128::from(now.saturating_sub(since)) < self.idle_timeout.as_millis()
    }

    /// How many connections are idle.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lock().len()
    }
}

async fn sweep_while_alive(pool: Weak<Pool>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.sweep();
    }
}

//! The decision log: one JSON object per line per request.
//!
//! A request appends its line to a shared buffer (a short lock, no
//! system call, no wake-up) and a background thread writes the buffer out
//! every few milliseconds. A per-line hand-off to a writer thread would cost
//! a thread wake-up per request, which on a gateway given one core is a
//! large part of the request's price. If the writer falls behind by more
//! than the buffer's cap, lines are dropped and counted rather than
//! buffered without bound.

use std::{
    fs::OpenOptions,
    io::{self, Write},
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::metrics::counter::Counter;

use crate::config::DecisionLogDestination;

/// Most bytes waiting to be written before new lines are dropped.
const MAX_PENDING: usize = 8 * 1024 * 1024;

/// How often the writer thread writes what accumulated.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Where decision records are sent.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    pending: Option<Arc<Mutex<Vec<u8>>>>,
    dropped: Counter,
}

impl DecisionLog {
    /// A log writing to `destination`, counting lost records in `dropped`.
    pub fn open(destination: &DecisionLogDestination, dropped: Counter) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match destination {
            DecisionLogDestination::Off => {
                return Ok(Self {
                    pending: None,
                    dropped,
                })
            }
            DecisionLogDestination::Stdout => Box::new(io::stdout()),
            DecisionLogDestination::Stderr => Box::new(io::stderr()),
            DecisionLogDestination::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        let pending = Arc::new(Mutex::new(Vec::with_capacity(64 * 1024)));
        let writer = pending.clone();
        let lost = dropped.clone();
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_out(writer, sink, lost))?;
        Ok(Self {
            pending: Some(pending),
            dropped,
        })
    }

    /// Appends one record, which `write` puts as one JSON object on the end
    /// of the buffer it is given; never blocks on I/O.
    pub fn record(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(pending) = &self.pending else { return };
        let mut buffer = pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buffer.len() > MAX_PENDING {
            self.dropped.inc();
            return;
        }
        write(&mut buffer);
        buffer.push(b'\n');
    }
}

/// Writes what accumulated every [`FLUSH_EVERY`], until the log is dropped
/// (then once more) or the sink fails (then every later line is counted as
/// lost, since nothing reads the buffer).
fn write_out(pending: Arc<Mutex<Vec<u8>>>, mut sink: Box<dyn Write + Send>, lost: Counter) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let last = Arc::strong_count(&pending) == 1;
        {
            let mut buffer = pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::swap(&mut *buffer, &mut batch);
        }
        if !batch.is_empty() {
            if sink.write_all(&batch).and_then(|()| sink.flush()).is_err() {
                let lines = batch.iter().filter(|b| **b == b'\n').count();
                lost.inc_by(lines as u64);
                // Keep the buffer bounded and keep counting: the cap makes
                // `record` drop (and count) every later line.
                let mut buffer = pending
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                buffer.resize(MAX_PENDING + 1, b' ');
                return;
            }
            batch.clear();
        }
        if last {
            return;
        }
    }
}

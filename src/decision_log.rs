//! The decision log: one JSON object per line per request, written by a
//! background thread so that a slow disk or pipe never holds a request.
//! When the writer falls behind by more than its queue, records are dropped
//! and counted rather than buffered without bound.

use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    sync::mpsc::{self, Receiver, SyncSender, TryRecvError},
};

use prometheus_client::metrics::counter::Counter;

use crate::config::DecisionLogDestination;

/// Records waiting to be written before new ones are dropped.
const QUEUE: usize = 16 * 1024;

/// Where decision records are sent.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    sender: Option<SyncSender<String>>,
    dropped: Counter,
}

impl DecisionLog {
    /// A log writing to `destination`, counting lost records in `dropped`.
    pub fn open(destination: &DecisionLogDestination, dropped: Counter) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match destination {
            DecisionLogDestination::Off => {
                return Ok(Self {
                    sender: None,
                    dropped,
                })
            }
            DecisionLogDestination::Stdout => Box::new(io::stdout()),
            DecisionLogDestination::Stderr => Box::new(io::stderr()),
            DecisionLogDestination::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_all(receiver, BufWriter::new(sink)))?;
        Ok(Self {
            sender: Some(sender),
            dropped,
        })
    }

    /// Queues one record; never blocks.
    pub fn record(&self, record: &impl serde::Serialize) {
        let Some(sender) = &self.sender else { return };
        let Ok(line) = serde_json::to_string(record) else {
            self.dropped.inc();
            return;
        };
        // Full: the writer fell behind. Disconnected: it failed (a closed
        // pipe, a full disk) and stopped. Either way the record is lost.
        if sender.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

/// Writes lines as they come, flushing whenever the queue runs dry so a
/// reader sees each record promptly without a syscall per line under load.
fn write_all(receiver: Receiver<String>, mut sink: impl Write) {
    while let Ok(line) = receiver.recv() {
        let mut next = Some(line);
        while let Some(line) = next.take() {
            if writeln!(sink, "{line}").is_err() {
                return;
            }
            next = match receiver.try_recv() {
                Ok(line) => Some(line),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    let _ = sink.flush();
                    return;
                }
            };
        }
        if sink.flush().is_err() {
            return;
        }
    }
}

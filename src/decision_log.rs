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

/// Most bytes written in one system call. A busy gateway's 20 ms of lines
/// is a few hundred KiB, and one write of that holds the core the gateway
/// serves on for a millisecond or more: requests would wait behind it.
const MAX_WRITE: usize = 32 * 1024;

/// How much nicer the writer thread is than the threads that serve requests,
/// so that on a gateway given one core a flush waits for a gap between
/// requests instead of preempting them, and still well above idle, so
/// that it keeps up when the core is never idle.
const WRITER_NICENESS: i32 = 10;

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

/// Lowers the calling thread's priority by [`WRITER_NICENESS`]. On Linux a
/// niceness belongs to a thread: the others keep theirs.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let lowered = getpriority_process(None)
            .and_then(|now| setpriority_process(None, (now + WRITER_NICENESS).min(19)));
        if let Err(error) = lowered {
            tracing::debug!(%error, "the decision log writer keeps the gateway's priority");
        }
    }
}

/// Writes `batch`, whole lines, at most [`MAX_WRITE`] bytes at a time (or
/// one line, if longer), giving up the core between pieces. On failure,
/// says how many of its bytes were written before the piece that failed:
/// the lines after them are the ones lost.
fn write_in_pieces(sink: &mut dyn Write, batch: &[u8]) -> Result<(), usize> {
    let mut written = 0;
    while written < batch.len() {
        let rest = &batch[written..];
        // The last line end within reach, else the first one beyond it.
        let end = if rest.len() <= MAX_WRITE {
            rest.len()
        } else {
            memchr::memrchr(b'\n', &rest[..MAX_WRITE])
                .or_else(|| memchr::memchr(b'\n', rest))
                .map_or(rest.len(), |at| at + 1)
        };
        sink.write_all(&rest[..end]).map_err(|_| written)?;
        written += end;
        if written < batch.len() {
            std::thread::yield_now();
        }
    }
    // Unflushed, nothing of the batch is known to have reached the sink.
    sink.flush().map_err(|_| 0)
}

/// Writes what accumulated every [`FLUSH_EVERY`], until the log is dropped
/// (then once more) or the sink fails (then every later line is counted as
/// lost, since nothing reads the buffer).
fn write_out(pending: Arc<Mutex<Vec<u8>>>, mut sink: Box<dyn Write + Send>, lost: Counter) {
    lower_priority();
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
            if let Err(written) = write_in_pieces(&mut sink, &batch) {
                let lines = memchr::memchr_iter(b'\n', &batch[written..]).count();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps each write it is given.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_batch_is_written_in_whole_lines_of_bounded_size() {
        let short = "s".repeat(100);
        let long = "l".repeat(MAX_WRITE + 10);
        let mut batch = Vec::new();
        for line in (0..700).map(|i| if i == 350 { &long } else { &short }) {
            batch.extend_from_slice(line.as_bytes());
            batch.push(b'\n');
        }
        let mut writes = Writes::default();
        write_in_pieces(&mut writes, &batch).unwrap();
        assert!(writes.0.len() > 2, "{} pieces", writes.0.len());
        for piece in &writes.0 {
            assert_eq!(piece.last(), Some(&b'\n'), "a piece ends a line");
            assert!(
                piece.len() <= MAX_WRITE || piece.len() == long.len() + 1,
                "{} bytes",
                piece.len()
            );
        }
        assert_eq!(writes.0.concat(), batch, "nothing lost, nothing reordered");
    }

    #[test]
    fn a_failed_write_says_which_lines_were_written_whole() {
        /// Takes `left` writes, then fails.
        struct Failing {
            left: usize,
            kept: Vec<u8>,
        }
        impl Write for Failing {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.left == 0 {
                    return Err(io::Error::other("disk full"));
                }
                self.left -= 1;
                self.kept.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let line = format!("{}\n", "x".repeat(999));
        let batch = line.repeat(100);
        let mut sink = Failing {
            left: 2,
            kept: Vec::new(),
        };
        let written = write_in_pieces(&mut sink, batch.as_bytes()).unwrap_err();
        assert_eq!(written, sink.kept.len(), "exactly what the sink took");
        assert_eq!(written % line.len(), 0, "whole lines");
        assert_eq!(written, 2 * (MAX_WRITE / line.len()) * line.len());
        let mut all = Failing {
            left: usize::MAX,
            kept: Vec::new(),
        };
        assert_eq!(write_in_pieces(&mut all, batch.as_bytes()), Ok(()));
        assert_eq!(all.kept, batch.as_bytes());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_the_writer_thread_is_lowered() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let writer = std::thread::spawn(|| {
            lower_priority();
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(writer, (before + WRITER_NICENESS).min(19));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }
}

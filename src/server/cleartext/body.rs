//! A request body that has not all arrived with its head: it is read from
//! the connection's socket by whoever holds it (the handler, or the task
//! that streams it upstream), and the socket is handed back to the
//! connection only once the body has been read to its exact end. A body
//! dropped or failed half-way keeps the socket, so its unread bytes can
//! never be parsed as the next request.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use tokio::net::tcp::OwnedReadHalf;

use crate::http1::body::Source;

/// What the client is sent when it waits to be asked for the body.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The read side of a connection, and what has been read from it.
pub(super) type ReadSide = (OwnedReadHalf, BytesMut);

/// Where a request body hands the read side back, and where the connection
/// marks that its answer has started (a `100 Continue` after that would
/// land inside the answer).
#[derive(Default)]
pub(super) struct Handoff(Mutex<HandoffState>);

#[derive(Default)]
struct HandoffState {
    answering: bool,
    returned: Option<ReadSide>,
    /// What of a `100 Continue` the socket did not take at once: it must
    /// go out before the answer.
    unsent: &'static [u8],
}

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HandoffState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the answer as started. Returns the read side, if the body
    /// has been read whole by now, and what must be written before the
    /// answer.
    pub(super) fn answer(&self) -> (Option<ReadSide>, &'static [u8]) {
        let mut state = self.lock();
        state.answering = true;
        (state.returned.take(), state.unsent)
    }
}

/// The connection as a request body reads it.
pub(crate) struct ClientSource {
    read: ReadSide,
    handoff: Arc<Handoff>,
    expects_continue: bool,
}

impl ClientSource {
    pub(super) fn new(read: ReadSide, handoff: Arc<Handoff>, expects_continue: bool) -> Self {
        Self {
            read,
            handoff,
            expects_continue,
        }
    }
}

impl Source for ClientSource {
    type Stream = OwnedReadHalf;

    fn io(&mut self) -> (&mut OwnedReadHalf, &mut BytesMut) {
        (&mut self.read.0, &mut self.read.1)
    }

    /// A client that sent `Expect: 100-continue` is asked for its body only
    /// once the body is really read, and never after the answer started: a
    /// request refused on its head alone costs no upload.
    fn before_first_read(&mut self) {
        if !self.expects_continue {
            return;
        }
        let mut state = self.handoff.lock();
        if state.answering {
            return;
        }
        // Not sent at all, the client sends its body after its own wait;
        // sent in part, the rest goes out before the answer.
        if let Ok(sent) = self.read.0.as_ref().try_write(CONTINUE) {
            state.unsent = &CONTINUE[sent..];
        }
    }

    fn finished(self, reusable: bool) {
        if reusable {
            self.handoff.lock().returned = Some(self.read);
        }
    }
}

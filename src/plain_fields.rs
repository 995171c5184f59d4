//! Plain-text log fields, written the way tracing-subscriber's default
//! formatter writes them without colours, only cheaper.
//!
//! Every request writes a decision record of about 18 fields. The default
//! field formatter pays, per field, for two empty colour styles and for
//! escaping each string char by char (Unicode tables included), which made
//! formatting the record about a fifth of the gateway's user-space
//! instructions (callgrind, bench/RESULTS.md). This one writes the same
//! bytes: `name=value` separated by spaces, strings in `Debug` form, and a
//! string that `Debug` leaves unchanged (printable ASCII without `"` or
//! `\`) is copied between quotes as it is. The message, errors and `log.*`
//! fields go to the default visitor, so they are written exactly as before.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::{RecordFields, VisitOutput},
    fmt::{format::DefaultVisitor, format::Writer, FormatFields},
};

/// The field formatter for plain (colourless) text logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.finish()
    }
}

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Whether `field` takes the fast path: the default visitor treats
    /// `message`, `log.*` and `r#*` names specially.
    fn plain(field: &Field) -> bool {
        let name = field.name();
        name != "message" && !name.starts_with("log.") && !name.starts_with("r#")
    }

    fn name(&mut self, field: &Field) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }

    /// Lets the default visitor write `field`, then notes whether it wrote
    /// anything (it skips `log.*` fields, whose data is already shown).
    fn delegate(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.result = visitor.finish();
        if !field.name().starts_with("log.") {
            self.is_empty = false;
        }
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        if !Self::plain(field) {
            return self.delegate(field, |visitor| visitor.record_str(field, value));
        }
        self.result = self.name(field).and_then(|()| {
            let unchanged = value
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
            if unchanged {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            } else {
                write!(self.writer, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_err() {
            return;
        }
        if !Self::plain(field) {
            return self.delegate(field, |visitor| visitor.record_u64(field, value));
        }
        self.result = self
            .name(field)
            .and_then(|()| write!(self.writer, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_err() {
            return;
        }
        if !Self::plain(field) {
            return self.delegate(field, |visitor| visitor.record_i64(field, value));
        }
        self.result = self
            .name(field)
            .and_then(|()| write!(self.writer, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_err() {
            return;
        }
        if !Self::plain(field) {
            return self.delegate(field, |visitor| visitor.record_bool(field, value));
        }
        self.result = self
            .name(field)
            .and_then(|()| self.writer.write_str(if value { "true" } else { "false" }));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        self.delegate(field, |visitor| visitor.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        if !Self::plain(field) {
            return self.delegate(field, |visitor| visitor.record_debug(field, value));
        }
        self.result = self
            .name(field)
            .and_then(|()| write!(self.writer, "{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    fn emit() {
        let error = std::io::Error::other("disk full");
        tracing::info!(
            target: "wix_elevator::decision",
            request_id = "9f2c",
            path = Some("/members/v1/members/a%20b"),
            absent = None::<&str>,
            quoted = "say \"hi\"\n",
            unicode = "héllo\u{301}",
            status = 200u16,
            latency_us = 1234u64,
            delta = -5i64,
            retried = false,
            mode = %"elevate",
            debugged = ?("a", 1),
            r#type = "raw",
            error = &error as &(dyn std::error::Error + 'static),
            "decision {}", 7
        );
    }

    /// The fast path writes exactly what the default formatter writes.
    #[test]
    fn same_bytes_as_the_default_formatter() {
        let lines: Vec<String> = [false, true]
            .into_iter()
            .map(|plain| {
                let buffer = Buffer::default();
                let builder = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .without_time()
                    .with_writer(buffer.clone());
                if plain {
                    tracing::subscriber::with_default(
                        builder.fmt_fields(PlainFields).finish(),
                        emit,
                    );
                } else {
                    tracing::subscriber::with_default(builder.finish(), emit);
                }
                let bytes = buffer.0.lock().unwrap().clone();
                String::from_utf8(bytes).unwrap()
            })
            .collect();
        assert!(lines[0].contains("latency_us=1234"), "{}", lines[0]);
        assert_eq!(lines[0], lines[1]);
    }
}

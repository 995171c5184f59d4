//! A minimal HTTP/1.1 keep-alive client over one TCP connection: enough for
//! the scale checks to drive a million requests without a client library's
//! own costs, and to hold thousands of idle connections open.

use std::{io, net::SocketAddr};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One keep-alive connection, reopened when the server closes it.
pub struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    /// Times the connection was opened after the first time.
    pub reconnects: u32,
}

impl Connection {
    /// A connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> Self {
        assert!(
            addr.ip().is_loopback(),
            "bench clients talk to loopback only"
        );
        Self {
            addr,
            stream: None,
            buffer: Vec::with_capacity(4096),
            reconnects: 0,
        }
    }

    /// Opens the connection now.
    pub async fn connect(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        Ok(())
    }

    /// Sends one raw request and reads its whole response; returns the
    /// status. Reconnects once if the kept-alive connection was closed.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<u16> {
        match self.try_send(request).await {
            Ok(status) => Ok(status),
            Err(_) => {
                self.stream = None;
                self.reconnects += 1;
                self.try_send(request).await
            }
        }
    }

    async fn try_send(&mut self, request: &[u8]) -> io::Result<u16> {
        self.connect().await?;
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(request).await?;
        self.buffer.clear();
        let mut chunk = [0u8; 4096];
        // Headers.
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at + 4;
            }
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or(io::ErrorKind::InvalidData)?;
        let length = head.lines().find_map(|line| {
            line.strip_prefix("content-length:")
                .and_then(|value| value.trim().parse::<usize>().ok())
        });
        let chunked = head.contains("transfer-encoding: chunked");
        let close = head.contains("connection: close");
        // Body.
        loop {
            let body = &self.buffer[head_end..];
            let complete = match length {
                Some(length) => body.len() >= length,
                None if chunked => body.ends_with(b"0\r\n\r\n"),
                None => true,
            };
            if complete {
                break;
            }
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A keep-alive `GET` with a raw `Authorization` token.
pub fn get(host: SocketAddr, path: &str, token: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: {token}\r\naccept: application/json\r\n\r\n"
    )
    .into_bytes()
}

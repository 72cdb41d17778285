//! The byte streams OpenFlow sessions run over: a management socket's
//! client, or a connection out to a controller target.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A byte stream an OpenFlow session runs over.
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// Connects to a controller target (`tcp:HOST:PORT`, `unix:PATH`).
pub(crate) fn open(target: &str) -> std::io::Result<Stream> {
    match target.split_once(':') {
        Some(("tcp", addr)) => TcpStream::connect(addr).map(Stream::Tcp),
        Some(("unix", path)) => UnixStream::connect(path).map(Stream::Unix),
        _ => Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            format!("controller target {target:?}: expected tcp:HOST:PORT or unix:PATH"),
        )),
    }
}

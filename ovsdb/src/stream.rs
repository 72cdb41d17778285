//! OVS's active connection targets, `unix:PATH` and `tcp:HOST:PORT` (the
//! syntax ovsdb-server remotes and OpenFlow controllers share), and the
//! byte stream a connection to one is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Where a server listens, as OVS spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    Tcp(String),
}

/// A target OVS's syntax does not allow (or this client does not serve).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("target {0:?}: expected unix:PATH or tcp:HOST:PORT")]
pub struct BadTarget(pub String);

impl Target {
    pub fn parse(s: &str) -> Result<Target, BadTarget> {
        match s.split_once(':') {
            Some(("unix", p)) if !p.is_empty() => Ok(Target::Unix(PathBuf::from(p))),
            Some(("tcp", a)) if a.contains(':') => Ok(Target::Tcp(a.to_string())),
            _ => Err(BadTarget(s.to_string())),
        }
    }

    /// A connection to the target.
    pub fn connect(&self) -> std::io::Result<Stream> {
        match self {
            Target::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
            Target::Tcp(a) => TcpStream::connect(a).map(Stream::Tcp),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// A connection: a unix or a TCP stream.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// No more writes: the peer reads what was sent, then end of stream.
    pub fn shutdown_write(&self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_as_ovs_spells_them() {
        assert_eq!(
            Target::parse("unix:/run/openvswitch/db.sock").expect("unix"),
            Target::Unix("/run/openvswitch/db.sock".into())
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1:6640").expect("tcp"),
            Target::Tcp("127.0.0.1:6640".into())
        );
        for bad in ["", "unix:", "tcp:6640", "ssl:1.2.3.4:6640", "/run/db.sock"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}

//! What the lab's hosts do on their own kernel stacks: ICMP echo through a
//! raw socket (what `ping` does), and a small HTTP server and client on
//! kernel TCP. Each runs on a thread inside the endpoint's namespace
//! (`netns::in_netns`), so nothing here touches the machine's own stack.
//!
//! May call: `netns` (threads in a namespace), pipeline's wire views (the
//! echo and its reply) and libc for the raw socket (std has none), each
//! `unsafe` block with its `SAFETY:` line.
#![allow(unsafe_code)]

use super::netns::NetnsError;
use pipeline::wire::{icmp, IcmpPacket, IcmpRepr, Ipv4Packet};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a probe could not run. Each names the address it was for.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("raw socket: {0}")]
    RawSocket(#[source] io::Error),
    #[error("sendto {dst}: {source}")]
    Send {
        dst: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("listen {addr}: {source}")]
    Listen {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
    /// The listening socket could not be made non-blocking.
    #[error("{source}")]
    Nonblocking {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
    #[error("accept on {addr}: {source}")]
    Accept {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
    #[error("server on {0} did not start")]
    ServerNotStarted(SocketAddrV4),
    #[error("the server thread panicked")]
    ServerPanicked,
    #[error("connect {addr}: {source}")]
    Connect {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
    /// The connection's read timeout could not be set.
    #[error("{source}")]
    Timeout {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
    #[error("send to {addr}: {source}")]
    Request {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
    #[error("read from {addr}: {source}")]
    Response {
        addr: SocketAddrV4,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// The outcome of a ping run.
#[derive(Clone, Debug, Default)]
pub struct PingResult {
    pub sent: u32,
    pub received: u32,
    /// Source address and TTL of the last reply.
    pub reply_from: Option<Ipv4Addr>,
    pub reply_ttl: Option<u8>,
    pub rtt_us: Vec<u64>,
}

/// Data carried by each echo request.
const ECHO_DATA: &[u8] = b"vswitch lab echo payload 0123456789abcdef";

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; icmp::HEADER_LEN + ECHO_DATA.len()];
    if let Some(mut msg) = IcmpPacket::new_checked(&mut p[..]) {
        IcmpRepr {
            msg_type: icmp::types::ECHO_REQUEST,
            code: 0,
            identifier: id,
            sequence: seq,
        }
        .emit(&mut msg);
        msg.payload_mut().copy_from_slice(ECHO_DATA);
        msg.fill_checksum();
    }
    p
}

/// A reply to our echo: (source, ttl) when `buf` (IP header + ICMP, as a
/// raw socket receives it) is an echo reply with our id and sequence.
fn parse_reply(buf: &[u8], id: u16, seq: u16) -> Option<(Ipv4Addr, u8)> {
    let ip = Ipv4Packet::new_checked(buf)?;
    let msg = IcmpPacket::new_checked(buf.get(ip.header_len()..)?)?;
    if msg.msg_type() != icmp::types::ECHO_REPLY {
        return None;
    }
    (msg.identifier() == id && msg.sequence() == seq)
        .then_some((Ipv4Addr::from(ip.src_addr()), ip.ttl()))
}

/// Sends `count` echo requests to `dst`, one at a time, each waiting up to
/// `timeout` for its reply. Runs in the calling thread's namespace.
pub fn ping(
    dst: Ipv4Addr,
    count: u32,
    id: u16,
    timeout: Duration,
) -> Result<PingResult, ProbeError> {
    // SAFETY: creating a raw ICMP socket; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return Err(ProbeError::RawSocket(io::Error::last_os_error()));
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    // SAFETY: setting a receive timeout from a valid timeval.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut r = PingResult::default();
    let mut result = Ok(());
    for seq in 1..=count as u16 {
        let p = echo_request(id, seq);
        let start = Instant::now();
        // SAFETY: sending from a live buffer to a valid sockaddr_in.
        let n = unsafe {
            libc::sendto(
                fd,
                p.as_ptr() as *const libc::c_void,
                p.len(),
                0,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            result = Err(ProbeError::Send {
                dst,
                source: io::Error::last_os_error(),
            });
            break;
        }
        r.sent += 1;
        let mut buf = [0u8; 2048];
        while start.elapsed() < timeout {
            // SAFETY: receiving into a live buffer of the given length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n <= 0 {
                continue;
            }
            if let Some((src, ttl)) = parse_reply(&buf[..n as usize], id, seq) {
                r.received += 1;
                r.reply_from = Some(src);
                r.reply_ttl = Some(ttl);
                r.rtt_us.push(start.elapsed().as_micros() as u64);
                break;
            }
        }
    }
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    result.map(|_| r)
}

/// A small HTTP server: answers every request with one line naming the
/// server and the client address it saw (the NAT evidence), and records
/// those client addresses.
pub struct HttpServer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Result<Vec<SocketAddr>, ProbeError>>>,
}

impl HttpServer {
    /// Listens on `addr` inside namespace `ns`; returns once listening.
    pub fn start(ns: &str, addr: SocketAddrV4, name: &str) -> Result<HttpServer, ProbeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let name = name.to_string();
        let flag = stop.clone();
        let handle = super::netns::spawn_in_netns(ns, move || {
            let l = match TcpListener::bind(addr) {
                Ok(l) => l,
                Err(source) => {
                    // `start` returns this error; nobody joins the thread.
                    let _ = ready_tx.send(Err(ProbeError::Listen { addr, source }));
                    return Ok(Vec::new());
                }
            };
            l.set_nonblocking(true)
                .map_err(|source| ProbeError::Nonblocking { addr, source })?;
            let _ = ready_tx.send(Ok(()));
            let mut peers = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, peer)) => {
                        peers.push(peer);
                        serve(s, peer, &name);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(source) => return Err(ProbeError::Accept { addr, source }),
                }
            }
            Ok(peers)
        });
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(HttpServer {
                stop,
                handle: Some(handle),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ProbeError::ServerNotStarted(addr)),
        }
    }

    /// Stops the server; returns the client addresses it saw.
    pub fn stop(mut self) -> Result<Vec<SocketAddr>, ProbeError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            _ => Err(ProbeError::ServerPanicked),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut s: TcpStream, peer: SocketAddr, name: &str) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let body = format!("hello from {name}; you are {}\n", peer.ip());
    let _ = write!(
        s,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `GET /` from `addr` over kernel TCP in the calling thread's namespace;
/// returns the status line and the body.
pub fn http_get(addr: SocketAddrV4, timeout: Duration) -> Result<(String, String), ProbeError> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout)
        .map_err(|source| ProbeError::Connect { addr, source })?;
    s.set_read_timeout(Some(timeout))
        .map_err(|source| ProbeError::Timeout { addr, source })?;
    write!(
        s,
        "GET / HTTP/1.0\r\nHost: {}\r\nUser-Agent: vswitch-lab\r\n\r\n",
        addr.ip()
    )
    .map_err(|source| ProbeError::Request { addr, source })?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .map_err(|source| ProbeError::Response { addr, source })?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    Ok((status, body.trim_end().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_checksum_verifies() {
        let p = echo_request(0x1234, 7);
        assert_eq!(pipeline::packet::checksum(&p), 0);
        assert_eq!(&p[..8], &[8, 0, p[2], p[3], 0x12, 0x34, 0, 7]);
    }

    #[test]
    fn reply_parsing_checks_type_id_and_sequence() {
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 63, 1, 0, 0, 10, 1, 0, 13, 10, 1, 0, 11,
        ];
        let mut icmp = echo_request(9, 3);
        icmp[0] = 0;
        ip.extend_from_slice(&icmp);
        assert_eq!(
            parse_reply(&ip, 9, 3),
            Some((Ipv4Addr::new(10, 1, 0, 13), 63))
        );
        assert_eq!(parse_reply(&ip, 9, 4), None);
        assert_eq!(parse_reply(&ip, 8, 3), None);
        assert_eq!(parse_reply(&ip[..22], 9, 3), None);
    }
}

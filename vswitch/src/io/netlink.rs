//! Linux interfaces coming and going, as the kernel announces them on a
//! NETLINK_ROUTE socket subscribed to RTMGRP_LINK (RTM_NEWLINK /
//! RTM_DELLINK): what lets vswitchd notice that a bound device was
//! deleted (a VM's tap on a hard reboot or a migration) and bind it again
//! when a device of that name comes back, as ovs-vswitchd does.
//!
//! The messages are parsed without trusting them: every length is
//! checked against the buffer, a malformed message ends the parse of its
//! datagram.
#![cfg(target_os = "linux")]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// What happened to an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// Created, or changed (RTM_NEWLINK): its index and name.
    New { index: u32, name: String },
    /// Deleted (RTM_DELLINK).
    Deleted { index: u32, name: String },
}

/// A socket receiving the kernel's link announcements.
pub struct LinkMonitor {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// What [`LinkMonitor::receive`] got.
pub enum Received {
    Events(Vec<LinkEvent>),
    /// Nothing within the timeout.
    Nothing,
    /// The kernel dropped announcements (the socket's buffer overflowed):
    /// the caller must look at the interfaces it cares about itself.
    Lost,
}

impl LinkMonitor {
    /// Subscribes to link announcements; `receive` waits at most `timeout`.
    pub fn open(timeout: Duration) -> io::Result<LinkMonitor> {
        // SAFETY: plain socket(2); the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a socket we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all-zero is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = libc::RTMGRP_LINK as u32;
        // SAFETY: `sa` is a valid sockaddr_nl of the size given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: `tv` is a valid timeval of the size given.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(LinkMonitor {
            fd,
            buf: vec![0; 1 << 16],
        })
    }

    /// The next datagram's link events.
    pub fn receive(&mut self) -> io::Result<Received> {
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr() as *mut libc::c_void,
                self.buf.len(),
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(Received::Nothing),
                Some(libc::ENOBUFS) => Ok(Received::Lost),
                _ => Err(e),
            };
        }
        Ok(Received::Events(parse(&self.buf[..n as usize])))
    }
}

/// The interface index of `name`, if there is such an interface.
pub fn index_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The link events in one netlink datagram.
pub fn parse(datagram: &[u8]) -> Vec<LinkEvent> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= datagram.len() {
        let (Some(len), Some(kind)) = (u32_at(datagram, off), u16_at(datagram, off + 4)) else {
            break;
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || off + len > datagram.len() {
            break;
        }
        let msg = &datagram[off..off + len];
        if kind == libc::RTM_NEWLINK || kind == libc::RTM_DELLINK {
            if let Some((index, name)) = link(msg) {
                out.push(if kind == libc::RTM_NEWLINK {
                    LinkEvent::New { index, name }
                } else {
                    LinkEvent::Deleted { index, name }
                });
            }
        }
        off += align4(len);
    }
    out
}

/// The index and IFLA_IFNAME of one RTM_*LINK message.
fn link(msg: &[u8]) -> Option<(u32, String)> {
    let index = u32_at(msg, NLMSG_HDRLEN + 4)?;
    let mut at = NLMSG_HDRLEN + IFINFOMSG_LEN;
    while at + 4 <= msg.len() {
        let len = u16_at(msg, at)? as usize;
        let kind = u16_at(msg, at + 2)? & 0x3fff;
        if len < 4 || at + len > msg.len() {
            return None;
        }
        if kind == libc::IFLA_IFNAME {
            let raw = &msg[at + 4..at + len];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            let name = std::str::from_utf8(&raw[..end]).ok()?.to_string();
            return Some((index, name));
        }
        at += align4(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, index: u32, name: &str) -> Vec<u8> {
        let mut attr = Vec::new();
        let alen = 4 + name.len() + 1;
        attr.extend_from_slice(&(alen as u16).to_ne_bytes());
        attr.extend_from_slice(&libc::IFLA_IFNAME.to_ne_bytes());
        attr.extend_from_slice(name.as_bytes());
        attr.push(0);
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let len = NLMSG_HDRLEN + IFINFOMSG_LEN + attr.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&index.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn new_and_deleted_links_are_read_with_their_names() {
        let mut d = message(libc::RTM_DELLINK, 7, "tap-vm1");
        d.extend(message(libc::RTM_NEWLINK, 9, "tap-vm1"));
        assert_eq!(
            parse(&d),
            vec![
                LinkEvent::Deleted {
                    index: 7,
                    name: "tap-vm1".into()
                },
                LinkEvent::New {
                    index: 9,
                    name: "tap-vm1".into()
                }
            ]
        );
    }

    #[test]
    fn truncated_or_lying_messages_end_the_parse_without_panicking() {
        let whole = message(libc::RTM_NEWLINK, 3, "eth0");
        for cut in 0..whole.len() {
            let _ = parse(&whole[..cut]);
        }
        let mut lying = whole.clone();
        lying[0] = 0xff; // longer than the datagram
        assert!(parse(&lying).is_empty());
        let mut bad_attr = whole.clone();
        bad_attr[NLMSG_HDRLEN + IFINFOMSG_LEN] = 0xff;
        assert!(parse(&bad_attr).is_empty());
        for i in 0..whole.len() {
            let mut m = whole.clone();
            m[i] ^= 0xa5;
            let _ = parse(&m);
        }
    }
}

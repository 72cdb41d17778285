//! IPv4 prefixes, as routes, rules and NAT selectors name them.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// An IPv4 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cidr {
    pub addr: u32,
    pub len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().ok()?),
            None => (s, 32),
        };
        let addr: Ipv4Addr = a.parse().ok()?;
        (l <= 32).then(|| Cidr {
            addr: u32::from(addr),
            len: l,
        })
    }

    pub fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    pub fn network(self) -> u32 {
        self.addr & self.mask()
    }

    pub fn contains(self, ip: u32) -> bool {
        ip & self.mask() == self.network()
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        let m = self.mask() & other.mask();
        self.addr & m == other.addr & m
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network()), self.len)
    }
}

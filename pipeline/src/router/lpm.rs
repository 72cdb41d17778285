//! Longest-prefix match over IPv4 prefixes.
//!
//! Design: one hash table per prefix length, plus a list of the lengths in
//! use, longest first. A lookup probes only lengths that hold routes and
//! stops at the first hit, so its cost is the number of distinct prefix
//! lengths (a qrouter has 2–4: /24 subnets, the /31 rfp link, /32 FIP
//! routes, the default) rather than the number of routes. Built by the
//! control plane, read by the slow path; updates replace the whole table
//! through the snapshot.

use hashbrown::HashMap;

#[derive(Clone, Debug)]
pub struct Lpm<T> {
    /// `tables[len]`: network address → value, for prefixes of length `len`.
    tables: Vec<HashMap<u32, T>>,
    /// Prefix lengths that hold at least one entry, descending.
    lengths: Vec<u8>,
    len: usize,
}

impl<T: PartialEq> PartialEq for Lpm<T> {
    fn eq(&self, other: &Self) -> bool {
        self.tables == other.tables
    }
}

impl<T: Eq> Eq for Lpm<T> {}

impl<T> Default for Lpm<T> {
    fn default() -> Self {
        Lpm {
            tables: (0..=32).map(|_| HashMap::new()).collect(),
            lengths: Vec::new(),
            len: 0,
        }
    }
}

#[inline(always)]
fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32))
    }
}

impl<T> Lpm<T> {
    pub fn new() -> Lpm<T> {
        Lpm::default()
    }

    /// Inserts (or replaces) the route for `addr/len`. Host bits are ignored.
    pub fn insert(&mut self, addr: u32, len: u8, value: T) -> Option<T> {
        let len = len.min(32);
        let old = self.tables[len as usize].insert(addr & mask(len), value);
        if old.is_none() {
            self.len += 1;
            if !self.lengths.contains(&len) {
                self.lengths.push(len);
                self.lengths.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
        old
    }

    pub fn remove(&mut self, addr: u32, len: u8) -> Option<T> {
        let len = len.min(32);
        let old = self.tables[len as usize].remove(&(addr & mask(len)));
        if old.is_some() {
            self.len -= 1;
            if self.tables[len as usize].is_empty() {
                self.lengths.retain(|&l| l != len);
            }
        }
        old
    }

    /// The value of the longest prefix containing `ip`, and that prefix's length.
    #[inline]
    pub fn lookup(&self, ip: u32) -> Option<(&T, u8)> {
        for &len in &self.lengths {
            if let Some(v) = self.tables[len as usize].get(&(ip & mask(len))) {
                return Some((v, len));
            }
        }
        None
    }

    /// The value stored for exactly `addr/len`.
    pub fn get_exact(&self, addr: u32, len: u8) -> Option<&T> {
        let len = len.min(32);
        self.tables[len as usize].get(&(addr & mask(len)))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All entries as (network, length, value), longest prefixes first.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, &T)> {
        self.lengths.iter().flat_map(move |&l| {
            let mut v: Vec<_> = self.tables[l as usize]
                .iter()
                .map(move |(a, t)| (*a, l, t))
                .collect();
            v.sort_by_key(|(a, _, _)| *a);
            v
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(routes: &[(u32, u8, usize)], ip: u32) -> Option<(usize, u8)> {
        // Later inserts of the same prefix replace earlier ones.
        let mut best: Option<(usize, u8)> = None;
        for &(a, l, v) in routes {
            if ip & mask(l) == a & mask(l) {
                match best {
                    Some((_, bl)) if bl > l => {}
                    _ => best = Some((v, l)),
                }
            }
        }
        best
    }

    proptest! {
        #[test]
        fn lookup_equals_naive_longest_match(
            routes in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..60),
            probes in proptest::collection::vec(any::<u32>(), 1..50),
            removals in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            // Cluster addresses so that prefixes overlap often.
            let routes: Vec<(u32, u8, usize)> = routes
                .into_iter()
                .enumerate()
                .map(|(i, (a, l))| ((a & 0x0003_0f0f) | 0x0a00_0000, l, i))
                .collect();
            let mut lpm = Lpm::new();
            let mut live: Vec<(u32, u8, usize)> = Vec::new();
            for &(a, l, v) in &routes {
                lpm.insert(a, l, v);
                live.retain(|&(la, ll, _)| !(ll == l && la & mask(l) == a & mask(l)));
                live.push((a, l, v));
            }
            for r in removals {
                if live.is_empty() { break; }
                let (a, l, _) = live.remove(r % live.len());
                prop_assert!(lpm.remove(a, l).is_some());
            }
            prop_assert_eq!(lpm.len(), live.len());
            for p in probes {
                let ip = (p & 0x0003_0f0f) | 0x0a00_0000;
                prop_assert_eq!(lpm.lookup(ip).map(|(v, l)| (*v, l)), naive(&live, ip));
                prop_assert_eq!(lpm.lookup(p).map(|(v, l)| (*v, l)), naive(&live, p));
            }
        }
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut lpm = Lpm::new();
        lpm.insert(0, 0, "default");
        lpm.insert(0x0a010000, 24, "subnet1");
        lpm.insert(0xcb007165, 32, "fip");
        assert_eq!(lpm.lookup(0x0a010005).map(|x| *x.0), Some("subnet1"));
        assert_eq!(lpm.lookup(0xcb007165), Some((&"fip", 32)));
        assert_eq!(lpm.lookup(0x08080808), Some((&"default", 0)));
        lpm.remove(0, 0);
        assert_eq!(lpm.lookup(0x08080808), None);
    }
}

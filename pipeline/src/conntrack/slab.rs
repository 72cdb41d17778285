//! A shard's connections, compactly: each in a slot of a vector, found by
//! its original tuple through a hash table of slot numbers. A bucket of
//! the table is 4 bytes (and its control byte), not a copy of the tuple
//! beside an 88-byte entry; the vector grows by a quarter at a time.
//!
//! Ownership: one per conntrack shard, under the shard's lock.

use super::conn::Conn;
use super::tuple::Tuple;
use hashbrown::HashTable;
use std::hash::BuildHasher;

#[derive(Default)]
pub(super) struct ConnSlab {
    slots: Vec<Option<Conn>>,
    /// Empty slots, reused first.
    free: Vec<u32>,
    /// Slot numbers, hashed by the original tuple of their connection.
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl ConnSlab {
    /// The hash `slot_hashed` takes for `t`.
    #[inline]
    pub fn hash(&self, t: &Tuple) -> u64 {
        self.hasher.hash_one(t)
    }

    /// The slot of the connection whose original tuple is `t` (`hash` is
    /// `self.hash(t)`).
    #[inline]
    pub fn slot_hashed(&self, hash: u64, t: &Tuple) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(hash, |&i| is_conn_of(slots, i, t)).copied()
    }

    /// The connection in `slot` (from `slot_hashed`).
    #[inline]
    pub fn at_mut(&mut self, slot: u32) -> Option<&mut Conn> {
        self.slots.get_mut(slot as usize).and_then(|s| s.as_mut())
    }

    pub fn get(&self, t: &Tuple) -> Option<&Conn> {
        let slot = self.slot_hashed(self.hash(t), t)?;
        conn_at(&self.slots, slot)
    }

    pub fn get_mut(&mut self, t: &Tuple) -> Option<&mut Conn> {
        let slot = self.slot_hashed(self.hash(t), t)?;
        self.at_mut(slot)
    }

    pub fn contains_key(&self, t: &Tuple) -> bool {
        self.slot_hashed(self.hash(t), t).is_some()
    }

    /// Stores `c` under its original tuple, which no stored connection
    /// has (the caller checked, under the shard's lock).
    pub fn insert(&mut self, c: Conn) {
        let hash = self.hash(&c.orig);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(c);
                s
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // A quarter more at a time: at most a fifth of the
                    // slots stand empty after growing.
                    self.slots.reserve_exact(self.slots.len() / 4 + 16);
                }
                self.slots.push(Some(c));
                (self.slots.len() - 1) as u32
            }
        };
        let Self {
            slots,
            index,
            hasher,
            ..
        } = self;
        index.insert_unique(hash, slot, |&i| {
            conn_at(slots, i).map_or(0, |c| hasher.hash_one(c.orig))
        });
    }

    /// Takes out the connection whose original tuple is `t`.
    pub fn remove(&mut self, t: &Tuple) -> Option<Conn> {
        let hash = self.hash(t);
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash, |&i| is_conn_of(slots, i, t))
            .ok()?;
        let (slot, _) = entry.remove();
        let c = self.slots.get_mut(slot as usize)?.take();
        self.free.push(slot);
        c
    }

    /// Every connection, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().flatten()
    }

    /// Every connection's original tuple, in slot order.
    pub fn keys(&self) -> impl Iterator<Item = &Tuple> {
        self.values().map(|c| &c.orig)
    }
}

/// The connection in slot `i`, if the slot holds one.
#[inline]
fn conn_at(slots: &[Option<Conn>], i: u32) -> Option<&Conn> {
    slots.get(i as usize).and_then(|s| s.as_ref())
}

/// Slot `i` holds the connection whose original tuple is `t`.
#[inline]
fn is_conn_of(slots: &[Option<Conn>], i: u32, t: &Tuple) -> bool {
    conn_at(slots, i).is_some_and(|c| c.orig == *t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn conn(i: u16) -> Conn {
        let orig = Tuple {
            zone: 1,
            proto: 17,
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            sport: i,
            dport: 53,
        };
        Conn {
            orig,
            reply: orig.reverse(),
            tcp: None,
            seen_reply: false,
            snat: false,
            dnat: false,
            expires_ns: i as u64,
            queued_ns: i as u64,
            packets: [0; 2],
        }
    }

    #[test]
    fn slots_are_found_by_original_tuple_and_reused_after_removal() {
        let mut s = ConnSlab::default();
        for i in 0..1000 {
            s.insert(conn(i));
        }
        assert_eq!(s.values().count(), 1000);
        for i in (0..1000).step_by(2) {
            assert_eq!(
                s.remove(&conn(i).orig).map(|c| c.expires_ns),
                Some(i as u64)
            );
        }
        assert!(s.remove(&conn(0).orig).is_none(), "gone once");
        assert!(!s.contains_key(&conn(2).orig));
        assert!(s.contains_key(&conn(3).orig));
        let cap = s.slots.capacity();
        for i in 1000..1500 {
            s.insert(conn(i));
        }
        assert_eq!(s.slots.capacity(), cap, "freed slots are reused");
        assert_eq!(s.values().count(), 1000);
        if let Some(c) = s.get_mut(&conn(1499).orig) {
            c.packets[0] = 7;
        }
        assert_eq!(s.get(&conn(1499).orig).map(|c| c.packets[0]), Some(7));
        let mut keys: Vec<u16> = s.keys().map(|t| t.sport).collect();
        keys.sort();
        let want: Vec<u16> = (1..1000).step_by(2).chain(1000..1500).collect();
        assert_eq!(keys, want);
    }
}

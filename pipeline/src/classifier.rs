//! A table's compiled lookup: tuple space search over masked keys.
//!
//! What: given a key, find the highest-priority rule whose match covers it,
//! and report which key bits the answer depended on (the union of the masks
//! that were examined), so the caller can cache the answer megaflow-style.
//!
//! Design: rules are grouped by mask into subtables; each subtable is a hash
//! table from the masked key to its rules (best first). Subtables are
//! ordered by the highest priority they hold, and the search stops as soon
//! as no later subtable can beat the best rule found. A lookup therefore
//! costs one hash probe per distinct mask visited, not one comparison per
//! rule. Neutron's tables use few distinct masks (br-int table 0 of the
//! spec's example has 6 masks for 20 flows), so a lookup is a handful of
//! probes. The structure is built once per snapshot and never mutated:
//! updates build a new one.
//!
//! Staged lookup (as OVS does): a subtable's mask is also cut into growing
//! prefixes, metadata (in_port, registers, conntrack) → + L2 → + L3, and
//! for each prefix the subtable keeps the hashes of its rules' keys under
//! it. A key whose prefix is not among them cannot match the subtable, and
//! the answer then depends only on the prefix's bits: a UDP packet tried
//! against `icmp6,icmp_type=136` rules un-wildcards its ethertype, not its
//! source port, so the megaflow cache keeps one entry for all its flows.
//!
//! Ties: among rules of equal priority whose matches overlap, the one added
//! first wins (OpenFlow leaves this undefined; a fixed rule keeps lookups,
//! the cache and the reference scan in agreement).

use crate::flow::Match;
use crate::key::{Field, FlowKey, KEY_WORDS};
use hashbrown::HashTable;

/// One rule as the classifier sees it: a match, a priority and a payload.
#[derive(Clone, Debug)]
pub struct ClassifierRule<T> {
    pub matches: Match,
    pub priority: u16,
    pub value: T,
}

struct Entry<T> {
    /// The masked key all rules of this entry share.
    masked: FlowKey,
    hash: u64,
    /// (priority, insertion order, value), best first.
    rules: Vec<(u16, u32, T)>,
}

struct Subtable<T> {
    mask: FlowKey,
    /// Indexes of the words the mask touches: only these are hashed/compared.
    words: Vec<u8>,
    max_priority: u16,
    entries: HashTable<Entry<T>>,
    /// Proper prefixes of `mask` (metadata, + L2, + L3) that narrow it,
    /// shortest first.
    stages: Vec<Stage>,
}

/// One prefix of a subtable's mask and the hashes of its rules under it.
struct Stage {
    mask: FlowKey,
    words: Vec<u8>,
    /// Hashes (the table's own hash) of the rules' keys under `mask`.
    hashes: HashTable<u64>,
}

/// Which lookup stage a field belongs to: 0 metadata, 1 L2, 2 L3, 3 L4.
fn stage_of(f: Field) -> usize {
    match f {
        Field::InPort
        | Field::CtZone
        | Field::CtState
        | Field::Metadata
        | Field::Reg(_)
        | Field::RecircId => 0,
        Field::DlType | Field::VlanTci | Field::VlanTpid | Field::DlDst | Field::DlSrc => 1,
        Field::NwProto
        | Field::NwTos
        | Field::NwTtl
        | Field::NwFrag
        | Field::NwSrc
        | Field::NwDst
        | Field::ArpSha
        | Field::ArpTha => 2,
        Field::TpSrc
        | Field::TpDst
        | Field::TcpFlags
        | Field::IcmpId
        | Field::NdTargetHi
        | Field::NdTargetLo => 3,
        Field::Ipv6SrcHi | Field::Ipv6SrcLo | Field::Ipv6DstHi | Field::Ipv6DstLo => 2,
    }
}

fn mask_words(mask: &FlowKey) -> Vec<u8> {
    (0..KEY_WORDS)
        .filter(|&i| mask.w[i] != 0)
        .map(|i| i as u8)
        .collect()
}

/// The proper prefixes of `mask` worth a stage, shortest first.
fn stage_masks(mask: &FlowKey) -> Vec<FlowKey> {
    let mut out: Vec<FlowKey> = Vec::new();
    for last in 0..3 {
        let mut m = FlowKey::ZERO;
        for f in Field::ALL {
            if stage_of(f) <= last {
                m.set(f, mask.get(f));
            }
        }
        let narrows = m != *mask && m != FlowKey::ZERO;
        if narrows && out.last() != Some(&m) {
            out.push(m);
        }
    }
    out
}

/// An immutable classifier over rules with payload `T`.
pub struct Classifier<T> {
    subtables: Vec<Subtable<T>>,
    n_rules: usize,
}

/// Mixes the words of `key` selected by `words` under `mask`: a serial
/// multiply-xorshift chain, cheapest for the one or two words a table's
/// subtable masks usually have.
#[inline(always)]
fn hash_subtable(key: &FlowKey, mask: &FlowKey, words: &[u8]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &i in words {
        let i = i as usize;
        if let (Some(k), Some(m)) = (key.w.get(i), mask.w.get(i)) {
            h = (h ^ (k & m)).wrapping_mul(0x5851_f42d_4c95_7f2d);
            h ^= h >> 29;
        }
    }
    h
}

/// Mixes the words of `key` selected by `words` under `mask`, for the flow
/// cache's megaflow masks (several words each).
///
/// Each word is multiplied by its own odd constant (independent multiplies
/// pipeline, unlike a serial chain) and the sum goes through a one-multiply
/// xor-shift finaliser so that the top bits hashbrown uses for its control bytes are
/// well mixed.
#[inline(always)]
pub(crate) fn hash_masked(key: &FlowKey, mask: &FlowKey, words: &[u8]) -> u64 {
    const K: [u64; crate::key::KEY_WORDS] = [
        0x9e37_79b9_7f4a_7c15,
        0xc2b2_ae3d_27d4_eb4f,
        0x1656_67b1_9e37_79f9,
        0x85eb_ca77_c2b2_ae63,
        0x27d4_eb2f_1656_67c5,
        0xff51_afd7_ed55_8ccd,
        0xc4ce_b9fe_1a85_ec53,
        0x8766_2f0d_ae1d_7d6b,
        0x5851_f42d_4c95_7f2d,
        0x1405_7b7e_f767_814f,
        0xd6e8_feb8_6659_fd93,
        0xa076_1d64_78bd_642f,
        0xe703_7ed1_a0b4_28db,
        0x8ebc_6af0_9c88_c6e3,
        0x6a09_e667_f3bc_c909,
        0xbb67_ae85_84ca_a73b,
        0x3c6e_f372_fe94_f82b,
        0xa54f_f53a_5f1d_36f1,
        0x510e_527f_ade6_82d1,
    ];
    let mut h: u64 = words.len() as u64;
    for &i in words {
        let i = i as usize;
        if let (Some(k), Some(m), Some(c)) = (key.w.get(i), mask.w.get(i), K.get(i)) {
            h = h.wrapping_add(((k & m) ^ c).wrapping_mul(c | 1).rotate_left(31));
        }
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 29)
}

impl<T> Default for Classifier<T> {
    fn default() -> Self {
        Classifier {
            subtables: Vec::new(),
            n_rules: 0,
        }
    }
}

impl<T: Clone> Classifier<T> {
    /// Builds the classifier. Rules earlier in the input win ties of equal priority.
    pub fn build(rules: impl IntoIterator<Item = ClassifierRule<T>>) -> Classifier<T> {
        let mut subtables: Vec<Subtable<T>> = Vec::new();
        let mut n_rules = 0;
        for (seq, rule) in rules.into_iter().enumerate() {
            n_rules += 1;
            let mask = rule.matches.mask;
            let st_idx = match subtables.iter().position(|s| s.mask == mask) {
                Some(i) => i,
                None => {
                    let words = (0..KEY_WORDS)
                        .filter(|&i| mask.w[i] != 0)
                        .map(|i| i as u8)
                        .collect();
                    subtables.push(Subtable {
                        mask,
                        words,
                        max_priority: 0,
                        entries: HashTable::new(),
                        stages: Vec::new(),
                    });
                    subtables.len() - 1
                }
            };
            let st = &mut subtables[st_idx];
            st.max_priority = st.max_priority.max(rule.priority);
            let masked = rule.matches.value.masked(&mask);
            let hash = hash_subtable(&masked, &mask, &st.words);
            let item = (rule.priority, seq as u32, rule.value);
            match st.entries.find_mut(hash, |e| e.masked == masked) {
                Some(e) => {
                    let pos = e
                        .rules
                        .iter()
                        .position(|r| {
                            (r.0, std::cmp::Reverse(r.1)) < (item.0, std::cmp::Reverse(item.1))
                        })
                        .unwrap_or(e.rules.len());
                    e.rules.insert(pos, item);
                }
                None => {
                    st.entries.insert_unique(
                        hash,
                        Entry {
                            masked,
                            hash,
                            rules: vec![item],
                        },
                        |e| e.hash,
                    );
                }
            }
        }
        for st in &mut subtables {
            st.stages = stage_masks(&st.mask)
                .into_iter()
                .map(|mask| {
                    let words = mask_words(&mask);
                    let mut hashes = HashTable::new();
                    for e in st.entries.iter() {
                        let h = hash_subtable(&e.masked, &mask, &words);
                        if hashes.find(h, |&x| x == h).is_none() {
                            hashes.insert_unique(h, h, |&x| x);
                        }
                    }
                    Stage {
                        mask,
                        words,
                        hashes,
                    }
                })
                .collect();
        }
        subtables.sort_by_key(|s| std::cmp::Reverse(s.max_priority));
        Classifier { subtables, n_rules }
    }

    pub fn len(&self) -> usize {
        self.n_rules
    }

    pub fn is_empty(&self) -> bool {
        self.n_rules == 0
    }

    /// Number of distinct masks (subtables).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// Finds the best rule for `key`. Every mask examined is OR-ed into
    /// `wc`: the result is the same for any key equal to `key` under `wc`.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<(&T, u16)> {
        let mut best: Option<(u16, u32, &T)> = None;
        for st in &self.subtables {
            if let Some((bp, _, _)) = best {
                if st.max_priority < bp {
                    break;
                }
            }
            // A prefix no rule has: no match, whatever the other bits.
            let pruned = st.stages.iter().find(|stg| {
                let h = hash_subtable(key, &stg.mask, &stg.words);
                stg.hashes.find(h, |&x| x == h).is_none()
            });
            if let Some(stg) = pruned {
                for &i in &stg.words {
                    let i = i as usize;
                    wc.w[i] |= stg.mask.w[i];
                }
                continue;
            }
            for &i in &st.words {
                let i = i as usize;
                wc.w[i] |= st.mask.w[i];
            }
            let hash = hash_subtable(key, &st.mask, &st.words);
            let found = st.entries.find(hash, |e| {
                st.words.iter().all(|&i| {
                    let i = i as usize;
                    key.w[i] & st.mask.w[i] == e.masked.w[i]
                })
            });
            if let Some(e) = found {
                if let Some(r) = e.rules.first() {
                    let better = match best {
                        None => true,
                        Some((bp, bseq, _)) => r.0 > bp || (r.0 == bp && r.1 < bseq),
                    };
                    if better {
                        best = Some((r.0, r.1, &r.2));
                    }
                }
            }
        }
        best.map(|(p, _, v)| (v, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: a linear scan with the same tie rule.
    fn naive<'a>(rules: &'a [ClassifierRule<usize>], key: &FlowKey) -> Option<(usize, u16)> {
        let mut best: Option<&'a ClassifierRule<usize>> = None;
        for r in rules {
            if r.matches.matches(key) && best.is_none_or(|b| r.priority > b.priority) {
                best = Some(r);
            }
        }
        best.map(|r| (r.value, r.priority))
    }

    const FIELDS: [Field; 8] = [
        Field::InPort,
        Field::DlType,
        Field::VlanTci,
        Field::DlSrc,
        Field::DlDst,
        Field::NwSrc,
        Field::NwDst,
        Field::Reg(3),
    ];

    /// Small value domains so that random keys actually hit random rules.
    fn field_value(f: Field, v: u8) -> u64 {
        match f {
            Field::DlSrc | Field::DlDst => 0xfa163e000000 | (v as u64 & 3),
            Field::NwSrc | Field::NwDst => 0x0a010000 | ((v as u64 & 3) << 8) | (v as u64 & 1),
            _ => v as u64 & 3,
        }
    }

    fn arb_match() -> impl Strategy<Value = Match> {
        proptest::collection::vec((0..FIELDS.len(), any::<u8>(), 0u8..3), 0..4).prop_map(|fs| {
            let mut m = Match::ANY;
            for (fi, v, maskkind) in fs {
                let f = FIELDS[fi];
                let mask = match maskkind {
                    0 => f.full_mask(),
                    1 => f.full_mask() & !0xff,
                    _ => 1,
                };
                m.set(f, field_value(f, v), mask);
            }
            m
        })
    }

    fn arb_key() -> impl Strategy<Value = FlowKey> {
        proptest::collection::vec(any::<u8>(), FIELDS.len()).prop_map(|vs| {
            let mut k = FlowKey::ZERO;
            for (f, v) in FIELDS.iter().zip(vs) {
                k.set(*f, field_value(*f, v));
            }
            k
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn lookup_equals_linear_scan(
            specs in proptest::collection::vec((arb_match(), 0u16..6), 0..40),
            keys in proptest::collection::vec(arb_key(), 1..30),
        ) {
            let rules: Vec<_> = specs
                .into_iter()
                .enumerate()
                .map(|(i, (m, p))| ClassifierRule { matches: m, priority: p, value: i })
                .collect();
            let cls = Classifier::build(rules.clone());
            for key in &keys {
                let mut wc = FlowKey::ZERO;
                let got = cls.lookup(key, &mut wc).map(|(v, p)| (*v, p));
                prop_assert_eq!(got, naive(&rules, key));
                // Any key that agrees on the reported bits gets the same answer.
                let mut other = *key;
                for i in 0..KEY_WORDS {
                    other.w[i] = (key.w[i] & wc.w[i]) | (!wc.w[i] & 0x5555_aaaa_0f0f_f0f0);
                }
                let mut wc2 = FlowKey::ZERO;
                let again = cls.lookup(&other, &mut wc2).map(|(v, p)| (*v, p));
                prop_assert_eq!(again, got);
            }
        }
    }

    #[test]
    fn a_subtable_pruned_at_an_early_stage_leaves_later_fields_wildcarded() {
        // Neutron's `icmp6,in_port=P,icmp_type=136` (table 0): a UDP packet
        // from P depends on its ethertype, not on its ports.
        use crate::wire::icmp::types_v6::NEIGHBOR_ADVERT;
        use crate::wire::{ethertype, ipproto};
        let mut nd = Match::ANY;
        nd.set_exact(Field::InPort, 5);
        nd.set_exact(Field::DlType, ethertype::IPV6 as u64);
        nd.set_exact(Field::NwProto, ipproto::ICMPV6 as u64);
        nd.set_exact(Field::TpSrc, NEIGHBOR_ADVERT as u64);
        let mut port = Match::ANY;
        port.set_exact(Field::InPort, 5);
        let cls = Classifier::build([
            ClassifierRule {
                matches: nd,
                priority: 10,
                value: "nd",
            },
            ClassifierRule {
                matches: port,
                priority: 9,
                value: "port",
            },
        ]);
        let mut key = FlowKey::ZERO;
        key.set(Field::InPort, 5);
        key.set(Field::DlType, ethertype::IPV4 as u64);
        key.set(Field::NwProto, ipproto::UDP as u64);
        key.set(Field::TpSrc, 1234);
        let mut wc = FlowKey::ZERO;
        assert_eq!(cls.lookup(&key, &mut wc).map(|(v, _)| *v), Some("port"));
        assert_eq!(wc.get(Field::TpSrc), 0, "source port stays wildcarded");
        assert_eq!(wc.get(Field::NwProto), 0);
        assert_eq!(wc.get(Field::DlType), Field::DlType.full_mask());
        // An ICMPv6 NA from the port still matches, on every field.
        key.set(Field::DlType, ethertype::IPV6 as u64);
        key.set(Field::NwProto, ipproto::ICMPV6 as u64);
        key.set(Field::TpSrc, NEIGHBOR_ADVERT as u64);
        let mut wc = FlowKey::ZERO;
        assert_eq!(cls.lookup(&key, &mut wc).map(|(v, _)| *v), Some("nd"));
        assert_eq!(wc.get(Field::TpSrc), Field::TpSrc.full_mask());
    }

    #[test]
    fn priority_then_insertion_order() {
        let mut m = Match::ANY;
        m.set_exact(Field::InPort, 1);
        let rules = vec![
            ClassifierRule {
                matches: Match::ANY,
                priority: 0,
                value: "miss",
            },
            ClassifierRule {
                matches: m,
                priority: 5,
                value: "first",
            },
            ClassifierRule {
                matches: m,
                priority: 5,
                value: "second",
            },
        ];
        let cls = Classifier::build(rules);
        let mut key = FlowKey::ZERO;
        key.set(Field::InPort, 1);
        let mut wc = FlowKey::ZERO;
        assert_eq!(cls.lookup(&key, &mut wc), Some((&"first", 5)));
        key.set(Field::InPort, 2);
        assert_eq!(cls.lookup(&key, &mut wc), Some((&"miss", 0)));
        assert_eq!(cls.n_subtables(), 2);
    }

    #[test]
    fn stops_before_lower_priority_subtables() {
        let mut hi = Match::ANY;
        hi.set_exact(Field::InPort, 1);
        let mut lo = Match::ANY;
        lo.set_exact(Field::DlSrc, 7);
        let cls = Classifier::build(vec![
            ClassifierRule {
                matches: hi,
                priority: 10,
                value: 1,
            },
            ClassifierRule {
                matches: lo,
                priority: 1,
                value: 2,
            },
        ]);
        let mut key = FlowKey::ZERO;
        key.set(Field::InPort, 1);
        let mut wc = FlowKey::ZERO;
        assert_eq!(cls.lookup(&key, &mut wc).map(|(v, _)| *v), Some(1));
        assert_eq!(wc.get(Field::DlSrc), 0, "lower subtable was not examined");
        assert_eq!(wc.get(Field::InPort), 0xffff_ffff);
    }
}

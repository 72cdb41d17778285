//! TEMPORARY stub (replaced by the packet branch).
use crate::key::Mac;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rewrite { EthSrc(Mac), EthDst(Mac), VlanPush { tpid: u16, tci: u16 }, VlanSetTci(u16), VlanPop, Ipv4Src(u32), Ipv4Dst(u32), Ipv4Tos(u8), Ipv4Ttl(u8), Ipv4DecTtl, L4Src(u16), L4Dst(u16), IcmpId(u16) }

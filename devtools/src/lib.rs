//! What does not ship on a compute node: the tools that develop, test and
//! measure vswitch.
//!
//! `sim` runs several hosts' pipelines in one process with the wires
//! between them; `traffic` writes a §8 walk's frames as they arrive at a
//! host; `replay` runs the pcap-replay benchmark through the daemon's own
//! worker loop; `ovs_dpdk` runs Open vSwitch with DPDK beside it on the same
//! capture; `testpmd` measures the I/O floor (DPDK's testpmd forwarding
//! the same capture); `lab` builds the reference article's experiment out of network
//! namespaces and runs its scenarios on real kernels (`vswitch lab`);
//! `spec` is the spec's example topology and the constants of its world
//! (the upstream router, the external host) that all of them share;
//! `shipped` finds the binaries that ship, for the tools that run them.
//!
//! May call: `pipeline`, `topology` and `vswitch` (the daemon as a library
//! and its control client). Nothing that ships depends on this crate.
//! `unsafe` is only in `lab::netns` and `lab::probe` (entering a
//! namespace, the ethtool ioctl, a raw ICMP socket: calls std does not
//! have), which allow it; every other module denies it.
#![deny(unsafe_code)]

pub mod lab;
pub mod ovs_dpdk;
pub mod replay;
pub mod shipped;
pub mod sim;
pub mod spec;
pub mod testpmd;
pub mod traffic;

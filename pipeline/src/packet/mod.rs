//! Packets: pooled buffers, the one-pass parser, in-place rewrites.
//!
//! Design: a `PacketBuf` is a fixed allocation of `HEADROOM + max_frame`
//! bytes taken from a per-worker `PacketPool`; nothing on the fast path
//! allocates. The frame starts `HEADROOM` bytes in so that a VLAN tag can be
//! pushed by moving only the 12 address bytes. `parse` reads the headers
//! once into a `FlowKey` and a `Layout` (where each header starts); rewrites
//! use the layout and never re-parse. Every read and write of header
//! bytes goes through a length-checked view (`wire`), so a short or
//! malformed frame is a `DropReason`, never a panic.

#[allow(unsafe_code)] // lent storage: see the SAFETY notes in buf.rs
mod buf;
pub mod embedded;
pub mod generate;
mod layout;
mod parse;
mod rewrite;
pub mod synth;
pub mod verify;

pub use buf::{Lender, PacketBuf, PacketPool, DEFAULT_MAX_FRAME, HEADROOM, NAT_SPORT_SET};
pub use layout::{Layout, L3, L4};

pub use crate::wire::checksum::checksum;
pub use parse::{parse, parse_into, Parsed};
pub use rewrite::{apply, apply_inline, Rewrite};

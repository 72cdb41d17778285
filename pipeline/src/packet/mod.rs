//! Packets: buffers, zero-copy header views, parse to a `FlowKey`, in-place
//! rewrites with incremental checksums. (in progress: see the interface below)
//!
//! Interface the rest of the pipeline codes against:
//! * `PacketBuf`: a buffer with headroom (for a VLAN push) and a fixed
//!   capacity (largest accepted frame), reused from a `PacketPool`.
//! * `parse(frame, in_port) -> Result<Parsed, DropReason>`: `Parsed { key, layout }`.
//! * `Rewrite` + `apply(&mut PacketBuf, &Rewrite) -> Result<(), DropReason>`.

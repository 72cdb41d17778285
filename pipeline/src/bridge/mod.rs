//! What a bridge does beyond its flow tables: the `NORMAL` action and the
//! MAC learning it relies on. (Tables, ports and patch links are compiled in
//! `switch`; the walk through them is `xlate`.)

pub mod mac;
pub(crate) mod normal;

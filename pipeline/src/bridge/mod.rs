//! A bridge's live state beyond its flow tables: the MAC learning table
//! NORMAL uses. (Tables, ports and patch links are compiled in `switch`;
//! the walk through them, NORMAL included, is `xlate`.)

pub mod mac;

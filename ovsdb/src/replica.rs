//! The rows of the tables a client monitors, as the server last told it
//! (RFC 7047 §4.1.5–4.1.6): the monitor's reply fills it, each `update`
//! notification changes it. A row update has `new` (the row's columns
//! now: inserted, or all monitored columns after a change) and/or `old`
//! (present on change and delete); no `new` means the row is gone.
//!
//! Owner: the one thread that reads the connection; others get copies.

use crate::datum::{Datum, DatumError, Uuid};
use serde_json::Value;
use std::collections::BTreeMap;

/// A row: its columns by name (only the monitored ones).
pub type Row = BTreeMap<String, Datum>;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("table updates: not an object of tables: {0}")]
    Shape(String),
    #[error("table {table}, row {row}: {source}")]
    Datum {
        table: String,
        row: String,
        #[source]
        source: DatumError,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replica {
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
}

impl Replica {
    /// Applies `<table-updates>` (a monitor's reply or an `update`'s
    /// second parameter). A malformed update changes nothing.
    pub fn apply(&mut self, updates: &Value) -> Result<(), UpdateError> {
        let parsed = parse_updates(updates)?;
        for (table, rows) in parsed {
            let t = self.tables.entry(table).or_default();
            for (uuid, new) in rows {
                match new {
                    Some(cols) => t.entry(uuid).or_default().extend(cols),
                    None => {
                        t.remove(&uuid);
                    }
                }
            }
        }
        Ok(())
    }

    /// Every row of `table`.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.tables.get(table).into_iter().flatten()
    }

    pub fn row(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table).and_then(|t| t.get(uuid))
    }

    /// The one row of a table that has one (`Open_vSwitch`).
    pub fn only_row(&self, table: &str) -> Option<(&Uuid, &Row)> {
        let mut it = self.rows(table);
        match (it.next(), it.next()) {
            (Some(r), None) => Some(r),
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.tables.clear();
    }
}

type ParsedRows = Vec<(Uuid, Option<Row>)>;

fn parse_updates(updates: &Value) -> Result<Vec<(String, ParsedRows)>, UpdateError> {
    let shape = |v: &Value| UpdateError::Shape(v.to_string());
    let Value::Object(tables) = updates else {
        return Err(shape(updates));
    };
    let mut out = Vec::new();
    for (table, rows) in tables {
        let Value::Object(rows) = rows else {
            return Err(shape(rows));
        };
        let mut parsed = Vec::new();
        for (uuid, update) in rows {
            let datum_err = |source| UpdateError::Datum {
                table: table.clone(),
                row: uuid.clone(),
                source,
            };
            let uuid = Uuid::parse(uuid).map_err(datum_err)?;
            let Value::Object(update) = update else {
                return Err(shape(update));
            };
            let new = match update.get("new") {
                None | Some(Value::Null) => None,
                Some(Value::Object(cols)) => Some(
                    cols.iter()
                        .map(|(c, v)| Ok((c.clone(), Datum::from_json(v).map_err(datum_err)?)))
                        .collect::<Result<Row, UpdateError>>()?,
                ),
                Some(other) => return Err(shape(other)),
            };
            parsed.push((uuid, new));
        }
        out.push((table.clone(), parsed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "00000000-0000-0000-0000-00000000000a";
    const B: &str = "00000000-0000-0000-0000-00000000000b";

    #[test]
    fn inserts_changes_and_deletes_follow_the_server() {
        let mut r = Replica::default();
        r.apply(&json!({"Port": {
            A: {"new": {"name": "tap1", "tag": ["set", []]}},
            B: {"new": {"name": "tap2", "tag": 3}},
        }}))
        .expect("initial");
        assert_eq!(r.rows("Port").count(), 2);
        r.apply(
            &json!({"Port": {A: {"old": {"tag": ["set", []]}, "new": {"name": "tap1", "tag": 5}}}}),
        )
        .expect("change");
        let a = r.row("Port", &Uuid::parse(A).expect("uuid")).expect("row");
        assert_eq!(a["tag"].as_int(), Some(5));
        r.apply(&json!({"Port": {B: {"old": {"name": "tap2", "tag": 3}}}}))
            .expect("delete");
        assert_eq!(r.rows("Port").count(), 1);
        assert!(r.row("Port", &Uuid::parse(B).expect("uuid")).is_none());
    }

    #[test]
    fn a_malformed_update_changes_nothing() {
        let mut r = Replica::default();
        r.apply(&json!({"Port": {A: {"new": {"name": "tap1"}}}}))
            .expect("initial");
        let before = r.clone();
        for bad in [
            json!([1]),
            json!({"Port": 5}),
            json!({"Port": {"nope": {"new": {}}}}),
            json!({"Port": {B: {"new": {"name": "ok"}}, A: {"new": {"tag": {"x": 1}}}}}),
        ] {
            assert!(r.apply(&bad).is_err(), "{bad}");
            assert_eq!(r, before, "{bad}");
        }
    }
}

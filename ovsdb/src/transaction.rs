//! The operations of a `transact` request (RFC 7047 §5.2): what a switch
//! writes back (update by UUID, insert, delete, mutate) and a comment the
//! server logs. The server applies all of a request's operations or none.

use crate::datum::{Atom, Datum, Uuid};
use serde_json::{json, Map, Value};

/// `column function value`, e.g. `_uuid == ["uuid", …]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub column: String,
    pub function: &'static str,
    pub value: Datum,
}

impl Condition {
    /// The row with this UUID.
    pub fn uuid(u: &Uuid) -> Condition {
        Condition {
            column: "_uuid".into(),
            function: "==",
            value: Datum::one(Atom::Uuid(u.clone())),
        }
    }

    pub fn equals(column: &str, value: Datum) -> Condition {
        Condition {
            column: column.into(),
            function: "==",
            value,
        }
    }

    fn to_json(&self) -> Value {
        json!([self.column, self.function, self.value.to_json()])
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    Insert {
        table: String,
        row: Vec<(String, Datum)>,
        /// The name later operations of the request use for the new row.
        uuid_name: Option<String>,
    },
    Update {
        table: String,
        conditions: Vec<Condition>,
        row: Vec<(String, Datum)>,
    },
    /// `mutations`: (column, mutator such as `insert`, `delete`, `+=`, value).
    Mutate {
        table: String,
        conditions: Vec<Condition>,
        mutations: Vec<(String, &'static str, Datum)>,
    },
    Delete {
        table: String,
        conditions: Vec<Condition>,
    },
    Comment(String),
}

fn row_json(row: &[(String, Datum)]) -> Value {
    Value::Object(
        row.iter()
            .map(|(c, d)| (c.clone(), d.to_json()))
            .collect::<Map<_, _>>(),
    )
}

fn where_json(conditions: &[Condition]) -> Value {
    Value::Array(conditions.iter().map(Condition::to_json).collect())
}

impl Operation {
    pub fn to_json(&self) -> Value {
        match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                let mut op = json!({"op": "insert", "table": table, "row": row_json(row)});
                if let (Some(n), Value::Object(o)) = (uuid_name, &mut op) {
                    o.insert("uuid-name".into(), json!(n));
                }
                op
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                json!({"op": "update", "table": table, "where": where_json(conditions), "row": row_json(row)})
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => json!({
                "op": "mutate",
                "table": table,
                "where": where_json(conditions),
                "mutations": mutations
                    .iter()
                    .map(|(c, m, v)| json!([c, m, v.to_json()]))
                    .collect::<Vec<_>>(),
            }),
            Operation::Delete { table, conditions } => {
                json!({"op": "delete", "table": table, "where": where_json(conditions)})
            }
            Operation::Comment(c) => json!({"op": "comment", "comment": c}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_written_as_the_rfc_spells_them() {
        let u = Uuid::parse("36bbf9d5-e0b4-4a5d-9c3e-2a2b5d8f1c7e").expect("uuid");
        let op = Operation::Update {
            table: "Interface".into(),
            conditions: vec![Condition::uuid(&u)],
            row: vec![("ofport".into(), Datum::one(3i64))],
        };
        assert_eq!(
            op.to_json(),
            json!({"op": "update", "table": "Interface",
                   "where": [["_uuid", "==", ["uuid", "36bbf9d5-e0b4-4a5d-9c3e-2a2b5d8f1c7e"]]],
                   "row": {"ofport": 3}})
        );
        let ins = Operation::Insert {
            table: "Port".into(),
            row: vec![("name".into(), Datum::one("p"))],
            uuid_name: Some("newport".into()),
        };
        assert_eq!(
            ins.to_json(),
            json!({"op": "insert", "table": "Port", "row": {"name": "p"}, "uuid-name": "newport"})
        );
    }
}

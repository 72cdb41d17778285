//! OVSDB values (RFC 7047 §5.1): an atom is an integer, real, boolean,
//! string or UUID; a datum, the value of a column, is a set of atoms or a
//! map from atoms to atoms. On the wire a set of one atom may be the bare
//! atom, a UUID is `["uuid", "…"]` (`["named-uuid", "…"]` inside a
//! transaction), a set `["set", […]]` and a map `["map", [[k, v], …]]`.
//! Decoding refuses anything else with the JSON it could not read.

use serde_json::{json, Value};
use std::fmt;

/// A value the protocol does not allow, with the JSON it came as.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DatumError {
    #[error("not an OVSDB atom: {0}")]
    Atom(String),
    #[error("not an OVSDB datum: {0}")]
    Datum(String),
    #[error("not a UUID: {0:?}")]
    Uuid(String),
}

/// A row's UUID, lower-case `8-4-4-4-12` hex as the server writes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(String);

impl Uuid {
    pub fn parse(s: &str) -> Result<Uuid, DatumError> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == lens.len()
            && groups
                .iter()
                .zip(lens)
                .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(Uuid(s.to_ascii_lowercase()))
        } else {
            Err(DatumError::Uuid(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One value of a column's key or value type.
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(String),
    Uuid(Uuid),
    /// A row inserted by the same transaction, by the name it was given
    /// there (`uuid-name`); only in requests.
    NamedUuid(String),
}

impl Atom {
    pub fn from_json(v: &Value) -> Result<Atom, DatumError> {
        let bad = || DatumError::Atom(v.to_string());
        match v {
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::String(s) => Ok(Atom::String(s.clone())),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n.as_f64().map(Atom::Real).ok_or_else(bad),
            },
            Value::Array(a) => match (a.first().and_then(Value::as_str), a.get(1), a.len()) {
                (Some("uuid"), Some(Value::String(u)), 2) => Ok(Atom::Uuid(Uuid::parse(u)?)),
                (Some("named-uuid"), Some(Value::String(n)), 2) => Ok(Atom::NamedUuid(n.clone())),
                _ => Err(bad()),
            },
            Value::Null | Value::Object(_) => Err(bad()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u.as_str()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_uuid(&self) -> Option<&Uuid> {
        match self {
            Atom::Uuid(u) => Some(u),
            _ => None,
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(s.to_string())
    }
}

impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}

/// A column's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    Set(Vec<Atom>),
    Map(Vec<(Atom, Atom)>),
}

impl Datum {
    /// The empty set (an optional column with no value).
    pub fn empty() -> Datum {
        Datum::Set(Vec::new())
    }

    /// A set of one atom (a scalar column, or an optional one set).
    pub fn one(a: impl Into<Atom>) -> Datum {
        Datum::Set(vec![a.into()])
    }

    pub fn strings<S: AsRef<str>>(items: &[S]) -> Datum {
        Datum::Set(items.iter().map(|s| Atom::from(s.as_ref())).collect())
    }

    pub fn string_map<K: AsRef<str>, V: AsRef<str>>(items: &[(K, V)]) -> Datum {
        Datum::Map(
            items
                .iter()
                .map(|(k, v)| (Atom::from(k.as_ref()), Atom::from(v.as_ref())))
                .collect(),
        )
    }

    pub fn from_json(v: &Value) -> Result<Datum, DatumError> {
        if let Value::Array(a) = v {
            match (a.first().and_then(Value::as_str), a.get(1), a.len()) {
                (Some("set"), Some(Value::Array(items)), 2) => {
                    return items
                        .iter()
                        .map(Atom::from_json)
                        .collect::<Result<_, _>>()
                        .map(Datum::Set);
                }
                (Some("map"), Some(Value::Array(pairs)), 2) => {
                    return pairs
                        .iter()
                        .map(|p| match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((Atom::from_json(k)?, Atom::from_json(v)?)),
                            _ => Err(DatumError::Datum(p.to_string())),
                        })
                        .collect::<Result<_, _>>()
                        .map(Datum::Map);
                }
                (Some("uuid" | "named-uuid"), _, _) => {}
                _ => return Err(DatumError::Datum(v.to_string())),
            }
        }
        Ok(Datum::Set(vec![Atom::from_json(v)?]))
    }

    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(items) if items.len() == 1 => items[0].to_json(),
            Datum::Set(items) => {
                json!(["set", items.iter().map(Atom::to_json).collect::<Vec<_>>()])
            }
            Datum::Map(pairs) => json!([
                "map",
                pairs
                    .iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// The atoms of a set (nothing for a map).
    pub fn atoms(&self) -> &[Atom] {
        match self {
            Datum::Set(items) => items,
            Datum::Map(_) => &[],
        }
    }

    /// The only atom of a set of one.
    pub fn single(&self) -> Option<&Atom> {
        match self.atoms() {
            [a] => Some(a),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.single().and_then(Atom::as_str)
    }

    pub fn as_int(&self) -> Option<i64> {
        self.single().and_then(Atom::as_int)
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.single() {
            Some(Atom::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn uuids(&self) -> impl Iterator<Item = &Uuid> {
        self.atoms().iter().filter_map(Atom::as_uuid)
    }

    pub fn ints(&self) -> impl Iterator<Item = i64> + '_ {
        self.atoms().iter().filter_map(Atom::as_int)
    }

    pub fn strs(&self) -> impl Iterator<Item = &str> {
        self.atoms().iter().filter_map(Atom::as_str)
    }

    /// The value of string key `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Atom> {
        match self {
            Datum::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            Datum::Set(_) => None,
        }
    }

    /// `get` of a string value.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Atom::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_forms_decode_and_encode_back() {
        let cases = [
            json!(5),
            json!("br-int"),
            json!(true),
            json!(["uuid", "36bbf9d5-e0b4-4a5d-9c3e-2a2b5d8f1c7e"]),
            json!(["set", []]),
            json!(["set", [1, 2, 3]]),
            json!([
                "map",
                [["iface-id", "abc"], ["attached-mac", "fa:16:3e:00:00:01"]]
            ]),
            json!([
                "set",
                [
                    ["uuid", "36bbf9d5-e0b4-4a5d-9c3e-2a2b5d8f1c7e"],
                    ["uuid", "00000000-0000-0000-0000-000000000001"]
                ]
            ]),
        ];
        for c in cases {
            let d = Datum::from_json(&c).expect("decodes");
            assert_eq!(d.to_json(), c);
        }
        // A set of one written as ["set", [x]] comes back as the bare atom.
        let d = Datum::from_json(&json!(["set", [4095]])).expect("decodes");
        assert_eq!(d.as_int(), Some(4095));
        assert_eq!(d.to_json(), json!(4095));
    }

    #[test]
    fn accessors_read_scalars_sets_and_maps() {
        let m = Datum::from_json(&json!(["map", [["peer", "phy-br-vlan"]]])).expect("map");
        assert_eq!(m.get_str("peer"), Some("phy-br-vlan"));
        assert_eq!(m.get_str("other"), None);
        assert_eq!(
            Datum::from_json(&json!(["set", []])).expect("set").as_int(),
            None
        );
        let t = Datum::from_json(&json!(["set", [1, 2]])).expect("set");
        assert_eq!(t.ints().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(t.as_int(), None, "two atoms are not a scalar");
    }

    #[test]
    fn malformed_values_are_refused_with_what_came() {
        for bad in [
            json!(null),
            json!({"a": 1}),
            json!(["uuid", "not-a-uuid"]),
            json!(["set", 5]),
            json!(["map", [[1]]]),
            json!(["bag", []]),
            json!(["uuid"]),
        ] {
            let e = Datum::from_json(&bad).expect_err("refused");
            assert!(!e.to_string().is_empty());
        }
    }
}

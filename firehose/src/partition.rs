//! Dynamic partitioning keys from JSON records: the `MetadataExtraction` processor's
//! `MetadataExtractionQuery`, a jq expression (AWS runs JQ-1.6) evaluated with `jaq`
//! (`jaq-core`, `jaq-std`, `jaq-json`), a maintained jq clone in Rust.
//!
//! The query must produce one JSON object whose values are scalars, e.g.
//! `{customer_id: .customer_id, device: .type.device, year: .ts | strftime("%Y")}`; its members
//! are the values of `!{partitionKeyFromQuery:KEY}` in the prefix. A record that is not JSON, or
//! for which the query fails or yields anything else, goes to the error output.

use std::collections::BTreeMap;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{unwrap_valr, Compiler, Ctx, Native, Vars};
use jaq_json::Val;

type Filter = jaq_core::compile::Filter<Native<JustLut<Val>>>;

/// A compiled `MetadataExtractionQuery`.
pub struct KeyQuery {
    text: String,
    filter: Filter,
}

impl std::fmt::Debug for KeyQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyQuery").field("text", &self.text).finish()
    }
}

impl KeyQuery {
    /// Parses and compiles `query`; the error says why, for AWS's InvalidArgumentException.
    pub fn compile(query: &str) -> Result<Self, String> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code: query, path: () })
            .map_err(|errors| format!("the query does not parse ({} error(s))", errors.len()))?;
        let filter = Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
            let names: Vec<String> =
                errors.iter().flat_map(|(_, errs)| errs.iter().map(|(name, _)| name.to_string())).collect();
            format!("the query uses undefined names: {}", names.join(", "))
        })?;
        Ok(KeyQuery { text: query.to_string(), filter })
    }

    /// The query's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The partition keys of one record.
    pub fn keys(&self, record: &[u8]) -> Result<BTreeMap<String, String>, String> {
        let input = jaq_json::read::parse_single(record).map_err(|e| format!("Non JSON record provided: {e}"))?;
        let ctx = Ctx::<JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let first = match outputs.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(format!("The query failed: {e}")),
            None => return Err("The query produced no value.".into()),
        };
        if outputs.next().is_some() {
            return Err("The query produced more than one value.".into());
        }
        let Val::Obj(object) = first else {
            return Err(format!("The query must produce an object, not {first}."));
        };
        let mut keys = BTreeMap::new();
        for (k, v) in object.iter() {
            let key = match k {
                Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
                other => other.to_string(),
            };
            let value = match v {
                Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
                Val::Num(_) | Val::Bool(_) => v.to_string(),
                Val::Null => return Err(format!("The partition key {key} is null.")),
                other => return Err(format!("The partition key {key} is not a scalar: {other}.")),
            };
            keys.insert(key, value);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_keys_like_the_developer_guide() {
        let q = KeyQuery::compile(
            r#"{customer_id: .customer_id, device: .type.device, year: .event_timestamp | strftime("%Y"), n: .n}"#,
        )
        .unwrap();
        let keys = q
            .keys(br#"{"type": {"device": "mobile"}, "customer_id": "1234567890", "event_timestamp": 1565382027, "n": 3}"#)
            .unwrap();
        assert_eq!(keys["customer_id"], "1234567890");
        assert_eq!(keys["device"], "mobile");
        assert_eq!(keys["year"], "2019");
        assert_eq!(keys["n"], "3");
    }

    #[test]
    fn bad_records_and_queries() {
        let q = KeyQuery::compile("{c: .c}").unwrap();
        assert!(q.keys(b"not json").is_err());
        assert!(q.keys(br#"{"d": 1}"#).is_err(), "null key");
        assert!(q.keys(br#"{"c": [1]}"#).is_err(), "array key");
        assert!(KeyQuery::compile("{c: .c").is_err());
        assert!(KeyQuery::compile("{c: nosuchfunction}").is_err());
        let many = KeyQuery::compile(".[]").unwrap();
        assert!(many.keys(br#"[{"a":1},{"a":2}]"#).is_err());
    }
}

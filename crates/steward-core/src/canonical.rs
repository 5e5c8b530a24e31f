//! Canonical JSON: the one byte form that digests and audit hashes are computed over.
//!
//! Objects have their keys sorted by UTF-8 bytes, there is no insignificant whitespace,
//! strings use serde_json's escaping and numbers serde_json's shortest round-trip form.
//! This is the JSON Canonicalization Scheme (RFC 8785) for every value Steward writes
//! (integers and finite floats); it is stable because the digest of a version depends on it.

use serde_json::Value;

/// Serialises `value` canonically.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            // Scalars: serde_json's compact form is already canonical.
            out.push_str(&value.to_string());
        }
        Value::Array(items) => {
            out.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (entry_idx, (key, item)) in entries.into_iter().enumerate() {
                if entry_idx > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let value = json!({"b": [1, {"z": true, "a": null}], "a": "x\n", "é": 1.5, "B": -0});
        expect![[r#"{"B":0,"a":"x\n","b":[1,{"a":null,"z":true}],"é":1.5}"#]]
            .assert_eq(&super::to_string(&value));
    }

    #[test]
    fn insertion_order_does_not_change_the_bytes() {
        let one = json!({"a": 1, "b": 2});
        let mut two = serde_json::Map::new();
        two.insert("b".into(), json!(2));
        two.insert("a".into(), json!(1));
        assert_eq!(
            super::to_string(&one),
            super::to_string(&serde_json::Value::Object(two))
        );
    }
}

//! SBA (REST) answers.
//!
//! No public source shows an SBA body (reference §1.4). What is assumed: a list is a JSON array,
//! bare or wrapped (`{"Payload": […], "Messages": []}`, `value`, `Items`…), and objects carry the
//! SOAP objects' field names (`Key.Id`, `ModifiedDate`, `Addresses[].InternetAddresses`).
//! Objects are turned into the same tree the SOAP answers give, so both interfaces produce
//! the very same records through [`crate::records`].

use serde_json::Value;

use crate::xml::Element;

/// The records of a list answer.
pub fn items(body: Value) -> Result<Vec<Value>, String> {
    match body {
        Value::Array(a) => Ok(a),
        Value::Object(mut o) => {
            for key in ["Payload", "payload", "value", "Items", "items", "Data", "data"] {
                match o.remove(key) {
                    Some(Value::Array(a)) => return Ok(a),
                    Some(inner @ Value::Object(_)) => return items(inner),
                    _ => {}
                }
            }
            let arrays: Vec<Value> = o.into_iter().map(|(_, v)| v).filter(Value::is_array).collect();
            match <[Value; 1]>::try_from(arrays) {
                Ok([Value::Array(a)]) => Ok(a),
                _ => Err("the SBA answer holds no list of records".into()),
            }
        }
        _ => Err("the SBA answer is neither a list nor an object".into()),
    }
}

/// The single object of an item answer (`{"Payload": {…}}` or the bare object).
pub fn item(body: Value) -> Option<Value> {
    match body {
        Value::Object(mut o) => match o.remove("Payload") {
            Some(p @ Value::Object(_)) => Some(p),
            Some(Value::Null) => None,
            Some(other) => {
                o.insert("Payload".into(), other);
                Some(Value::Object(o))
            }
            None => Some(Value::Object(o)),
        },
        _ => None,
    }
}

/// A JSON value as the element tree a SOAP answer would give: object members become children,
/// array items children named after the array (`PhoneNumbers` → `PhoneNumber`), scalars text,
/// `null` a nil element.
pub fn to_element(name: &str, value: &Value) -> Element {
    let mut e = Element { name: name.to_owned(), ..Element::default() };
    match value {
        Value::Null => e.nil = true,
        Value::Bool(b) => e.text = b.to_string(),
        Value::Number(n) => e.text = n.to_string(),
        Value::String(s) => e.text = s.clone(),
        Value::Array(items) => {
            let child = item_name(name);
            e.children = items.iter().map(|v| to_element(child, v)).collect();
        }
        Value::Object(o) => e.children = o.iter().map(|(k, v)| to_element(k, v)).collect(),
    }
    e
}

fn item_name(array: &str) -> &str {
    match array {
        "Addresses" => "CustomerAddress",
        _ => array.strip_suffix('s').unwrap_or(array),
    }
}

/// The id of a list item: `Key.Id`, or a flat `Id`.
pub fn item_id(v: &Value) -> Option<String> {
    v.pointer("/Key/Id")
        .or_else(|| v.get("Id"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records;
    use serde_json::json;

    #[test]
    fn lists_are_found_in_arrays_and_wrappers() {
        assert_eq!(items(json!([1, 2])).unwrap().len(), 2);
        assert_eq!(items(json!({"Payload": [1], "Messages": []})).unwrap().len(), 1);
        assert_eq!(items(json!({"value": {"Items": [1, 2, 3]}})).unwrap().len(), 3);
        assert_eq!(items(json!({"Customers": [1], "Count": 1})).unwrap().len(), 1);
        assert!(items(json!({"a": 1})).is_err());
        assert_eq!(item(json!({"Payload": {"Id": 1}, "Messages": []})), Some(json!({"Id": 1})));
        assert_eq!(item(json!({"Payload": null, "Messages": [{"Text": "gone"}]})), None);
        assert_eq!(item_id(&json!({"Key": {"Id": "AARON "}})).as_deref(), Some("AARON"));
    }

    #[test]
    fn sba_objects_make_the_same_records_as_soap() {
        let c = json!({
            "Key": {"Id": "AARONFIT0001"}, "Name": "Aaron Fitz", "IsActive": true,
            "PhoneNumbers": [{"Value": "4255550101"}],
            "ModifiedDate": "2024-05-02T13:14:15.437",
            "DefaultAddressKey": {"Id": "PRIMARY"},
            "Addresses": [{"Key": {"Id": "PRIMARY"}, "City": "Chicago",
                           "InternetAddresses": {"EmailToAddress": "x@y.com;z@y.com", "InternetField1": null}}]
        });
        let r = records::customer(None, &to_element("Customer", &c), None);
        assert_eq!(r["Id"], "AARONFIT0001");
        assert_eq!(r["IsActive"], true);
        assert_eq!(r["Phone"], "4255550101");
        assert_eq!(r["email"], "x@y.com");
        assert_eq!(r["email_others"], json!(["z@y.com"]));
        assert_eq!(r["BillingAddress"]["City"], "Chicago");
        assert_eq!(r["ModifiedDate"], "2024-05-02T13:14:15.437Z");
        let i = json!({"Key": {"Id": "INV1"}, "IsVoided": false, "TransactionState": "Open",
                       "CurrentDocumentAmount": {"Value": 0.0}, "DocumentAmount": {"Currency": "USD", "Value": 12.5},
                       "Date": "2024-04-30"});
        let r = records::invoice(None, &to_element("ReceivablesInvoice", &i), None);
        assert_eq!(r["payment_status"], "paid");
        assert_eq!(r["DocumentAmount"], 12.5);
        assert_eq!(r["Date"], "2024-04-30");
    }
}

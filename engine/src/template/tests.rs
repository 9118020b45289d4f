use super::*;
use minijinja::context;
use minijinja::value::Serde;
use serde_json::json;

const VARS: &[&str] = &["record", "vars"];

fn render(template: &str, record: serde_json::Value) -> Result<Value, String> {
    let t = Templates::new().compile(template, VARS).map_err(|e| e.message)?;
    t.render(&context! { record => Serde(record) })
}

#[test]
fn single_expression_keeps_json_type() {
    let rec = json!({"amount": 12.5, "qty": 3, "ok": true, "none": null, "obj": {"a": 1}, "list": [1, 2]});
    assert_eq!(render("{{ record.amount }}", rec.clone()).unwrap(), json!(12.5));
    assert_eq!(render("{{ record.qty }}", rec.clone()).unwrap(), json!(3));
    assert_eq!(render("{{ record.ok }}", rec.clone()).unwrap(), json!(true));
    assert_eq!(render("{{ record.none }}", rec.clone()).unwrap(), json!(null));
    assert_eq!(render("{{ record.obj }}", rec.clone()).unwrap(), json!({"a": 1}));
    assert_eq!(render("{{ record.list }}", rec.clone()).unwrap(), json!([1, 2]));
    // Anything around the expression makes it text.
    assert_eq!(render("n{{ record.qty }}", rec.clone()).unwrap(), json!("n3"));
    assert_eq!(render("{{ record.qty }}{{ record.qty }}", rec).unwrap(), json!("33"));
}

#[test]
fn null_prints_as_nothing_inside_text() {
    assert_eq!(render("a{{ record.x }}b", json!({"x": null})).unwrap(), json!("ab"));
}

#[test]
fn undefined_is_an_error_not_empty() {
    let e = render("{{ record.missing }}", json!({})).unwrap_err();
    assert!(e.contains("undefined"), "{e}");
    let e = render("x{{ record.missing }}", json!({})).unwrap_err();
    assert!(e.contains("undefined"), "{e}");
    assert_eq!(render("{{ record.missing | default('n/a') }}", json!({})).unwrap(), json!("n/a"));
    // The message names the expression, so a fallback to a missing var is recognisable.
    let t = Templates::new().compile("{{ record.code or vars.default_currency }}", VARS).unwrap();
    let e = t.render(&context! { record => Serde(json!({"code": ""})), vars => Serde(json!({})) }).unwrap_err();
    assert_eq!(
        e,
        "`record.code or vars.default_currency` rendered to an undefined value (a record field or var it reads does not exist)"
    );
}

#[test]
fn unknown_variable_is_reported_with_offset_and_hint() {
    let e = Templates::new().compile("{{ recrod.email }}", VARS).unwrap_err();
    assert_eq!(e.offset, 3);
    assert!(e.message.contains("unknown variable `recrod`"), "{}", e.message);
    assert!(e.message.contains("did you mean `record`"), "{}", e.message);
}

#[test]
fn unknown_filter_and_test_are_reported() {
    let e = Templates::new().compile("{{ record.email | lowr }}", VARS).unwrap_err();
    assert_eq!(e.offset, 18);
    assert!(e.message.contains("unknown filter `lowr`") && e.message.contains("`lower`"), "{}", e.message);
    let e = Templates::new().compile_condition("record.x is defind", VARS).unwrap_err();
    assert!(e.message.contains("unknown test `defind`"), "{}", e.message);
    assert!(Templates::new().compile_condition("record.x is not none and not record.y", VARS).is_ok());
}

#[test]
fn loop_variables_and_keyword_arguments_are_not_unknown() {
    let t =
        "{% for l in record.lines %}{{ l.sku }}{{ loop.index }}{% endfor %}{{ record.d | format_date(format='%Y') }}";
    assert!(Templates::new().compile(t, VARS).is_ok());
    assert!(Templates::new().compile("{% set x = 1 %}{{ x }}", VARS).is_ok());
}

#[test]
fn syntax_errors_carry_their_offset() {
    let e = Templates::new().compile("ab {{ record. }}", VARS).unwrap_err();
    assert!(e.message.starts_with("template syntax error"), "{}", e.message);
    assert!(e.offset >= 3, "{}", e.offset);
}

#[test]
fn every_listed_builtin_filter_and_test_exists() {
    let t = Templates::new();
    for f in BUILTIN_FILTERS {
        let src = format!("{{{{ record | {f} }}}}");
        let compiled = t.compile(&src, VARS).unwrap();
        if let Err(e) = compiled.render(&context! { record => 1 }) {
            assert!(!e.contains("unknown filter"), "{f}: {e}");
        }
    }
    for name in BUILTIN_TESTS {
        let c = t.compile_condition(&format!("record is {name}"), VARS).unwrap();
        if let Err(e) = c.is_true(&context! { record => 1 }) {
            assert!(!e.contains("unknown test"), "{name}: {e}");
        }
    }
}

#[test]
fn custom_filters() {
    let r = |t: &str, v: serde_json::Value| render(t, json!({ "v": v })).unwrap();
    assert_eq!(r("{{ record.v | md5 }}", json!("abc")), json!("900150983cd24fb0d6963f7d28e17f72"));
    assert_eq!(
        r("{{ record.v | subscriber_hash }}", json!(" Urist.McVankab@FreddiesJokes.com ")),
        json!("62eeb292278cc15f5817cb78f7790b08")
    );
    assert_eq!(r("{{ record.v | email }}", json!(" Ada@Example.COM ")), json!("ada@example.com"));
    assert_eq!(r("{{ record.v | first_email }}", json!("nope; Ada@example.com; b@c.de")), json!("ada@example.com"));
    assert_eq!(r("{{ record.v | first_name }}", json!("Ada King Lovelace")), json!("Ada"));
    assert_eq!(r("{{ record.v | last_name }}", json!("Ada King Lovelace")), json!("King Lovelace"));
    assert_eq!(r("{{ record.v | first_name }}", json!("Lovelace, Ada")), json!("Ada"));
    assert_eq!(r("{{ record.v | last_name }}", json!("Cher")), json!(""));
    assert_eq!(r("{{ record.v | format_date('%d/%m/%Y') }}", json!("2026-03-01T10:00:00Z")), json!("01/03/2026"));
    assert_eq!(r("{{ record.v | format_date }}", json!("2026-03-01")), json!("2026-03-01"));
    assert_eq!(r("{{ record.v | iso8601 }}", json!("2026-03-01T10:00:00+01:00")), json!("2026-03-01T09:00:00Z"));
    assert_eq!(r("{{ record.v | iso8601 }}", json!("2026-03-01T10:00:00")), json!("2026-03-01T10:00:00Z"));
    assert_eq!(r("{{ record.v | decimal }}", json!("2.675")), json!(2.68));
    assert_eq!(r("{{ record.v | decimal }}", json!(2.675)), json!(2.68));
    assert_eq!(r("{{ record.v | decimal(0) }}", json!(-2.5)), json!(-3));
    assert_eq!(r("{{ record.v | decimal(1) }}", json!(9.96)), json!(10.0));
    assert_eq!(r("{{ record.v | digits }}", json!("+1 (555) 010-99")), json!("155501099"));
    assert_eq!(r("{{ record.v | max_chars(3) }}", json!("abcdef")), json!("abc"));
    assert_eq!(r("{{ record.v | required }}", json!("x")), json!("x"));
}

#[test]
fn failing_filters_explain_why() {
    let e = render("{{ record.v | email }}", json!({"v": "not-an-email"})).unwrap_err();
    assert!(e.contains("`not-an-email` is not a valid email address"), "{e}");
    let e = render("{{ record.v | required(message='invoice has no currency') }}", json!({"v": ""})).unwrap_err();
    assert!(e.contains("invoice has no currency"), "{e}");
    let e = render("{{ record.v | decimal }}", json!({"v": "12,5"})).unwrap_err();
    assert!(e.contains("not a number"), "{e}");
    let e = render("{{ record.v | iso8601 }}", json!({"v": "yesterday"})).unwrap_err();
    assert!(e.contains("not a date"), "{e}");
}

#[test]
fn fuel_stops_runaway_templates() {
    let e = render("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", json!({}))
        .unwrap_err();
    assert!(e.to_lowercase().contains("fuel"), "{e}");
}

#[test]
fn decimal_text_rounding() {
    use super::filters::round_decimal_text as r;
    assert_eq!(r("2.675", 2).as_deref(), Some("2.68"));
    assert_eq!(r("2.674", 2).as_deref(), Some("2.67"));
    assert_eq!(r("-0.004", 2).as_deref(), Some("0.00"));
    assert_eq!(r("999.995", 2).as_deref(), Some("1000.00"));
    assert_eq!(r("5", 2).as_deref(), Some("5.00"));
    assert_eq!(r(".5", 0).as_deref(), Some("1"));
    assert_eq!(r("1e3", 2), None);
    assert_eq!(r("", 2), None);
}

#[test]
fn email_validation() {
    use super::filters::normalize_email as n;
    assert_eq!(n("a.b+tag@example.co.uk").as_deref(), Some("a.b+tag@example.co.uk"));
    for bad in
        ["", "a", "a@b", "@b.com", "a@@b.com", "a b@c.com", "a@b..com", "a.@b.com", "a@-b.com", "a@b.com;c@d.com"]
    {
        assert_eq!(n(bad), None, "{bad}");
    }
}

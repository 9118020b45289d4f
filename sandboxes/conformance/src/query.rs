//! Query strings: `application/x-www-form-urlencoded` pairs, percent-decoded.

/// Splits a query string (with or without the leading `?`) into decoded `(name, value)` pairs, in
/// order. A name without `=` has an empty value.
pub(crate) fn parse(query: &str) -> Vec<(String, String)> {
    query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Percent-decodes one component (`+` is a space); invalid escapes are kept as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: Option<&u8>) -> Option<u8> {
    let byte = *byte?;
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        assert_eq!(
            parse("?a=1&b=x%20y+z&flag&&c=%E2%9C%93&bad=%zz%4"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("flag".into(), String::new()),
                ("c".into(), "✓".into()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
        assert!(parse("").is_empty());
    }
}

//! System query options as BC's OData stack reads them: each at most once, unknown `$` options
//! rejected, `$top`/`$skip` non-negative integers. Custom options (`company`, `tenant`, `aid`)
//! pass through. Values are form-decoded like ASP.NET does (`+` is a space), so an offset in a
//! date literal must be sent as `%2B`.

use crate::errors::ApiError;

/// The query options of one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueryOptions {
    /// `$filter` text.
    pub filter: Option<String>,
    /// `$select` text.
    pub select: Option<String>,
    /// `$expand` text.
    pub expand: Option<String>,
    /// `$orderby` text.
    pub orderby: Option<String>,
    /// `$top`.
    pub top: Option<usize>,
    /// `$skip` (ignored when paging with a skip token).
    pub skip: Option<usize>,
    /// `$skiptoken` from a nextLink.
    pub skiptoken: Option<String>,
    /// `$count=true` adds `@odata.count`.
    pub count: bool,
    /// `?company=<id or name>` for routes without a `companies(...)` segment [MS-STRUCT].
    pub company: Option<String>,
}

/// Options BC accepts (others starting with `$` are errors).
const KNOWN: [&str; 10] =
    ["$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$skiptoken", "$count", "$schemaversion", "$format"];

impl QueryOptions {
    pub(crate) fn parse(raw: &str) -> Result<QueryOptions, ApiError> {
        let mut options = QueryOptions::default();
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let (key, value) = (key.into_owned(), value.into_owned());
            if !key.starts_with('$') {
                if key.eq_ignore_ascii_case("company") {
                    options.company = Some(value);
                }
                continue;
            }
            if !KNOWN.contains(&key.as_str()) {
                return Err(ApiError::query(format!("The query parameter '{key}' is not supported.")));
            }
            if seen.contains(&key) {
                return Err(ApiError::query(format!(
                    "Query option '{key}' was specified more than once, but it must be specified at most once."
                )));
            }
            seen.push(key.clone());
            match key.as_str() {
                "$filter" => options.filter = Some(value),
                "$select" => options.select = Some(value),
                "$expand" => options.expand = Some(value),
                "$orderby" => options.orderby = Some(value),
                "$top" => options.top = Some(non_negative("$top", &value)?),
                "$skip" => options.skip = Some(non_negative("$skip", &value)?),
                "$skiptoken" => options.skiptoken = Some(value),
                "$count" => {
                    options.count = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(ApiError::query(format!("'{value}' is not a valid count option."))),
                    }
                }
                "$format" if value != "json" && !value.starts_with("application/json") => {
                    return Err(ApiError::query(format!("The requested format '{value}' is not supported.")));
                }
                _ => {}
            }
        }
        Ok(options)
    }

    /// Rejects options that only make sense on collections.
    pub(crate) fn single_entity(&self) -> Result<(), ApiError> {
        let given = [
            ("$filter", self.filter.is_some()),
            ("$orderby", self.orderby.is_some()),
            ("$top", self.top.is_some()),
            ("$skip", self.skip.is_some()),
            ("$skiptoken", self.skiptoken.is_some()),
        ];
        match given.iter().find(|(_, set)| *set) {
            Some((name, _)) => {
                Err(ApiError::query(format!("The query option '{name}' is not allowed on a single entity.")))
            }
            None => Ok(()),
        }
    }
}

fn non_negative(name: &str, value: &str) -> Result<usize, ApiError> {
    value.parse::<usize>().map_err(|_| {
        ApiError::query(format!(
            "Invalid value '{value}' for {name} query option found. The {name} query option requires a non-negative integer value."
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let o = QueryOptions::parse("$filter=number%20eq%20%2710000%27&$top=5&company=abc&aid=FIN").unwrap();
        assert_eq!(o.filter.as_deref(), Some("number eq '10000'"));
        assert_eq!(o.top, Some(5));
        assert_eq!(o.company.as_deref(), Some("abc"));
        assert_eq!(QueryOptions::parse("$top=-1").unwrap_err().code, "BadRequest_NotFound");
        assert!(QueryOptions::parse("$foo=1").is_err());
        assert!(QueryOptions::parse("$top=1&$top=2").is_err());
        assert!(QueryOptions::parse("$filter=a+eq+1").unwrap().filter.unwrap().contains(' '));
    }
}

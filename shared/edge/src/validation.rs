//! Checking request bodies: every problem is reported at once, each with the JSON pointer of its
//! field, and never with the offending value (it may be personal).

use crate::error::{ApiError, FieldError};
use jiff::ToSpan;
use jiff::civil::Date;

use serde::de::DeserializeOwned;

/// Collects field errors; [`Validator::finish`] turns them into one 422.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the field at `pointer` breaks a rule.
    pub fn reject(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        });
    }

    /// Records an error unless `ok`.
    pub fn check(&mut self, ok: bool, pointer: impl Into<String>, detail: impl Into<String>) {
        if !ok {
            self.reject(pointer, detail);
        }
    }

    /// Whether nothing was rejected so far.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when nothing was rejected, else 422 listing every field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }

    /// A required, trimmed text of 1..=`max` characters.
    pub fn text(&mut self, pointer: &str, value: &str, max: usize) {
        let length = value.trim().chars().count();
        self.check(length > 0, pointer, "must not be empty");
        self.check(
            length <= max,
            pointer,
            format!("must be at most {max} characters"),
        );
    }

    /// A phone number in E.164 form: `+` then 8 to 15 digits, the first not 0.
    pub fn phone(&mut self, pointer: &str, value: &str) {
        self.check(
            is_e164(value),
            pointer,
            "must be an E.164 number such as +13075550142",
        );
    }

    /// An e-mail address of plausible shape.
    pub fn email(&mut self, pointer: &str, value: &str) {
        self.check(is_email(value), pointer, "must be an e-mail address");
    }
}

/// Whether `value` is an E.164 phone number.
pub fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0')
}

/// Whether `value` looks like an e-mail address (one `@`, a dotted domain, no spaces).
pub fn is_email(value: &str) -> bool {
    let value = value.trim();
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && value.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

/// Age in whole years on `today` of someone born on `birth`.
pub fn age_on(birth: Date, today: Date) -> i16 {
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

/// The age below which nobody may register (policy: "under the age of 18").
pub const MINIMUM_AGE: i16 = 18;

/// Whether someone born on `birth` is an adult on `today`.
pub fn is_adult(birth: Date, today: Date) -> bool {
    age_on(birth, today) >= MINIMUM_AGE
}

/// A date of birth that is not in the future and not absurdly far back.
pub fn plausible_birth_date(birth: Date, today: Date) -> bool {
    birth <= today && today.checked_sub(130.years()).is_ok_and(|oldest| birth >= oldest)
}

/// Today's date in UTC.
pub fn today(now: jiff::Timestamp) -> Date {
    now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()
}

/// Digits of a tax id given with or without dashes; `None` unless exactly nine digits.
pub fn tax_id_digits(value: &str) -> Option<String> {
    let digits: String = value.chars().filter(|c| *c != '-' && *c != ' ').collect();
    (digits.len() == 9 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// Whether nine digits form a valid SSN: area not 000, 666 or 900–999; group not 00; serial not
/// 0000; and not one of the numbers the SSA voided after they were published.
pub fn is_valid_ssn(digits: &str) -> bool {
    if digits.len() != 9 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let (area, group, serial) = (&digits[0..3], &digits[3..5], &digits[5..9]);
    let area_number: u16 = area.parse().unwrap_or(0);
    area != "000"
        && area != "666"
        && area_number < 900
        && group != "00"
        && serial != "0000"
        && !["078051120", "219099999", "123456789"].contains(&digits)
}

/// Whether nine digits form a valid EIN: the two-digit prefix must be one the IRS assigns.
pub fn is_valid_ein(digits: &str) -> bool {
    const UNASSIGNED: [&str; 17] = [
        "00", "07", "08", "09", "17", "18", "19", "28", "29", "49", "69", "70", "78", "79", "89", "96", "97",
    ];
    digits.len() == 9 && digits.chars().all(|c| c.is_ascii_digit()) && !UNASSIGNED.contains(&&digits[0..2])
}

/// "•••••6789": what responses show of a tax id.
pub fn mask_tax_id(digits: &str) -> String {
    let last4: String = digits
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("*****{last4}")
}

/// Parses a JSON body into `T`. Malformed JSON is 400; JSON of the wrong shape (missing field, wrong
/// type, unknown field, a `null`, not an object) is 422 with the pointer of the field, never its value.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_body_allowing_null(bytes, &[])
}

/// Like [`parse_body`], with `nullable` the pointers of the fields the OpenAPI document allows to be
/// `null` (read as left out).
pub fn parse_body_allowing_null<T: DeserializeOwned>(bytes: &[u8], nullable: &[&str]) -> Result<T, ApiError> {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        check_sizes(&value)?;
        check_strict(&value, nullable)?;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.classify() != serde_json::error::Category::Data {
                return Err(ApiError::BadRequest(format!(
                    "the body is not valid JSON (line {} column {})",
                    inner.line(),
                    inner.column()
                )));
            }
            Err(ApiError::Validation(vec![shape_error(&path, &inner.to_string())]))
        }
    }
}

/// Most items any array of a body may hold: every list we take is short (skills, regions, windows,
/// holidays, ids), and a long one must never reach the encryption layer, whose list handling
/// recurses per element (7,000 items overflowed the stack and aborted the process).
pub const MAX_ARRAY_ITEMS: usize = 100;
/// Longest string any field of a body may hold (fields have their own, smaller caps too).
pub const MAX_STRING_CHARS: usize = 5_000;

/// Refuses a body with an array or a string above the caps, naming the first such field: walked
/// with an explicit stack, so no client controls the depth of any recursion here.
pub fn check_sizes(value: &serde_json::Value) -> Result<(), ApiError> {
    let mut pending: Vec<(String, &serde_json::Value)> = vec![(String::new(), value)];
    while let Some((pointer, value)) = pending.pop() {
        match value {
            serde_json::Value::Array(items) => {
                if items.len() > MAX_ARRAY_ITEMS {
                    return Err(ApiError::Validation(vec![FieldError {
                        pointer,
                        detail: format!("at most {MAX_ARRAY_ITEMS} items"),
                    }]));
                }
                for (index, item) in items.iter().enumerate() {
                    pending.push((format!("{pointer}/{index}"), item));
                }
            }
            serde_json::Value::Object(fields) => {
                for (name, field) in fields {
                    let escaped = name.replace('~', "~0").replace('/', "~1");
                    pending.push((format!("{pointer}/{escaped}"), field));
                }
            }
            serde_json::Value::String(text) if text.chars().count() > MAX_STRING_CHARS => {
                return Err(ApiError::Validation(vec![FieldError {
                    pointer,
                    detail: format!("at most {MAX_STRING_CHARS} characters"),
                }]));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses what the OpenAPI document never allows in a request body and serde would take anyway:
/// a body that is not an object (serde reads a struct from an array too) and a `null` field (serde
/// reads it as an absent optional one), but at the pointers of `nullable`. An optional field is
/// left out, not sent as null. Every null is named at once.
pub fn check_strict(value: &serde_json::Value, nullable: &[&str]) -> Result<(), ApiError> {
    if !value.is_object() {
        return Err(ApiError::Validation(vec![FieldError {
            pointer: String::new(),
            detail: "the body must be a JSON object".into(),
        }]));
    }
    let mut errors = Vec::new();
    let mut pending: Vec<(String, &serde_json::Value)> = vec![(String::new(), value)];
    while let Some((pointer, value)) = pending.pop() {
        match value {
            serde_json::Value::Null if !nullable.contains(&pointer.as_str()) => {
                errors.push(FieldError {
                    pointer,
                    detail: "must not be null: leave an optional field out".into(),
                });
            }
            serde_json::Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    pending.push((format!("{pointer}/{index}"), item));
                }
            }
            serde_json::Value::Object(fields) => {
                for (name, field) in fields {
                    let escaped = name.replace('~', "~0").replace('/', "~1");
                    pending.push((format!("{pointer}/{escaped}"), field));
                }
            }
            _ => {}
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    Err(ApiError::Validation(errors))
}

/// Turns serde's message into a field error without echoing values.
fn shape_error(path: &str, message: &str) -> FieldError {
    let base = if path == "." {
        String::new()
    } else {
        format!("/{}", path.replace('.', "/"))
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = quoted("missing field `") {
        return FieldError {
            pointer: format!("{base}/{field}"),
            detail: "is required".into(),
        };
    }
    if quoted("unknown field `").is_some() {
        // serde_path_to_error's path already ends at the unknown field.
        return FieldError {
            pointer: base,
            detail: "is not a field of this request".into(),
        };
    }
    let detail = if message.starts_with("invalid type") {
        message
            .split(", expected")
            .nth(1)
            .map_or("has the wrong type".to_owned(), |e| {
                format!("must be{}", e.split(" at line").next().unwrap_or(e))
            })
    } else if message.starts_with("unknown variant") {
        message
            .split(", expected")
            .nth(1)
            .map_or("is not an allowed value".to_owned(), |e| {
                format!("must be{}", e.split(" at line").next().unwrap_or(e))
            })
    } else {
        "has an invalid value".to_owned()
    };
    FieldError {
        pointer: if base.is_empty() { "/".into() } else { base },
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_arrays_and_strings_are_refused_by_pointer_at_any_depth() {
        let ok = serde_json::json!({"a": [1, 2, 3], "b": {"c": "short"}});
        assert!(check_sizes(&ok).is_ok());
        let long = serde_json::json!({"x": {"skills": vec!["armed"; MAX_ARRAY_ITEMS + 1]}});
        match check_sizes(&long) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].pointer, "/x/skills"),
            other => panic!("expected a 422, got {other:?}"),
        }
        let text = serde_json::json!({"notes": "n".repeat(MAX_STRING_CHARS + 1)});
        assert!(matches!(check_sizes(&text), Err(ApiError::Validation(_))));
        // Deep nesting is walked without recursion.
        let mut deep = serde_json::json!(1);
        for _ in 0..100 {
            deep = serde_json::json!([deep]);
        }
        assert!(check_sizes(&deep).is_ok());
    }

    #[test]
    fn a_null_field_or_a_body_that_is_not_an_object_is_refused_by_pointer() {
        assert!(check_strict(&serde_json::json!({"a": [1], "b": {"c": "x"}}), &[]).is_ok());
        assert!(check_strict(&serde_json::json!({"time_zone": null}), &["/time_zone"]).is_ok());
        match check_strict(&serde_json::json!({"a": null, "b": {"c": null}}), &[]) {
            Err(ApiError::Validation(errors)) => {
                let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
                assert_eq!(pointers, vec!["/a", "/b/c"], "every null is named");
            }
            other => panic!("expected a 422, got {other:?}"),
        }
        for (body, pointer) in [
            (serde_json::json!([null, null]), ""),
            (serde_json::json!("text"), ""),
            (serde_json::json!({"provider": null}), "/provider"),
            (serde_json::json!({"a": {"b": [1, null]}}), "/a/b/1"),
        ] {
            match check_strict(&body, &[]) {
                Err(ApiError::Validation(errors)) => assert_eq!(errors[0].pointer, pointer, "{body}"),
                other => panic!("expected a 422 for {body}, got {other:?}"),
            }
        }
    }
    use jiff::civil::date;
    use serde::Deserialize;

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!(is_e164("+13075550142"));
        assert!(!is_e164("3075550142"));
        assert!(!is_e164("+0307555"));
        assert!(!is_e164("+1 307 555 0142"));
        assert!(!is_e164("+1234567890123456"));
    }

    #[test]
    fn adulthood_counts_whole_years() {
        let today = date(2026, 11, 29);
        assert!(is_adult(date(2008, 11, 29), today), "18 today");
        assert!(!is_adult(date(2008, 11, 30), today), "18 tomorrow");
        assert!(is_adult(date(2008, 2, 29), date(2026, 3, 1)), "leap-day birthday");
        assert!(!plausible_birth_date(date(2027, 1, 1), today));
        assert!(!plausible_birth_date(date(1890, 1, 1), today));
    }

    #[test]
    fn tax_ids_follow_ssa_and_irs_rules() {
        assert_eq!(tax_id_digits("521-43-6789").as_deref(), Some("521436789"));
        assert_eq!(tax_id_digits("52-143"), None);
        assert!(is_valid_ssn("521436789"));
        for invalid in [
            "000436789",
            "666436789",
            "912436789",
            "521006789",
            "521430000",
            "078051120",
        ] {
            assert!(!is_valid_ssn(invalid), "{invalid}");
        }
        assert!(is_valid_ein("912345678"));
        assert!(!is_valid_ein("072345678"));
        assert!(!is_valid_ein("002345678"));
        assert_eq!(mask_tax_id("521436789"), "*****6789");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn pointer_of(body: &str) -> (u16, String, String) {
        match parse_body::<Outer>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => (422, errors[0].pointer.clone(), errors[0].detail.clone()),
            Err(other) => (other.status().as_u16(), String::new(), other.to_string()),
            Ok(_) => (200, String::new(), String::new()),
        }
    }

    #[test]
    fn shape_errors_point_at_the_field_without_its_value() {
        assert_eq!(pointer_of(r#"{"inner":{"count":1}}"#).1, "/name");
        assert_eq!(pointer_of(r#"{"name":"x","inner":{}}"#).1, "/inner/count");
        let (status, pointer, detail) = pointer_of(r#"{"name":"x","inner":{"count":"secret-77"}}"#);
        assert_eq!((status, pointer.as_str()), (422, "/inner/count"));
        assert!(!detail.contains("secret-77"), "{detail}");
        assert_eq!(
            pointer_of(r#"{"name":"x","inner":{"count":1},"card":"4111"}"#).1,
            "/card"
        );
        assert_eq!(pointer_of(r#"{"name": "#).0, 400);
    }
}

//! Opaque, tamper-proof pagination cursors: the position (a sort key) plus a keyed MAC over it and
//! the list it belongs to (owner and filters), so a cursor cannot be forged, edited, used on another
//! user's list, or reused with other filters.

use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::lookup::LookupKey;
use subtle::ConstantTimeEq;

/// A cursor for the position after `sort_key` in the list named `scope` (include the owner).
pub async fn encode(key: &LookupKey, scope: &str, sort_key: &str) -> Result<String, ApiError> {
    let mac = key
        .digest("cursor", format!("{scope}\n{sort_key}").as_bytes())
        .await?;
    Ok(format!("{}.{}", URL_SAFE_NO_PAD.encode(sort_key), &mac[..32]))
}

/// The sort key a cursor of list `scope` points after; 400 when it was not issued for this list.
pub async fn decode(key: &LookupKey, scope: &str, cursor: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::BadRequest("the cursor is not valid for this list".into());
    let (position, mac) = cursor.split_once('.').ok_or_else(invalid)?;
    let sort_key = URL_SAFE_NO_PAD
        .decode(position)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let expected = key
        .digest("cursor", format!("{scope}\n{sort_key}").as_bytes())
        .await?;
    // Compared in constant time: how long a wrong guess takes must not say how much of it was right.
    let matches = expected
        .get(..32)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(mac.as_bytes())));
    if matches { Ok(sort_key) } else { Err(invalid()) }
}

/// Most items one page of any list holds.
pub const MAX_PAGE: usize = 100;

/// What a client asked of a paged list: `?limit=` (1 to [`MAX_PAGE`], else `default`) and the
/// position after which to continue (`?cursor=`, checked for list `scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// The sort key the page starts after (`None`: from the start).
    pub after: Option<String>,
}

/// Reads `?limit=` and `?cursor=` of `request` for list `scope` (include its owner and filters):
/// 422 for a limit out of range, 400 for a cursor issued for another list.
pub async fn page_request(
    key: &LookupKey,
    request: &lambda_http::Request,
    scope: &str,
    default: usize,
) -> Result<PageRequest, ApiError> {
    use lambda_http::RequestExt;
    let params = request.query_string_parameters();
    let limit = match params.first("limit") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::Validation(vec![crate::error::FieldError {
                    pointer: "?limit".into(),
                    detail: format!("must be 1 to {MAX_PAGE}"),
                }])
            })?,
        None => default,
    };
    let after = match params.first("cursor") {
        Some(cursor) => Some(decode(key, scope, cursor).await?),
        None => None,
    };
    Ok(PageRequest { limit, after })
}

/// The cursor of the next page of list `scope`, when the page ended at `last` (`None`: no more).
pub async fn next_cursor(
    key: &LookupKey,
    scope: &str,
    last: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match last {
        Some(sort_key) => Ok(Some(encode(key, scope, sort_key).await?)),
        None => Ok(None),
    }
}

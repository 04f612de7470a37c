//! Payment records: what we keep of a payment taken through the processor. Card numbers never reach
//! us; the processor's token, brand and last four digits do, encrypted.

use jiff::Timestamp;
use platform::keys::user_partition;
use platform::schema::{self, ItemType};
use platform::store::{ItemKey, Record};
use serde::{Deserialize, Serialize};

/// One payment for a service request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub user_id: String,
    pub payment_id: String,
    pub request_id: String,
    /// The processor's token (`pm_…`, `tok_…`).
    pub processor_token: String,
    pub card_brand: String,
    pub card_last4: String,
    /// Integer cents: money is never a float.
    pub amount_cents: i64,
    /// ISO 4217.
    pub currency: String,
    pub created_at: Timestamp,
}

impl Record for PaymentRecord {
    const TYPE: &'static ItemType = &schema::PAYMENT_RECORD;

    fn key(&self) -> ItemKey {
        ItemKey::new(
            user_partition(&self.user_id),
            format!("PAYMENT#{}", self.payment_id),
        )
    }

    fn retention_start(&self) -> Option<Timestamp> {
        Some(self.created_at)
    }
}

/// Whether `digits` (13–19 digits) passes the Luhn check that every card number passes.
pub fn passes_luhn(digits: &str) -> bool {
    if !(13..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether free text contains something that looks like a card number: a whole run of 13–19 digits
/// standing alone as a word, written plain or in a card grouping (4-4-4-4…, or 4-6-5 / 4-6-4, with
/// spaces or dashes), that passes Luhn. Runs glued to letters, longer than 19 digits, or grouped
/// otherwise (UUIDs are 8-4-4-4-12) are not card numbers.
pub fn contains_card_number(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        if !chars[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        let mut digits = String::new();
        let mut groups = vec![0_usize];
        let mut end = start;
        while end < chars.len() {
            let c = chars[end];
            if c.is_ascii_digit() {
                digits.push(c);
                if let Some(last) = groups.last_mut() {
                    *last += 1;
                }
            } else if (c == ' ' || c == '-') && chars.get(end + 1).is_some_and(char::is_ascii_digit) {
                groups.push(0);
            } else {
                break;
            }
            end += 1;
        }
        let alone = (start == 0 || !chars[start - 1].is_alphanumeric())
            && chars.get(end).is_none_or(|c| !c.is_alphanumeric());
        if alone && card_grouping(&groups) && passes_luhn(&digits) {
            return true;
        }
        start = end;
    }
    false
}

/// Whether digit groups are written as cards are: one plain run, fours (the last may be shorter), or
/// the 4-6-5 / 4-6-4 of American Express and Diners Club.
fn card_grouping(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|g| *g == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// The JSON pointer of the first value in `body` that looks like a card number, if any. Requests
/// carrying one are refused before anything is parsed, stored or logged: clients send a payment
/// processor's token, never a card number.
pub fn find_card_number(body: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, pointer: &str) -> Option<String> {
        match value {
            serde_json::Value::String(text) => contains_card_number(text).then(|| pointer.to_owned()),
            serde_json::Value::Number(number) => {
                contains_card_number(&number.to_string()).then(|| pointer.to_owned())
            }
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(index, item)| walk(item, &format!("{pointer}/{index}"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                walk(item, &format!("{pointer}/{escaped}"))
            }),
            _ => None,
        }
    }
    walk(body, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn card_numbers_are_recognised_in_any_spelling() {
        assert!(passes_luhn("4111111111111111"));
        assert!(!passes_luhn("4111111111111112"));
        assert!(contains_card_number("4111 1111 1111 1111"));
        assert!(contains_card_number("card: 5555-5555-5555-4444 thanks"));
        assert!(contains_card_number("378282246310005"), "15-digit Amex");
        assert!(
            !contains_card_number("+13075550142"),
            "phone numbers are too short"
        );
        assert!(!contains_card_number("pm_1QxRtz8Kq2LmN0pVbYc7"));
        assert!(
            !contains_card_number("order 1234567890123"),
            "13 digits failing Luhn"
        );
        assert!(
            !contains_card_number("41111111111111111111"),
            "20 digits: longer than any card"
        );
        assert!(!contains_card_number("ab4111111111111111"), "glued to letters");
        assert!(
            !contains_card_number("83926140-5012-4123-8123-123456789012"),
            "an all-digit UUID"
        );
    }

    #[test]
    fn ids_are_never_taken_for_card_numbers() {
        for _ in 0..100_000 {
            let id = uuid::Uuid::new_v4().to_string();
            assert!(!contains_card_number(&id), "{id}");
            assert!(find_card_number(&json!({"agency_id": id})).is_none());
        }
    }

    #[test]
    fn the_pointer_names_where_the_card_number_is() {
        let body = json!({"site": {"contact": {"phone": "+13075550142"}}, "notes": ["ok", "pay with 4242 4242 4242 4242"]});
        assert_eq!(find_card_number(&body).as_deref(), Some("/notes/1"));
        assert_eq!(
            find_card_number(&json!({"payment": {"number": 4_111_111_111_111_111_u64}})).as_deref(),
            Some("/payment/number")
        );
        assert_eq!(
            find_card_number(&json!({"payment": {"processor_token": "tok_visa_4242"}})),
            None
        );
    }
}

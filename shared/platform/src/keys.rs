//! Key shapes of the single table. Every item of a user sits in the user's partition, so erasure and
//! export reach it by Query (never Scan); items found by other access paths carry GSI keys as well.

/// Prefix of a user's partition key; the encryption layer reads the owner from it.
pub const USER_PARTITION_PREFIX: &str = "USER#";

/// Partition key of everything that belongs to user `user_id` (the Cognito `sub`).
pub fn user_partition(user_id: &str) -> String {
    format!("{USER_PARTITION_PREFIX}{user_id}")
}

/// Sort-key prefixes inside a user's partition, one per item family.
pub mod sort_prefix {
    /// A customer or provider account (`ACCOUNT#CUSTOMER`, `ACCOUNT#PROVIDER`).
    pub const ACCOUNT: &str = "ACCOUNT#";
    /// A service request the user booked.
    pub const SERVICE_REQUEST: &str = "REQUEST#";
    /// An assignment of the user (as a Security Provider) to a shift.
    pub const ASSIGNMENT: &str = "ASSIGNMENT#";
}

/// The singleton item that holds the current privacy-policy version.
pub const POLICY_PARTITION: &str = "POLICY";
/// Sort key of the current policy version.
pub const POLICY_CURRENT: &str = "CURRENT";

/// Partition of the due-work index (`by-due-date`) for the UTC month of `day`: the retention job
/// queries the months up to now instead of scanning the table. Months rather than days, so a purge
/// that catches up over years needs a dozen queries a year; the sort key (`due_at`) keeps each query to
/// the items already due.
pub fn due_day_partition(day: jiff::civil::Date) -> String {
    format!("DUE#{:04}-{:02}", day.year(), day.month())
}

/// A timestamp as a fixed-width sort-key segment (epoch milliseconds, zero-padded), so that sort
/// keys order by time.
pub fn sortable_time(at: jiff::Timestamp) -> String {
    format!("{:015}", at.as_millisecond())
}

/// Prefix of an agency's partition key.
pub const AGENCY_PARTITION_PREFIX: &str = "AGENCY#";

/// Partition of an agency's items.
pub fn agency_partition(agency_id: &str) -> String {
    format!("{AGENCY_PARTITION_PREFIX}{agency_id}")
}

/// Sort-key prefix of an agency's do-not-hire entry about an officer (`DNH#<officer id>`): the
/// encryption layer protects it with the officer's key.
pub const DO_NOT_HIRE_SORT_PREFIX: &str = "DNH#";

/// Prefix of an access log's partition key (`ACCESS#<owner>`).
pub const ACCESS_LOG_PARTITION_PREFIX: &str = "ACCESS#";

/// The access-log owner of calls without a verified token (and of calls by a person being erased).
pub const ANONYMOUS_CALLER: &str = "anonymous";

/// The partition of `owner`'s access log (`owner` is a user id, or `anonymous`). Kept here, beside the
/// other key shapes, because erasure, export and the inventory find a user's log by it. A user's log
/// is under their own key; the anonymous one under the system's.
pub fn access_log_partition(owner: &str) -> String {
    format!("{ACCESS_LOG_PARTITION_PREFIX}{owner}")
}

/// The partition of the answers `owner`'s keyed creating POSTs gave (`owner` is a user id, or
/// `anonymous`): kept beside the other key shapes because erasure and the inventory find it by them.
pub fn idempotency_partition(owner: &str) -> String {
    format!("IDEMPOTENCY#{owner}")
}

/// The partition of `user_id`'s privacy requests and their audit trail (kept 24 months, through
/// erasure), found by the same modules.
pub fn privacy_partition(user_id: &str) -> String {
    format!("PRIVACY#{user_id}")
}

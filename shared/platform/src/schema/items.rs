//! Every item type of the table, declared once: key shape, attributes with their protection,
//! retention class and indexes. Adding an attribute here is what lets the store write it.

use super::{ItemType, personal, signed, unsigned};
use crate::retention::RetentionClass;

/// A customer's account (individual or business).
pub const CUSTOMER_ACCOUNT: ItemType = ItemType {
    name: "customer_account",
    key: "pk=USER#<user_id> sk=ACCOUNT#CUSTOMER",
    attributes: &[
        signed("user_id"),
        signed("kind"),
        unsigned("status"),
        personal("name"),
        personal("phone"),
        personal("email"),
        personal("date_of_birth"),
        personal("home_address"),
        personal("business_address"),
        personal("mailing_address"),
        personal("business_name"),
        personal("tax_id"),
        signed("policy_version"),
        signed("created_at"),
        signed("updated_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &["email-beacon", "tax-id-beacon"],
};

/// A Security Provider's account.
pub const PROVIDER_ACCOUNT: ItemType = ItemType {
    name: "provider_account",
    key: "pk=USER#<user_id> sk=ACCOUNT#PROVIDER",
    attributes: &[
        signed("user_id"),
        unsigned("status"),
        personal("legal_name"),
        personal("date_of_birth"),
        personal("phone"),
        personal("email"),
        personal("home_address"),
        personal("licence"),
        signed("skills"),
        personal("service_area"),
        signed("policy_version"),
        signed("created_at"),
        signed("updated_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &["email-beacon"],
};

/// A W-9 as certified by a Security Provider: a tax record the law makes us keep.
pub const W9_RECORD: ItemType = ItemType {
    name: "w9_record",
    key: "pk=USER#<user_id> sk=TAX#W9#<certified_at>",
    attributes: &[
        signed("user_id"),
        personal("legal_name"),
        personal("business_name"),
        signed("tax_classification"),
        personal("address"),
        signed("tin_type"),
        personal("tax_id"),
        signed("certified_at"),
    ],
    retention: RetentionClass::TaxRecord,
    indexes: &["tax-id-beacon"],
};

/// A payment taken for a service request: the processor's token, never a card number.
pub const PAYMENT_RECORD: ItemType = ItemType {
    name: "payment_record",
    key: "pk=USER#<user_id> sk=PAYMENT#<payment_id>",
    attributes: &[
        signed("user_id"),
        signed("payment_id"),
        signed("request_id"),
        personal("processor_token"),
        personal("card_brand"),
        personal("card_last4"),
        signed("amount_cents"),
        signed("currency"),
        signed("created_at"),
    ],
    retention: RetentionClass::PaymentRecord,
    indexes: &[],
};

/// The invoice of one service request: what the customer owes, line by line. Transaction details,
/// encrypted under the customer's key; a payment record the law makes us keep (through erasure).
pub const INVOICE: ItemType = ItemType {
    name: "invoice",
    key: "pk=USER#<customer_user_id> sk=INVOICE#<request_id>",
    attributes: &[
        signed("customer_user_id"),
        signed("request_id"),
        signed("agency_id"),
        unsigned("status"),
        signed("issued_at"),
        personal("lines"),
        personal("total_cents"),
        signed("currency"),
        personal("paid_cents"),
        personal("payment_failure"),
        unsigned("settled_at"),
    ],
    retention: RetentionClass::PaymentRecord,
    indexes: &["gsi1"],
};

/// The customer's record at the payment processor (Stripe): its customer id, which is personal data.
/// Created once per customer at their first booking; erasure deletes it at the processor and here.
pub const PROCESSOR_CUSTOMER: ItemType = ItemType {
    name: "processor_customer",
    key: "pk=USER#<user_id> sk=PROCESSOR#CUSTOMER",
    attributes: &[signed("user_id"), personal("customer_id"), signed("created_at")],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// The payment of one service request at the processor: the authorisation taken at booking, what
/// was captured, released or refunded, and a charge of any difference. Transaction details: a payment
/// record, encrypted, kept 7 years from booking (through erasure).
pub const PAYMENT_CHARGE: ItemType = ItemType {
    name: "payment_charge",
    key: "pk=USER#<customer_user_id> sk=CHARGE#<request_id>",
    attributes: &[
        signed("customer_user_id"),
        signed("request_id"),
        unsigned("status"),
        personal("intent_id"),
        personal("payment_method"),
        personal("authorized_cents"),
        personal("captured_cents"),
        personal("refunded_cents"),
        personal("extra_intent_id"),
        personal("extra_cents"),
        personal("failure_code"),
        signed("created_at"),
        signed("updated_at"),
    ],
    retention: RetentionClass::PaymentRecord,
    indexes: &[],
};

/// Reserves an e-mail for one account of a role: the uniqueness lock, keyed by a keyed hash of the
/// e-mail (no plaintext), written in the same transaction as the account.
pub const EMAIL_LOCK: ItemType = ItemType {
    name: "email_lock",
    key: "pk=LOCK#EMAIL#<role>#<hmac> sk=LOCK",
    attributes: &[
        signed("role"),
        signed("email_hash"),
        signed("owner_user_id"),
        signed("created_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// The privacy-policy version in force (announced to users when significant).
pub const POLICY_VERSION: ItemType = ItemType {
    name: "policy_version",
    key: "pk=POLICY sk=CURRENT (Users) | CURRENT#PROVIDERS",
    attributes: &[
        signed("audience"),
        signed("sections"),
        signed("policy_version"),
        signed("effective_date"),
        signed("significant"),
        signed("summary"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// One decision of a user about a purpose (marketing): the history is the proof of consent, the
/// newest record is what the mailer obeys.
pub const CONSENT_RECORD: ItemType = ItemType {
    name: "consent_record",
    key: "pk=USER#<user_id> sk=CONSENT#<purpose>#<epoch ms>#<id>",
    attributes: &[
        signed("user_id"),
        signed("purpose"),
        signed("granted"),
        signed("policy_version"),
        signed("source"),
        signed("recorded_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// A user's current decision about a purpose: a copy of the newest [`CONSENT_RECORD`], written in
/// the same transaction, so that it is read by key (with the accounts, in one request) instead of by
/// a Query of the history.
pub const CONSENT_STATE: ItemType = ItemType {
    name: "consent_state",
    key: "pk=USER#<user_id> sk=CONSENTNOW#<purpose>",
    attributes: &[
        signed("user_id"),
        signed("purpose"),
        signed("granted"),
        signed("policy_version"),
        signed("source"),
        signed("recorded_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// A purpose a privacy officer added after the policy's original ones (the original ones are in
/// `domain::purposes`): its description is what people are asked to consent to. Not personal data.
pub const ADDED_PURPOSE: ItemType = ItemType {
    name: "added_purpose",
    key: "pk=PURPOSES sk=PURPOSE#<purpose>",
    attributes: &[
        signed("purpose"),
        signed("description"),
        signed("added_by"),
        signed("added_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// A marketing campaign (its text, channel, audience, purpose) and how far its sending has got.
/// Owned by `domain::campaigns`. Not personal data; kept two years from its creation.
pub const CAMPAIGN: ItemType = ItemType {
    name: "campaign",
    key: "pk=CAMPAIGNS sk=CAMPAIGN#<campaign_id>",
    attributes: &[
        signed("campaign_id"),
        signed("subject"),
        signed("body"),
        signed("channel"),
        signed("audience"),
        signed("purpose"),
        signed("created_by"),
        signed("created_at"),
        signed("next_page"),
        signed("sent"),
        signed("skipped"),
        signed("finished_at"),
    ],
    retention: RetentionClass::Metrics,
    indexes: &[],
};

/// That a campaign is still being sent: the hourly run's work list.
pub const CAMPAIGN_IN_FLIGHT: ItemType = ItemType {
    name: "campaign_in_flight",
    key: "pk=CAMPAIGNS sk=SENDING#<campaign_id>",
    attributes: &[signed("campaign_id"), signed("created_at")],
    retention: RetentionClass::Metrics,
    indexes: &[],
};

/// That a campaign went to a person, by which channel, for which consented purpose: never its
/// content. In the person's partition (their export, inventory and erasure reach it); `gsi1` lists a
/// post or telephone campaign's recipients for the mail house or SMS provider.
pub const CAMPAIGN_DELIVERY: ItemType = ItemType {
    name: "campaign_delivery",
    key: "pk=USER#<user_id> sk=CAMPAIGN#<campaign_id>",
    attributes: &[
        signed("user_id"),
        signed("campaign_id"),
        signed("channel"),
        signed("purpose"),
        signed("sent_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &["gsi1"],
};

/// Who changed what about a user, when: field names only, never values.
pub const AUDIT_RECORD: ItemType = ItemType {
    name: "audit_record",
    key: "pk=USER#<user_id> sk=AUDIT#<epoch ms>#<id>",
    attributes: &[
        signed("user_id"),
        signed("actor_user_id"),
        signed("action"),
        signed("fields"),
        signed("recorded_at"),
    ],
    retention: RetentionClass::PrivacyAudit,
    indexes: &[],
};

/// An agency (tenant) with its rates and rules. Business data, no personal data.
pub const AGENCY: ItemType = ItemType {
    name: "agency",
    key: "pk=AGENCY#<agency_id> sk=PROFILE",
    attributes: &[
        signed("agency_id"),
        signed("agency_name"),
        signed("time_zone"),
        signed("admin_user_ids"),
        signed("dispatcher_user_ids"),
        signed("rates"),
        signed("rules"),
        signed("cancellation_fees"),
        signed("holidays"),
        signed("created_at"),
        signed("updated_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// A service request a customer booked. Owned by the customer: the site contact's details are
/// encrypted under the customer's key, who supplied them. Dispatchers find it through `gsi1`.
pub const SERVICE_REQUEST: ItemType = ItemType {
    name: "service_request",
    key: "pk=USER#<customer_user_id> sk=REQUEST#<start epoch ms>#<request_id>",
    attributes: &[
        signed("request_id"),
        signed("series_id"),
        signed("customer_user_id"),
        signed("agency_id"),
        unsigned("status"),
        personal("event"),
        personal("site"),
        signed("starts_at"),
        signed("ends_at"),
        signed("time_zone"),
        signed("officers"),
        signed("filled"),
        signed("requirements"),
        personal("notes"),
        signed("price"),
        signed("payment_id"),
        personal("cancellation"),
        signed("created_at"),
        signed("updated_at"),
        signed("completed_at"),
        signed("rates"),
        signed("terms"),
        signed("started_at"),
        signed("no_shows_checked_at"),
    ],
    retention: RetentionClass::ServiceRequest,
    indexes: &["gsi1", "by-due-date"],
};

/// Finds a request by id: who owns it and where.
pub const REQUEST_POINTER: ItemType = ItemType {
    name: "request_pointer",
    key: "pk=REQUEST#<request_id> sk=REF",
    attributes: &[
        signed("request_id"),
        signed("owner_user_id"),
        signed("agency_id"),
        signed("request_sk"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// Remembers what a creating POST with an `Idempotency-Key` produced, so a retry returns it.
pub const IDEMPOTENCY_RECORD: ItemType = ItemType {
    name: "idempotency_record",
    key: "pk=USER#<user_id> sk=IDEMPOTENCY#<key>",
    attributes: &[
        signed("user_id"),
        signed("body_sha256"),
        signed("request_ids"),
        signed("recorded_at"),
    ],
    retention: RetentionClass::Idempotency,
    indexes: &[],
};

/// The marker of a keyed creating POST (under way, or answered) and the answer it gave, so that a
/// retry with the same `Idempotency-Key` gets the same answer and creates nothing. Owned by
/// `edge::idempotency`. The marker is under the system's key, because a caller may have none of their
/// own yet (staff, a first registration); the answer is kept under the caller's own key in their
/// partition when they have one (shredding reaches it), else in the marker. Kept a day.
pub const IDEMPOTENT_ANSWER: ItemType = ItemType {
    name: "idempotent_answer",
    key: "pk=IDEMPOTENCY#<user_id or anonymous> sk=<sha256 of method and path>#<key> | pk=USER#<user_id> sk=IDEMPOTENT#<same>",
    attributes: &[
        signed("owner"),
        signed("in_own_partition"),
        personal("body_digest"),
        signed("state"),
        signed("started_at"),
        signed("status_code"),
        signed("content_type"),
        personal("answer"),
    ],
    retention: RetentionClass::Idempotency,
    indexes: &[],
};

/// An officer's assignment to a service request. When the officer confirmed, checked in and out
/// describes the person's working time: encrypted.
pub const ASSIGNMENT: ItemType = ItemType {
    name: "assignment",
    key: "pk=USER#<officer_user_id> sk=ASSIGNMENT#<request_id>",
    attributes: &[
        signed("assignment_id"),
        signed("request_id"),
        signed("officer_user_id"),
        signed("agency_id"),
        unsigned("status"),
        signed("starts_at"),
        signed("ends_at"),
        signed("created_at"),
        signed("assigned_by"),
        signed("respond_by"),
        personal("responded_at"),
        personal("checked_in_at"),
        personal("checked_out_at"),
        signed("closed_by_run"),
        personal("timesheet"),
    ],
    retention: RetentionClass::ServiceRequest,
    indexes: &["gsi1"],
};

/// Finds an assignment by id (officer and request are in its key).
pub const ASSIGNMENT_POINTER: ItemType = ItemType {
    name: "assignment_pointer",
    key: "pk=ASSIGNMENT#<assignment_id> sk=REF",
    attributes: &[
        signed("assignment_id"),
        signed("officer_user_id"),
        signed("request_id"),
        signed("ends_at"),
    ],
    retention: RetentionClass::ServiceRequest,
    indexes: &[],
};

/// An officer's roster with their agency: availability, shifts held and worked. Every placement
/// replaces it (version-conditioned), which serialises placements of one officer.
pub const ROSTER: ItemType = ItemType {
    name: "roster",
    key: "pk=USER#<officer_user_id> sk=ROSTER",
    attributes: &[
        signed("user_id"),
        signed("agency_ids"),
        personal("pool_token"),
        personal("availability"),
        personal("pool_keys"),
        personal("commitments"),
        personal("worked_shifts"),
        personal("last_detail_at"),
        personal("joined_at"),
        signed("updated_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// An officer's membership of an agency, granted by the agency: what the agency verifies (badge,
/// rank, hire date) is the officer's personal data, encrypted under their key; the decision
/// and re-verification date are signed. Agency admins find applications through `gsi1`, the hourly run
/// finds approvals about to lapse through the due-date index.
pub const AGENCY_MEMBERSHIP: ItemType = ItemType {
    name: "agency_membership",
    key: "pk=USER#<officer_user_id> sk=MEMBERSHIP#<agency_id>",
    attributes: &[
        signed("user_id"),
        signed("agency_id"),
        unsigned("status"),
        personal("badge_number"),
        personal("rank"),
        personal("hire_date"),
        signed("applied_at"),
        signed("decided_at"),
        signed("decided_by"),
        personal("decision_reason"),
        signed("valid_until"),
        signed("lapse_notice_sent_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &["gsi1", "by-due-date"],
};

/// The agency's pool index: one entry per weekday/date an officer is available. The officer is
/// encrypted; the sort key is the officer's random pool token.
pub const POOL_ENTRY: ItemType = ItemType {
    name: "pool_entry",
    key: "pk=AGENCY#<agency_id>#POOL#<weekday or date> sk=<pool_token>",
    attributes: &[
        signed("agency_id"),
        signed("pool_key"),
        signed("entry_token"),
        personal("officer_ref"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// Which agencies list an officer as do-not-hire, kept in the officer's partition: erasure finds the
/// entries (which live in the agencies' partitions) from the officer, without a Scan.
pub const DO_NOT_HIRE_POINTER: ItemType = ItemType {
    name: "do_not_hire_pointer",
    key: "pk=USER#<provider_user_id> sk=DNH#<agency_id>",
    attributes: &[signed("agency_id"), signed("provider_user_id")],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// An officer on an agency's do-not-hire list.
pub const DO_NOT_HIRE: ItemType = ItemType {
    name: "do_not_hire",
    key: "pk=AGENCY#<agency_id> sk=DNH#<provider_user_id>",
    attributes: &[
        signed("agency_id"),
        signed("provider_user_id"),
        signed("added_by"),
        signed("added_at"),
        personal("note"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// One API call: route, status, and (encrypted) when and from which IP. Kept 90 days.
pub const ACCESS_LOG_ENTRY: ItemType = ItemType {
    name: "access_log_entry",
    key: "pk=ACCESS#<user_id or anonymous> sk=<request_id>",
    attributes: &[
        signed("log_owner"),
        signed("request_id"),
        signed("route"),
        signed("status_code"),
        personal("accessed_at"),
        personal("source_ip"),
    ],
    retention: RetentionClass::AccessLog,
    indexes: &[],
};

/// The progress of one user's erasure: ids, steps, retained categories and dates, no personal data.
/// Kept as the record of the deletion for 24 months after it completes.
pub const ERASURE_JOB: ItemType = ItemType {
    name: "erasure_job",
    key: "pk=ERASURE#<user_id> sk=JOB",
    attributes: &[
        signed("user_id"),
        signed("reason"),
        signed("step"),
        signed("requested_at"),
        signed("updated_at"),
        signed("retained"),
        signed("shred_at"),
        signed("completed_at"),
        signed("request_id"),
        signed("requested_by"),
        signed("case_reference"),
        signed("found"),
        signed("leftovers"),
        signed("identity_deleted_at"),
        signed("processor_customer"),
        signed("key_shredded_at"),
        signed("slices"),
    ],
    retention: RetentionClass::PrivacyAudit,
    indexes: &["by-due-date"],
};

/// That a user's branch key was destroyed on a day: what a restore of the key-store table from its
/// point-in-time recovery (35 days) is reconciled against, so a shredded key never comes back
/// (`domain::privacy::erasure::reshred_after_restore`). Ids and a date only, like the erasure job it
/// accompanies, and kept as long.
pub const SHRED_LEDGER_ENTRY: ItemType = ItemType {
    name: "shred_ledger_entry",
    key: "pk=SHREDDED#<yyyy-mm-dd> sk=<user_id>",
    attributes: &[signed("user_id"), signed("shredded_at")],
    retention: RetentionClass::PrivacyAudit,
    indexes: &[],
};

/// That a subject's sign-in may no longer write: erasure records it when it starts, so that the
/// account's tokens, and a token which outlives the user-pool user (up to an hour), are refused on
/// every write route. Kept while the erasure runs; expires two hours after the user-pool user is gone. Keyed by a keyed hash of the
/// subject (`lookup`), so it holds no personal data and cannot be linked back without the key.
pub const REVOKED_SUBJECT: ItemType = ItemType {
    name: "revoked_subject",
    key: "pk=REVOKED#<keyed hash of the user id> sk=SUBJECT",
    attributes: &[
        signed("subject_hash"),
        signed("revoked_at"),
        signed("identity_deleted_at"),
    ],
    retention: RetentionClass::Revocation,
    indexes: &[],
};

/// Where the retention purge resumes (a day of the due-date index).
pub const PURGE_CHECKPOINT: ItemType = ItemType {
    name: "purge_checkpoint",
    key: "pk=PURGE sk=CHECKPOINT",
    attributes: &[signed("next_day"), signed("updated_at")],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// A privacy officer's proposal to delete a minor's data, waiting for a second officer's approval
/// (`domain::privacy::requests::approve_minor_deletion`). Ids, the report's id and dates only.
pub const MINOR_DELETION_PROPOSAL: ItemType = ItemType {
    name: "minor_deletion_proposal",
    key: "pk=PRIVACY#<user_id> sk=MINOR_DELETION",
    attributes: &[
        signed("user_id"),
        signed("case_reference"),
        signed("proposed_by"),
        signed("proposed_at"),
        signed("approved_by"),
        signed("approved_at"),
    ],
    retention: RetentionClass::PrivacyAudit,
    indexes: &[],
};

/// Where a scheduled review that walks a growing list in slices continues next run (the hourly
/// run's review of open privacy requests): the sort key it stopped after.
pub const REVIEW_CHECKPOINT: ItemType = ItemType {
    name: "review_checkpoint",
    key: "pk=CHECKPOINT sk=<review>",
    attributes: &[signed("review"), signed("after"), signed("updated_at")],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// A counter (`Store::add_to_counter`): anonymous metrics such as TTL deletions per item type and
/// day, or calls per route and app per day. Written and read with the plain client only; no personal data, no ids.
pub const COUNTER: ItemType = ItemType {
    name: "counter",
    key: "pk=METRIC#TTL#<day> sk=<item_type> | pk=METRIC#USAGE#<day>#<shard> sk=route#<route key>|app#<label>|agency#<id>|telemetry#<dimension>#<value>",
    attributes: &[unsigned("count")],
    retention: RetentionClass::Metrics,
    indexes: &[],
};

/// A privacy request (a right exercised): type, deadlines, lifecycle, result. Outside the user's
/// partition so that it outlives an erasure (24 months).
pub const PRIVACY_REQUEST: ItemType = ItemType {
    name: "privacy_request",
    key: "pk=PRIVACY#<user_id> sk=REQUEST#<request_id>",
    attributes: &[
        signed("request_id"),
        signed("user_id"),
        signed("kind"),
        signed("jurisdiction"),
        unsigned("status"),
        signed("received_at"),
        signed("deadline_at"),
        signed("receipt_due_at"),
        signed("extended_until"),
        personal("extension_reason"),
        signed("result"),
        signed("overdue_alerted_at"),
        signed("updated_at"),
        signed("progress"),
        signed("stuck"),
        signed("written_inquiry_id"),
    ],
    retention: RetentionClass::PrivacyAudit,
    indexes: &["gsi1"],
};

/// One move of a privacy request, or an operator's action on a user's data: who, what, when.
pub const PRIVACY_AUDIT_ENTRY: ItemType = ItemType {
    name: "privacy_audit_entry",
    key: "pk=PRIVACY#<user_id> sk=AUDIT#<epoch ms>#<id>",
    attributes: &[
        signed("user_id"),
        signed("subject_id"),
        signed("action"),
        signed("actor_user_id"),
        signed("recorded_at"),
    ],
    retention: RetentionClass::PrivacyAudit,
    indexes: &[],
};

/// One part of a data export (access, portability): JSON Lines, encrypted under the user's key (the
/// system key for someone who never registered: their export holds only their privacy requests).
pub const EXPORT_PART: ItemType = ItemType {
    name: "export_part",
    key: "pk=USER#<user_id> (PRIVACY#<user_id> if they never registered) sk=EXPORT#<request_id>#<part>",
    attributes: &[
        signed("user_id"),
        signed("request_id"),
        signed("part"),
        personal("content"),
        signed("created_at"),
        signed("home"),
    ],
    retention: RetentionClass::Export,
    indexes: &[],
};

/// Where the worker is in building one export: the partition it reads, the last key it read, the
/// parts written and the items counted per type (ids and counts: no personal data). In the user's
/// partition, under their key, so erasure finds it (beside the privacy requests of someone who never
/// registered).
pub const EXPORT_JOB: ItemType = ItemType {
    name: "export_job",
    key: "pk=USER#<user_id> (PRIVACY#<user_id> if they never registered) sk=EXPORTJOB#<request_id>",
    attributes: &[
        signed("user_id"),
        signed("request_id"),
        signed("created_at"),
        signed("source"),
        signed("after_sk"),
        signed("parts"),
        signed("items_by_type"),
        signed("manifest"),
        signed("slices"),
        signed("home"),
    ],
    retention: RetentionClass::Export,
    indexes: &[],
};

/// A logged disclosure of a user's data (recipient, legal basis, categories, reference).
pub const DISCLOSURE: ItemType = ItemType {
    name: "disclosure",
    key: "pk=PRIVACY#<user_id> sk=DISCLOSURE#<epoch ms>#<id>",
    attributes: &[
        signed("disclosure_id"),
        signed("subject_user_id"),
        signed("recipient_category"),
        signed("recipient"),
        signed("legal_basis"),
        signed("data_categories"),
        personal("reference"),
        signed("disclosed_at"),
        signed("recorded_by"),
        signed("recorded_at"),
    ],
    retention: RetentionClass::PrivacyAudit,
    indexes: &[],
};

/// Finds a privacy request's owner by id (privacy officers act by id).
pub const PRIVACY_REQUEST_POINTER: ItemType = ItemType {
    name: "privacy_request_pointer",
    key: "pk=PRIVACY_REQUEST#<request_id> sk=REF",
    attributes: &[signed("request_id"), signed("user_id"), signed("received_at")],
    retention: RetentionClass::PrivacyAudit,
    indexes: &[],
};

/// How far the announcement of a significant policy version has got through the user pool.
pub const POLICY_ANNOUNCEMENT: ItemType = ItemType {
    name: "policy_announcement",
    key: "pk=POLICY sk=ANNOUNCE#<version>",
    attributes: &[
        signed("audience"),
        signed("policy_version"),
        signed("next_page"),
        signed("notified"),
        signed("done"),
        signed("started_at"),
    ],
    retention: RetentionClass::Account,
    indexes: &[],
};

/// A support or information inquiry and support's answers: in the sender's partition when signed in,
/// under a keyed hash of their address (`INQUIRER#<hmac>`) when not. Owned by `domain::support`.
pub const SUPPORT_INQUIRY: ItemType = ItemType {
    name: "support_inquiry",
    key: "pk=USER#<user_id> | INQUIRER#<email hmac> sk=INQUIRY#<uuid>",
    attributes: &[
        signed("inquiry_id"),
        signed("user_id"),
        signed("inquirer_hash"),
        personal("name"),
        personal("email"),
        personal("phone"),
        signed("topic"),
        personal("message"),
        signed("minor_report"),
        signed("channel"),
        unsigned("status"),
        personal("answers"),
        signed("created_at"),
        signed("closed_at"),
        signed("closed_by"),
    ],
    retention: RetentionClass::SupportInquiry,
    indexes: &["gsi1", "by-due-date"],
};

/// Every item type of the table.
pub const ITEM_TYPES: &[&ItemType] = &[
    &CUSTOMER_ACCOUNT,
    &PROVIDER_ACCOUNT,
    &W9_RECORD,
    &PAYMENT_RECORD,
    &INVOICE,
    &PROCESSOR_CUSTOMER,
    &PAYMENT_CHARGE,
    &EMAIL_LOCK,
    &POLICY_VERSION,
    &CONSENT_RECORD,
    &CONSENT_STATE,
    &ADDED_PURPOSE,
    &CAMPAIGN,
    &CAMPAIGN_IN_FLIGHT,
    &CAMPAIGN_DELIVERY,
    &AUDIT_RECORD,
    &AGENCY,
    &SERVICE_REQUEST,
    &REQUEST_POINTER,
    &IDEMPOTENCY_RECORD,
    &IDEMPOTENT_ANSWER,
    &ASSIGNMENT,
    &ASSIGNMENT_POINTER,
    &ROSTER,
    &AGENCY_MEMBERSHIP,
    &POOL_ENTRY,
    &DO_NOT_HIRE,
    &DO_NOT_HIRE_POINTER,
    &ACCESS_LOG_ENTRY,
    &ERASURE_JOB,
    &REVIEW_CHECKPOINT,
    &MINOR_DELETION_PROPOSAL,
    &SHRED_LEDGER_ENTRY,
    &PURGE_CHECKPOINT,
    &COUNTER,
    &PRIVACY_REQUEST,
    &PRIVACY_AUDIT_ENTRY,
    &EXPORT_PART,
    &EXPORT_JOB,
    &DISCLOSURE,
    &PRIVACY_REQUEST_POINTER,
    &POLICY_ANNOUNCEMENT,
    &REVOKED_SUBJECT,
    &SUPPORT_INQUIRY,
];

//! Privacy rights: tracked requests with their legal deadlines ([`requests`]), the export that
//! answers access and portability ([`export`]), the erasure job ([`erasure`]), the worker's jobs
//! that run both off the request path ([`jobs`]), the disclosure log ([`disclosures`]) and the data
//! inventory generated from the schema registry ([`inventory`]).

pub mod disclosures;
pub mod erasure;
pub mod export;
pub mod inventory;
pub mod job_queue;
pub mod jobs;
pub mod requests;

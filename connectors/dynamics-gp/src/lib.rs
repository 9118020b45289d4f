//! The Microsoft Dynamics GP connector: a source of customers and receivables invoices.
//!
//! - Interfaces ([`GpInterface`]): the SOAP "Web Services for Microsoft Dynamics GP" legacy
//!   endpoint (SOAP 1.1, `…/DynamicsGPWebServices/DynamicsGPService.asmx`), the primary one, and
//!   the Service Based Architecture REST endpoint (`/GPService/Tenants(…)/Companies(…)/…`),
//!   whose routes and bodies no public capture shows, hence configurable paths and tolerant
//!   parsing.
//! - Auth ([`transport`]): Windows credentials over NTLM on HTTP/1.1 connections the connector
//!   owns (NTLM authenticates a connection, so reqwest's pool cannot carry it); raw NTLM inside
//!   `Negotiate` when a server offers only that; Basic for SBA. Kerberos is not implemented: it
//!   needs a reachable KDC (none is, from here or in tests) and a GSSAPI/SSPI stack; the `sspi`
//!   crate could add it behind the same `Negotiate` header. NTLM channel binding (Extended
//!   Protection over https) is not sent.
//! - Reads ([`source`]): `customers` and `invoices` changed after the watermark
//!   (`ModifiedDate`, UTC). GP's lists cannot page, so they are read in adaptive key ranges
//!   ([`keyrange`]) and each record is then read whole by key (the list summaries carry no
//!   e-mail, address, remaining amount or void flag). Because an e-mail edit does not change a
//!   customer's `ModifiedDate`, an incremental SOAP customer read also asks GP's entity action
//!   tracking which customers' internet addresses changed (`GetChangedInternetAddressKeyList`)
//!   and reads those too; that needs tracking enabled on the GP install, and SBA cannot ask.
//! - Records ([`records`]): GP's field names, plus the derived `email` / `email_others` (from
//!   the internet-address fields, `;`-separated) and, on invoices, `payment_status`.
//! - Writes: none. GP is a source.

#![warn(missing_docs)]

pub mod client;
mod connector;
pub mod keyrange;
pub mod records;
pub mod sba;
mod settings;
pub mod soap;
pub mod source;
pub mod summary;
pub mod transport;
pub mod xml;

pub use client::{GpClient, GpError};
pub use connector::{DynamicsGpConnector, GpConnection};
pub use settings::{GpAuth, GpInterface, GpSettings, SbaPaths};

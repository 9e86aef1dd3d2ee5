//! # telemetry-transport: how payloads leave the machine (only when built with it)
//!
//! Uploads pending payloads to an endpoint the operator supplies (`telemetry upload --endpoint
//! URL` or `telemetry.endpoint`); there is no built-in host. Reached only through the `upload`
//! feature of `telemetry-cli`, which is off by default.
//!
//! **Invariant: the only crate in the workspace that may open sockets, and absent from default
//! builds** (`cargo xtask audit`, rules 1, 2 and 4).
//!
//! What an upload does, in order ([`upload_pending`]):
//! 1. **Decides again**: the consent token, the config and every hard override (`DO_NOT_TRACK`,
//!    `<APP>_TELEMETRY`, `CI`, …) are read now. Under any override, or without consent, nothing
//!    is sent, nothing is looked up, and the payloads stay where they are (`purge` removes them).
//! 2. **Checks the endpoint**: `https://`, or `http://` to a loopback address; anything else is
//!    refused before any connection. The proxy comes from `HTTPS_PROXY` / `HTTP_PROXY` /
//!    `ALL_PROXY` unless `NO_PROXY` names the host; `telemetry.ca_bundle` replaces the built-in
//!    roots with the operator's CAs (a TLS-inspecting corporate proxy, a private endpoint).
//! 3. **Sends the exact bytes** `verify-payload` shows (same SHA-256), oldest first, with
//!    `content-type: application/json`, the payload's schema version and a plain
//!    [`USER_AGENT`]; no cookies, no other identifier. Redirects are not followed.
//! 4. **Settles each payload**: 2xx deletes it; any other 4xx deletes it with a warning (it
//!    would never be accepted); 5xx, 408, 429, a redirect, a timeout or no connection keep it,
//!    with exponential backoff and jitter, until [`UploadOptions::max_attempts`]; at most
//!    [`UploadOptions::max_per_minute`] attempts a minute, over all runs.
//!
//! A host that uploads on its own calls [`start_background`] early and
//! [`BackgroundUpload::finish`] with a small wait at exit (45 ms keeps it under 50 ms: `finish`
//! returns about 0.1 ms after its wait): the upload runs on a thread and never
//! keeps the host waiting longer than that wait.
//!
//! ```no_run
//! use std::time::Duration;
//! use telemetry_core::Telemetry;
//! use telemetry_transport::{UploadOptions, start_background};
//!
//! let builder = Telemetry::builder("acme");
//! let telemetry = builder.clone().build();
//! // Only when the decision allows it and an endpoint is configured; no network otherwise.
//! let upload = start_background(&builder, UploadOptions::default()).ok();
//! // ... the host's work, recording events ...
//! let _ = telemetry.flush();
//! if let Some(upload) = upload {
//!     upload.finish(Duration::from_millis(45));
//! }
//! ```

#![forbid(unsafe_code)]

mod endpoint;
mod state;
mod upload;

pub use endpoint::{Endpoint, EndpointError, no_proxy_matches};
pub use state::STATE_FILE;
pub use upload::{
    BackgroundUpload, Outcome, PayloadOutcome, SCHEMA_VERSION_HEADER, USER_AGENT, UploadError,
    UploadOptions, UploadReport, start_background, upload_pending,
};

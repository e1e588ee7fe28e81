//! # flow2api-sdk
//!
//! A runtime-agnostic gateway to Google Labs Flow (Imagen 4, Gemini image, Veo 3.1) behind
//! OpenAI- and Gemini-compatible HTTP APIs, fed by a pool of Google accounts.
//!
//! The SDK holds all the behaviour and reaches the world only through the traits in [`seams`]:
//! [`HttpClient`], [`Storage`], [`Coordinator`], [`Clock`], [`CaptchaSolver`] and
//! [`MediaStore`]. A host (the Cloudflare Worker in `edge-worker`, or [`native`] on tokio)
//! implements them and calls [`App::handle`] with each `http::Request`.
//!
//! Contents:
//! - [`api`]: the HTTP surface (OpenAI chat completions and models, admin routes, media).
//! - [`flow`]: the typed upstream client, one function per endpoint, build → send → parse.
//! - [`models`]: the model catalogue, tiers and name resolution.
//! - [`captcha`]: reCAPTCHA solvers over [`HttpClient`].
//! - [`coordination`]: what a [`Coordinator`] is told and keeps per account.
//! - [`pool`]: accounts, their tokens and their concurrency slots.
//! - [`generate`]: the generation pipeline, emitting progress events.
//! - [`jobs`]: durable video jobs, stepped by a host's driver and read by clients.
//! - [`memory`]: in-memory reference implementations of the seams.
//! - [`logs`]: request logs and generation counters (what a row holds, the SQL of the SQLite
//!   stores, an in-memory store).
//! - [`public_ip`]: which addresses client-given URLs may reach (server-side request forgery).
//! - [`tenants`]: API keys the admin hands out, with quotas, model patterns and their own jobs.
//! - [`cache`]: a caching decorator for [`Storage`] (hosts whose reads are costly).
//! - `native` (cargo features `reqwest`, `tokio`, `server`, `native`; all off by default): the
//!   seams over reqwest, tokio, hyper and files, and `native::Host`, the whole gateway on one
//!   machine.

#![warn(missing_docs)]

pub mod api;
pub mod cache;
pub mod captcha;
pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod coordination;
pub mod egress;
pub mod flow;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod jobs;
pub mod logs;
pub mod memory;
pub mod models;
#[cfg(any(feature = "reqwest", feature = "tokio"))]
pub mod native;
pub mod pool;
#[cfg(any(test, feature = "testing"))]
mod probe;
pub mod proxy_url;
pub mod public_ip;
pub mod seams;
pub mod secret;
pub mod settings;
pub mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
pub(crate) mod transport;
pub(crate) mod util;

pub use http;

#[doc(inline)]
pub use api::{App, AppBuilder, Body, BuildError};
#[doc(inline)]
pub use config::Config;
#[doc(inline)]
pub use flow::FlowClient;
#[doc(inline)]
pub use seams::{CaptchaSolver, Clock, Coordinator, HttpClient, MediaStore, Storage};
#[doc(inline)]
pub use secret::Secret;

//! The server's integration tests (one test binary): the JSON API over HTTP on loopback, the
//! permission matrix, and the web UI in headless Chromium through WebDriver.

mod access;
mod api;
mod browser;
mod directives;
mod hardening;
mod incidents;
mod people;
mod safety;
mod sites;
mod util;

//! `report`: what a build reports. The summary ([`summary::BuildSummary`], human lines and
//! JSON), the progress bar on a terminal (`progress`), and the process's peak memory (`rss`).

pub mod progress;
pub mod rss;
pub mod summary;

//! `report`: what a build reports. The summary ([`summary::BuildSummary`], human lines and
//! JSON) and where its JSON goes (`sink`), the progress bar on a terminal (`progress`), the process's peak memory (`rss`), and
//! which spillway made a file (`tool`).

pub mod progress;
pub mod rss;
pub mod sink;
pub mod summary;
pub mod tool;

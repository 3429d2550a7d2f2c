//! Ring buffer records into typed events: the decoder is pure and lives in
//! the classify crate ([`assay_classify::record`]), where the fuzz targets
//! reach it without the agent.

pub use assay_classify::record::*;

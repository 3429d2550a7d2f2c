//! What the agent knows about the host's processes and workloads, kept up
//! to date by the sensors and read by evidence and sinks. The flow table is
//! the classify crate's model ([`assay_classify::flow::FlowTable`]), shared
//! with `assay pcap`.

pub mod peers;
pub mod processes;
pub mod resolvers;
pub mod workload;

//! One module per kernel event family. [`decode`] turns ring buffer records
//! into typed events; each sensor module keeps what its family needs
//! between events and says what it saw.

pub mod cpu_time;
pub mod cuda;
pub mod decode;
pub mod flow;
pub mod fpu;
pub mod fpu_workload;
pub mod gpu;
pub mod pmu;

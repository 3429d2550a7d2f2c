//! A stand-in `libnccl.so.2` for tests on machines without a GPU: what a
//! distributed training or serving process maps (assay reads
//! `/proc/<pid>/maps`), with NCCL's version call so that it is called, not
//! only loaded.

#![allow(
    clippy::missing_safety_doc,
    reason = "the safety contract is NCCL's, documented in nccl.h"
)]
#![allow(non_camel_case_types, reason = "names as nccl.h spells them")]

use std::ffi::c_int;

pub type ncclResult_t = u32;

pub const NCCL_SUCCESS: ncclResult_t = 0;
pub const NCCL_INVALID_ARGUMENT: ncclResult_t = 4;

/// The version this stand-in claims (2.21.5, as NCCL encodes it).
pub const NCCL_VERSION_CODE: c_int = 22105;

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn ncclGetVersion(version: *mut c_int) -> ncclResult_t {
    if version.is_null() {
        return NCCL_INVALID_ARGUMENT;
    }
    // SAFETY: checked non-null; writable per the API.
    unsafe { version.write(NCCL_VERSION_CODE) };
    NCCL_SUCCESS
}

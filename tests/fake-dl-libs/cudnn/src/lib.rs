//! A stand-in `libcudnn.so.9` for tests on machines without a GPU: what a
//! deep-learning process maps (assay reads `/proc/<pid>/maps`), with a few
//! of cuDNN's handle calls so that it is called, not only loaded.

#![allow(
    clippy::missing_safety_doc,
    reason = "the safety contracts are cuDNN's, documented in cudnn.h"
)]
#![allow(non_camel_case_types, reason = "names as cudnn.h spells them")]

use std::{
    ffi::c_void,
    sync::atomic::{AtomicUsize, Ordering},
};

pub type cudnnStatus_t = u32;
pub type cudnnHandle_t = *mut c_void;

pub const CUDNN_STATUS_SUCCESS: cudnnStatus_t = 0;
pub const CUDNN_STATUS_BAD_PARAM: cudnnStatus_t = 2000;

/// The version this stand-in claims (9.1.0).
pub const CUDNN_VERSION: usize = 90100;

static HANDLES: AtomicUsize = AtomicUsize::new(0);

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cudnnGetVersion() -> usize {
    CUDNN_VERSION
}

#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn cudnnCreate(handle: *mut cudnnHandle_t) -> cudnnStatus_t {
    if handle.is_null() {
        return CUDNN_STATUS_BAD_PARAM;
    }
    let id = HANDLES.fetch_add(1, Ordering::Relaxed) + 1;
    // SAFETY: checked non-null; writable per the API. The handle is an
    // opaque non-null token.
    unsafe { handle.write(std::ptr::without_provenance_mut(id)) };
    CUDNN_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cudnnDestroy(handle: cudnnHandle_t) -> cudnnStatus_t {
    if handle.is_null() {
        return CUDNN_STATUS_BAD_PARAM;
    }
    CUDNN_STATUS_SUCCESS
}

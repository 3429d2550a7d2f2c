//! Names the shared object as the real driver is named, so that the
//! dynamic loader (and anything reading its DT_SONAME) takes it for one.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcuda.so.1");
}

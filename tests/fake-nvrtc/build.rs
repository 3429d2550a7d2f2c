//! Names the shared object as the real NVRTC is named.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnvrtc.so.12");
}

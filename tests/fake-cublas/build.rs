//! Names the shared object as the real cuBLAS is named.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcublas.so.12");
}

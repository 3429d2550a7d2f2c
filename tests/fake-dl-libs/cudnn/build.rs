//! Names the shared object as the real cuDNN is named.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcudnn.so.9");
}

//! Benchmark workloads for `cargo xtask bench`. Each runs for a fixed time
//! and prints one line, `ops <count> secs <elapsed>`, so the harness can
//! compute throughput with and without the agent attached.
//!
//! - `rr`: request/response over one long-lived loopback TCP connection
//!   (64-byte messages): the per-packet cost of the flow sensor.
//! - `rr-connect`: a new connection per request/response: the connect hook,
//!   flow-table inserts and payload samples.
//! - `exec`: fork+exec of /bin/true: the process sensor.
//! - `syscalls`: getppid in a loop: syscall entry cost.
//! - `opens`: open and close a file in a loop (openat is the hot syscall
//!   the hygiene sensor watches; mmap is cheaper to test).
//! - `cpu`: an integer hashing loop: whatever slows pure computation.
//! - `float-rounding`: a floating-point loop that switches MXCSR to
//!   round-toward-zero for a moment every millisecond and back (what
//!   interval arithmetic does): a benign look-alike for the RandomX marker.
//! - `interval-rounding`: holds upward and downward rounding for whole
//!   stretches of computation, alternately (Boost.Interval-style interval
//!   arithmetic): the strongest benign look-alike for the RandomX marker.

use std::{
    hint::black_box,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

const MESSAGE: usize = 64;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(secs)) = (args.get(1), args.get(2)) else {
        bail!(
            "usage: assay-load <rr|rr-connect|exec|syscalls|opens|cpu|float-rounding|interval-rounding> <seconds>"
        );
    };
    let duration = Duration::from_secs_f64(secs.parse()?);
    let start = Instant::now();
    let ops = match workload.as_str() {
        "rr" => request_response(duration, false)?,
        "rr-connect" => request_response(duration, true)?,
        "exec" => exec_storm(duration)?,
        "syscalls" => syscalls(duration),
        "opens" => opens(duration)?,
        "cpu" => cpu(duration),
        "float-rounding" => float_rounding(duration, &[ROUND_TOWARD_ZERO], 100),
        "interval-rounding" => float_rounding(duration, &[ROUND_UP, ROUND_DOWN], 200_000),
        other => bail!("unknown workload {other}"),
    };
    println!("ops {ops} secs {:.6}", start.elapsed().as_secs_f64());
    Ok(())
}

fn echo_server() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; MESSAGE];
                while stream.read_exact(&mut buf).is_ok() {
                    if stream.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

fn request_response(duration: Duration, reconnect: bool) -> Result<u64> {
    let addr = echo_server()?;
    let request = [b'x'; MESSAGE];
    let mut reply = [0u8; MESSAGE];
    let deadline = Instant::now() + duration;
    let mut ops = 0;
    let mut stream: Option<TcpStream> = None;
    while Instant::now() < deadline {
        for _ in 0..64 {
            if reconnect || stream.is_none() {
                let s = TcpStream::connect(&addr)?;
                s.set_nodelay(true)?;
                stream = Some(s);
            }
            let s = stream.as_mut().expect("connected");
            s.write_all(&request)?;
            s.read_exact(&mut reply)?;
            ops += 1;
        }
    }
    Ok(ops)
}

fn exec_storm(duration: Duration) -> Result<u64> {
    let deadline = Instant::now() + duration;
    let mut ops = 0;
    while Instant::now() < deadline {
        let status = Command::new("/bin/true").status()?;
        if !status.success() {
            bail!("/bin/true failed");
        }
        ops += 1;
    }
    Ok(ops)
}

fn opens(duration: Duration) -> Result<u64> {
    let path = std::ffi::CString::new("/proc/self/stat")?;
    let deadline = Instant::now() + duration;
    let mut ops = 0;
    while Instant::now() < deadline {
        for _ in 0..256 {
            // SAFETY: a valid C string; the fd is closed at once.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
            if fd < 0 {
                bail!("open: {}", std::io::Error::last_os_error());
            }
            // SAFETY: our own fd.
            unsafe { libc::close(fd) };
        }
        ops += 256;
    }
    Ok(ops)
}

fn syscalls(duration: Duration) -> u64 {
    let deadline = Instant::now() + duration;
    let mut ops = 0;
    while Instant::now() < deadline {
        for _ in 0..1024 {
            // SAFETY: getppid has no preconditions.
            black_box(unsafe { libc::getppid() });
        }
        ops += 1024;
    }
    ops
}

fn cpu(duration: Duration) -> u64 {
    let deadline = Instant::now() + duration;
    let mut ops = 0u64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    while Instant::now() < deadline {
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        }
        black_box(state);
        ops += 100_000;
    }
    ops
}

const ROUND_DOWN: u32 = 0x2000;
const ROUND_UP: u32 = 0x4000;
const ROUND_TOWARD_ZERO: u32 = 0x6000;

/// Loops over `modes`: `stretch` multiply-adds in each mode, then 200 000
/// in the default mode.
#[cfg(target_arch = "x86_64")]
fn float_rounding(duration: Duration, modes: &[u32], stretch: u64) -> u64 {
    fn get_mxcsr() -> u32 {
        let mut value = 0u32;
        // SAFETY: stmxcsr stores the 32-bit MXCSR into the local we own.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &raw mut value) };
        value
    }
    fn set_mxcsr(value: u32) {
        // SAFETY: ldmxcsr loads a valid MXCSR image (a read-back one with
        // only the rounding bits changed).
        unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &raw const value) };
    }
    let default = get_mxcsr();
    let deadline = Instant::now() + duration;
    let mut ops = 0u64;
    let mut x = 1.0f64;
    while Instant::now() < deadline {
        for &mode in modes {
            set_mxcsr(default | mode);
            for _ in 0..stretch {
                x = black_box(x * 1.000_000_1 + 1e-9);
            }
            ops += stretch;
        }
        set_mxcsr(default);
        for _ in 0..200_000 {
            x = black_box(x * 1.000_000_1 + 1e-9);
        }
        ops += 200_000;
    }
    black_box(x);
    ops
}

#[cfg(not(target_arch = "x86_64"))]
fn float_rounding(_duration: Duration, _modes: &[u32], _stretch: u64) -> u64 {
    0
}

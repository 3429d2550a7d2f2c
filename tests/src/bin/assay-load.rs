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
//! - `redis-c1`, `redis-c8`: Debian's redis-benchmark PING against a
//!   redis-server it starts on a free loopback port, with 1 and 8 clients:
//!   a real request/response server, the flow sensor's per-packet cost.
//! - `pingpong`: two processes passing a byte back and forth over pipes:
//!   two context switches per round trip, the FPU sensor's per-switch cost.
//! - `float-rounding`: a floating-point loop that switches MXCSR to
//!   round-toward-zero for a moment every millisecond and back (what
//!   interval arithmetic does): a benign look-alike for the RandomX marker.
//! - `interval-rounding`: holds upward and downward rounding for whole
//!   stretches of computation, alternately (Boost.Interval-style interval
//!   arithmetic): the strongest benign look-alike for the RandomX marker.
//! - `truncating-rounding`: holds round-toward-zero for whole stretches
//!   (code that converts with truncation set once): summed with
//!   `interval-rounding` jobs in one workload, every non-default mode shows,
//!   though no process mixes them.

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
            "usage: assay-load <rr|rr-connect|exec|syscalls|opens|cpu|redis-c1|redis-c8|pingpong|waker|float-rounding|interval-rounding|truncating-rounding> <seconds>"
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
        "redis-c1" => redis_ping(duration, 1)?,
        "redis-c8" => redis_ping(duration, 8)?,
        "pingpong" => pingpong(duration)?,
        "waker" => waker(duration),
        "float-rounding" => float_rounding(duration, &[ROUND_TOWARD_ZERO], 100),
        "interval-rounding" => float_rounding(duration, &[ROUND_UP, ROUND_DOWN], 200_000),
        "truncating-rounding" => float_rounding(duration, &[ROUND_TOWARD_ZERO], 200_000),
        other => bail!("unknown workload {other}"),
    };
    println!("ops {ops} secs {:.6}", start.elapsed().as_secs_f64());
    Ok(())
}

/// Does nothing but wake every 20 ms, as an idle agent's timers do: `cargo
/// xtask bench --itemise` runs it on the agent's CPU as a control, to show
/// what any process that wakes now and then costs a workload on another
/// CPU of this machine.
fn waker(duration: Duration) -> u64 {
    let start = Instant::now();
    let mut wakeups = 0;
    while start.elapsed() < duration {
        thread::sleep(Duration::from_millis(20));
        wakeups += 1;
    }
    wakeups
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

/// redis-benchmark PINGs for about `duration` against a redis-server of
/// its own; ops = the requests it completed.
fn redis_ping(duration: Duration, clients: u32) -> Result<u64> {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let mut server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = server.kill();
            bail!("redis-server did not start");
        }
        thread::sleep(Duration::from_millis(20));
    }
    // About 40 k PINGs a second per client here: enough requests to run
    // past `duration`, cut by a timeout so every run lasts the same.
    let requests = (duration.as_secs_f64() * 60_000.0 * f64::from(clients.min(4))) as u64;
    let started = Instant::now();
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &clients.to_string(), "-n", &requests.to_string()])
        .args(["-t", "ping_inline", "-q", "--csv"])
        .output();
    let elapsed = started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    let output = output?;
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The harness divides ops by the nominal duration: scale to it.
    Ok((requests as f64 * duration.as_secs_f64() / elapsed) as u64)
}

/// Round trips of one byte between this process and a child over two
/// pipes.
fn pingpong(duration: Duration) -> Result<u64> {
    let mut to_child = [0i32; 2];
    let mut to_parent = [0i32; 2];
    // SAFETY: pipe writes two fds into the array.
    let first = unsafe { libc::pipe(to_child.as_mut_ptr()) };
    // SAFETY: as above.
    let second = unsafe { libc::pipe(to_parent.as_mut_ptr()) };
    if first != 0 || second != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the child only reads, writes and exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: the ends this side does not use; without closing them
        // the child would never see the parent's end of file.
        unsafe {
            libc::close(to_child[1]);
            libc::close(to_parent[0]);
        }
        let mut byte = 0u8;
        loop {
            // SAFETY: our pipe fds and a one-byte buffer.
            let n = unsafe { libc::read(to_child[0], (&raw mut byte).cast(), 1) };
            if n != 1 {
                // SAFETY: exit the forked child without unwinding.
                unsafe { libc::_exit(0) };
            }
            // SAFETY: as above.
            unsafe { libc::write(to_parent[1], (&raw const byte).cast(), 1) };
        }
    }
    // SAFETY: the child's ends, not used here.
    unsafe {
        libc::close(to_child[0]);
        libc::close(to_parent[1]);
    }
    let deadline = Instant::now() + duration;
    let mut ops = 0;
    let mut byte = 1u8;
    while Instant::now() < deadline {
        for _ in 0..256 {
            // SAFETY: our pipe fds and a one-byte buffer.
            unsafe {
                libc::write(to_child[1], (&raw const byte).cast(), 1);
                libc::read(to_parent[0], (&raw mut byte).cast(), 1);
            }
        }
        ops += 256;
    }
    // SAFETY: closing our ends ends the child's loop; then reap it.
    unsafe {
        libc::close(to_child[1]);
        libc::waitpid(child, std::ptr::null_mut(), 0);
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

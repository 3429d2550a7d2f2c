//! A RandomX miner whose hashing threads come and go: real RandomX hashing
//! (the reference implementation, Debian's librandomx that monerod links,
//! loaded at run time) on threads that each live a random stretch shorter
//! than the agent's 2 s read of the FPU counters, a new thread taking over
//! as each exits. This is how a miner would hide from a marker judged
//! thread by thread (issue #15): no hashing thread is ever read twice.
//!
//! With `--processes`, whole processes rotate instead (issue #15: a miner
//! judged per process): a supervisor builds the cache once and forks
//! hashing workers, one thread each, that inherit it, each living a random
//! stretch and replaced as it exits, all in the supervisor's cgroup.
//!
//! Light mode (the 256 MiB cache, no 2 GiB dataset): every hash runs the
//! same RandomX programs, CFROUND and all, as a full-memory miner's, only
//! slower. The key and inputs are fixed; what is hashed is of no interest.
//!
//! Output on stdout: `ready <pid>` once the cache is built and the first
//! threads hash, then `threads <started> hashes <n>` at the end
//! (`processes <started>` with `--processes`).

use std::{
    ffi::{CStr, CString, c_int, c_void},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "RandomX hashing on short-lived, rotating threads")]
struct Cli {
    /// Hashing threads (or worker processes) at once.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Rotate worker processes, forked from this one, not threads.
    #[arg(long)]
    processes: bool,
    /// Shortest life of a hashing thread, in milliseconds.
    #[arg(long, default_value_t = 300)]
    min_life_ms: u64,
    /// Longest life of a hashing thread, in milliseconds (under the
    /// sensor's 2 s read by default).
    #[arg(long, default_value_t = 1_700)]
    max_life_ms: u64,
    /// How long to mine.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// The shared object to load.
    #[arg(long, default_value = "librandomx.so.0")]
    library: String,
}

type GetFlags = unsafe extern "C" fn() -> c_int;
type AllocCache = unsafe extern "C" fn(c_int) -> *mut c_void;
type InitCache = unsafe extern "C" fn(*mut c_void, *const c_void, usize);
type CreateVm = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) -> *mut c_void;
type DestroyVm = unsafe extern "C" fn(*mut c_void);
type CalculateHash = unsafe extern "C" fn(*mut c_void, *const c_void, usize, *mut c_void);

/// The RandomX C API (randomx.h), resolved with dlsym.
#[derive(Clone, Copy)]
struct RandomX {
    create_vm: CreateVm,
    destroy_vm: DestroyVm,
    calculate_hash: CalculateHash,
    flags: c_int,
    cache: usize,
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null, NUL-terminated (above).
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    }
}

fn symbol(handle: *mut c_void, name: &CStr) -> Result<*mut c_void> {
    // SAFETY: a live handle and a NUL-terminated name.
    let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if address.is_null() {
        bail!("dlsym {name:?}: {}", dlerror());
    }
    Ok(address)
}

impl RandomX {
    fn load(library: &str) -> Result<Self> {
        let c_name = CString::new(library)?;
        // SAFETY: a NUL-terminated name; the handle is kept until exit.
        let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            bail!("dlopen {library}: {}", dlerror());
        }
        // SAFETY: each symbol has the type randomx.h declares for it.
        unsafe {
            let get_flags: GetFlags = std::mem::transmute(symbol(handle, c"randomx_get_flags")?);
            let alloc_cache: AllocCache =
                std::mem::transmute(symbol(handle, c"randomx_alloc_cache")?);
            let init_cache: InitCache = std::mem::transmute(symbol(handle, c"randomx_init_cache")?);
            let flags = get_flags();
            let cache = alloc_cache(flags);
            if cache.is_null() {
                bail!("randomx_alloc_cache failed");
            }
            let key = b"assay thread rotation";
            init_cache(cache, key.as_ptr().cast(), key.len());
            Ok(Self {
                create_vm: std::mem::transmute::<*mut c_void, CreateVm>(symbol(
                    handle,
                    c"randomx_create_vm",
                )?),
                destroy_vm: std::mem::transmute::<*mut c_void, DestroyVm>(symbol(
                    handle,
                    c"randomx_destroy_vm",
                )?),
                calculate_hash: std::mem::transmute::<*mut c_void, CalculateHash>(symbol(
                    handle,
                    c"randomx_calculate_hash",
                )?),
                flags,
                cache: cache as usize,
            })
        }
    }

    /// Hashes until `until` on a VM of its own; returns the hashes made.
    fn hash_until(self, until: Instant, seed: u64) -> u64 {
        // SAFETY: flags from randomx_get_flags, an initialised cache, no
        // dataset (light mode); the VM is destroyed below.
        let vm = unsafe {
            (self.create_vm)(self.flags, self.cache as *mut c_void, std::ptr::null_mut())
        };
        if vm.is_null() {
            return 0;
        }
        let mut input = seed.to_le_bytes().repeat(10);
        let mut output = [0u8; 32];
        let mut hashes = 0u64;
        while Instant::now() < until {
            input[..8].copy_from_slice(&hashes.to_le_bytes());
            // SAFETY: a live VM, a readable input and a 32-byte output.
            unsafe {
                (self.calculate_hash)(
                    vm,
                    input.as_ptr().cast(),
                    input.len(),
                    output.as_mut_ptr().cast(),
                );
            }
            hashes += 1;
        }
        // SAFETY: the VM created above, used no more.
        unsafe { (self.destroy_vm)(vm) };
        std::hint::black_box(output);
        hashes
    }
}

/// xorshift64: the threads' lives.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.min_life_ms > cli.max_life_ms || cli.threads == 0 {
        bail!("need 1+ threads and --min-life-ms <= --max-life-ms");
    }
    let randomx = RandomX::load(&cli.library)?;
    let end = Instant::now() + Duration::from_secs_f64(cli.seconds);
    if cli.processes {
        return rotate_processes(&cli, randomx, end);
    }
    let hashes = Arc::new(AtomicU64::new(0));
    let mut rng = Rng(u64::from(std::process::id()) | 1 << 32);
    let mut started = 0u64;
    let spawn = |rng: &mut Rng, started: &mut u64| {
        let life = cli.min_life_ms + rng.below(cli.max_life_ms - cli.min_life_ms + 1);
        let until = (Instant::now() + Duration::from_millis(life)).min(end);
        let hashes = Arc::clone(&hashes);
        let seed = *started;
        *started += 1;
        thread::spawn(move || {
            hashes.fetch_add(randomx.hash_until(until, seed), Ordering::Relaxed);
        })
    };
    let mut running: Vec<thread::JoinHandle<()>> = (0..cli.threads)
        .map(|_| spawn(&mut rng, &mut started))
        .collect();
    println!("ready {}", std::process::id());
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
        for slot in &mut running {
            if slot.is_finished() && Instant::now() < end {
                let done = std::mem::replace(slot, spawn(&mut rng, &mut started));
                let _ = done.join();
            }
        }
    }
    for handle in running {
        let _ = handle.join();
    }
    println!(
        "threads {started} hashes {}",
        hashes.load(Ordering::Relaxed)
    );
    Ok(())
}

/// A worker forked to hash until `until`; it exits without unwinding.
fn fork_worker(randomx: RandomX, until: Instant, seed: u64) -> Result<libc::pid_t> {
    // SAFETY: this process is single-threaded here (no thread was
    // started), so the child may run anything; it leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("fork: {}", std::io::Error::last_os_error());
    }
    if pid == 0 {
        randomx.hash_until(until, seed);
        // SAFETY: ends the child without running the parent's exit work.
        unsafe { libc::_exit(0) };
    }
    Ok(pid)
}

fn rotate_processes(cli: &Cli, randomx: RandomX, end: Instant) -> Result<()> {
    let mut rng = Rng(u64::from(std::process::id()) | 1 << 32);
    let mut started = 0u64;
    let mut spawn = || {
        let life = cli.min_life_ms + rng.below(cli.max_life_ms - cli.min_life_ms + 1);
        let until = (Instant::now() + Duration::from_millis(life)).min(end);
        started += 1;
        fork_worker(randomx, until, started)
    };
    let mut running = Vec::with_capacity(cli.threads);
    for _ in 0..cli.threads {
        running.push(spawn()?);
    }
    println!("ready {}", std::process::id());
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
        for slot in &mut running {
            let mut status = 0;
            // SAFETY: waits for our own child, without blocking.
            if unsafe { libc::waitpid(*slot, &raw mut status, libc::WNOHANG) } == *slot
                && Instant::now() < end
            {
                *slot = spawn()?;
            }
        }
    }
    for pid in running {
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &raw mut status, 0) };
    }
    println!("processes {started}");
    Ok(())
}

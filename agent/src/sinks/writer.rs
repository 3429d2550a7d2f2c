//! Where finding lines are written: stdout, a rotating file, or both.
//!
//! A reader at the other end of stdout may stop reading (a stalled log
//! shipper, a full pipe), and a file may sit on a slow disk: either would
//! block a `write`. So lines go through a bounded queue to a thread of
//! their own, which writes and flushes each one as it comes. The event
//! loop never waits on it; a line that finds the queue full is counted
//! and dropped, never silently lost.

use std::{
    io::{self, Write},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::Duration,
};

/// Lines waiting for the writer thread, at most.
pub const QUEUE: usize = 10_000;

/// What the writer did.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub written: AtomicU64,
    /// Lines dropped because the queue was full (the output is stuck).
    pub dropped: AtomicU64,
    pub errors: AtomicU64,
}

/// The writer thread's handle.
pub struct LineWriter {
    queue: mpsc::SyncSender<Vec<u8>>,
    done: mpsc::Receiver<()>,
    pub stats: Arc<WriterStats>,
}

impl LineWriter {
    /// Starts the thread: to stdout when `stdout`, and to `file`.
    pub fn start(stdout: bool, file: Option<RotatingFile>) -> io::Result<Self> {
        Self::start_with(
            if stdout {
                Some(Box::new(io::stdout()) as Box<dyn Write + Send>)
            } else {
                None
            },
            file,
            QUEUE,
        )
    }

    fn start_with(
        mut out: Option<Box<dyn Write + Send>>,
        mut file: Option<RotatingFile>,
        queue: usize,
    ) -> io::Result<Self> {
        let (sender, lines) = mpsc::sync_channel::<Vec<u8>>(queue);
        let (finished, done) = mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        let counters = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("assay-findings".into())
            .spawn(move || {
                for line in lines {
                    // Every output is tried: a full disk must not silence
                    // stdout.
                    let mut failed = false;
                    if let Some(out) = out.as_mut() {
                        failed |= out.write_all(&line).and_then(|()| out.flush()).is_err();
                    }
                    if let Some(file) = file.as_mut() {
                        failed |= file.write_line(&line).is_err();
                    }
                    let counter = if failed {
                        &counters.errors
                    } else {
                        &counters.written
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                let _ = finished.send(());
            })?;
        Ok(Self {
            queue: sender,
            done,
            stats,
        })
    }

    /// Queues a line; never blocks.
    pub fn push(&self, line: Vec<u8>) {
        if self.queue.try_send(line).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes the queue and waits up to `grace` for the thread to write
    /// what is left (a stuck stdout must not keep the agent from stopping).
    pub fn close(self, grace: Duration) {
        drop(self.queue);
        let _ = self.done.recv_timeout(grace);
    }
}

/// An append-only file of lines, rotated when it would grow past
/// `max_bytes`: `PATH` → `PATH.1` → … → `PATH.<keep>` (the oldest goes).
pub struct RotatingFile {
    path: std::path::PathBuf,
    max_bytes: u64,
    keep: u32,
    file: std::fs::File,
    size: u64,
}

impl RotatingFile {
    pub fn open(path: &std::path::Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1),
            keep,
            file,
            size,
        })
    }

    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.file.flush()?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            std::path::PathBuf::from(name)
        };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Mutex, time::Instant};

    use super::*;

    /// An output that blocks until released, like a pipe nobody reads.
    struct Stuck(Arc<Mutex<()>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _held = self.0.lock().unwrap();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_output_never_blocks_the_caller_and_lost_lines_are_counted() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let writer =
            LineWriter::start_with(Some(Box::new(Stuck(Arc::clone(&gate)))), None, 4).unwrap();
        let started = Instant::now();
        for i in 0..100 {
            writer.push(format!("{i}\n").into_bytes());
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // One line is in the stuck write, four wait in the queue.
        assert!(writer.stats.dropped.load(Ordering::Relaxed) >= 95);
        let started = Instant::now();
        let stats = Arc::clone(&writer.stats);
        writer.close(Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
        let _ = stats;
    }
}

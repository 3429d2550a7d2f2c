//! The running agent: the event loop that joins the sensors, tables,
//! classifiers, evidence, correlator and sinks.
//!
//! One task owns every table, without locks; nothing on it waits on I/O:
//! - each event family has its own ring buffer (process, flow, other
//!   sensors), so that a storm in one cannot make another drop; whichever
//!   wakes the loop, all are drained and their records handled in the
//!   kernel's order;
//! - every read of /proc, of a file a process names and of the socket
//!   tables runs on bounded blocking workers ([`crate::procfs::workers`])
//!   whose results come back as messages;
//! - GPU telemetry is polled on a thread of its own;
//! - finding lines are written by a thread of their own
//!   ([`crate::sinks::writer`]).
//!
//! [`setup`] builds the pieces from the options; [`state`] is what the
//! loop drives, with its event, tick and work handlers in [`network`],
//! [`process`], [`gpu`] and [`work_loop`]; [`ledger`] feeds the compute-use
//! ledger; [`status`] is what it reports about itself.

mod enforce;
mod gpu;
mod ledger;
mod memory;
mod network;
mod process;
mod setup;
mod state;
mod status;
mod storage;
mod work;
mod work_loop;

use std::time::Duration;

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use self::setup::Rings;
pub use self::setup::RunOptions;

/// How often the rings are drained when the kernel did not wake us (it
/// wakes us only when a burst piles up: see the eBPF side's wakeup flags).
const DRAIN_PERIOD: Duration = Duration::from_millis(50);
/// How long the start waits for the command lines of the processes found
/// in /proc, at most.
const STARTUP_READS: Duration = Duration::from_secs(2);
/// How long the sinks get to finish when the agent stops.
const STOP_GRACE: Duration = Duration::from_secs(3);

pub async fn run(options: RunOptions) -> Result<()> {
    let setup::Built {
        mut loaded,
        rings,
        mut agent,
        mut work_done,
        mut telemetry,
        metrics,
    } = setup::build(&options).await?;
    let Rings {
        mut process,
        mut flow,
        mut sensor,
    } = rings;
    // Handlers first: "ready" promises that a stop signal detaches cleanly.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    agent.start(options.state_dir.as_deref());
    settle_startup_reads(&mut agent, &mut work_done).await;
    memory::release_free_memory();
    info!(processes = agent.tables.processes.len(), "agent ready");

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut drain = tokio::time::interval(DRAIN_PERIOD);
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Whichever ring wakes us, all are drained together: see
            // `Agent::drain` for why.
            ready = process.readable_mut() => {
                let mut ready = ready?;
                agent.drain([ready.get_inner_mut(), flow.get_mut(), sensor.get_mut()]);
                ready.clear_ready();
            }
            ready = flow.readable_mut() => {
                let mut ready = ready?;
                agent.drain([process.get_mut(), ready.get_inner_mut(), sensor.get_mut()]);
                ready.clear_ready();
            }
            ready = sensor.readable_mut() => {
                let mut ready = ready?;
                agent.drain([process.get_mut(), flow.get_mut(), ready.get_inner_mut()]);
                ready.clear_ready();
            }
            _ = drain.tick() => {
                agent.drain([process.get_mut(), flow.get_mut(), sensor.get_mut()]);
                // The CUDA launch window closes within one drain period of
                // its end: held to the next 1 s tick it would cost more.
                agent.cuda_windows(&mut loaded.ebpf);
            }
            _ = tick.tick() => agent.tick(&mut loaded.ebpf),
            Some(done) = work_done.recv() => agent.on_work_done(done),
            polled = status::next_poll(&mut telemetry) => agent.on_telemetry(polled),
            accepted = status::accept(metrics.as_ref()) => agent.serve_metrics(accepted),
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
        }
    }
    agent.stop(options.state_dir.as_deref(), STOP_GRACE).await;
    drop((process, flow, sensor));
    // Dropping the object closes every program and link fd: the kernel
    // detaches everything, nothing is pinned.
    drop(loaded);
    Ok(())
}

/// Before "ready": the command lines of the processes that predate the
/// agent are read (on workers, as always) and judged, so that their first
/// findings carry them. A read stuck in the kernel only delays the start
/// by [`STARTUP_READS`]; it is left to finish on its worker.
async fn settle_startup_reads(
    agent: &mut state::Agent,
    work_done: &mut tokio::sync::mpsc::UnboundedReceiver<work::Done>,
) {
    let deadline = tokio::time::Instant::now() + STARTUP_READS;
    loop {
        agent.read_command_lines();
        let idle = agent.workers.available() == crate::procfs::workers::MAX_IN_FLIGHT;
        if idle && !agent.tables.processes.argv_wanted() {
            return;
        }
        match tokio::time::timeout_at(deadline, work_done.recv()).await {
            Ok(Some(done)) => agent.on_work_done(done),
            _ => return,
        }
    }
}

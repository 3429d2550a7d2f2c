//! Timelines as a miner and its honest look-alikes produce them: varied
//! beats, share rates and message sizes from a seeded generator, never a
//! shape tuned to one threshold.

use super::*;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// xorshift64*: deterministic, varied inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Exponentially distributed seconds of mean `mean_s`, as ns.
    fn exponential(&mut self, mean_s: f64) -> u64 {
        (-(1.0 - self.unit()).ln() * mean_s * 1e9) as u64
    }
    fn between(&mut self, low: u32, high: u32) -> u32 {
        low + (self.next() % u64::from(high - low + 1)) as u32
    }
}

fn out(at_ns: u64, len: u32) -> Beat {
    Beat {
        at_ns,
        direction: Direction::Outbound,
        len,
    }
}

fn inb(at_ns: u64, len: u32) -> Beat {
    Beat {
        at_ns,
        direction: Direction::Inbound,
        len,
    }
}

/// One CPU sample a second over `[0, until]`, `cores` busy.
fn cpu(until_ns: u64, cores: impl Fn(u64) -> f32) -> Vec<CpuSample> {
    (1..=until_ns / S + 1)
        .map(|s| CpuSample {
            at_ns: s * S,
            seconds: 1.0,
            cores: cores(s),
        })
        .collect()
}

fn busy(until_ns: u64) -> Vec<CpuSample> {
    cpu(until_ns, |s| 0.97 + (s % 3) as f32 * 0.01)
}

/// Request/response: ask for a job, compute (exponential time: the luck
/// of the search), submit, get GOOD, ask again. `overhead`: bytes a TLS
/// record adds to each message.
fn request_response(rng: &mut Rng, mean_beat_s: f64, span_s: u64, overhead: u32) -> Vec<Beat> {
    let job_len = rng.between(60, 400);
    let submit_len = rng.between(24, 200);
    let rtt = u64::from(rng.between(1, 200)) * MS;
    let mut beats = vec![out(0, 4 + overhead), inb(rtt, job_len + overhead)];
    let mut t = rtt;
    while t < span_s * S {
        t += rng.exponential(mean_beat_s) + 50 * MS;
        beats.push(out(t, submit_len + rng.between(0, 2) + overhead));
        beats.push(inb(t + rtt, 5 + overhead));
        beats.push(out(t + rtt + MS, 4 + overhead));
        t += 2 * rtt + MS;
        beats.push(inb(t, job_len + rng.between(0, 4) + overhead));
    }
    beats
}

/// Push style (stratum, XMRig): the pool pushes a job every ~`job_s`
/// seconds; shares go out when found and are answered at once.
fn push_style(rng: &mut Rng, share_s: f64, job_s: f64, span_s: u64, overhead: u32) -> Vec<Beat> {
    let job_len = rng.between(200, 900);
    let share_len = rng.between(90, 260);
    let rtt = u64::from(rng.between(5, 250)) * MS;
    let mut beats = vec![out(0, 300 + overhead), inb(rtt, job_len + 200 + overhead)];
    let (mut next_job, mut next_share) = (rng.exponential(job_s), rng.exponential(share_s));
    while next_job.min(next_share) < span_s * S {
        if next_job < next_share {
            beats.push(inb(next_job, job_len + rng.between(0, 8) + overhead));
            next_job += rng.exponential(job_s) + S;
        } else {
            beats.push(out(next_share, share_len + rng.between(0, 3) + overhead));
            beats.push(inb(next_share + rtt, 60 + overhead));
            next_share += rng.exponential(share_s) + rtt;
        }
    }
    beats.sort_by_key(|b| b.at_ns);
    beats
}

fn span_end(beats: &[Beat]) -> u64 {
    beats.last().unwrap().at_ns
}

#[test]
fn request_response_miners_at_varied_beats_and_sizes_are_work_loops() {
    for (seed, beat_s, overhead) in [
        (1, 2.0f64, 0),
        (2, 4.0, 22),
        (3, 9.0, 0),
        (4, 15.0, 29),
        (5, 40.0, 22),
    ] {
        let mut rng = Rng(seed * 7919);
        let span_s = (beat_s * 12.0).max(90.0) as u64;
        let beats = request_response(&mut rng, beat_s, span_s, overhead);
        let found = judge(&beats, &busy(span_end(&beats)), 1)
            .unwrap_or_else(|| panic!("beat {beat_s} s, overhead {overhead}: none"));
        assert!(found.rounds >= MIN_ROUNDS, "{found:?}");
        assert!(found.result_variation <= MAX_RESULT_VARIATION, "{found:?}");
        let strength = found.strength();
        assert!(
            (OPENING_STRENGTH..PERSISTED_STRENGTH).contains(&strength),
            "{strength} {found:?}"
        );
    }
}

#[test]
fn push_style_miners_over_tls_are_work_loops() {
    for (seed, share_s, job_s) in [(11, 3.0f64, 30.0), (12, 8.0, 20.0), (13, 20.0, 60.0)] {
        let mut rng = Rng(seed * 104_729);
        let span_s = (share_s * 14.0).max(90.0) as u64;
        let beats = push_style(&mut rng, share_s, job_s, span_s, 22);
        let found = judge(&beats, &busy(span_end(&beats)), 0)
            .unwrap_or_else(|| panic!("shares every {share_s} s: none"));
        assert!(found.rounds >= MIN_ROUNDS, "{found:?}");
        assert!(found.bytes_per_cpu_s < 200.0, "{found:?}");
    }
}

#[test]
fn a_multi_core_miner_is_a_work_loop_too() {
    let mut rng = Rng(77);
    let beats = push_style(&mut rng, 4.0, 30.0, 120, 22);
    let found = judge(&beats, &cpu(span_end(&beats), |_| 7.6), 0).expect("eight cores mining");
    assert!(found.cores > 7.0);
}

#[test]
fn strength_grows_with_persistence_and_reaches_suspected_only_after_ten_minutes() {
    let mut rng = Rng(5);
    let beats = request_response(&mut rng, 6.0, 900, 22);
    let cpu = busy(span_end(&beats));
    let at = |seconds: u64| {
        let end = beats.partition_point(|b| b.at_ns <= seconds * S);
        judge(&beats[..end], &cpu, 0).map(|w| w.strength())
    };
    let first = at(70).expect("a loop after 70 s");
    let five = at(300).unwrap();
    let nine = at(540).unwrap();
    let fifteen = at(900).unwrap();
    assert!(
        first >= OPENING_STRENGTH && first < five && five < nine,
        "{first} {five} {nine}"
    );
    assert!(nine < PERSISTED_STRENGTH, "{nine}");
    assert_eq!(fifteen, PERSISTED_STRENGTH);
}

#[test]
fn a_slow_beat_needs_its_rounds_before_it_persists() {
    let mut w = WorkLoop {
        rounds: 12,
        span_s: 900.0,
        round_interval_s: 75.0,
        round_variation: 0.8,
        mean_result_bytes: 120.0,
        result_variation: 0.02,
        mean_work_bytes: 300.0,
        work_variation: 0.1,
        cores: 1.0,
        busy_share: 1.0,
        bytes_per_cpu_s: 6.0,
        other_flows: 0,
    };
    assert!(w.strength() < PERSISTED_STRENGTH);
    w.rounds = PERSISTED_ROUNDS;
    assert_eq!(w.strength(), PERSISTED_STRENGTH);
}

#[test]
fn the_same_rhythm_on_an_idle_process_is_not_a_miner() {
    // An MQTT/WebSocket subscriber: small pushes on a beat, its own pings.
    let mut rng = Rng(21);
    let beats = push_style(&mut rng, 10.0, 2.0, 300, 22);
    let idle = cpu(span_end(&beats), |_| 0.02);
    assert!(judge(&beats, &idle, 0).is_none());
    // Half a core, or busy only part of the time.
    assert!(judge(&beats, &cpu(span_end(&beats), |_| 0.5), 0).is_none());
    let bursty = cpu(span_end(&beats), |s| if s % 3 == 0 { 0.0 } else { 1.3 });
    assert!(judge(&beats, &bursty, 0).is_none());
    // No CPU samples over the span: nothing is judged.
    assert!(judge(&beats, &[], 0).is_none());
}

#[test]
fn heartbeats_on_a_clock_from_a_busy_process_are_not_shares() {
    // A Kafka or ZooKeeper client in a CPU-bound service: a fixed-size
    // heartbeat every 3 s (± a few ms), answered.
    let beats: Vec<Beat> = (0..100u64)
        .flat_map(|i| {
            let t = i * 3 * S + (i % 5) * MS;
            [out(t, 62), inb(t + 2 * MS, 30)]
        })
        .collect();
    assert!(judge(&beats, &busy(span_end(&beats)), 0).is_none());
}

#[test]
fn one_way_pushes_of_a_busy_process_are_not_rounds() {
    // Graphite or syslog over TCP: fixed-size lines at irregular times,
    // never answered.
    let mut rng = Rng(31);
    let mut t = 0;
    let mut beats = Vec::new();
    while t < 300 * S {
        beats.push(out(t, 80 + rng.between(0, 2)));
        t += rng.exponential(5.0) + S;
    }
    assert!(judge(&beats, &busy(span_end(&beats)), 0).is_none());
}

#[test]
fn a_database_client_with_varied_queries_is_not_a_miner() {
    // Compute, then a few queries of varied sizes, answered with varied
    // results, on one long-lived connection.
    let mut rng = Rng(41);
    let mut t = 0;
    let mut beats = Vec::new();
    while t < 300 * S {
        t += rng.exponential(3.0) + S;
        for q in 0..rng.between(1, 3) {
            let at = t + u64::from(q) * 3 * MS;
            beats.push(out(at, rng.between(30, 2000)));
            beats.push(inb(at + MS, rng.between(5, 3000)));
        }
    }
    assert!(judge(&beats, &busy(span_end(&beats)), 0).is_none());
}

#[test]
fn bulk_transfers_are_not_thin() {
    // An ML job reading its dataset in chunks, and a transcoder streaming
    // its output: large or steady data.
    let mut rng = Rng(51);
    let mut t = 0;
    let mut reads = Vec::new();
    while t < 200 * S {
        t += rng.exponential(4.0) + S;
        reads.push(out(t, 120 + rng.between(0, 2)));
        for k in 0..40 {
            reads.push(inb(t + MS + k * 100_000, 1448));
        }
    }
    assert!(judge(&reads, &busy(span_end(&reads)), 0).is_none());
    let stream: Vec<Beat> = (0..12_000u64)
        .map(|i| out(i * 10 * MS, 1448 - (i % 7) as u32))
        .collect();
    assert!(judge(&stream, &busy(span_end(&stream)), 0).is_none());
}

#[test]
fn short_flows_and_one_upload_per_work_unit_are_not_loops() {
    // A build farm's cache request: seconds long.
    let mut rng = Rng(61);
    let short = request_response(&mut rng, 2.0, 20, 0);
    assert!(judge(&short, &busy(span_end(&short)), 0).is_none());
    // Volunteer computing: fetch a work unit, compute for long, upload
    // once (a new connection each time: one round per flow at most).
    let volunteer = vec![
        out(0, 200),
        inb(30 * MS, 4000),
        out(600 * S, 900),
        inb(600 * S + 30 * MS, 120),
    ];
    assert!(judge(&volunteer, &busy(span_end(&volunteer)), 0).is_none());
}

#[test]
fn a_process_busy_on_many_flows_is_not_judged() {
    let mut rng = Rng(71);
    let beats = request_response(&mut rng, 5.0, 120, 0);
    let cpu = busy(span_end(&beats));
    assert!(judge(&beats, &cpu, MAX_OTHER_FLOWS).is_some());
    assert!(judge(&beats, &cpu, MAX_OTHER_FLOWS + 1).is_none());
}

#[test]
fn too_few_rounds_or_varied_results_are_not_loops() {
    let mut rng = Rng(81);
    let beats = request_response(&mut rng, 30.0, 120, 0);
    let rounds = beats
        .iter()
        .filter(|b| b.direction == Direction::Outbound && b.len > 8)
        .count();
    let judged = judge(&beats, &busy(span_end(&beats)), 0);
    assert_eq!(judged.is_some(), rounds > MIN_ROUNDS, "{rounds} {judged:?}");
    // Results of varied sizes: not a fixed-format share.
    let mut rng = Rng(82);
    let mut varied = request_response(&mut rng, 5.0, 200, 0);
    for (i, b) in varied.iter_mut().enumerate() {
        if b.direction == Direction::Outbound && b.len > 8 {
            b.len = 40 + (i as u32 * 97) % 600;
        }
    }
    assert!(judge(&varied, &busy(span_end(&varied)), 0).is_none());
}

#[test]
fn bad_input_judges_nothing_and_never_panics() {
    assert!(judge(&[], &[], 0).is_none());
    let unsorted = [out(5 * S, 10), inb(S, 10), out(100 * S, 10)];
    assert!(judge(&unsorted, &busy(100 * S), 0).is_none());
    let odd_cpu = [
        CpuSample {
            at_ns: 10 * S,
            seconds: f32::NAN,
            cores: 1.0,
        },
        CpuSample {
            at_ns: 20 * S,
            seconds: -1.0,
            cores: f32::INFINITY,
        },
    ];
    let mut rng = Rng(91);
    let beats = request_response(&mut rng, 5.0, 120, 0);
    assert!(judge(&beats, &odd_cpu, 0).is_none());
    let same_instant = vec![out(S, 10); 100];
    assert!(judge(&same_instant, &busy(2 * S), 0).is_none());
}

//! Criterion micro-benchmark of the correlator: evidence in, verdicts out.
//! Run with `cargo bench -p assay --bench correlator`.

use std::{hint::black_box, time::SystemTime};

use assay::{
    correlate::Correlator,
    evidence::{Evidence, EvidenceKind},
    tables::workload::Workload,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn correlate(c: &mut Criterion) {
    let mut group = c.benchmark_group("correlator");
    group.throughput(Throughput::Elements(1));
    group.bench_function("observe-repeated-evidence-10k-workloads", |b| {
        let mut correlator = Correlator::new("bench");
        let now = SystemTime::now();
        let evidence = |sid: u32| {
            Evidence::new(
                Workload::Session { sid },
                sid,
                EvidenceKind::Stratum,
                1.0,
                true,
                "pid sent a stratum login".into(),
                serde_json::Map::new(),
                now,
            )
        };
        for sid in 0..10_000 {
            correlator.observe(evidence(sid));
        }
        let mut sid = 0;
        b.iter(|| {
            sid = (sid + 1) % 10_000;
            black_box(correlator.observe(evidence(sid)))
        })
    });
    group.finish();
}

criterion_group!(benches, correlate);
criterion_main!(benches);

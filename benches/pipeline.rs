//! Criterion benchmarks: parsing alone, each stage of `benches/full.toml` alone on a parsed
//! message, the content-rules check, and the full config end to end, on generated
//! messages of 10 KB to 40 MB and on a subset of the shared corpus.
//!
//! ```sh
//! cargo bench --features bench --bench pipeline                     # everything (about 10 minutes)
//! cargo bench --features bench --bench pipeline -- 'full/'          # one group
//! WORKMAIL_FLOW_CORPUS=/work/shared/corpus cargo bench --features bench --bench pipeline -- corpus
//! ```
//!
//! Throughput is reported in bytes of input. The corpus subset is every third message
//! INDEX.tsv lists (`WORKMAIL_FLOW_BENCH_CORPUS_STEP` changes the step).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/generate.rs"]
mod generate;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use workmail_flow::mime_tree::MimeTree;
use workmail_flow::{Direction, Envelope, Pipeline, StageContext, StageRegistry, config, rules};

fn full_config() -> Pipeline {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/full.toml");
    config::load_with(&path, &StageRegistry::builtin()).expect("benches/full.toml loads")
}

/// Fewer, longer samples for the big messages, so the whole run stays in minutes.
fn tune(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, size: usize) {
    if size >= 1_000_000 {
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(if size >= 10_000_000 { 8 } else { 3 }));
    } else {
        group.sample_size(30);
        group.measurement_time(Duration::from_secs(2));
    }
}

fn generated(c: &mut Criterion) {
    let pipeline = full_config();
    for &(label, size) in generate::SIZES {
        let raw = generate::message(size);
        let envelope = Envelope::from_message(&raw, Direction::Inbound);
        let mut group = c.benchmark_group(format!("generated/{label}"));
        tune(&mut group, size);
        group.throughput(Throughput::Bytes(raw.len() as u64));

        group.bench_function("parse", |b| {
            b.iter(|| MimeTree::parse(black_box(&raw)).expect("generated mail parses"))
        });

        let tree = MimeTree::parse(&raw).expect("generated mail parses");
        for s in pipeline.stages() {
            group.bench_function(BenchmarkId::new("stage", &s.stage_type), |b| {
                b.iter(|| {
                    let mut cx = StageContext::new(&envelope);
                    let report = s.stage.run(black_box(&tree), &mut cx);
                    (report, cx.edits)
                })
            });
        }

        let result = pipeline.run(&raw, &envelope);
        assert_eq!(
            result.outcome,
            workmail_flow::Outcome::Changed,
            "{label}: {}",
            result.summary()
        );
        let output = result.output.to_vec();
        group.bench_function("rules_check", |b| {
            b.iter(|| rules::check(black_box(&output), Some(&raw)))
        });
        group.bench_function("full", |b| {
            b.iter(|| {
                let r = pipeline.run(black_box(&raw), &envelope);
                let mut sink = std::io::sink();
                r.output.write_to(&mut sink).expect("a sink takes anything");
                r.outcome
            })
        });
        group.finish();
    }
}

fn corpus(c: &mut Criterion) {
    let step: usize = std::env::var("WORKMAIL_FLOW_BENCH_CORPUS_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let messages: Vec<Vec<u8>> = common::corpus_messages()
        .into_iter()
        .step_by(step.max(1))
        .map(|(_, raw)| raw)
        .collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let envelopes: Vec<Envelope> = messages
        .iter()
        .map(|m| Envelope::from_message(m, Direction::Inbound))
        .collect();
    let pipeline = full_config();
    let mut group = c.benchmark_group(format!("corpus/{}msgs", messages.len()));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            messages
                .iter()
                .filter(|m| MimeTree::parse(black_box(m)).is_ok())
                .count()
        })
    });
    group.bench_function("full", |b| {
        b.iter_batched(
            std::io::sink,
            |mut sink| {
                for (m, e) in messages.iter().zip(&envelopes) {
                    let r = pipeline.run(black_box(m), e);
                    r.output.write_to(&mut sink).expect("a sink takes anything");
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A message of `n` tiny parts: the reading and every stage must stay linear in the part
/// count (once, 100,000 parts took 90 s to parse).
fn many_parts_message(n: usize) -> Vec<u8> {
    let mut raw = b"From: a@partner.example\nTo: b@corp.example\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n".to_vec();
    for i in 0..n {
        if i == 0 {
            raw.extend_from_slice(b"--b\nContent-Type: text/plain\n\nhello\n");
        } else {
            raw.extend_from_slice(b"--b\n\nx\n");
        }
    }
    raw.extend_from_slice(b"--b--\n");
    raw
}

fn many_parts(c: &mut Criterion) {
    let pipeline = full_config();
    for n in [10_000usize, 100_000] {
        let raw = many_parts_message(n);
        let envelope = Envelope::from_message(&raw, Direction::Inbound);
        let mut group = c.benchmark_group(format!("parts/{n}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function("parse", |b| {
            b.iter(|| MimeTree::parse(black_box(&raw)).expect("parses"))
        });
        group.bench_function("full", |b| {
            b.iter(|| pipeline.run(black_box(&raw), &envelope))
        });
        group.finish();
    }
}

criterion_group!(benches, generated, corpus, many_parts);
criterion_main!(benches);

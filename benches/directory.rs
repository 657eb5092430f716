//! What the directory lookups cost per message: the real aws-sdk-workmail against the
//! emulator's WorkMail directory API on 127.0.0.1 (DescribeEntity, DescribeUser and two
//! pages of ListGroupsForEntity for a user in three groups), cold (nothing cached) and
//! cached (the warm container's second message from the same sender); the same from a
//! directory file; and the stages' run with and without the directory, for scale.
//!
//! ```sh
//! cargo bench --features bench --bench directory
//! ```
//!
//! Loopback has no network latency: in a Region the cold figure grows by four round trips
//! to the WorkMail API (tens of milliseconds), the cached one does not.

use aws_sdk_workmail::config::{BehaviorVersion, Credentials, Region};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use workmail_flow::config::DirectorySettings;
use workmail_flow::emulator::{self, Emulator};
use workmail_flow::envelope::FileDirectory;
use workmail_flow::workmail::directory::{CachedDirectory, WorkMailDirectory};
use workmail_flow::{Direction, Envelope, StageRegistry, config};

const ORG: &str = "m-0123456789abcdef0123456789abcdef";
const MSG: &[u8] = b"From: Carol Sender <carol@corp.example>\r\nTo: dave@customer.example\r\nSubject: Pricing\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nThursday is fine.\r\n";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn envelope() -> Envelope {
    Envelope {
        direction: Direction::Outbound,
        mail_from: Some("carol@corp.example".into()),
        recipients: vec!["dave@customer.example".into()],
        ..Envelope::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let people = FileDirectory::load(&root().join("samples/directory.toml")).unwrap();
    let dir = std::env::temp_dir().join(format!("wmf-bench-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let unused_s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .build(),
        );
        let emu = Emulator::new(&dir, unused_s3).with_directory(people.clone());
        tokio::spawn(emulator::serve(listener, Arc::new(emu)));
        url
    });
    let client = aws_sdk_workmail::Client::from_conf(
        aws_sdk_workmail::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&url)
            .build(),
    );
    let flow = config::load_with(
        &root().join("samples/signature.toml"),
        &StageRegistry::builtin(),
    )
    .unwrap();
    let needs = flow.directory_needs();
    let settings = DirectorySettings::file("unused".into());
    let workmail = Arc::new(WorkMailDirectory::new(client, ORG));
    let env = envelope();

    let mut g = c.benchmark_group("directory");
    g.bench_function("workmail_api_cold", |b| {
        b.iter(|| {
            let cold = CachedDirectory::new(workmail.clone(), &settings);
            rt.block_on(cold.view_for(needs, black_box(MSG), &env))
                .unwrap()
        })
    });
    let warm = CachedDirectory::new(workmail.clone(), &settings);
    rt.block_on(warm.view_for(needs, MSG, &env)).unwrap();
    g.bench_function("workmail_api_cached", |b| {
        b.iter(|| {
            rt.block_on(warm.view_for(needs, black_box(MSG), &env))
                .unwrap()
        })
    });
    g.bench_function("file", |b| {
        b.iter(|| people.view_for(black_box(MSG), &env, needs))
    });
    let mut with_people = env.clone();
    with_people.directory = people.view_for(MSG, &env, needs);
    g.bench_function("signature_flow_run", |b| {
        b.iter(|| flow.run(black_box(MSG), &with_people).output.len())
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);

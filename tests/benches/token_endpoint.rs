//! Prints, in one run: token endpoint throughput (refresh grant, 16 concurrent
//! families, each refresh rotating its token) on SQLite and on PostgreSQL, and the
//! time of one complete flow (register, consent, upstream login, code, tokens).
//!
//! `cargo bench -p authhost-tests --bench token_endpoint`; PostgreSQL runs when
//! `AUTHHOST_TEST_POSTGRES_URL` names a server (scripts/test shows how to start one).

#[path = "../it/common/mod.rs"]
#[allow(dead_code)]
mod common;

use common::server::{Browser, Options, TestAuthhost, start_upstream};
use std::time::{Duration, Instant};

const FAMILIES: usize = 16;
const RUN: Duration = Duration::from_secs(5);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let upstream = start_upstream();
        let mut results = Vec::new();
        let dir = std::env::temp_dir().join(format!("authhost-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
        let mut backends = vec![("SQLite", Some(sqlite))];
        match common::postgres::fresh_database().await {
            Some(url) => backends.push(("PostgreSQL", Some(url))),
            None => println!("PostgreSQL: skipped (set AUTHHOST_TEST_POSTGRES_URL)"),
        }
        for (name, db) in backends {
            let a = TestAuthhost::start(&upstream, Options { database_url: db, ..Options::default() }).await;
            let client = a.register("bench").await;
            let started = Instant::now();
            let tokens = a.sign_in(&Browser::new(), &client).await;
            let flow = started.elapsed();
            // Independent grants, so the rotation chains never touch each other.
            let mut families = vec![tokens["refresh_token"].as_str().unwrap().to_string()];
            while families.len() < FAMILIES {
                let fresh = a.sign_in(&Browser::new(), &client).await;
                families.push(fresh["refresh_token"].as_str().unwrap().to_string());
            }
            let a = std::sync::Arc::new(a);
            let deadline = Instant::now() + RUN;
            let mut tasks = Vec::new();
            for mut token in families {
                let a = a.clone();
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        let (status, body) = a.refresh(&client, &token).await;
                        assert!(status.is_success(), "{body}");
                        latencies.push(t0.elapsed());
                        token = body["refresh_token"].as_str().unwrap().to_string();
                    }
                    latencies
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.unwrap());
            }
            all.sort();
            let rps = all.len() as f64 / RUN.as_secs_f64();
            results.push((name, rps));
            println!(
                "{name:<10} refresh grant: {rps:>7.0} req/s  p50 {:>8.2?}  p99 {:>8.2?}  ({} requests, {FAMILIES} concurrent)   one complete flow: {flow:.2?}",
                all[all.len() / 2],
                all[all.len() * 99 / 100],
                all.len()
            );
        }
        if let [(_, sqlite), (_, pg)] = results[..] {
            println!("PostgreSQL / SQLite throughput: {:.2}", pg / sqlite);
        }
    });
}

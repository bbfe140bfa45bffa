//! Prints, in one run: token endpoint throughput (refresh grant, 16 concurrent
//! families, each refresh rotating its token) and dynamic registrations (16 at once)
//! on SQLite and on PostgreSQL, with the rate limits off (what the store can do) and,
//! for registrations, on (what one address may do); and the time of one complete flow
//! (register, consent, upstream login, code, tokens).
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
            let unlimited = Options {
                database_url: db.clone(),
                ..Options::with(|c| c.rate_limits.enabled = false)
            };
            let a = TestAuthhost::start(&upstream, unlimited).await;
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
        // A fresh database per run: each instance has its own encryption key.
        for limited in [false, true] {
            let sqlite = format!("sqlite://{}", dir.join(format!("reg-{limited}.db")).display());
            for (name, db) in [("SQLite", sqlite)]
                .into_iter()
                .chain(common::postgres::fresh_database().await.map(|u| ("PostgreSQL", u)))
            {
                let options = Options {
                    database_url: Some(db),
                    ..Options::with(move |c| c.rate_limits.enabled = limited)
                };
                let a = std::sync::Arc::new(TestAuthhost::start(&upstream, options).await);
                let (created, refused, p99) = registrations(a).await;
                println!(
                    "{name:<10} registrations (rate limits {}): {:>7.0} created/s, {refused} refused with 429, p99 {p99:>8.2?}",
                    if limited { "on " } else { "off" },
                    created as f64 / RUN.as_secs_f64(),
                );
            }
        }
        if let [(_, sqlite), (_, pg)] = results[..] {
            println!("PostgreSQL / SQLite throughput: {:.2}", pg / sqlite);
        }
    });
}

/// 16 clients registering as fast as they can for `RUN`: created, refused (429), p99.
async fn registrations(a: std::sync::Arc<TestAuthhost>) -> (usize, usize, Duration) {
    let deadline = Instant::now() + RUN;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..FAMILIES {
        let (a, http) = (a.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            let (mut created, mut refused, mut latencies) = (0, 0, Vec::new());
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let response = http
                    .post(a.own_url("/register"))
                    .json(&serde_json::json!({
                        "client_name": "bench",
                        "redirect_uris": [common::server::CALLBACK],
                        "token_endpoint_auth_method": "none",
                    }))
                    .send()
                    .await
                    .unwrap();
                match response.status().as_u16() {
                    201 => created += 1,
                    429 => refused += 1,
                    other => panic!("registration answered {other}"),
                }
                latencies.push(t0.elapsed());
            }
            (created, refused, latencies)
        }));
    }
    let (mut created, mut refused, mut all) = (0, 0, Vec::new());
    for task in tasks {
        let (c, r, l) = task.await.unwrap();
        created += c;
        refused += r;
        all.extend(l);
    }
    all.sort();
    (created, refused, all[all.len() * 99 / 100])
}

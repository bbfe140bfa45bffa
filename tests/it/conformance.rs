//! `authhost providers test`: every bundled provider passes the conformance run, and
//! components that break the contract fail it with a message that says what is wrong.

use crate::common::{self, test_component_path};
use authhost::conformance;

async fn report_for(origin: &str, bytes: &[u8]) -> conformance::Report {
    conformance::run(common::runtime(), origin, bytes, Default::default())
        .await
        .unwrap()
}

fn failures(report: &conformance::Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter_map(|c| {
            c.outcome
                .as_ref()
                .err()
                .map(|why| format!("{}: {why}", c.name))
        })
        .collect()
}

#[tokio::test]
async fn every_bundled_provider_passes() {
    assert!(authhost::registry::BUNDLED.len() >= 3);
    for (name, bytes) in authhost::registry::BUNDLED {
        let report = report_for(name, bytes).await;
        assert_eq!(report.failed(), 0, "{name}: {:?}", failures(&report));
        assert!(
            report.checks.len() >= 12,
            "{name}: the whole contract was exercised"
        );
    }
}

#[tokio::test]
async fn a_component_that_breaks_the_contract_fails_with_reasons() {
    let path = test_component_path("test_provider_misbehaving");
    let report = report_for("misbehaving.wasm", &std::fs::read(&path).unwrap()).await;
    let failed = failures(&report).join("\n");
    // Its authorization URL leads to a host it may not send browsers to.
    assert!(
        failed.contains("authorize-url answers") && failed.contains("not in allowed_hosts"),
        "{failed}"
    );
    assert!(
        failed.contains("a refused code is reported as invalid-grant"),
        "{failed}"
    );

    let path = test_component_path("test_provider_future_contract");
    let report = report_for("future.wasm", &std::fs::read(&path).unwrap()).await;
    assert_eq!(report.failed(), 1);
    assert!(
        failures(&report)[0].contains("contract 1.0.0"),
        "{:?}",
        failures(&report)
    );
}

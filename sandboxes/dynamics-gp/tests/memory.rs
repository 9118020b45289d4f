//! The sandbox's own footprint at 50,000 customers, so an in-process memory benchmark of the
//! connector is not drowned by the sandbox (alone in its test binary: RSS is per process).

/// Resident set size in kB (Linux).
#[cfg(target_os = "linux")]
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn fifty_thousand_customers_stay_under_three_kilobytes_each() {
    let sandbox =
        sandbox_dynamics_gp::Sandbox::start(Default::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let before = rss_kb();
    sandbox_dynamics_gp::seed_many_customers(&sandbox.admin(), -1, 50_000);
    let per_customer = (rss_kb() - before) * 1024 / 50_000;
    eprintln!("{per_customer} bytes per stored customer");
    assert!(per_customer < 3_000, "{per_customer} bytes per customer");
    assert_eq!(sandbox.admin().customers(-1).len(), 50_011);
}

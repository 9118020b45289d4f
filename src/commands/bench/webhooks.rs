//! Webhook intake: Mailchimp events per second that `ml-connector serve` persists in the inbox
//! and acknowledges, sent by many connections at once as Mailchimp would during a mass
//! unsubscribe; then the inbox is counted (every acknowledged event must be there). While the
//! load runs, Business Central's subscription handshake is timed against a quiet service, since
//! BC gives up on a handshake after 5 seconds.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::project::{self, WorkDir};
use super::report;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Events sent.
    #[arg(long, default_value_t = 5_000)]
    pub events: usize,
    /// Connections sending at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// A tenth of the events.
    #[arg(long)]
    pub quick: bool,
    /// Keep the project (and its inbox) under this directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const MAILCHIMP_TOKEN: &str = "bench-mailchimp-hook-token-0123456789";
const BC_TOKEN: &str = "bench-bc-hook-token-0123456789";

/// `serve`, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the measurement; false when an acknowledged event is missing from the inbox.
pub fn run(args: &Args) -> Result<bool, String> {
    let events = if args.quick { (args.events / 10).max(1) } else { args.events };
    let work = WorkDir::new(args.dir.as_deref(), "webhooks")?;
    let dir = &work.path;
    report::heading(&format!(
        "Webhook intake: {events} Mailchimp events over {} connections to `ml-connector serve`",
        args.concurrency
    ));
    let yaml = "version: 1\nname: bench-hooks\nconnections:\n  events: {connector: inbox}\n";
    let secrets = [
        ("mailchimp_webhook_token", MAILCHIMP_TOKEN),
        ("bc_webhook_token", BC_TOKEN),
        ("bc_client_state", "bench-client-state-0123456789"),
    ];
    project::write(dir, yaml, &[], &secrets)?;
    let (serve, base) = start_serve(dir)?;

    let runtime = super::super::runtime();
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build().map_err(|e| e.to_string())?;
    let hook = format!("{base}/hooks/mailchimp/{MAILCHIMP_TOKEN}");
    let handshake = format!("{base}/hooks/business-central/{BC_TOKEN}");
    let (quiet, has_handshake) = runtime.block_on(handshakes(&client, &handshake, 50, None));
    let result = runtime.block_on(async {
        let loaded = Arc::new(AtomicBool::new(true));
        let probe = tokio::spawn({
            let (client, handshake, loaded) = (client.clone(), handshake.clone(), loaded.clone());
            async move { handshakes(&client, &handshake, usize::MAX, Some(loaded)).await }
        });
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let senders: Vec<_> = (0..args.concurrency.max(1))
            .map(|_| {
                let (client, hook, next) = (client.clone(), hook.clone(), next.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut refused = 0usize;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= events {
                            return (latencies, refused);
                        }
                        let sent = Instant::now();
                        let answer = client
                            .post(&hook)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(event(i))
                            .send()
                            .await;
                        match answer {
                            Ok(r) if r.status().is_success() => latencies.push(sent.elapsed()),
                            _ => refused += 1,
                        }
                    }
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(events);
        let mut refused = 0;
        for s in senders {
            let (l, r) = s.await.map_err(|e| e.to_string())?;
            latencies.extend(l);
            refused += r;
        }
        let elapsed = started.elapsed();
        loaded.store(false, Ordering::SeqCst);
        let (under_load, _) = probe.await.map_err(|e| e.to_string())?;
        Ok::<_, String>((latencies, refused, elapsed, under_load))
    });
    let (mut latencies, refused, elapsed, under_load) = result?;
    drop(serve);

    let inbox = inbox::Inbox::open(&dir.join(inbox::DEFAULT_PATH)).map_err(|e| e.to_string())?;
    let stored = inbox.count("mailchimp").map_err(|e| e.to_string())? as usize;
    latencies.sort();
    let acknowledged = latencies.len();
    let rate = report::per_second(acknowledged, elapsed);
    let mut rows = vec![
        vec!["".to_owned(), "value".into()],
        vec!["events acknowledged (2xx)".into(), report::thousands(acknowledged as u64)],
        vec!["refused or failed".into(), refused.to_string()],
        vec!["stored in the inbox".into(), report::thousands(stored as u64)],
        vec!["events per second".into(), report::rate(rate)],
        vec!["ack latency p50 / p99 / max".into(), percentiles(&latencies)],
    ];
    if has_handshake {
        rows.push(vec!["BC handshake, quiet: p50 / p99 / max".into(), percentiles(&quiet)]);
        rows.push(vec!["BC handshake, under load: p50 / p99 / max".into(), percentiles(&under_load)]);
    } else {
        rows.push(vec!["BC handshake".into(), "not served by this build".into()]);
    }
    report::table(&rows);
    let ok = stored == acknowledged && refused == 0;
    if !ok {
        println!("   FAILED: {acknowledged} events acknowledged, {stored} stored, {refused} refused");
    }
    Ok(ok)
}

/// Starts `serve` on a free port; returns it and its base URL.
fn start_serve(dir: &std::path::Path) -> Result<(Serve, String), String> {
    let mut child = Serve(
        Command::new(project::exe()?)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    let stdout = child.0.stdout.take().ok_or("serve has no stdout")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(base) = line.trim().strip_prefix("serving on ") {
                    break base.split_whitespace().next().unwrap_or_default().to_owned();
                }
            }
            _ => return Err("serve stopped before it listened (see `ml-connector serve` in the project)".into()),
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, base))
}

/// A Mailchimp `unsubscribe` delivery, unique per `i` (the inbox de-duplicates repeats).
fn event(i: usize) -> String {
    let email = format!("person{i}%40example.com");
    format!(
        "type=unsubscribe&fired_at=2026-11-23+10%3A{:02}%3A{:02}&data%5Baction%5D=unsub&data%5Breason%5D=manual\
         &data%5Bid%5D={i:010x}&data%5Blist_id%5D=a1b2c3d4e5&data%5Bemail%5D={email}&data%5Bemail_type%5D=html\
         &data%5Bmerges%5D%5BEMAIL%5D={email}&data%5Bmerges%5D%5BFNAME%5D=Ada&data%5Bmerges%5D%5BLNAME%5D=Lovelace\
         &data%5Bip_opt%5D=198.51.100.7&data%5Bcampaign_id%5D=cb398d21d2",
        (i / 60) % 60,
        i % 60
    )
}

/// Times Business Central handshakes (`?validationToken=…`, answered with the token): `count`
/// of them, or, with `while_loaded`, one every 20 ms while it stays set. The second value says
/// whether the route answered as a handshake at all.
async fn handshakes(
    client: &reqwest::Client,
    url: &str,
    count: usize,
    while_loaded: Option<Arc<AtomicBool>>,
) -> (Vec<Duration>, bool) {
    let mut times = Vec::new();
    let mut served = true;
    for i in 0..count {
        if while_loaded.as_ref().is_some_and(|l| !l.load(Ordering::SeqCst)) {
            break;
        }
        let token = format!("bench-validation-{i}");
        let started = Instant::now();
        let answer = client.post(url).query(&[("validationToken", &token)]).send().await;
        let elapsed = started.elapsed();
        let echoed = match answer {
            Ok(r) if r.status().is_success() => r.text().await.is_ok_and(|t| t == token),
            _ => false,
        };
        if echoed {
            times.push(elapsed);
        } else {
            served = false;
        }
        if !served && while_loaded.is_none() {
            break;
        }
        if while_loaded.is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    times.sort();
    (times, served)
}

/// `p50 / p99 / max` of sorted durations.
fn percentiles(sorted: &[Duration]) -> String {
    if sorted.is_empty() {
        return "-".to_owned();
    }
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    format!("{} / {} / {}", ms(at(0.5)), ms(at(0.99)), ms(sorted[sorted.len() - 1]))
}

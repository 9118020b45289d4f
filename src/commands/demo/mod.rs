//! `ml-connector demo`: the product end to end with no credentials and no network. Starts the
//! Business Central, Dynamics GP and Mailchimp sandboxes, seeds two customers' ERPs (`seed`),
//! writes their projects with the stock pipelines, and runs every flow in this process: customers,
//! products and orders into Mailchimp with progress bars; people unsubscribing, bouncing and
//! changing their e-mail in Mailchimp back into Business Central through `serve`; and second runs
//! that write nothing. It ends with a summary per pipeline (`summary`) and where to go next.

mod seed;
mod summary;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{FAILED, OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the demo projects (default: a new directory under the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed a tenth of the data (a quicker tour of the same paths).
    #[arg(long)]
    small: bool,
}

const HOOK_TOKEN: &str = "demo-hook-token-0123456789";

fn step(title: &str) {
    println!("\n== {title}");
}

pub fn execute(args: &Args) -> u8 {
    match demo(args) {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("demo: {e}");
            FAILED
        }
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs this binary with `args` in the project, printing its output indented.
fn me(dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(input) = stdin {
        child.stdin.take().expect("piped").write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for line in text.lines().filter(|l| !l.starts_with("stored ")) {
        println!("   {line}");
    }
    if out.status.code() == Some(2) {
        return Err(format!("`ml-connector {}` found the project invalid", args.join(" ")));
    }
    Ok(text)
}

/// The sandboxes of one demo.
struct Sandboxes {
    mc: sandbox_mailchimp::Sandbox,
    bc: sandbox_business_central::Sandbox,
    gp: sandbox_dynamics_gp::Sandbox,
}

async fn start_sandboxes() -> Result<Sandboxes, String> {
    let any = || "127.0.0.1:0".parse().expect("an address");
    let mc = sandbox_mailchimp::Sandbox::start(sandbox_mailchimp::SandboxConfig::default(), any())
        .await
        .map_err(|e| format!("Mailchimp sandbox: {e}"))?;
    let bc_config = sandbox_business_central::SandboxConfig {
        notification_delay: Duration::from_millis(200),
        ..Default::default()
    };
    let bc = sandbox_business_central::Sandbox::start(bc_config, any())
        .await
        .map_err(|e| format!("Business Central sandbox: {e}"))?;
    let gp = sandbox_dynamics_gp::Sandbox::start(sandbox_dynamics_gp::SandboxConfig::default(), any())
        .await
        .map_err(|e| format!("Dynamics GP sandbox: {e}"))?;
    Ok(Sandboxes { mc, bc, gp })
}

/// The GP company the demo adds: an office supply distributor.
const GP_COMPANY: i32 = 3;
const FOODS_BC: [&str; 5] =
    ["store", "customers-to-members", "items-to-products", "customers-to-ecommerce", "invoices-to-orders"];
const GP_ALL: [&str; 4] = ["store", "customers-to-members", "customers-to-ecommerce", "invoices-to-orders"];

/// Writes a project directory: the project file, the pipelines, a vault key and the secrets.
fn write_project(
    dir: &Path,
    project: &str,
    pipelines: &[(&str, &str)],
    secrets: &[(&str, &str)],
) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("pipelines")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("ml-connector.yaml"), project).map_err(|e| e.to_string())?;
    for (file, text) in pipelines {
        std::fs::write(dir.join("pipelines").join(file), text).map_err(|e| e.to_string())?;
    }
    me(dir, &["secrets", "generate-key"], None)?;
    for (name, value) in secrets {
        me(dir, &["secrets", "set", name], Some(value))?;
    }
    me(dir, &["validate"], None)?;
    me(dir, &["check"], None)?;
    Ok(())
}

/// Runs pipelines of the project in `dir` in this process, with progress bars; prints each
/// pipeline's line and adds the reports to the summary.
fn run_here(
    dir: &Path,
    pipelines: &[&str],
    expected: &[(&str, u64)],
    phase: &str,
    summary: &mut summary::Summary,
) -> Result<Vec<engine::executor::PipelineReport>, String> {
    let project = super::load_one(dir).map_err(|_| format!("{} is not a valid project", dir.display()))?;
    let only: Vec<String> = pipelines.iter().map(|p| (*p).to_owned()).collect();
    let expected = expected.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect();
    let mut progress = crate::progress::Progress::new(expected);
    let mut on_record = |event: &engine::executor::RecordEvent| progress.record(event);
    let reports = super::run::run_loaded(&project, &only, false, &mut on_record)?;
    drop(progress);
    for r in &reports {
        println!("   {}", super::run::summary_line(r, false));
    }
    summary.add(phase, &reports);
    Ok(reports)
}

fn demo(args: &Args) -> Result<(), String> {
    let volume = if args.small { seed::Volume::SMALL } else { seed::Volume::FULL };
    let runtime = super::runtime();
    let Sandboxes { mc, bc, gp } = runtime.block_on(start_sandboxes())?;
    step("Sandboxes (local, strict copies of the real APIs)");
    println!("   Mailchimp:        {} (api key {})", mc.base_url(), sandbox_mailchimp::DEFAULT_API_KEY);
    println!("   Business Central: {}", bc.base_url());
    println!("   Dynamics GP:      {} (NTLM, GPDOMAIN\\gpuser)", gp.soap_url());

    step("Seeding the ERPs");
    let bca = bc.admin();
    let company = bca.company_id("CRONUS USA, Inc.").ok_or("the sandbox has no CRONUS company")?;
    let customers = seed::business_central(&bca, &company, volume);
    println!(
        "   Business Central, CRONUS USA, Inc. (a specialty foods distributor): {} customers, {} items, {} posted invoices",
        volume.bc_customers, volume.bc_items, volume.bc_invoices
    );
    let gpa = gp.admin();
    gpa.add_company(GP_COMPANY, "Litware", "LITW").map_err(|e| e.to_string())?;
    seed::dynamics_gp(&gpa, GP_COMPANY, volume)?;
    println!(
        "   Dynamics GP, Litware Office Supply (company {GP_COMPANY}): {} customers, {} receivables invoices",
        volume.gp_customers, volume.gp_invoices
    );
    let mca = mc.admin();
    let foods_list = mca.create_list("CRONUS Fine Foods newsletter");
    let office_list = mca.create_list("Litware customers");

    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ml-connector-demo-{}", engine::executor::new_run_id())));
    let (foods, office) = (root.join("cronus-foods"), root.join("litware-office"));
    if foods.join("ml-connector.yaml").exists() || office.join("ml-connector.yaml").exists() {
        return Err(format!("{} already holds the demo's projects; pick another --dir", root.display()));
    }
    step(&format!("Writing two customer projects under {}", root.display()));
    let foods_project = format!(
        "version: 1\nname: cronus-foods\ndescription: CRONUS specialty foods, Business Central <-> Mailchimp.\nconnections:\n  events: {{connector: inbox}}\n  mailchimp:\n    connector: mailchimp\n    settings: {{auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}, base_url: '{}'}}\n  business_central:\n    connector: business-central\n    settings:\n      tenant: '{}'\n      environment: production\n      company: 'CRONUS USA, Inc.'\n      client_id: bc-client\n      credential: {{type: secret, secret: {{secret: bc_client_secret}}}}\n      token_url: '{}'\n      base_url: '{}'\nvars:\n  list_id: '{foods_list}'\n  store_id: cronus-foods\n  store_domain: shop.cronus.example\n  default_currency: USD\n  status_if_new: subscribed\n  consent_entity: contoso/marketing/v1.0/customerConsents\n",
        mc.base_url(),
        sandbox_business_central::SandboxConfig::default().tenant,
        bc.token_url(),
        bc.base_url()
    );
    write_project(
        &foods,
        &foods_project,
        &[crate::stock::BC_TO_MAILCHIMP, crate::stock::MAILCHIMP_TO_BC].concat(),
        &[
            ("mailchimp_api_key", sandbox_mailchimp::DEFAULT_API_KEY),
            ("bc_client_secret", "bc-secret"),
            ("mailchimp_webhook_token", HOOK_TOKEN),
        ],
    )?;
    let office_project = format!(
        "version: 1\nname: litware-office\ndescription: Litware Office Supply, Dynamics GP -> Mailchimp.\nconnections:\n  dynamics_gp:\n    connector: dynamics-gp\n    settings: {{interface: soap, url: '{}', company_key: {GP_COMPANY}, domain: GPDOMAIN, user: gpuser, password: {{secret: gp_password}}}}\n  mailchimp:\n    connector: mailchimp\n    settings: {{auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}, base_url: '{}'}}\nvars:\n  list_id: '{office_list}'\n  store_id: litware-office\n  store_name: Litware Office Supply\n  store_domain: shop.litware.example\n  default_currency: USD\n  status_if_new: transactional\ndefaults:\n  lookback: 30m\n",
        gp.soap_url(),
        mc.base_url()
    );
    write_project(
        &office,
        &office_project,
        crate::stock::GP_TO_MAILCHIMP,
        &[
            ("mailchimp_api_key", sandbox_mailchimp::DEFAULT_API_KEY),
            ("gp_password", sandbox_dynamics_gp::DEFAULT_PASSWORD),
        ],
    )?;

    let mut summary = summary::Summary::default();
    step("Business Central → Mailchimp (cronus-foods)");
    let bc_counts = [
        ("customers-to-members", volume.bc_customers as u64),
        ("customers-to-ecommerce", volume.bc_customers as u64),
        ("items-to-products", volume.bc_items as u64),
        ("invoices-to-orders", volume.bc_invoices as u64),
    ];
    run_here(&foods, &FOODS_BC, &bc_counts, "BC → Mailchimp", &mut summary)?;
    let members = mca.members(&foods_list);
    let subscribed = members.iter().filter(|m| m["status"] == "subscribed").count();
    println!(
        "   audience: {} members ({subscribed} subscribed); store: {} products, {} orders",
        members.len(),
        mca.products("cronus-foods").len(),
        mca.orders("cronus-foods").len()
    );

    step("Dynamics GP → Mailchimp (litware-office, over NTLM)");
    let gp_counts = [
        ("customers-to-members", volume.gp_customers as u64),
        ("customers-to-ecommerce", volume.gp_customers as u64),
        ("invoices-to-orders", volume.gp_invoices as u64),
    ];
    run_here(&office, &GP_ALL, &gp_counts, "GP → Mailchimp", &mut summary)?;
    println!(
        "   audience: {} members; store: {} orders",
        mca.members(&office_list).len(),
        mca.orders("litware-office").len()
    );

    step("People act in Mailchimp; the webhooks reach `ml-connector serve`");
    let serve = start_serve(&foods)?;
    runtime.block_on(register_webhook(&mc, &foods_list, &serve.base))?;
    println!(
        "   serve listening on {}; webhook registered (sources.api = false: our own writes do not echo)",
        serve.base
    );
    let emails: Vec<String> = customers
        .iter()
        .filter_map(|c| c["email"].as_str())
        .filter(|e| e.contains('.') && e.ends_with("example.com"))
        .map(str::to_owned)
        .collect();
    let [u1, u2, u3, b1, c1, c2, ..] = emails.as_slice() else {
        return Err("too few customers with an e-mail to act on".into());
    };
    for e in [u1, u2, u3] {
        mca.unsubscribe(&foods_list, e);
        println!("   {e} unsubscribes");
    }
    mca.bounce(&foods_list, b1);
    println!("   {b1} bounces (cleaned)");
    let changed: Vec<(String, String)> =
        [c1, c2].iter().map(|old| ((*old).clone(), old.replace("@example.com", "@newmail.example"))).collect();
    for (old, new) in &changed {
        mca.change_email(&foods_list, old, new);
        println!("   {old} changes their e-mail to {new}");
    }
    let inbox = inbox::Inbox::open(&foods.join(inbox::DEFAULT_PATH)).map_err(|e| e.to_string())?;

    step("Mailchimp → Business Central: serve runs the event-driven pipelines (consent, email-changes)");
    // Nobody runs anything here: `serve` stored each event before acknowledging it, then ran
    // the pipelines that read the inbox. Wait until Business Central shows all six changes.
    let by_email = |email: &str| customers.iter().find(|c| c["email"] == email).and_then(|c| c["id"].as_str());
    let landed = || {
        let opted_out = [u1, u2, u3, b1]
            .iter()
            .filter_map(|e| by_email(e).and_then(|id| bca.consent(&company, id)))
            // The status, not `marketingConsent`: a new customer's consent is already false.
            .filter(|c| c["consentStatus"] == "Opted_x0020_Out" && c["marketingConsent"] == false)
            .count();
        let moved = changed
            .iter()
            .filter_map(|(old, new)| {
                by_email(old).and_then(|id| bca.customer(&company, id)).map(|c| c["email"] == **new)
            })
            .filter(|same| *same)
            .count();
        opted_out == 4 && moved == 2
    };
    let waited = std::time::Instant::now();
    while !landed() && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "   events in the inbox: {}; Business Central updated {:.1} s after the last action",
        inbox.count("mailchimp").unwrap_or(0),
        waited.elapsed().as_secs_f64()
    );
    let store = state::SqliteStore::open(&foods.join(".ml-connector/state.db")).map_err(|e| e.to_string())?;
    for pipeline in ["consent", "email-changes"] {
        let runs = store.recent_runs(Some(pipeline), 100).map_err(|e| e.to_string())?;
        let mut counts = engine::state::RunCounts::default();
        for r in &runs {
            counts.read += r.counts.read;
            counts.filtered += r.counts.filtered;
            counts.created += r.counts.created;
            counts.updated += r.counts.updated;
            counts.unchanged += r.counts.unchanged;
            counts.failed += r.counts.failed;
            counts.dead_lettered += r.counts.dead_lettered;
        }
        println!(
            "   {pipeline}: {} run(s) by serve: read {}, filtered {}, did create {}, update {}; failed {}",
            runs.len(),
            counts.read,
            counts.filtered,
            counts.created,
            counts.updated,
            counts.failed
        );
        summary.add_served("Mailchimp → BC (serve)", pipeline, counts);
    }
    for e in [u1, u2, u3, b1] {
        let consent = by_email(e).and_then(|id| bca.consent(&company, id)).unwrap_or(Value::Null);
        println!(
            "   {e:<36} BC consent: marketingConsent={} consentStatus={} bounced={}",
            consent["marketingConsent"],
            // The OData enum member name, as BC's API returns it: `Opted_x0020_Out`.
            consent["consentStatus"].as_str().unwrap_or("?").replace("_x0020_", " "),
            consent["bounced"]
        );
    }
    for (old, _) in &changed {
        let now = by_email(old).and_then(|id| bca.customer(&company, id)).unwrap_or(Value::Null);
        println!("   {old:<36} BC customer's e-mail is now {}", now["email"]);
    }

    step("The next runs: only the two new e-mail addresses are written; nobody is re-subscribed");
    run_here(&foods, &FOODS_BC, &[], "BC → Mailchimp, again", &mut summary)?;
    run_here(&office, &GP_ALL, &[], "GP → Mailchimp, again", &mut summary)?;
    for e in [u1, u2, u3, b1] {
        let status = mca.member(&foods_list, e).map(|m| m["status"].clone()).unwrap_or(Value::Null);
        println!("   {e:<36} in Mailchimp: {status}");
    }
    drop(serve);

    step("Summary");
    print!("{}", summary.render());
    step("What the state store recorded (cronus-foods)");
    me(&foods, &["status", "--last", "1"], None)?;
    me(&foods, &["dead-letters"], None)?;
    runtime.block_on(async {
        mc.shutdown().await;
        bc.shutdown().await;
        gp.shutdown().await;
    });
    step("Going further");
    println!(
        "   The projects stay in {root}:\n\
         \x20    cd {foods}\n\
         \x20    ml-connector status                   runs, watermarks, ledger size, dead letters\n\
         \x20    ml-connector audit --last 20          every write, with its request and answer\n\
         \x20    ml-connector plan                     what a run would send now (sends nothing)\n\
         \x20    ml-connector dead-letters; ml-connector replay …   fix bad records and resend\n\
         \x20  State lives in .ml-connector/ inside each project (state.db: ledger, watermarks, audit;\n\
         \x20  inbox.db: webhook events; vault.json: secrets, encrypted with .ml-connector/master.key).\n\
         \x20  To go live, copy mappings/example-customer, put your tenant, company, client id and audience\n\
         \x20  in ml-connector.yaml, store credentials with `ml-connector secrets set …` (never in YAML),\n\
         \x20  `ml-connector check` the connections, `plan`, then `run` — or `serve` for schedules and webhooks.",
        root = root.display(),
        foods = foods.display()
    );
    Ok(())
}

/// A running `ml-connector serve` and its address.
struct Serve {
    _child: Killed,
    base: String,
}

fn start_serve(dir: &Path) -> Result<Serve, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Killed(
        Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.0.stdout.take().ok_or("no stdout")?), &mut line)
        .map_err(|e| e.to_string())?;
    let base = line.trim().strip_prefix("serving on ").ok_or_else(|| format!("serve said: {line}"))?.to_owned();
    Ok(Serve { _child: child, base })
}

async fn register_webhook(mc: &sandbox_mailchimp::Sandbox, list: &str, base: &str) -> Result<(), String> {
    let settings: connector_mailchimp::MailchimpSettings = serde_json::from_value(
        json!({"auth": {"type": "api_key", "key": {"env": "UNUSED"}}, "base_url": mc.base_url()}),
    )
    .map_err(|e| e.to_string())?;
    struct Key;
    impl engine::connector::SecretResolver for Key {
        fn resolve(&self, _: &engine::config::SecretRef) -> Result<String, String> {
            Ok(sandbox_mailchimp::DEFAULT_API_KEY.to_owned())
        }
    }
    let client = connector_mailchimp::McClient::connect(&settings, &Key).await.map_err(|e| e.to_string())?;
    let url = format!("{base}/hooks/mailchimp/{HOOK_TOKEN}");
    connector_mailchimp::webhooks::register(
        &client,
        list,
        &url,
        &["subscribe", "unsubscribe", "profile", "cleaned", "upemail"],
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

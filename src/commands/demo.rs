//! `ml-connector demo`: the product end to end with no credentials. Starts the Business Central
//! and Mailchimp sandboxes, writes a project with the stock pipelines, seeds an ERP, and runs
//! the flows with this same binary: customers, products and orders into Mailchimp; a person
//! unsubscribing in Mailchimp back into Business Central; and a second run that writes nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{FAILED, OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the demo project (default: a new directory under the system's temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The stock pipelines, embedded so the demo runs wherever the binary is.
const PIPELINES: &[(&str, &str)] = &[
    ("store.yaml", include_str!("../../mappings/business-central-to-mailchimp/pipelines/store.yaml")),
    (
        "customers-to-members.yaml",
        include_str!("../../mappings/business-central-to-mailchimp/pipelines/customers-to-members.yaml"),
    ),
    (
        "items-to-products.yaml",
        include_str!("../../mappings/business-central-to-mailchimp/pipelines/items-to-products.yaml"),
    ),
    (
        "customers-to-ecommerce.yaml",
        include_str!("../../mappings/business-central-to-mailchimp/pipelines/customers-to-ecommerce.yaml"),
    ),
    (
        "invoices-to-orders.yaml",
        include_str!("../../mappings/business-central-to-mailchimp/pipelines/invoices-to-orders.yaml"),
    ),
    ("consent.yaml", include_str!("../../mappings/mailchimp-to-business-central/pipelines/consent.yaml")),
    ("email-changes.yaml", include_str!("../../mappings/mailchimp-to-business-central/pipelines/email-changes.yaml")),
];

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

fn demo(args: &Args) -> Result<(), String> {
    let runtime = super::runtime();
    let (mc, bc) = runtime.block_on(async {
        let mc = sandbox_mailchimp::Sandbox::start(
            sandbox_mailchimp::SandboxConfig::default(),
            "127.0.0.1:0".parse().expect("an address"),
        )
        .await
        .map_err(|e| e.to_string())?;
        let bc_config = sandbox_business_central::SandboxConfig {
            notification_delay: Duration::from_millis(200),
            ..Default::default()
        };
        let bc = sandbox_business_central::Sandbox::start(bc_config, "127.0.0.1:0".parse().expect("an address"))
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((mc, bc))
    })?;
    step("Sandboxes");
    println!("   Mailchimp:        {} (api key {})", mc.base_url(), sandbox_mailchimp::DEFAULT_API_KEY);
    println!("   Business Central: {}", bc.base_url());

    step("Seeding Business Central (CRONUS USA, Inc.)");
    let bca = bc.admin();
    let company = bca.company_id("CRONUS USA, Inc.").ok_or("the sandbox has no CRONUS company")?;
    let people = [
        ("Person", "Ada Lovelace", "ada@example.com", "12 Analytical Row", "Atlanta", "GA", "31772"),
        ("Person", "Grace Hopper", "grace@example.com", "1 Compiler Way", "Arlington", "VA", "22201"),
        ("Company", "Fabrikam Inc.", "orders@fabrikam.example", "", "", "", ""),
        ("Person", "No Mail", "", "", "", "", ""),
        ("Person", "Typo Tim", "tim@example", "", "", "", ""),
    ];
    let mut customers = Vec::new();
    for (kind, name, email, addr, city, state, zip) in people {
        let c = bca.create_customer(
            &company,
            json!({"type": kind, "displayName": name, "email": email, "addressLine1": addr, "city": city, "state": state, "postalCode": zip, "country": "US"}),
        );
        println!("   customer {} {name} <{email}>", c["number"].as_str().unwrap_or("?"));
        customers.push(c);
    }
    let items: Vec<Value> = [("ATHENS Desk", 1000.8), ("PARIS Chair", 103.67), ("ROME Lamp", 45.0)]
        .iter()
        .map(|(name, price)| bca.create_item(&company, json!({"displayName": name, "unitPrice": price})))
        .collect();
    for (i, customer) in customers.iter().take(3).enumerate() {
        let inv = bca.create_sales_invoice(
            &company,
            json!({"customerId": customer["id"]}),
            vec![
                json!({"lineType": "Item", "itemId": items[i % 3]["id"], "quantity": (i + 1) as f64}),
                json!({"lineType": "Item", "itemId": items[2]["id"], "quantity": 1.0}),
            ],
        );
        let posted = bca.post_sales_invoice(&company, inv["id"].as_str().unwrap_or_default());
        println!(
            "   invoice {} for {} posted as {}",
            inv["number"].as_str().unwrap_or("?"),
            customer["displayName"].as_str().unwrap_or("?"),
            posted["number"].as_str().unwrap_or("?")
        );
    }
    bca.create_sales_invoice(
        &company,
        json!({"customerId": customers[1]["id"]}),
        vec![json!({"lineType": "Item", "itemId": items[0]["id"], "quantity": 1.0})],
    );
    println!("   one draft invoice (not an order until posted)");
    let list = mc.admin().create_list("CRONUS customers");

    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("ml-connector-demo-{}", engine::executor::new_run_id())));
    if dir.join("ml-connector.yaml").exists() {
        return Err(format!("{} already holds a project; pick another --dir", dir.display()));
    }
    step(&format!("Writing the project to {}", dir.display()));
    std::fs::create_dir_all(dir.join("pipelines")).map_err(|e| e.to_string())?;
    let project = format!(
        "version: 1\nname: demo\ndescription: The stock flows against the sandboxes.\nconnections:\n  events: {{connector: inbox}}\n  mailchimp:\n    connector: mailchimp\n    settings: {{auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}, base_url: '{}'}}\n  business_central:\n    connector: business-central\n    settings:\n      tenant: '{}'\n      environment: production\n      company: 'CRONUS USA, Inc.'\n      client_id: bc-client\n      credential: {{type: secret, secret: {{secret: bc_client_secret}}}}\n      token_url: '{}'\n      base_url: '{}'\nvars:\n  list_id: {list}\n  store_id: cronus-usa\n  store_domain: shop.cronus.example\n  default_currency: USD\n  status_if_new: subscribed\n  consent_entity: contoso/marketing/v1.0/customerConsents\n",
        mc.base_url(),
        sandbox_business_central::SandboxConfig::default().tenant,
        bc.token_url(),
        bc.base_url()
    );
    std::fs::write(dir.join("ml-connector.yaml"), project).map_err(|e| e.to_string())?;
    for (file, text) in PIPELINES {
        std::fs::write(dir.join("pipelines").join(file), text).map_err(|e| e.to_string())?;
    }
    me(&dir, &["secrets", "generate-key"], None)?;
    me(&dir, &["secrets", "set", "mailchimp_api_key"], Some(sandbox_mailchimp::DEFAULT_API_KEY))?;
    me(&dir, &["secrets", "set", "bc_client_secret"], Some("bc-secret"))?;
    me(&dir, &["secrets", "set", "mailchimp_webhook_token"], Some(HOOK_TOKEN))?;
    me(&dir, &["validate"], None)?;
    me(&dir, &["check"], None)?;

    step("Business Central → Mailchimp (ml-connector run)");
    let bc_to_mc =
        ["run", "store", "customers-to-members", "items-to-products", "customers-to-ecommerce", "invoices-to-orders"];
    me(&dir, &bc_to_mc, None)?;
    for m in mc.admin().members(&list) {
        println!(
            "   member {:<28} {}",
            m["email_address"].as_str().unwrap_or("?"),
            m["status"].as_str().unwrap_or("?")
        );
    }
    println!("   orders in the store: {}", mc.admin().orders("cronus-usa").len());

    step("A person unsubscribes in Mailchimp; the webhook reaches `ml-connector serve`");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut serve = Killed(
        Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?,
    );
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(serve.0.stdout.take().ok_or("no stdout")?), &mut line)
        .map_err(|e| e.to_string())?;
    let base = line.trim().strip_prefix("serving on ").ok_or_else(|| format!("serve said: {line}"))?.to_owned();
    println!("   serve listening on {base}");
    runtime.block_on(async {
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
            &list,
            &url,
            &["subscribe", "unsubscribe", "profile", "cleaned", "upemail"],
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })?;
    println!("   webhook registered on the audience (sources.api = false: our own writes do not echo)");
    mc.admin().unsubscribe(&list, "grace@example.com");
    println!("   grace@example.com unsubscribed in Mailchimp");
    let inbox = inbox::Inbox::open(&dir.join(inbox::DEFAULT_PATH)).map_err(|e| e.to_string())?;
    for _ in 0..100 {
        if inbox.count("mailchimp").unwrap_or(0) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("   events in the inbox: {}", inbox.count("mailchimp").unwrap_or(0));

    step("Mailchimp → Business Central (ml-connector run consent)");
    me(&dir, &["run", "consent"], None)?;
    if let Some(grace) = customers.get(1).and_then(|c| c["id"].as_str()) {
        let consent = bca.consent(&company, grace).unwrap_or(Value::Null);
        println!(
            "   Grace's consent in Business Central: marketingConsent={} consentStatus={}",
            consent["marketingConsent"], consent["consentStatus"]
        );
    }

    step("The next Business Central → Mailchimp run: nothing to write, Grace stays unsubscribed");
    me(&dir, &bc_to_mc, None)?;
    let grace = mc.admin().member(&list, "grace@example.com").map(|m| m["status"].clone()).unwrap_or(Value::Null);
    println!("   grace@example.com in Mailchimp: {grace}");

    step("What the state store recorded");
    me(&dir, &["status", "--last", "1"], None)?;
    me(&dir, &["dead-letters"], None)?;
    drop(serve);
    runtime.block_on(async {
        mc.shutdown().await;
        bc.shutdown().await;
    });
    println!("\nThe project stays in {} — try `ml-connector audit -p {}`.", dir.display(), dir.display());
    Ok(())
}

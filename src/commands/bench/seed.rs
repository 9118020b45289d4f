//! The sandboxes the measurements run against, started in this process, and the ERP data they
//! are seeded with through their admin APIs: Business Central customers, items and posted
//! invoices spread over simulated days (so an incremental run's lookback covers minutes of
//! changes, not the whole seed), and Dynamics GP's bulk customers.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::data::{self, Dice};

/// The Business Central company the stock project names.
pub const BC_COMPANY: &str = "CRONUS USA, Inc.";

/// How much Business Central data to seed.
#[derive(Debug, Clone, Copy)]
pub struct BcVolume {
    pub customers: usize,
    pub items: usize,
    pub invoices: usize,
    pub lines: usize,
}

/// Starts a Mailchimp sandbox with the real limits (10 connections) and batches moving a state
/// every `batch_step`.
pub async fn start_mailchimp(batch_step: Duration) -> Result<sandbox_mailchimp::Sandbox, String> {
    let config = sandbox_mailchimp::SandboxConfig { batch_step, ..Default::default() };
    sandbox_mailchimp::Sandbox::start(config, any()).await.map_err(|e| format!("Mailchimp sandbox: {e}"))
}

/// Starts a Business Central sandbox with the real limits (5 requests processed at once per
/// user, 95 queued).
pub async fn start_business_central() -> Result<sandbox_business_central::Sandbox, String> {
    let config = sandbox_business_central::SandboxConfig::default();
    sandbox_business_central::Sandbox::start(config, any()).await.map_err(|e| format!("Business Central sandbox: {e}"))
}

/// Starts a Dynamics GP sandbox.
pub async fn start_dynamics_gp() -> Result<sandbox_dynamics_gp::Sandbox, String> {
    let config = sandbox_dynamics_gp::SandboxConfig::default();
    sandbox_dynamics_gp::Sandbox::start(config, any()).await.map_err(|e| format!("Dynamics GP sandbox: {e}"))
}

fn any() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

fn check(what: &str, answer: Value) -> Result<Value, String> {
    match answer.get("error") {
        Some(e) => Err(format!("seeding {what}: {e}")),
        None => Ok(answer),
    }
}

/// Seeds customers, items and posted invoices (each of `lines` item lines). The virtual clock
/// moves a minute per customer and item and twenty seconds per invoice, as if the data had
/// accumulated over weeks. Prints how long it took.
pub fn seed_business_central(admin: &sandbox_business_central::Admin, volume: BcVolume) -> Result<(), String> {
    let started = Instant::now();
    let company = admin.company_id(BC_COMPANY).ok_or("the Business Central sandbox has no CRONUS company")?;
    let mut dice = Dice::new(0x5EED_BE4C);
    let mut customers = Vec::with_capacity(volume.customers);
    for n in 0..volume.customers {
        let c = check("a customer", admin.create_customer(&company, data::customer_fields(n, &mut dice)))?;
        customers.push(c["id"].as_str().unwrap_or_default().to_owned());
        admin.advance_clock(Duration::from_secs(60));
    }
    let mut items = Vec::with_capacity(volume.items);
    for n in 0..volume.items {
        let price = (100 + dice.below(9_900)) as f64 / 100.0;
        let fields = json!({"displayName": format!("Bench item {n}"), "unitPrice": price});
        let item = check("an item", admin.create_item(&company, fields))?;
        items.push(item["id"].as_str().unwrap_or_default().to_owned());
        admin.advance_clock(Duration::from_secs(60));
    }
    for _ in 0..volume.invoices {
        let customer = &customers[dice.below(customers.len())];
        let lines: Vec<Value> = (0..volume.lines)
            .map(|_| json!({"lineType": "Item", "itemId": items[dice.below(items.len())], "quantity": 1 + dice.below(12)}))
            .collect();
        let invoice =
            check("an invoice", admin.create_sales_invoice(&company, json!({"customerId": customer}), lines))?;
        check("a posting", admin.post_sales_invoice(&company, invoice["id"].as_str().unwrap_or_default()))?;
        admin.advance_clock(Duration::from_secs(20));
    }
    println!(
        "   seeded Business Central: {} customers, {} items, {} posted invoices of {} lines ({:.1} s)",
        volume.customers,
        volume.items,
        volume.invoices,
        volume.lines,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The GP company the bench adds.
pub const GP_COMPANY: i32 = 3;

/// Adds a company to the GP sandbox with `n` bulk customers.
pub fn seed_gp_customers(admin: &sandbox_dynamics_gp::Admin, n: usize) -> Result<(), String> {
    admin.add_company(GP_COMPANY, "Bench", "BNCH").map_err(|e| e.to_string())?;
    sandbox_dynamics_gp::seed_many_customers(admin, GP_COMPANY, n);
    Ok(())
}

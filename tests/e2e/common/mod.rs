//! What the end-to-end tests share: running the binary with a known master key.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The tests' vault master key: base64 of 32 bytes 0x2a.
pub const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// The binary, with the test master key and no inherited log filter.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ml-connector"));
    c.env("ML_CONNECTOR_MASTER_KEY", MASTER_KEY).env_remove("ML_CONNECTOR_LOG");
    c
}

/// Runs the binary in `dir` with `stdin`; returns the exit code and stdout + stderr.
pub fn run_with(mut command: Command, dir: &Path, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// [`run_with`] on [`bin`].
pub fn run(dir: &Path, args: &[&str], stdin: &str) -> (i32, String) {
    run_with(bin(), dir, args, stdin)
}

/// A child process killed when the test ends, pass or fail.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs blocking work (the binary, a sandbox's admin) off the async test's workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Waits up to 20 s for `done`, checking every 50 ms; whether it came true.
pub async fn until(done: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(20) {
        if done() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    done()
}

/// The Mailchimp and Business Central sandboxes on free ports (BC sends its notifications
/// `notification_delay` after a change), and a Mailchimp audience: `(mc, bc, list id)`.
pub async fn mailchimp_and_business_central(
    notification_delay: std::time::Duration,
) -> (sandbox_mailchimp::Sandbox, sandbox_business_central::Sandbox, String) {
    let any_port = || "127.0.0.1:0".parse().unwrap();
    let mc = sandbox_mailchimp::Sandbox::start(sandbox_mailchimp::SandboxConfig::default(), any_port()).await.unwrap();
    let config = sandbox_business_central::SandboxConfig { notification_delay, ..Default::default() };
    let bc = sandbox_business_central::Sandbox::start(config, any_port()).await.unwrap();
    let list = mc.admin().create_list("Customers");
    (mc, bc, list)
}

/// The `settings:` (a YAML flow mapping) of a `mailchimp` connection to the sandbox `mc`, its
/// API key in the vault as `mailchimp_api_key`.
pub fn mailchimp_settings(mc: &sandbox_mailchimp::Sandbox) -> String {
    format!("{{auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}, base_url: '{}'}}", mc.base_url())
}

/// The `settings:` (a YAML flow mapping) of a `business-central` connection to the sandbox
/// `bc`'s company CRONUS USA, Inc., its client secret in the vault as `bc_client_secret`.
pub fn business_central_settings(bc: &sandbox_business_central::Sandbox) -> String {
    format!(
        "{{tenant: '{}', environment: production, company: 'CRONUS USA, Inc.', client_id: bc-client, credential: {{type: secret, secret: {{secret: bc_client_secret}}}}, token_url: '{}', base_url: '{}'}}",
        sandbox_business_central::SandboxConfig::default().tenant,
        bc.token_url(),
        bc.base_url()
    )
}

/// The text of a stock pipeline file: `mappings/<flow>/pipelines/<file>`.
pub fn stock_pipeline(flow: &str, file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings").join(flow).join("pipelines").join(file),
    )
    .unwrap()
}

/// A temporary project directory: `project` as its project file, and an empty `pipelines/`.
pub fn project_dir(project: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("ml-connector.yaml"), project).unwrap();
    dir
}

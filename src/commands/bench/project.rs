//! The projects the measurements run: the stock pipelines (embedded, so the bench runs wherever
//! the binary is) under a project file pointing at the sandboxes, with a vault holding the
//! sandboxes' credentials, written the way a user would (`secrets generate-key`, `secrets set`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The vars of the stock BC project, as the bench sets them.
pub fn bc_vars(list_id: &str) -> serde_json::Value {
    serde_json::json!({
        "list_id": list_id,
        "store_id": "bench-store",
        "store_domain": "shop.bench.example",
        "default_currency": "USD",
        "status_if_new": "transactional",
    })
}

/// Where the sandboxes are, for a project file.
pub struct Endpoints {
    pub mailchimp: String,
    /// (token URL, API base URL) of the Business Central sandbox.
    pub business_central: Option<(String, String)>,
    /// The SOAP URL of the GP sandbox and its company.
    pub dynamics_gp: Option<(String, i32)>,
}

/// A project file: the connections the endpoints name, the vars, a page size, and whether
/// Mailchimp e-commerce writes use batch operations.
pub fn project_yaml(endpoints: &Endpoints, vars: &serde_json::Value, page_size: u32, batch_operations: bool) -> String {
    let mut text = format!(
        "version: 1\nname: bench\nconnections:\n  mailchimp:\n    connector: mailchimp\n    settings: {{auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}, base_url: '{}', batch_operations: {batch_operations}}}\n",
        endpoints.mailchimp
    );
    if let Some((token_url, base_url)) = &endpoints.business_central {
        text.push_str(&format!(
            "  business_central:\n    connector: business-central\n    settings:\n      tenant: '{}'\n      environment: production\n      company: 'CRONUS USA, Inc.'\n      client_id: bc-client\n      credential: {{type: secret, secret: {{secret: bc_client_secret}}}}\n      token_url: '{token_url}'\n      base_url: '{base_url}'\n",
            sandbox_business_central::SandboxConfig::default().tenant
        ));
    }
    if let Some((url, company)) = &endpoints.dynamics_gp {
        text.push_str(&format!(
            "  dynamics_gp:\n    connector: dynamics-gp\n    settings: {{interface: soap, url: '{url}', company_key: {company}, domain: GPDOMAIN, user: gpuser, password: {{secret: gp_password}}}}\n"
        ));
    }
    text.push_str(&format!("vars: {vars}\ndefaults:\n  lookback: 5m\n  page_size: {page_size}\n"));
    text
}

/// The secrets every bench project holds: the sandboxes' well-known credentials.
pub fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![
        ("mailchimp_api_key", sandbox_mailchimp::DEFAULT_API_KEY),
        ("bc_client_secret", "bc-secret"),
        ("gp_password", sandbox_dynamics_gp::DEFAULT_PASSWORD),
    ]
}

/// Writes a project directory: the project file, the pipelines, a vault key and the secrets.
pub fn write(dir: &Path, project: &str, pipelines: &[(&str, &str)], secrets: &[(&str, &str)]) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("pipelines")).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("ml-connector.yaml"), project).map_err(|e| e.to_string())?;
    for (file, text) in pipelines {
        std::fs::write(dir.join("pipelines").join(file), text).map_err(|e| e.to_string())?;
    }
    me(dir, &["secrets", "generate-key"], None)?;
    for (name, value) in secrets {
        me(dir, &["secrets", "set", name], Some(value))?;
    }
    Ok(())
}

/// Runs this binary with `args` in `dir`; its output on failure.
pub fn me(dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(exe()?)
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
    if out.status.success() { Ok(text) } else { Err(format!("`ml-connector {}` failed: {text}", args.join(" "))) }
}

/// This binary, as it was when the bench started: a rebuild that replaces the file meanwhile
/// leaves `/proc/self/exe` pointing at a deleted file, while its path still runs.
pub fn exe() -> Result<PathBuf, String> {
    static EXE: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    EXE.get_or_init(|| std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))).clone()
}

/// A fresh working directory under `base` (or the system's temp dir), removed on drop unless
/// the user named it.
pub struct WorkDir {
    pub path: PathBuf,
    keep: bool,
}

impl WorkDir {
    pub fn new(base: Option<&Path>, name: &str) -> Result<WorkDir, String> {
        let (root, keep) = match base {
            Some(b) => (b.to_path_buf(), true),
            None => {
                (std::env::temp_dir().join(format!("ml-connector-bench-{}", engine::executor::new_run_id())), false)
            }
        };
        let path = root.join(name);
        if path.exists() {
            return Err(format!("{} already exists; pick another --dir", path.display()));
        }
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
            if let Some(parent) = self.path.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}
